"""End-to-end decoding throughput of ``LMRegressor.sample`` / ``predict``.

Fits the default model briefly on a bundled dataset (throughput does not depend on
how well it learnt), then times ``sample(X_test, n_samples)``, ``predict`` with the
exact median on the token tree (the default) and greedy ``predict`` on the test rows. Reports the median of ``--repeats`` runs in rows/s and
samples/s, with the kernel backend, device, threads and versions.

Usage::

    python benchmarks/bench_decode.py --dataset tweets_engagement --threads 2
    python benchmarks/bench_decode.py --device cuda --out results/decode.json
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
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    X, y = load_dataset(args.dataset, "train")
    Xt, yt = load_dataset(args.dataset, "test", max_rows=args.rows)
    est = LMRegressor(max_time=args.fit_time, random_state=0, n_threads=args.threads,
                      device=args.device, n_samples=args.n_samples, n_members=1).fit(X, y)
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
        "fit_s": args.fit_time, "test_r2": test_r2, "first_predict_s": first_predict_s,
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
