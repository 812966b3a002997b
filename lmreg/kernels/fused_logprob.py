"""Fused sub-vocabulary log-probabilities with a backward pass (Triton forward).

Training (SFT cross-entropy on the number tokens, the RL policy loss) needs
``log softmax(h W[allowed].T / T)[target]`` and its gradient. The forward kernel
gathers the allowed rows of ``W`` in-kernel and keeps an online log-sum-exp, so it
writes two floats per row (the log-prob and the log-sum-exp saved for backward).
The backward recomputes the ``[N, A]`` logits from the saved log-sum-exp and
scatters the gradient into the allowed rows of ``W``: no tensor of size ``N x V``
exists in either direction.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .fused_decode_step import _allowed_chunk, _online_lse, launch_config


@triton.jit
def _logprob_fwd_kernel(
    hidden_ptr, weight_ptr, bias_ptr, allowed_ptr, target_ptr, logprob_ptr, lse_ptr,
    N, A, H, stride_hn, stride_wv, inv_temp,
    HAS_BIAS: tl.constexpr, FP32_DOT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_A: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    target = tl.load(target_ptr + rows, mask=row_ok, other=0)
    run_max = tl.full([BLOCK_N], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK_N], tl.float32)
    target_logit = tl.zeros([BLOCK_N], tl.float32)
    for a0 in range(0, A, BLOCK_A):
        cols, col_ok, logits = _allowed_chunk(hidden_ptr, weight_ptr, bias_ptr, allowed_ptr, a0, rows, row_ok,
                                              A, H, stride_hn, stride_wv, inv_temp,
                                              HAS_BIAS, FP32_DOT, BLOCK_N, BLOCK_A, BLOCK_H)
        run_max, run_sum = _online_lse(run_max, run_sum, logits)
        target_logit += tl.sum(tl.where(cols[None, :] == target[:, None], logits, 0.0), axis=1)
    lse = run_max + tl.log(run_sum)
    tl.store(logprob_ptr + rows, target_logit - lse, mask=row_ok)
    tl.store(lse_ptr + rows, lse, mask=row_ok)


class SubvocabLogprob(torch.autograd.Function):
    """Autograd wrapper; see :func:`allowed_logprobs`."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, allowed, targets, temperature, block_n, block_a, block_h):
        N, H = hidden.shape
        A = allowed.numel()
        hidden_c = hidden.contiguous()
        weight_c = weight if weight.stride(1) == 1 else weight.contiguous()
        allowed32 = allowed.to(torch.int32).contiguous()
        logprob = torch.empty(N, dtype=torch.float32, device=hidden.device)
        lse = torch.empty(N, dtype=torch.float32, device=hidden.device)
        cfg = launch_config(N, A, hidden_c, weight_c, block_n, block_a, block_h)
        _logprob_fwd_kernel[(triton.cdiv(N, cfg["BLOCK_N"]),)](
            hidden_c, weight_c, bias.contiguous() if bias is not None else weight_c, allowed32,
            targets.to(torch.int32).contiguous(), logprob, lse,
            N, A, H, hidden_c.stride(0), weight_c.stride(0), 1.0 / float(temperature),
            HAS_BIAS=bias is not None, **cfg)
        ctx.save_for_backward(hidden, weight, bias, allowed, targets, lse)
        ctx.temperature = float(temperature)
        return logprob

    @staticmethod
    def backward(ctx, grad_out):
        hidden, weight, bias, allowed, targets, lse = ctx.saved_tensors
        T = ctx.temperature
        w_a = weight.index_select(0, allowed).float()                # [A, H]
        logits = hidden.float() @ w_a.t()
        if bias is not None:
            logits = logits + bias.index_select(0, allowed).float()
        p = torch.exp(logits / T - lse.unsqueeze(1))                  # [N, A]
        onehot = torch.nn.functional.one_hot(targets.long(), allowed.numel()).float()
        g_logits = grad_out.float().unsqueeze(1) * (onehot - p) / T   # d logprob / d logits
        g_hidden = (g_logits @ w_a).to(hidden.dtype) if ctx.needs_input_grad[0] else None
        g_weight = g_bias = None
        if ctx.needs_input_grad[1]:
            # Allowed ids are distinct: each gradient row lands once on a zero row, so
            # adding in the weight's own dtype loses nothing (and a 16-bit [V, H]
            # buffer is half a float32 one).
            g_weight = torch.zeros_like(weight)
            g_weight.index_add_(0, allowed, (g_logits.t() @ hidden.float()).to(weight.dtype))
        if bias is not None and ctx.needs_input_grad[2]:
            g_bias = torch.zeros_like(bias, dtype=torch.float32)
            g_bias.index_add_(0, allowed, g_logits.sum(0))
            g_bias = g_bias.to(bias.dtype)
        return g_hidden, g_weight, g_bias, None, None, None, None, None, None


def allowed_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     allowed: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0,
                     block_n: int | None = None, block_a: int | None = None,
                     block_h: int | None = None) -> torch.Tensor:
    """Triton implementation of :func:`lmreg.kernels.reference.allowed_logprobs`."""
    return SubvocabLogprob.apply(hidden, weight, bias, allowed, targets, temperature,
                                 block_n, block_a, block_h)
