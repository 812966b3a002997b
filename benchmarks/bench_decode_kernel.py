"""Fused decode step vs torch eager vs torch.compile vs the full-vocabulary path.

Mirrors ``tests/kernel_parity/test_fused_decode_step.py``. For each (B, H, V, A): median
time of one decode step and its peak memory, for

* ``fused``        the Triton kernel (gathers A rows of W in-kernel, in-kernel counter noise);
* ``eager``        ``lmreg.kernels.reference.decode_step`` (same sub-vocabulary math);
* ``compiled``     ``torch.compile`` of the reference;
* ``full_vocab``   what a plain LM sampler does: logits over all V, mask, sample.

Also reports the fused kernel's effective bandwidth (bytes it must read and write /
time) against ``--peak-gbps``. CUDA only for the kernel rows; ``--quick`` runs a
tiny CPU grid of the torch paths so the script itself stays tested.

Usage::

    python benchmarks/bench_decode_kernel.py --out results/decode_kernel.json
    python benchmarks/bench_decode_kernel.py --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from lmreg.kernels import reference


def full_vocab_step(hidden, weight, bias, allowed_mask, temperature, noise_full):
    logits = (hidden.float() @ weight.float().t() + bias.float()) / temperature
    logits = logits.masked_fill(~allowed_mask, float("-inf"))
    logp = torch.log_softmax(logits, dim=-1)
    choice = (logp + noise_full).argmax(-1)
    return choice, logp.gather(1, choice[:, None]).squeeze(1)


def timeit(fn, device, reps=20):
    """Median milliseconds and peak extra memory (bytes) of ``fn()``."""
    fn()
    if device == "cuda":
        from triton.testing import do_bench

        ms = do_bench(fn, warmup=10, rep=50, return_mode="median")
        # Peak memory of one call alone (do_bench's own cache-flush buffer excluded).
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return ms, torch.cuda.max_memory_allocated() - base
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), float("nan")


def bench_case(B, H, V, A, dtype, device, with_compile):
    g = torch.Generator(device=device).manual_seed(0)
    hidden = torch.randn(B, H, device=device, generator=g).to(dtype)
    weight = (torch.randn(V, H, device=device, generator=g) * H ** -0.5).to(dtype)
    bias = torch.zeros(V, device=device, dtype=dtype)
    allowed = torch.randperm(V, device=device, generator=g)[:A]
    mask = torch.zeros(V, dtype=torch.bool, device=device)
    mask[allowed] = True
    noise_a = reference.gumbel_noise((B, A), g, device=device)
    row = {"B": B, "H": H, "V": V, "A": A, "dtype": str(dtype).replace("torch.", ""), "device": device}
    runs = {"eager": lambda: reference.decode_step(hidden, weight, bias, allowed, 1.0, noise=noise_a)}
    if V * B <= 2**31 // 2:  # the full-vocabulary path materialises [B, V] three times
        noise_v = reference.gumbel_noise((B, V), g, device=device)
        runs["full_vocab"] = lambda: full_vocab_step(hidden, weight, bias, mask, 1.0, noise_v)
    if with_compile:
        compiled = torch.compile(reference.decode_step, dynamic=True)
        runs["compiled"] = lambda: compiled(hidden, weight, bias, allowed, 1.0, noise=noise_a)
    if device == "cuda":
        from lmreg.kernels.fused_decode_step import decode_step as fused

        runs["fused"] = lambda: fused(hidden, weight, bias, allowed, 1.0, seed=1)
    for name, fn in runs.items():
        ms, mem = timeit(fn, device)
        row[f"{name}_ms"], row[f"{name}_peak_bytes"] = ms, mem
    elt = hidden.element_size()
    row["fused_bytes"] = B * H * elt + A * H * elt + A * 4 + A * elt + B * (8 + 4)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny CPU grid (torch paths only)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--peak-gbps", type=float, default=3350.0, help="card bandwidth (H100 SXM: 3350)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
    if args.quick:
        grid = [(256, 128, 512, 10), (1024, 128, 32000, 25)]
        dtypes = [torch.float32]
    else:
        grid = [(B, H, V, 25) for V in (32000, 152000) for H in (1024, 4096)
                for B in (256, 4096, 65536)] + [(4096, 128, 512, 25), (4096, 1024, 152000, 10)]
        dtypes = [torch.float32, torch.bfloat16]
    rows = []
    for dtype in dtypes:
        for B, H, V, A in grid:
            row = bench_case(B, H, V, A, dtype, device, with_compile=not args.no_compile and not args.quick)
            if "fused_ms" in row:
                row["fused_gbps"] = row["fused_bytes"] / row["fused_ms"] / 1e6
                row["fused_pct_peak_bw"] = 100 * row["fused_gbps"] / args.peak_gbps
                row["speedup_vs_eager"] = row["eager_ms"] / row["fused_ms"]
                if "full_vocab_peak_bytes" in row:
                    row["mem_ratio_vs_full_vocab"] = row["fused_peak_bytes"] / max(row["full_vocab_peak_bytes"], 1)
            rows.append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}),
                  flush=True)
            if args.out:  # rewritten after every case so a cut-off run keeps what it measured
                with open(args.out, "w") as f:
                    json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
