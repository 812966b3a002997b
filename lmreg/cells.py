"""One cell of a column -> its value as a category, a list of tags or text.

What :class:`~lmreg.serialize.Serializer` does to each value of a non-numeric column,
one cell at a time: a category's name (ids read as floats are their ints), a list
cell's elements (``tags``; a JSON array written as text too), a cell's readable text
(lists comma-joined, records as sorted JSON), and booleans passed as 1/0 or text.
Missing values (None, NaN, NaT, ``pd.NA``) read as missing whatever their type.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import numbers
import unicodedata
from decimal import Decimal

import numpy as np
import pandas as pd

from .frames import _is_missing, _json_text

_LISTS = (list, tuple, np.ndarray, set, frozenset)  # cells that hold several values


def _elements(v) -> list:
    """The elements of one list cell; a set's sorted, as its own order changes from one
    process to the next (string hashing is salted)."""
    if isinstance(v, (set, frozenset)):
        return sorted(v, key=str)
    return list(v)


def _json_list(v):
    """The list a string holds as a JSON array of scalars (a CSV's ``'["Comedy", "Drama"]'``),
    or as a Python list of them (pandas' ``to_csv`` writes ``"['Comedy', 'Drama']"``), else None.

    >>> _json_list('["Comedy", "Drama"]'), _json_list("[1, {}]"), _json_list("[draft]")
    (['Comedy', 'Drama'], None, None)
    >>> _json_list("['Horror', 'Comedy']"), _json_list("[None, 2]")
    (['Horror', 'Comedy'], [None, 2])
    """
    items = _json_text(v, "[")
    if items is None and isinstance(v, str) and v.lstrip().startswith("["):
        try:   # literals only: nothing is run
            items = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            items = None
    ok = isinstance(items, list) and all(isinstance(x, (str, int, float, bool)) or x is None for x in items)
    return items if ok else None


def _scalar_text(x) -> str:
    """``str(x)``, but one text per value whatever type or batch carried it.

    An integer-valued float or Decimal names its integer: pandas turns a column of ints into
    floats when a row of the batch lacks it, so a row's 7 reads as 7 in any batch, not as
    7.0 in some. A datetime is its ISO date, with the time unless it is midnight (numpy's
    text depends on its unit); a dict its JSON with sorted keys; bytes their UTF-8 text.

    >>> _scalar_text(7.0), _scalar_text(7.5), _scalar_text(np.float64(2)), _scalar_text("7.0")
    ('7', '7.5', '2', '7.0')
    >>> _scalar_text(np.datetime64("2020-01-02T00:00:00.000000000")), _scalar_text(Decimal("3.0"))
    ('2020-01-02', '3')
    >>> _scalar_text({2: Decimal("1.5"), "a": None})
    '{"2": "1.5", "a": null}'
    """
    if isinstance(x, (float, np.floating)) and np.isfinite(x) and float(x).is_integer():
        return str(int(x))
    if isinstance(x, Decimal) and x.is_finite() and x == x.to_integral_value():
        return str(int(x))
    if isinstance(x, (dt.datetime, np.datetime64)) and not _is_missing(x):   # a Timestamp is a datetime
        t = pd.Timestamp(x)
        return t.date().isoformat() if t == t.normalize() else t.isoformat(sep=" ")
    if isinstance(x, dict):   # a record: the same text whatever its key order or types
        return json.dumps(_sorted_keys(x), ensure_ascii=False, default=_scalar_text)
    if isinstance(x, (bytes, bytearray, memoryview, np.bytes_)):   # text, not its repr b'...' (or an address)
        return bytes(x).decode("utf-8", errors="replace")
    return str(x)


def _name(x) -> str:
    """A category's or a tag's name: its text (:func:`_scalar_text`) in Unicode's composed
    form, so a composed and a decomposed "café" are one category (they look alike; free text
    is normalized by its tokenizer instead).

    >>> _name("cafe\u0301") == _name("caf\u00e9") == "caf\u00e9", _name(2.0)
    (True, '2')
    """
    text = _scalar_text(x)
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _sorted_keys(x):
    """``x`` with every dict's keys as strings, in sorted order (1 and "a" do not compare)."""
    if isinstance(x, dict):
        return {str(k): _sorted_keys(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
    if isinstance(x, (list, tuple)):
        return [_sorted_keys(v) for v in x]
    return x


def _as_tags(v) -> tuple | None:
    """The elements of one list cell as strings (a JSON array in a string too); a lone
    scalar is a one-element list."""
    parsed = _json_list(v)
    v = v if parsed is None else parsed
    if isinstance(v, _LISTS):
        return tuple(_name(x) for x in _elements(v) if not _is_missing(x))
    if _is_missing(v):
        return None
    return (_name(v),)


def cell_text(v) -> str | None:
    """Readable text of one :class:`Column` value (a ``tags`` tuple is comma-joined).

    >>> cell_text(("Comedy", "Action")), cell_text("Oslo"), cell_text(None)
    ('Comedy, Action', 'Oslo', None)
    """
    return ", ".join(v) if isinstance(v, tuple) else v


def _as_text(v) -> str | None:
    """Readable text of one cell; lists (from JSON) are comma-joined, their missing elements
    dropped, as in tags."""
    if isinstance(v, _LISTS):
        return ", ".join(_scalar_text(x) for x in _elements(v) if not _is_missing(x))
    if _is_missing(v):
        return None
    return _scalar_text(v)


def _is_flag(col: pd.Series) -> bool:
    """Whether a categorical column holds booleans (a bool dtype, or only True/False cells)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return True
    present = col.dropna()
    return col.dtype == object and len(present) > 0 and all(isinstance(v, (bool, np.bool_)) for v in present)


_FLAG_NAMES = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def _as_flag(v):
    """A boolean column's value at predict: ``1``/``0`` and ``"true"``/``"false"`` as the flag
    (their names "1", "true" would not be the fitted "True"); anything else as it is.

    >>> [_as_flag(v) for v in (True, 1, 0.0, "False", "yes")]
    [True, True, False, False, 'yes']
    """
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        return _FLAG_NAMES.get(v.strip().lower(), v)
    return v


def category_names(values: pd.Series) -> np.ndarray:
    """Each value's category name; an integer-valued float names its integer.

    Ids read as floats (an int column next to a missing value, JSON ``1.0``) are the
    same categories as their ints, in a pandas ``category`` column too.

    >>> category_names(pd.Series([1.0, 2.5, "a", 1e20], dtype=object)).tolist()
    ['1', '2.5', 'a', '100000000000000000000']
    >>> category_names(pd.Series(pd.Categorical([2.0, 1.0]))).tolist()
    ['2', '1']

    Mixed cells are named as tags name them (:func:`_name`): a datetime its ISO date,
    whatever else its batch holds.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):   # its categories named by their own dtype
        # (as objects, float32 0.1 would print as 0.10000000149011612)
        names = category_names(pd.Series(values.cat.categories))
        return np.array([*names, _name(np.nan)], dtype=object)[values.cat.codes.to_numpy()]   # -1: missing
    if values.dtype == object or pd.api.types.is_datetime64_any_dtype(values.dtype):
        names = np.empty(len(values), dtype=object)   # filled one by one: names stay str
        names[:] = [_name(v) for v in values.astype(object).tolist()]
        return names
    names = values.astype(str).to_numpy(dtype=object)
    if pd.api.types.is_string_dtype(values.dtype):   # each distinct text named once (missing: its own code)
        codes, distinct = pd.factorize(names, use_na_sentinel=False)
        return np.array([_name(v) for v in distinct], dtype=object)[codes].reshape(-1)
    if pd.api.types.is_float_dtype(values.dtype):
        whole = (np.isfinite(values) & (values % 1 == 0)).to_numpy(dtype=bool, na_value=False)
        if whole.any():   # Python ints: exact however large (int64 overflows past 2**63)
            names[whole] = [str(int(v)) for v in values[whole].astype(float)]
    return names


def _plain_number(v):
    """A Fraction (any ``numbers.Real`` pandas does not know) or a Python int past int64 as
    its float, infinite past float64's range as Decimal("1e400") reads: pandas coerces the
    first to NaN and overflows on the second. A signalling NaN Decimal (on which pandas
    raises) as NaN. Anything else as is."""
    if isinstance(v, Decimal) and v.is_snan():
        return np.nan
    if isinstance(v, (bool, float, np.number, Decimal)) or not isinstance(v, numbers.Real) or (
            isinstance(v, int) and -2**63 <= v < 2**64):
        return v
    try:
        return float(v)
    except OverflowError:
        return np.inf if v > 0 else -np.inf
