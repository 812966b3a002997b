"""End-to-end decoding throughput of ``LMRegressor.sample`` / ``predict``.

Fits the default model briefly on a bundled dataset (throughput does not depend on
how well it learnt), then times ``sample(X_test, n_samples)``, ``predict`` with the
exact median on the token tree (the default) and greedy ``predict`` on the test rows. Reports the median of ``--repeats`` runs in rows/s and
samples/s, with the kernel backend, device, threads and versions. ``--fit-epochs`` fits a
fixed number of epochs instead of ``--fit-time`` seconds (on ``--train-rows`` rows), so the
fit's wall time compares across commits too; transformers' model modules are imported first,
outside the timed fit.

Usage::

    python benchmarks/bench_decode.py --dataset tweets_engagement --threads 2
    python benchmarks/bench_decode.py --device cuda --out results/decode.json
    python benchmarks/bench_decode.py --fit-epochs 3 --train-rows 600 --rows 300 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from sklearn.metrics import r2_score

from lmreg import LMRegressor, load_dataset
from lmreg.kernels import backend_for


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="tweets_engagement")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--n-samples", type=int, default=16)
    p.add_argument("--fit-time", type=float, default=20.0)
    p.add_argument("--fit-epochs", type=int, default=None, help="a fixed-length fit instead of --fit-time")
    p.add_argument("--train-rows", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    X, y = load_dataset(args.dataset, "train", max_rows=args.train_rows)
    Xt, yt = load_dataset(args.dataset, "test", max_rows=args.rows)
    budget = (dict(max_time=args.fit_time) if args.fit_epochs is None
              else dict(max_time=None, max_epochs=args.fit_epochs))
    est = LMRegressor(**budget, random_state=0, n_threads=args.threads, device=args.device,
                      n_samples=args.n_samples, n_members=1)
    import transformers.models.llama.modeling_llama  # noqa: F401  (fit would import it lazily, timed)
    t = time.perf_counter()
    est.fit(X, y)
    fit_wall_s = time.perf_counter() - t
    t = time.perf_counter()
    test_r2 = r2_score(yt, est.predict(Xt))  # a sanity check of the fit, not a benchmark
    first_predict_s = time.perf_counter() - t
    timings = {}
    for name, fn in {"sample": lambda: est.sample(Xt, args.n_samples),
                     "predict_tree": lambda: est.set_params(decision="median").predict(Xt),
                     "predict_greedy": lambda: est.set_params(decision="mode").predict(Xt)}.items():
        runs = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            if args.device == "cuda":
                torch.cuda.synchronize()
            runs.append(time.perf_counter() - t)
        timings[name] = statistics.median(runs)
    n = len(Xt)
    record = {
        "dataset": args.dataset, "rows": n, "n_samples": args.n_samples,
        "sample_s": timings["sample"], "sample_rows_per_s": n / timings["sample"],
        "samples_per_s": n * args.n_samples / timings["sample"],
        "tree_median_s": timings["predict_tree"], "tree_median_rows_per_s": n / timings["predict_tree"],
        "greedy_s": timings["predict_greedy"], "greedy_rows_per_s": n / timings["predict_greedy"],
        "backend": backend_for(next(est.model_.parameters())), "device": args.device,
        "fit_s": args.fit_time if args.fit_epochs is None else None, "fit_epochs": args.fit_epochs,
        "train_rows": len(y), "fit_wall_s": fit_wall_s, "fit_ms_per_step": 1000 * fit_wall_s / est.fit_result_.steps if est.fit_result_.steps else None,
        "test_r2": test_r2, "first_predict_s": first_predict_s,
        "fit_steps": est.fit_result_.steps, "fit_stopped": est.fit_result_.stopped,
        "fit_history": est.fit_result_.history, "fallback": bool(est.fallback_),
        "threads": args.threads, "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "params": sum(q.numel() for q in est.model_.parameters()),
    }
    print(json.dumps(record, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
