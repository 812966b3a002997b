"""Time and peak memory of RL steps: fused sub-vocabulary log-prob vs the torch reference.

Two measurements, both mirroring ``tests/training/test_rl.py`` and
``tests/kernel_parity/test_fused_logprob.py``:

* ``loss``: the RL loss's log-prob op alone, forward + backward, on a pretrained-size
  LM head (``V`` rows of ``H``) for ``N`` sampled sequences of ``L`` number
  positions, through ``fused`` (Triton), ``reference`` (torch, same sub-vocabulary
  maths) and ``full_vocab`` (log-softmax over all V, what a generic RL trainer does);
* ``prompt``: the learner's log-probs of one rollout (``--prompts`` prompts x
  ``--group-size`` sampled numbers), forward + backward through the fitted model,
  computed the way ``train_rl`` does (each prompt once, its KV cache repeated for the
  group: :func:`~lmreg.training.rl.group_logprobs`) and the plain way (every
  prompt + number sequence whole), as in ``test_group_logprobs_equal_whole_sequences_with_gradients``;
* ``step``: whole :func:`lmreg.training.rl.train_rl` steps (rollout, rewards,
  reference and learner log-probs, backward, AdamW) on a model fitted for
  ``--fit-time`` seconds on a bundled dataset, with ``LMREG_KERNELS`` set to each
  backend in turn, for each of ``--variants`` (the sampled ``grpo`` and the
  sampling-free ``median`` and ``tree`` of :mod:`lmreg.training.tree_rl`, with
  the same prompts per step), as in ``tests/training/test_tree_rl.py``; with
  ``--weights both`` each variant also with row weights (``sample_weight``, drawn
  uniformly in [0.5, 2]), as in ``tests/test_sample_weight.py``.

Usage::

    python benchmarks/bench_rl_step.py --device cuda --out results/rl_step.json
    python benchmarks/bench_rl_step.py --quick      # tiny CPU run (reference only)
    python benchmarks/bench_rl_step.py --device cpu --only-steps --prompts 32   # CPU steps
    python benchmarks/bench_rl_step.py --device cpu --only-steps --prompts 32 --weights both
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

from lmreg import LMRegressor, load_dataset
from lmreg.kernels import reference
from lmreg.batching import collate
from lmreg.decoding import sample_batch
from lmreg.training.rl import _sequence_logprobs, group_logprobs, train_rl
from lmreg.training.rl_config import RLConfig


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _measure(fn, device, reps):
    """Median milliseconds and peak extra bytes (CUDA only) of ``fn()``."""
    fn()
    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if device == "cuda" else 0
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    peak = torch.cuda.max_memory_allocated() - base if device == "cuda" else float("nan")
    return statistics.median(times), peak


def full_vocab_logprobs(hidden, weight, bias, allowed, targets):
    logits = hidden.float() @ weight.float().t() + bias.float()
    mask = torch.full((weight.shape[0],), float("-inf"), device=hidden.device)
    mask[allowed] = 0.0
    logp = torch.log_softmax(logits + mask, dim=-1)
    return logp.gather(1, allowed[targets][:, None]).squeeze(1)


def bench_loss(N, H, V, A, L, dtype, device, reps):
    g = torch.Generator(device=device).manual_seed(0)
    hidden = torch.randn(N * L, H, device=device, generator=g).to(dtype).requires_grad_()
    weight = (torch.randn(V, H, device=device, generator=g) * H ** -0.5).to(dtype).requires_grad_()
    bias = torch.zeros(V, device=device, dtype=dtype, requires_grad=True)
    allowed = torch.randperm(V, device=device, generator=g)[:A]
    targets = torch.randint(0, A, (N * L,), device=device, generator=g)
    adv = torch.randn(N, device=device, generator=g)
    paths = {"reference": reference.allowed_logprobs, "full_vocab": full_vocab_logprobs}
    if device == "cuda":
        from lmreg.kernels.fused_logprob import allowed_logprobs as fused

        paths["fused"] = fused
    row = {"N": N, "L": L, "H": H, "V": V, "A": A, "dtype": str(dtype).replace("torch.", "")}
    for name, op in paths.items():
        def step(op=op):
            lp = op(hidden, weight, bias, allowed, targets).view(N, L).sum(1)
            (-(lp * adv).mean()).backward()
            hidden.grad = weight.grad = bias.grad = None

        if name == "full_vocab" and N * L * V > 2**31:
            continue
        row[f"{name}_ms"], row[f"{name}_peak_bytes"] = _measure(step, device, reps)
    if "fused_ms" in row:
        row["speedup_vs_reference"] = row["reference_ms"] / row["fused_ms"]
        if "full_vocab_ms" in row:
            row["speedup_vs_full_vocab"] = row["full_vocab_ms"] / row["fused_ms"]
            row["mem_ratio_vs_full_vocab"] = row["fused_peak_bytes"] / max(row["full_vocab_peak_bytes"], 1)
    return row


def bench_prompt_sharing(est, enc, args, reps):
    """Learner log-probs, forward + backward: prompt shared by the group vs whole sequences."""
    model, G = est.model_.eval(), args.group_size
    picked = np.arange(args.prompts)
    batch = collate(enc, picked, est.tokenizer_.pad_id).to(args.device)
    tokens, _ = sample_batch(model, est.grammar_, batch, G, seed=0)
    flat = tokens.reshape(-1, est.grammar_.length)
    whole = collate(enc, np.repeat(picked, G), est.tokenizer_.pad_id).to(args.device)
    paths = {"shared": lambda: group_logprobs(model, est.grammar_, batch, flat, G),
             "whole": lambda: _sequence_logprobs(model, est.grammar_, whole, flat)}
    row = {"prompts": args.prompts, "group_size": G, "prompt_tokens": int(batch.ids.shape[1]),
           "number_tokens": est.grammar_.length}
    for name, fn in paths.items():
        def step(fn=fn):
            fn().sum().backward()
            model.zero_grad(set_to_none=True)

        row[f"{name}_ms"], row[f"{name}_peak_bytes"] = _measure(step, args.device, reps)
    row["speedup"] = row["whole_ms"] / row["shared_ms"]
    print(json.dumps(row), flush=True)
    return row


def fitted(args):
    X, y = load_dataset(args.dataset, "train", max_rows=args.rows)
    est = LMRegressor(max_time=args.fit_time, random_state=0, n_threads=args.threads,
                      device=args.device, n_members=1).fit(X, y)
    return est, est._encode(X), y


def bench_steps(args, backends, est, enc, y):
    rows = np.arange(len(y))
    row_weights = {"none": None, "weighted": np.random.default_rng(0).uniform(0.5, 2.0, len(y))}
    weightings = ["none"] if args.weights == "none" else ["none", "weighted"]
    out = []
    for backend in backends:
        os.environ["LMREG_KERNELS"] = backend
        for variant in args.variants:
            for weighting in weightings:
                model = copy.deepcopy(est.model_)
                if args.device == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                # the variant's default reward: crps_loo when sampled, abs on the digit tree
                config = RLConfig(variant=variant, group_size=args.group_size, prompts_per_step=args.prompts)
                res = train_rl(model, enc, np.asarray(y, float), est.codec_, est.grammar_, rows,
                               est.tokenizer_.pad_id, config, args.steps, device=args.device,
                               weights=row_weights[weighting])
                ends = [h["seconds"] for h in res.history]
                per_step = np.diff([0.0] + ends)[1:]  # first step includes compilation
                out.append({"backend": backend, "variant": variant, "weights": weighting, "steps": res.steps,
                            "median_step_ms": float(np.median(per_step) * 1e3),
                            "peak_bytes": torch.cuda.max_memory_allocated() if args.device == "cuda" else None,
                            "prompts_per_step": args.prompts,
                            "group_size": args.group_size if variant not in ("median", "tree") else None,
                            "params": sum(p.numel() for p in model.parameters())})
                print(json.dumps(out[-1]), flush=True)
    os.environ.pop("LMREG_KERNELS", None)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny CPU run of both parts")
    p.add_argument("--dataset", default="tweets_engagement")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--fit-time", type=float, default=20.0)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--prompts", type=int, default=None, help="prompts per RL step (64; 8 with --quick)")
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", default="grpo,median,tree", help="comma-separated RL variants to time")
    p.add_argument("--only-steps", action="store_true", help="skip the loss and prompt-sharing parts")
    p.add_argument("--weights", choices=["none", "both"], default="none",
                   help="both: time each variant's steps also with row weights (sample_weight)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.variants = args.variants.split(",")
    if args.quick:
        args.device, args.rows, args.fit_time, args.steps = "cpu", 200, 3.0, 3
        args.prompts = args.prompts or 8
        grid, dtypes, reps = [(64, 128, 2000, 12, 6)], [torch.float32], 3
    else:
        grid = [(N, H, V, 12, 6) for N in (512, 4096) for H, V in ((576, 49152), (1024, 152000))]
        dtypes, reps = [torch.float32, torch.bfloat16], 10
        args.prompts = args.prompts or 64
    torch.set_num_threads(args.threads)
    record = {"device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor(),
              "torch": torch.__version__, "threads": args.threads, "loss": [], "prompt": None, "step": []}
    for dtype in ([] if args.only_steps else dtypes):
        for N, H, V, A, L in grid:
            row = bench_loss(N, H, V, A, L, dtype, args.device, reps)
            record["loss"].append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}),
                  flush=True)
    backends = ["triton", "reference"] if args.device == "cuda" else ["reference"]
    est, enc, y = fitted(args)
    if not args.only_steps:
        record["prompt"] = bench_prompt_sharing(est, enc, args, reps)
    record["step"] = bench_steps(args, backends, est, enc, y)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
