"""Parity of the fused decode step (Triton; interpreter on CPU) with the torch reference."""

import pytest
import torch

from lmreg.kernels import reference
from lmreg.kernels.fused_decode_step import decode_step as fused

from .common import DEVICE, TOLERANCES, make_case

# The last case takes the many-rows tiling (64 rows per program, a ragged last block).
CASES = [dict(A=10), dict(A=25, V=1000), dict(A=40, H=100, bias=False), dict(N=5, A=3), dict(N=2100, A=12)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES)
def test_same_noise_same_tokens(case, dtype):
    hidden, weight, bias, allowed = make_case(dtype=dtype, **case)
    noise = reference.gumbel_noise((hidden.shape[0], allowed.numel()), torch.Generator().manual_seed(1))
    noise = noise.to(DEVICE)
    for T in (1.0, 0.7):
        ref = reference.decode_step(hidden, weight, bias, allowed, T, noise=noise, return_probs=True)
        out = fused(hidden, weight, bias, allowed, T, noise=noise, return_probs=True)
        tol = TOLERANCES[dtype][0]
        assert torch.equal(ref[0], out[0])
        torch.testing.assert_close(out[1], ref[1], atol=tol, rtol=0)
        torch.testing.assert_close(out[2], ref[2], atol=tol, rtol=0)
        torch.testing.assert_close(out[2].sum(1), torch.ones_like(out[1]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_greedy_matches(case):
    hidden, weight, bias, allowed = make_case(**case)
    ref = reference.decode_step(hidden, weight, bias, allowed, 0.0)
    out = fused(hidden, weight, bias, allowed, 0.0)
    assert torch.equal(ref[0], out[0])
    torch.testing.assert_close(out[1], ref[1], atol=1e-5, rtol=0)


def test_several_chunks_of_the_allowed_set():
    """A=40 with 16-wide chunks: the online log-sum-exp and argmax span 3 chunks."""
    hidden, weight, bias, allowed = make_case(A=40)
    noise = reference.gumbel_noise((16, 40), torch.Generator().manual_seed(3)).to(DEVICE)
    ref = reference.decode_step(hidden, weight, bias, allowed, 1.0, noise=noise)
    out = fused(hidden, weight, bias, allowed, 1.0, noise=noise, block_a=16)
    assert torch.equal(ref[0], out[0])
    assert (out[0].unsqueeze(1) == allowed[16:]).any()  # some winners live past the first chunk


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES)
def test_same_seed_same_tokens(case, dtype):
    """The in-kernel noise is the reference's counter_gumbel: the same seeds draw the same tokens."""
    hidden, weight, bias, allowed = make_case(dtype=dtype, **case)
    N = hidden.shape[0]
    # row seeds past bit 31 and 32 and negative ones: each counts by its low 32 bits on both backends
    row_seeds = torch.arange(N, device=DEVICE) * 7919 + torch.tensor([0, 2**31, 2**32 + 1, -5], device=DEVICE).repeat(
        N // 4 + 1)[:N]
    draws = [(0, None), (1, row_seeds), (2**31 + 5, row_seeds), (2**64 + 3, None), (2**32 - 1, torch.arange(N).int())]
    for seed, rs in draws if N <= 64 else draws[1:2]:   # the interpreter's cost grows with the programs
        ref = reference.decode_step(hidden, weight, bias, allowed, 0.8, seed=seed, row_seeds=rs, return_probs=True)
        out = fused(hidden, weight, bias, allowed, 0.8, seed=seed, row_seeds=rs, return_probs=True)
        assert torch.equal(ref[0], out[0]), (seed, rs is None)
        torch.testing.assert_close(out[1], ref[1], atol=TOLERANCES[dtype][0], rtol=0)


def test_row_seeds_apart_by_bit_31_draw_apart():
    """A row's noise reads all 32 low bits of its seed (an earlier kernel dropped bit 31)."""
    hidden, weight, bias, allowed = make_case(N=16, A=25, V=1000)
    hidden = hidden[:1].repeat(16, 1)   # one distribution, so the draws differ only by their noise
    base = torch.arange(8, device=DEVICE) * 3
    tokens = fused(hidden, weight, bias, allowed, 1.0, seed=9, row_seeds=torch.cat([base, base + 2**31]))[0]
    assert not torch.equal(tokens[:8], tokens[8:])
    again = fused(hidden[:8], weight, bias, allowed, 1.0, seed=9, row_seeds=base + 2**32)[0]
    assert torch.equal(again, tokens[:8])   # bits past 31 do not count


def test_in_kernel_rng_is_seeded_and_only_emits_allowed_ids():
    hidden, weight, bias, allowed = make_case(A=12)
    a = fused(hidden, weight, bias, allowed, 1.0, seed=123)[0]
    b = fused(hidden, weight, bias, allowed, 1.0, seed=123)[0]
    c = fused(hidden, weight, bias, allowed, 1.0, seed=124)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isin(a, allowed).all() and torch.isin(c, allowed).all()


def test_in_kernel_rng_frequencies_match_probabilities():
    """16 identical rows x 64 seeds = 1024 draws from one 4-way distribution."""
    hidden, weight, bias, allowed = make_case(N=1, A=4, seed=7)
    hidden = hidden.expand(16, -1).contiguous()
    probs = reference.decode_step(hidden[:1], weight, bias, allowed, 1.0, return_probs=True)[2][0]
    draws = torch.cat([fused(hidden, weight, bias, allowed, 1.0, seed=s)[0] for s in range(64)])
    freq = torch.stack([(draws == t).float().mean() for t in allowed])
    # 1024 draws: 4 standard errors is below 0.065 for any probability.
    torch.testing.assert_close(freq.cpu(), probs.float().cpu(), atol=0.065, rtol=0)


def test_a_strided_bias_reads_like_the_reference():
    """A bias view with stride 2 (e.g. a slice): the kernel reads bias_ptr + id, so it gets a copy."""
    hidden, weight, _, allowed = make_case(A=10)
    bias = torch.randn(2 * weight.shape[0], generator=torch.Generator().manual_seed(4)).to(hidden.device)[::2]
    ref = reference.decode_step(hidden, weight, bias, allowed, 1.0, return_probs=True)
    out = fused(hidden, weight, bias, allowed, 1.0, return_probs=True)
    torch.testing.assert_close(out[2], ref[2], atol=1e-5, rtol=0)


def test_a_chunk_of_masked_ids_leaves_the_log_sum_exp_finite():
    """A first 16-wide chunk of ids at -inf (a -inf bias as a mask) made exp(-inf - -inf) NaN
    in the online log-sum-exp: NaN log-probs and probabilities where the reference is finite."""
    hidden, weight, bias, allowed = make_case(A=32)
    bias = bias.clone()
    bias[allowed[:16]] = float("-inf")
    noise = reference.gumbel_noise((16, 32), torch.Generator().manual_seed(1)).to(DEVICE)
    ref = reference.decode_step(hidden, weight, bias, allowed, 1.0, noise=noise, return_probs=True)
    out = fused(hidden, weight, bias, allowed, 1.0, noise=noise, block_a=16, return_probs=True)
    assert torch.equal(ref[0], out[0]) and torch.isfinite(out[1]).all()
    torch.testing.assert_close(out[1], ref[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[2], ref[2], atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # -inf - -inf, as the reference
@pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")   # log(0): every id masked
def test_rows_whose_scores_are_all_minus_inf_pick_and_score_like_the_reference():
    """Every score -inf (noise of -inf; or every allowed id masked by a -inf bias): the
    reference takes the first allowed id and its log-prob; the kernel scored it from a logit of 0."""
    hidden, weight, bias, allowed = make_case(N=4, A=20)
    noise = reference.gumbel_noise((4, 20), torch.Generator().manual_seed(2)).to(DEVICE)
    noise[0] = float("-inf")
    ref = reference.decode_step(hidden, weight, bias, allowed, 1.0, noise=noise)
    out = fused(hidden, weight, bias, allowed, 1.0, noise=noise, block_a=16)
    assert torch.equal(ref[0], out[0]) and ref[0][0] == allowed[0]
    torch.testing.assert_close(out[1], ref[1], atol=1e-5, rtol=0)
    masked = bias.clone()
    masked[allowed] = float("-inf")
    ref = reference.decode_step(hidden, weight, masked, allowed, 1.0, noise=noise)
    out = fused(hidden, weight, masked, allowed, 1.0, noise=noise, block_a=16)
    assert torch.equal(ref[0], out[0]) and torch.isnan(ref[1]).all() and torch.isnan(out[1]).all()


def test_both_backends_return_int64_tokens_and_a_log_prob_without_gradient():
    hidden, weight, bias, allowed = make_case(N=3, A=10)
    weight = weight.clone().requires_grad_(True)
    for step in (reference.decode_step, fused):
        tokens, logprob, _ = step(hidden, weight, bias, allowed.to(torch.int32), 1.0, seed=1)
        assert tokens.dtype == torch.int64 and not logprob.requires_grad
