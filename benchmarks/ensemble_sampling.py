"""Time ``sample`` on a saved seed ensemble: the same model, two lmreg checkouts side by side.

Fits a five-network ensemble (``--members``) on diabetes once (``--fit``), saves it, then times
``sample(X_test, n_samples)`` with whichever lmreg is on ``PYTHONPATH``: run it once per
checkout, alternating, and compare the medians. Written to measure the cost of drawing
the remainder of ``n_samples`` from members picked per row (each member draws
``ceil(n_samples / n_members)`` and the rows that need fewer drop the last).

Usage::

    python benchmarks/ensemble_sampling.py --fit --model /tmp/ens5
    PYTHONPATH=../lmreg-before python benchmarks/ensemble_sampling.py --model /tmp/ens5 --label before
    python benchmarks/ensemble_sampling.py --model /tmp/ens5 --label after
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="folder of the saved ensemble")
    p.add_argument("--fit", action="store_true", help="fit and save the ensemble, then exit")
    p.add_argument("--label", default="run")
    p.add_argument("--n-samples", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--members", type=int, default=5, help="networks fitted with --fit (1: a single model)")
    args = p.parse_args(argv)

    import torch

    import lmreg
    from lmreg.datasets import load_dataset

    torch.set_num_threads(args.threads)
    if args.fit:
        X, y = load_dataset("diabetes", split="train")
        est = lmreg.LMRegressor(n_members=args.members, max_time=None, max_epochs=2, random_state=0,
                                n_threads=args.threads).fit(X, y)
        est.save(args.model)
        print(f"saved {len(est.members_)} members to {args.model}")
        return
    est = lmreg.load(args.model)
    X, _ = load_dataset("diabetes", split="test")
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        est.sample(X, n_samples=args.n_samples, random_state=0)
        times.append(time.perf_counter() - t)
    print(f"{args.label}: {lmreg.__file__}  {len(X)} rows x {args.n_samples} samples, "
          f"{len(est.members_)} members: median {np.median(times):.3f} s  "
          f"({', '.join(f'{s:.3f}' for s in times)})")


if __name__ == "__main__":
    main()
