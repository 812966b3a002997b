"""Metrics for predictive distributions: CRPS from samples, interval and quantile coverage.

Point metrics (R^2, MAE, RMSE, pinball loss...) come from :mod:`sklearn.metrics`.

Examples
--------
>>> from lmreg.metrics import crps, interval_coverage
>>> crps([0.0], [[0.0, 1.0]])
0.25
>>> interval_coverage([1.0, 5.0], [0.0, 0.0], [2.0, 2.0])
0.5
"""

from __future__ import annotations

import numpy as np

__all__ = ["crps", "crps_per_row", "interval_coverage", "quantile_coverage"]


def _vector(name, values, allow_inf=False) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}.")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty.")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN{'' if allow_inf else ' or infinite'} "
                         f"value(s) (first at index {int(np.flatnonzero(bad)[0])}).")
    return arr


def _matrix(name, values, n_rows: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (n_rows, n_columns); got shape {arr.shape}.")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n_rows}.")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def crps_per_row(y_true, samples) -> np.ndarray:
    """CRPS of each row's empirical predictive distribution (lower is better).

    Uses the energy form ``E|X - y| - 0.5 E|X - X'|``, exact for the empirical
    distribution of the ``S`` samples, with ``E|X - X'|`` from the sorted samples:
    ``(2 / S^2) * sum_i (2i - S - 1) x_(i)`` (1-based ``i``), so O(S log S) per row.

    Parameters
    ----------
    y_true : array-like of shape (n_rows,)
    samples : array-like of shape (n_rows, n_samples)

    Returns
    -------
    ndarray of shape (n_rows,)

    Raises
    ------
    ValueError
        On a shape mismatch, an empty input, NaN or infinite values.

    Examples
    --------
    >>> crps_per_row([0.0, 2.0], [[0.0, 1.0], [5.0, 5.0]])
    array([0.25, 3.  ])
    """
    y = _vector("y_true", y_true)
    x = np.sort(_matrix("samples", samples, len(y)), axis=1)
    S = x.shape[1]
    # rows near float64's limit are scaled by a power of two (exact): the weighted sum and
    # |x - y| overflowed to inf there, and inf - inf is NaN
    big = np.maximum(np.abs(x).max(axis=1), np.abs(y))
    scale = np.where(big > 2.0**960, np.ldexp(1.0, np.frexp(big)[1] - 1), 1.0)   # |x / scale| < 2
    x, y = x / scale[:, None], y / scale
    # centred on each row's median sample: CRPS does not move with a shift, and the weighted
    # sum of raw values far from 0 (timestamps, 1e15 + noise) cancelled away its digits
    centre = x[:, S // 2]
    x, y = x - centre[:, None], y - centre
    weights = 2.0 * np.arange(1, S + 1) - S - 1
    spread = (2.0 / S**2) * (x @ weights)  # E|X - X'|
    return scale * (np.mean(np.abs(x - y[:, None]), axis=1) - 0.5 * spread)


def crps(y_true, samples) -> float:
    """Mean CRPS over rows; see :func:`crps_per_row`. A point mass gives the absolute error.

    Examples
    --------
    >>> crps([1.0, 2.0], [[1.5], [0.0]])
    1.25
    """
    return float(np.mean(crps_per_row(y_true, samples)))


def interval_coverage(y_true, lower, upper) -> float:
    """Share of ``y_true`` inside the closed interval ``[lower, upper]``.

    Bounds may be infinite (one-sided intervals), not NaN.

    Raises
    ------
    ValueError
        When shapes differ, a value is NaN, or some ``lower > upper``.

    Examples
    --------
    >>> interval_coverage([0.0, 1.0, 2.0, 3.0], [0, 0, 0, 0], [1, 1, 3, 2])
    0.75
    """
    y = _vector("y_true", y_true)
    lo = _vector("lower", lower, allow_inf=True)
    hi = _vector("upper", upper, allow_inf=True)
    if not len(y) == len(lo) == len(hi):
        raise ValueError(f"y_true, lower, upper lengths differ: {len(y)}, {len(lo)}, {len(hi)}.")
    crossed = lo > hi
    if crossed.any():
        i = int(np.flatnonzero(crossed)[0])
        raise ValueError(f"lower > upper in {int(crossed.sum())} row(s); "
                         f"first at index {i}: {lo[i]} > {hi[i]}.")
    return float(np.mean((lo <= y) & (y <= hi)))


def quantile_coverage(y_true, quantile_predictions, quantiles) -> dict:
    """Observed share of ``y_true <= prediction`` for each quantile level (reliability).

    A calibrated model's share for level ``q`` is close to ``q``.

    Parameters
    ----------
    y_true : array-like of shape (n_rows,)
    quantile_predictions : array-like of shape (n_rows, n_quantiles)
    quantiles : array-like of shape (n_quantiles,), levels in [0, 1]

    Returns
    -------
    dict
        ``{q: share}`` with float keys, in the order given.

    Examples
    --------
    >>> quantile_coverage([1.0, 2.0, 3.0, 4.0], [[0, 2]] * 4, [0.1, 0.9])
    {0.1: 0.0, 0.9: 0.5}
    """
    y = _vector("y_true", y_true)
    q = _vector("quantiles", quantiles)
    pred = _matrix("quantile_predictions", quantile_predictions, len(y))
    if pred.shape[1] != len(q):
        raise ValueError(f"quantile_predictions has {pred.shape[1]} columns but {len(q)} quantile levels.")
    if ((q < 0) | (q > 1)).any():
        raise ValueError(f"quantile levels must be in [0, 1]; got {q.tolist()}.")
    if len(np.unique(q)) != len(q):
        raise ValueError(f"quantile levels must be distinct; got {q.tolist()}.")
    return {float(level): float(np.mean(y <= pred[:, j])) for j, level in enumerate(q)}
