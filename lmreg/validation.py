"""Checks of what reaches the estimator: its parameters, the rows, the targets, the device."""

from __future__ import annotations

import datetime as dt
import difflib
import os
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.utils._param_validation import InvalidParameterError, Interval, StrOptions

from ._warnings import warn_user
from .backbone import check_heads
from .codecs import _MAX_DIGITS as MAX_DIGITS, CODECS
from .decoding import DECISION_RULES
from .frames import as_pandas, is_records, positional_names, to_frame
from .cells import _plain_number
from .column_kinds import _COMMA_NUMBER
from .training.rewards import REWARDS
from .training.rl_config import TREE_VARIANTS, VARIANTS


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; a CUDA request without CUDA is an error.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("gpu0")
    Traceback (most recent call last):
    ...
    ValueError: device='gpu0' is not a torch device; use 'auto', 'cpu' or 'cuda' (or 'cuda:1').
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type == "meta":   # a meta tensor holds no data: nothing could be trained
        raise ValueError(f"device={device!r} is not a torch device{' that holds data' if dev else ''}; use "
                         "'auto', 'cpu' or 'cuda' (or 'cuda:1').")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    backend = torch.backends.mps if dev.type == "mps" else getattr(torch, dev.type, None)   # torch.xpu, ...
    if dev.type != "cpu" and not getattr(backend, "is_available", lambda: False)():
        # mps, xpu, ...: torch's own error came from deep inside the first tensor move, seconds into fit
        raise ValueError(f"device={device!r} was requested but this torch has no {dev.type} device available; "
                         "use 'auto', 'cpu' or 'cuda'.")
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
    >>> check_targets([[1.0, 2.0], [float("inf"), float("nan")]], 2)
    Traceback (most recent call last):
    ...
    ValueError: y contains 1 NaN and 1 infinite value(s) (first at row 1); targets must be finite.
    >>> check_targets([1.0, 2.0], 1)
    Traceback (most recent call last):
    ...
    ValueError: X and y have inconsistent lengths: X has 1 rows, y has 2 (a single dict or string is one row: pass a dict of columns as pd.DataFrame(X), texts as a list).
    >>> check_targets(pd.array([True, None], dtype="boolean"), 2)
    Traceback (most recent call last):
    ...
    ValueError: y contains 1 NaN value(s) (first at row 1); targets must be finite.
    """
    if y is None:
        raise ValueError("LMRegressor requires y to be passed, but the target y is None.")
    if not isinstance(y, np.ndarray):
        try:
            y = np.asarray(y)
        except ValueError:   # numpy's "inhomogeneous shape": rows of different lengths
            raise ValueError("y's rows have different lengths; give every row the same number of "
                             "targets.") from None
    if y.dtype == object and y.size:   # pd.NA (a nullable boolean or object y) is missing, as None is
        # (a Fraction, an int past float64's range and a signalling NaN as float64 reads them)
        y = np.vectorize(_plain_number, otypes=[object])(y)
        y = np.where(pd.isna(y), np.nan, y)
    if np.iscomplexobj(y):
        raise ValueError("Complex data not supported: y must be real numbers.")
    # as float64 these are nanoseconds since 1970 (or nanoseconds), and an object array's
    # np.datetime64 / np.timedelta64 are counts of their own units: numbers, but not the user's
    when = next((v for v in y.flat if isinstance(v, _TIMES)), None) if y.dtype == object else None
    if y.dtype.kind in "mM" or when is not None:
        durations = y.dtype.kind == "m" or isinstance(when, (dt.timedelta, np.timedelta64))
        how = "y / pd.Timedelta(days=1)" if durations else "(y - start) / pd.Timedelta(days=1) (days since start)"
        held = y.dtype if when is None else f"{type(when).__module__}.{type(when).__name__} in an object array"
        raise TypeError(f"y holds {'durations' if durations else 'datetimes'} ({held}); regress on a number, "
                        f"e.g. {how}.")
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as err:
        comma = next((v for v in y.flat if isinstance(v, str) and _COMMA_NUMBER.fullmatch(v)), None)
        hint = (f"; {comma!r} reads as a number with a decimal comma: read the file with decimal=',' "
                "(the command line's --decimal ',')" if comma is not None else "")
        raise TypeError(f"y must be numeric; could not convert it to float ({err}){hint}.") from None
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] == 0):
        raise ValueError(f"y must be 1-D (one target per row) or 2-D (several targets per row); "
                         f"got shape {y.shape}.")
    if len(y) != n_rows:
        hint = (" (a single dict or string is one row: pass a dict of columns as pd.DataFrame(X), "
                "texts as a list)" if n_rows == 1 else "")
        raise ValueError(f"X and y have inconsistent lengths: X has {n_rows} rows, y has {len(y)}{hint}.")
    if len(y) < 2:
        raise ValueError(f"at least 2 samples are required to fit; got {len(y)} sample.")
    bad = ~np.isfinite(y)
    if bad.any():
        counts = ((int(np.isnan(y).sum()), "NaN"), (int(np.isinf(y).sum()), "infinite"))
        what = " and ".join(f"{k} {name}" for k, name in counts if k)
        row = np.flatnonzero(bad.any(axis=1) if y.ndim == 2 else bad)[0]   # a row, not a flat index
        raise ValueError(f"y contains {what} value(s) (first at row {int(row)}); targets must be finite.")
    return y


#: Values that are points or spans of time, not numbers (pd.Timestamp and pd.Timedelta subclass
#: the datetime ones).
_TIMES = (dt.date, dt.timedelta, np.datetime64, np.timedelta64)


def check_sample_weight(sample_weight, n_rows: int) -> np.ndarray | None:
    """``sample_weight`` as a float64 array of ``n_rows`` non-negative finite weights, or None.

    None stays None (every row counts once, the unweighted fit); a scalar weighs every
    row the same (scikit-learn's convention). A weight may be 0 (:func:`weighted_rows`
    drops the row); weights that are all 0 are an error.

    Examples
    --------
    >>> check_sample_weight([1, 2, 0], 3)
    array([1., 2., 0.])
    >>> check_sample_weight(None, 3) is None
    True
    >>> check_sample_weight([1e308, 1e308], 2)   # a sum past float64's range: the same ratios
    array([1., 1.])
    >>> check_sample_weight(2, 3)
    array([2., 2., 2.])
    >>> check_sample_weight([1.0, -1.0], 2)
    Traceback (most recent call last):
    ...
    ValueError: sample_weight has 1 negative value(s) (first at row 1); weights must be >= 0.
    """
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"sample_weight must be numeric; could not convert it to float ({err}).") from None
    if w.ndim == 0:
        w = np.full(n_rows, float(w))
    if w.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D with one weight per row; got shape {w.shape}.")
    if len(w) != n_rows:
        raise ValueError(f"sample_weight has {len(w)} weights but X has {n_rows} rows.")
    for bad, what, rule in ((~np.isfinite(w), "NaN or infinite", "finite"), (w < 0, "negative", ">= 0")):
        if bad.any():
            raise ValueError(f"sample_weight has {int(bad.sum())} {what} value(s) (first at row "
                             f"{int(np.flatnonzero(bad)[0])}); weights must be {rule}.")
    if not w.sum() > 0:
        raise ValueError("sample_weight is zero for every row; at least one row must count.")
    if not np.isfinite(w.sum()):   # finite weights whose sum overflows (1e306 each): only their ratios count
        w = w / w.max()
    return w


def weighted_rows(X, y: np.ndarray, sample_weight):
    """``X``, ``y``, checked weights once the rows of weight 0 are dropped, and whether
    the fit depends on ``sample_weight``.

    The weights come back None when there are none or all are equal (the
    unweighted fit); dropping rows turns ``X`` into a DataFrame (:func:`to_frame`), but
    leaves records a list of the records kept.
    The fit depends on ``sample_weight`` when its weights differ or its zeros dropped
    rows (equal weights left after dropping included): the train/validation split
    does, so every later stage must get the same weights.

    Examples
    --------
    >>> X, y, w, weighted = weighted_rows(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), [0, 1, 2])
    >>> X["text"].tolist(), y.tolist(), w.tolist(), weighted
    (['b', 'c'], [2.0, 3.0], [1.0, 2.0], True)
    >>> weighted_rows(["a", "b"], np.array([1.0, 2.0]), [3, 3])[2:]
    (None, False)
    >>> weighted_rows(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), [0, 3, 3])[2:]
    (None, True)
    """
    weights = check_sample_weight(sample_weight, len(y))
    if weights is None:
        return X, y, None, False
    keep = weights > 0
    if keep.sum() < 2:
        raise ValueError(f"sample_weight leaves {int(keep.sum())} row(s) with a positive weight; "
                         "at least 2 are required to fit.")
    dropped = not keep.all()
    if dropped and is_records(X):   # records stay records: a field of dropped rows alone is no field
        X = [X[i] for i in np.flatnonzero(keep)]
        y, weights = y[keep], weights[keep]
    elif dropped:
        X = to_frame(X, flatten_json=False).iloc[np.flatnonzero(keep)].reset_index(drop=True)
        y, weights = y[keep], weights[keep]
    equal = np.all(weights == weights[0])
    return X, y, (None if equal else weights), bool(dropped or not equal)


#: ``LMRegressor._parameter_constraints``: the type and range of every parameter, checked by
#: scikit-learn's parameter validation at the start of ``fit`` (and of ``reinforce`` and
#: ``calibrate``); :func:`validate_params` adds the checks that involve several parameters.
PARAMETER_CONSTRAINTS = {
    "codec": [StrOptions(set(CODECS))],
    "n_digits": [Interval(Integral, 1, MAX_DIGITS, closed="both")],   # float64 holds 15 digits
    "hidden_size": [Interval(Integral, 1, None, closed="left")],
    "num_layers": [Interval(Integral, 1, None, closed="left")],
    "num_heads": [Interval(Integral, 1, None, closed="left")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "rps_weight": [Interval(Real, 0, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "max_time": [Interval(Real, 0, None, closed="neither"), None],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "n_members": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "n_samples": [Interval(Integral, 1, None, closed="left")],
    "decision": [StrOptions(set(DECISION_RULES)), Interval(Real, 0, 1, closed="neither")],
    # below 0.01 logits / temperature overflow float32 (and the draws are the greedy number)
    "temperature": [Interval(Real, 0.01, None, closed="left")],
    "quantile_decoding": [StrOptions({"tree", "samples"})],
    "calibration": [StrOptions({"conformal"}), None],
    "numeric": [StrOptions({"embed", "text"})],
    "vocab_size": [Interval(Integral, 1, None, closed="left")],
    "max_length": [Interval(Integral, 3, None, closed="left")],   # <bos>, one token of a field, <sep>
    "max_field_tokens": [Interval(Integral, 1, None, closed="left")],
    "rl_steps": [Interval(Integral, 0, None, closed="left")],
    "rl_reward": [StrOptions(set(REWARDS)), callable, None],
    "rl_variant": [StrOptions(set(VARIANTS))],
    "rl_config": [dict, None],
    "backbone": [str, os.PathLike, None],
    "lora_r": [Interval(Integral, 0, None, closed="left")],
    "lora_alpha": [Interval(Real, 0, None, closed="neither")],
    "lora_dropout": [Interval(Real, 0, 1, closed="left")],
    "lora_target_modules": [str, list, tuple, None],
    "number_tokens": [StrOptions({"native", "new"})],
    "task_column": "no_validation",  # any column label; checked against X in fit
    "device": [str, torch.device],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def refuse_flags(params: dict, caller: str, constraints: dict | None = None) -> None:
    """Refuse ``True``/``False`` for a numeric parameter: scikit-learn's ``Interval(Integral)``
    takes ``True`` as 1 (``n_members=True``, ``rl_steps=True`` ran as 1). ``constraints``:
    the parameters' constraints (default :data:`PARAMETER_CONSTRAINTS`; ``RLConfig`` passes its own).

    >>> refuse_flags({"n_samples": True}, "LMRegressor")
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'n_samples' parameter of LMRegressor must be a number, not a bool. Got True instead.
    """
    for name, value in params.items():
        allowed = (PARAMETER_CONSTRAINTS if constraints is None else constraints).get(name)
        if isinstance(value, (bool, np.bool_)) and isinstance(allowed, list) and any(
                isinstance(c, Interval) for c in allowed):
            raise InvalidParameterError(f"The {name!r} parameter of {caller} must be a number, not a bool. "
                                        f"Got {value!r} instead.")


def validate_params(est) -> None:
    """Raise a ValueError on a combination of :class:`~lmreg.LMRegressor` parameters that cannot work.

    Each parameter on its own is checked against :data:`PARAMETER_CONSTRAINTS` first
    (``LMRegressor._validate_params``); here what involves several, and the RL
    settings, which :class:`~lmreg.training.rl_config.RLConfig` checks when built, so a
    bad one fails before SFT rather than after it.

    Examples
    --------
    >>> from lmreg import LMRegressor
    >>> validate_params(LMRegressor(hidden_size=130))
    Traceback (most recent call last):
    ...
    ValueError: hidden_size (130) must be divisible by num_heads (4).
    >>> validate_params(LMRegressor(rl_config={"group_size": 1}))
    Traceback (most recent call last):
    ...
    ValueError: invalid RL setting (rl_variant, rl_reward or rl_config): The 'group_size' parameter of RLConfig must be an int in the range [2, inf). Got 1 instead.
    """
    refuse_flags(est.get_params(deep=False), type(est).__name__)
    if est.backbone is None:
        check_heads(est.hidden_size, est.num_heads)
    config = est._rl_config()
    if est.rl_steps and config.variant in TREE_VARIANTS and est.codec != "digits":
        raise ValueError(f"rl_variant={config.variant!r} works on the digits codec's token tree: it "
                         f"needs codec='digits'; got codec={est.codec!r}.")
    is_median = est.decision == "median" or (isinstance(est.decision, Real) and not isinstance(est.decision, bool)
                                             and float(est.decision) == 0.5)   # decision=0.5 is the median
    if est.rl_steps and config.variant == "median" and not is_median:
        raise ValueError(f"rl_variant='median' trains the median that decision='median' predicts; "
                         f"got decision={est.decision!r}.")
    targets = est.lora_target_modules
    if isinstance(targets, (list, tuple)) and not (targets and all(isinstance(t, str) and t for t in targets)):
        raise ValueError("lora_target_modules must be None, a regular expression (a string: peft matches it "
                         f"against whole module names) or a non-empty list of module names; got {targets!r}.")
    if est.device != "auto":
        try:
            torch.device(est.device)
        except RuntimeError:
            raise ValueError(f"device must be 'auto', a torch device name such as 'cpu', 'cuda' or "
                             f"'cuda:1', or a torch.device; got {est.device!r}.") from None


def warn_misspelled(unknown, absent, what: str) -> None:
    """Warn about the ``unknown`` fields that look like ``absent`` fitted ones: a misspelled key
    ("X" for "x") is ignored while its field reads as missing in every row.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_misspelled(["Price", "colour", "size.cm"], ["price", "size"], "X's records")
    >>> str(caught[0].message)[:139]
    "X's records have field(s) the model does not know, which are ignored: 'Price' (did you mean 'price'?), 'size.cm' (a dict given for 'size'?)"
    """
    lower = {c.lower(): c for c in absent}

    def hint(u):
        parent = next((a for a in absent if u.startswith(a + ".")), None)
        if parent is not None:   # "price.amount": json_normalize made a dict given for "price" new fields
            return f"a dict given for {parent!r}?"
        match = lower.get(u.lower()) or next(iter(difflib.get_close_matches(u, absent, n=1, cutoff=0.8)), None)
        return None if match is None else f"did you mean {match!r}?"

    hints = {u: h for u in unknown if (h := hint(u)) is not None}
    if hints:
        pairs = ", ".join(f"{u!r} ({h})" for u, h in list(hints.items())[:5])
        warn_user(f"{what} have field(s) the model does not know, which are ignored: {pairs}; the "
                  "fitted field(s) they resemble are absent from every row and read as missing.")


def _no_fields(X) -> bool:
    """Whether ``X`` is records without a single field: ``{}``, or a list of ``None``/``{}``
    or of dicts that hold only those (``{"meta": {}}`` flattens to no field at all).

    >>> _no_fields([{}, None, {"m": {}}]), _no_fields([{"m": {"a": None}}]), _no_fields([{"m": 0}])
    (True, True, False)
    """
    rows = [X] if isinstance(X, dict) else X
    return isinstance(rows, (list, tuple)) and len(rows) > 0 and all(map(_fieldless, rows))


def _fieldless(value) -> bool:
    return value is None or (isinstance(value, dict) and all(map(_fieldless, value.values())))


def _input_kind(X) -> str:
    """How ``X`` names its columns: ``"frame"`` (a DataFrame with string column names; other
    names are not feature names, as in scikit-learn), ``"series"`` (a named Series),
    ``"records"`` (dicts: a name per field) or ``"unnamed"`` (to_frame makes names up:
    ``x0, x1, ...`` for arrays and lists of rows, ``text`` for strings)."""
    if isinstance(X, pd.DataFrame):   # as scikit-learn: only string column names are feature names
        kinds = {isinstance(c, str) for c in X.columns}
        if kinds == {True, False}:
            types = sorted({type(c).__name__ for c in X.columns})
            raise TypeError(f"X's column names mix strings and other types ({types}): name every column "
                            "with a string (X.columns = X.columns.astype(str)), or none.")
        return "frame" if True in kinds else "unnamed"
    if isinstance(X, pd.Series):
        return "series" if X.name is not None else "unnamed"
    if isinstance(X, dict) or is_records(X):
        return "records"
    return "unnamed"


def _leaves(names, fields) -> dict:
    """Each column name's fitted (flattened) fields: itself if it is one of ``fields``; the
    fields under it if it is their parent (a dict or JSON column, ``meta`` for ``meta.a``)
    and no field itself; else itself (a name ``fit`` never saw).

    >>> {k: sorted(v) for k, v in _leaves(["meta", "z", "q"], {"meta.a", "meta.b", "z"}).items()}
    {'meta': ['meta.a', 'meta.b'], 'z': ['z'], 'q': ['q']}
    >>> _leaves(["x"], {"x", "x.1"})   # two columns (pandas renames a repeated header "x.1")
    {'x': {'x'}}
    """
    out = {}
    for name in names:
        under = set() if name in fields else {f for f in fields if f.startswith(name + ".")}
        out[name] = under or {name}
    return out


def check_features(est, X, reset: bool):
    """Check (or, with ``reset``, record) the columns of ``X``; return the row count and ``X``.

    At predict time the columns are matched to those of ``fit`` by name, or by position
    when either side had no names of its own (an array, a list of rows or of strings, an
    unnamed Series), as scikit-learn does: the returned ``X`` is then a DataFrame with
    the fitted names. Dicts are records: a field may be absent (read as missing) or new
    (ignored), but at least one must be a fitted one, unless no row has any field (``[None]``,
    ``[{}]``: every field missing, for a model fitted on named columns of any form). A nested field (``meta.a``) and its
    parent (a dict column ``meta``) are the same field: the serializer flattens both.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> est = SimpleNamespace()
    >>> check_features(est, pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), reset=True)[0], est.n_features_in_
    (2, 2)
    >>> check_features(est, [[3, "z"]], reset=False)[1].columns.tolist()   # rows without names
    ['a', 'b']
    >>> check_features(est, [{"a": 1}], reset=False)[1]   # a record without "b": b is missing
    [{'a': 1}]
    >>> rec = SimpleNamespace()
    >>> _ = check_features(rec, [{"a": 1, "b": "x"}, {"a": 2}], reset=True)
    >>> check_features(rec, [None, {}], reset=False)[1].shape   # no field at all: every one missing
    (2, 2)
    >>> check_features(est, pd.DataFrame({"a": [1]}), reset=False)
    Traceback (most recent call last):
    ...
    ValueError: X has 1 features, but LMRegressor is expecting 2 features as input. Fitted columns X lacks: ['b'].
    """
    X = as_pandas(X)   # a pyarrow or polars table names its columns as a DataFrame does
    if not reset and getattr(est, "_input_kind", None) in ("records", "frame", "series") and _no_fields(X):
        # [None] or [{}] alone has no columns to match, but is a valid batch of records for any
        # model with named fields: every fitted field reads as missing, as in a larger batch
        n = 1 if isinstance(X, dict) else len(X)
        return n, pd.DataFrame({c: [None] * n for c in est._input_columns}, dtype=object)
    frame = to_frame(X, flatten_json=False)
    kind, names = _input_kind(X), [str(c) for c in frame.columns]
    if reset:
        est.n_features_in_ = frame.shape[1]
        if kind == "frame":
            est.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
        est._input_columns, est._input_kind = names, kind
        return len(frame), X
    fitted = getattr(est, "_input_columns", None)
    fitted_kind = getattr(est, "_input_kind", "frame" if hasattr(est, "feature_names_in_") else "unnamed")
    fields = set(getattr(getattr(est, "serializer_", None), "kinds_", None) or fitted or ())   # flattened, as fitted
    if isinstance(X, pd.Series) and est.n_features_in_ > 1:
        raise ValueError(f"X is a pandas Series, which is read as one column of rows, but the model was "
                         f"fitted on {est.n_features_in_} columns; pass one row as a one-row DataFrame "
                         "(df.iloc[[i]], or series.to_frame().T).")
    if "records" in (kind, fitted_kind) and kind != "unnamed" and fitted_kind != "unnamed" and fitted:
        # Records name nested fields "meta.a" where a DataFrame's dict column is "meta": the
        # serializer flattens both alike, so both are read as the fields they hold.
        mine, theirs = _leaves(names, fields), _leaves(fitted, fields)
        known, given = set().union(*theirs.values()), set().union(*mine.values())
        unknown = [c for c in names if not mine[c] & known]
        if len(unknown) == len(names):
            raise ValueError(f"none of X's fields {names[:10]} is one the model was fitted on "
                             f"({fitted[:10]}); every prediction would be the same.")
        # the fitted fields no row gives (a dict column's own fields, so "meta.A" meets "meta.a")
        absent = sorted(set().union(*theirs.values()) - given)
        if kind == "frame" and (absent or unknown):   # a table's columns are the fields of all its rows
            said = [f"lacks the fitted field(s) {absent[:10]}, read as missing in every row" if absent else "",
                    f"has column(s) {unknown[:10]} the model does not know, ignored" if unknown else ""]
            warn_user(f"X {'; it '.join(s for s in said if s)} (the model was fitted on records, whose rows may "
                      "omit fields: a table's columns are matched by name).")
        else:
            warn_misspelled(unknown, absent, "X's records")
        return len(frame), X   # matched by name, row by row: absent fields read as missing
    if kind == fitted_kind == "frame" and fitted and set(names) != set(fitted) and (
            set().union(*_leaves(names, fields).values()) == set().union(*_leaves(fitted, fields).values())):
        return len(frame), X   # "meta.a", "meta.b" for a fitted dict column "meta", or back: the same fields
    if kind == "records" and fitted_kind == "unnamed" and fitted:
        # the fitted columns have to_frame's names (x0, x1, ... for an array): a record's fields
        # go by those names, never by its keys' order (which the batch's first record sets)
        unknown = [c for c in names if c not in set(fitted)]
        if unknown:
            raise ValueError(f"X's records have field(s) {unknown[:10]}, but the model was fitted on unnamed "
                             f"columns, which records name {fitted[:10]}; use those names, or pass the rows "
                             "as a list or an array to match them by position.")
        return len(frame), frame.reindex(columns=fitted)   # a field no record gives reads as missing
    fitted_names = getattr(est, "feature_names_in_", None)
    if frame.shape[1] != est.n_features_in_:
        which = ""
        if kind == "frame" and fitted_names is not None:   # name the columns, as scikit-learn does
            unseen = [c for c in names if c not in set(fitted_names)]
            lacks = [c for c in fitted_names if c not in set(names)]
            which = "".join(part for part in (f" Columns unseen at fit: {unseen}." if unseen else "",
                                              f" Fitted columns X lacks: {lacks}." if lacks else ""))
        raise ValueError(f"X has {frame.shape[1]} features, but LMRegressor is expecting "
                         f"{est.n_features_in_} features as input.{which}")
    if kind == "frame" and fitted_names is not None and names != list(fitted_names):
        raise ValueError("The feature names should match those that were passed during fit: "
                         f"expected {list(fitted_names)}, got {names}.")
    if fitted is None or names == fitted:
        return len(frame), X
    made_up = fitted in (positional_names(len(fitted)), ["text"])   # to_frame's names for arrays, strings
    if (isinstance(X, pd.DataFrame) and fitted_kind == "unnamed" and not made_up
            and sorted(names) == sorted(fitted)):
        # non-string names (0, 1, 2) are not feature names, so columns go by position, but the
        # fitted names in another order are a reordered table, not another one
        raise ValueError(f"X's columns {list(X.columns)} are those of fit in another order "
                         f"({fitted}); put them in the fitted order.")
    if kind != "unnamed" and fitted_kind != "unnamed":
        raise ValueError(f"X's columns {names} are not the ones the model was fitted on ({fitted}); "
                         "rename them, or pass unnamed data (an array or a list) to match by position.")
    if kind == "frame":
        warn_user("X has feature names, but LMRegressor was fitted without feature names; "
                  "its columns are matched by position")
    elif fitted_kind == "frame":   # an array, a list of rows, integer column names: as scikit-learn warns
        warn_user("X does not have valid feature names, but LMRegressor was fitted with "
                  "feature names; its columns are matched by position")
    elif fitted_kind == "records":
        warn_user(f"X has no field names, but LMRegressor was fitted on records; its columns are matched by "
                  f"position to the fields in the order fit first met them: {fitted[:10]}")
    frame.columns = fitted
    return len(frame), frame
