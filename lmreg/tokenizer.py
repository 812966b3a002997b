"""Typed columns -> token ids and numeric values.

The :class:`InputTokenizer` is trained at fit time, offline, with the ``tokenizers``
library: a byte-level-free BPE over the text columns, with digits split one per token
so numbers inside text stay legible. Tokens are spent only where they carry
information:

* every column has one field token ``<f:name>`` (a column name is one token, not a
  sub-word sequence);
* a numeric column is *only* that field token: its value travels in a parallel float
  array, quantile-normalised per column, and the model adds a value embedding to the
  field token (missing values get a learned "missing" vector instead);
* a categorical value is a single token ``<c:name=value>`` (unseen values map to
  ``<c:name=?>``);
* a list (``tags``: genres, cast, countries) is the field token followed by one
  ``<c:name=value>`` token per element seen at least ``min_tag_count`` times in
  training (at most ``max_tag_values`` values per column, the most frequent), in the
  list's order, and one ``<c:name=?>`` when any element is rarer or unseen;
* text is the field token followed by at most ``max_field_tokens`` BPE pieces (the
  characters of a number written out, ``NUMBER_CHARS``, are in the vocabulary whatever the
  training text holds: ``numeric="text"`` writes numbers there);
* a list longer than ``max_field_tokens`` keeps its first ``max_field_tokens`` tokens.

Every row starts with ``<bos>`` and ends with ``<sep>``, after which the model emits
the number tokens.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pandas as pd
from scipy.special import ndtri
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from ._warnings import warn_user
from .serialize import Table

PAD, UNK, BOS, SEP, MISSING = "<pad>", "<unk>", "<bos>", "<sep>", "<missing>"
SPECIALS = [PAD, UNK, BOS, SEP, MISSING]
#: Characters of a number written out (``-1.5e+07``, ``inf``), in the alphabet of every tokenizer
#: with a text column: a sign or an exponent the training text lacked would read as ``<unk>``.
NUMBER_CHARS = "0123456789+-.einf"

# Slot kinds in the parallel ``kind`` array: 0 = ordinary token, 1 = numeric value
# present, 2 = numeric value missing.
TOKEN, NUMBER, NUMBER_MISSING = 0, 1, 2


def _field(name: str) -> str:
    return f"<f:{name}>"


def _category(name: str, value: str | None, escaped: bool = True) -> str:
    """The token of one value (``None``: the column's unseen-value token ``<c:name=?>``).

    Escaped so that no two (column, value) pairs share a token: ``=`` and ``\\`` in a
    column name get a backslash, and so does a value that is ``?`` or starts with a
    backslash. ``escaped=False``: the tokens of a tokenizer saved before the escaping.
    """
    if value is None:
        value = "?"
    elif escaped and (value == "?" or value.startswith("\\")):
        value = "\\" + value
    if escaped:
        name = name.replace("\\", "\\\\").replace("=", "\\=")
    return f"<c:{name}={value}>"


class QuantileNormal:
    """Per-column monotone map of raw numbers to roughly standard-normal values.

    Robust to heavy tails and outliers (incomes, budgets) and fully described by
    its knots, so it saves as JSON. Ties are averaged the way scikit-learn's
    ``QuantileTransformer`` does, so a column that is mostly zero maps zero to
    the middle of its tied mass.

    Parameters
    ----------
    n_quantiles : int, default=256
        Knots of the map, at evenly spaced levels in ``[0, 1]``.

    Attributes
    ----------
    quantiles_ : ndarray of shape (n_quantiles,)
        Empirical quantiles of the finite fitted values (zeros if there were none).
    references_ : ndarray of shape (n_quantiles,)
        Their levels, ``linspace(0, 1, n_quantiles)``.

    Examples
    --------
    >>> import numpy as np
    >>> q = QuantileNormal(n_quantiles=5).fit(np.array([0.0, 1.0, 2.0, 3.0, 1e6, np.nan]))
    >>> q.quantiles_.tolist()
    [0.0, 1.0, 2.0, 3.0, 1000000.0]
    >>> q.transform(np.array([2.0, 0.0, 1e6, 1e9, np.nan])).round(2).tolist()  # 1e9 clipped
    [0.0, -3.72, 3.72, 3.72, nan]
    >>> zeros = QuantileNormal().fit(np.array([0.0] * 8 + [1.0, 5.0]))
    >>> zeros.transform(np.array([0.0, 5.0])).round(2).tolist()  # 0 sits mid-way in its ties
    [-0.28, 3.72]
    """

    def __init__(self, n_quantiles: int = 256):
        self.n_quantiles = n_quantiles

    def fit(self, x: np.ndarray) -> "QuantileNormal":
        """Store the quantiles of the finite values of ``x`` (NaN and inf are ignored)."""
        x = x[np.isfinite(x)]
        refs = np.linspace(0.0, 1.0, self.n_quantiles)
        s = _pow2_scale(x)   # on x / s: knots 1e308 apart overflowed to a NaN (read as missing)
        self.quantiles_ = s * np.quantile(x / s, refs) if len(x) else np.zeros_like(refs)
        self.references_ = refs
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Map ``x`` to z-scores in about ``[-3.72, 3.72]``; NaN stays NaN."""
        q, r = self.quantiles_, self.references_
        s = _pow2_scale(q[[0, -1]])   # a power of two: the same map, exactly, as on x itself
        q, x = q / s, np.clip(x, q[0], q[-1]) / s  # the clip also tames +-inf; NaN stays NaN
        u = 0.5 * (np.interp(x, q, r) - np.interp(-x, -q[::-1], -r[::-1]))
        return ndtri(np.clip(u, 1e-4, 1 - 1e-4))


def _pow2_scale(x: np.ndarray) -> float:
    """The largest power of two not above ``max(|x|)`` (1 for no values or only zeros):
    ``x`` divided by it lies in ``[-2, 2]``.

    >>> _pow2_scale(np.array([-3.0, 1.0])), _pow2_scale(np.array([])), _pow2_scale(np.array([1e308])) == 2.0**1023
    (2.0, 1.0, True)
    """
    m = float(np.abs(x).max()) if len(x) else 0.0
    return float(np.ldexp(1.0, np.frexp(m)[1] - 1)) if 0.0 < m < np.inf else 1.0


class InputTokenizer:
    """Encode a :class:`~lmreg.serialize.Table` into token ids and numeric values.

    Parameters
    ----------
    vocab_size : int, default=4000
        Upper bound of the BPE vocabulary learnt on the text columns (field and
        category tokens come on top), except that every character of the text is
        kept: an alphabet larger than it (Chinese, say) is the vocabulary.
    max_field_tokens : int, default=96
        BPE pieces kept per text field (the rest is truncated; numbers written as text
        too), and tokens per ``tags`` field (its first known elements, ``<c:name=?>``
        counted).
    max_length : int, default=384
        Tokens per row at most, ``<bos>`` and ``<sep>`` included; a longer row is cut
        (its later fields lost) and :meth:`encode` warns.
    lowercase : bool, default=True
        Lower-case text before BPE (small from-scratch models learn faster).
    min_tag_count : int, default=5
        A list element (``tags`` column) gets its own token when it occurs at least
        this often in training (a name seen once teaches nothing that transfers).
    max_tag_values : int, default=2000
        Own tokens per ``tags`` column at most (the most frequent elements).

    Examples
    --------
    >>> import pandas as pd
    >>> from lmreg.serialize import Serializer
    >>> df = pd.DataFrame({"note": ["big red house", "small flat"], "rooms": [5, 2]})
    >>> table = Serializer().fit(df).transform(df)
    >>> tok = InputTokenizer(vocab_size=100).fit(table)
    >>> ids, values, kinds = tok.encode(table)
    >>> tok.decode(ids[1])  # two distinct short strings: a categorical column
    '<bos> <c:note=small flat> <f:rooms> <sep>'
    >>> int(kinds[1][-2])  # the rooms field token carries a number
    1
    """

    def __init__(self, vocab_size=4000, max_field_tokens=96, max_length=384, lowercase=True,
                 min_tag_count=5, max_tag_values=2000):
        self.vocab_size = vocab_size
        self.max_field_tokens = max_field_tokens
        self.max_length = max_length
        self.lowercase = lowercase
        self.min_tag_count = min_tag_count
        self.max_tag_values = max_tag_values

    # -- fitting -----------------------------------------------------------------
    def fit(self, table: Table) -> "InputTokenizer":
        """Learn the BPE vocabulary, the field/category tokens and the numeric maps."""
        norm = [normalizers.NFKC()] + ([normalizers.Lowercase()] if self.lowercase else [])
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.normalizer = normalizers.Sequence(norm)
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
        has_text = any(c.kind == "text" for c in table.columns)   # else no text to read, at predict too
        trainer = trainers.BpeTrainer(vocab_size=self.vocab_size, special_tokens=SPECIALS, min_frequency=2,
                                      show_progress=False, initial_alphabet=list(NUMBER_CHARS) if has_text else [])
        texts = (v for c in table.columns if c.kind == "text" for v in c.values if v)
        tok.train_from_iterator(texts, trainer=trainer)

        extra, self.numeric_ = [], {}
        for col in table.columns:
            extra.append(_field(col.name))
            if col.kind == "cat":
                seen = sorted({v for v in col.values if v is not None})
                extra += [_category(col.name, v) for v in seen] + [_category(col.name, None)]
            elif col.kind == "tags":
                counts = Counter(x for v in col.values if v is not None for x in v)
                # ties broken by the element, not by first appearance: the same vocabulary in any row order
                ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_tag_values]
                common = [x for x, c in ranked if c >= self.min_tag_count]
                if counts and not common:   # e.g. a column of embedding vectors: every float seen once
                    warn_user(f"the tags column {col.name!r} keeps no element: each of its {len(counts)} "
                              f"distinct elements occurs fewer than min_tag_count={self.min_tag_count} "
                              "times, so it tells rows apart only by being empty or not. (A column of "
                              "numeric vectors reads as tags: give each component its own column.)")
                extra += [_category(col.name, x) for x in sorted(common)] + [_category(col.name, None)]
            elif col.kind == "num":
                self.numeric_[col.name] = QuantileNormal().fit(col.values.astype(float))
        tok.add_special_tokens(extra)
        self.tokenizer_ = tok
        self.kinds_ = {c.name: c.kind for c in table.columns}
        self.escaped_ = True
        return self

    @property
    def n_tokens(self) -> int:
        """Size of the input vocabulary."""
        return self.tokenizer_.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        return self.tokenizer_.token_to_id(PAD)

    # -- encoding ----------------------------------------------------------------
    def encode(self, table: Table, unseen: dict | None = None):
        """Encode every row; ``unseen``, a dict, receives for each categorical column whose
        values get no token of their own (unseen at fit, or too rare there) ``(how many, of
        how many non-missing values, an example)``.

        Returns
        -------
        ids : list of int32 arrays
            Token ids per row (variable length).
        values : list of float32 arrays
            Normalised numeric value at each numeric slot, 0 elsewhere.
        kinds : list of int8 arrays
            ``0`` ordinary token, ``1`` numeric value, ``2`` missing numeric value.

        Warns
        -----
        UserWarning
            When rows are longer than ``max_length``: how many, and the fields they lost.
        """
        t2i = self.tokenizer_.token_to_id
        n = len(table)
        per_col = []  # for each column: (name, kind, field token id, data per row)
        for col in table.columns:
            kind = self.kinds_.get(col.name)
            if kind is None:
                continue
            fid = t2i(_field(col.name))
            if kind == "num":
                z = self.numeric_[col.name].transform(col.values.astype(float))
                per_col.append((col.name, "num", fid, z))
            elif kind == "cat":
                unk = t2i(self._token(col.name, None))
                # each distinct value looked up once (None, missing: code -1, the unknown token)
                codes, distinct = pd.factorize(np.asarray(col.values, dtype=object))
                found = [t2i(self._token(col.name, v)) for v in distinct]
                ids = np.array([unk if i is None else i for i in found] + [unk], dtype=np.int64)[codes]
                if unseen is not None:   # values that got no token of their own
                    bad = np.array([i in (None, unk) for i in found] + [False])[codes]
                    if bad.any():
                        unseen[col.name] = (int(bad.sum()), int((codes >= 0).sum()), distinct[codes[bad.argmax()]])
                per_col.append((col.name, "cat", fid, ids))
            elif kind == "tags":
                per_col.append((col.name, "text", fid, [self._tag_ids(col.name, v) for v in col.values]))
            else:
                texts = ["" if v is None else v for v in col.values]
                # Structure tokens go in by id: a "<sep>" or "<f:x>" typed in the text is text.
                self.tokenizer_.encode_special_tokens = True
                enc = self.tokenizer_.encode_batch(texts, add_special_tokens=False)
                missing = t2i(MISSING)
                pieces = [e.ids[: self.max_field_tokens] if v is not None else [missing]
                          for e, v in zip(enc, col.values)]
                per_col.append((col.name, "text", fid, pieces))

        keep = self.max_length - 1
        ids_out, vals_out, kinds_out, n_cut, lost = _assemble(per_col, n, t2i(BOS), t2i(SEP), keep)
        if n_cut:   # the model never sees what was cut: say so rather than lose it silently
            shown = ", ".join(map(repr, lost[:5])) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            fields = f" (fields lost whole in some rows: {shown})" if lost else ""
            warn_user(f"{n_cut} of {n} rows are longer than max_length={self.max_length} tokens and were cut, "
                      f"so the model does not see their end{fields}. Raise max_length, or lower "
                      "max_field_tokens to leave room for the later fields.")
        return ids_out, vals_out, kinds_out

    def _token(self, name: str, value: str | None) -> str:
        """The fitted token of a category value (unescaped in a tokenizer pickled before the
        escaping, which has no ``escaped_``)."""
        return _category(name, value, getattr(self, "escaped_", False))

    def _tag_ids(self, name: str, tags) -> list[int]:
        """Known elements' tokens in order, then ``<c:name=?>`` if any was not known."""
        t2i = self.tokenizer_.token_to_id
        if tags is None:
            return [t2i(MISSING)]
        ids = [t2i(self._token(name, x)) for x in tags]
        known = [i for i in ids if i is not None]
        if len(known) == len(ids):
            return known[: self.max_field_tokens]
        return known[: self.max_field_tokens - 1] + [t2i(self._token(name, None))]

    def decode(self, ids) -> str:
        """Readable tokens of one encoded row (for inspection)."""
        return " ".join(self.tokenizer_.id_to_token(int(i)) for i in ids)

    # -- persistence -------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-serializable state (the BPE model is stored as the tokenizers JSON)."""
        return {
            "params": {k: getattr(self, k) for k in (
                "vocab_size", "max_field_tokens", "max_length", "lowercase", "min_tag_count",
                "max_tag_values")},
            "kinds": self.kinds_,
            "escaped": getattr(self, "escaped_", False),   # unpickled from before the escaping: False
            "numeric": {name: {"quantiles": q.quantiles_.tolist(), "references": q.references_.tolist()}
                        for name, q in self.numeric_.items()},
            "tokenizer": json.loads(self.tokenizer_.to_str()),
        }

    @classmethod
    def from_config(cls, config: dict) -> "InputTokenizer":
        tok = cls(**config["params"])
        tok.kinds_ = dict(config["kinds"])
        tok.escaped_ = bool(config.get("escaped", False))   # saved before the escaping: its own tokens
        tok.numeric_ = {}
        for name, state in config["numeric"].items():
            q = QuantileNormal(len(state["quantiles"]))
            q.quantiles_ = np.asarray(state["quantiles"], dtype=float)
            q.references_ = np.asarray(state["references"], dtype=float)
            tok.numeric_[name] = q
        tok.tokenizer_ = Tokenizer.from_str(json.dumps(config["tokenizer"]))
        return tok


def _assemble(per_col, n: int, bos: int, sep: int, keep: int):
    """Rows of ``<bos>``, each column's tokens, ``<sep>``: ``per_col`` holds ``(name, kind,
    field id, data)``, ``data`` a float array of z-scores (``num``: the field token carries
    them), an id array (``cat``) or each row's pieces (``text``, tags included, after the field
    token). A row longer than ``keep`` tokens is cut there. Every column is written into flat
    arrays of all rows at once (its tokens' positions from the lengths before it), then the
    rows are cut and split apart.

    Returns the ids, values and kinds per row, how many rows were cut, and the columns lost
    whole in some row (in the order the rows lose them)."""
    if n == 0:
        return [], [], [], 0, []
    lengths = np.ones((n, len(per_col)), dtype=np.int64)
    for j, (_, kind, _, data) in enumerate(per_col):
        if kind == "text":
            lengths[:, j] += np.fromiter((len(piece) for piece in data), dtype=np.int64, count=n)
    starts = 1 + np.cumsum(lengths, axis=1) - lengths   # each column's first position in its row
    out_of_room = starts >= keep
    first = np.where(out_of_room.any(axis=0), out_of_room.argmax(axis=0), n)
    lost = [per_col[j][0] for j in sorted(np.flatnonzero(first < n), key=lambda j: (first[j], j))]
    total = 1 + lengths.sum(axis=1)   # a row's tokens before the cut
    n_cut = int((total > keep).sum())
    row_at = np.cumsum(total) - total
    ids = np.empty(int(total.sum()), np.int32)
    vals, kinds = np.zeros(len(ids), np.float32), np.full(len(ids), TOKEN, np.int8)
    ids[row_at] = bos
    for j, (_, kind, fid, data) in enumerate(per_col):
        at = row_at + starts[:, j]
        ids[at] = data if kind == "cat" else fid
        if kind == "num":
            missing = np.isnan(data)
            vals[at] = np.where(missing, 0.0, data)
            kinds[at] = np.where(missing, NUMBER_MISSING, NUMBER)
        elif kind == "text":   # piece k of row r goes k + 1 after the row's field token
            counts = lengths[:, j] - 1
            pieces = np.fromiter(itertools.chain.from_iterable(data), dtype=np.int64, count=int(counts.sum()))
            ids[np.repeat(at + 1 - (np.cumsum(counts) - counts), counts) + np.arange(len(pieces))] = pieces
    # cut each row at keep tokens and close it with <sep>
    kept = np.minimum(total, keep) + 1
    out_at = np.cumsum(kept) - kept
    position = np.arange(len(ids)) - np.repeat(row_at, total)
    inside = position < keep
    target = (np.repeat(out_at, total) + position)[inside]
    rows = []
    for flat, end in ((ids, sep), (vals, 0.0), (kinds, TOKEN)):
        out = np.empty(int(kept.sum()), flat.dtype)
        out[target] = flat[inside]
        out[out_at + kept - 1] = end
        rows.append(np.split(out, (out_at + kept)[:-1]))
    return rows[0], rows[1], rows[2], n_cut, lost
