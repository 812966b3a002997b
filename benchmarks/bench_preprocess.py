"""Input preprocessing throughput: serialization and tokenization of large tables.

Replicates a bundled dataset's training rows to ``--rows`` (``pd.concat``) and times each
step the estimator runs on them before (and, for ``transform`` and ``encode``, also at
prediction) any network sees a token: ``Serializer.fit``, ``Serializer.transform``,
``InputTokenizer.fit`` and ``encode`` (the from-scratch path), and ``render`` (the rows' text,
which a pretrained backbone's tokenizer reads). ``--records`` passes the rows as a list of
dicts instead of a DataFrame. Reports the median of ``--repeats`` runs per step, with a
digest of each step's output, so two commits' runs show the same work done. Run two commits
side by side with ``PYTHONPATH`` pointing at each checkout in turn.

Usage::

    python benchmarks/bench_preprocess.py --dataset ames_housing --rows 50000
    python benchmarks/bench_preprocess.py --dataset imdb_movies_scale --rows 50000 --records
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import time

import numpy as np
import pandas as pd
import torch

import lmreg
from lmreg import load_dataset
from lmreg.serialize import Serializer
from lmreg.tokenizer import InputTokenizer


def _digest(obj) -> str:
    """A short hash of a step's output (arrays, strings, tables), to compare commits."""
    h = hashlib.sha1()

    def add(x):
        if isinstance(x, np.ndarray):
            h.update(str(x.dtype).encode() + x.tobytes() if x.dtype != object else repr(x.tolist()).encode())
        elif isinstance(x, (list, tuple)):
            for v in x:
                add(v)
        elif hasattr(x, "columns") and not isinstance(x, pd.DataFrame):   # a serialize.Table
            for c in x.columns:
                h.update(f"{c.name}:{c.kind}".encode())
                add(np.asarray(c.values))
        else:
            h.update(repr(x).encode())

    add(obj)
    return h.hexdigest()[:12]


def _time(step, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = step()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ames_housing")
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--records", action="store_true", help="pass the rows as a list of dicts")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    X, _ = load_dataset(args.dataset, "train")
    X = pd.concat([X] * -(-args.rows // len(X)), ignore_index=True).iloc[: args.rows]
    if args.records:
        X = X.to_dict(orient="records")
    steps = {}
    t, serializer = _time(lambda: Serializer().fit(X), args.repeats)
    steps["serializer_fit"] = (t, _digest(sorted(serializer.kinds_.items())))
    t, table = _time(lambda: serializer.transform(X), args.repeats)
    steps["transform"] = (t, _digest(table))
    t, tokenizer = _time(lambda: InputTokenizer(max_field_tokens=48).fit(table), args.repeats)
    steps["tokenizer_fit"] = (t, _digest(tokenizer.n_tokens))
    t, encoded = _time(lambda: tokenizer.encode(table), args.repeats)
    steps["encode"] = (t, _digest(encoded))
    t, text = _time(lambda: serializer.render(table), args.repeats)
    steps["render"] = (t, _digest(text))

    result = {"dataset": args.dataset, "rows": len(X), "input": "records" if args.records else "DataFrame",
              "repeats": args.repeats, "threads": args.threads, "lmreg": lmreg.__file__,
              "python": platform.python_version(), "pandas": pd.__version__, "numpy": np.__version__,
              "machine": platform.machine(),
              "steps": {k: {"median_s": round(v[0], 3), "digest": v[1]} for k, v in steps.items()}}
    print(f"{args.dataset} x {len(X)} rows ({result['input']}), median of {args.repeats}:")
    for name, (seconds, digest) in steps.items():
        print(f"  {name:15s} {seconds:8.3f} s   {digest}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
