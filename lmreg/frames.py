"""Any supported input -> a pandas DataFrame with string column names.

What :func:`to_frame` accepts is what ``fit`` and ``predict`` accept for ``X``: a
string or list of strings (one text column), a dict or list of dicts (records; nested
dicts flatten to ``parent.child``), a DataFrame, a Series, a 2-D array or a list of
rows. JSON-object text columns and dict columns expand into sub-fields here, before
the :class:`~lmreg.serialize.Serializer` types the columns.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import numpy as np
import pandas as pd

from ._warnings import warn_user


def to_frame(X, *, flatten_json: bool = True, json_columns=(), plain_columns=()) -> pd.DataFrame:
    """Convert any supported input to a DataFrame with string column names.

    Parameters
    ----------
    X : str, list of str, dict, list of dict, pandas.DataFrame, pandas.Series or 2-D array
        A single string or dict counts as one row. Nested dicts are flattened into
        ``parent.child`` columns. A table with a ``to_pandas`` method (pyarrow, polars)
        is read as the DataFrame it gives.
    flatten_json : bool, default=True
        Expand string columns whose values are all JSON objects (or dicts) into
        sub-columns.
    json_columns : collection of str, default=()
        Columns to expand even where some values are not JSON objects (their fields
        are missing in those rows): the ones fitted as JSON.
    plain_columns : collection of str, default=()
        Columns never expanded, even where every value is a JSON object: the ones fitted
        as fields of their own (a batch of JSON-looking values must not change how a row
        is read).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> to_frame([{"a": 1, "b": {"c": "x"}}]).columns.tolist()
    ['a', 'b.c']
    >>> to_frame("hello").iloc[0, 0]
    'hello'
    """
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("Sparse data was passed for X, but dense data is required. Use '.toarray()' "
                        "to convert to a dense numpy array.")
    if isinstance(X, (str, bytes, bytearray)):
        X = [X]
    X = as_pandas(X)
    if not isinstance(X, _NATIVE) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, dict):
        X = [X]
    if isinstance(X, pd.Series):
        frame = X.to_frame(name=str(X.name) if X.name is not None else "text")
    elif isinstance(X, pd.DataFrame):
        frame = X.copy()
    elif isinstance(X, np.ndarray):
        if X.dtype.names:
            raise ValueError(f"X is a structured array of shape {X.shape}: pass it 1-D, one record per row "
                             "(its fields are the columns), or as a DataFrame.")
        if np.iscomplexobj(X):
            raise ValueError("Complex data not supported: X must hold real numbers, strings or objects.")
        if X.ndim == 1 and X.dtype.kind in "OUS":
            frame = _valid(lambda a: pd.DataFrame({"text": a}), X)
        elif X.ndim == 1:
            raise ValueError("Expected 2D array, got 1D array instead. Reshape your data with "
                             "array.reshape(-1, 1) if it has a single feature, or pass strings for text.")
        elif X.ndim == 2:
            frame = _valid(lambda a: pd.DataFrame(a, columns=positional_names(a.shape[1])), X)
        else:
            raise ValueError(f"X must be 1-D (text) or 2-D, got an array with {X.ndim} dimensions.")
    elif isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError("X is empty: found 0 sample(s) while a minimum of 1 is required.")
        if is_records(X):   # a None row is a record with every field missing
            frame = _normalize([{} if r is None else r for r in X], "X's record", keep=plain_columns,
                               detect=not plain_columns)
        elif any(isinstance(r, dict) for r in X):
            i, r = next((i, r) for i, r in enumerate(X) if not isinstance(r, dict))
            raise ValueError(f"X mixes records (dicts) with other rows: row {i} is a {type(r).__name__} "
                             f"({r!r:.60}); pass every row as a dict (None for a row with no fields).")
        elif all(isinstance(r, (str,) + _BYTES) or r is None for r in X):   # bytes read as a column's are
            frame = _valid(pd.DataFrame, {"text": [_decoded(r) for r in X]})
        else:   # rows of values, cell by cell (a cell may hold a list: tags)
            rows = [list(r) if isinstance(r, (list, tuple)) or (isinstance(r, (np.ndarray, pd.Series)) and r.ndim == 1)
                    else [r] for r in X]   # a Series from iterrows() is a row too; a 0-d array one cell
            lengths = sorted({len(r) for r in rows})
            if len(lengths) > 1:   # numpy made ragged rows one column of lists
                raise ValueError(f"X's rows have different lengths ({', '.join(map(str, lengths[:5]))} values); "
                                 "give every row the same columns, or pass records (dicts) for optional fields.")
            frame = pd.DataFrame(rows, dtype=object)   # as numpy gave them: kinds come from the values
            frame.columns = positional_names(frame.shape[1])
    else:
        raise TypeError(
            "X must be a str, list of str, dict, list of dict, pandas DataFrame/Series or "
            f"numpy array; got {type(X).__name__}."
        )
    sparse = {c: t.subtype for c, t in frame.dtypes.items() if isinstance(t, pd.SparseDtype)}
    if sparse:   # get_dummies(sparse=True): read as the dense column (its map of a fill-only batch fails)
        frame = frame.astype(sparse)
    if frame.shape[0] == 0:
        raise ValueError(f"X is empty: found 0 sample(s) (shape={frame.shape}) while a minimum of 1 "
                         "is required.")
    if frame.shape[1] == 0:
        raise ValueError(f"X has no columns: 0 feature(s) (shape={frame.shape}) while a minimum of 1 "
                         "is required.")
    frame.columns = [str(c) for c in frame.columns]
    _check_unique_columns(frame, "X has")
    frame = frame.reset_index(drop=True)
    complex_cols = {name for name, t in frame.dtypes.items() if pd.api.types.is_complex_dtype(t)}
    for name, dtype in frame.dtypes.items():
        if not (dtype == object or (isinstance(dtype, pd.StringDtype) and dtype.storage == "python")):
            continue   # Arrow strings are UTF-8: no lone surrogate in them
        values = frame[name].to_numpy(dtype=object)
        types = set(map(type, values))   # one pass says which of the rarer cells below to look for
        if any(issubclass(t, (complex, np.complexfloating)) for t in types):   # a list of rows' cells
            complex_cols.add(name)
        snan = any(issubclass(t, Decimal) for t in types)
        bad = [i for i, v in enumerate(values) if _has_surrogate(v) or snan and isinstance(v, Decimal) and v.is_snan()]
        if bad:   # a lone surrogate: pandas' string conversions (and the tokenizer) refuse it; a
            # signalling NaN makes pd.isna raise (decimal.InvalidOperation): the quiet one, missing
            values = values.copy()
            values[bad] = [Decimal("NaN") if isinstance(values[i], Decimal) else _clean(values[i]) for i in bad]
            frame[name] = pd.Series(values, dtype=dtype)
        if any(issubclass(t, _BYTES) for t in types):   # numpy "S" arrays, HDF5, a database's bytea
            # their text, as a lone bytes row is: b"2020-01-05" a date, b"3.5" a number
            frame[name] = frame[name].map(_decoded, na_action="ignore")
    if complex_cols:   # complex cells of a list of rows or an object column too (they had read as categories)
        raise ValueError(f"Complex data not supported: column(s) {[c for c in frame.columns if c in complex_cols]} "
                         "of X hold complex numbers; pass their real and imaginary parts as two columns.")
    if flatten_json:
        frame = _expand_json_columns(frame, force=json_columns, keep=plain_columns)
        _check_unique_columns(frame, "Expanding X's JSON columns gives")
    return frame


_NATIVE = (list, tuple, dict, pd.DataFrame, pd.Series, np.ndarray)
#: Cells read as the UTF-8 text they hold (a memoryview is how psycopg2 returns a bytea).
_BYTES = (bytes, bytearray, memoryview, np.bytes_)


def _decoded(x):
    """A bytes-like cell as its UTF-8 text (U+FFFD where it is not UTF-8); anything else as is."""
    return bytes(x).decode("utf-8", errors="replace") if isinstance(x, _BYTES) else x


def positional_names(n: int) -> list:
    """The names :func:`to_frame` gives the ``n`` columns of an array or a list of rows."""
    return [f"x{i}" for i in range(n)]


def as_pandas(X):
    """A table with a ``to_pandas`` method (pyarrow, polars) as the DataFrame it gives, so its
    column names and types are kept (``np.asarray`` would drop both); anything else as is."""
    if not isinstance(X, _NATIVE) and callable(getattr(X, "to_pandas", None)):
        return X.to_pandas()
    if isinstance(X, np.ndarray) and X.dtype.names and X.ndim == 1:   # a record array: its fields are columns
        return pd.DataFrame(X)
    return X


def is_records(X) -> bool:
    """Whether ``X`` is a list (or tuple) of records: dicts, and None rows among them.

    >>> is_records([{"a": 1}, None]), is_records([None]), is_records(["a"])
    (True, False, False)
    """
    return (isinstance(X, (list, tuple)) and any(isinstance(r, dict) for r in X)
            and all(isinstance(r, dict) or r is None for r in X))


def _check_unique_columns(frame: pd.DataFrame, what: str) -> None:
    """Each column becomes a field of its own name: two of one name cannot both be read."""
    names = frame.columns
    if names.has_duplicates:
        dup = sorted(set(names[names.duplicated()]))
        raise ValueError(f"{what} duplicate column names {dup}; rename them so every column "
                         "has its own name.")


def _normalize(records: list, what: str, keep=(), detect: bool = True) -> pd.DataFrame:
    """``pd.json_normalize`` with ``.`` between the levels, refusing a record that names one
    field twice (``{"a": {"b": 1}, "a.b": 2}``: json_normalize kept one of them silently).
    A dict under a field named in ``keep`` (one fitted as a field of its own) stays one
    cell, as in a DataFrame's column, instead of fields that the model never saw; with
    ``detect`` (at fit: nothing is fitted yet) so does one under a field that holds a dict in
    some records and another value in others (a DataFrame column of dicts and strings is one
    field, too). At predict only ``keep`` decides: a row reads the same in any batch.

    >>> _normalize([{"m": {"a": 1}}, {"m": "hi"}], "record", keep={"m"})["m"].tolist()
    [{'a': 1}, 'hi']
    >>> _normalize([{"m": {"a": 1}}, {"m": "hi"}], "record").columns.tolist()
    ['m']

    >>> _normalize([{"a": {"b": 1}, "a.b": 2}], "record")
    Traceback (most recent call last):
    ...
    ValueError: record 0 gives the field 'a.b' twice (a nested field and a dotted name, or a number and its text); rename one of them.
    """
    for i, record in enumerate(records):
        try:
            keys = list(_keys(record))
        except RecursionError:   # a field per level: no table holds it
            raise ValueError(f"{what} {i} is nested too deeply to flatten into fields.") from None
        if any(k is None for k in keys):   # json_normalize would name its field "nan"
            raise ValueError(f"{what} {i} has a None key; name every field with a string.")
        # only a dotted name can meet a nested one, and only a number its text (1 and "1")
        if any("." in str(k) or not isinstance(k, str) for k in keys):
            seen = set()
            for field in _fields(record):
                if field in seen:
                    raise ValueError(f"{what} {i} gives the field {field!r} twice (a nested field and a dotted "
                                     "name, or a number and its text); rename one of them.")
                seen.add(field)
    # A dict under a field of keep is one cell: held out, then put back ({} too, which
    # json_normalize would drop with its field)
    frame, held = _flatten(records, set(keep))
    # Fields that got sub-fields from json_normalize (dicts in some records) and also hold a
    # value elsewhere are both a field and sub-fields: at fit (detect) one field too, and their
    # sub-fields alone where that value is only ever None or blank, as a DataFrame column of
    # such values reads.
    split = {c.rsplit(".", k)[0] for c in frame.columns for k in range(1, c.count(".") + 1)}
    both = (split & set(frame.columns)) - set(keep)
    empty = [c for c in both if all(map(_absent, frame[c]))]
    hold = both - set(empty) if detect else set()
    if hold:   # the rare case: flattened again, with those fields held out too
        frame, held = _flatten(records, hold | set(keep))
    frame = frame.drop(columns=[c for c in empty if c in frame.columns])
    for name, cells in held.items():
        values = frame[name].to_numpy(dtype=object, copy=True)
        for i, value in cells:
            values[i] = value
        frame[name] = pd.Series(values, dtype=object)
    return frame


def _flatten(records: list, keep: set):
    """json_normalize of ``records`` with the dicts under the fields in ``keep`` taken out
    (``held``: field -> ``[(row, dict)]``), to be put back as cells."""
    held = {}
    if keep:
        parents = {name.rsplit(".", k)[0] for name in keep for k in range(1, name.count(".") + 1)}
        records = [_hold(r, keep, parents, held, i) for i, r in enumerate(records)]
    return _valid(lambda rs: pd.json_normalize(rs, sep="."), records), held


def _is_missing(v) -> bool:
    """None, pd.NA, and NaN or NaT of any type (a float32 NaN, numpy's NaT inside a list).

    >>> [_is_missing(v) for v in (None, np.float32("nan"), np.datetime64("NaT"), "nan", [None])]
    [True, True, True, False, False]
    """
    if isinstance(v, str):   # the common element: no pandas call
        return False
    if isinstance(v, Decimal):   # pd.isna raises on a signalling NaN
        return v.is_nan()
    return pd.api.types.is_scalar(v) and bool(pd.isna(v))


def _absent(v) -> bool:
    """A missing value or a blank string (missing, as in a column whose kind is chosen)."""
    return not v.strip() if isinstance(v, str) else _is_missing(v)


def _hold(record: dict, keep, parents, held: dict, i: int, prefix: str = "") -> dict:
    """``record`` (row ``i``) with each dict under a field in ``keep`` taken out into
    ``held[field]`` (None in its place), so that json_normalize leaves it one cell; ``parents``
    are the fields above those of ``keep``. A record with none is returned as it is."""
    out = None
    for k, v in record.items():
        if not isinstance(v, dict):
            continue
        field = f"{prefix}{k}"
        if field in keep:
            held.setdefault(field, []).append((i, v))
            v = None
        elif field in parents:
            inner = _hold(v, keep, parents, held, i, field + ".")
            if inner is v:
                continue
            v = inner
        else:
            continue
        out = dict(record) if out is None else out
        out[k] = v
    return record if out is None else out


def _valid(build, data):
    """``build(data)``, again on :func:`_clean` data when a lone surrogate made pandas' UTF-8
    strings refuse it (the common case pays nothing)."""
    try:
        return build(data)
    except UnicodeEncodeError:
        return build(_clean(data))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(x):
    """``x`` with each lone surrogate in its strings (and keys) as U+FFFD: JSON's ``"\\ud83d"``
    cut from an emoji pair in scraped text, which no UTF-8 string column (pandas' Arrow
    strings) takes.

    >>> _clean({"a\\ud83d": ["ok", "x\\udc00"]}) == {"a\\ufffd": ["ok", "x\\ufffd"]}
    True
    """
    if isinstance(x, str):
        return x if x.isascii() or not _SURROGATE.search(x) else _SURROGATE.sub("\ufffd", x)
    if isinstance(x, dict):
        return {_clean(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if type(x) is tuple:   # a namedtuple's fields stay as given
        return tuple(_clean(v) for v in x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "OU":   # an array of text cells
        return np.array([_clean(v) for v in x.ravel().tolist()], dtype=object).reshape(x.shape)
    return x


def _has_surrogate(x) -> bool:
    """Whether a cell holds a lone surrogate: in its text, or in a list's or dict's (tags and
    JSON objects from records), which :func:`_clean` replaces.

    >>> _has_surrogate(["ok", "x\\ud83d"]), _has_surrogate({"k": ("a",)}), _has_surrogate("\\ud83d")
    (True, False, True)
    """
    if isinstance(x, str):
        return not x.isascii() and _SURROGATE.search(x) is not None
    if isinstance(x, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return any(map(_has_surrogate, x))
    return False


def _keys(record: dict):
    """Every key of ``record``, at any depth."""
    for k, v in record.items():
        yield k
        if isinstance(v, dict):
            yield from _keys(v)


def _fields(record: dict, prefix: str = ""):
    """The dotted names json_normalize makes of ``record``'s leaves (an empty dict makes none)."""
    for k, v in record.items():
        if isinstance(v, dict):
            yield from _fields(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def _json_text(value, opener: str):
    """What a string that starts with ``opener`` (``{`` or ``[``) holds as JSON, else None."""
    if not isinstance(value, str) or not value.lstrip().startswith(opener):
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):   # nested past what json reads: text, not JSON
        return None


def _parse_json_object(value):
    if isinstance(value, dict):  # e.g. a JSON-lines file or a parquet struct column read by pandas
        return value
    obj = _json_text(value, "{")
    return obj if isinstance(obj, dict) else None


def _json_rows(values: list, forced: bool):
    """``(rows, bad)``: each value's JSON object ({} where it is missing or blank, JSON's usual
    "missing", which neither stops nor counts against expansion) and how many present values
    hold none. None, unless ``forced``, when one holds none (a column of text stops at its
    first value) or none is present."""
    rows, present, bad = [{}] * len(values), 0, 0
    for i, v in enumerate(values):
        if _absent(v):
            continue
        value = _parse_json_object(v)
        if value is None and not forced:
            return None
        present, bad = present + 1, bad + (value is None)
        rows[i] = value or {}
    return None if present == 0 and not forced else (rows, bad)


def _expand_json_columns(frame: pd.DataFrame, force=(), keep=()) -> pd.DataFrame:
    """Replace columns whose non-missing values all parse as JSON objects (or are dicts) by
    their fields; the columns in ``force`` (fitted as JSON) are expanded whatever their values,
    a row that does not parse having every field missing; those in ``keep`` never are."""
    out = []
    for name in frame.columns:
        col = frame[name]
        if name in keep or (col.dtype.kind not in "OUS" and not isinstance(col.dtype, pd.StringDtype)):
            out.append(col)
            continue
        found = _json_rows(col.tolist(), forced=name in force)
        if found is None:
            out.append(col)
            continue
        rows, bad = found
        if bad:
            warn_user(f"{bad} of {len(col)} values of the JSON column {name!r} are not JSON objects; "
                      "their fields read as missing.")
        inner = {c[len(name) + 1:] for c in keep if c.startswith(f"{name}.")}   # its fitted fields
        sub = _normalize(rows, f"the JSON column {name!r} in row", keep=inner, detect=not keep)
        sub.columns = [f"{name}.{c}" for c in sub.columns]
        out.extend(sub[c] for c in sub.columns)
    return pd.concat(out, axis=1) if out else frame
