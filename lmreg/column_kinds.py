"""Which kind a column is read as: what :meth:`~lmreg.serialize.Serializer.fit` infers from a
column's dtype and values (``num``, ``cat``, ``tags``, ``text``, ``datetime``, ``duration``),
and the checks behind its warnings about numbers written as text.

The inference reads a column's present values (neither missing nor blank): numbers are
numbers, ISO dates dates, lists of scalars tags; strings become categories or text by how
many distinct values and words they have.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from decimal import Decimal

import numpy as np
import pandas as pd

from .cells import _LISTS, _is_missing, _json_list

#: Cells that are numbers: int, float, numpy's, Fraction (numbers.Real) and Decimal (a bool
#: is an int to isinstance: the callers leave bools out).
_NUMBERS = (numbers.Real, Decimal)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _dtype_kind(dtype) -> str | None:
    """The kind ``dtype`` alone decides (None for object and string columns: their values do)."""
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype) or _arrow_dictionary(dtype):
        return "cat"    # a declared category dtype stays categorical, however many categories
    if pd.api.types.is_numeric_dtype(dtype):
        return "num"
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype) or (
            isinstance(dtype, pd.ArrowDtype) and pd.api.types.is_timedelta64_dtype(dtype.numpy_dtype)):
        return "duration"   # an Arrow duration is none for pandas' own test
    return None


def _arrow_dictionary(dtype) -> bool:
    """Whether ``dtype`` is an Arrow dictionary: a category column read with
    ``dtype_backend="pyarrow"`` (``read_parquet``, ``read_csv``)."""
    if not isinstance(dtype, pd.ArrowDtype):
        return False
    import pyarrow as pa

    return pa.types.is_dictionary(dtype.pyarrow_dtype)


def _blank(col: pd.Series) -> np.ndarray:
    """Which cells are strings of whitespace only: missing values as JSON often writes them.

    >>> _blank(pd.Series(["", " ", "x", None, 1.5], dtype=object)).tolist()
    [True, True, False, False, False]
    """
    if col.dtype != object and not pd.api.types.is_string_dtype(col.dtype):
        return np.zeros(len(col), dtype=bool)
    return np.array([isinstance(v, str) and not v.strip() for v in col.tolist()], dtype=bool).reshape(-1)


def _present(col: pd.Series, head: int | None = None) -> pd.Series:
    """The values of ``col`` that are neither missing nor blank (what its kind is read from);
    the first ``head`` of them only, read from as few of its values as give them."""
    present = col.dropna()
    if head is None:
        return present[~_blank(present)]
    start, parts, found = 0, [], 0
    while start < len(present) and found < head:   # one slice, unless blanks fill it
        part = present.iloc[start:start + head]
        part = part[~_blank(part)]
        parts, found, start = parts + [part], found + len(part), start + head
    return pd.concat(parts).iloc[:head] if parts else present


def _number_text(col: pd.Series) -> str | None:
    """An example, when the first 1,000 present values of ``col`` are all strings that read as
    numbers (JSON's ``"3.5"``), none a code with a leading zero (``"02139"``); else None.

    >>> _number_text(pd.Series(["3.5", " 12", None, "1e3"])), _number_text(pd.Series(["02139", "10001"]))
    ('3.5', None)
    """
    present = _present(col, 1000)
    if len(present) == 0 or not all(isinstance(v, str) for v in present):
        return None
    text = present.str.strip()
    if text.str.match(r"[+-]?0\d").any() or pd.to_numeric(text, errors="coerce").isna().any():
        return None
    return present.iloc[0]


def _comma_number(col: pd.Series) -> str | None:
    """An example, when the first 1,000 present values of ``col`` are all strings of digits
    with a comma in them (``"6,37"``, ``"1.234,5"``: a decimal comma, or ``"1,234"``); else None.

    >>> _comma_number(pd.Series(["6,37", "-0,5", None])), _comma_number(pd.Series(["6,37", "red"]))
    ('6,37', None)
    """
    if _dtype_kind(col.dtype) is not None:   # a declared category stays one, as asked
        return None
    present = _present(col, 1000).tolist()
    if not present or not all(isinstance(v, str) and _COMMA_NUMBER.fullmatch(v) for v in present):
        return None
    return present[0]


_COMMA_NUMBER = re.compile(r"\s*[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+\s*")


def _numbers_but(col: pd.Series) -> tuple[object, list[str]] | None:
    """``(a number, the other values)`` when the first 1,000 present values of ``col`` are
    numbers (or strings that read as numbers) but for at most a fifth of them, of at most
    three distinct values (``"?"`` or ``"n/a"`` marking missing ones), which made the column
    categories or text; else None.

    >>> _numbers_but(pd.Series([130, 95.5, 88, "?"] + [102] * 20, dtype=object))
    (130, ['?'])
    >>> _numbers_but(pd.Series(["1.5", "n/a", "-"] + ["3"] * 20))
    ('1.5', ['-', 'n/a'])
    >>> _numbers_but(pd.Series(["red", "?", "blue"] * 5)), _numbers_but(pd.Series(["02139", "?"] * 5))
    (None, None)
    """
    if _dtype_kind(col.dtype) is not None:   # a declared category (or bool): the user's choice
        return None
    present = _present(col, 1000)
    number = np.array([isinstance(v, _NUMBERS) and not isinstance(v, (bool, np.bool_))
                       for v in present], dtype=bool)
    strings = present[~number]
    if len(strings) == 0 or not all(isinstance(v, str) for v in strings):
        return None
    text = strings.str.strip()
    if text.str.match(r"[+-]?0\d").any():   # codes such as "02139": not quantities, markers or not
        return None
    read = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    others = sorted(set(text[~read]))
    if not others or len(others) > 3 or number.sum() + read.sum() < 4 * (~read).sum():
        return None
    return (present[number].iloc[0] if number.any() else strings[read].iloc[0]), others


#: Scripts written without spaces between words (Han, kana, Hangul, Thai).
_UNSPACED = re.compile("[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3]")


def _words(text: str) -> int:
    """About how many words ``text`` holds: those between spaces, and for scripts written
    without them, one per two of their characters (a Chinese word's typical length), so a
    sentence of Chinese is text, as its English translation is, not one long category.

    >>> review = "\u623f\u95f4\u5f88\u5b89\u9759\uff0c\u670d\u52a1\u4e5f\u5f88\u597d"   # 10 characters and a comma
    >>> _words("a quiet room"), _words(review), _words("\u6771\u4eac"), _words("\u6771\u4eac tower")
    (3, 5, 1, 2)
    """
    if text.isascii():
        return len(text.split())
    # a run without spaces is one word per two of its characters, not one more on top of them
    return sum(max(1, (n + 1) // 2) for n in (len(_UNSPACED.findall(w)) for w in text.split()))


def _infer_kind(col: pd.Series, max_categories: int) -> str:
    kind = _dtype_kind(col.dtype)
    if kind is not None:
        return kind
    present = _present(col)   # "" (JSON's "missing") does not make numbers or dates text
    if len(present) == 0:
        return "cat"
    head = present.iloc[:1000]
    scalar = (str, int, float, bool, np.generic, dt.date, dt.timedelta, Decimal)   # a Timestamp is a date
    lists = [isinstance(v, _LISTS) for v in head]
    if 2 * sum(lists) > len(lists) and all(
            isinstance(x, scalar) or _is_missing(x) for v, is_list in zip(head, lists)
            for x in (v if is_list else [v])):
        return "tags"   # JSON lists of scalars (genres, cast, countries); a lone "Drama" is one element
    if all(_json_list(v) is not None for v in head):
        return "tags"   # the same written as JSON text (a CSV column of '["Comedy", "Drama"]')
    if any(isinstance(v, _LISTS + (dict,)) for v in head):
        return "text"
    inferred = pd.api.types.infer_dtype(head, skipna=True)
    if inferred in ("timedelta", "period"):   # objects from a database cursor or a list of rows
        return "duration" if inferred == "timedelta" else "datetime"
    if all(isinstance(v, _NUMBERS) and not isinstance(v, bool) for v in present.iloc[:1000]):
        return "num"
    sample = present.astype(str).iloc[:200]
    if sample.map(lambda s: bool(_ISO_DATE.match(s.strip()))).all():
        return "datetime"
    n_unique = present.astype(str).nunique()
    mean_words = sample.map(_words).mean()
    # every value different (titles, names): as categories each would be unseen at predict
    distinct = n_unique == len(present) >= 10
    if n_unique <= max_categories and mean_words <= 4 and not distinct:
        return "cat"
    return "text"
