"""Rows of anything -> typed columns -> text.

The first stage of the pipeline. A :class:`Serializer` accepts a string, a list of
strings, a dict or a list of dicts (nested JSON), a pandas DataFrame of mixed dtypes
or a 2-D numpy array, and turns it into a :class:`Table`: an ordered list of typed
columns (``num``, ``cat``, ``tags`` or ``text``). The input tokenizer consumes the
table column-wise (numbers become value embeddings, categories single tokens, the
elements of a list (``tags``: genres, cast, countries) one token each, text BPE
pieces); :meth:`Serializer.to_text` renders the same rows as readable
``"name: value"`` text for text-only consumers (baselines, pretrained tokenizers).

Column kinds are inferred once in :meth:`Serializer.fit` and reused by
:meth:`Serializer.transform`, so training and prediction always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._warnings import warn_user
from .cells import _as_flag, _as_tags, _as_text, _is_flag, _plain_number, category_names, cell_text
from .column_kinds import _NUMBERS, _blank, _comma_number, _dtype_kind, _infer_kind, _number_text, _numbers_but
from .frames import is_records, to_frame

KINDS = ("num", "cat", "tags", "text")


@dataclass
class Column:
    """One typed column of a :class:`Table`.

    Parameters
    ----------
    name : str
        Column name (nested JSON fields read ``parent.child``).
    kind : {"num", "cat", "tags", "text"}
    values : ndarray of shape (n_rows,)
        Floats (NaN = missing) for ``num`` columns, Python strings (``None`` =
        missing) for ``cat`` and ``text`` columns, tuples of strings (``None`` =
        missing) for ``tags`` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"city": ["Oslo", None], "temp": [3.25, None]})
    >>> city, temp = Serializer().fit(df).transform(df).columns
    >>> city.kind, city.values.tolist()
    ('cat', ['Oslo', None])
    >>> temp.kind, temp.values.dtype, temp.values.tolist()
    ('num', dtype('float64'), [3.25, nan])
    """

    name: str
    kind: str
    values: np.ndarray


@dataclass
class Table:
    """Typed columns of equal length, in a fixed order.

    Built by :meth:`Serializer.transform` (columns in the fitted order) and read
    column-wise by :class:`~lmreg.tokenizer.InputTokenizer`; ``len(table)`` is the
    number of rows.

    Parameters
    ----------
    columns : list of Column

    Examples
    --------
    >>> import pandas as pd
    >>> s = Serializer().fit(pd.DataFrame({"city": ["Oslo", "Rome"], "temp": [3.25, 18.0]}))
    >>> table = s.transform([{"temp": 7.0, "wind": 3}])  # "wind" unseen, "city" absent
    >>> len(table), [(c.name, c.kind) for c in table.columns]
    (1, [('city', 'cat'), ('temp', 'num')])
    >>> s.render(table)
    ['city: <missing> | temp: 7']
    >>> len(Table())
    0
    """

    columns: list[Column] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns[0].values) if self.columns else 0


def _to_datetime(values: pd.Series) -> pd.Series:
    """Datetimes in UTC (NaT where missing or unreadable).

    Strings are read as ISO 8601, whatever mix of its forms a column holds (pandas'
    default takes the first value's format for all); other forms one by one.
    """
    if isinstance(values.dtype, pd.PeriodDtype):   # a period reads as its start
        values = values.dt.to_timestamp()
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.to_datetime(values, utc=True)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "datetime", "date"):
        # a number or a bool is no date (pandas reads 20200105 as a day, 5 as 1970); a column of
        # strings (the usual case) skips this per-value pass
        values = values.where(values.map(lambda v: not isinstance(v, _NUMBERS + (np.bool_,))))
    # one unit for both parses (pandas refuses to put ns values into a us column)
    ts = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601").dt.as_unit("us")
    missed = ts.isna() & values.notna()
    if missed.any():
        ts = ts.copy()
        ts[missed] = pd.to_datetime(values[missed], errors="coerce", utc=True, format="mixed").dt.as_unit("us")
    return ts


def _to_year(values: pd.Series) -> np.ndarray:
    """Datetimes -> fractional years (float; NaN where missing): the year plus the share of
    it elapsed, to the second (a leap year has 366 days).

    >>> _to_year(pd.Series(["2020-01-01", "2020-01-01T12:00:00", "2020-01-01T13:00:00+01:00"])).tolist()
    [2020.0, 2020.0013661202186, 2020.0013661202186]
    """
    ts = _to_datetime(values)
    t = ts.dt.tz_convert(None).to_numpy()
    year = t.astype("datetime64[Y]")
    start, end = year.astype(t.dtype), (year + np.timedelta64(1, "Y")).astype(t.dtype)
    return ts.dt.year.to_numpy(dtype=float, na_value=np.nan) + (t - start) / (end - start)


def _iso(values: pd.Series) -> np.ndarray:
    """Datetimes -> ISO 8601 text in UTC (``None`` where missing): the date, and the time
    unless it is midnight.

    >>> _iso(pd.Series(["2020-11-20", "2020-11-20T13:30:00+01:00", None])).tolist()
    ['2020-11-20', '2020-11-20 12:30:00', None]
    """
    out = np.empty(len(values), dtype=object)   # filled one by one: None stays None
    for i, t in enumerate(_to_datetime(values).dt.tz_convert(None)):
        out[i] = None if pd.isna(t) else t.date().isoformat() if t == t.normalize() else t.isoformat(sep=" ")
    return out


def _check_kind(name: str, kind: str, col: pd.Series) -> None:
    """Refuse values of another typed kind than ``fit`` saw: datetimes in a numeric column
    would read as nanoseconds since 1970, numbers in a datetime column as 1970 dates.

    >>> _check_kind("a", "num", pd.Series(np.array(["2020-01-01"], dtype="datetime64[ns]")))
    Traceback (most recent call last):
    ...
    ValueError: column 'a' was fitted as numbers, but X's holds datetimes (dtype datetime64[ns]); pass values of the kind fit saw.
    """
    got = _dtype_kind(col.dtype)
    if kind != "num" and pd.api.types.is_bool_dtype(col.dtype):   # a number's flag is 1/0; a date's is nothing
        got = "bool"
    if got in _TYPED and got != kind:
        raise ValueError(f"column {name!r} was fitted as {_TYPED[kind]}, but X's holds {_TYPED[got]} "
                         f"(dtype {col.dtype}); pass values of the kind fit saw.")


#: The kinds a column's dtype alone decides, as they are named in errors.
_TYPED = {"num": "numbers", "datetime": "datetimes", "duration": "durations", "bool": "booleans"}


class Serializer:
    """Turn rows of any supported input into typed columns, and render them as text.

    Parameters
    ----------
    numeric : {"embed", "text"}, default="embed"
        ``"embed"`` keeps numbers as floats (the model reads them through value
        embeddings, one token per column); ``"text"`` renders them as digit strings
        (datetimes as ISO dates).
    precision : int, default=4
        Significant digits when numbers are rendered as text.
    whole_digits : bool, default=True
        A rendered number of at least ``10**precision`` (below 1e15) keeps every
        integer digit, rounded to a whole number (``12346`` for 12345.67), instead
        of ``1.235e+04``, which gives rows whose integer parts differ one text.
        A model saved by an lmreg without this option loads with False.
    missing : str, default="<missing>"
        Text shown for a missing value.
    template : str, default="{name}: {value}"
        How one field renders in :meth:`to_text`.
    separator : str, default=" | "
        Between fields in :meth:`to_text`. Values are rendered as they are, not
        escaped (a pretrained backbone reads this text, and escapes would be new
        symbols to it): a value holding the separator or the ``missing`` text reads
        like two fields or a missing one. The model's own tokens
        (:meth:`transform`) keep every field and the missing marker apart.
    max_categories : int, default=64
        A string column with at most this many distinct short values is categorical;
        otherwise it is free text. A pandas ``category`` column is categorical whatever
        its number of categories.
    flatten_json : bool, default=True
        Expand JSON-object text columns and nested dicts into ``parent.child`` fields.
    categorical : tuple of str, default=()
        Columns read as categories whatever their values (ids such as ``1, 2, 3``
        would otherwise be numbers); an integer-valued float names its integer.

    Attributes
    ----------
    kinds_ : dict
        Column name -> inferred kind (``num``, ``datetime`` (read as fractional
        years), ``duration`` (timedeltas, read as seconds), ``cat``, ``tags`` (lists
        of scalars, e.g. from JSON) or ``text``).
    flags_ : list of str
        The categorical columns fitted from booleans: at ``transform`` their 1/0 and
        "true"/"false" read as True/False.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"city": ["Oslo", "Rome"], "temp": [3.25, 18.0]})
    >>> s = Serializer().fit(df)
    >>> s.kinds_
    {'city': 'cat', 'temp': 'num'}
    >>> s.to_text(df)[0]
    'city: Oslo | temp: 3.25'
    """

    def __init__(self, numeric="embed", precision=4, missing="<missing>",
                 template="{name}: {value}", separator=" | ", max_categories=64,
                 flatten_json=True, categorical=(), whole_digits=True):
        self.numeric = numeric
        self.precision = precision
        self.whole_digits = whole_digits
        self.missing = missing
        self.template = template
        self.separator = separator
        self.max_categories = max_categories
        self.flatten_json = flatten_json
        self.categorical = categorical

    def fit(self, X) -> "Serializer":
        """Infer the column order and kinds from ``X``."""
        if self.numeric not in ("embed", "text"):
            raise ValueError(f"numeric must be 'embed' or 'text', got {self.numeric!r}.")
        if "{value}" not in self.template:
            raise ValueError("template must contain '{value}'.")
        frame = to_frame(X, flatten_json=self.flatten_json)
        categorical = self._categorical()
        self.kinds_ = {name: "cat" if name in categorical else _infer_kind(frame[name], self.max_categories)
                       for name in frame.columns}
        self.flags_ = [name for name, kind in self.kinds_.items() if kind == "cat" and _is_flag(frame[name])]
        for name, kind in self.kinds_.items():
            example = _number_text(frame[name]) if kind == "text" else None
            if example is not None:
                warn_user(f"column {name!r} holds numbers written as strings (e.g. {example!r}); it is read "
                          "as text, digit pieces the model cannot compare by size. If they are quantities, "
                          "convert it (pd.to_numeric) to read them as numbers.")
            comma = _comma_number(frame[name]) if kind in ("cat", "text") and name not in categorical else None
            if comma is not None:
                warn_user(f"column {name!r} holds numbers written with a comma (e.g. {comma!r}); it is read as "
                          f"{'categories' if kind == 'cat' else 'text'}, not as numbers. If the comma is the "
                          "decimal mark, read the file with decimal=',' (pd.read_csv; the command line's "
                          "--decimal ','); if it groups thousands, with thousands=','.")
            mixed = _numbers_but(frame[name]) if kind in ("cat", "text") and name not in categorical else None
            if mixed is not None:
                (example, others), read = mixed, "categories" if kind == "cat" else "text"
                warn_user(f"column {name!r} holds numbers (e.g. {example!r}) but also {others} (not numbers); "
                          f"it is read as {read}, not as numbers. If those mark missing values, make them NaN "
                          f"(pd.to_numeric(X[{name!r}], errors='coerce'), or read_csv(na_values={others})).")
        return self

    def transform(self, X) -> Table:
        """Typed columns in the fitted order; unseen columns are ignored, absent ones missing."""
        if not hasattr(self, "kinds_"):
            raise RuntimeError("Serializer is not fitted: call fit first.")
        # A column fitted as JSON (a prefix of fitted "parent.child" names) is expanded row by
        # row: one bad row leaves the other rows' fields. One fitted as a field of its own never
        # is, however JSON-like a batch's values: a row reads the same in any batch.
        fitted_json = {name.rsplit(".", k)[0] for name in self.kinds_ for k in range(1, name.count(".") + 1)}
        frame = to_frame(X, flatten_json=self.flatten_json, json_columns=fitted_json - set(self.kinds_),
                         plain_columns=set(self.kinds_))
        n = len(frame)
        # a record's value, not pandas' dtype for the batch, decides: [{"when": 5}] reads as a
        # date that failed to read, alone as it does next to a row with a date
        records = isinstance(X, dict) or is_records(X)
        table = Table()
        for name, kind in self.kinds_.items():
            col = frame[name] if name in frame.columns else pd.Series([None] * n, dtype=object)
            if kind in ("num", "datetime", "duration"):
                if not col.notna().any():   # all missing (NaN, or pd.NaT, which pandas types as
                    col = pd.Series([None] * n, dtype=object)   # datetimes): read as absent
                if records and _dtype_kind(col.dtype) != kind:
                    col = col.astype(object)
                _check_kind(name, kind, col)
                convert = {"num": _to_float, "datetime": _to_year, "duration": _to_seconds}[kind]
                values = convert(col)
                unread = np.isnan(values) & col.notna().to_numpy()
                if unread.any():   # "" is missing, not a value that failed to read (looked at only here)
                    unread[unread] = ~_blank(col[unread])
                if unread.any():
                    warn_user(f"{int(unread.sum())} of {n} values of the {kind} column {name!r} could not be "
                              f"read as {'numbers' if kind == 'num' else kind + 's'} (e.g. "
                              f"{col[unread].iloc[0]!r}); they read as missing.")
                if self.numeric == "text" and kind == "datetime":
                    table.columns.append(Column(name, "text", _iso(col)))   # a date reads as a date
                elif self.numeric == "text":
                    values = np.array([None if np.isnan(v) else self._fmt(v) for v in values], dtype=object)
                    table.columns.append(Column(name, "text", values))
                else:
                    table.columns.append(Column(name, "num", values))
            elif kind == "cat":   # 2 and 2.0 (an int column next to a missing value) are one category
                if name in getattr(self, "flags_", ()):   # a flag passed as 1/0 or "true"/"false" is the flag
                    col = col.map(_as_flag, na_action="ignore")
                values = np.where(col.isna().to_numpy(), None, category_names(col)).astype(object)
                table.columns.append(Column(name, kind, values))
            else:
                cell = _as_tags if kind == "tags" else _as_text
                values = np.empty(n, dtype=object)   # filled one by one: tuples stay cells
                for i, v in enumerate(col.tolist()):
                    values[i] = cell(v)
                table.columns.append(Column(name, kind, values))
        return table

    def _categorical(self) -> set:
        return {str(c) for c in self.categorical}  # to_frame's column names are strings

    def to_text(self, X) -> list[str]:
        """Render each row as ``name: value`` fields joined by ``separator``."""
        return self.render(self.transform(X))

    def render(self, table: Table) -> list[str]:
        """Render a :class:`Table` (from :meth:`transform`) as one text line per row."""
        parts = []
        for col in table.columns:
            if col.kind not in ("num", "cat"):   # text and tags: mostly distinct, written one by one
                parts.append([self.template.format(name=col.name, value=self.missing if v is None else cell_text(v))
                              for v in col.values])
                continue
            # numbers and categories repeat: each distinct one written once (missing: code -1, last)
            codes, distinct = pd.factorize(np.asarray(col.values, dtype=float if col.kind == "num" else object))
            texts = [self._fmt(v) if col.kind == "num" else cell_text(v) for v in distinct] + [self.missing]
            parts.append(np.array([self.template.format(name=col.name, value=t) for t in texts],
                                  dtype=object)[codes].tolist())
        return [self.separator.join(row) for row in zip(*parts)]

    def _fmt(self, v: float) -> str:
        """
        >>> s = Serializer()
        >>> s._fmt(12345.67), s._fmt(9999.7), s._fmt(47.6062), s._fmt(3.0), s._fmt(1e20), s._fmt(1.5e-5)
        ('12346', '10000', '47.61', '3', '1e+20', '1.5e-05')
        """
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        text = f"{v:.{self.precision}g}"
        if getattr(self, "whole_digits", False) and "e" in text and 1 <= abs(v) < 1e15:
            return str(int(round(v)))   # 9999.7 rounds to "1e+04" otherwise
        return text

    def get_config(self) -> dict:
        """JSON-serializable parameters and fitted state."""
        return {"params": {k: getattr(self, k) for k in (
            "numeric", "precision", "missing", "template", "separator", "max_categories",
            "flatten_json", "categorical")} | {"whole_digits": getattr(self, "whole_digits", False)},
            "kinds": getattr(self, "kinds_", None),
            "flags": getattr(self, "flags_", [])}

    @classmethod
    def from_config(cls, config: dict) -> "Serializer":
        s = cls(**{"whole_digits": False, **config["params"]})   # saved before the option: the old texts
        if config.get("kinds") is not None:
            s.kinds_ = dict(config["kinds"])
            s.flags_ = list(config.get("flags", []))
        return s


def _to_seconds(values: pd.Series) -> np.ndarray:
    """Durations (timedeltas or strings such as ``"1 days 02:00:00"``) -> seconds (NaN where
    missing or unreadable).

    A bare number is no duration: pandas would read 5 and ``"5"`` as 5 nanoseconds.

    >>> _to_seconds(pd.Series(["1h", pd.Timedelta("2h"), "5", 5, pd.Timestamp("2020-01-01"), None],
    ...                       dtype=object)).tolist()
    [3600.0, 7200.0, nan, nan, nan, nan]
    """
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        values = values.map(_duration_cell).astype(object)
    return pd.to_timedelta(values, errors="coerce").dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)


def _duration_cell(v):
    """A timedelta, or a string that may spell one; None for anything else."""
    if isinstance(v, (dt.timedelta, np.timedelta64)):
        return v
    if not isinstance(v, str):
        return None
    try:
        float(v)
    except ValueError:
        return v
    return None


def _to_float(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype(float).to_numpy()
    if isinstance(col.dtype, pd.ArrowDtype) and pd.api.types.is_numeric_dtype(col.dtype):
        return col.astype("float64").to_numpy(dtype=float, na_value=np.nan)   # to_numeric drops an Arrow decimal's nulls
    if col.dtype == object:   # cell by cell (Series.map would type a batch of one Timestamp as dates)
        cells = col.to_numpy(dtype=object)
        odd = [i for i, v in enumerate(cells) if _plain_number(v) is not v]
        if odd:
            cells = cells.copy()
            for i in odd:
                cells[i] = _plain_number(cells[i])
            col = pd.Series(cells, index=col.index, dtype=object)
    values = pd.to_numeric(col, errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan)
