"""The stages that run on a fitted model's held-out rows: RL, quantile calibration, fallback.

All three need rows the SFT stage never trained on; RL and calibration are open to
a fitted estimator on their own (:meth:`~HeldOutStages.reinforce`,
:meth:`~HeldOutStages.calibrate`), so they live in this mixin of
:class:`~lmreg.LMRegressor` rather than inside ``fit``:

* **RL** (:mod:`lmreg.training.rl_stage`): prompts from the training rows (or half of
  the validation rows), judged on validation rows no prompt came from, with the
  estimator's own samples and decision rule; the RL weights stay only if they lower
  the validation error (significantly, by a paired test over the rows, with
  ``RLConfig.keep_alpha``) and, by default for every variant but ``median``, do not
  raise the validation CRPS (``RLConfig.guard_crps``). A seed ensemble runs one stage per
  member, each judged on the members' mixture. With ``sample_weight`` each prompt's loss
  counts its weight and the check compares weighted means.
* **Calibration** (:mod:`lmreg.calibration`): split-conformal shifts of the sample
  quantiles, fitted on those same judging rows. After RL it reuses the check's
  samples of the weights that stayed, so it costs no extra sampling.
* **Fallback**: a model that cannot beat the median of the training targets on the
  validation rows is not used (``fallback_``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .calibration import ConformalQuantiles
from .decoding import rows_per_batch
from ._warnings import warn_user
from .backbone import takes_turns
from .members import member_seed
from .metrics import crps_per_row
from .training import rewards as R
from .training.rl_config import RLConfig, RLResult, stage_reward
from .training.rl_stage import WEIGHTED_RANK_TEST, run_stage, stage_rows
from .training.sft import decision_errors, target_error, target_scale
from .validation import check_targets, weighted_rows

#: Share of ``max_time`` kept for sampling the calibration rows after training.
CALIBRATION_SHARE = 0.02
#: Calibration rows are sampled in chunks of this many sequences (rows x ``n_samples``),
#: while the next chunk is expected to end before the deadline.
CALIBRATION_CHUNK = 1024
#: Fewer validation rows than this leave the quantiles uncalibrated.
MIN_CALIBRATION_ROWS = 10
#: The RL check is timed on at least this many judging rows (one decoding batch) before a stage.
PROBE_ROWS = 16


def stage_deadline(max_time):
    """The ``time.monotonic()`` deadline of a stage run with ``max_time`` seconds (None: none).

    >>> stage_deadline(None) is None
    True
    >>> stage_deadline("5")
    Traceback (most recent call last):
    ...
    ValueError: max_time must be a positive number of seconds or None; got '5'.
    """
    if max_time is None:
        return None
    if isinstance(max_time, bool) or not isinstance(max_time, (int, float, np.integer, np.floating)) \
            or not max_time > 0:   # NaN too
        raise ValueError(f"max_time must be a positive number of seconds or None; got {max_time!r}.")
    return time.monotonic() + float(max_time)


def split_key(y: np.ndarray, weights, validation_fraction: float) -> dict:
    """What ``fit`` keeps to find its train/validation split again in ``reinforce`` and
    ``calibrate``: the number of rows, the fraction held out, and digests of the
    (model-unit) targets and of the weights that tell other data from fit's (X is not
    hashed: its rows may come in many equivalent forms).

    >>> key = split_key(np.array([1.0, 2.0]), None, 0.1)
    >>> key["rows"], key["validation_fraction"], len(key["y_sha1"]), key["w_sha1"]
    (2, 0.1, 40, None)
    """
    def digest(a):
        a = np.ascontiguousarray(a, dtype=np.float64)
        return hashlib.sha1(repr(a.shape).encode() + a.tobytes()).hexdigest()

    return {"rows": int(len(y)), "validation_fraction": float(validation_fraction), "y_sha1": digest(y),
            "w_sha1": None if weights is None else digest(weights)}


def fallback_targets(y: np.ndarray, weights=None, seed: int = 0, tasks=None):
    """The fallback's median of training targets ``y`` and the targets its samples come from.

    With ``weights`` (one per row of ``y``) the median is the weighted one and the
    targets a weighted resample of the same size, so that drawing uniformly from
    them draws by weight; with ``tasks`` (one per row) each row's resampled target is
    one of its task's, so that the resample keeps every task's rows.

    Examples
    --------
    >>> y = np.array([1.0, 9.0, 9.0])
    >>> fallback_targets(y)[0]
    np.float64(9.0)
    >>> median, pool = fallback_targets(y, np.array([5.0, 1.0, 1.0]))
    >>> float(median), len(pool)
    (1.0, 3)
    """
    if weights is None:
        return np.median(y, axis=0), y.copy()
    median = np.quantile(y, 0.5, axis=0, weights=weights, method="inverted_cdf")
    rng = np.random.default_rng(seed)
    if tasks is None:
        return median, y[rng.choice(len(y), size=len(y), p=weights / weights.sum())]
    pool = np.empty_like(y)
    for task in np.unique(tasks):
        rows = np.flatnonzero(tasks == task)
        pool[rows] = y[rng.choice(rows, size=len(rows), p=weights[rows] / weights[rows].sum())]
    return median, pool


@contextlib.contextmanager
def unchanged_on_error(est, models=()):
    """Leave ``est`` as it was when the block raises (bad input found late, a missing
    backbone, KeyboardInterrupt): its attributes, and the trainable weights of ``models``
    (those the block trains in place).

    A refit that fails after it replaced the tokenizer or the codec would otherwise pair
    the new input pipeline with the old networks, and predict wrong numbers silently.

    Examples
    --------
    >>> class Est: pass
    >>> est = Est(); est.coef_ = 1
    >>> try:
    ...     with unchanged_on_error(est):
    ...         est.coef_, est.extra_ = 2, 3
    ...         raise ValueError("late")
    ... except ValueError:
    ...     pass
    >>> est.coef_, hasattr(est, "extra_")
    (1, False)
    """
    state = dict(vars(est))
    weights = [[(p, p.detach().clone()) for p in m.parameters() if p.requires_grad] for m in models]
    try:
        yield
    except BaseException:
        vars(est).clear()
        vars(est).update(state)
        with torch.no_grad():
            for pairs in weights:
                for p, saved in pairs:
                    p.copy_(saved)
        raise


class HeldOutStages:
    """RL, quantile calibration and the fallback test on the validation rows of a fitted
    :class:`~lmreg.LMRegressor`."""

    def _rl_config(self) -> RLConfig:
        """The stage's :class:`RLConfig` from ``rl_variant``, ``rl_reward``, ``temperature`` and
        ``rl_config``; a bad field is a ValueError naming it (checked in ``fit`` before SFT)."""
        settings = dict(self.rl_config or {})
        for name, param in (("variant", "rl_variant"), ("reward", "rl_reward")):
            if name in settings:
                raise ValueError(f"rl_config sets {name!r}; set it with the {param} parameter instead.")
        fields = [f.name for f in dataclasses.fields(RLConfig)]
        unknown = sorted(set(settings) - set(fields), key=repr)   # a key may be no string
        if unknown:
            raise ValueError(f"rl_config has no field(s) {unknown}; RLConfig fields: {fields}.")
        # RL trains the distribution predict decides from: the one at the estimator's temperature.
        settings.setdefault("temperature", self.temperature)
        try:
            return RLConfig(variant=self.rl_variant, reward=self.rl_reward, **settings)
        except ValueError as err:
            raise ValueError(f"invalid RL setting (rl_variant, rl_reward or rl_config): {err}") from None

    def _judging_rows(self, train_rows, val_rows, prompt_rows="train"):
        """RL prompts and the validation rows that judge RL and calibrate the quantiles."""
        return stage_rows(prompt_rows, train_rows, val_rows, np.random.default_rng(self.seed_ + 5))

    def _check_rl_data(self, y, train_rows, val_rows, refit=False) -> None:
        """What the RL stage needs of the data, checked before SFT rather than after it
        (``refit``: for ``reinforce``, which takes fit's rows and split as they were)."""
        if y.ndim != 1:
            one = ("refit the model on y.ravel() (reinforce takes fit's y as it was)" if refit else
                   "pass it 1-D (y.ravel())")
            fix = one if y.shape[1] == 1 else "set rl_steps=0 for several targets"
            raise ValueError(f"the RL stage supports one target per row as a 1-D y, but y has shape {y.shape}; "
                             f"{fix}.")
        config = self._rl_config()
        n_val = len(val_rows)
        if config.prompt_rows != "train" and n_val < 4:
            n = len(y)   # fewer than 20 rows hold none out; from 20 on, round(fraction * n) of them
            remedy = (f"there are {n} rows and fewer than 20 hold none out" if n < 20 else
                      f"4 are needed: {'refit with' if refit else 'raise'} validation_fraction "
                      f"{'at' if refit else 'to'} {math.ceil(350 / n) / 100:g} or more"
                      + (" (reinforce keeps fit's split)" if refit else ""))
            raise ValueError(f"rl_config prompt_rows={config.prompt_rows!r} draws RL prompts from the validation "
                             f"rows, but there are {n_val}: {remedy}; or use prompt_rows='train'.")
        reward = stage_reward(config)
        base = R.base_reward(reward)   # a name, function or partial
        prompted = y[self._judging_rows(train_rows, val_rows, config.prompt_rows)[0]]   # the rows rewarded
        names = {R.neg_log_error: "log", R.neg_relative_error: "relative"}
        if base in names:
            what = (f"rl_reward={names[base]!r}" if self.rl_reward == names[base] else
                    f"rl_reward ({base.__name__})")
        if base in names and getattr(self, "tasks_", None) is not None:
            # the stage rewards numbers in model units: each task's targets centred on its median
            raise ValueError(f"{what} compares numbers in the target's own units, but with task_column the RL "
                             "stage sees each task's targets standardised (centred on the task's median, "
                             "negative for half of them); use 'abs', 'squared', 'gaussian' or 'crps_loo'.")
        if prompted.min() < 0 and base is R.neg_log_error:
            raise ValueError(f"{what} needs targets >= 0, but y has {float(prompted.min())!r}; use "
                             "'abs' or 'relative' for signed targets.")
        zeros = int(np.sum(prompted == 0))
        if zeros and base is R.neg_relative_error and "eps" not in R._unwrap(reward)[1]:
            raise ValueError(f"{what} divides each error by |y|, but the RL prompts' y has {zeros} zero "
                             "target(s): their rewards, about -|pred| / 1e-8, would drive the whole stage; use "
                             "'abs', or functools.partial(neg_relative_error, eps=...) with a floor in target "
                             "units.")

    def _rl_check(self, enc, y, rows, weights=None):
        """Validation (the decision rule's loss per row: absolute error for the median and
        for the greedy decode of ``mode``, pinball for a quantile level, squared for the mean;
        CRPS; the samples) on ``rows``.

        ``n_samples`` samples per row, and the same seed before and after RL, so an
        unchanged model scores the same. ``weights`` (of all rows): the CRPS is their
        weighted mean (the errors stay per row; the stage weighs their mean).
        """
        sub = enc.subset(rows)
        samples = self._model_samples(sub, self.n_samples, self.seed_ + 3)
        if self.decision == "mode":   # predict's greedy decode, scored by absolute error as SFT's validation is
            point, rule = self._greedy_values(sub), "median"
        else:
            point, rule = self._decide(sub, samples, self.decision), self.decision
        score = float(np.average(crps_per_row(y[rows], samples), weights=None if weights is None else weights[rows]))
        return decision_errors(point, y[rows], rule), score, samples

    def _fit_rl(self, enc, y, train_rows, val_rows, deadline, weights=None):
        """RL after SFT on each member in turn, each kept only if it lowers the validation
        error of the whole ensemble (``RLConfig.guard_crps``: without raising its CRPS;
        ``keep_alpha``: significantly). ``weights`` (of all rows, ``sample_weight``):
        weighted prompts' losses and weighted check means.

        Each member gets an equal share of the time left when its stage starts (time a
        stage leaves goes to the next) and up to ``rl_steps`` steps; the check scores the
        members' mixture, what ``predict`` decodes from, so a member's RL stays only if
        it helps the ensemble. ``rl_result_`` is member 0's stage, ``member_rl_results_``
        every member's.

        Returns the validation rows that judged it (no RL prompt came from them) and
        the samples drawn there from the weights that stayed (None without such rows).
        """
        config = self._rl_config()
        prompts, check = self._judging_rows(train_rows, val_rows, config.prompt_rows)
        if not len(check):   # keep_alpha, guard_crps and checks were accepted and had nothing to act on
            warn_user("no validation rows judge the RL stage, so its last weights stay whether or not they "
                      "help (rl_config's keep_alpha, guard_crps and checks need them); set "
                      "validation_fraction > 0 with at least 20 rows.")
        members = self._members()
        for model in members:
            model.eval()
        args = (enc, y, self.codec_, self.grammar_, prompts, self.tokenizer_.pad_id, config, int(self.rl_steps))
        scored = []  # every check as (errors, crps, samples, seconds): the next stage starts from the kept one

        def score():
            t = time.monotonic()
            out = self._rl_check(enc, y, check, weights)
            scored.append((*out, time.monotonic() - t))
            return out

        guard = config.variant != "median" if config.guard_crps is None else bool(config.guard_crps)
        self.member_rl_results_, samples, base = [], None, None
        seconds = self._check_seconds(enc, y, check, deadline, weights)
        if seconds is not None and time.monotonic() + 2 * seconds > deadline:   # scoring alone would overrun
            warn_user(f"rl_steps={self.rl_steps} but two RL checks (of the starting weights and a closing one, "
                      f"n_samples={self.n_samples} on {len(check)} validation rows, about {seconds:.2g} s each) "
                      "would not end before the deadline: the RL stage was skipped. Raise max_time (of fit, "
                      "or of reinforce), or lower n_samples.")
            self.member_rl_results_ = [RLResult(kept=False, best_step=0, prompt_rows=config.prompt_rows)
                                       for _ in members]
            self.rl_result_ = self.member_rl_results_[0]
            return check, None
        for k, model in enumerate(members):
            now = time.monotonic()
            stage_end = None if deadline is None else now + (deadline - now) / (len(members) - k)
            result, samples = run_stage(model, args, score if len(check) else None, stage_end, guard_crps=guard,
                                        keep_alpha=config.keep_alpha, keep_test=config.keep_test,
                                        check_weights=None if weights is None else weights[check], base=base,
                                        seed=member_seed(self.seed_ + 7, k), device=self.device_, weights=weights)
            base = next((s for s in scored if s[2] is samples), None)
            result.prompt_rows = config.prompt_rows
            self.member_rl_results_.append(result)
            if self.verbose and len(members) > 1:
                outcome = "kept" if result.kept else "reverted" if result.steps else "no step in the time left"
                print(f"RL member {k}: {result.steps} steps, {outcome}")
        self.rl_result_ = self.member_rl_results_[0]
        if not any(r.steps for r in self.member_rl_results_):
            warn_user(f"rl_steps={self.rl_steps} but the RL stage took no step before its deadline; the "
                      "weights stay as they were. Raise max_time (of fit, or of reinforce).")
        return check, samples

    def _check_seconds(self, enc, y, check, deadline, weights=None):
        """About how long an RL check on ``check`` takes (``n_samples`` per row), timed on
        one decoding batch of it (at least :data:`PROBE_ROWS` rows), or None: no deadline,
        or ``check`` is one batch (the probe would be the check). A slow model or a large
        ``n_samples`` had run a stage of no step several times past its budget."""
        rows = max(PROBE_ROWS, rows_per_batch(self.n_samples, device=self.device_))
        if deadline is None or len(check) <= rows:
            return None
        t = time.monotonic()
        self._rl_check(enc, y, check[:rows], weights)
        return (time.monotonic() - t) * len(check) / rows

    def _fit_fallback(self, enc, y, train_rows, val_rows, weights=None, check=None) -> None:
        """``baseline_``, the (weighted) median of the training targets, and ``fallback_``
        (:meth:`_judge_fallback`)."""
        w_train = None if weights is None else weights[train_rows]
        # with task_column, each training row's task: a row falls back to its own task's targets
        self._train_tasks = None if enc.tasks is None else enc.tasks[train_rows]
        self.baseline_, self._train_targets = fallback_targets(y[train_rows], w_train, self.seed_, self._train_tasks)
        # the weighted mean and quantiles come from the rows and weights, not from the resample
        self._train_weighted = None if w_train is None else (y[train_rows].copy(), w_train.copy())
        self._judge_fallback(enc, y, val_rows, weights, check)

    def _judge_fallback(self, enc, y, val_rows, weights=None, check=None) -> None:
        """``fallback_``: whether the model failed to beat the fallback's constant (the
        training targets' median, or the quantile of a quantile decision, judged by the
        decision's loss) on held-out rows, or never trained. After an RL stage that kept
        its weights, the RL check's error on its ``check`` rows judges the final weights
        (of all members: it scores their mixture); else SFT's best validation error on
        the ``val_rows`` it scored (the constant's error is taken on the same rows), and
        for several members the error of their average there, which is what
        ``predict`` returns (member 0 alone may lose to the constant where the average
        beats it, or the other way round). A constant 1-D training target always falls
        back: its constant is exact."""
        w = (lambda rows: None) if weights is None else (lambda rows: weights[rows])
        tasks = (lambda rows: None) if enc.tasks is None else (lambda rows: enc.tasks[rows])
        results = getattr(self, "member_rl_results_", None) or []
        self.fallback_ = self.fit_result_.steps == 0   # an untrained network is never used
        if check is not None and len(check) and any(r.kept for r in results):
            rule = "median" if self.decision == "mode" else self.decision
            base = decision_errors(self._constant(len(check), rule, tasks(check)), y[check], rule)
            # the last stage ended on the weights that stay (each starts from the one before)
            self.fallback_ = not results[-1].val_mae < float(np.average(base, weights=w(check)))
        elif len(val_rows) and not self.fallback_:
            level = self._tree_level(self.decision)   # what SFT's validation decoded
            error = self.fit_result_.best_val_mae
            scored = getattr(self.fit_result_, "scored_rows", None)
            if scored is not None:   # the rows SFT scored (at most 1,000): the constant is judged there too
                val_rows = scored
            if len(self._members()) > 1:   # the members' average, decoded as SFT's validation did
                sub = enc.subset(val_rows)
                pred = self._greedy_values(sub) if level is None else self._decide(sub, None, self.decision)
                error = target_error(pred, y[val_rows], target_scale(y), w(val_rows), level)
            rule = "median" if level in (None, 0.5) else level
            base = np.broadcast_to(self._constant(len(val_rows), rule, tasks(val_rows)), y[val_rows].shape)
            base_error = target_error(base, y[val_rows], target_scale(y), w(val_rows), level)
            self.fallback_ = not error < base_error
        trained = self._train_weighted[0] if getattr(self, "_train_weighted", None) else self._train_targets
        if np.all(np.ptp(trained, axis=0) == 0):   # the rows', not a weighted resample's
            # one value to learn (per target column): the constant is exact, validation rows or not
            self.fallback_ = True

    def _calibrate(self, enc, y, rows, deadline, samples=None, weights=None) -> None:
        """Fit ``calibrator_`` on validation ``rows``: on ``samples`` drawn there already,
        else on new ones, chunk by chunk until ``deadline`` (at least one chunk);
        ``weights`` (of all rows): weighted conformal shifts. A model that fell back gets
        none: its quantiles are the training targets' own, for every row alike."""
        self.calibrator_ = None
        if self.calibration is None or self.fallback_ or len(rows) < MIN_CALIBRATION_ROWS:
            return
        if samples is None:
            samples = self._calibration_samples(enc, rows, deadline)
        if len(samples) >= MIN_CALIBRATION_ROWS:
            used = rows[:len(samples)]
            self.calibrator_ = ConformalQuantiles().fit(samples, y[used],
                                                        None if weights is None else weights[used])
            self._calibration_temperature = float(self.temperature)   # what the samples were drawn at

    def _calibration_samples(self, enc, rows, deadline) -> np.ndarray:
        """Samples of the first of ``rows``, chunk by chunk of :data:`CALIBRATION_CHUNK`
        sequences, while the next chunk is expected (at the rate of those before) to end
        before ``deadline``; the first :data:`MIN_CALIBRATION_ROWS` rows always, so a
        model is calibrated however late its training ended."""
        per = max(1, CALIBRATION_CHUNK // self.n_samples)
        ends = list(range(max(per, MIN_CALIBRATION_ROWS), len(rows), per)) + [len(rows)]
        draws, start, t0 = [], 0, time.monotonic()
        for end in ends:
            if start and deadline is not None:   # seconds per row so far, times the next chunk's rows
                now = time.monotonic()
                if now + (now - t0) / start * (end - start) > deadline:
                    break
            # The RL check's seed: a reverted RL stage leaves the same calibration.
            draws.append(self._draw(enc.subset(rows[start:end]), self.n_samples, self.seed_ + 3))
            start = end
        return np.concatenate(draws)

    def _check_weighting(self, weighted: bool, method: str) -> None:
        """A stage run on a fitted model gets ``sample_weight`` exactly when ``fit``'s depended
        on it (unequal weights, or zeros that dropped rows: the split depends on them)."""
        fitted = getattr(self, "_weighted", False)
        if weighted != fitted:
            raise ValueError(f"{method} needs the sample_weight of fit: this model was fitted "
                             f"{'with' if fitted else 'without'} it.")

    def _check_rl_weights(self, weights) -> None:
        """With ``sample_weight``, a keep test must be the weighted permutation test."""
        config = self._rl_config()
        if weights is not None and config.keep_alpha is not None and config.keep_test == "signed_rank":
            raise ValueError(WEIGHTED_RANK_TEST)

    def _refit_data(self, X, y, sample_weight, method: str):
        """Checked inputs of ``method`` run on a fitted model: encoded rows, model-unit targets,
        split, and the weights of ``fit`` (None when unweighted)."""
        check_is_fitted(self, "model_")
        self._validate_params()
        n_rows, X = self._check_X(X, reset=False)
        y = check_targets(y, n_rows)
        X, y, weights, weighted = weighted_rows(X, y, sample_weight)
        self._check_weighting(weighted, method)
        y = y if self.tasks_ is None else self.tasks_.transform(X, y)
        fitted = getattr(self, "_split_key", None)   # None: a model saved before it was kept
        if fitted is None:
            return self._encode(X), y, self._split(len(y)), weights
        now = split_key(y, weights, 0.0)
        if len(y) != fitted["rows"] or now["y_sha1"] != fitted["y_sha1"] or (
                "w_sha1" in fitted and now["w_sha1"] != fitted["w_sha1"]):
            got = (f"{len(y)} rows" if len(y) != fitted["rows"] else "targets that differ from fit's"
                   if now["y_sha1"] != fitted["y_sha1"] else "weights that differ from fit's")
            positive = " of positive weight" if self._weighted else ""
            raise ValueError(f"{method} needs the X, y and sample_weight of fit: it finds fit's validation "
                             f"rows again from them. fit had {fitted['rows']} rows{positive}; these give {got}.")
        # the split fit made: a validation_fraction set since then is for the next fit
        return self._encode(X), y, self._split(len(y), fitted["validation_fraction"]), weights

    @takes_turns
    def reinforce(self, X, y, max_time=None, sample_weight=None):
        """Run the RL stage on an already fitted model (SFT is not repeated).

        Uses the estimator's ``rl_steps``, ``rl_reward``, ``rl_variant`` and
        ``rl_config`` (change them with ``set_params``). The rows are split into RL
        prompts and validation rows as in ``fit``: the same ``X``, ``y`` and
        ``sample_weight`` give fit's split (other targets, weights or another row count
        are an error), so RL never trains on the rows that decide whether its weights
        are kept. The quantile
        calibration is then refitted on those rows, from the samples the check drew.

        Parameters
        ----------
        X, y : the training rows and targets, as in ``fit``
        max_time : float or None, default=None
            Wall-clock budget of this call in seconds (None: ``rl_steps`` only).
        sample_weight : array-like of shape (n_samples,), default=None
            The weights of ``fit`` (a model fitted with them needs them here, one
            fitted without refuses them): each prompt's loss counts its weight, and
            the keep-or-revert check and the calibration compare weighted means.

        Returns
        -------
        self

        Examples
        --------
        >>> from lmreg import LMRegressor
        >>> X, y = [f"n {i % 7}" for i in range(70)], [i % 7 for i in range(70)]
        >>> est = LMRegressor(max_time=None, max_epochs=2, random_state=0).fit(X, y)
        >>> est = est.set_params(rl_steps=2).reinforce(X, y)
        >>> est.rl_result_.steps, sorted(est.rl_result_.val_after)
        (2, ['crps', 'error'])
        """
        deadline = stage_deadline(max_time)
        if not self.rl_steps:
            raise ValueError("reinforce needs rl_steps > 0; set it with set_params(rl_steps=...).")
        enc, y, rows, weights = self._refit_data(X, y, sample_weight, "reinforce")
        self._check_rl_weights(weights)
        self._check_rl_data(y, *rows, refit=True)
        with self._torch_scope(), unchanged_on_error(self, self._members()):
            check, samples = self._fit_rl(enc, y, *rows, deadline, weights)
            if any(r.kept for r in self.member_rl_results_):   # new weights: judged against the constant again
                self._judge_fallback(enc, y, rows[1], weights, check)
            self._calibrate(enc, y, check, deadline, samples, weights)
        return self

    @takes_turns
    def calibrate(self, X, y, max_time=None, sample_weight=None):
        """Refit the quantile calibration on the validation rows of the training data.

        ``fit`` (and ``reinforce``) already do this; use it after changing
        ``calibration``, ``n_samples`` or ``temperature``, or on a model saved
        without calibration. ``X``, ``y`` and ``sample_weight`` must be those of
        ``fit`` (other targets, weights or another row count are an error) so that the
        rows are the held-out ones of fit's split (after an RL
        stage with prompts from validation rows, the half no prompt came from, as in
        ``fit``).

        Parameters
        ----------
        X, y : the training rows and targets, as in ``fit``
        max_time : float or None, default=None
            Wall-clock budget of this call in seconds: the rows are sampled chunk by
            chunk (1,024 sequences: 64 rows at ``n_samples=16``, at least 10) while the next
            chunk is expected to end in time; the first chunk always.
            None: every validation row (at most 512).
        sample_weight : array-like of shape (n_samples,), default=None
            The weights of ``fit`` (needed exactly when ``fit`` had them): weighted
            conformal shifts.

        Returns
        -------
        self

        Examples
        --------
        >>> from lmreg import LMRegressor
        >>> X, y = [f"n {i % 7}" for i in range(200)], [i % 7 for i in range(200)]
        >>> est = LMRegressor(max_time=None, max_epochs=3, random_state=0).fit(X, y)
        >>> est.set_params(calibration=None).calibrate(X, y).calibrator_ is None
        True
        >>> est.set_params(calibration="conformal").calibrate(X, y).calibrator_.y_.shape
        (20,)
        """
        deadline = stage_deadline(max_time)
        enc, y, (train_rows, val_rows), weights = self._refit_data(X, y, sample_weight, "calibrate")
        prompt_rows = "train" if self.rl_result_ is None else self.rl_result_.prompt_rows
        with self._torch_scope(), unchanged_on_error(self):
            self._calibrate(enc, y, self._judging_rows(train_rows, val_rows, prompt_rows)[1], deadline, None,
                            weights)
        return self
