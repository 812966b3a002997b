"""Fused, grammar-constrained decode step (Triton).

One program handles ``BLOCK_N`` rows (tile sizes from :func:`launch_config`). For each chunk of ``BLOCK_A`` allowed ids it
gathers those rows of the output projection straight from the full ``[V, H]``
matrix (the id table lives on the device), accumulates the logits in float32 over
``BLOCK_H``-wide slices of the hidden state, applies the temperature, and keeps an
online log-sum-exp and a running Gumbel-max winner. Nothing of size ``V`` is ever
read or written, and no mask is built on the host.

Semantics are those of :func:`lmreg.kernels.reference.decode_step`: the chosen id is
``allowed[argmax(logits / T + noise)]`` and its log-probability is taken under
``softmax(logits / T)``. Noise is external (``noise``), drawn in the kernel from the
reference's counter-based generator (``seed`` and ``row_seeds``: the same noise as
:func:`lmreg.kernels.reference.counter_gumbel`), or absent (greedy). Given the same noise,
the kernel and the reference pick the same tokens.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

_GREEDY, _EXTERNAL, _COUNTER = 0, 1, 2


@triton.jit
def _allowed_chunk(hidden_ptr, weight_ptr, bias_ptr, allowed_ptr, a0, rows, row_ok, A, H, stride_hn,
                   stride_wv, inv_temp, HAS_BIAS: tl.constexpr, FP32_DOT: tl.constexpr,
                   BLOCK_N: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_H: tl.constexpr):
    """float32 ``(hidden[rows] @ weight[allowed[a0:a0+BLOCK_A]].T + bias) / T``, -inf past A.

    The allowed rows of ``weight`` are gathered here, ``BLOCK_H`` columns at a time.
    float32 inputs are multiplied in IEEE float32 (no TF32: the logits must match the
    reference closely enough that Gumbel-max picks the same token); 16-bit inputs go
    to the tensor cores as they are, with float32 accumulation (their products are
    exact in float32, so only the summation order differs from the reference).
    """
    cols = a0 + tl.arange(0, BLOCK_A)
    col_ok = cols < A
    ids = tl.load(allowed_ptr + cols, mask=col_ok, other=0)
    acc = tl.zeros([BLOCK_N, BLOCK_A], tl.float32)
    for h0 in range(0, H, BLOCK_H):
        hh = h0 + tl.arange(0, BLOCK_H)
        h_ok = hh < H
        x = tl.load(hidden_ptr + rows[:, None] * stride_hn + hh[None, :],
                    mask=row_ok[:, None] & h_ok[None, :], other=0.0)
        w = tl.load(weight_ptr + ids[None, :].to(tl.int64) * stride_wv + hh[:, None],
                    mask=col_ok[None, :] & h_ok[:, None], other=0.0)
        if FP32_DOT:
            acc += tl.dot(x.to(tl.float32), w.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(x, w)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + ids, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    return cols, col_ok, tl.where(col_ok[None, :], acc * inv_temp, float("-inf"))


def launch_config(N: int, A: int, hidden: torch.Tensor, weight: torch.Tensor,
                  block_n=None, block_a=None, block_h=None) -> dict:
    """Tile sizes (and the dot precision) for ``N`` rows and ``A`` allowed ids.

    One chunk should cover the whole allowed set (grammars allow 2-20 ids per
    position): every extra chunk re-reads the rows' hidden states. Many rows per
    program amortise the gathered ``[A, H]`` slice of ``W`` over the rows.
    """
    fp32_dot = not (hidden.dtype == weight.dtype and hidden.dtype in (torch.bfloat16, torch.float16))
    # Triton's CPU interpreter multiplies 16-bit tiles wrongly; it gets the float32 path.
    fp32_dot = fp32_dot or os.environ.get("TRITON_INTERPRET") == "1"
    return {"BLOCK_N": block_n or (64 if N >= 2048 else 16),
            "BLOCK_A": block_a or min(64, max(16, triton.next_power_of_2(A))),
            "BLOCK_H": block_h or (64 if fp32_dot else 128),
            "FP32_DOT": fp32_dot}


@triton.jit
def _mix32(x):
    """:func:`lmreg.kernels.reference.mix32` on int64 values: the low 32 bits of ``x`` in,
    a value in ``[0, 2**32)`` out (the products wrap; their low 32 bits stay exact)."""
    x = x & 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


@triton.jit
def _counter_gumbel(seed, row_seeds, cols):
    """:func:`lmreg.kernels.reference.counter_gumbel` for a ``[rows, cols]`` tile: the
    same integer hash, and the same float64 transform rounded once to float32, so both
    backends add the same noise."""
    key = _mix32(seed.to(tl.int64) ^ _mix32(row_seeds))
    x = _mix32(_mix32(key[:, None] + cols[None, :].to(tl.int64) * 0x9E3779B9) + 0x632BE5AB)
    u = (x.to(tl.float64) + 0.5) / 4294967296.0
    return (-tl.log(-tl.log(u))).to(tl.float32)


@triton.jit
def _online_lse(run_max, run_sum, logits):
    """Fold one chunk of logits into a running (max, sum of exp) pair. While every logit so
    far is -inf the shift is 0, not -inf: exp(-inf - -inf) would be NaN."""
    new_max = tl.maximum(run_max, tl.max(logits, axis=1))
    shift = tl.where(new_max == float("-inf"), 0.0, new_max)
    run_sum = run_sum * tl.exp(run_max - shift) + tl.sum(tl.exp(logits - shift[:, None]), axis=1)
    return new_max, run_sum


# ``seed`` changes every step: not specialised (a 1 would become a constant, and each new
# divisibility by 16 a recompile)
@triton.jit(do_not_specialize=["seed"])
def _decode_step_kernel(
    hidden_ptr, weight_ptr, bias_ptr, allowed_ptr, noise_ptr, row_seed_ptr,
    token_ptr, logprob_ptr, probs_ptr,
    N, A, H, stride_hn, stride_wv, inv_temp, seed,
    HAS_BIAS: tl.constexpr, NOISE_MODE: tl.constexpr, WRITE_PROBS: tl.constexpr, FP32_DOT: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_H: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    run_max = tl.full([BLOCK_N], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK_N], tl.float32)
    best_score = tl.full([BLOCK_N], float("-inf"), tl.float32)
    best_logit = tl.zeros([BLOCK_N], tl.float32)
    best_idx = tl.zeros([BLOCK_N], tl.int32)

    for a0 in range(0, A, BLOCK_A):
        cols, col_ok, logits = _allowed_chunk(hidden_ptr, weight_ptr, bias_ptr, allowed_ptr, a0, rows, row_ok,
                                              A, H, stride_hn, stride_wv, inv_temp,
                                              HAS_BIAS, FP32_DOT, BLOCK_N, BLOCK_A, BLOCK_H)
        run_max, run_sum = _online_lse(run_max, run_sum, logits)

        if NOISE_MODE == 1:
            g = tl.load(noise_ptr + rows[:, None] * A + cols[None, :],
                        mask=row_ok[:, None] & col_ok[None, :], other=0.0)
            score = logits + g
        elif NOISE_MODE == 2:
            # a pure function of (step seed, the row's own seed, column): a row's draw
            # does not depend on its batch
            row_seed = tl.load(row_seed_ptr + rows, mask=row_ok, other=0)
            score = logits + _counter_gumbel(seed, row_seed, cols)
        else:
            score = logits
        score = tl.where(col_ok[None, :], score, float("-inf"))
        chunk_best = tl.max(score, axis=1)
        chunk_arg = tl.argmax(score, axis=1)
        chunk_logit = tl.sum(tl.where(cols[None, :] == (a0 + chunk_arg)[:, None], logits, 0.0), axis=1)
        # the first chunk always counts: where every score is -inf (all noise -inf, or every
        # id masked) the reference's argmax takes index 0, and its logit, not the 0 set above
        better = (chunk_best > best_score) | (a0 == 0)
        best_score = tl.where(better, chunk_best, best_score)
        best_logit = tl.where(better, chunk_logit, best_logit)
        best_idx = tl.where(better, a0 + chunk_arg, best_idx)

    lse = run_max + tl.log(run_sum)
    token = tl.load(allowed_ptr + best_idx, mask=row_ok, other=0)
    tl.store(token_ptr + rows, token, mask=row_ok)
    tl.store(logprob_ptr + rows, best_logit - lse, mask=row_ok)

    if WRITE_PROBS:  # second pass: the normalised distribution over the allowed set
        for a0 in range(0, A, BLOCK_A):
            cols, col_ok, logits = _allowed_chunk(hidden_ptr, weight_ptr, bias_ptr, allowed_ptr, a0, rows,
                                                  row_ok, A, H, stride_hn, stride_wv, inv_temp,
                                                  HAS_BIAS, FP32_DOT, BLOCK_N, BLOCK_A, BLOCK_H)
            p = tl.exp(logits - lse[:, None])
            tl.store(probs_ptr + rows[:, None] * A + cols[None, :], p,
                     mask=row_ok[:, None] & col_ok[None, :])


def decode_step(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                allowed: torch.Tensor, temperature: float = 1.0, noise: torch.Tensor | None = None,
                seed: int | None = None, row_seeds: torch.Tensor | None = None, return_probs: bool = False,
                block_n: int | None = None, block_a: int | None = None, block_h: int | None = None):
    """Triton implementation of :func:`lmreg.kernels.reference.decode_step`.

    ``noise`` (float32 ``[N, A]`` Gumbel noise) takes precedence over ``seed``
    (in-kernel noise from the reference's counter-based generator, keyed by the low 32
    bits of ``seed`` and of each of ``row_seeds``, default ``0..N-1``); with neither,
    or ``temperature == 0``, decoding is greedy. ``block_*`` override the
    tile sizes of :func:`launch_config`.
    """
    N, H = hidden.shape
    A = allowed.numel()
    hidden = hidden.contiguous()
    weight = weight if weight.stride(1) == 1 else weight.contiguous()
    allowed = allowed.to(torch.int32).contiguous()
    greedy = temperature == 0 or (noise is None and seed is None)
    mode = _GREEDY if greedy else (_EXTERNAL if noise is not None else _COUNTER)
    if mode == _EXTERNAL:
        noise = noise.to(device=hidden.device, dtype=torch.float32).contiguous()
        if noise.shape != (N, A):
            raise ValueError(f"noise must have shape {(N, A)}, got {tuple(noise.shape)}.")
    if mode == _COUNTER:   # int64: the hash reads each seed's low 32 bits, as the reference does
        row_seeds = (torch.arange(N, device=hidden.device) if row_seeds is None else row_seeds)
        row_seeds = row_seeds.to(device=hidden.device, dtype=torch.long).contiguous()
    tokens = torch.empty(N, dtype=torch.int32, device=hidden.device)
    logprob = torch.empty(N, dtype=torch.float32, device=hidden.device)
    probs = torch.empty((N, A) if return_probs else (1,), dtype=torch.float32, device=hidden.device)
    inv_temp = 1.0 if temperature == 0 else 1.0 / float(temperature)
    cfg = launch_config(N, A, hidden, weight, block_n, block_a, block_h)
    grid = (triton.cdiv(N, cfg["BLOCK_N"]),)
    _decode_step_kernel[grid](
        hidden, weight, bias.contiguous() if bias is not None else weight, allowed,  # read at bias_ptr + id
        noise if mode == _EXTERNAL else logprob, row_seeds if mode == _COUNTER else tokens,
        tokens, logprob, probs,
        N, A, H, hidden.stride(0), weight.stride(0), inv_temp, int(seed or 0) & 0xFFFFFFFF,
        HAS_BIAS=bias is not None, NOISE_MODE=mode, WRITE_PROBS=return_probs, **cfg,
    )
    return tokens.long(), logprob, (probs if return_probs else None)
