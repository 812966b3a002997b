"""Number codecs: a regression target <-> a fixed-length sequence of number tokens.

A codec owns a vocabulary of number tokens, a per-position grammar (for
constrained decoding) and a fitted target scaling. ``decode(encode(y))``
reproduces ``y`` within :meth:`NumberCodec.precision` for ``y`` inside
:meth:`NumberCodec.representable_range`; values outside it are clipped.
Codecs: ``"digits"`` (:class:`DigitsCodec`, default) and ``"p10"``
(:class:`P10Codec`), built by :func:`make_codec`.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

__all__ = ["NumberCodec", "DigitsCodec", "P10Codec", "make_codec", "codec_from_config"]

_DIGITS = [f"<d{i}>" for i in range(10)]
# 10**n - 1 must be exact in float64 and int64 for the integer grid to be exact.
_MAX_DIGITS = 15


def _as_finite(y, what: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    bad = ~np.isfinite(y)
    if bad.any():
        raise ValueError(f"{what} got {int(bad.sum())} non-finite value(s) (NaN or inf)")
    return y


def _pwl(x, xp, fp):
    """Piecewise-linear interpolation clamped to ``[fp[0], fp[-1]]``; unlike ``np.interp``
    non-decreasing in ``x`` even under float rounding (segments capped at their right knot)."""
    j = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, len(xp) - 2)
    t = np.clip((x - xp[j]) / (xp[j + 1] - xp[j]), 0.0, 1.0)
    # at a right knot its value exactly: fp[j] + 1.0 * (fp[j+1] - fp[j]) may round below it
    return np.where(t == 1.0, fp[j + 1], np.minimum(fp[j] + t * (fp[j + 1] - fp[j]), fp[j + 1]))


def _times_pow10(x, p):
    """``x * 10**p``, multiplying or dividing by ``10.0**|p|`` (exact for ``|p| <= 22``)
    so the result is correctly rounded there; ``10.0**-3`` itself would be inexact."""
    p = np.asarray(p)
    with np.errstate(over="ignore"):  # the branch np.where discards may overflow
        return np.where(p >= 0, x * 10.0 ** np.abs(p), x / 10.0 ** np.abs(p))


def _check(ok: bool, name: str, expected: str, value):
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def _int_param(value, name: str, lo: int, hi: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and lo <= value <= hi
    return int(_check(ok, name, f"an integer in [{lo}, {hi}]", value))


class NumberCodec:
    """Abstract base of number codecs (see module docstring).

    Subclasses set ``_vocab``/``_grammar`` in ``__init__``, ``_param_names`` (constructor
    args), ``_state_names`` (fitted float attributes ``_<name>``) and implement ``_fit``,
    ``_encode``, ``_decode``, ``representable_range`` and ``precision``.

    Examples
    --------
    >>> codec = make_codec("digits", n_digits=3, scaling="minmax", margin=0.0).fit([0.0, 10.0])
    >>> codec.encode([2.5]).tolist()   # u = 0.25 -> nearest grid point 250/999
    [[2, 5, 0]]
    >>> round(float(codec_from_config(codec.get_config()).decode([2, 5, 0])), 4)
    2.5025
    """

    name: str = ""
    _param_names: tuple = ()
    _state_names: tuple = ()
    _fitted = False  # set per instance by fit() / from_config()

    def fit(self, y) -> "NumberCodec":
        """Fit the target scaling on a 1-D finite sample (``n >= 1``); return ``self``."""
        y = _as_finite(y, f"{type(self).__name__}.fit()")
        if y.ndim != 1 or y.size == 0:
            raise ValueError(f"fit() expects a non-empty 1-D array, got shape {y.shape}")
        with np.errstate(over="ignore", invalid="ignore"):  # subclasses check finiteness
            self._fit(y)
        self._fitted = True
        return self

    def _check_fitted(self, what: str) -> None:
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(y) first ({what})")

    @property
    def vocab(self) -> list[str]:
        """Number-token strings; the index in this list is the number-token id."""
        return list(self._vocab)

    @property
    def length(self) -> int:
        """Tokens per number (fixed)."""
        return self._grammar.shape[0]

    def grammar(self) -> np.ndarray:
        """bool ``[length, len(vocab)]``; ``grammar[p, t]``: token ``t`` allowed at ``p``."""
        return self._grammar.copy()

    def encode(self, y) -> np.ndarray:
        """Floats of shape ``S`` -> int64 ids ``S + (length,)``; out-of-range values are clipped."""
        self._check_fitted("encode")
        return self._encode(_as_finite(y, "encode()")).astype(np.int64)

    def decode(self, tokens) -> np.ndarray:
        """Ids ``S + (length,)`` -> floats ``S`` in original units; ``ValueError`` off-grammar."""
        self._check_fitted("decode")
        tok = np.asarray(tokens)
        if tok.ndim == 0 or tok.shape[-1] != self.length:
            raise ValueError(f"decode() expects shape (..., {self.length}), got {tok.shape}")
        integral = tok.dtype.kind in "iu" or (tok.dtype.kind == "f" and np.all(np.mod(tok, 1) == 0))
        _check(integral, "decode() tokens", "integer ids", tok.dtype)
        tok = tok.astype(np.int64)
        in_vocab = (tok >= 0) & (tok < len(self._vocab))
        ok = in_vocab & self._grammar[np.arange(self.length), np.where(in_vocab, tok, 0)]
        if not ok.all():
            pos = int(np.argwhere(~ok)[0][-1])
            raise ValueError(f"token id {int(tok[~ok][0])} is not allowed by the grammar at "
                             f"position {pos} ({int((~ok).sum())} violation(s))")
        return self._decode(tok)[()]

    def get_config(self) -> dict:
        """JSON-serializable state ``{"name", "params", "state"}`` (state None if unfitted)."""
        state = {k: np.asarray(getattr(self, "_" + k), dtype=float).tolist()  # plain Python floats
                 for k in self._state_names} if self._fitted else None
        return {"name": self.name, "params": self._params(), "state": state}

    def _params(self) -> dict:
        return {k: getattr(self, k) for k in self._param_names}

    @classmethod
    def from_config(cls, config: dict) -> "NumberCodec":
        """Rebuild a codec (fitted if the config was) from :meth:`get_config` output."""
        if cls is NumberCodec:
            return codec_from_config(config)
        if config.get("name") != cls.name:
            raise ValueError(f"config is for codec {config.get('name')!r}, not {cls.name!r}")
        codec = cls(**config.get("params", {}))
        if config.get("state") is not None:
            for k in cls._state_names:
                v = np.asarray(config["state"][k], dtype=np.float64)
                setattr(codec, "_" + k, v if v.ndim else float(v))
            codec._fitted = True
        return codec

    def representable_range(self) -> tuple[float, float]:
        """``(lo, hi)`` in original units; encode clips to it (requires fit)."""
        raise NotImplementedError

    def precision(self, y=None):
        """Worst-case ``|decode(encode(y)) - y|`` in original units (requires fit)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class DigitsCodec(NumberCodec):
    """Bounded codec: monotone map ``y -> u in [0, 1]``, then ``n_digits`` base-10 digits.

    ``u`` is rounded to the nearest grid point ``k / (10**n_digits - 1)`` (both ends
    exact), ``k`` written most significant digit first; each position allows
    ``<d0>``..``<d9>``. Any token sequence decodes inside :meth:`representable_range`.

    Parameters
    ----------
    n_digits : int, default 4
        Digits per number (1..15).
    scaling : {"quantile", "minmax"}, default "quantile"
        ``"minmax"``: linear on ``[min - margin*w, max + margin*w]``, ``w = max - min``
        (constant targets: window of width ``(1 + 2 margin) max(1, |y|)`` centred on y).
        ``"quantile"``: piecewise-linear through up to 1001 de-duplicated empirical
        quantiles at evenly spaced ``u`` in ``[m', 1 - m']``, ``m' = margin / (1 + 2 margin)``
        with both ends moved to the nearest grid point (so ``min(y)`` and ``max(y)`` encode
        and decode exactly), plus tails ``q_0 - margin*w -> 0``, ``q_K + margin*w -> 1``;
        minmax if constant.
    margin : float, default 0.1
        Relative head-room beyond the fitted data (>= 0).

    Examples
    --------
    >>> import numpy as np
    >>> codec = DigitsCodec(n_digits=2, scaling="minmax", margin=0.0).fit(np.array([0.0, 1.0]))
    >>> codec.encode(np.array([0.0, 0.5, 1.0, 7.0])).tolist()   # 7.0 is clipped to 1.0
    [[0, 0], [5, 0], [9, 9], [9, 9]]
    >>> float(codec.decode(np.array([5, 0])).round(4)), round(codec.precision(), 12)   # 1 / (2 * 99)
    (0.5051, 0.005050505051)
    """

    name = "digits"
    _param_names = ("n_digits", "scaling", "margin")
    _state_names = ("ky", "ku")  # knots of the monotone map y <-> u

    def __init__(self, n_digits: int = 4, scaling: str = "quantile", margin: float = 0.1):
        self.n_digits = _int_param(n_digits, "n_digits", 1, _MAX_DIGITS)
        self.scaling = _check(scaling in ("quantile", "minmax"), "scaling",
                              "'quantile' or 'minmax'", scaling)
        ok = (isinstance(margin, (int, float, np.integer, np.floating)) and not isinstance(margin, bool)
              and np.isfinite(margin) and margin >= 0)
        self.margin = float(_check(ok, "margin", "a finite float >= 0", margin))
        self._n = 10 ** self.n_digits - 1  # grid steps
        self._powers = 10 ** np.arange(self.n_digits - 1, -1, -1, dtype=np.int64)
        self._vocab = list(_DIGITS)
        self._grammar = np.ones((self.n_digits, 10), dtype=bool)

    def _fit(self, y):
        lo, hi = float(y.min()), float(y.max())
        knots = None
        if self.scaling == "quantile" and lo < hi:
            inner = np.unique(np.quantile(y, np.linspace(0.0, 1.0, min(1001, y.size))))
            if inner.size >= 2:
                w = self.margin * (inner[-1] - inner[0])
                tails = (inner[0] - w, inner[-1] + w)
                if tails[0] < inner[0] and tails[1] > inner[-1]:  # margin may vanish in float
                    # The data's ends sit on grid points, so min(y) and max(y) write themselves
                    # (off the grid they rounded into a tail: a zero came back as -0.001).
                    m = self.margin / (1 + 2 * self.margin)
                    first, last = max(np.rint(m * self._n), 1) / self._n, min(np.rint((1 - m) * self._n),
                                                                              self._n - 1) / self._n
                    knots = (np.concatenate([[tails[0]], inner, [tails[1]]]),
                             np.concatenate([[0.0], np.linspace(first, last, inner.size), [1.0]]))
                else:
                    knots = (inner, np.linspace(0.0, 1.0, inner.size))
        if knots is None:  # minmax, or quantile on (near-)constant data
            if lo < hi:
                lo, hi = lo - self.margin * (hi - lo), hi + self.margin * (hi - lo)
            else:  # constant target: a window of width (1 + 2 margin) max(1, |y|) around it,
                # with y itself a knot on a grid point (the grid's middle is between two), so it
                # decodes exactly (two knots put it there only up to rounding: 0 came back 1e-16)
                width = (1.0 + 2.0 * self.margin) * max(1.0, abs(lo))
                u0 = (self._n // 2) / self._n
                knots = (np.array([lo - u0 * width, lo, hi + (1.0 - u0) * width]), np.array([0.0, u0, 1.0]))
                lo, hi = knots[0][0], knots[0][-1]
            if knots is None:
                knots = (np.array([lo, hi]), np.array([0.0, 1.0]))
        if not np.all(np.isfinite(knots[0])):   # the data are finite (checked): the margin overflowed
            raise ValueError(f"the targets' range ({float(y.min())!r}, {float(y.max())!r}) widened by "
                             f"margin={self.margin} on each side overflows float64; scale y down (divide "
                             "it by a power of ten) or lower the margin")
        _check(np.all(np.diff(knots[0]) > 0), "target range", "non-degenerate in float64", (lo, hi))
        # a margin near or past half the grid on each side leaves the data's knots one grid point
        _check(np.all(np.diff(knots[1]) > 0), "margin", f"small enough to leave the data room on the "
               f"{self.n_digits}-digit grid (lower it, or raise n_digits)", self.margin)
        self._ky, self._ku = knots

    def _encode(self, y):
        k = np.rint(_pwl(y, self._ky, self._ku) * self._n).astype(np.int64)
        return (k[..., None] // self._powers) % 10

    def _decode(self, tok):
        return _pwl((tok * self._powers).sum(-1) / self._n, self._ku, self._ky)

    def representable_range(self) -> tuple[float, float]:
        """``(lo, hi)`` in original units: the decoded values of all-0 and all-9 digits."""
        self._check_fitted("representable_range")
        return float(self._ky[0]), float(self._ky[-1])

    def precision(self, y=None):
        """Worst-case ``|decode(encode(y)) - y|`` for ``y`` inside the range (clipping excluded).

        ``h = 1 / (2 (10**n_digits - 1))`` is half a grid step in ``u``. ``y=None``:
        global bound ``h * max_slope`` of the inverse map; for minmax this
        ``(hi - lo) * h`` is returned for every ``y``. Quantile with ``y``: the larger
        half-width, in ``y`` units, of the rounding cell ``[g - h, g + h]`` around
        the grid point ``g`` nearest to ``y`` (exact worst case; the map is monotone).
        Each bound includes float64's rounding of ``u`` and ``y`` (a few ulps): a
        fraction of a grid step at 14-15 digits, negligible below.
        """
        self._check_fitted("precision")
        h = 0.5 / self._n
        slope = np.diff(self._ky) / np.diff(self._ku)
        fp = 4 * np.finfo(np.float64).eps * (slope.max() + np.abs(self._ky).max())   # u's and y's rounding
        if y is None or self._ky.size == 2:
            bound = float(h * slope.max() + fp)
            return bound if y is None or np.ndim(y) == 0 else np.full(np.shape(y), bound)
        g = np.rint(_pwl(_as_finite(y, "precision()"), self._ky, self._ku) * self._n) / self._n
        mid = _pwl(g, self._ku, self._ky)
        lo = _pwl(np.maximum(g - h, 0.0), self._ku, self._ky)
        hi = _pwl(np.minimum(g + h, 1.0), self._ku, self._ky)
        return (np.maximum(mid - lo, hi - mid) + fp)[()]


class P10Codec(NumberCodec):
    """Sign / mantissa / exponent codec: ``z = ±d1.d2…dm × 10**e``.

    ``z = (y - mean) / std`` (``scaling="standard"``, ``std = 1`` if zero) or
    ``z = y`` (``"none"``); ``|z|`` is rounded to ``m = n_mantissa`` significant
    digits, with carry (9.99996 -> 1.000e1). Tokens: ``<+>``/``<->``, ``m`` digits
    ``<d0>``..``<d9>``, one of ``<E{min_exponent}>``..``<E{max_exponent}>``.

    * ``|z| > (10 - 10**(1-m)) * 10**max_exponent`` (e.g. 9.999e3) is clipped.
    * ``|z| < 10**min_exponent`` rounds to the nearer of 0 and ``10**min_exponent``.
      Zero is ``<+> <d0>… <E{min_exponent}>``; on decode a leading ``<d0>`` means 0
      whatever the other tokens (the grammar allows ``d1 = 0`` only for this), so
      every grammar-valid sequence decodes inside :meth:`representable_range`.

    Parameters
    ----------
    n_mantissa : int, default 4
    min_exponent, max_exponent : int, default -6, 3
        Exponent of the leading digit, ``-290 <= min <= max <= 290``.
    scaling : {"standard", "none"}, default "standard"

    Examples
    --------
    >>> import numpy as np
    >>> codec = P10Codec(scaling="none").fit(np.array([0.0]))
    >>> [codec.vocab[t] for t in codec.encode(np.array([-123.456]))[0]]
    ['<->', '<d1>', '<d2>', '<d3>', '<d5>', '<E2>']
    >>> codec.decode(codec.encode(np.array([-123.456, 9.99996, 1e-9]))).tolist()
    [-123.5, 10.0, 0.0]
    """

    name = "p10"
    _param_names = ("n_mantissa", "min_exponent", "max_exponent", "scaling")
    _state_names = ("mean", "std")

    def __init__(self, n_mantissa: int = 4, min_exponent: int = -6, max_exponent: int = 3,
                 scaling: str = "standard"):
        self.n_mantissa = _int_param(n_mantissa, "n_mantissa", 1, _MAX_DIGITS)
        self.min_exponent = _int_param(min_exponent, "min_exponent", -290, 290)
        self.max_exponent = _int_param(max_exponent, "max_exponent", self.min_exponent, 290)
        self.scaling = _check(scaling in ("standard", "none"), "scaling",
                              "'standard' or 'none'", scaling)
        # the largest representable |z| (9.99..9e{max_exponent}), computed as _decode computes it
        # (10.0 ** -k is inexact: all nines decoded a few ulps outside representable_range)
        self._zmax = float(_times_pow10(10**self.n_mantissa - 1, self.max_exponent - self.n_mantissa + 1))
        # ids: 0-1 sign, 2-11 digits, 12.. exp
        self._powers = 10 ** np.arange(self.n_mantissa - 1, -1, -1, dtype=np.int64)
        exps = range(self.min_exponent, self.max_exponent + 1)
        self._vocab = ["<+>", "<->"] + list(_DIGITS) + [f"<E{e}>" for e in exps]
        self._grammar = np.zeros((self.n_mantissa + 2, len(self._vocab)), dtype=bool)
        self._grammar[0, :2] = self._grammar[1:-1, 2:12] = self._grammar[-1, 12:] = True

    def _fit(self, y):
        self._mean, self._std = 0.0, 1.0
        if self.scaling == "standard":
            s = float(np.abs(y).max()) or 1.0   # on y / s: squares of targets past ~1e154 overflow
            mean, std = s * float((y / s).mean()), s * float((y / s).std())
            _check(np.isfinite(mean) and np.isfinite(std), "target mean/std", "finite", (mean, std))
            self._mean, self._std = mean, (std if std > 0 else 1.0)
            # the decoded range mean ± std * 9.99e{max_exponent} must stay a float64 (samples went inf)
            lo, hi = self._mean - self._std * self._zmax, self._mean + self._std * self._zmax
            _check(np.isfinite(lo) and np.isfinite(hi), "the codec's range (mean ± std * "
                   f"{self._zmax:.4g})", "finite in float64: scale the targets down, or lower max_exponent",
                   (lo, hi))

    def _mantissa(self, a, e):
        return np.rint(_times_pow10(a, self.n_mantissa - 1 - e))

    def _encode(self, y):
        m, emin = self.n_mantissa, self.min_exponent
        z = (y - self._mean) / self._std
        a = np.minimum(np.abs(z), self._zmax)
        with np.errstate(divide="ignore"):
            e = np.clip(np.floor(np.log10(a)), emin, self.max_exponent).astype(np.int64)
        mant = self._mantissa(a, e)
        # log10 can be off by one next to powers of ten: fix down, then carry up
        low = (mant < 10 ** (m - 1)) & (e > emin)
        e = np.where(low, e - 1, e)
        mant = np.where(low, self._mantissa(a, e), mant)
        carry = mant >= 10**m
        e = np.where(carry, e + 1, e)
        mant = np.where(carry, self._mantissa(a, e), mant)
        # below 10**emin only 0 and 10**emin are representable: take the nearest
        tiny = a < 10.0 ** emin
        zero = a < 0.5 * 10.0 ** emin
        mant = np.where(zero, 0, np.where(tiny, 10 ** (m - 1), mant)).astype(np.int64)
        e = np.where(tiny, emin, e)
        sign = np.where((z < 0) & ~zero, 1, 0)
        digits = (mant[..., None] // self._powers) % 10
        return np.concatenate([sign[..., None], digits + 2, (e - emin + 12)[..., None]], axis=-1)

    def _decode(self, tok):
        mant = ((tok[..., 1:-1] - 2) * self._powers).sum(-1)
        mant = np.where(tok[..., 1] == 2, 0, mant)  # leading <d0> means zero
        z = _times_pow10(mant, tok[..., -1] - 12 + self.min_exponent - self.n_mantissa + 1)
        z = np.where(tok[..., 0] == 1, -z, z)
        return z * self._std + self._mean

    def representable_range(self) -> tuple[float, float]:
        """``mean ± std * 9.99…9e{max_exponent}`` in original units."""
        self._check_fitted("representable_range")
        return self._mean - self._std * self._zmax, self._mean + self._std * self._zmax

    def precision(self, y=None):
        """Worst case ``std * max(0.5 * 10**(1 - n_mantissa) * |z|, 0.5 * 10**min_exponent)``
        of ``|decode(encode(y)) - y|`` for in-range ``y`` (relative rounding; the floor is
        the zero threshold), plus float64's rounding of ``z`` and of ``z * std + mean``
        (a few ulps of ``|mean| + std * |z|``: what is left of the bound for targets far
        from zero next to their spread, such as timestamps). ``y=None``: the bound at
        ``|z| = zmax``."""
        self._check_fitted("precision")
        a = self._zmax if y is None else np.minimum(
            np.abs((_as_finite(y, "precision()") - self._mean) / self._std), self._zmax)
        rel = 0.5 * 10.0 ** (1 - self.n_mantissa)
        fp = 4 * np.finfo(np.float64).eps * (abs(self._mean) + self._std * a)
        out = self._std * np.maximum(rel * a, 0.5 * 10.0 ** self.min_exponent) + fp
        return float(out) if np.ndim(out) == 0 else out


CODECS = {"digits": DigitsCodec, "p10": P10Codec}


def make_codec(name: str = "digits", **kwargs) -> NumberCodec:
    """Build an unfitted codec by name (``"digits"`` or ``"p10"``).

    Examples
    --------
    >>> make_codec("p10", n_mantissa=3).length
    5
    """
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; available: {sorted(CODECS)}")
    return CODECS[name](**kwargs)


class MultiTargetCodec:
    """Several targets written one after another, each with its own fitted codec.

    The number for target ``t`` occupies its own block of positions, so the grammar
    is the concatenation of the per-target grammars and the model knows from the
    position which target it is writing. All codecs must share one vocabulary.

    Examples
    --------
    >>> codec = MultiTargetCodec([make_codec("digits"), make_codec("digits")])
    >>> Y = np.array([[1.0, 100.0], [2.0, 300.0], [3.0, 200.0]])
    >>> codec.fit(Y).encode(Y).shape
    (3, 8)
    >>> np.round(codec.decode(codec.encode(Y)), 1).tolist()
    [[1.0, 100.0], [2.0, 300.0], [3.0, 200.0]]
    """

    name = "multi"

    def __init__(self, codecs):
        self.codecs = list(codecs)
        if not self.codecs or any(c.vocab != self.codecs[0].vocab for c in self.codecs):
            raise ValueError("MultiTargetCodec needs at least one codec, all with the same vocabulary.")
        bounds = np.cumsum([0] + [c.length for c in self.codecs])
        self._blocks = list(zip(bounds[:-1], bounds[1:]))

    def fit(self, Y) -> "MultiTargetCodec":
        Y = np.asarray(Y, dtype=float)
        if Y.ndim != 2 or Y.shape[1] != len(self.codecs):
            raise ValueError(f"Y must have shape (n, {len(self.codecs)}); got {Y.shape}.")
        for t, codec in enumerate(self.codecs):
            try:
                codec.fit(Y[:, t])
            except ValueError as err:   # which column: the codec sees one
                raise ValueError(f"target {t}: {err}") from None
        return self

    @property
    def vocab(self) -> list[str]:
        return self.codecs[0].vocab

    @property
    def length(self) -> int:
        return self._blocks[-1][1]

    def grammar(self) -> np.ndarray:
        return np.concatenate([c.grammar() for c in self.codecs], axis=0)

    def encode(self, Y) -> np.ndarray:
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 0 or Y.shape[-1] != len(self.codecs):   # extra columns were dropped silently
            raise ValueError(f"Y must have {len(self.codecs)} targets along its last axis; got shape {Y.shape}.")
        return np.concatenate([c.encode(Y[..., t]) for t, c in enumerate(self.codecs)], axis=-1)

    def decode(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens)
        if tokens.ndim == 0 or tokens.shape[-1] != self.length:
            raise ValueError(f"tokens must have {self.length} number positions along their last axis; "
                             f"got shape {tokens.shape}.")
        out = []
        for k, (c, (a, b)) in enumerate(zip(self.codecs, self._blocks)):
            try:
                out.append(c.decode(tokens[..., a:b]))
            except NotFittedError:   # a ValueError too: kept as it is, as encode's
                raise
            except ValueError as err:   # its positions count within the target's block
                raise ValueError(f"target {k} (number positions {a}..{b - 1}): {err}") from None
        return np.stack(out, axis=-1)

    def representable_range(self) -> list[tuple[float, float]]:
        return [c.representable_range() for c in self.codecs]

    def get_config(self) -> dict:
        return {"name": self.name, "codecs": [c.get_config() for c in self.codecs]}

    @classmethod
    def from_config(cls, config: dict) -> "MultiTargetCodec":
        if config.get("name") != cls.name or "codecs" not in config:   # a raw KeyError before
            raise ValueError(f"not a {cls.name!r} codec config (codec_from_config reads any codec's); "
                             f"got name {config.get('name')!r}.")
        return cls([codec_from_config(c) for c in config["codecs"]])


def codec_from_config(config: dict):
    """Inverse of :meth:`NumberCodec.get_config`; dispatches on ``config["name"]``.

    Parameters
    ----------
    config : dict
        Output of ``get_config`` of any codec (``"digits"``, ``"p10"``, or
        ``"multi"`` for a :class:`MultiTargetCodec`), possibly through JSON.

    Returns
    -------
    NumberCodec or MultiTargetCodec
        Fitted when the config was.

    Raises
    ------
    ValueError
        When ``config`` names no known codec.

    Examples
    --------
    >>> import json
    >>> codec = make_codec("p10", n_mantissa=3).fit([1.0, 2.0, 3.0])
    >>> clone = codec_from_config(json.loads(json.dumps(codec.get_config())))
    >>> clone
    P10Codec(n_mantissa=3, min_exponent=-6, max_exponent=3, scaling='standard')
    >>> np.array_equal(clone.encode([2.5, 7.0]), codec.encode([2.5, 7.0]))
    True
    >>> multi = MultiTargetCodec([make_codec("digits"), make_codec("digits")])
    >>> type(codec_from_config(multi.get_config())).__name__
    'MultiTargetCodec'
    """
    name = config.get("name") if isinstance(config, dict) else None
    if name == MultiTargetCodec.name:
        return MultiTargetCodec.from_config(config)
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r} in config; available: {sorted(CODECS)}")
    return CODECS[name].from_config(config)
