"""Exact quantiles on the token tree against the brute-force distribution of every number."""

import numpy as np
import pytest
import torch

from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
from lmreg.batching import Encoded, collate
from lmreg import decoding
from lmreg.decoding import NumberGrammar, constrained_logprobs, ranked_probability_scores, sample_tokens
from lmreg.quantile_decoding import quantile_batch, quantile_tokens
from lmreg.training.rl import group_logprobs


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    with torch.no_grad():   # a peakier head than the random init gives, so quantiles differ
        model.head.weight.mul_(8.0)
    grammar = NumberGrammar(np.ones((2, 10), dtype=bool))     # two digits: 00 .. 99
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 20, size=n) for n in (3, 5, 4)]
    enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids], [np.zeros(len(r), np.int8) for r in ids])
    return model, grammar, enc


def _exact_cdf(model, grammar, enc, row):
    """CDF over all 100 numbers of one row, from teacher-forced log-probs of each."""
    tokens = torch.tensor([[a, b] for a in range(10) for b in range(10)])
    with torch.no_grad():
        lp = group_logprobs(model, grammar, collate(enc, [row], 0), tokens, 100)
    return torch.cumsum(lp.sum(dim=1).exp().double(), 0)


@pytest.mark.parametrize("level", [0.05, 0.3, 0.5, 0.77, 0.95])
def test_tree_quantile_is_the_brute_force_quantile(setup, level):
    model, grammar, enc = setup
    q = quantile_batch(model, grammar, collate(enc, [0, 1, 2], 0), [level])
    for row in range(3):
        cdf = _exact_cdf(model, grammar, enc, row)
        expected = int(torch.searchsorted(cdf, torch.tensor([level], dtype=torch.float64))[0])  # first >=
        assert int(q[row, 0, 0] * 10 + q[row, 0, 1]) == expected


def test_levels_are_monotone_and_rows_independent(setup):
    model, grammar, enc = setup
    levels = [0.1, 0.25, 0.5, 0.75, 0.9]
    out = quantile_tokens(model, enc, grammar, 0, levels)
    values = out[..., 0] * 10 + out[..., 1]
    assert out.shape == (3, 5, 2) and np.all(np.diff(values, axis=1) >= 0)
    alone = quantile_tokens(model, Encoded(enc.ids[2:], enc.values[2:], enc.kinds[2:]), grammar, 0, levels)
    np.testing.assert_array_equal(alone[0], out[2])
    # a high temperature flattens the distribution: the 10%-90% range widens
    hot = quantile_tokens(model, enc, grammar, 0, [0.1, 0.9], temperature=5.0)
    hot_values = hot[..., 0] * 10 + hot[..., 1]
    assert np.all(hot_values[:, 1] - hot_values[:, 0] >= values[:, 4] - values[:, 0])


def test_many_samples_of_a_row_decode_in_blocks_of_max_sequences(setup, monkeypatch):
    model, grammar, enc = setup
    ref = sample_tokens(model, enc, grammar, 0, n_samples=7, seed=3)
    sequences, real = [], decoding.sample_batch

    def spy(model, grammar, batch, n_samples, *args, **kwargs):
        sequences.append(batch.ids.shape[0] * n_samples)
        return real(model, grammar, batch, n_samples, *args, **kwargs)

    monkeypatch.setattr(decoding, "sample_batch", spy)
    got = sample_tokens(model, enc, grammar, 0, n_samples=7, seed=3, max_sequences=3)
    # all 7 samples of a row went through every step together (memory grew with n_samples)
    assert max(sequences) <= 3 and sum(sequences) == 3 * 7
    np.testing.assert_array_equal(got, ref)   # the same samples, block by block


def test_ranked_probability_score_is_the_crps_of_each_digit(setup):
    """Against the energy form of the CRPS, E|X - t| - E|X - X'| / 2 (X, X' ~ p independent),
    which shares nothing with the cumulative-sum form the function uses."""
    model, grammar, _ = setup
    torch.manual_seed(1)
    hidden = torch.randn(4, 2, 32)
    targets = torch.tensor([[0, 9], [3, 3], [9, 0], [5, 7]])
    rps = ranked_probability_scores(model, hidden, grammar, targets)
    digits = torch.arange(10, dtype=torch.float64)
    for b in range(4):
        for p in range(2):
            probs = torch.softmax(hidden[b, p].double() @ model.head.weight.double().T
                                  + model.head.bias.double(), dim=-1)
            t = float(targets[b, p])
            energy = (probs * (digits - t).abs()).sum() - 0.5 * (
                probs[:, None] * probs[None, :] * (digits[:, None] - digits[None, :]).abs()).sum()
            assert rps[b, p].item() == pytest.approx(energy.item(), rel=1e-5, abs=1e-6)


def test_ranked_probability_score_charges_distance_and_only_allowed_tokens():
    cfg = BackboneConfig(hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16)
    model = RegressionLM(build_backbone(cfg, 4 + 12), 4, 12)
    with torch.no_grad():   # all mass on token 4 (a 3 among the allowed ids 1..10)
        model.head.weight.zero_()
        model.head.bias.fill_(-50.0)
        model.head.bias[4] = 50.0
    allowed = np.zeros((1, 12), dtype=bool)
    allowed[0, 1:11] = True      # ten digits at ids 1..10, as p10's mantissa positions lie
    grammar = NumberGrammar(allowed)
    hidden = torch.zeros(4, 1, 8)
    rps = ranked_probability_scores(model, hidden, grammar, torch.tensor([[4], [5], [9], [1]]))[:, 0]
    # cross-entropy would charge 100 for every miss; the RPS charges the distance in digits
    np.testing.assert_allclose(rps.tolist(), [0.0, 1.0, 5.0, 3.0], atol=1e-6)


def test_ranked_probability_score_has_gradients_toward_the_target(setup):
    model, grammar, _ = setup
    hidden = torch.randn(3, 2, 32, requires_grad=True)
    targets = torch.tensor([[2, 8], [0, 0], [9, 4]])
    before = ranked_probability_scores(model, hidden, grammar, targets).sum()
    before.backward()
    assert torch.isfinite(hidden.grad).all() and hidden.grad.abs().sum() > 0
    with torch.no_grad():
        after = ranked_probability_scores(model, hidden - 0.01 * hidden.grad, grammar, targets).sum()
    assert after < before


def test_a_target_the_grammar_forbids_is_named():
    torch.manual_seed(0)
    cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    allowed = np.zeros((2, 10), dtype=bool)
    allowed[0, :2] = allowed[1, 2:] = True
    grammar = NumberGrammar(allowed)
    with pytest.raises(ValueError, match=r"target token 5 \(row 1\) is not allowed at number position 0"):
        constrained_logprobs(model, torch.randn(2, 2, 32), grammar, torch.tensor([[0, 2], [5, 9]]))
    # the ranked probability score read a forbidden target's rank -1 as the first allowed token
    with pytest.raises(ValueError, match=r"target token 5 \(row 1\) is not allowed at number position 0"):
        ranked_probability_scores(model, torch.randn(2, 2, 32), grammar, torch.tensor([[0, 2], [5, 9]]))
    for fn in (constrained_logprobs, ranked_probability_scores):   # -1 indexed from the end: id 9
        with pytest.raises(ValueError, match=r"target token ids must lie in 0 .. 9; got -1"):
            fn(model, torch.randn(2, 2, 32), grammar, torch.tensor([[0, 2], [1, -1]]))
        with pytest.raises(ValueError, match=r"target token ids must lie in 0 .. 9; got 10"):
            fn(model, torch.randn(2, 2, 32), grammar, torch.tensor([[0, 2], [1, 10]]))
        # the whole sequence's states: its first positions (the prompt's) were read silently
        for hidden in (torch.randn(2, 6, 32), torch.randn(2, 1, 32), torch.randn(3, 2, 32)):
            with pytest.raises(ValueError, match=r"hidden must be \[rows, 2, H\].*of 2 rows.*got \("):
                fn(model, hidden, grammar, torch.tensor([[0, 2], [1, 9]]))


def test_quantiles_decisions_and_grammars_refuse_what_they_cannot_compute(setup):
    from lmreg.decoding import decide
    from lmreg.quantile_decoding import quantile_walk

    model, grammar, enc = setup
    batch = collate(enc, [0], 0)
    for temperature in (0.0, -1.0, float("nan")):   # all-zero or reversed quantiles, silently
        with pytest.raises(ValueError, match="temperature must be > 0"):
            quantile_batch(model, grammar, batch, [0.5], temperature=temperature)
    with pytest.raises(ValueError, match=r"levels must be one or more quantile levels in \[0, 1\]; got \[1.5\]"):
        quantile_batch(model, grammar, batch, [1.5])
    uneven = NumberGrammar(np.array([[True] * 2 + [False] * 8, [True] * 10]))
    with pytest.raises(ValueError, match=r"same number of allowed ids at every position.*\[2, 10\]"):
        quantile_walk(model, uneven, batch, [0.5])   # was a stack error after the whole walk
    with pytest.raises(ValueError, match="at least one position"):
        NumberGrammar(np.zeros((0, 10), dtype=bool))
    for bad in (np.array([1.0, 2.0]), np.zeros((2, 0))):
        with pytest.raises(ValueError, match="samples must be \\[rows, n_samples\\]"):
            decide(bad)


def test_empty_requests_are_named(setup):
    from lmreg.decoding import sample_tokens

    model, grammar, enc = setup
    for bad in (0, -1, 2.5, True):   # 0 was a ZeroDivisionError from the batch sizing
        with pytest.raises(ValueError, match="n_samples must be a positive integer"):
            sample_tokens(model, enc, grammar, 0, n_samples=bad)
    for bad in ([], [0.0], [0.5, 1.0]):
        with pytest.raises(ValueError, match="levels must be one or more quantile levels in"):
            quantile_tokens(model, enc, grammar, 0, bad)
    for bad in (0, -1):   # a misleading row_seeds error and a raw repeat error in sample_batch
        with pytest.raises(ValueError, match="n_samples must be a positive integer"):
            decoding.sample_batch(model, grammar, collate(enc, [0, 1], 0), n_samples=bad, seed=1)
