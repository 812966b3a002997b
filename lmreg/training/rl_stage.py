"""The estimator's RL stage around :func:`~lmreg.training.rl.train_rl`: rows and keep-or-revert.

:func:`~lmreg.training.rl.train_rl` is the algorithm; this module decides which rows
prompt it and which rows judge it, and which weights stay afterwards:

* :func:`stage_rows`: RL prompts from the SFT training rows, from half of the
  validation rows, or both (``RLConfig.prompt_rows``); the rows that judge are
  validation rows no prompt came from, at most :data:`RL_CHECK_ROWS` of them;
* :func:`run_stage`: scores the SFT weights, runs RL with checkpoints, keeps the
  checkpoint with the lowest validation error among those that lower the error
  without raising the validation CRPS (unless ``RLConfig.guard_crps`` is off) and,
  when ``RLConfig.keep_alpha`` is set, lower it significantly (:func:`paired_p_value`),
  else restores the SFT weights.

Scoring is the caller's (``score() -> (errors, crps, samples)`` with the estimator's
own samples and decision rule, one error per judging row), so the check judges
exactly what ``predict`` will use; the samples of the weights that stay are handed
back (the estimator calibrates its quantiles on them without sampling again).

Why a test is optional: the judging rows are few (35 on diabetes), and the best of
several checkpoints can beat the SFT weights on them by chance (measured: on
lending_club_rate a checkpoint 1% better on validation was 1.3% worse on test); a
paired test asks whether the per-row errors fell by more than the rows' own scatter
explains. But a test also refuses gains the judging rows barely contain: on
ames_housing RL fixes the large errors on rare expensive houses, and the
signed-rank test refused stages that lowered test MAE by 14-21%. With one
checkpoint the default keeps on any lower mean error; a rank test is the choice
when set, since a test of the mean difference is led by a few heavy-tailed rows.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import stats

from ..backbone import restore_state, trained_state
from .rl import train_rl
from .rl_config import KEEP_TESTS, PROMPT_ROWS, RLResult

#: Validation rows (at most) scored before RL and at its checkpoints.
RL_CHECK_ROWS = 512
#: Why ``keep_test="signed_rank"`` is refused with ``sample_weight``.
WEIGHTED_RANK_TEST = ("keep_test='signed_rank' has no weighted form; with sample_weight and keep_alpha set, "
                      "pass rl_config={'keep_test': 'permutation'} (a test of the weighted mean error).")


def stage_rows(prompt_rows: str, train_rows: np.ndarray, val_rows: np.ndarray, rng: np.random.Generator,
               max_check: int = RL_CHECK_ROWS):
    """RL prompts and the validation rows that judge the RL weights.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> prompts, check = stage_rows("holdout", np.arange(10), np.arange(10, 20), rng)
    >>> len(prompts), len(check), bool(set(prompts) & set(check))
    (5, 5, False)
    >>> prompts, check = stage_rows("train", np.arange(10), np.arange(10, 20), rng, max_check=3)
    >>> len(prompts), len(check), set(check) <= set(range(10, 20))
    (10, 3, True)
    """
    if prompt_rows not in PROMPT_ROWS:
        raise ValueError(f"rl_config prompt_rows must be one of {PROMPT_ROWS}; got {prompt_rows!r}.")
    prompts, check = train_rows, val_rows
    if prompt_rows != "train":
        if len(val_rows) < 4:
            raise ValueError(f"rl_config prompt_rows={prompt_rows!r} draws RL prompts from the validation "
                             f"rows, but there are {len(val_rows)}; raise validation_fraction.")
        shuffled = rng.permutation(val_rows)
        held, check = np.sort(shuffled[: len(val_rows) // 2]), np.sort(shuffled[len(val_rows) // 2:])
        prompts = held if prompt_rows == "holdout" else np.concatenate([train_rows, held])
    if len(check) > max_check:
        check = np.sort(rng.choice(check, max_check, replace=False))
    return prompts, check


def paired_p_value(before: np.ndarray, after: np.ndarray, seed: int = 0, n_resamples: int = 2000,
                   test: str = "permutation", weights: np.ndarray | None = None) -> float:
    """One-sided p-value that ``after``'s per-row errors are lower than ``before``'s.

    ``test="signed_rank"`` (the estimator's default, ``RLConfig.keep_test``): the
    Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`; rows with equal errors
    dropped), which asks whether rows improve more often and by more ranks than they
    worsen, so one large error does not dominate it as it does the mean.
    ``test="permutation"`` (this function's default): a paired sign-flip permutation
    test of the mean difference
    (:func:`scipy.stats.permutation_test` with ``permutation_type="samples"``): under
    the null hypothesis the two models are exchangeable on every row, so each row's
    difference is as likely to have either sign. No normality assumption; exact
    (all ``2**n`` sign patterns) when ``2**n <= n_resamples``, otherwise Monte Carlo
    with ``n_resamples`` patterns (about 0.1 s for 512 rows), deterministic given
    ``seed``. With ``n`` rows, p is at least ``2**-n``: three rows can never reach
    p <= 0.1.

    ``weights`` (one per row, ``sample_weight``): the permutation test of the
    weighted mean difference (each row's difference times its weight flips sign as
    a whole). The signed-rank test has no weighted form here: a ValueError.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> before = rng.exponential(size=200)
    >>> paired_p_value(before, 0.8 * before) < 0.001     # every row 20% better
    True
    >>> paired_p_value(before, before + rng.normal(0, 0.1, 200)) > 0.05   # noise
    True
    >>> paired_p_value(before, before), paired_p_value([2.0], [1.0])   # no evidence; one row
    (1.0, 0.5)
    >>> paired_p_value(before, 0.8 * before, test="signed_rank") < 0.001
    True
    >>> paired_p_value([1, 1, 1, 1], [0, 0, 0, 3])   # three rows 1 better, one 2 worse
    0.5
    >>> paired_p_value([1, 1, 1, 1], [0, 0, 0, 3], weights=[1, 1, 1, 0.1])   # the worse row weighs little
    0.125
    """
    if test not in KEEP_TESTS:
        raise ValueError(f"keep_test must be one of {KEEP_TESTS}; got {test!r}.")
    diff = np.asarray(before, dtype=np.float64) - np.asarray(after, dtype=np.float64)
    if weights is not None:
        if test == "signed_rank":
            raise ValueError(WEIGHTED_RANK_TEST)
        diff = diff * (np.asarray(weights, dtype=np.float64) / np.mean(weights))
    if not np.any(diff > 0):
        return 1.0
    if np.count_nonzero(diff) < 2:  # the two sign patterns of one changed row (scipy needs two)
        return 0.5
    if test == "signed_rank":
        return float(stats.wilcoxon(diff, alternative="greater").pvalue)
    res = stats.permutation_test((diff,), lambda d, axis: np.mean(d, axis=axis), permutation_type="samples",
                                 alternative="greater", n_resamples=n_resamples, vectorized=True, batch=1000,
                                 random_state=np.random.default_rng(seed))
    return float(res.pvalue)


def run_stage(model, train_args: tuple, score, deadline: float | None, guard_crps: bool = True,
              keep_alpha: float | None = None, keep_test: str = "signed_rank", check_weights=None,
              base=None, **train_kw):
    """RL on ``model`` in place; returns the result and the kept weights' check samples.

    Parameters
    ----------
    model : RegressionLM
    train_args : tuple
        The positional arguments of :func:`~lmreg.training.rl.train_rl` after ``model``.
    score : callable or None
        ``score() -> (errors, crps, samples)`` of ``model`` on the judging rows
        (``errors``: one per row); None when there are none (the RL weights then stay).
    deadline : float or None
        ``time.monotonic()`` value; the closing check's cost is reserved before it.
    guard_crps : bool, default=True
        Refuse checkpoints whose CRPS is above the SFT weights' (``RLConfig.guard_crps``).
    keep_alpha : float or None, default=None
        Refuse checkpoints whose :func:`paired_p_value` against the SFT weights'
        errors is above it (``RLConfig.keep_alpha``); None: any lower mean error.
    keep_test : {"signed_rank", "permutation"}, default="signed_rank"
        The test of :func:`paired_p_value` (``RLConfig.keep_test``).
    check_weights : float array or None, default=None
        One weight per judging row (``sample_weight``): the error compared is the
        weighted mean, and so is the test's (``score``'s CRPS is the caller's, weighted
        there). None: every row counts once.
    base : tuple or None, default=None
        ``(errors, crps, samples, seconds)``: ``score()`` of the weights ``model`` has
        now and how long it took, when the caller already has it (the previous
        member's stage ended on these weights); None: scored here.
    **train_kw
        ``seed``, ``device``, ``weights`` (the prompts') for
        :func:`~lmreg.training.rl.train_rl`.

    Returns
    -------
    result : ~lmreg.training.rl_config.RLResult
    samples : the third item of ``score()`` for the weights left in place (None
        without ``score``)
    """
    if base is None and deadline is not None and time.monotonic() >= deadline:
        # no time left: scoring the starting weights would only overrun the budget
        model.eval()
        return RLResult(kept=False, best_step=0), None
    if score is None:   # nothing judges the stage: its last weights stay, if it took a step
        result = train_rl(model, *train_args, deadline=deadline, **train_kw)
        result.kept, result.best_step = result.steps > 0, result.steps
        model.eval()
        return result, None
    sft_state = trained_state(model)
    if base is None:
        t = time.monotonic()
        base = (*score(), time.monotonic() - t)
    base_errors, base_crps, base_samples, cost = base
    base_error = float(np.average(base_errors, weights=check_weights))
    best = {"error": base_error, "state": None, "step": 0, "samples": base_samples}
    checks = []

    def on_check(model, step):  # train_rl keeps the model in eval mode
        errors, crps, samples = score()
        error = float(np.average(errors, weights=check_weights))
        check = {"step": step, "error": error, "crps": crps}
        if error < base_error and keep_alpha is not None:
            check["p_value"] = paired_p_value(base_errors, errors, seed=step, test=keep_test,
                                              weights=check_weights)
        checks.append(check)
        # A lower point error bought by a collapsed distribution (higher CRPS) is refused,
        # and so is one the judging rows' scatter explains.
        significant = keep_alpha is None or check.get("p_value", 1.0) <= keep_alpha
        if error < best["error"] and (crps <= base_crps or not guard_crps) and significant:
            best.update(error=error, state=trained_state(model), step=step, samples=samples)

    # The closing check runs inside the budget: RL stops one check's cost early.
    result = train_rl(model, *train_args, deadline=None if deadline is None else deadline - cost,
                      on_check=on_check, **train_kw)
    if result.steps and not (checks and checks[-1]["step"] == result.steps):  # not checked yet
        on_check(model, result.steps)
    result.val_before = {"error": base_error, "crps": base_crps}
    result.val_after = {k: checks[-1][k] for k in ("error", "crps")} if checks else dict(result.val_before)
    result.checks, result.best_step = checks, best["step"]
    result.kept = best["state"] is not None
    result.val_mae = best["error"]
    restore_state(model, best["state"] if result.kept else sft_state)
    return result, best["samples"]
