"""Accuracy benchmark: lmreg next to the classical baselines on the bundled suite.

``lmreg bench`` (and ``benchmarks/accuracy.py``) fits :class:`~lmreg.LMRegressor`
and any of the baselines of :mod:`lmreg.baselines` on each dataset's fixed train
split and scores them on its test split. One JSON record per dataset x model:
R^2, Spearman, RMSE, MAE, fit and predict seconds and peak resident-memory growth;
for lmreg also CRPS, 80%-interval coverage, quantile reliability, optimizer steps
and the test predictions (for plots). The file is rewritten after every record, so
an interrupted run keeps what it measured. Hardware, thread count, library versions
and the git commit go into every record.

Examples
--------
>>> recs = run_benchmark(["diabetes"], models=["mean", "ridge_tfidf"], out=None, verbose=False)
>>> sorted(r["model"] for r in recs)
['mean', 'ridge_tfidf']
>>> print(markdown_table(recs).splitlines()[0])
| dataset | model | R^2 | Spearman | RMSE | MAE | CRPS | cov80 | fit s | predict s | peak MB |
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

__all__ = ["MODELS", "RELIABILITY_LEVELS", "environment", "run_benchmark", "markdown_table", "main"]

#: Every model name the harness knows; ``lmreg`` plus the baselines.
MODELS = ("lmreg", "mean", "ridge_tfidf", "knn", "hgb", "lgbm")
#: Nominal quantile levels of the reliability record (and plot).
RELIABILITY_LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def environment(threads: int) -> dict:
    """Machine, thread count, library versions and git commit of this run.

    Examples
    --------
    >>> env = environment(threads=1)
    >>> env["threads"], sorted(env)[:3]
    (1, ['commit', 'cpus', 'gpu'])
    """
    import sklearn
    import torch
    import transformers

    from . import __version__

    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False, cwd=here).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, check=False, cwd=here).stdout.strip())
    except OSError:
        commit, dirty = "", False
    if commit and dirty:
        commit += "+uncommitted"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "gpu": gpu,
            "threads": threads, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "sklearn": sklearn.__version__,
            "lmreg": __version__, "commit": commit}


class _PeakRSS:
    """Peak growth of this process's resident memory while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        import psutil

        self._proc = psutil.Process()
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.mb = (self.peak - self.start) / 2**20


def _point_metrics(y, pred) -> dict:
    # Spearman is undefined for a constant prediction; 0 (no ranking skill) by convention.
    rho = float(spearmanr(y, pred).statistic) if np.ptp(pred) > 0 else 0.0
    return {"r2": float(r2_score(y, pred)), "spearman": rho,
            "rmse": float(np.sqrt(mean_squared_error(y, pred))), "mae": float(mean_absolute_error(y, pred))}


def _make(name: str, args_params: dict, max_time: float, threads: int, seed: int, n_samples: int):
    if name == "lmreg":
        from . import LMRegressor

        return LMRegressor(max_time=max_time, random_state=seed, n_threads=threads,
                           n_samples=n_samples, **args_params)
    from .baselines import make_baseline

    return make_baseline(name, seed)


def _lmreg_extras(est, Xt, yt) -> dict:
    from .metrics import crps, interval_coverage, quantile_coverage

    q, samples = est.predict_quantiles(Xt, RELIABILITY_LEVELS, return_samples=True)
    raw = np.quantile(samples, RELIABILITY_LEVELS, axis=1).T
    lo, hi = RELIABILITY_LEVELS.index(0.1), RELIABILITY_LEVELS.index(0.9)
    r = est.fit_result_
    rl = est.rl_result_
    return {"crps": crps(yt, samples), "coverage80": interval_coverage(yt, q[:, lo], q[:, hi]),
            "coverage80_raw": interval_coverage(yt, raw[:, lo], raw[:, hi]),
            "reliability": {str(k): v for k, v in quantile_coverage(yt, q, list(RELIABILITY_LEVELS)).items()},
            "steps": r.steps, "epochs": r.epochs, "stopped": r.stopped, "best_val_mae": r.best_val_mae,
            "fallback": bool(est.fallback_), "members": len(est.members_), "rl_steps_done": rl.steps if rl else 0,
            "rl_kept": rl.kept if rl else None,
            "rl_members_kept": sum(m.kept for m in est.member_rl_results_),
            "params": {k: v for k, v in est.get_params().items()
                       if isinstance(v, (int, float, str, bool, type(None)))}}


def evaluate(name, X, y, Xt, yt, *, params=None, max_time=600.0, threads=1, seed=0, n_samples=16):
    """Fit one model on ``(X, y)``, score it on ``(Xt, yt)``; returns the record.

    Examples
    --------
    >>> from lmreg import load_dataset
    >>> X, y = load_dataset("diabetes")
    >>> Xt, yt = load_dataset("diabetes", "test")
    >>> rec = evaluate("hgb", X, y, Xt, yt)
    >>> rec["model"], rec["n_test"], rec["r2"] > 0.2
    ('hgb', 88, True)
    """
    from threadpoolctl import threadpool_limits

    est = _make(name, params or {}, max_time, threads, seed, n_samples)
    with threadpool_limits(threads), _PeakRSS() as mem:
        t = time.perf_counter()
        est.fit(X, y)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = np.asarray(est.predict(Xt), dtype=float)
        predict_s = time.perf_counter() - t
        rec = {"model": name, "n_train": len(y), "n_test": len(yt), **_point_metrics(yt, pred),
               "fit_s": fit_s, "predict_s": predict_s}
        if name == "lmreg":
            rec.update(_lmreg_extras(est, Xt, yt))
            rec["y_test"] = np.asarray(yt, float).tolist()
            rec["pred"] = pred.tolist()
    rec["peak_mb"] = mem.mb
    return rec


def run_benchmark(datasets=None, models=MODELS, *, max_time=600.0, threads=1, seed=0, n_samples=16,
                  params=None, out="benchmarks/results/accuracy.json", train_rows=None, test_rows=None,
                  verbose=True) -> list:
    """Run ``models`` on ``datasets`` (default: all bundled); returns the records.

    ``datasets`` and ``models`` are names, or lists of them. ``train_rows`` / ``test_rows``
    keep only the first rows of each split (quick runs).

    Examples
    --------
    >>> recs = run_benchmark(["diabetes"], models=["mean", "hgb"], out=None, verbose=False)
    >>> [(r["dataset"], r["model"], r["n_test"]) for r in recs]
    [('diabetes', 'mean', 88), ('diabetes', 'hgb', 88)]

    ``lgbm`` is skipped with a note when LightGBM is not installed. The records are
    written to ``out`` (JSON; an earlier file is replaced, and rewritten after each
    record) when it is given. A dataset or model named twice runs once.
    """
    from .datasets import list_datasets, load_dataset

    # one name is that dataset or model (a string's letters were read as names)
    datasets = [datasets] if isinstance(datasets, str) else datasets
    models = [models] if isinstance(models, str) else models
    if datasets is not None and len(datasets) == 0:
        raise ValueError("no datasets given; pass names from list_datasets() (None runs them all).")
    names = list(dict.fromkeys(datasets or list_datasets()))   # in order, each once
    models = list(dict.fromkeys(models))
    try:
        import psutil  # noqa: F401  (every record's peak memory)
    except ImportError:
        raise ImportError("run_benchmark measures peak memory with psutil: pip install 'lmreg[bench]'.") from None
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}.")
    unknown = [ds for ds in names if ds not in list_datasets()]
    if unknown:  # before any model runs, not after the first datasets
        raise ValueError(f"unknown dataset(s) {unknown}; available: {', '.join(list_datasets())}.")
    if "lmreg" in models:  # a bad --param fails now, not after the baselines' runs
        _make("lmreg", params or {}, max_time, threads, seed, n_samples)._validate_params()
    env = environment(threads)
    records = []
    for ds in names:
        X, y = load_dataset(ds, "train", max_rows=train_rows)
        Xt, yt = load_dataset(ds, "test", max_rows=test_rows)
        for name in models:
            try:
                rec = evaluate(name, X, y, Xt, yt, params=params, max_time=max_time, threads=threads,
                               seed=seed, n_samples=n_samples)
            except ImportError as err:
                if name != "lgbm":  # only LightGBM is optional; anything else is a real failure
                    raise
                if verbose:
                    print(f"{ds:20s} {name:12s} skipped: {err}", flush=True)
                continue
            except (ValueError, TypeError) as err:   # e.g. knn on fewer rows than neighbours
                raise ValueError(f"{ds}, model {name}: {err}") from err
            rec.update(dataset=ds, max_time=max_time if name == "lmreg" else None, env=env,
                       train_rows=train_rows, test_rows=test_rows)
            records.append(rec)
            if verbose:
                print(f"{ds:20s} {name:12s} R2 {rec['r2']:7.3f}  MAE {rec['mae']:.4g}  fit {rec['fit_s']:.1f}s"
                      f"  predict {rec['predict_s']:.1f}s  peak {rec['peak_mb']:.0f} MB", flush=True)
            if out:
                os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
                tmp = f"{out}.tmp"
                with open(tmp, "w") as f:   # strict JSON (jq, JSON.parse): no NaN or Infinity
                    json.dump(_strict_json(records), f, indent=1, allow_nan=False)
                os.replace(tmp, out)
    return records


def _strict_json(value):
    """``value`` with every non-finite float as None (``best_val_mae`` is inf without
    validation rows), for a results file any JSON parser reads.

    >>> _strict_json([{"a": float("inf"), "b": [1.0, float("nan")]}])
    [{'a': None, 'b': [1.0, None]}]
    """
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def markdown_table(records) -> str:
    """One markdown row per record, grouped by dataset; the best R^2 of each dataset in bold.

    Examples
    --------
    >>> rec = dict(dataset="d", model="mean", r2=0.0, spearman=0.0, rmse=2.0, mae=1.5, fit_s=0.0,
    ...            predict_s=0.0, peak_mb=0.0)
    >>> print(markdown_table([rec]).splitlines()[-1])
    | d | mean | **0.000** | 0.000 | 2 | 1.5 |  |  | 0.0 | 0.0 | 0 |
    """
    cols = "| dataset | model | R^2 | Spearman | RMSE | MAE | CRPS | cov80 | fit s | predict s | peak MB |"
    lines = [cols, "|" + "---|" * 2 + "---:|" * 9]
    best = {}
    for r in records:
        best[r["dataset"]] = max(best.get(r["dataset"], -np.inf), r["r2"])
    fmt = lambda v, spec: "" if v is None else format(v, spec)  # noqa: E731
    for r in sorted(records, key=lambda r: (r["dataset"], MODELS.index(r["model"]))):
        r2 = f"{r['r2']:.3f}"
        if r["r2"] == best[r["dataset"]]:
            r2 = f"**{r2}**"
        lines.append(f"| {r['dataset']} | {r['model']} | {r2} | {r['spearman']:.3f} | {r['rmse']:.4g} | "
                     f"{r['mae']:.4g} | {fmt(r.get('crps'), '.4g')} | {fmt(r.get('coverage80'), '.2f')} | "
                     f"{r['fit_s']:.1f} | {r['predict_s']:.1f} | {r['peak_mb']:.0f} |")
    return "\n".join(lines)


def _check_outputs(args) -> None:
    """Refuse output paths that could not be written before any model runs (a bad one
    used to fail after the run, losing its table)."""
    from .model_folder import unwritable

    same = args.out and args.markdown and (
        Path(args.out).expanduser().resolve() == Path(args.markdown).expanduser().resolve())
    if same:
        raise ValueError(f"--out and --markdown both name {args.out!r}: the table would replace the results.")
    if args.plots:
        plots = Path(args.plots).expanduser().resolve()
        for what, value in (("--out", args.out), ("--markdown", args.markdown)):
            file = Path(value).expanduser().resolve() if value else None
            if file is not None and (file == plots or file in plots.parents):
                raise ValueError(f"--plots {args.plots!r} is {'the file' if file == plots else 'inside the file'} "
                                 f"{what} writes ({value!r}): the plots could not be written after the run.")
        from .plots import _agg

        _agg()   # matplotlib importable: else the plots fail after every model has run
    for what, value, folder in (("--out", args.out, False), ("--markdown", args.markdown, False),
                                ("--plots", args.plots, True)):
        if not value:
            continue
        path = Path(value).expanduser().resolve()
        if path.is_dir() != folder and path.exists():
            raise ValueError(f"{what} {value!r} is a {'file' if folder else 'folder'}; it must name a "
                             f"{'folder' if folder else 'file'}.")
        problem = unwritable(path)
        if problem:
            raise ValueError(f"{what} {value!r} cannot be written: {problem}.")


def main(argv=None) -> int:
    """``lmreg bench``: parse the command line, run, print (and write) the table and plots.

    Examples
    --------
    >>> main(["--datasets", "diabetes", "--models", "mean", "--out", ""])  # doctest: +ELLIPSIS
    diabetes             mean         R2  ...
    0
    """
    from .cli import parse_params

    p = argparse.ArgumentParser(prog="lmreg bench", description=__doc__.splitlines()[0])
    # "extend": a repeated option adds to the earlier one rather than replacing it
    p.add_argument("--datasets", nargs="+", action="extend", default=None, help="default: every bundled dataset")
    p.add_argument("--models", nargs="+", action="extend", default=None, choices=MODELS,
                   help=f"default: {' '.join(MODELS)}")
    p.add_argument("--max-time", type=float, default=600.0, help="lmreg's fit budget per dataset (s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--n-samples", type=int, default=16, help="lmreg's samples per row (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="random_state of every model (default: 0)")
    p.add_argument("--param", nargs="+", action="extend", default=[], help="LMRegressor parameters as name=value")
    p.add_argument("--train-rows", type=int, default=None, help="keep the first N training rows")
    p.add_argument("--test-rows", type=int, default=None, help="keep the first N test rows")
    p.add_argument("--out", default="benchmarks/results/accuracy.json",
                   help="JSON results file, replaced (default: %(default)s; '' writes none)")
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    p.add_argument("--plots", default=None, help="folder for the PNG plots (needs matplotlib)")
    args = p.parse_args(argv)
    args.out, args.plots = (str(Path(v).expanduser()) if v else v for v in (args.out, args.plots))
    # checked before any model runs (--max-time by LMRegressor's own check)
    for flag, value, low in (("--threads", args.threads, 1), ("--n-samples", args.n_samples, 1),
                             ("--train-rows", args.train_rows, 1), ("--test-rows", args.test_rows, 2)):
        if value is not None and value < low:   # R2 needs two test rows
            raise ValueError(f"{flag} must be at least {low}; got {value}.")
    params = parse_params(args.param)
    flags = {"max_time": "--max-time", "random_state": "--seed", "n_samples": "--n-samples", "n_threads": "--threads"}
    for name in sorted(set(params) & set(flags)):   # _make passes these itself
        raise ValueError(f"--param {name}: set it with {flags[name]}.")
    _check_outputs(args)
    records = run_benchmark(args.datasets, args.models or list(MODELS), max_time=args.max_time, threads=args.threads,
                            seed=args.seed, n_samples=args.n_samples, params=params,
                            out=args.out, train_rows=args.train_rows, test_rows=args.test_rows)
    table = markdown_table(records)
    print("\n" + table)
    if args.markdown:   # its folder made, as --out's and --plots' are
        Path(args.markdown).expanduser().parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).expanduser().write_text(table + "\n")
    if args.plots:
        from .plots import plot_all

        for path in plot_all(records, args.plots):
            print(f"wrote {path}")
    return 0
