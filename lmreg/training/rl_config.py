"""Configuration and result of the RL stage (:func:`~lmreg.training.rl.train_rl`).

:class:`RLConfig` documents every hyper-parameter with the paper it comes from and
checks its fields when built, so that :class:`~lmreg.LMRegressor` rejects a bad
``rl_config`` before SFT rather than after it; :class:`RLResult` records what a
stage did (steps, rewards, the validation checkpoints, kept or reverted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

from . import rewards as R

VARIANTS = ("grpo", "dr_grpo", "remax", "tree", "median")
#: Variants that compute on the digit tree instead of sampling (:mod:`lmreg.training.tree_rl`).
TREE_VARIANTS = ("tree", "median")
#: Where the estimator's RL stage draws prompts from (``RLConfig.prompt_rows``).
PROMPT_ROWS = ("train", "holdout", "both")
#: Paired tests behind ``RLConfig.keep_alpha`` (:func:`~lmreg.training.rl_stage.paired_p_value`).
KEEP_TESTS = ("permutation", "signed_rank")


@dataclass
class RLConfig:
    """Hyper-parameters of the RL stage; each field names where it comes from.

    Attributes
    ----------
    variant : {"grpo", "dr_grpo", "remax", "tree", "median"}
        GRPO (Shao et al. 2024, DeepSeekMath) scales group-centred rewards by the
        group std; Dr.GRPO (Liu et al. 2025, "Understanding R1-Zero-like training")
        drops the std scaling; ReMax (Li et al. 2023) subtracts the reward of the
        greedy decode. The GenRe2 study (arXiv 2512.06533) applies both to
        decoding-based regression. ``"tree"`` (:mod:`lmreg.training.tree_rl`) needs
        no samples: the expected reward is summed over the digits codec's token tree
        at the first digit off the target's path (every sibling subtree valued at its
        centre), from one teacher-forced pass, with the exact KL of each next-digit
        distribution on that path as the guard. ``"median"`` rewards the exact
        median (the estimator's decision) instead: its gradient is the reward's slope
        at the median times the gradient of the policy's CDF there (implicit
        differentiation of the quantile), with the KL on the median's path. For both,
        ``group_size``, ``clip_eps`` and ``std_floor`` do not apply, and the reward
        must be pointwise.
    reward : str, callable or None
        A name in :data:`lmreg.training.rewards.REWARDS` or ``f(pred, target, scale)``;
        None: ``"crps_loo"`` for GRPO and Dr.GRPO (it keeps the intervals, measured
        in docs/benchmarks.md); ``"abs"`` for ReMax (the GenRe2 recipe; its greedy
        baseline needs a pointwise reward) and for ``"tree"`` and ``"median"`` (they
        need one too). The reward scale is the (weighted) std of the prompts'
        targets. The choice between rewards follows their decision rules
        (:data:`~lmreg.training.rewards.DECISION_FOR_REWARD`; Gneiting 2011,
        "Making and evaluating point forecasts").
    group_size : int
        Samples per prompt (GRPO's G, Shao et al. 2024); ``crps_loo`` needs at least 3.
    prompts_per_step : int or None
        Prompts per optimizer step; None: 16 for the sampled variants (each with
        ``group_size`` samples), 32 for ``"tree"`` and ``"median"`` (one pass per
        prompt; the setting measured in docs/benchmarks.md).
    learning_rate : float
        AdamW (Loshchilov & Hutter 2019) learning rate; RL fine-tunes, so 10-100x
        below SFT's.
    clip_eps : float
        PPO ratio clipping (Schulman et al. 2017).
    kl_coef : float
        Weight of the KL penalty to the frozen policy the stage starts from (GRPO's
        beta): the SFT weights in ``fit``, the current weights in a later
        ``reinforce``. Estimated with the non-negative k3 estimator (Schulman 2020).
    std_floor : float
        Floor of the group-std normaliser (GRPO only), in reward units (TRL adds
        1e-4 to the std instead): on prompts whose samples all agree the std is ~0
        and GRPO would amplify noise (measured: memorised prompts made a 60 s GRPO
        stage 2-6% worse without it). ``crps_loo`` rewards spread far less within a
        group than ``abs`` (simulated, calibrated groups of 8 with a spread of half the
        target std: median group std 0.037 against 0.32), so with it the floor binds
        on most prompts and GRPO acts as Dr.GRPO scaled by ``1 / std_floor``.
    temperature : float
        The temperature of the policy RL trains, ``softmax(logits / temperature)``:
        the rollouts are sampled at it and their log-probs (ratio, KL, the
        ``sft_coef`` term) are taken at it, as TRL's GRPO does; for ``"tree"`` and
        ``"median"``, the expected reward or the median is that policy's (their KL
        and ``sft_coef`` terms stay at temperature 1). :class:`~lmreg.LMRegressor`
        passes its own ``temperature`` unless ``rl_config`` names one, so RL trains
        the distribution ``predict`` decides from. At least 0.01, as the estimator's.
    grad_clip : float
        Gradient-norm clipping (Pascanu et al. 2013) at this global norm; 0 turns it
        off.
    updates_per_rollout : int
        Optimizer steps on each rollout (GRPO's mu, Shao et al. 2024; PPO's epochs):
        more learning per sampled group, with the clipped ratio keeping later
        updates near the sampling policy.
    prompt_rows : {"train", "holdout", "both"}
        Where :class:`~lmreg.LMRegressor` draws RL prompts from: the SFT training
        rows; ``"holdout"``: half of the validation rows (SFT never trained on them,
        so the policy's samples still disagree there; the other half decides whether
        the RL weights are kept); ``"both"``: the two together. On memorised prompts
        the group's samples agree and RL learns little but sharpness (the warning in
        the GRPO regression study above); held-out prompts are the remedy it suggests.
    checks : int
        Validation checkpoints of the estimator's RL stage, at equal shares of its
        budget (a checkpoint is due when either its share of the time to the deadline
        or its share of the steps is used, whichever comes first): it keeps the checkpoint with the lowest validation error among those
        that beat the SFT weights (``keep_alpha``, ``guard_crps``; early stopping, as
        in SFT; Prechelt 1998, "Early stopping - but when?"), else the SFT weights.
        1: only the end of the stage is checked.
    sft_coef : float
        Weight of a cross-entropy term on each prompt's true number, added to the RL
        loss (InstructGPT's PPO-ptx, Ouyang et al. 2022, mixes the pre-training loss
        in the same way): the supervised signal continues while the reward reshapes
        the distribution. 0: pure RL.
    pg_coef : float
        Weight of the policy-gradient term (1; 0 leaves the KL and ``sft_coef`` terms
        only: the continued-SFT control of a benchmark, as in InstructGPT's
        comparison of PPO with its SFT baseline; with ``sft_coef=0`` too it is refused,
        leaving no objective).
    guard_crps : bool or None
        The estimator keeps an RL checkpoint only if it lowers the validation error
        **and** does not raise the validation CRPS (True; CRPS: Gneiting & Raftery
        2007), or on the error alone (False). The CRPS guard refuses a lower point
        error bought with a collapsed distribution, the failure of sampled variants
        with sharpening rewards. None: off for ``"median"`` (its loss moves the CDF
        at the median toward the target rather than mass onto the median; measured,
        the guard refused an ames_housing stage that lowered test MAE by 14% because
        its validation CRPS rose 6%), on for the others. With
        calibrated quantiles (``calibration="conformal"``) the intervals keep their
        coverage either way.
    keep_alpha : float or None
        None (default): a checkpoint is kept on any lower mean error on the judging
        rows. A float: only if, in addition, a paired one-sided test of the rows'
        errors (``keep_test``, :func:`~lmreg.training.rl_stage.paired_p_value`)
        gives p <= ``keep_alpha`` against the SFT weights (Dietterich 1998 on
        comparing learners on the same rows). Measured (docs/benchmarks.md, five SFT
        seeds): at 0.1 the signed-rank test refused ames_housing stages on two of
        five seeds that lowered test MAE by 14-21% without it (their validation error
        fell 0.8-4.6%, p = 0.26-0.27: the gain is on the rare expensive houses, which
        the 234 judging rows hardly contain); with one checkpoint and no test, 17 of the 18 paired
        stages kept lowered test MAE (by 0.4-21%) and one left it unchanged. Set it
        with several ``checks`` (keeping the best of three without a test kept
        lending_club_rate checkpoints 0.4-1.0% better on validation and 1.0-3.0%
        worse on test) and on small data: on diabetes (35 judging rows) a stage
        0.1% better on validation was kept and moved the calibrated 80% coverage
        by -16 points.
    keep_test : {"signed_rank", "permutation"}
        The test behind ``keep_alpha``: the Wilcoxon signed-rank test (Wilcoxon
        1945), or the sign-flip permutation test of the mean error difference, which
        one large error dominates. Measured at 0.1 on one SFT seed: the permutation
        test refused ames_housing checkpoints with 7.6-8.5% lower validation error
        (p = 0.25-0.29: house-price errors are heavy-tailed) as well as lending's
        (p = 0.31); the signed-rank test passed that ames model (p <= 0.005) and
        refused lending (p = 0.20-0.38).

    Examples
    --------
    >>> from lmreg.training.rewards import REWARDS
    >>> cfg = RLConfig(variant="dr_grpo", group_size=4, prompts_per_step=16)
    >>> stage_reward(cfg), stage_reward(cfg) in REWARDS   # reward=None: the variant's default
    ('crps_loo', True)
    >>> cfg.prompts_per_step * cfg.group_size  # sampled numbers per step
    64
    >>> step_prompts(RLConfig(variant="grpo")), step_prompts(RLConfig(variant="median"))
    (16, 32)
    >>> stage_reward(RLConfig(variant="median")), stage_reward(RLConfig(variant="remax"))
    ('abs', 'abs')
    >>> RLConfig(group_size=1)
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'group_size' parameter of RLConfig must be an int in the range [2, inf). Got 1 instead.
    """

    variant: str = "grpo"
    reward: object = None
    group_size: int = 8
    prompts_per_step: int | None = None
    learning_rate: float = 5e-5
    clip_eps: float = 0.2
    kl_coef: float = 0.05
    std_floor: float = 0.05
    temperature: float = 1.0
    grad_clip: float = 1.0
    updates_per_rollout: int = 1
    prompt_rows: str = "train"
    checks: int = 1
    sft_coef: float = 0.0
    pg_coef: float = 1.0
    guard_crps: bool | None = None
    keep_alpha: float | None = None
    keep_test: str = "signed_rank"

    def __post_init__(self):
        # Checked when built, so that the estimator fails before SFT rather than after it.
        self.check()

    def check(self) -> None:
        """Raise a ValueError naming the first invalid field (or pair of fields)."""
        validate_parameter_constraints(_CONSTRAINTS, vars(self), caller_name="RLConfig")
        from ..validation import refuse_flags   # here: lmreg.validation imports this module

        refuse_flags(vars(self), "RLConfig", _CONSTRAINTS)
        if self.pg_coef == 0 and self.sft_coef == 0:
            raise ValueError("pg_coef=0 and sft_coef=0 leave the stage no objective (only the KL to the "
                             "weights it starts from, whose gradient is rounding noise); set one above 0.")
        reward = stage_reward(self)
        if not isinstance(reward, str):
            R.check_stage_reward(reward)
        group_reward = R.is_group_reward(reward)
        if group_reward and self.variant == "remax":
            raise ValueError("remax compares each sample with the greedy decode; use a pointwise reward.")
        if group_reward and self.variant in TREE_VARIANTS:
            raise ValueError(f"variant={self.variant!r} works on the digits codec's token tree: it needs "
                             f"a pointwise reward (e.g. 'abs'), not reward={reward!r}.")
        if R.base_reward(reward) is R.crps_loo and self.variant not in TREE_VARIANTS and self.group_size < 3:
            raise ValueError(f"reward 'crps_loo' scores each sample against the others of its group: it needs "
                             f"group_size >= 3, got {self.group_size}.")


_POSITIVE = [Interval(Real, 0, None, closed="neither")]
_NON_NEGATIVE = [Interval(Real, 0, None, closed="left")]
#: What :meth:`RLConfig.check` enforces, in scikit-learn's constraint language (as the estimator's).
_CONSTRAINTS = {
    "variant": [StrOptions(set(VARIANTS))],
    "reward": [StrOptions(set(R.REWARDS)), callable, None],
    "group_size": [Interval(Integral, 2, None, closed="left")],
    "prompts_per_step": [Interval(Integral, 1, None, closed="left"), None],
    "learning_rate": _POSITIVE, "clip_eps": _POSITIVE, "std_floor": _POSITIVE,
    "temperature": [Interval(Real, 0.01, None, closed="left")],   # as the estimator's: logits / t overflow below
    "kl_coef": _NON_NEGATIVE, "grad_clip": _NON_NEGATIVE, "sft_coef": _NON_NEGATIVE, "pg_coef": _NON_NEGATIVE,
    "updates_per_rollout": [Interval(Integral, 1, None, closed="left")],
    "prompt_rows": [StrOptions(set(PROMPT_ROWS))],
    "checks": [Interval(Integral, 1, None, closed="left")],
    "guard_crps": ["boolean", None],
    "keep_alpha": [Interval(Real, 0, 1, closed="right"), None],
    "keep_test": [StrOptions(set(KEEP_TESTS))],
}


@dataclass
class RLResult:
    """What :func:`train_rl` did (the estimator fills ``kept`` and ``val_mae``).

    Attributes
    ----------
    steps : int
        RL steps taken.
    seconds : float
        Wall-clock time.
    history : list of dict
        One entry per step: ``step``, ``reward`` (mean over the rollouts),
        ``loss``, ``kl`` (to the frozen policy the stage started from: the SFT
        weights in ``fit``, the weights before the call in ``reinforce``) and
        ``seconds``.
    kept : bool
        Whether the RL weights stayed: False when the estimator reverted to the
        weights the stage started from, or when no step ran (``steps == 0``).
    val_mae : float
        Validation error of the weights kept (NaN when not measured).
    val_before, val_after : dict
        ``{"error", "crps"}`` on the validation rows before RL and at its end, from
        the estimator's samples and decision rule (empty when not measured).
    checks : list of dict
        ``step``, ``error`` and ``crps`` of every validation checkpoint
        (``RLConfig.checks`` of them), and ``p_value`` of the paired test where the
        error fell (``RLConfig.keep_alpha``).
    best_step : int
        Step of the kept checkpoint (the last step when no rows judge the stage); 0
        when the SFT weights were kept.
    prompt_rows : {"train", "holdout", "both"}
        Where the estimator drew the prompts from (``RLConfig.prompt_rows``): the
        judging rows, which also calibrate the quantiles, follow from it.

    Examples
    --------
    >>> r = RLResult(steps=3, history=[{"step": 1, "reward": -0.5}], kept=False)
    >>> RLResult(**dict(vars(r))) == r  # how a saved model stores it
    True
    >>> RLResult().kept
    True
    """

    steps: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)
    kept: bool = True              # False when the estimator reverted to the SFT weights
    val_mae: float = float("nan")  # validation error of the weights kept
    val_before: dict = field(default_factory=dict)  # {"error", "crps"} of the SFT weights
    val_after: dict = field(default_factory=dict)   # the same at the end of RL
    checks: list = field(default_factory=list)      # {"step", "error", "crps"[, "p_value"]} per checkpoint
    best_step: int = 0                              # the kept checkpoint (0: the SFT weights)
    prompt_rows: str = "train"                      # where the estimator's prompts came from


def stage_reward(config: RLConfig):
    """The reward the stage trains on: ``config.reward``, or its variant's default when None.

    Resolved when used, not stored, so a config whose ``variant`` changes later gets that
    variant's default.

    >>> cfg = RLConfig(variant="median")
    >>> cfg.reward, stage_reward(cfg)
    (None, 'abs')
    >>> cfg.variant = "grpo"
    >>> stage_reward(cfg), stage_reward(RLConfig(reward="squared"))
    ('crps_loo', 'squared')
    """
    if config.reward is not None:
        return config.reward
    return "abs" if config.variant in (*TREE_VARIANTS, "remax") else "crps_loo"


def step_prompts(config: RLConfig) -> int:
    """Prompts per step: ``config.prompts_per_step``, or its variant's default when None."""
    if config.prompts_per_step is not None:
        return int(config.prompts_per_step)
    return 32 if config.variant in TREE_VARIANTS else 16
