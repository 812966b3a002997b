"""Table files of the command line: CSV/TSV, parquet and JSON lines in, CSV or parquet out.

:func:`read_table` picks the reader from the file's extension (text formats may be compressed:
``rows.csv.gz``) and turns what the parsers report (a wrong separator, encoding or JSON layout)
into one error naming the file and the option that fixes it.
"""

from __future__ import annotations

import codecs
import functools
import io
import json
import re
from pathlib import Path

__all__ = ["READERS", "JSON_LINES", "WRITERS", "COMPRESSIONS", "check_compression", "read_table",
           "table_suffix"]

#: Table readers by file extension (``.json`` is read as JSON lines, one object per line, or as
#: one array of objects when it starts with ``[``).
READERS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "json", ".ndjson": "json", ".json": "json"}
#: Input files read as records (rows of keys) rather than as tables.
JSON_LINES = (".jsonl", ".ndjson", ".json")
#: Output formats of ``predict`` by file extension.
WRITERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Compressions of CSV and JSON lines files, by the extension after the format's (``.csv.gz``),
#: as pandas names them; parquet compresses its own columns.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}


def table_suffix(path) -> str:
    """The extension naming a table's format, before a compression's: ``".csv"`` for
    ``rows.CSV.gz``, ``".gz"`` for ``rows.gz``.

    Examples
    --------
    >>> table_suffix("data/rows.csv.gz"), table_suffix("model.v2.parquet")
    ('.csv', '.parquet')
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSIONS:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def read_table(path, sep=None, encoding=None, decimal=None, na_values=None):
    """Read a CSV/TSV, parquet (.parquet/.pq) or JSON lines (.jsonl/.ndjson/.json) file into a DataFrame.

    The format follows the extension (see ``READERS``); a CSV or JSON file may be
    compressed, named by a second extension (``rows.csv.gz``, ``.bz2``, ``.xz``, ``.zst``
    with the ``zstandard`` package, or a ``.zip`` holding that one file). A .json file may
    also hold one array of records, or one record over several lines. JSON strings stay
    strings: no dates are guessed from the values or the column names.

    Parameters
    ----------
    path : str or path-like
    sep : str or None, default=None
        Field separator of a .csv/.tsv file (None: ``","``, or a tab for .tsv;
        ``"tab"`` and a typed ``"\\t"`` mean a tab). Taken literally: ``"::"`` or
        ``"||"`` separate by those characters, not as a regular expression (quoted
        fields cannot hold a separator longer than one character).
    encoding : str or None, default=None
        Text encoding of a .csv/.tsv or JSON lines file (None: UTF-8; a JSON file may
        start with a byte-order mark).
    decimal : str or None, default=None
        Decimal mark of a .csv/.tsv file's numbers (None: ``"."``; ``","`` for
        ``0,637``).
    na_values : list of str or None, default=None
        The field texts of a .csv/.tsv file that mean a missing value, in place of
        pandas' defaults (``"NA"``, ``"null"``, ``"N/A"``, ``"nan"``, ...; a category
        ``"NA"``, North America, would read as missing). An empty field is always
        missing; ``[]`` keeps every other text as it is.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For a directory, an unsupported extension, a file its parser rejects, text that
        is not in ``encoding``, or a CSV read as one column whose header holds another
        separator (``;``, tab, ``|``).

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "rows.jsonl")
    ...     pd.DataFrame({"date": ["2020-01-01"], "y": [1.5]}).to_json(path, orient="records", lines=True)
    ...     df = read_table(path)
    >>> df["date"].tolist(), df["y"].tolist()
    (['2020-01-01'], [1.5])
    >>> read_table("no/such/table.csv")
    Traceback (most recent call last):
    ...
    FileNotFoundError: 'no/such/table.csv': no such file.
    """
    import pandas as pd

    if str(path) == "-":   # a file name, not standard input
        raise ValueError("'-': tables are read from files (their format follows the extension); write the "
                         "input to a .csv, .parquet or .jsonl file first.")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r}: no such file.")
    suffix = table_suffix(path)
    kind = READERS.get(suffix)
    if path.is_dir() and not (kind == "parquet" or kind is None and any(path.rglob("*.parquet"))):
        raise ValueError(f"{str(path)!r} is a directory, expected a data file (or a folder of parquet "
                         "files, as partition_cols or Spark write one).")
    if path.is_dir():   # a partitioned parquet dataset: pyarrow reads its files and partition columns
        kind = "parquet"
    if kind is None:
        raise ValueError(f"{str(path)!r}: unsupported file extension {suffix or '(none)'!r}; "
                         "use .csv/.tsv, .parquet/.pq, or JSON lines (.jsonl/.ndjson/.json), the text "
                         f"ones optionally compressed ({', '.join(f'.csv{c}' for c in COMPRESSIONS)}).")
    check_compression(path, kind, f"{str(path)!r}", writing=False)
    if kind != "csv" and (sep is not None or decimal is not None or na_values is not None):   # else unused
        raise ValueError(f"--sep, --decimal and --na apply to .csv/.tsv files; {str(path)!r} is {kind}.")
    if kind == "parquet" and encoding is not None:   # parquet stores its own (UTF-8) strings
        raise ValueError(f"--encoding applies to text files (CSV, JSON); {str(path)!r} is parquet.")
    if sep == "":
        raise ValueError("--sep must not be empty; give the field separator, e.g. --sep ';' or --sep tab.")
    if sep is None:
        sep = "\t" if suffix == ".tsv" else ","
    sep = {"\\t": "\t", "tab": "\t"}.get(sep, sep)  # a tab typed on a command line
    if decimal is not None and decimal == sep:
        raise ValueError(f"--sep and --decimal are both {sep!r}: a number such as 1{sep}5 would split into "
                         f"two fields; give the field separator another character, e.g. "
                         f"--sep {'tab' if sep == ';' else repr(';')}.")
    # pandas reads a longer separator as a regex: escape it, on the engine that takes it
    csv = ({"sep": re.escape(sep), "engine": "python"} if len(sep) > 1 else {"sep": sep}) if kind == "csv" else {}
    if na_values is not None:
        csv.update(keep_default_na=False, na_values=[""] + [str(v) for v in na_values])
    try:
        if kind == "csv":
            frame = pd.read_csv(path, encoding=encoding, decimal=decimal or ".", **csv)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:  # dtype=False: keep strings as strings (no date guessing from column names).
            extra = {} if int(pd.__version__.split(".")[0]) >= 3 else {"convert_dates": False}
            if encoding is None or codecs.lookup(encoding).name == "utf-8":   # utf-8, UTF8, ...
                encoding = "utf-8-sig"   # UTF-8, with or without a byte-order mark (as CSV reads it)
            with _open_text(path, encoding) as f:   # a .json file may hold one array of records
                array = f.read(4096).lstrip().startswith("[")
            # precise_float: the float Python's json and the CSV reader give (the default is 1 ulp off)
            read = functools.partial(pd.read_json, dtype=False, precise_float=True, **extra)
            try:
                frame = read(path, lines=not array, orient="records" if array else None, encoding=encoding)
            except ValueError:   # one record written over several lines (json.dump(record, f, indent=2))?
                record = None if array or suffix != ".json" else _one_object(path, encoding)
                if record is None:
                    raise
                frame = read(io.StringIO(json.dumps(record) + "\n"), lines=True)
    except UnicodeDecodeError as err:
        data = _read_bytes(path)
        try:   # the parser's offset is into its read buffer: decode the file itself for the file's
            data.decode(encoding or "utf-8")
            reason, where = err.reason, err.start
        except UnicodeDecodeError as whole:
            reason, where = whole.reason, whole.start
        shown = "UTF-8" if encoding in (None, "utf-8-sig") else encoding   # JSON's default reads a BOM too
        # UTF-16's byte-order mark (Excel's "Unicode text"); Windows' cp1252 puts quotes, dashes
        # and the euro sign in 0x80-0x9f, which latin-1 reads as invisible control characters
        guess = ("utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
                 else "cp1252" if re.search(rb"[\x80-\x9f]", data) else "latin-1")
        raise ValueError(f"could not read {str(path)!r}: it is not {shown} text ({reason} "
                         f"at byte {where}); pass its encoding, e.g. --encoding {guess}.") from None
    except LookupError as err:  # an unknown encoding name
        raise ValueError(f"--encoding {encoding!r}: {err}") from None
    except Exception as err:  # pandas / pyarrow parser errors of many types
        hint = " (expected JSON lines, one object per line, one array of objects, or one object)" if kind == "json" else ""
        if kind == "parquet" and "Multiple matches for FieldRef" in str(err):   # pyarrow's schema dump
            raise ValueError(f"{str(path)!r} has duplicate column names; give every column its own name.") from None
        if kind == "csv":   # a ';' or tab file with a comma in a field fails to parse before the check
            hint = _separator_hint(path, sep, encoding)
        raise ValueError(f"could not read {str(path)!r} as {kind}{hint}: {str(err).strip()}") from None
    if kind == "csv":
        _check_separator(frame, path, sep)
        frame = _check_fields(frame, path, sep, encoding, lambda **kw: pd.read_csv(
            path, encoding=encoding, decimal=decimal or ".", **csv, **kw))
    elif suffix == ".json" and not array:
        _check_not_columns(frame, path)
    frame.columns = [str(c) for c in frame.columns]   # JSON keys "1", "2" read as integers
    return frame


def _open_binary(path):
    """``path``'s bytes as a file, decompressed as its extension says (as pandas reads it)."""
    import bz2
    import gzip
    import lzma
    import zipfile

    compression = COMPRESSIONS.get(path.suffix.lower())
    if compression == "zip":   # pandas reads the archive's one file
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise ValueError(f"{str(path)!r} holds {len(names)} files; a .zip table holds one.")
            return io.BytesIO(archive.read(names[0]))
    if compression == "zstd":
        return needs_zstandard(f"{str(path)!r}: reading .zst", "decompress it first").open(path, "rb")
    return {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression, open)(path, "rb")


def _open_text(path, encoding):
    """``path`` as text in ``encoding``, decompressed; line ends kept, as the csv module reads them."""
    return io.TextIOWrapper(_open_binary(path), encoding=encoding or "utf-8", newline="")


def _read_bytes(path) -> bytes:
    with _open_binary(path) as f:
        return f.read()


def check_compression(path: Path, kind: str, name: str, writing: bool) -> None:
    """Refuse a compressed parquet file (parquet compresses its own columns) and a .zst one
    without the ``zstandard`` package; ``name`` is how the error names the file."""
    if kind == "parquet" and COMPRESSIONS.get(path.suffix.lower()):
        fix = f"name the file {path.with_suffix('').name!r}" if writing else (
            "decompress the file, or write it with to_parquet(compression=...)")
        raise ValueError(f"{name}: parquet compresses its own columns and is {'written' if writing else 'read'} "
                         f"uncompressed; {fix}.")
    if COMPRESSIONS.get(path.suffix.lower()) == "zstd":
        needs_zstandard(f"{name}: {'writing' if writing else 'reading'} .zst",
                        "write .csv.gz" if writing else "decompress it first")


def needs_zstandard(what: str, otherwise: str):
    """The ``zstandard`` module pandas reads and writes .zst files with, or an error saying
    ``what`` needs it."""
    try:
        import zstandard
    except ImportError:
        raise ValueError(f"{what} needs the zstandard package (pip install zstandard); or {otherwise}.") from None
    return zstandard


def _check_fields(frame, path, sep, encoding, read):
    """``frame`` read as the CSV's header names its fields, or an error. pandas takes the
    fields a first data row has beyond the header for row names (a row index) and shifts
    every value left: with one more whose value is empty (a separator at the end of each
    row) the file is read again without it, with a warning; a value there in any row, or
    more fields, are refused. Duplicate header names (pandas renames the second ``y`` to
    ``y.1``, a copy of the target among the inputs) are refused. ``read(**kw)`` reads the
    file again with pandas."""
    import warnings

    import pandas as pd

    from ._warnings import warn_user

    header, first = (_raw_rows(path, sep, encoding) + [[], []])[:2]
    extra = len(first) - len(header) if first else 0
    if not frame.index.equals(pd.RangeIndex(len(frame))):   # pandas' own reading of the same
        extra = max(extra, frame.index.nlevels)
    if extra == 1 and first and not first[-1].strip():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            again = read(index_col=False)   # pandas' reading for delimiters at the end of each line
        if not any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):   # no value dropped
            warn_user(f"{str(path)!r}: its rows end with a separator its header does not; the empty last "
                      "field of each row is ignored.")
            frame, extra = again, 0
    if extra > 0:   # fewer fields than the header (trailing empty ones left out) read as missing values
        raise ValueError(f"{str(path)!r}: its rows have {extra} field(s) more than its header names "
                         f"({len(header)}): a column without a name, such as row names in the first field "
                         "(R's write.table: row.names=FALSE); name it in the header, or check --sep and "
                         "--decimal.")
    names = [h for h in header if h.strip()]
    twice = sorted({h for h in names if names.count(h) > 1})
    if twice:
        raise ValueError(f"{str(path)!r} has duplicate column name(s) in its header: {', '.join(twice)}; "
                         "give every column its own name.")
    return frame


def _one_object(path, encoding):
    """The one JSON object a .json file holds, or None when it holds something else."""
    try:
        with _open_text(path, encoding) as f:
            value = json.load(f)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _raw_rows(path, sep, encoding, n=1):
    """The header and the first ``n`` rows of a CSV as text fields (empty lines and lines of
    blanks skipped, as pandas skips them): quoted fields read as the csv module reads them (without its limit
    on a field's length); a longer separator splits each line as the python engine's
    escaped pattern does (quotes do not protect it there either)."""
    import csv
    import itertools

    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(2**31 - 1)   # a long text field is a field, not an error
        with _open_text(path, encoding or "utf-8-sig") as f:
            if len(sep) == 1:
                rows = csv.reader(f, delimiter=sep)
            else:
                rows = (line.rstrip("\r\n").split(sep) for line in f)
            # a line of spaces alone is blank to pandas too
            out = list(itertools.islice((r for r in rows if r and not (len(r) == 1 and not r[0].strip())), n + 1))
    except csv.Error as err:
        raise ValueError(f"could not read {str(path)!r} as csv: {err}") from None
    finally:
        csv.field_size_limit(limit)
    if out and out[0]:
        out[0][0] = out[0][0].removeprefix("\ufeff")   # a byte-order mark read with --encoding utf-8
    return out


def _check_not_columns(frame, path) -> None:
    """One JSON object of columns (pandas' default ``to_json``: ``{"x": {"0": 1, "1": 2}}``)
    would read as a single row of dict cells: every cell a dict keyed by the same row
    numbers (a record's nested fields have names)."""
    if len(frame) != 1:
        return
    cells = list(frame.iloc[0])
    keys = {tuple(c) if isinstance(c, dict) else None for c in cells}
    if len(keys) == 1 and None not in keys and all(str(k).isdigit() for k in next(iter(keys))):
        n = len(keys.pop())
        raise ValueError(f"{str(path)!r} holds one JSON object of columns ({len(cells)} columns of {n} values "
                         "each), which would read as a single row; write one record per row, e.g. "
                         "df.to_json(path, orient='records', lines=True), or a .json array of records.")


def _separator_hint(path, sep: str, encoding) -> str:
    """`` (its header looks separated by ';': pass --sep ';')``, or "" when it does not."""
    try:
        with _open_text(path, encoding or "utf-8-sig") as f:
            header = f.readline()
    except (OSError, EOFError, UnicodeDecodeError, LookupError, ValueError):
        return ""
    for other, flag in _SEPARATORS:
        if other != sep and other in header and sep not in header:
            return f" (its header looks separated by {other!r}, not {sep!r}: pass --sep {flag}){_decimal(other)}"
    return ""


#: The separators a CSV read with another one is checked for, with the flag that reads them.
_SEPARATORS = ((",", "','"), (";", "';'"), ("\t", "tab"), ("|", "'|'"))


def _decimal(sep: str) -> str:
    """A ';' file usually writes decimal commas too."""
    return " (and --decimal ',' if its numbers have decimal commas)" if sep == ";" else ""


def _check_separator(frame, path, sep: str) -> None:
    """A CSV that parsed as one column named like ``a;b;c`` (and values like it) has another separator."""
    from pandas.api.types import is_numeric_dtype

    if frame.shape[1] != 1:
        return
    header = str(frame.columns[0])
    first = str(frame.iloc[0, 0]) if len(frame) else None
    # rows with more fields than the header (decimal commas in a ';' file) put the extra ones in the index
    shifted = frame.index.nlevels > 1 or not is_numeric_dtype(frame.index.dtype)   # pandas 3: dtype str
    for other, flag in _SEPARATORS:
        if other != sep and other in header and (first is None or other in first or shifted):
            raise ValueError(f"{str(path)!r} read as one column named {header[:60]!r}: its fields look "
                             f"separated by {other!r}, not {sep!r}; pass --sep {flag}{_decimal(other)}.")
