"""Split-conformal calibration of the quantiles drawn from the model's samples.

A language model trained by cross-entropy, and more so after RL, puts too much mass
near its favourite numbers: the 10%-90% range of its samples held 34-82% of the test
targets on the bundled suite, not 80%. The remedy is conformalized quantile
regression (CQR: Romano, Patterson & Candes, NeurIPS 2019), one level at a time: on
validation rows the model never trained on, score each row by how far its target
lies above the sample quantile at level ``tau``, ``r_i = y_i - q_tau(x_i)``, and
move that quantile by the order statistic of the scores that keeps the share of
targets below it at ``tau``: ``q'_tau(x) = q_tau(x) + r_(k)``.

Levels below one half take the ``floor((n + 1) tau)``-th smallest score and levels
from one half up the ``ceil((n + 1) tau)``-th, so a central interval built from two
calibrated quantiles covers at least its nominal share of exchangeable rows, up to
the ``1 / (n + 1)`` granularity (split conformal's finite-sample guarantee, one
side at a time). Any level can be asked for after fitting: the calibrator keeps the
validation samples.

Shifts are additive, in the model's target units. Scores scaled by each row's own
sample spread (normalised conformal scores) were measured too and did worse: rows
whose samples all agree (memorised neighbours) get a near-zero spread and blow the
scaled scores up (diabetes: interval score 928 vs 266 additive, see
docs/benchmarks.md).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.normal(size=400)
>>> too_narrow = 0.3 * rng.normal(size=(400, 32))     # the model's samples: too sharp
>>> cal = ConformalQuantiles().fit(too_narrow, y)
>>> y_new = rng.normal(size=2000)
>>> q = cal.quantiles(0.3 * rng.normal(size=(2000, 32)), [0.1, 0.9])
>>> round(float(np.mean((q[:, 0] <= y_new) & (y_new <= q[:, 1]))), 2)   # raw: 0.28
0.8
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ConformalQuantiles", "calibrated_order_statistic"]

#: The levels that bound each asked level's calibrated quantile from the median
#: outwards (see :meth:`ConformalQuantiles.quantiles`).
MONOTONE_GRID = np.round(np.arange(1, 100) / 100, 2)
_MEDIAN = int(np.flatnonzero(MONOTONE_GRID == 0.5)[0])

def calibrated_order_statistic(scores: np.ndarray, level: float, weights=None) -> np.ndarray:
    """The conformal shift for one quantile level, along axis 0 of ``scores``.

    ``floor((n + 1) level)``-th smallest score below one half, the
    ``ceil((n + 1) level)``-th from one half up, clipped to the observed scores.
    With row ``weights`` (scaled to mean 1, so they sum to ``n``) a row counts
    its weight instead of one: below one half the largest score whose cumulative
    weight is at most ``(n + 1) level``, from one half up the smallest whose
    cumulative weight reaches it; equal weights give the unweighted statistic.
    Rows of weight 0 do not count (neither in ``n`` nor as a candidate score).

    Examples
    --------
    >>> calibrated_order_statistic(np.arange(1.0, 10.0), 0.9)   # ceil(10 * 0.9) = 9th
    np.float64(9.0)
    >>> calibrated_order_statistic(np.arange(1.0, 10.0), 0.25)  # floor(10 * 0.25) = 2nd
    np.float64(2.0)
    >>> w = np.array([1.0] * 8 + [10.0])                          # the largest score weighs 10
    >>> calibrated_order_statistic(np.arange(1.0, 10.0), 0.5, w)  # cumulative 8 < 9 <= 18
    np.float64(9.0)
    """
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        scores, weights = scores[weights > 0], weights[weights > 0]
    n = scores.shape[0]
    target = (n + 1) * level
    tol = 1e-9 * (n + 1)   # (n + 1) level rounds: 100 * 0.55 is 55.00000000000001, whose ceil is not 55
    if weights is None or np.all(weights == weights.flat[0]):
        k = math.floor(target + tol) if level < 0.5 else math.ceil(target - tol)
        return np.sort(scores, axis=0)[min(max(k, 1), n) - 1]
    order = np.argsort(scores, axis=0, kind="stable")
    w = np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(w[order] * (n / w.sum()), axis=0)        # per column when scores are 2-D
    # (likewise a cumulative weight that reaches the target exactly may round below it)
    k = (cum <= target + tol).sum(axis=0) if level < 0.5 else (cum < target - tol).sum(axis=0) + 1
    k = np.clip(k, 1, n) - 1
    return np.take_along_axis(np.sort(scores, axis=0), np.expand_dims(k, 0), axis=0)[0]


class ConformalQuantiles:
    """Quantiles of predictive samples, shifted to hold their level on held-out rows.

    Fit on samples and targets of rows the model was not trained on; then
    :meth:`quantiles` turns any rows' samples into calibrated quantiles.

    Attributes
    ----------
    samples_ : ndarray of shape (n_rows, n_samples) or (n_rows, n_samples, n_targets)
        The validation samples (float64).
    y_ : ndarray of shape (n_rows,) or (n_rows, n_targets)
    weights_ : ndarray of shape (n_rows,) or None
        Row weights (``sample_weight``) of the weighted conformal shifts.

    Examples
    --------
    >>> import numpy as np
    >>> cal = ConformalQuantiles().fit(np.zeros((9, 4)), np.arange(9.0) - 4)
    >>> cal.shifts([0.1, 0.5, 0.9]).tolist()   # targets -4..4, samples all 0
    [-4.0, 0.0, 4.0]
    """

    def fit(self, samples, y, sample_weight=None) -> ConformalQuantiles:
        """Keep the validation ``samples`` (n_rows, n_samples[, n_targets]), targets ``y`` and
        row weights (None: every row counts once)."""
        samples = np.asarray(samples, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if samples.ndim != y.ndim + 1 or samples.shape[0] != y.shape[0] or samples.shape[2:] != y.shape[1:]:
            raise ValueError(f"samples of shape {samples.shape} do not match targets of shape {y.shape}: "
                             "expected (n_rows, n_samples[, n_targets]) and (n_rows[, n_targets]).")
        if len(y) < 2:
            raise ValueError(f"calibration needs at least 2 rows; got {len(y)}.")
        if not (np.isfinite(samples).all() and np.isfinite(y).all()):
            raise ValueError("calibration samples and targets must be finite.")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (len(y),):
                raise ValueError(f"calibration weights of shape {sample_weight.shape} do not match "
                                 f"{len(y)} rows.")
            if not (np.isfinite(sample_weight).all() and (sample_weight >= 0).all() and sample_weight.sum() > 0):
                raise ValueError("calibration weights must be finite, non-negative and not all 0.")
        self.samples_, self.y_, self.weights_ = samples, y, sample_weight
        return self

    def shifts(self, levels) -> np.ndarray:
        """The calibrated shift of each level's sample quantile.

        Returns
        -------
        ndarray of shape (n_levels,) or (n_levels, n_targets)
        """
        levels = np.asarray(levels, dtype=float).ravel()
        q = np.quantile(self.samples_, levels, axis=1)   # (n_levels, n_rows[, T])
        return np.stack([calibrated_order_statistic(self.y_ - q[j], tau, self.weights_)
                         for j, tau in enumerate(levels)])

    def quantiles(self, samples, levels) -> np.ndarray:
        """Calibrated quantiles of new rows' samples.

        Parameters
        ----------
        samples : array-like of shape (n_rows, n_samples[, n_targets])
        levels : sequence of float in (0, 1)

        Returns
        -------
        ndarray of shape (n_rows, n_levels[, n_targets]); non-decreasing along
        axis 1 in the order of increasing level.

        Each level's shift is its own, so shifted quantiles can cross. They are
        repaired outwards from the median, which keeps each side's conformal
        coverage. The :data:`MONOTONE_GRID` levels (0.01, ..., 0.99) are repaired
        first: from 0.5 up each takes the highest shifted quantile of the grid
        levels from 0.5 to it, below 0.5 the lowest. A level from 0.5 up is then
        raised to the repaired value of the grid level at or below it (a quantile
        only moves away from the median there) and lowered to that of the grid
        level at or above it (whose coverage is higher still); a level below 0.5
        likewise, mirrored. So a level's value does not depend on the other levels
        asked for, levels asked in separate calls do not cross, and the upper
        bound of an interval is never below the calibrated median. The one
        exception is two asked levels between the same two grid levels: the
        farther one is moved out to the nearer one.
        """
        samples = np.asarray(samples, dtype=np.float64)
        levels = np.asarray(levels, dtype=float).ravel()
        every = np.concatenate([levels, MONOTONE_GRID])
        out = np.moveaxis(np.quantile(samples, every, axis=1), 0, 1) + self.shifts(every)[None]
        out, grid = out[:, :len(levels)], out[:, len(levels):]
        # the grid repaired outwards from the median: non-decreasing over 0.01 .. 0.99
        repaired = np.concatenate([np.minimum.accumulate(grid[:, _MEDIAN::-1], axis=1)[:, :0:-1],
                                   np.maximum.accumulate(grid[:, _MEDIAN:], axis=1)], axis=1)
        for j, tau in enumerate(levels):
            below = np.searchsorted(MONOTONE_GRID, tau, "right") - 1   # the grid level at or below tau
            above = np.searchsorted(MONOTONE_GRID, tau, "left")        # at or above it
            outer, inner = (below, above) if tau < 0.5 else (above, below)
            # moved out to the inner grid neighbour's value (keeps this side's coverage), and in
            # no farther than the outer one's (whose coverage is higher still), so a level between
            # two grid levels stays between their values whichever other levels are asked
            out[:, j] = (np.minimum if tau < 0.5 else np.maximum)(out[:, j], repaired[:, inner])
            if 0 <= outer < len(MONOTONE_GRID):
                out[:, j] = (np.maximum if tau < 0.5 else np.minimum)(out[:, j], repaired[:, outer])
        order = np.argsort(levels, kind="stable")
        high, low = order[levels[order] >= 0.5], order[levels[order] < 0.5][::-1]
        out[:, high] = np.maximum.accumulate(out[:, high], axis=1)   # two asked levels in one grid step
        out[:, low] = np.minimum.accumulate(out[:, low], axis=1)
        return out
