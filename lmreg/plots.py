"""Plots of benchmark records (matplotlib, written as PNG files).

Four figures from the records of :func:`lmreg.bench.run_benchmark`:

* ``r2_by_dataset.png``: test R^2 of every model, grouped by dataset;
* ``pred_vs_actual.png``: lmreg's predictions against the targets, one panel per dataset;
* ``reliability.png``: nominal vs observed coverage of lmreg's predictive quantiles;
* ``time_vs_accuracy.png``: fit seconds (log scale) against R^2, one marker per model.

Examples
--------
>>> import tempfile
>>> from lmreg.bench import run_benchmark
>>> recs = run_benchmark(["diabetes"], models=["mean", "ridge_tfidf"], out=None, verbose=False)
>>> [p.name for p in plot_all(recs, tempfile.mkdtemp())]
['r2_by_dataset.png', 'time_vs_accuracy.png']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["plot_all"]


#: Fields every record needs, and those an lmreg record needs besides.
_FIELDS = ("dataset", "model", "r2", "fit_s")
_LMREG_FIELDS = ("y_test", "pred", "reliability")


def _agg():
    """A factory of Figures, each on its own Agg canvas.

    No pyplot: the user's backend is left alone, and no figure is registered in
    pyplot's figure list, so a plot that fails halfway leaves nothing open.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plots need matplotlib: pip install 'lmreg[bench]'.") from err

    def figure(**kw):
        fig = Figure(**kw)
        FigureCanvasAgg(fig)  # files only; never needs a display
        return fig

    return figure


def _check(records):
    """Raise an error naming the missing or unusable field, before any file is written."""
    from .bench import MODELS

    if len(records) == 0:
        raise ValueError("no benchmark records to plot.")
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise TypeError(f"benchmark record {i} is not a dict (got {type(r).__name__}).")
        need = _FIELDS + (_LMREG_FIELDS if r.get("model") == "lmreg" else ())
        missing = [k for k in need if k not in r]
        if missing:
            raise ValueError(f"benchmark record {i} has no {', '.join(map(repr, missing))} field.")
        if r["model"] != "lmreg":
            continue
        if not isinstance(r["reliability"], Mapping):
            raise ValueError(f"benchmark record {i} (lmreg on {r['dataset']!r}): 'reliability' must map quantile "
                             f"levels to coverage; got {type(r['reliability']).__name__}.")
        where = f"benchmark record {i} (lmreg on {r['dataset']!r})"
        for k in ("y_test", "pred"):  # else an empty panel, or numpy's bare "zero-size array" error
            if not np.isfinite(np.asarray(r[k], dtype=float)).any():
                raise ValueError(f"{where}: {k!r} holds no finite value.")
        if np.shape(r["y_test"]) != np.shape(r["pred"]):   # matplotlib's error, after other files were written
            raise ValueError(f"{where}: 'y_test' and 'pred' differ in shape ({np.shape(r['y_test'])} and "
                             f"{np.shape(r['pred'])}).")
        for level, value in r["reliability"].items():   # a coverage may be None (NaN written as null)
            try:
                ok = 0 <= float(level) <= 1 and (value is None or 0 <= float(value) <= 1 or np.isnan(float(value)))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"{where}: 'reliability' must map quantile levels in [0, 1] to coverage; got "
                                 f"{level!r}: {value!r}.")
    if not _models(records):
        raise ValueError(f"no benchmark record of a known model ({', '.join(MODELS)}) to plot.")
    if np.isnan(np.asarray([r["r2"] for r in records], dtype=float)).all():
        raise ValueError("every benchmark record's 'r2' is NaN: nothing to plot.")


def _models(records):
    from .bench import MODELS

    present = {r["model"] for r in records}
    return [m for m in MODELS if m in present]


def _r2_by_dataset(figure, records, datasets, path):
    models = _models(records)
    r2 = {(r["dataset"], r["model"]): r["r2"] for r in records}
    fig = figure(figsize=(max(6, 1.4 * len(datasets)), 4))
    ax = fig.subplots()
    width = 0.8 / len(models)
    x = np.arange(len(datasets))
    for i, m in enumerate(models):
        vals = [max(r2.get((d, m), np.nan), -0.2) for d in datasets]  # clip very negative R^2
        ax.bar(x + (i - (len(models) - 1) / 2) * width, vals, width, label=m)
    ax.set_xticks(x, datasets, rotation=25, ha="right")
    ax.set_ylabel("test R$^2$ (clipped at -0.2)")
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(ncol=len(models), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.15))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _pred_vs_actual(figure, lm, path):
    n = len(lm)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig = figure(figsize=(3.2 * cols, 3.1 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, r in zip(axes.flat, lm):
        y, p = np.asarray(r["y_test"]), np.asarray(r["pred"])
        ax.scatter(y, p, s=4, alpha=0.35)
        lo, hi = np.nanmin([np.nanmin(y), np.nanmin(p)]), np.nanmax([np.nanmax(y), np.nanmax(p)])
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        ax.set_title(f"{r['dataset']} (R$^2$ {r['r2']:.3f})", fontsize=9)
        ax.set_xlabel("actual", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _reliability(figure, lm, path):
    fig = figure(figsize=(4.6, 4.4))
    ax = fig.subplots()
    for r in lm:   # keys as saved ("0.1") or as quantile_coverage returns them (0.1)
        points = sorted((float(k), v) for k, v in r["reliability"].items())
        ax.plot([k for k, _ in points], [v for _, v in points], marker="o", ms=3, label=r["dataset"])
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="ideal")
    ax.set_xlabel("nominal quantile level")
    ax.set_ylabel("observed fraction of targets below")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _time_vs_accuracy(figure, records, path):
    fig = figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for m in _models(records):
        rs = [r for r in records if r["model"] == m]
        ax.scatter([max(r["fit_s"], 1e-3) for r in rs], [max(r["r2"], -0.2) for r in rs], label=m, s=22)
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds (log scale)")
    ax.set_ylabel("test R$^2$ (clipped at -0.2)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _as_floats(record):
    """A copy of ``record`` whose numbers are floats, None (JSON's null) as NaN."""
    out = dict(record)
    for k in ("r2", "fit_s"):
        out[k] = np.nan if out[k] is None else float(out[k])
    for k in ("y_test", "pred"):
        if k in out:
            out[k] = np.asarray(out[k], dtype=float)
    if "reliability" in out:
        out["reliability"] = {k: (np.nan if v is None else float(v)) for k, v in out["reliability"].items()}
    return out


def plot_all(records, out_dir) -> list[Path]:
    """Write the figures for ``records`` into ``out_dir``; returns the paths written.

    The lmreg-only figures are skipped when the records hold no lmreg run. Figures
    are drawn without pyplot: the global matplotlib backend is left as it is.

    Examples
    --------
    >>> import tempfile
    >>> recs = [dict(dataset="d", model=m, r2=r2, fit_s=t) for m, r2, t in (("mean", 0.0, 0.01), ("hgb", 0.4, 1.0))]
    >>> [p.name for p in plot_all(recs, tempfile.mkdtemp())]
    ['r2_by_dataset.png', 'time_vs_accuracy.png']
    >>> plot_all([], tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: no benchmark records to plot.
    """
    _check(records)
    records = [_as_floats(r) for r in records]   # records read back from bench's JSON hold null for NaN
    figure = _agg()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    lm = [r for r in records if r["model"] == "lmreg"]
    written = [out / "r2_by_dataset.png"]
    _r2_by_dataset(figure, records, datasets, written[-1])
    if lm:
        written.append(out / "pred_vs_actual.png")
        _pred_vs_actual(figure, lm, written[-1])
        written.append(out / "reliability.png")
        _reliability(figure, lm, written[-1])
    written.append(out / "time_vs_accuracy.png")
    _time_vs_accuracy(figure, records, written[-1])
    return written
