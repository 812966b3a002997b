"""Number tokens in a pretrained vocabulary: ``native`` vs ``new`` initialisation.

Fits ``LMRegressor(backbone=..., number_tokens=MODE)`` for a fixed time budget on a
task where a pretrained model's digit knowledge should matter: English number words
-> the number ("seven hundred forty two" -> 742), 0-999, disjoint train / test
numbers. Also runs any bundled dataset with ``--dataset``. Writes one JSON record.

Usage::

    python benchmarks/bench_number_tokens.py --backbone smollm2 --mode native --max-time 300 \\
        --out benchmarks/results/number_tokens_native.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.metrics import mean_absolute_error, r2_score

from lmreg import LMRegressor, load_dataset
from lmreg.bench import environment

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen").split()
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def words(n: int) -> str:
    """English words for 0 <= n < 1000."""
    head = f"{ONES[n // 100]} hundred" if n >= 100 else ""
    n %= 100
    if n == 0 and head:
        return head
    tail = ONES[n] if n < 20 else TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    return f"{head} {tail}".strip()


def spelled(n_train: int, n_test: int, seed: int = 0):
    values = np.random.default_rng(seed).permutation(1000)
    X = [{"number": words(int(v))} for v in values]
    y = values.astype(float)
    return X[:n_train], y[:n_train], X[-n_test:], y[-n_test:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="smollm2")
    p.add_argument("--mode", choices=["native", "new"], default="native")
    p.add_argument("--dataset", default="spelled", help="'spelled' or a bundled dataset name")
    p.add_argument("--train-rows", type=int, default=600)
    p.add_argument("--test-rows", type=int, default=200)
    p.add_argument("--max-time", type=float, default=300.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.dataset == "spelled":
        X, y, Xt, yt = spelled(args.train_rows, args.test_rows)
    else:
        X, y = load_dataset(args.dataset, "train", max_rows=args.train_rows)
        Xt, yt = load_dataset(args.dataset, "test", max_rows=args.test_rows)
    est = LMRegressor(backbone=args.backbone, number_tokens=args.mode, max_time=args.max_time,
                      batch_size=args.batch_size, n_threads=args.threads, random_state=0, n_samples=8)
    t = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = est.predict(Xt)
    record = {"backbone": args.backbone, "mode": args.mode, "dataset": args.dataset,
              "n_train": len(y), "n_test": len(yt), "max_time": args.max_time,
              "batch_size": args.batch_size, "r2": r2_score(yt, pred), "mae": mean_absolute_error(yt, pred),
              "fit_s": fit_s, "predict_s": time.perf_counter() - t, "steps": est.fit_result_.steps,
              "stopped": est.fit_result_.stopped, "best_val_mae": est.fit_result_.best_val_mae,
              "fallback": bool(est.fallback_), "history": est.fit_result_.history,
              "env": environment(args.threads)}
    print(json.dumps({k: v for k, v in record.items() if k not in ("history", "env")}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
