"""Command line: ``lmreg demo|fit|predict|evaluate|bench`` (also ``python -m lmreg ...``).

``demo`` fits LMRegressor on a bundled dataset within a time budget and prints the
test R^2, MAE and fit time next to a TF-IDF + ridge baseline on the same rows.

``fit`` trains on a table file (CSV, parquet, or JSON lines, chosen by extension: :mod:`lmreg.tables`)
and saves the model directory; ``predict`` writes predictions (and optionally
quantiles) for a table to CSV or parquet; ``evaluate`` prints point and
probabilistic metrics against a target column; ``bench`` runs :mod:`lmreg.bench`
(lmreg next to the classical baselines on the bundled suite). User errors (missing files or
columns, unsupported extensions, unknown parameters, unreadable models) print
``lmreg: error: ...`` to stderr and return exit code 2; a run that fails otherwise (out of
memory, a runtime error) prints the same way and returns 1.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import stat
import sys
import tempfile
import time
import warnings
from pathlib import Path

from ._warnings import each_once
from .table_columns import check_not_input, check_target, input_columns, lift_field, without_unnamed
from .tables import COMPRESSIONS, WRITERS, check_compression, read_table, table_suffix


def _demo(args) -> int:
    import numpy as np
    from sklearn.metrics import mean_absolute_error, r2_score

    from . import LMRegressor, list_datasets, load_dataset
    from .baselines import tfidf_ridge

    if args.dataset not in list_datasets():
        print(f"lmreg: error: unknown dataset {args.dataset!r}; available: {', '.join(list_datasets())}",
              file=sys.stderr)
        return 2
    X, y = load_dataset(args.dataset, "train")
    Xt, yt = load_dataset(args.dataset, "test")
    print(f"{args.dataset}: {len(y)} train rows, {len(yt)} test rows; lmreg budget {args.max_time:.0f} s, "
          f"{args.threads} thread(s)", flush=True)
    rows = []
    t = time.perf_counter()
    est = LMRegressor(max_time=args.max_time, random_state=args.seed, n_threads=args.threads,
                      verbose=args.verbose).fit(X, y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = est.predict(Xt)
    rows.append(("lmreg", r2_score(yt, pred), mean_absolute_error(yt, pred), fit_s, time.perf_counter() - t))
    t = time.perf_counter()
    ridge = tfidf_ridge().fit(X, y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = ridge.predict(Xt)
    rows.append(("tfidf_ridge", r2_score(yt, pred), mean_absolute_error(yt, pred), fit_s,
                 time.perf_counter() - t))
    mean_pred = np.full(len(yt), float(np.mean(y)))
    rows.append(("mean", r2_score(yt, mean_pred), mean_absolute_error(yt, mean_pred), 0.0, 0.0))
    print(f"\n{'model':<12} {'test R2':>8} {'test MAE':>10} {'fit s':>8} {'predict s':>10}")
    for name, r2, mae, fs, ps in rows:
        print(f"{name:<12} {r2:>8.3f} {mae:>10.4g} {fs:>8.1f} {ps:>10.1f}")
    r = est.fit_result_
    members = f", {len(est.members_)} networks averaged" if len(est.members_) > 1 else ""
    print(f"\nlmreg: {r.steps} optimizer steps ({r.epochs:.1f} epochs), stopped by {r.stopped}{members}, "
          f"{est.n_samples} samples per row, decision rule {est.decision}")
    return 0


# -- helpers ---------------------------------------------------------------------
def parse_value(text: str):
    """Parse a ``--param`` value: int, float, true/false, none, a JSON object or list, else the string.

    Examples
    --------
    >>> [parse_value(v) for v in ["8", "-2", "1e-3", "0.5", "True", "false", "none", "p10"]]
    [8, -2, 0.001, 0.5, True, False, None, 'p10']
    >>> parse_value('{"group_size": 4}'), parse_value('["query", "value"]')
    ({'group_size': 4}, ['query', 'value'])
    """
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError as err:
            raise ValueError(f"--param value {text!r} looks like JSON but does not parse: {err}") from None
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_params(items) -> dict:
    """Turn ``["name=value", ...]`` into LMRegressor keyword arguments, checking the names.

    Examples
    --------
    >>> parse_params(["n_samples=8", "codec=p10"])
    {'n_samples': 8, 'codec': 'p10'}
    """
    from .estimator import LMRegressor

    valid = sorted(LMRegressor().get_params())
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--param expects NAME=VALUE, got {item!r}.")
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown parameter {name!r} in --param{hint}; valid names: {', '.join(valid)}.")
        if name in params:
            raise ValueError(f"--param {name} is given twice.")
        params[name] = parse_value(value)
    return params


def _parse_quantiles(text: str) -> list[float]:
    try:
        levels = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--quantiles expects comma-separated levels such as 0.1,0.9; got {text!r}.") from None
    if not levels or not all(0 < q < 1 for q in levels) or len(set(levels)) != len(levels):
        raise ValueError(f"--quantiles must be distinct levels in (0, 1); got {text!r}.")
    return levels


def _na_list(text: str) -> list[str]:
    """``--na``: comma-separated texts, each taken literally (``''``: none besides the empty field)."""
    return [part for part in text.split(",") if part != ""]


def _output_path(out: str, formats: dict) -> Path:
    from .model_folder import is_saved_model

    path = Path(out).expanduser()
    kind = formats.get(table_suffix(path))
    if kind is None:
        raise ValueError(f"--out {out!r}: unsupported file extension {table_suffix(path) or '(none)'!r}; "
                         f"use {', '.join(formats)} (.csv optionally compressed: .csv.gz, .csv.xz, ...).")
    check_compression(path, kind, f"--out {out!r}", writing=True)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--out {out!r}: folder {str(path.parent)!r} does not exist.")
    real = Path(os.path.realpath(path))   # a link is written through: its target's folder must exist
    if not real.parent.is_dir():
        raise FileNotFoundError(f"--out {out!r} links to {str(real)!r}, whose folder does not exist.")
    if path.is_dir():
        raise ValueError(f"--out {out!r} is a folder; name the file to write, e.g. {str(path / 'pred.csv')!r}.")
    if is_saved_model(path.parent):   # a file there would stop a later fit --out replacing the model
        raise ValueError(f"--out {out!r} is inside the saved model {str(path.parent)!r}; write it elsewhere.")
    return path


def _write_table(frame, out: Path) -> None:
    """Write ``frame`` to ``out`` (CSV, compressed as its last extension says, or parquet) through
    a temporary file in the same folder, renamed into place: an interrupted or failed write leaves
    no partial file and an earlier ``out`` untouched. A link is written through, as a plain write
    would, in the format its own name says."""
    from .model_folder import process_umask

    kind, compression = WRITERS[table_suffix(out)], COMPRESSIONS.get(out.suffix.lower())
    name, out = out.stem, Path(os.path.realpath(out))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        if kind == "csv":   # a .zip holds the file by its own name
            frame.to_csv(tmp, index=False, compression={"method": compression, "archive_name": name}
                         if compression == "zip" else compression)
        else:
            frame.to_parquet(tmp, index=False)
        # mkstemp makes the file 0600: keep the mode a write in place would keep, or give a new
        # file the one a plain open would
        os.chmod(tmp, stat.S_IMODE(out.stat().st_mode) if out.exists() else 0o666 & ~process_umask())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _model_out_dir(out: str) -> Path:
    from .model_folder import check_save_path

    try:  # checked before fitting, so a bad --out does not cost a fit
        return check_save_path(Path(out).expanduser())   # not resolved: a link is refused, not followed
    except FileExistsError as err:
        raise ValueError(f"refusing to replace --out {out!r}: {err}") from None


def _load_model(model_dir: str):
    import numpy as np

    from .persistence import CLI_FILE, load

    est = load(Path(model_dir).expanduser())
    if np.size(est.baseline_) > 1:  # fitted in Python on a 2-D y (one column, df[["y"]], is one target)
        raise ValueError(f"{model_dir!r} was fitted on a 2-D y ({np.size(est.baseline_)} target column(s)); "
                         "the command line handles models of one target (use est.predict in Python).")
    meta_path = Path(model_dir).expanduser() / CLI_FILE
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as err:
            raise ValueError(f"{str(meta_path)!r} is not valid JSON: {err}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{str(meta_path)!r} must hold a JSON object; got a {type(meta).__name__}.")
        bad = {k: v for k, v in meta.items() if k in ("target", "weight") and not isinstance(v, str)}
        if bad:
            raise ValueError(f"{str(meta_path)!r}: {', '.join(bad)} must name a column (a string); got "
                             f"{', '.join(map(repr, bad.values()))}.")
    return est, meta


# -- subcommands -----------------------------------------------------------------
def _fit(args) -> int:
    from .estimator import LMRegressor

    kwargs = parse_params(args.param)
    for flag, name, value in (("--time", "max_time", args.time), ("--threads", "n_threads", args.threads)):
        if value is not None:
            if name in kwargs:
                raise ValueError(f"give {name} either as {flag} or as --param {name}=..., not both.")
            kwargs[name] = value
    kwargs.setdefault("verbose", not args.quiet)
    est = LMRegressor(**kwargs)
    out = _model_out_dir(args.out)
    df = read_table(args.data, args.sep, args.encoding, args.decimal, args.na)
    if len(df) == 0:   # as predict and evaluate say it
        raise ValueError(f"{args.data!r} has no rows.")
    df = lift_field(lift_field(without_unnamed(df, args.data), args.target), args.weight)   # "label.y" of JSON lines
    check_target(df, args.target, args.data)
    weights = None
    if args.weight is not None:
        if args.weight == args.target:
            raise KeyError(f"weight column {args.weight!r} is the target; name a column of row weights.")
        check_target(df, args.weight, args.data, what="weight")
        weights = df[args.weight]
    X = df.drop(columns=[c for c in (args.target, args.weight) if c is not None])
    if X.shape[1] == 0:
        raise ValueError(f"{args.data!r} has only the target (and weight) column; nothing to learn from.")
    try:
        est.fit(X, df[args.target], sample_weight=weights)
    except (ValueError, TypeError) as err:   # the estimator speaks of y and sample_weight: name the columns
        message = str(err)
        for word, column in (("sample_weight", args.weight), ("y", args.target)):
            if column is not None and message.startswith(f"{word} "):
                raise type(err)(f"{column!r} column ({word}): {message}") from None
        raise
    meta = {"target": args.target} if args.weight is None else {"target": args.target, "weight": args.weight}
    est._cli_meta = json.dumps(meta)   # written by save inside its atomic folder
    est.save(out)
    if not args.quiet:
        r, fallback = est.fit_result_, ", FALLBACK to the median" if est.fallback_ else ""
        members = f", {len(est.members_)} members" if len(est.members_) > 1 else ""
        print(f"lmreg: fitted on {len(X)} rows x {X.shape[1]} columns in {est.fit_seconds_:.1f} s "
              f"({r.steps} steps, stopped by {r.stopped}{members}{fallback}); saved to {args.out}")
    return 0


def _predict(args) -> int:
    import numpy as np
    import pandas as pd

    quantiles = _parse_quantiles(args.quantiles) if args.quantiles is not None else []   # '' is an error too
    out = None if args.out == "-" else _output_path(args.out, WRITERS)   # "-": CSV on standard output
    data = Path(args.data).expanduser()
    if out is not None and data.exists() and out.resolve() == data.resolve():
        raise ValueError(f"--out {args.out!r} is the DATA file; writing there would replace the rows read.")
    est, meta = _load_model(args.model)
    if args.threads is not None:
        est.set_params(n_threads=args.threads)
    df = read_table(args.data, args.sep, args.encoding, args.decimal, args.na)
    X = input_columns(est, df, [meta.get("target"), meta.get("weight")], args.data)
    t = time.perf_counter()
    if len(X) > 2000 and not args.quiet:
        print(f"lmreg: predicting {len(X)} rows ({est.n_samples} samples each)...", file=sys.stderr, flush=True)
    with each_once():   # both calls read the same rows: their column warnings once
        # reshaped: a model fitted on one target column (df[["y"]]) predicts [n, 1]
        result = pd.DataFrame({"prediction": np.asarray(est.predict(X), dtype=float).reshape(len(X))})
        if quantiles:
            qp = np.asarray(est.predict_quantiles(X, quantiles), dtype=float).reshape(len(X), len(quantiles))
            for j, q in enumerate(quantiles):
                result[f"q{q}"] = qp[:, j]
    if out is None:
        result.to_csv(sys.stdout, index=False)
        sys.stdout.flush()
    else:
        _write_table(result, out)
    if not args.quiet:   # on standard error when the predictions are on standard output
        print(f"lmreg: wrote {len(result)} predictions to {'standard output' if out is None else args.out} "
              f"({time.perf_counter() - t:.1f} s)", file=sys.stderr if out is None else sys.stdout)
    return 0


def _evaluate(args) -> int:
    import numpy as np
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    from .metrics import crps, interval_coverage

    est, meta = _load_model(args.model)
    if args.threads is not None:
        est.set_params(n_threads=args.threads)
    target = args.target or meta.get("target")
    if not target:
        raise ValueError(f"--target is required: {args.model!r} does not record its target column.")
    df = read_table(args.data, args.sep, args.encoding, args.decimal, args.na)
    if len(df) == 0:   # as fit and predict say it
        raise ValueError(f"{args.data!r} has no rows.")
    df = lift_field(df, target)
    check_target(df, target, args.data)
    check_not_input(est, target, meta.get("target"))
    try:
        y = df[target].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"target column {target!r} in {args.data!r} is not numeric.") from None
    if not np.isfinite(y).all():
        raise ValueError(f"target column {target!r} in {args.data!r} has {int((~np.isfinite(y)).sum())} "
                         "missing or non-finite value(s).")
    X = input_columns(est, df, [target, meta.get("target"), meta.get("weight")], args.data)
    with each_once():   # both calls read the same rows: their column warnings once
        pred = np.asarray(est.predict(X), dtype=float).reshape(len(X))   # [n, 1] from a one-column y too
        bounds, samples = est.predict_quantiles(X, [0.1, 0.9], return_samples=True)  # calibrated, when the model is
    lower, upper = np.asarray(bounds, dtype=float).reshape(len(X), 2).T
    samples = np.asarray(samples, dtype=float).reshape(len(X), -1)
    raw = interval_coverage(y, *np.quantile(samples, [0.1, 0.9], axis=1))
    with warnings.catch_warnings():  # constant predictions (fallback): rho is NaN, say so below
        warnings.simplefilter("ignore")   # (one row: scikit-learn warns that R^2 is undefined)
        rho = float(spearmanr(y, pred)[0])
        r2 = (f"{r2_score(y, pred):.4f}" if len(y) > 1 and np.ptp(y) > 0 else
              "undefined (one row)" if len(y) == 1 else "undefined (constant target)")
    rows = [("rows", f"{len(y)}"), ("R2", r2),
            ("MAE", f"{mean_absolute_error(y, pred):.4g}"), ("RMSE", f"{root_mean_squared_error(y, pred):.4g}"),
            ("Spearman", f"{rho:.4f}" + ("" if not np.isnan(rho) else " (one row)" if len(y) == 1
                                         else " (constant target)" if np.ptp(y) == 0
                                         else " (constant predictions)" if np.ptp(pred) == 0 else "")),
            ("CRPS", f"{crps(y, samples):.4g}"),
            ("coverage80", f"{interval_coverage(y, lower, upper):.3f}  "
                           + ("(conformally calibrated; " if getattr(est, "calibrator_", None) else "(")
                           + f"raw 10%-90% of {samples.shape[1]} samples per row: {raw:.3f})")]
    for name, value in rows:
        print(f"{name:<11} {value}")
    return 0


# -- entry point -----------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``lmreg`` argument parser, with subcommands demo, fit, predict, evaluate and bench.

    ``bench`` is only listed here; :func:`main` hands its arguments to
    :mod:`lmreg.bench` untouched.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> args = build_parser().parse_args(["fit", "data.csv", "--target", "price", "--out", "model",
    ...                                   "--param", "n_samples=8", "codec=p10"])
    >>> args.command, args.target, args.param, args.time
    ('fit', 'price', ['n_samples=8', 'codec=p10'], None)
    >>> build_parser().parse_args(["demo"]).max_time
    200.0
    """
    parser = argparse.ArgumentParser(prog="lmreg", description="Language-model regression.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit on a bundled dataset and compare with TF-IDF + ridge",
                          description="Fit LMRegressor on a bundled dataset's training split and print "
                                      "its test R2, MAE and fit time next to TF-IDF + ridge and the mean.")
    demo.add_argument("--dataset", default="tweets_engagement", metavar="NAME",
                      help="a bundled dataset, as lmreg.list_datasets() names them (default: %(default)s)")
    demo.add_argument("--max-time", type=float, default=200.0, help="fit budget in seconds (default: 200)")
    demo.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    demo.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")
    demo.add_argument("--verbose", action="store_true", help="progress bar and training log")

    data_help = ("table: .csv/.tsv, .parquet/.pq, or JSON lines (.jsonl/.ndjson/.json); text ones may be "
                 "compressed (.csv.gz, .bz2, .xz, .zip, .zst)")

    def add_text_options(command):
        command.add_argument("--sep", metavar="S", help="field separator of a .csv/.tsv DATA "
                             "(default: ',', a tab for .tsv; 'tab' or '\\t' for a tab)")
        command.add_argument("--encoding", metavar="E",
                             help="text encoding of DATA (default: utf-8), e.g. latin-1")
        command.add_argument("--decimal", metavar="C", default=None,
                             help="decimal mark of a .csv/.tsv DATA's numbers (default: '.'), e.g. ','")
        command.add_argument("--na", metavar="S1,S2", default=None, type=_na_list,
                             help="the texts of a .csv/.tsv DATA that mean a missing value, instead of pandas' "
                                  "(NA, null, N/A, nan, ...); an empty field is always missing; --na '' keeps "
                                  "every other text; --na=-,n/a when the first starts with '-'")

    fit = sub.add_parser("fit", help="fit on a table file and save the model directory",
                         description="Fit LMRegressor on DATA and save it to DIR.")
    fit.add_argument("data", metavar="DATA", help=data_help)
    fit.add_argument("--target", required=True, metavar="COL", help="target column (numeric)")
    fit.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    fit.add_argument("--weight", metavar="COL", help="column of non-negative row weights (sample_weight)")
    fit.add_argument("--time", type=float, metavar="S", help="fit budget in seconds (default: 300)")
    fit.add_argument("--param", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                     help="LMRegressor parameters, e.g. --param n_samples=8 codec=p10 "
                          "(values: int, float, true/false, none, a JSON object or list, else string)")
    fit.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    fit.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_text_options(fit)

    predict = sub.add_parser("predict", help="predict a table with a saved model",
                             description="Write a 'prediction' column (and quantile columns) for DATA.")
    predict.add_argument("model", metavar="DIR", help="model directory written by 'lmreg fit'")
    predict.add_argument("data", metavar="DATA", help=data_help)
    predict.add_argument("--out", required=True, metavar="FILE", help="output .csv (or .csv.gz, .bz2, .xz, .zip, .zst) or .parquet/.pq; - writes CSV to standard output")
    predict.add_argument("--quantiles", metavar="Q1,Q2", help="also write columns qQ1, qQ2, e.g. 0.1,0.9")
    predict.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    predict.add_argument("--quiet", action="store_true", help="no summary line")
    add_text_options(predict)

    evaluate = sub.add_parser("evaluate", help="score a saved model on a labelled table",
                              description="Print R2, MAE, RMSE, Spearman, CRPS and 80% interval coverage.")
    evaluate.add_argument("model", metavar="DIR", help="model directory written by 'lmreg fit'")
    evaluate.add_argument("data", metavar="DATA", help=data_help)
    evaluate.add_argument("--target", metavar="COL", help="target column (default: the one used by fit)")
    evaluate.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    add_text_options(evaluate)

    sub.add_parser("bench", add_help=False,
                           help="lmreg vs the classical baselines on the bundled suite (see 'lmreg bench -h')")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0 success, 2 usage or input error).

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on a usage or input error (the message, ``lmreg: error:
        ...``, goes to stderr), 1 when a run fails otherwise (out of memory, a runtime
        error; ``LMREG_DEBUG=1`` re-raises it with its traceback), 130 on interrupt.
        ``bench`` returns its own code.

    Examples
    --------
    >>> import contextlib, io, os, tempfile
    >>> with tempfile.TemporaryDirectory() as d, contextlib.redirect_stderr(io.StringIO()) as err:
    ...     code = main(["predict", os.path.join(d, "no-model"), "data.csv", "--out", "p.csv"])
    >>> code, err.getvalue().startswith("lmreg: error: no saved lmreg model at")
    (2, True)
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     code = main(["frobnicate"])  # argparse usage error
    >>> code, "invalid choice" in err.getvalue()
    (2, True)
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    shown = warnings.formatwarning
    warnings.formatwarning = _format_warning   # "lmreg: warning: ...", not the line of runpy
    try:
        if argv[:1] == ["bench"]:  # its own parser: every option passes through untouched
            from .bench import main as bench_main

            return bench_main(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            _param_hint(argv, exc.code)
            raise
        commands = {"demo": _demo, "fit": _fit, "predict": _predict, "evaluate": _evaluate}
        return commands[args.command](args)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print("lmreg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `lmreg ... | head`: the reader has what it wanted, nothing to report
        try:   # what is still buffered for stdout would fail again when Python exits
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        return 141   # as a shell reports a writer stopped by SIGPIPE
    # ImportError: an optional package; OverflowError: a parameter past what a library takes
    except (OSError, ValueError, TypeError, KeyError, ImportError, OverflowError) as err:
        if os.environ.get("LMREG_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.filename:
            message = f"{err.strerror}: {err.filename!r}"
        print(f"lmreg: error: {message}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as err:   # out of memory, a failed torch op: not the input's fault
        if os.environ.get("LMREG_DEBUG"):
            raise
        what = "out of memory" if isinstance(err, MemoryError) else f"{type(err).__name__}: {err}"
        print(f"lmreg: error: {what} (run with LMREG_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = shown


def _format_warning(message, category, filename, lineno, line=None) -> str:
    kind = "warning" if category is UserWarning else category.__name__
    return f"lmreg: {kind}: {message}\n"


def _param_hint(argv: list, code) -> None:
    """After a usage error: ``--param`` takes every word up to the next option, DATA too."""
    if code != 2 or argv[:1] != ["fit"] or "--param" not in argv:
        return
    after = argv[len(argv) - argv[::-1].index("--param"):]
    words = after[:next((i for i, w in enumerate(after) if w.startswith("-")), len(after))]
    if any("=" not in w for w in words):
        print("lmreg: hint: --param takes every word up to the next option; put DATA before --param, "
              "or end the NAME=VALUE list with --", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
