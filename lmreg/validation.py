"""Checks of what reaches the estimator: its parameters, the rows, the targets, the device."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import torch

from .decoding import check_rule
from .serialize import to_frame
from .training.rl_stage import KEEP_TESTS


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; a CUDA request without CUDA is an error.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return dev


def check_targets(y, n_rows: int) -> np.ndarray:
    """``y`` as a finite float64 array of 1 or 2 dimensions with ``n_rows`` rows.

    Examples
    --------
    >>> check_targets([1, 2, 3], 3)
    array([1., 2., 3.])
    >>> check_targets([1.0, float("nan")], 2)
    Traceback (most recent call last):
    ...
    ValueError: y contains 1 NaN value(s) (first at row 1); targets must be finite.
    """
    if y is None:
        raise ValueError("LMRegressor requires y to be passed, but the target y is None.")
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if np.iscomplexobj(y):
        raise ValueError("Complex data not supported: y must be real numbers.")
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"y must be numeric; could not convert it to float ({err}).") from None
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] == 0):
        raise ValueError(f"y must be 1-D (one target per row) or 2-D (several targets per row); "
                         f"got shape {y.shape}.")
    if len(y) != n_rows:
        raise ValueError(f"X and y have inconsistent lengths: X has {n_rows} rows, y has {len(y)}.")
    if len(y) < 2:
        raise ValueError(f"at least 2 samples are required to fit; got {len(y)} sample.")
    bad = ~np.isfinite(y)
    if bad.any():
        kind = "NaN" if np.isnan(y[bad]).any() else "infinite"
        raise ValueError(f"y contains {int(bad.sum())} {kind} value(s) (first at row "
                         f"{int(np.flatnonzero(bad)[0])}); targets must be finite.")
    return y


def validate_params(est) -> None:
    """Raise a ValueError naming the first invalid parameter of an :class:`~lmreg.LMRegressor`.

    Examples
    --------
    >>> from lmreg import LMRegressor
    >>> validate_params(LMRegressor(calibration="isotonic"))
    Traceback (most recent call last):
    ...
    ValueError: calibration must be 'conformal' or None; got 'isotonic'.
    """
    check_rule(est.decision)
    if est.max_time is not None and not est.max_time > 0:
        raise ValueError(f"max_time must be positive or None; got {est.max_time!r}.")
    if est.quantile_decoding not in ("tree", "samples"):
        raise ValueError(f"quantile_decoding must be 'tree' or 'samples'; got {est.quantile_decoding!r}.")
    if est.calibration not in ("conformal", None):
        raise ValueError(f"calibration must be 'conformal' or None; got {est.calibration!r}.")
    if not 0 <= est.validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1); got {est.validation_fraction!r}.")
    if not isinstance(est.rl_steps, (int, np.integer)) or est.rl_steps < 0:
        raise ValueError(f"rl_steps must be a non-negative integer; got {est.rl_steps!r}.")
    if est.rl_config is not None and not isinstance(est.rl_config, dict):
        raise ValueError(f"rl_config must be a dict of RLConfig fields or None; got {est.rl_config!r}.")
    rl_config = est.rl_config or {}
    alpha = rl_config.get("keep_alpha")
    if alpha is not None and not (isinstance(alpha, (int, float, np.number)) and 0.0 < alpha <= 1.0):
        raise ValueError(f"rl_config keep_alpha must be in (0, 1] or None; got {alpha!r}.")
    keep_test = rl_config.get("keep_test", "signed_rank")
    if keep_test not in KEEP_TESTS:
        raise ValueError(f"rl_config keep_test must be one of {KEEP_TESTS}; got {keep_test!r}.")
    for name, value in (("temperature", est.temperature),
                        ("rl_config temperature", rl_config.get("temperature", est.temperature))):
        if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number; got {value!r}.")
    if est.rl_steps and est.rl_variant == "median" and est.decision != "median":
        raise ValueError(f"rl_variant='median' trains the median that decision='median' predicts; "
                         f"got decision={est.decision!r}.")
    if est.backbone is not None and not isinstance(est.backbone, (str, os.PathLike)):
        raise ValueError(f"backbone must be None, a local path or a shortcut name; got {est.backbone!r}.")
    if not isinstance(est.lora_r, (int, np.integer)) or est.lora_r < 0:
        raise ValueError(f"lora_r must be a non-negative integer; got {est.lora_r!r}.")
    if est.number_tokens not in ("native", "new"):
        raise ValueError(f"number_tokens must be 'native' or 'new'; got {est.number_tokens!r}.")
    if est.learning_rate is not None and not est.learning_rate > 0:
        raise ValueError(f"learning_rate must be positive or None; got {est.learning_rate!r}.")
    for name in ("n_samples", "batch_size", "max_epochs", "n_digits"):
        value = getattr(est, name)
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def check_features(est, X, reset: bool) -> int:
    """Check (or, with ``reset``, record) the feature count and names; return the row count.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> est = SimpleNamespace()
    >>> check_features(est, [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], reset=True), est.n_features_in_
    (2, 2)
    >>> check_features(est, [{"a": 1}], reset=False)
    Traceback (most recent call last):
    ...
    ValueError: X has 1 features, but LMRegressor is expecting 2 features as input.
    """
    frame = to_frame(X, flatten_json=False)
    from_frame = hasattr(X, "columns")
    names = np.asarray(frame.columns, dtype=object)
    if reset:
        est.n_features_in_ = frame.shape[1]
        if from_frame:
            est.feature_names_in_ = names
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
        return len(frame)
    if frame.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {frame.shape[1]} features, but LMRegressor is expecting "
                         f"{est.n_features_in_} features as input.")
    fitted_names = getattr(est, "feature_names_in_", None)
    if from_frame and fitted_names is not None and list(names) != list(fitted_names):
        raise ValueError("The feature names should match those that were passed during fit: "
                         f"expected {list(fitted_names)}, got {list(names)}.")
    if from_frame and fitted_names is None and isinstance(X, pd.DataFrame):
        warnings.warn("X has feature names, but LMRegressor was fitted without feature names",
                      UserWarning, stacklevel=4)
    if not from_frame and fitted_names is not None and isinstance(X, np.ndarray):
        warnings.warn("X does not have valid feature names, but LMRegressor was fitted with "
                      "feature names", UserWarning, stacklevel=4)
    return len(frame)
