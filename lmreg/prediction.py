"""What a fitted :class:`~lmreg.LMRegressor` predicts: samples, decision rules, quantiles.

Every method here reads the fitted model through the same path: the rows' columns
matched to ``fit``'s (:func:`~lmreg.validation.check_features`), encoded, then either
sampled (:meth:`~PredictiveDistribution.sample`, the quantiles, ``return_std``) or
decoded exactly down the token tree (the median and quantile-level decisions), in model
units until :meth:`~PredictiveDistribution._unscale` brings per-task targets back. A
model that fell back (``fallback_``) predicts the training targets' median (mean,
quantile: what the decision rule asks) and samples the training targets.
"""

from __future__ import annotations

import numpy as np
from sklearn import get_config
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from ._warnings import warn_user
from .batching import Encoded
from .decoding import check_n_samples
from .validation import PARAMETER_CONSTRAINTS, refuse_flags


class PredictiveDistribution:
    """``predict``, ``sample`` and ``predict_quantiles`` of :class:`~lmreg.LMRegressor`."""

    def _draw(self, enc: Encoded, n_samples: int, seed: int) -> np.ndarray:
        """Samples in model units (from the training targets when ``fallback_``)."""
        if self.fallback_:
            # one draw for every row (of a task): the fallback's distribution does not depend
            # on the row, so neither do a row's samples on its batch (as for the model's own draws)
            trained = getattr(self, "_train_tasks", None)
            if enc.tasks is None or trained is None:
                pick = np.random.default_rng(seed).integers(0, len(self._train_targets), size=n_samples)
                draws = self._train_targets[pick]
                return np.broadcast_to(draws, (len(enc),) + draws.shape).copy()
            out = np.empty((len(enc), n_samples) + self._train_targets.shape[1:])
            for k, task in enumerate(sorted(self.tasks_.center_)):   # a task's draws: of its seed alone
                rows, own = enc.tasks == task, trained == task
                if rows.any():
                    pool = self._train_targets[own] if own.any() else self._train_targets
                    out[rows] = pool[np.random.default_rng([seed, k]).integers(0, len(pool), size=n_samples)]
            return out
        return self._model_samples(enc, n_samples, seed)

    def _check_predict_params(self) -> None:
        """The fitted check, and the parameters prediction reads: ``set_params`` after ``fit``
        may have changed them (a temperature of 0 would decode garbage; ``calibration=False``
        would keep the calibrated quantiles, which only None turns off)."""
        check_is_fitted(self, "model_")
        names = ("n_samples", "decision", "temperature", "quantile_decoding", "n_threads", "calibration")
        params = {k: getattr(self, k) for k in names}
        if not get_config()["skip_parameter_validation"]:   # as fit: scikit-learn's switch
            validate_parameter_constraints({k: PARAMETER_CONSTRAINTS[k] for k in names},   # decision: a rule or a level
                                           params, caller_name=type(self).__name__)
        refuse_flags(params, type(self).__name__)

    def _tree_level(self, rule):
        """The quantile level ``rule`` asks for when it is decoded exactly on the token tree, else None."""
        codec = self.codec_
        if codec.name == "multi" and len(codec.codecs) == 1:   # a y of shape (n, 1): one target
            codec = codec.codecs[0]
        if self.quantile_decoding != "tree" or codec.name != "digits" or rule in ("mean", "mode"):
            return None
        return 0.5 if rule == "median" else float(rule)

    def sample(self, X, n_samples=None, random_state=None) -> np.ndarray:
        """Draw target samples from the model's predictive distribution.

        Parameters
        ----------
        X : rows in any supported input form
        n_samples : int, default=None
            Samples per row (None: the estimator's ``n_samples``).
        random_state : int, RandomState instance or None, default=None
            None: the fitted model's own seed, so every call returns the same draws, the
            ones ``predict(return_std=True)`` and ``predict_quantiles`` use. Pass
            different seeds for independent draws (e.g. to pool more samples).

        Returns
        -------
        ndarray of shape (n_rows, n_samples), or (n_rows, n_samples, n_targets) for a 2-D ``y``

        Examples
        --------
        >>> from lmreg import LMRegressor
        >>> est = LMRegressor(max_time=3, random_state=0).fit([f"n {i}" for i in range(20)], range(20))
        >>> bool((est.sample(["n 3"], 8) == est.sample(["n 3"], 8)).all())
        True
        >>> est.sample(["n 3"], 8, random_state=1).shape
        (1, 8)
        """
        self._check_predict_params()
        X = self._check_X(X, reset=False)[1]
        S = self.n_samples if n_samples is None else check_n_samples(n_samples)
        seed = self.seed_ + 1 if random_state is None else int(check_random_state(random_state).randint(2**31 - 1))
        with self._torch_scope(seeded=False):
            return self._unscale(X, self._draw(self._encode(X, predicting=True), S, seed))

    def _unscale(self, X, values: np.ndarray) -> np.ndarray:
        """Model units -> target units (per-task scaling when ``task_column`` is set)."""
        tasks = getattr(self, "tasks_", None)
        return values if tasks is None else tasks.inverse(X, values)

    def predict(self, X, return_std=False):
        """Predict one number per row with the configured decision rule.

        Parameters
        ----------
        X : rows in any supported input form
        return_std : bool, default=False
            Also return the standard deviation of the predictive samples.

        Returns
        -------
        y_pred : ndarray of shape (n_rows,) (``(n_rows, n_targets)`` for a 2-D ``y``)
        y_std : ndarray of the same shape, only when ``return_std``
        """
        self._check_predict_params()
        if self.decision == "mode":
            pred = self._greedy(X)
            return (pred, _std(self.sample(X))) if return_std else pred
        X = self._check_X(X, reset=False)[1]
        enc = self._encode(X, predicting=True)
        with self._torch_scope(seeded=False):  # model units until the end
            need = return_std or not self.fallback_ and self._tree_level(self.decision) is None
            samples = self._draw(enc, self.n_samples, self.seed_ + 1) if need else None
            if self.fallback_:
                pred = self._constant(len(enc), self.decision, enc.tasks)
            else:
                pred = self._decide(enc, samples, self.decision)
        if not return_std:
            return self._unscale(X, pred)
        return self._unscale(X, pred), _std(self._unscale(X, samples))

    def _constant(self, n: int, rule="median", tasks=None) -> np.ndarray:
        """The fallback's prediction for ``n`` rows: the training targets' median (also for
        ``mode``), mean or quantile, as ``rule`` asks (weighted ones with ``sample_weight``);
        with each row's task (``tasks``), of that task's training targets (of all of them
        for a task without training rows)."""
        trained = getattr(self, "_train_tasks", None)
        if tasks is None or trained is None:
            value = self._statistic(rule)
            return np.tile(value, (n,) + (1,) * np.ndim(value)).astype(float)
        out = np.empty((n,) + np.shape(self.baseline_))   # one value per row (of a y of shape (n, 1): one column)
        for task in np.unique(tasks):
            rows = trained == task
            out[tasks == task] = self._statistic(rule, rows if rows.any() else None)
        return out

    def _statistic(self, rule, rows=None):
        """The fallback's ``rule`` of the training targets (of the training ``rows`` only, a mask)."""
        targets, weights = getattr(self, "_train_weighted", None) or (self._train_targets, None)
        median = self.baseline_
        if rows is not None:
            targets, weights = targets[rows], None if weights is None else weights[rows]
            median = np.median(targets, axis=0) if weights is None else np.quantile(
                targets, 0.5, axis=0, weights=weights, method="inverted_cdf")
        if rule in ("median", "mode"):
            return median
        if rule == "mean":
            # about the median: exact for a constant target (0.1 * 60 / 60 is 0.09999999999999996)
            return median + np.average(targets - median, axis=0, weights=weights)
        if weights is None:
            return np.quantile(targets, float(rule), axis=0)
        # as the weighted median (baseline_) is taken
        return np.quantile(targets, float(rule), axis=0, weights=weights, method="inverted_cdf")

    def _greedy(self, X) -> np.ndarray:
        X = self._check_X(X, reset=False)[1]
        enc = self._encode(X, predicting=True)
        if self.fallback_:
            return self._unscale(X, self._constant(len(enc), tasks=enc.tasks))
        with self._torch_scope(seeded=False):
            return self._unscale(X, self._greedy_values(enc))

    def predict_quantiles(self, X, quantiles=(0.1, 0.5, 0.9), return_samples=False):
        """Quantiles of the predictive distribution, from ``n_samples`` samples per row
        (a model that fell back: the training targets' quantiles).

        With ``calibration="conformal"`` each level's sample quantile is shifted by
        what made it hold its level on the validation rows (``calibrator_``), so
        the 0.5 level need not equal ``predict``'s median; ``calibration=None``
        (set after fitting too) gives the raw sample quantiles. The shifts were
        fitted on quantiles of ``n_samples`` samples at ``temperature``: after
        changing either, ``calibrate`` refits them (another ``n_samples`` or
        ``temperature`` warns).

        Parameters
        ----------
        X : rows in any supported input form
        quantiles : sequence of float in (0, 1), default=(0.1, 0.5, 0.9)
        return_samples : bool, default=False
            Also return the samples the quantiles came from (what ``sample(X)``
            returns), e.g. for the CRPS or the raw coverage, without drawing twice.

        Returns
        -------
        quantiles : ndarray of shape (n_rows, len(quantiles)) (``(n_rows, len(quantiles),
            n_targets)`` for a 2-D ``y``), non-decreasing along axis 1 when ``quantiles``
            is sorted.
        samples : ndarray of shape (n_rows, n_samples[, n_targets]), only with ``return_samples``

        Examples
        --------
        >>> from lmreg import LMRegressor
        >>> est = LMRegressor(max_time=3, random_state=0).fit([f"n {i}" for i in range(20)], range(20))
        >>> est.predict_quantiles(["n 3"], [0.1, 0.9]).shape
        (1, 2)
        >>> q, samples = est.predict_quantiles(["n 3"], [0.1, 0.9], return_samples=True)
        >>> samples.shape == est.sample(["n 3"]).shape
        True
        """
        try:
            if isinstance(quantiles, (set, frozenset, dict, str)):   # no order, or not levels at all
                raise TypeError
            q = np.asarray(quantiles, dtype=float).ravel()
        except (TypeError, ValueError):   # strings, ragged lists
            q = None
        if q is None or q.size == 0 or not np.all((q > 0) & (q < 1)):
            raise ValueError(f"quantiles must be a level or a sequence of levels in (0, 1); got {quantiles!r}.")
        self._check_predict_params()
        X = self._check_X(X, reset=False)[1]
        enc = self._encode(X, predicting=True)
        with self._torch_scope(seeded=False):  # model units (per-task standardised); target units at the end
            samples = self._draw(enc, self.n_samples, self.seed_ + 1)
        # calibration=None set after fit means raw quantiles, as the parameter says
        calibrator = getattr(self, "calibrator_", None) if self.calibration is not None else None
        if calibrator is not None and not self.fallback_ and calibrator.samples_.shape[1] != self.n_samples:
            warn_user(f"the quantile calibration was fitted on quantiles of {calibrator.samples_.shape[1]} "
                      f"samples, these are of n_samples={self.n_samples}: call calibrate(X, y) on the "
                      "training rows to refit it for the new n_samples.")
        fitted_at = getattr(self, "_calibration_temperature", None)
        if calibrator is not None and not self.fallback_ and fitted_at not in (None, float(self.temperature)):
            warn_user(f"the quantile calibration was fitted on samples at temperature={fitted_at:g}, these "
                      f"are at temperature={self.temperature:g}: call calibrate(X, y) on the training rows "
                      "to refit it for the new temperature.")
        if self.fallback_:   # the training targets' own quantiles, not 16 draws' (calibrated or not)
            out = self._unscale(X, np.stack([self._constant(len(samples), level, enc.tasks) for level in q], axis=1))
        elif calibrator is None:
            out = self._unscale(X, np.moveaxis(np.quantile(samples, q, axis=1), 0, 1))
        else:
            out = self._unscale(X, calibrator.quantiles(samples, q))
        return (out, self._unscale(X, samples)) if return_samples else out


def _std(samples: np.ndarray) -> np.ndarray:
    """Standard deviation over the samples (axis 1 of ``[n, n_samples(, n_targets)]``),
    computed on values divided by their largest magnitude: squares of numbers beyond
    ~1e154 overflow to inf.

    >>> _std(np.array([[1e300, -1e300], [1.0, 3.0]])).tolist()
    [1e+300, 1.0]
    >>> _std(np.array([[[2.0, 20.0], [4.0, 40.0]]])).tolist()
    [[1.0, 10.0]]
    """
    scale = np.abs(samples).max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    return (samples / scale).std(axis=1) * scale[:, 0]
