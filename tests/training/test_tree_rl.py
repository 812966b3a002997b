import copy
import itertools

import numpy as np
import pytest
import torch

from lmreg import LMRegressor
from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
from lmreg.batching import Encoded, collate
from lmreg.codecs import make_codec
from lmreg.decoding import NumberGrammar
from lmreg.quantile_decoding import quantile_batch, quantile_walk
from lmreg.training.rl import reward_function
from lmreg.training.rl_config import stage_reward
from lmreg.training.tree_rl import (expected_reward, median_loss, path_cdf, path_kl, path_logprobs,
                                    subtree_values, tempered, tree_loss, tree_rewards)

TINY = dict(max_time=None, random_state=0, hidden_size=32, num_layers=1, num_heads=2)


def _setup(n_digits, seed=0):
    torch.manual_seed(seed)
    cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    codec = make_codec("digits", n_digits=n_digits, scaling="minmax", margin=0.0).fit(np.array([0.0, 10.0]))
    ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4]), np.array([4, 9])]
    enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids], [np.zeros(len(r), np.int8) for r in ids])
    return model, codec, NumberGrammar(codec.grammar()), enc


def _all_numbers(model, grammar, enc, n_digits):
    """Every number the codec writes and its log-probability under the model, by teacher forcing."""
    numbers = torch.tensor(list(itertools.product(range(10), repeat=n_digits)))
    logp = [path_logprobs(model, grammar, collate(enc, [b] * len(numbers), 0), numbers)
            .gather(2, numbers.unsqueeze(2)).sum(dim=(1, 2)) for b in range(len(enc.ids))]
    return numbers, torch.stack(logp)                                 # [N, L], [B, N]


def test_one_digit_tree_is_the_exact_expectation():
    model, codec, grammar, enc = _setup(1)
    batch = collate(enc, [0, 1, 2], 0)
    y = np.array([2.0, 7.5, 10.0])
    reward = reward_function("abs", scale=2.0)
    tokens, sib, own = tree_rewards(codec, reward, y, "cpu")
    got = expected_reward(path_logprobs(model, grammar, batch, tokens), tokens, sib, own)
    numbers, logp = _all_numbers(model, grammar, enc, 1)
    values = codec.decode(numbers.numpy())
    want = (logp.exp() * torch.as_tensor(-np.abs(values[None] - y[:, None]) / 2.0, dtype=torch.float32)).sum(1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_two_digit_tree_against_all_hundred_numbers(dtype):
    """The split at the first deviation, checked leaf by leaf: value and gradient equal the sum
    over all 100 numbers of P(number) * reward(centre of the subtree where it leaves the target);
    with the exact reward of every number it is within the centre approximation's bound."""
    model, codec, grammar, enc = _setup(2)
    batch = collate(enc, [0, 1, 2], 0)
    model = model.to(dtype)
    y = np.array([3.1, 6.66, 0.0])
    reward = reward_function("abs", scale=1.0)
    tokens, sib, own = tree_rewards(codec, reward, y, "cpu")

    got = expected_reward(path_logprobs(model, grammar, batch, tokens), tokens, sib, own)
    (g_got,) = torch.autograd.grad(got.sum(), model.head.weight)

    numbers, logp = _all_numbers(model, grammar, enc, 2)
    t = tokens.numpy()
    per_leaf = np.zeros((3, 100))
    centres = subtree_values(codec, t)                                 # [B, 2, 10]
    for b in range(3):
        for n, (d0, d1) in enumerate(numbers.tolist()):
            if d0 != t[b, 0]:
                per_leaf[b, n] = -abs(centres[b, 0, d0] - y[b])
            elif d1 != t[b, 1]:
                per_leaf[b, n] = -abs(centres[b, 1, d1] - y[b])
            else:
                per_leaf[b, n] = float(own[b])
    want = (logp.exp() * torch.as_tensor(per_leaf, dtype=torch.float32)).sum(1)
    (g_want,) = torch.autograd.grad(want.sum(), model.head.weight)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(got, want, **tol)
    torch.testing.assert_close(g_got, g_want, **tol)

    exact = (logp.exp() * torch.as_tensor(-np.abs(codec.decode(numbers.numpy())[None] - y[:, None]),
                                          dtype=torch.float32)).sum(1)
    half_width = 0.5 * 9 * codec.precision() * 2                       # half of a first-digit subtree
    assert torch.all((got - exact).abs() <= half_width + 1e-4), (got, exact)
    assert not torch.allclose(got, exact)                              # the approximation is not exact


def test_path_kl_is_zero_against_itself_and_positive_otherwise():
    model, codec, grammar, enc = _setup(3)
    batch = collate(enc, [0, 1, 2], 0)
    tokens = torch.as_tensor(codec.encode(np.array([1.0, 5.0, 9.0])))
    lp = path_logprobs(model, grammar, batch, tokens)
    assert torch.allclose(path_kl(lp, lp), torch.zeros(3), atol=1e-6)
    other = torch.log_softmax(torch.randn_like(lp), dim=-1)
    kl = path_kl(lp, other)
    want = (lp.exp() * (lp - other)).sum(-1).sum(-1)
    torch.testing.assert_close(kl, want)
    assert torch.all(kl > 0)


def test_tree_loss_terms():
    model, codec, grammar, enc = _setup(2)
    batch = collate(enc, [0, 1, 2], 0)
    y = np.array([1.0, 5.0, 9.0])
    targets = tree_rewards(codec, reward_function("abs", 1.0), y, "cpu")
    loss, reward, kl = tree_loss(model, model, grammar, batch, *targets, kl_coef=0.5)
    assert kl == pytest.approx(0.0, abs=1e-6) and loss.item() == pytest.approx(-reward, abs=1e-6)
    with_ce, _, _ = tree_loss(model, model, grammar, batch, *targets, kl_coef=0.5, sft_coef=2.0)
    lp = path_logprobs(model, grammar, batch, targets[0]).gather(2, targets[0].unsqueeze(2)).sum(dim=(1, 2))
    assert with_ce.item() == pytest.approx(loss.item() - 2.0 * lp.mean().item(), rel=1e-5)


def test_tree_rewards_reject_a_reward_that_is_not_finite():
    codec = make_codec("digits", n_digits=2, scaling="minmax", margin=0.0).fit(np.array([-5.0, 5.0]))
    with pytest.raises(ValueError, match="not finite"):
        tree_rewards(codec, reward_function(lambda p, t, s: np.where(p > t, -1.0, np.nan), 1.0), np.array([0.0]), "cpu")


def test_path_cdf_against_all_hundred_numbers():
    model, codec, grammar, enc = _setup(2)
    batch = collate(enc, [0, 1, 2], 0)
    tokens = torch.tensor([[3, 7], [0, 0], [9, 9]])
    got = path_cdf(path_logprobs(model, grammar, batch, tokens), tokens)
    numbers, logp = _all_numbers(model, grammar, enc, 2)
    value = numbers[:, 0] * 10 + numbers[:, 1]
    mine = tokens[:, 0] * 10 + tokens[:, 1]
    weight = (value[None] < mine[:, None]).float() + 0.5 * (value[None] == mine[:, None]).float()
    torch.testing.assert_close(got, (logp.exp() * weight).sum(1), atol=1e-5, rtol=1e-5)


def _cdf_around_a_step(model, grammar, batch, median, loss, lr=1e-2):
    """The CDF at ``median`` before and after one plain gradient step on ``loss``."""
    before = path_cdf(path_logprobs(model, grammar, batch, median), median).detach()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * p.grad
    return before, path_cdf(path_logprobs(model, grammar, batch, median), median).detach()


def test_median_loss_moves_each_median_towards_its_target():
    """One small step on the median loss raises the mass below a median that is too high and
    lowers it below a median that is too low; a row whose median is right adds nothing."""
    model, codec, grammar, enc = _setup(2)
    batch = collate(enc, [0, 1, 2], 0)
    median = quantile_batch(model, grammar, batch, [0.5])[:, 0]
    m = codec.decode(median.numpy())
    y = np.array([m[0] - 3.0, m[1] + 3.0, m[2]])
    reference = copy.deepcopy(model)
    loss, reward, kl = median_loss(model, reference, grammar, batch, codec, reward_function("abs", 1.0), y,
                                   scale=1.0, kl_coef=0.0)
    assert reward == pytest.approx(-2.0, abs=1e-6) and kl == pytest.approx(0.0, abs=1e-6)
    before, after = _cdf_around_a_step(model, grammar, batch, median, loss)
    assert after[0] > before[0] and after[1] < before[1], (before, after)
    # the third row (the unchanged model's median is its target) has slope 0: no gradient
    loss3, _, _ = median_loss(reference, reference, grammar, collate(enc, [2], 0), codec,
                              reward_function("abs", 1.0), y[2:], scale=1.0, kl_coef=0.0)
    loss3.backward()
    assert all(p.grad is None or p.grad.abs().max() < 1e-6 for p in reference.parameters())


def test_median_loss_leaves_an_on_target_median_on_an_uneven_grid():
    """On the quantile codec's uneven grid a median on its target has slope 0: a central
    difference over the two neighbours gave it up to the pull of a median two steps off."""
    model, _, grammar, enc = _setup(2)
    batch = collate(enc, [0, 1, 2], 0)
    gaps = np.random.default_rng(0).lognormal(0.0, 1.5, 100)
    codec = make_codec("digits", n_digits=2, scaling="quantile", margin=0.0).fit(np.cumsum(gaps))
    values = codec.decode(np.stack([np.arange(100) // 10, np.arange(100) % 10], axis=1))
    assert np.ptp(np.log(np.diff(values))) > 3   # gaps of very different sizes, next to each other
    median = quantile_batch(model, grammar, batch, [0.5])[:, 0]
    y = codec.decode(median.numpy())   # every row's median is its target, on the grid
    loss, reward, _ = median_loss(model, model, grammar, batch, codec, reward_function("abs", 1.0), y,
                                  scale=float(np.std(values)), kl_coef=0.0)
    assert reward == 0.0
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    assert all(g is None or g.abs().max() == 0 for g in grads)
    # off target, each row is still pulled its way: a step lowers the mass below a median
    # whose target lies above it
    up = np.array([values[min(int(np.searchsorted(values, t)) + 1, 99)] for t in y])
    loss, _, _ = median_loss(model, model, grammar, batch, codec, reward_function("abs", 1.0), up,
                             scale=1.0, kl_coef=0.0)
    before, after = _cdf_around_a_step(model, grammar, batch, median, loss)
    moved = up > y
    assert moved.any() and (after[torch.as_tensor(moved)] < before[torch.as_tensor(moved)]).all()


@pytest.mark.parametrize("levels, temperature", [([0.5], 1.0), ([0.1, 0.9], 1.0), ([0.3, 0.5], 0.5)])
def test_quantile_walk_logprobs_are_the_teacher_forced_ones(levels, temperature):
    """The median loss trains through the walk that finds the median: its log-probs and their
    gradients equal those of a teacher-forced pass on the quantile's digits (padded batch), at
    temperature 1 whatever temperature chose the path."""
    model, codec, grammar, enc = _setup(3)
    rows = [0, 1, 2]
    tokens, walked = quantile_walk(model, grammar, collate(enc, rows, 0), levels, temperature)
    assert torch.equal(tokens, quantile_batch(model, grammar, collate(enc, rows, 0), levels, temperature))
    if temperature != 1.0:  # the path depends on the temperature
        assert not torch.equal(tokens, quantile_batch(model, grammar, collate(enc, rows, 0), levels))
    flat = tokens.reshape(-1, grammar.length)
    forced = path_logprobs(model, grammar, collate(enc, np.repeat(rows, len(levels)), 0), flat)
    torch.testing.assert_close(walked, forced, atol=2e-5, rtol=1e-4)
    weights = torch.randn(forced.shape)
    g_walk = torch.autograd.grad((walked * weights).sum(), list(model.parameters()), allow_unused=True)
    g_tf = torch.autograd.grad((forced * weights).sum(), list(model.parameters()), allow_unused=True)
    for a, b in zip(g_walk, g_tf):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-3)


def _head_scaled(model, temperature):
    """The model whose logits are ``model``'s divided by ``temperature`` (the head is linear, untied)."""
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.head.weight /= temperature
        scaled.head.bias /= temperature
    return scaled


@pytest.mark.parametrize("which", ["median", "tree"])
def test_rl_losses_at_a_temperature_are_those_of_the_tempered_policy(which):
    """At temperature T the reward term (median walk and CDF, or expected reward) is the one of
    the model whose logits are divided by T: same value, same gradient in the trunk."""
    model, codec, grammar, enc = _setup(2)
    batch = collate(enc, [0, 1, 2], 0)
    y, T = np.array([1.0, 5.0, 9.0]), 0.4
    reward = reward_function("abs", 1.0)
    scaled = _head_scaled(model, T)
    if which == "median":
        assert not torch.equal(quantile_batch(model, grammar, batch, [0.5]),
                               quantile_batch(model, grammar, batch, [0.5], T))   # T moves the medians
        run = lambda m, t: median_loss(m, m, grammar, batch, codec, reward, y, 1.0, kl_coef=0.0,  # noqa: E731
                                       temperature=t)
    else:
        targets = tree_rewards(codec, reward, y, "cpu")
        run = lambda m, t: tree_loss(m, m, grammar, batch, *targets, kl_coef=0.0, temperature=t)  # noqa: E731
    (loss, r, _), (want, r_want, _) = run(model, T), run(scaled, 1.0)
    assert loss.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-7) and r == pytest.approx(r_want)
    assert loss.item() != pytest.approx(run(model, 1.0)[0].item(), rel=1e-3)
    trunk = [n for n, _ in model.named_parameters() if not n.startswith("head.")]
    g = torch.autograd.grad(loss, [dict(model.named_parameters())[n] for n in trunk], allow_unused=True)
    g_want = torch.autograd.grad(want, [dict(scaled.named_parameters())[n] for n in trunk], allow_unused=True)
    for a, b in zip(g, g_want):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_tempered_is_the_identity_at_temperature_one():
    logp = torch.log_softmax(torch.randn(2, 3, 10), dim=-1)
    assert tempered(logp, 1.0) is logp
    torch.testing.assert_close(tempered(logp, 2.0).exp().sum(-1), torch.ones(2, 3))


def test_tree_variant_errors():
    X, y = [f"n {i}" for i in range(30)], np.arange(30.0)
    with pytest.raises(ValueError, match="pointwise"):
        LMRegressor(max_epochs=1, rl_steps=1, rl_variant="tree", rl_reward="crps_loo", **TINY).fit(X, y)
    with pytest.raises(ValueError, match="codec='digits'"):
        LMRegressor(max_epochs=1, rl_steps=1, rl_variant="median", rl_reward="abs", codec="p10", **TINY).fit(X, y)
    with pytest.raises(ValueError, match="decision='median'"):
        LMRegressor(max_epochs=1, rl_steps=1, rl_variant="median", decision="mean", **TINY).fit(X, y)
    # decision=0.5 is the median, which the variant trains (it was refused as another rule)
    est = LMRegressor(max_epochs=1, rl_steps=1, rl_variant="median", decision=0.5, **TINY).fit(X, y)
    assert est.rl_result_ is not None


def test_default_reward_and_guard_follow_the_variant(monkeypatch):
    import lmreg.stages

    seen = []
    real = lmreg.stages.run_stage

    def spy(model, args, *a, **k):
        seen.append((stage_reward(args[6]), k["guard_crps"]))  # the RLConfig the estimator built
        return real(model, args, *a, **k)

    monkeypatch.setattr(lmreg.stages, "run_stage", spy)
    X, y = [f"n {i % 6}" for i in range(60)], (np.arange(60) % 6).astype(float)
    for variant in ("grpo", "tree", "median"):
        LMRegressor(max_epochs=1, rl_steps=1, rl_variant=variant, rl_config={"group_size": 4}, **TINY).fit(X, y)
    assert seen == [("crps_loo", True), ("abs", True), ("abs", False)]


def test_rl_trains_at_the_estimators_temperature(monkeypatch):
    """RL trains the distribution predict decides from, at the estimator's temperature,
    unless rl_config names one."""
    import lmreg.stages

    seen = []
    real = lmreg.stages.run_stage
    monkeypatch.setattr(lmreg.stages, "run_stage",
                        lambda model, args, *a, **k: seen.append(args[6].temperature) or real(model, args, *a, **k))
    X, y = [f"n {i % 6}" for i in range(60)], (np.arange(60) % 6).astype(float)
    for variant, config in (("median", {}), ("tree", {}), ("median", {"temperature": 1.0}), ("grpo", {}),
                            ("grpo", {"temperature": 1.3})):
        LMRegressor(max_epochs=1, rl_steps=1, rl_variant=variant, temperature=0.7,
                    rl_config={"group_size": 4, **config}, **TINY).fit(X, y)
    assert seen == [0.7, 0.7, 1.0, 0.7, 1.3]
