"""Parity of the fused sub-vocabulary log-prob (forward and backward) with the reference."""

import pytest
import torch

from lmreg.kernels import reference
from lmreg.kernels.fused_logprob import allowed_logprobs as fused

from .common import TOLERANCES, make_case


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", [dict(A=10), dict(A=25, V=1000), dict(A=40, H=100, bias=False), dict(N=2100, A=12)])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_values_and_gradients(case, dtype, temperature):
    hidden, weight, bias, allowed = make_case(dtype=dtype, **case)
    targets = torch.randint(0, allowed.numel(), (hidden.shape[0],), generator=torch.Generator().manual_seed(2))
    targets = targets.to(hidden.device)
    upstream = torch.randn(hidden.shape[0], generator=torch.Generator().manual_seed(3)).to(hidden.device)
    leaves = [t.detach().clone().requires_grad_() for t in (hidden, weight) + ((bias,) if bias is not None else ())]
    results = []
    for fn in (reference.allowed_logprobs, fused):
        inputs = [t.detach().clone().requires_grad_() for t in leaves]
        b = inputs[2] if bias is not None else None
        lp = fn(inputs[0], inputs[1], b, allowed, targets, temperature)
        grads = torch.autograd.grad((lp * upstream).sum(), inputs)
        results.append((lp, grads))
    tol_v, tol_g = TOLERANCES[dtype]
    # W's gradient sums over all rows in a different order: rounding grows like sqrt(N).
    tol_g *= max(1.0, hidden.shape[0] / 16) ** 0.5
    torch.testing.assert_close(results[1][0], results[0][0], atol=tol_v, rtol=0)
    for g_ref, g_out in zip(results[0][1], results[1][1]):
        assert g_out.dtype == g_ref.dtype
        torch.testing.assert_close(g_out.float(), g_ref.float(), atol=tol_g, rtol=tol_g)


def test_gradient_only_touches_allowed_rows():
    hidden, weight, bias, allowed = make_case(A=10)
    weight.requires_grad_()
    fused(hidden, weight, bias, allowed, torch.zeros(16, dtype=torch.long, device=hidden.device)).sum().backward()
    touched = weight.grad.abs().sum(1) > 0
    assert set(torch.nonzero(touched).flatten().tolist()) <= set(allowed.tolist())


def test_a_strided_bias_reads_like_the_reference():
    hidden, weight, _, allowed = make_case(A=10)
    bias = torch.randn(2 * weight.shape[0], generator=torch.Generator().manual_seed(4)).to(hidden.device)[::2]
    targets = torch.arange(16, device=hidden.device) % allowed.numel()
    torch.testing.assert_close(fused(hidden, weight, bias, allowed, targets),
                               reference.allowed_logprobs(hidden, weight, bias, allowed, targets),
                               atol=1e-5, rtol=0)


def test_a_chunk_of_masked_ids_leaves_values_and_gradients_finite():
    hidden, weight, bias, allowed = make_case(A=32)
    bias = bias.clone()
    bias[allowed[:16]] = float("-inf")
    targets = torch.arange(16, 32).repeat(1)[: hidden.shape[0]].to(allowed.device)
    h_ref, h_out = hidden.clone().requires_grad_(), hidden.clone().requires_grad_()
    ref = reference.allowed_logprobs(h_ref, weight, bias, allowed, targets)
    out = fused(h_out, weight, bias, allowed, targets, block_a=16)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    ref.sum().backward()
    out.sum().backward()
    assert torch.isfinite(h_out.grad).all()
    torch.testing.assert_close(h_out.grad, h_ref.grad, atol=1e-5, rtol=0)
