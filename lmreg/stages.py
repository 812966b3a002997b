"""The stages that run on a fitted model's held-out rows: RL and quantile calibration.

Both need rows the SFT stage never trained on, and both are open to a fitted
estimator on their own (:meth:`~HeldOutStages.reinforce`,
:meth:`~HeldOutStages.calibrate`), so they live in this mixin of
:class:`~lmreg.LMRegressor` rather than inside ``fit``:

* **RL** (:mod:`lmreg.training.rl_stage`): prompts from the training rows (or half of
  the validation rows), judged on validation rows no prompt came from, with the
  estimator's own samples and decision rule; the RL weights stay only if they lower
  the validation error significantly (a paired test over the rows) without raising
  the validation CRPS.
* **Calibration** (:mod:`lmreg.calibration`): split-conformal shifts of the sample
  quantiles, fitted on those same judging rows. After RL it reuses the check's
  samples of the weights that stayed, so it costs no extra sampling.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .calibration import ConformalQuantiles
from .metrics import crps
from .training.rl_config import RLConfig
from .training.rl_stage import run_stage, stage_rows
from .validation import check_targets

#: Share of ``max_time`` kept for sampling the calibration rows after training.
CALIBRATION_SHARE = 0.02
#: Calibration rows are sampled in chunks of this many, until its time is up.
CALIBRATION_CHUNK = 64
#: Fewer validation rows than this leave the quantiles uncalibrated.
MIN_CALIBRATION_ROWS = 10


class HeldOutStages:
    """RL and quantile calibration on the validation rows of a fitted :class:`~lmreg.LMRegressor`."""

    def _rl_config(self) -> RLConfig:
        """The stage's :class:`RLConfig` from ``rl_variant``, ``rl_reward``, ``temperature`` and
        ``rl_config``; a bad field is a ValueError naming it (checked in ``fit`` before SFT)."""
        settings = dict(self.rl_config or {})
        for name, param in (("variant", "rl_variant"), ("reward", "rl_reward")):
            if name in settings:
                raise ValueError(f"rl_config sets {name!r}; set it with the {param} parameter instead.")
        fields = [f.name for f in dataclasses.fields(RLConfig)]
        unknown = sorted(set(settings) - set(fields))
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

    def _rl_check(self, enc, y, rows):
        """Validation (absolute error of the decision rule per row, CRPS, the samples) on ``rows``.

        ``n_samples`` samples per row, and the same seed before and after RL, so an
        unchanged model scores the same.
        """
        sub = enc.subset(rows)
        samples = self._model_samples(sub, self.n_samples, self.seed_ + 3)
        point = self._decide(sub, samples, "median" if self.decision == "mode" else self.decision)
        return np.abs(point - y[rows]), crps(y[rows], samples), samples

    def _fit_rl(self, enc, y, train_rows, val_rows, deadline):
        """RL after SFT, kept only if it lowers the validation error (``RLConfig.guard_crps``:
        without raising its CRPS; ``keep_alpha``: significantly).

        Returns the validation rows that judged it (no RL prompt came from them) and
        the samples drawn there from the weights that stayed (None without such rows).
        """
        config = self._rl_config()
        prompts, check = self._judging_rows(train_rows, val_rows, config.prompt_rows)
        self.model_.eval()
        args = (enc, y, self.codec_, self.grammar_, prompts, self.tokenizer_.pad_id, config, int(self.rl_steps))
        score = (lambda: self._rl_check(enc, y, check)) if len(check) else None
        guard = config.variant != "median" if config.guard_crps is None else bool(config.guard_crps)
        self.rl_result_, samples = run_stage(self.model_, args, score, deadline, guard_crps=guard,
                                             keep_alpha=config.keep_alpha, keep_test=config.keep_test,
                                             seed=self.seed_ + 7, device=self.device_)
        return check, samples

    def _calibrate(self, enc, y, rows, deadline, samples=None) -> None:
        """Fit ``calibrator_`` on validation ``rows``: on ``samples`` drawn there already,
        else on new ones, chunk by chunk until ``deadline`` (at least one chunk)."""
        self.calibrator_ = None
        if self.calibration is None or len(rows) < MIN_CALIBRATION_ROWS:
            return
        if samples is None:
            draws = []
            for chunk in np.array_split(rows, -(-len(rows) // CALIBRATION_CHUNK)):
                if draws and deadline is not None and time.monotonic() >= deadline:
                    break
                # The RL check's seed: a reverted RL stage leaves the same calibration.
                draws.append(self._draw(enc.subset(chunk), self.n_samples, self.seed_ + 3))
            samples = np.concatenate(draws)
        if len(samples) >= MIN_CALIBRATION_ROWS:
            self.calibrator_ = ConformalQuantiles().fit(samples, y[rows[:len(samples)]])

    def _refit_data(self, X, y, max_time):
        """Checked inputs of a stage run on a fitted model: encoded rows, model-unit targets, split."""
        check_is_fitted(self, "model_")
        self._validate_params()
        if max_time is not None and not max_time > 0:
            raise ValueError(f"max_time must be positive or None; got {max_time!r}.")
        y = check_targets(y, self._check_X(X, reset=False))
        y = y if self.tasks_ is None else self.tasks_.transform(X, y)
        return self._encode(X), y, self._split(len(y))

    def reinforce(self, X, y, max_time=None):
        """Run the RL stage on an already fitted model (SFT is not repeated).

        Uses the estimator's ``rl_steps``, ``rl_reward``, ``rl_variant`` and
        ``rl_config`` (change them with ``set_params``). The rows are split into RL
        prompts and validation rows as in ``fit``: the same ``X``, ``y`` and
        ``random_state`` give the same split, so RL never trains on the rows that
        decide whether its weights are kept. The quantile calibration is then
        refitted on those rows, from the samples the check drew.

        Parameters
        ----------
        X, y : the training rows and targets, as in ``fit``
        max_time : float or None, default=None
            Wall-clock budget of this call in seconds (None: ``rl_steps`` only).

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
        deadline = None if max_time is None else time.monotonic() + max_time
        if not self.rl_steps:
            raise ValueError("reinforce needs rl_steps > 0; set it with set_params(rl_steps=...).")
        enc, y, rows = self._refit_data(X, y, max_time)
        if len(self._members()) > 1:
            raise ValueError(f"reinforce trains one network; this model has {len(self._members())} members "
                             "(n_members). Fit it with n_members=1 to run RL.")
        if y.ndim != 1:
            raise ValueError("the RL stage supports one target per row; y is 2-D.")
        with self._threads():
            check, samples = self._fit_rl(enc, y, *rows, deadline)
            self._calibrate(enc, y, check, deadline, None if self.fallback_ else samples)
        return self

    def calibrate(self, X, y, max_time=None):
        """Refit the quantile calibration on the validation rows of the training data.

        ``fit`` (and ``reinforce``) already do this; use it after changing
        ``calibration``, ``n_samples`` or ``temperature``, or on a model saved
        without calibration. ``X``, ``y`` and ``random_state`` must be those of
        ``fit`` so that the rows are the held-out ones.

        Examples
        --------
        >>> from lmreg import LMRegressor
        >>> X, y = [f"n {i % 7}" for i in range(200)], [i % 7 for i in range(200)]
        >>> est = LMRegressor(max_time=None, max_epochs=1, random_state=0).fit(X, y)
        >>> est.set_params(calibration=None).calibrate(X, y).calibrator_ is None
        True
        >>> est.set_params(calibration="conformal").calibrate(X, y).calibrator_.y_.shape
        (20,)
        """
        deadline = None if max_time is None else time.monotonic() + max_time
        enc, y, (train_rows, val_rows) = self._refit_data(X, y, max_time)
        with self._threads():
            self._calibrate(enc, y, self._judging_rows(train_rows, val_rows)[1], deadline)
        return self
