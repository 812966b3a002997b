"""Exact quantiles on the token tree against the brute-force distribution of every number."""

import numpy as np
import pytest
import torch

from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
from lmreg.batching import Encoded, collate
from lmreg.decoding import NumberGrammar, quantile_batch, quantile_tokens
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
