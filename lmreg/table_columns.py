"""A table file's columns as a model's inputs, target and weight: what the command line
checks before ``fit``, ``predict`` and ``evaluate`` hand a DataFrame to the estimator.

Errors name the columns, and quote a name whose spaces would otherwise not show (a CSV
header written ``a, b`` names its second column ``" b"``).
"""

from __future__ import annotations

import re

from ._warnings import warn_user
from .frames import to_frame
from .tables import JSON_LINES, table_suffix

__all__ = ["UNNAMED", "check_not_input", "check_target", "column_list", "input_columns", "lift_field",
           "without_unnamed"]


#: The names pandas gives columns whose header cell is empty.
UNNAMED = re.compile(r"Unnamed: \d+")


def without_unnamed(df, source: str):
    """``df`` without what a header with empty cells brings in at fit: columns that hold
    nothing (a separator at the end of the header), and a first column of distinct integers
    (the row numbers ``DataFrame.to_csv`` writes by default), with a warning; integers that
    repeat stay, with a warning too (the row numbers of concatenated frames, or data)."""
    unnamed = [c for c in df.columns if UNNAMED.fullmatch(str(c))]
    empty = [c for c in unnamed if df[c].isna().all()]
    first = df.columns[0] if len(df.columns) else None
    numbers = df[first] if first in unnamed and first not in empty else None
    integers = numbers is not None and numbers.dtype.kind in "iu"
    index = [first] if integers and numbers.is_unique else []
    if integers and not index:   # row numbers too, maybe: pd.concat keeps each frame's
        warn_user(f"{source!r}: its unnamed first column of integers repeats values, so it is read as an "
                  "input; if it holds row numbers (to_csv writes them, pd.concat keeps each frame's), "
                  "write the file with index=False or leave the column out.")
    if not (empty or index):
        return df
    what = (["the row numbers pandas' to_csv writes by default (index=False leaves them out)"] if index else []) + (
        [f"{len(empty)} empty column(s) without a name (a separator at the end of the header?)"] if empty else [])
    warn_user(f"{source!r}: not read as inputs: {'; '.join(what)}.")
    return df.drop(columns=index + empty)


def column_list(names) -> str:
    """Column names joined by ``", "``, each as it is unless it is empty, holds a comma or
    has spaces at its ends, which the list would hide (then quoted).

    >>> column_list(["a", " b", "c,d"]), column_list([])
    ("a, ' b', 'c,d'", 'none')
    """
    return ", ".join(n if n and n == n.strip() and "," not in n else repr(n) for n in map(str, names)) or "none"


def lift_field(df, name):
    """``df`` read as its flattened fields (:func:`~lmreg.frames.to_frame`, as the estimator
    reads records) when ``name`` is one of them but no column of its own: ``"label.y"`` of
    JSON lines' ``{"label": {"y": 3.5}}``, a target or weight that must not stay an input;
    ``df`` itself otherwise.

    >>> import pandas as pd
    >>> df = lift_field(pd.DataFrame({"x": [1, 2], "label": [{"y": 3.0, "n": 1}, {"y": 4.0}]}), "label.y")
    >>> df.columns.tolist(), df["label.y"].tolist()
    (['x', 'label.y', 'label.n'], [3.0, 4.0])
    """
    if name is None or name in df.columns or "." not in str(name) or len(df) == 0:
        return df
    flat = to_frame(df)
    return flat if str(name) in flat.columns else df


def check_target(df, target: str, source: str, what: str = "target") -> None:
    """Raise KeyError naming the columns when ``df`` has no column ``target``; a column
    whose name differs only in case or in spaces at its ends is suggested."""
    if target in df.columns:
        return
    near = [str(c) for c in df.columns if str(c).strip().casefold() == str(target).strip().casefold()]
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise KeyError(f"{what} column {target!r} not found in {source!r}{hint}; available columns: "
                   f"{column_list(df.columns)}.")


def check_not_input(est, target: str, fit_target: str | None) -> None:
    """Raise ValueError when ``target`` is one of the model's inputs (a column, or a field of
    records and dicts, as fitted): scored against it, the model would read it as missing."""
    fields = set(map(str, getattr(est, "feature_names_in_", ()))) | set(getattr(est, "_input_columns", None) or ())
    fields |= set(getattr(getattr(est, "serializer_", None), "kinds_", None) or ())
    if str(target) in fields:
        fitted = f" (fit's target was {fit_target!r})" if fit_target else ""
        raise ValueError(f"--target {target!r} is one of the model's input columns; name the column of the "
                         f"true values{fitted}.")


def input_columns(est, df, drop, source: str):
    """The model's input columns from ``df``, in training order; ``drop`` columns are ignored.

    JSON lines are records: a key no row of the file has reads as missing, a new key is
    ignored (as for dicts in Python); a table's columns must be the fitted ones. A nested
    field and its flat name are one input (``meta`` holding ``a`` is ``meta.a``), as they
    are in Python, so a model fitted on a CSV's ``meta.a`` reads JSON lines' ``{"meta": {"a": 1}}``.
    """
    from .validation import _leaves, warn_misspelled

    for name in drop:   # a nested target or weight ("label.y") leaves its dicts too
        df = lift_field(df, name)
    df = df.drop(columns=[c for c in drop if c in df.columns])
    if len(df) == 0:
        raise ValueError(f"{source!r} has no rows.")
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        return df
    names = [str(n) for n in names]
    # columns pandas named for empty header cells are inputs only of a model fitted on them
    df = df[[c for c in df.columns if str(c) in names or not UNNAMED.fullmatch(str(c))]]
    cols = [str(c) for c in df.columns]
    df = df.set_axis(cols, axis=1)
    fields = set(getattr(getattr(est, "serializer_", None), "kinds_", None) or names)   # flattened, as fitted
    mine, theirs = _leaves(cols, fields), _leaves(names, fields)
    known, given = set().union(*theirs.values()), set().union(*mine.values())
    extra = [c for c in cols if not mine[c] & known]
    # a fitted column none of whose fields is given is named as itself, else its absent fields
    missing = [n for n in names if not theirs[n] & given] + sorted(
        f for n in names if theirs[n] & given for f in theirs[n] - given)
    if table_suffix(source) in JSON_LINES and known & given:
        warn_misspelled(extra, missing, f"{source!r}'s records")
        df = df.drop(columns=extra).assign(**{n: None for n in missing})
    elif missing:
        raise KeyError(f"{source!r} lacks column(s) the model was trained on: {column_list(missing)}; "
                       f"available columns: {column_list(cols)}.")
    elif extra:
        raise ValueError(f"{source!r} has column(s) the model was not trained on: {column_list(extra)}; "
                         f"expected: {column_list(names)}.")
    # the fitted order where the names are the fitted ones; otherwise the same fields under
    # other names (a dict column for flat ones), which the estimator matches by field
    return df[names] if set(df.columns) == set(names) else df
