import functools
import warnings

import numpy as np
import pytest
import torch

from lmreg import LMRegressor
from lmreg.training import rewards as R
from lmreg.training.rl import (RLConfig, _sequence_logprobs, group_advantages, group_logprobs, policy_loss,
                               stage_reward, train_rl)

TINY = dict(max_time=None, random_state=0, hidden_size=32, num_layers=1, num_heads=2)


def test_group_advantages_on_a_known_group():
    r = np.array([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    std = r[0].std()
    np.testing.assert_allclose(group_advantages(r, "grpo", std_floor=0.5)[0], (r[0] - 3.0) / std)
    # identical samples: centred rewards are 0 and the floor keeps them 0, not NaN
    np.testing.assert_array_equal(group_advantages(r, "grpo", std_floor=0.5)[1], 0.0)
    np.testing.assert_allclose(group_advantages(r, "dr_grpo")[0], [-2.0, -1.0, 0.0, 3.0])
    np.testing.assert_allclose(group_advantages(r, "remax", baseline=np.array([2.0, 4.0])),
                               [[-1.0, 0.0, 1.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="baseline"):
        group_advantages(r, "remax")


def test_policy_loss_against_a_plain_torch_reference():
    g = torch.Generator().manual_seed(0)
    new = (torch.randn(6, 4, generator=g) - 2).requires_grad_()
    old = new.detach().sum(1) + 0.3 * torch.randn(6, generator=g)
    ref = torch.randn(6, 4, generator=g) - 2
    adv = torch.randn(6, generator=g)
    loss = policy_loss(new, old, ref, adv, clip_eps=0.2, kl_coef=0.1)
    (grad,) = torch.autograd.grad(loss, new)

    # straightforward per-sample loop
    total = 0.0
    x = new.detach().clone().requires_grad_()
    for i in range(6):
        ratio = torch.exp(x[i].sum() - old[i])
        unclipped, clipped = ratio * adv[i], torch.clamp(ratio, 0.8, 1.2) * adv[i]
        kl = sum(torch.exp(ref[i, j] - x[i, j]) - (ref[i, j] - x[i, j]) - 1 for j in range(4))
        total = total + (-torch.min(unclipped, clipped) + 0.1 * kl) / 6
    (grad_ref,) = torch.autograd.grad(total, x)
    torch.testing.assert_close(loss, total)
    torch.testing.assert_close(grad, grad_ref)


def test_rl_loss_through_the_fused_logprob_matches_the_reference(monkeypatch):
    X = [f"n {i % 5}" for i in range(20)]
    est = LMRegressor(max_epochs=1, **TINY).fit(X, np.arange(20.0) % 5)
    enc = est._encode(X)
    from lmreg.batching import collate

    batch = collate(enc, np.arange(4), est.tokenizer_.pad_id)
    tokens = torch.as_tensor(est.codec_.encode(np.array([0.0, 1.0, 2.0, 3.0])))
    out = {}
    for backend in ("reference", "triton"):
        monkeypatch.setenv("LMREG_KERNELS", backend)
        est.model_.zero_grad()
        lp = _sequence_logprobs(est.model_, est.grammar_, batch, tokens)
        loss = policy_loss(lp, lp.sum(1).detach(), lp.detach() - 0.1, torch.tensor([1.0, -1.0, 0.5, 0.0]),
                           0.2, 0.05)
        loss.backward()
        out[backend] = (loss.detach(), est.model_.head.weight.grad.clone())
    torch.testing.assert_close(out["triton"][0], out["reference"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["triton"][1], out["reference"][1], atol=1e-5, rtol=1e-4)


def test_group_logprobs_equal_whole_sequences_with_gradients():
    """Sharing the prompt's KV cache across a group changes the cost, not the maths."""
    X = [f"n {i % 5} " * (1 + i % 3) for i in range(20)]  # prompts of different lengths: padding
    est = LMRegressor(max_epochs=1, **TINY).fit(X, np.arange(20.0) % 5)
    enc, model, G = est._encode(X), est.model_.eval(), 4
    from lmreg.batching import collate

    tokens = torch.as_tensor(est.codec_.encode(np.arange(12.0) % 5))  # 3 prompts x 4 numbers
    weights = torch.randn(12, tokens.shape[1], generator=torch.Generator().manual_seed(0))
    out = []
    for rows in ([0, 1, 2], np.repeat([0, 1, 2], G)):
        model.zero_grad()
        batch = collate(enc, np.asarray(rows), est.tokenizer_.pad_id)
        lp = (group_logprobs(model, est.grammar_, batch, tokens, G) if len(rows) == 3
              else _sequence_logprobs(model, est.grammar_, batch, tokens))
        (lp * weights).sum().backward()
        out.append((lp.detach(), [p.grad for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(out[0][0], out[1][0], atol=1e-5, rtol=1e-5)
    assert len(out[0][1]) == len(out[1][1]) > 5
    for a, b in zip(out[0][1], out[1][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_group_logprobs_at_a_temperature_are_those_of_the_tempered_policy():
    """At temperature T the log-probs (ratio, KL) are those of the model whose logits are
    divided by T, the policy the rollouts were sampled from: values and trunk gradients."""
    import copy

    from lmreg.batching import collate

    X = [f"n {i % 5} " * (1 + i % 3) for i in range(20)]
    est = LMRegressor(max_epochs=1, **TINY).fit(X, np.arange(20.0) % 5)
    model, T, G = est.model_.eval(), 0.6, 3
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.head.weight /= T
        scaled.head.bias /= T
    batch = collate(est._encode(X), np.array([0, 1, 2]), est.tokenizer_.pad_id)
    tokens = torch.as_tensor(est.codec_.encode(np.arange(9.0) % 5))
    lp = group_logprobs(model, est.grammar_, batch, tokens, G, temperature=T)
    want = group_logprobs(scaled, est.grammar_, batch, tokens, G)
    torch.testing.assert_close(lp, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(lp, group_logprobs(model, est.grammar_, batch, tokens, G), atol=1e-3)
    trunk = [n for n, _ in model.named_parameters() if not n.startswith("head.")]
    g = torch.autograd.grad(lp.sum(), [dict(model.named_parameters())[n] for n in trunk], allow_unused=True)
    g_want = torch.autograd.grad(want.sum(), [dict(scaled.named_parameters())[n] for n in trunk],
                                 allow_unused=True)
    assert sum(a is not None for a in g) > 5
    for a, b in zip(g, g_want):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", ["grpo", "tree", "median"])
def test_rl_with_the_exact_reward_fixes_noisy_sft_labels(variant):
    """SFT sees labels shifted by +3 on 60% of rows, so its median is wrong by ~3;
    RL rewarded with the clean targets must move the median back (the tree variants
    without drawing a sample)."""
    rng = np.random.default_rng(0)
    k = np.repeat(np.arange(10), 30)
    X = [f"item {i}" for i in k]
    clean = k.astype(float)
    noisy = clean + 3.0 * (rng.random(len(k)) < 0.6)
    est = LMRegressor(max_epochs=15, validation_fraction=0.0, **TINY).fit(X, noisy)
    before = np.abs(est.predict(X[::30]) - clean[::30]).mean()
    res = train_rl(est.model_, est._encode(X), clean, est.codec_, est.grammar_, np.arange(len(k)),
                   est.tokenizer_.pad_id, RLConfig(variant=variant, reward="abs", learning_rate=3e-3, kl_coef=0.0,
                                                   prompts_per_step=10),
                   max_steps=40, seed=0)
    after = np.abs(est.predict(X[::30]) - clean[::30]).mean()
    assert before > 1.0, before
    assert after < 0.5 * before, (before, after)
    assert res.history[-1]["reward"] > res.history[0]["reward"]


@pytest.mark.parametrize("variant, reward", [("grpo", "abs"), ("dr_grpo", "crps_loo"), ("remax", "squared"),
                                             ("tree", "abs"), ("median", None)])
def test_estimator_rl_stage(variant, reward):
    X = [f"n {i % 6}" for i in range(60)]
    y = (np.arange(60) % 6).astype(float)
    est = LMRegressor(max_epochs=3, rl_steps=3, rl_variant=variant, rl_reward=reward,
                      rl_config={"group_size": 4, "prompts_per_step": 4}, **TINY).fit(X, y)
    res = est.rl_result_
    assert res.steps == 3 and np.isfinite(res.val_mae) and len(res.history) == 3
    assert all(np.isfinite(h["reward"]) and h["kl"] >= -1e-6 for h in res.history)
    assert est.predict(X[:2]).shape == (2,)
    # the same fit without RL has the same SFT weights: a kept stage moved them, a reverted one not
    sft = LMRegressor(max_epochs=3, **TINY).fit(X, y).model_.state_dict()
    same = all(torch.equal(v, sft[k]) for k, v in est.model_.state_dict().items())
    assert same is (not res.kept)
    assert res.val_mae == (res.val_after["error"] if res.kept else res.val_before["error"])


def test_rl_respects_the_shared_time_budget():
    # transformers' lazy model imports take seconds on a cold process: not what the budget measures
    LMRegressor(max_epochs=1, **TINY).fit([f"n {i}" for i in range(30)], np.arange(30.0))
    X = [f"text {i} " * 8 for i in range(400)]
    est = LMRegressor(max_time=8, rl_steps=10_000, random_state=0).fit(X, np.arange(400.0))
    assert all(0 < r.steps < 10_000 for r in est.member_rl_results_)
    assert est.fit_seconds_ < 8 + 2.5


def test_rl_argument_errors():
    with pytest.raises(ValueError, match="pointwise"):
        LMRegressor(max_epochs=1, rl_steps=1, rl_variant="remax", rl_reward="rank", **TINY).fit(
            [f"n {i}" for i in range(30)], np.arange(30.0))
    with pytest.raises(ValueError, match="rl_steps"):
        LMRegressor(rl_steps=-1).fit(["a", "b"], [1.0, 2.0])
    with pytest.raises(ValueError, match="rl_config"):
        LMRegressor(rl_steps=1, rl_config="{}").fit(["a", "b"], [1.0, 2.0])
    for bad in (0.0, 1e-40, float("nan")):  # train_rl on its own checks it too, before touching the model
        with pytest.raises(ValueError, match=r"'temperature' parameter of RLConfig must be a float "
                                             r"in the range \[0.01, inf\)"):
            train_rl(None, None, np.zeros(3), None, None, np.arange(3), 0, RLConfig(temperature=bad), 1)


@pytest.mark.parametrize("field, value", [
    ("variant", "ppo"), ("reward", "mae"), ("group_size", 1), ("group_size", 2.5), ("learning_rate", 0.0),
    ("clip_eps", -0.1), ("std_floor", float("nan")), ("kl_coef", -1.0), ("grad_clip", float("inf")),
    ("updates_per_rollout", 0), ("checks", 0), ("prompts_per_step", 0), ("prompt_rows", "test"),
    ("keep_test", "t_test"), ("keep_alpha", 1.5), ("guard_crps", "yes"),
    ("checks", True), ("learning_rate", True), ("keep_alpha", True),   # scikit-learn's Interval took True as 1
])
def test_rl_config_checks_its_fields_when_built(field, value):
    with pytest.raises(ValueError, match=f"^The '{field}' parameter of RLConfig must be"):
        RLConfig(**{field: value})


def test_rl_config_refuses_a_stage_with_no_objective():
    with pytest.raises(ValueError, match="pg_coef=0 and sft_coef=0 leave the stage no objective"):
        RLConfig(pg_coef=0.0, sft_coef=0.0)
    assert RLConfig(pg_coef=0.0, sft_coef=1.0).pg_coef == 0.0   # the continued cross-entropy control


def test_the_check_of_a_mode_model_scores_its_greedy_decode():
    """With decision='mode' the keep check scored the exact median, a number predict never returns."""
    X = [f"n {i % 6}" for i in range(60)]
    y = (np.arange(60) % 6).astype(float)
    est = LMRegressor(max_epochs=10, decision="mode", **TINY).fit(X, y)
    assert not est.fallback_   # predict returns the model's greedy decode
    enc, rows = est._encode(X), np.arange(0, 60, 3)
    errors, _, _ = est._rl_check(enc, y, rows)
    np.testing.assert_allclose(errors, np.abs(est.predict([X[i] for i in rows]) - y[rows]))


def test_rl_config_reward_default_and_incompatible_pairs():
    assert stage_reward(RLConfig()) == "crps_loo" and stage_reward(RLConfig(variant="median")) == "abs"
    assert stage_reward(RLConfig(variant="tree", reward="squared")) == "squared"
    cfg = RLConfig(variant="median")   # the default follows a later change of variant
    cfg.variant = "grpo"
    assert stage_reward(cfg) == "crps_loo"
    cfg.check()
    with pytest.raises(ValueError, match="pointwise"):
        RLConfig(variant="remax", reward="rank")
    with pytest.raises(ValueError, match="pointwise"):
        RLConfig(variant="median", reward="crps_loo")
    cfg = RLConfig()
    cfg.group_size = 1  # set after it was built: train_rl checks again before touching the model
    with pytest.raises(ValueError, match="group_size"):
        train_rl(None, None, np.zeros(3), None, None, np.arange(3), 0, cfg, 1)


def test_several_updates_per_rollout(monkeypatch):
    """GRPO's mu: each rollout feeds `updates_per_rollout` optimizer steps, later ones off-policy."""
    X = [f"n {i % 6}" for i in range(60)]
    y = (np.arange(60) % 6).astype(float)
    est = LMRegressor(max_epochs=2, validation_fraction=0.0, **TINY).fit(X, y)
    calls = []
    real_step = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: calls.append(1) or real_step(self, *a, **k))
    res = train_rl(est.model_, est._encode(X), y, est.codec_, est.grammar_, np.arange(60), est.tokenizer_.pad_id,
                   RLConfig(group_size=4, prompts_per_step=4, updates_per_rollout=3, learning_rate=1e-3),
                   max_steps=2, seed=0)
    assert res.steps == 2 and len(calls) == 6
    assert all(np.isfinite(h["loss"]) for h in res.history)


def test_reinforce_runs_rl_on_a_fitted_model_and_reverts_when_validation_gets_worse():
    X = [f"n {i % 6}" for i in range(60)]
    y = (np.arange(60) % 6).astype(float)
    est = LMRegressor(max_epochs=10, **TINY).fit(X, y)
    # The premise: an SFT model better than the median (a collapsed policy would beat a worse one).
    assert not est.fallback_
    sft = {k: v.clone() for k, v in est.model_.state_dict().items()}
    # A learning rate this high wrecks the policy: the check must refuse the RL weights.
    est.set_params(rl_steps=6, rl_config={"group_size": 4, "prompts_per_step": 8, "learning_rate": 1.0})
    est.reinforce(X, y)
    res = est.rl_result_
    assert res.steps == 6 and set(res.val_before) == set(res.val_after) == {"error", "crps"}
    assert not res.kept
    assert res.val_after["error"] > res.val_before["error"] or res.val_after["crps"] > res.val_before["crps"]
    assert all(torch.equal(v, sft[k]) for k, v in est.model_.state_dict().items())
    # a gentle stage is kept only when both numbers improve (no significance test by default)
    est.set_params(rl_config={"group_size": 4, "prompts_per_step": 8, "learning_rate": 1e-3}).reinforce(X, y)
    res = est.rl_result_
    assert "p_value" not in res.checks[-1]
    assert res.kept == (res.val_after["error"] < res.val_before["error"]
                        and res.val_after["crps"] <= res.val_before["crps"])
    # with keep_alpha the signed-rank test decides as well
    est.set_params(rl_config={"group_size": 4, "prompts_per_step": 8, "learning_rate": 1e-3,
                              "keep_alpha": 0.1}).reinforce(X, y)
    res = est.rl_result_
    assert res.kept == (res.val_after["error"] < res.val_before["error"]
                        and res.val_after["crps"] <= res.val_before["crps"]
                        and res.checks[-1].get("p_value", 1.0) <= 0.1)


def test_reinforce_argument_errors():
    from sklearn.exceptions import NotFittedError

    X, y = [f"n {i}" for i in range(30)], np.arange(30.0)
    with pytest.raises(NotFittedError):
        LMRegressor(rl_steps=1).reinforce(X, y)
    est = LMRegressor(max_epochs=1, **TINY).fit(X, y)
    with pytest.raises(ValueError, match="rl_steps > 0"):
        est.reinforce(X, y)
    for bad in (0, "5", True, float("nan")):   # "5" was a TypeError from time.monotonic() + "5", True 1 s
        with pytest.raises(ValueError, match="max_time must be a positive number of seconds or None"):
            est.set_params(rl_steps=1).reinforce(X, y, max_time=bad)
        with pytest.raises(ValueError, match="max_time must be a positive number of seconds or None"):
            est.calibrate(X, y, max_time=bad)
    with pytest.raises(ValueError, match="prompt_rows"):
        est.set_params(rl_config={"prompt_rows": "test"}).reinforce(X, y)
    with pytest.raises(ValueError, match="validation rows"):
        LMRegressor(max_epochs=1, validation_fraction=0.0, rl_steps=1, rl_config={"prompt_rows": "holdout"},
                    **TINY).fit(X, y)


@pytest.mark.parametrize("where", ["train", "holdout", "both"])
def test_rl_prompt_rows(monkeypatch, where):
    """'holdout' draws RL prompts from half of the validation rows and checks on the other half."""
    import lmreg.estimator as E
    import lmreg.training.rl_stage as S

    seen = {}
    real_rl, real_check = S.train_rl, E.LMRegressor._rl_check

    def train_rl(model, enc, y, codec, grammar, rows, *args, **kw):
        seen["rows"] = rows
        return real_rl(model, enc, y, codec, grammar, rows, *args, **kw)

    def check(self, enc, y, rows, weights=None):
        seen["check"] = rows
        return real_check(self, enc, y, rows, weights)

    monkeypatch.setattr(S, "train_rl", train_rl)
    monkeypatch.setattr(E.LMRegressor, "_rl_check", check)
    X, y = [f"n {i % 6}" for i in range(80)], (np.arange(80) % 6).astype(float)
    est = LMRegressor(max_epochs=1, validation_fraction=0.25, rl_steps=1,
                      rl_config={"prompt_rows": where, "group_size": 4, "prompts_per_step": 4}, **TINY).fit(X, y)
    train_rows, val_rows = est._split(80)
    rows, check = set(seen["rows"].tolist()), set(seen["check"].tolist())
    assert not rows & check and check <= set(val_rows.tolist())
    held = rows & set(val_rows.tolist())
    assert (rows >= set(train_rows.tolist())) == (where != "holdout")
    assert len(held) == (0 if where == "train" else 10) and len(check) == (20 if where == "train" else 10)


def test_rl_checkpoints_keep_the_best_validated_weights():
    X = [f"n {i % 6}" for i in range(60)]
    y = (np.arange(60) % 6).astype(float)
    est = LMRegressor(max_epochs=2, **TINY).fit(X, y)
    est.set_params(rl_steps=6, rl_config={"group_size": 4, "prompts_per_step": 8, "learning_rate": 3e-3,
                                          "checks": 3, "keep_alpha": 0.5}).reinforce(X, y)
    res, base = est.rl_result_, est.rl_result_.val_before
    assert [c["step"] for c in res.checks] == [2, 4, 6]
    eligible = [c for c in res.checks
                if c["error"] < base["error"] and c["crps"] <= base["crps"] and c["p_value"] <= 0.5]
    assert res.kept == bool(eligible)
    best = min(eligible, key=lambda c: c["error"]) if eligible else {"step": 0, **base}
    assert res.best_step == best["step"]
    # the weights in place are the ones that scored `best` (the check's sampling seed is fixed)
    _, val_rows = est._split(len(y))
    errors, crps, _ = est._rl_check(est._encode(X), y, val_rows)
    assert (errors.mean(), crps) == (best["error"], best["crps"])


@pytest.mark.parametrize("guard", [True, False])
def test_crps_guard_decides_on_a_lower_error_with_a_higher_crps(monkeypatch, guard):
    from lmreg.training import rl_stage
    from lmreg.training.rl import RLResult

    model = torch.nn.Linear(1, 1)
    before = model.weight.detach().clone()
    # the RL check: every row's error down (significant), CRPS up
    scores = iter([(np.full(40, 1.0), 1.0, "sft samples"), (np.full(40, 0.8), 1.2, "rl samples")])

    def fake_train(model, *args, deadline, on_check, **kw):
        with torch.no_grad():
            model.weight.fill_(7.0)
        return RLResult(steps=5)

    monkeypatch.setattr(rl_stage, "train_rl", fake_train)
    result, samples = rl_stage.run_stage(model, (), lambda: next(scores), None, guard_crps=guard)
    assert result.kept is (not guard) and samples == ("sft samples" if guard else "rl samples")
    assert torch.equal(model.weight, before) is guard


def _run_stage_on(monkeypatch, scores, **kw):
    """``run_stage`` with a stand-in RL run: ``scores`` are (errors, crps, samples) for the SFT
    weights, then one per checkpoint (all but the last at intermediate steps)."""
    from lmreg.training import rl_stage
    from lmreg.training.rl import RLResult

    scores = iter(scores)
    n_checks = kw.pop("n_checks")

    def fake_train(model, *args, deadline, on_check, **train_kw):
        for step in range(1, n_checks):
            with torch.no_grad():
                model.weight.fill_(float(step))   # each checkpoint has its own weights
            on_check(model, step)
        with torch.no_grad():
            model.weight.fill_(float(n_checks))
        return RLResult(steps=n_checks)

    model = torch.nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    monkeypatch.setattr(rl_stage, "train_rl", fake_train)
    result, samples = rl_stage.run_stage(model, (), lambda: next(scores), None, **kw)
    return result, samples, float(model.weight.detach())


@pytest.mark.parametrize("alpha, test", [(0.1, "signed_rank"), (0.1, "permutation"), (None, "signed_rank")])
def test_keep_rule_refuses_an_improvement_the_rows_scatter_explains(monkeypatch, alpha, test):
    """A lower mean error from a few lucky rows is refused at keep_alpha=0.1 (kept without
    the test); a lower error on most rows is kept either way."""
    from lmreg.training import rl_stage

    rng = np.random.default_rng(0)
    before = rng.exponential(size=60)
    noisy = before + rng.normal(0.0, 0.5, 60)
    noisy -= noisy.mean() - before.mean() + 0.01          # 0.01 lower on average, by chance
    better = 0.8 * before
    for after, significant in ((noisy, False), (better, True)):
        result, samples, weight = _run_stage_on(monkeypatch, [(before, 1.0, "sft"), (after, 1.0, "rl")],
                                                n_checks=1, keep_alpha=alpha, keep_test=test)
        assert result.kept is (significant or alpha is None), (significant, alpha, result.checks)
        assert samples == ("rl" if result.kept else "sft") and weight == (1.0 if result.kept else 0.0)
        assert ("p_value" in result.checks[0]) is (alpha is not None)
    assert rl_stage.paired_p_value(before, noisy) > 0.1 and rl_stage.paired_p_value(before, better) < 1e-3
    for test in rl_stage.KEEP_TESTS:
        assert rl_stage.paired_p_value(before, better, test=test) < 1e-3
        assert rl_stage.paired_p_value(before, before + 0.1, test=test) == 1.0   # every row worse


def test_signed_rank_test_is_not_led_by_one_large_error():
    """Most rows a little better and one row much worse: the mean barely falls (the sign-flip
    test of the mean sees nothing), while the signed-rank test sees the rows that improved."""
    from lmreg.training import rl_stage

    rng = np.random.default_rng(2)
    before = rng.exponential(size=200)
    after = 0.95 * before
    after[0] += 0.95 * (before - after)[1:].sum()           # one row gives back 95% of the gain
    assert after.mean() < before.mean()
    assert rl_stage.paired_p_value(before, after) > 0.1
    assert rl_stage.paired_p_value(before, after, test="signed_rank") < 1e-3
    with pytest.raises(ValueError, match="keep_test"):
        rl_stage.paired_p_value(before, after, test="t")


@pytest.mark.parametrize("test", ["signed_rank", "permutation"])
def test_keep_rule_with_several_checkpoints(monkeypatch, test):
    """The earlier significant checkpoint stays when a later one is lower but not significant;
    a rising error is not tested and not kept; one judging row cannot reach p <= 0.1."""
    rng = np.random.default_rng(1)
    before = rng.exponential(size=80)
    good = 0.9 * before                                     # mean -10%, every row
    lucky = before.copy()
    lucky[0] -= 0.5 * before.sum()                          # mean -50%, one row
    result, samples, weight = _run_stage_on(
        monkeypatch, [(before, 1.0, "sft"), (good, 1.0, "c1"), (lucky, 1.0, "c2"), (before + 0.1, 1.0, "c3")],
        n_checks=3, keep_alpha=0.1, keep_test=test)
    assert [c["p_value"] <= 0.1 for c in result.checks[:2]] == [True, False]
    assert "p_value" not in result.checks[2]                # error rose: nothing to test
    assert result.kept and result.best_step == 1 and samples == "c1" and weight == 1.0
    # without the test the lucky checkpoint, lowest on average, wins
    result, samples, _ = _run_stage_on(
        monkeypatch, [(before, 1.0, "sft"), (good, 1.0, "c1"), (lucky, 1.0, "c2"), (before + 0.1, 1.0, "c3")],
        n_checks=3, keep_alpha=None)
    assert result.best_step == 2 and samples == "c2"
    one, _, _ = _run_stage_on(monkeypatch, [(np.array([2.0]), 1.0, "sft"), (np.array([1.0]), 1.0, "rl")],
                              n_checks=1, keep_alpha=0.1, keep_test=test)
    assert not one.kept and one.checks[0]["p_value"] == 0.5


def test_keep_alpha_and_test_errors_are_clear():
    X, y = [f"n {i}" for i in range(30)], np.arange(30.0)
    for bad in (1.5, 0.0, "0.1"):
        with pytest.raises(ValueError, match="keep_alpha"):   # before any training
            LMRegressor(max_epochs=1, rl_steps=1, rl_config={"keep_alpha": bad}, **TINY).fit(X, y)
    with pytest.raises(ValueError, match="keep_test"):
        LMRegressor(max_epochs=1, rl_steps=1, rl_config={"keep_test": "t"}, **TINY).fit(X, y)


def test_sft_term_is_the_cross_entropy_of_the_true_numbers():
    """pg_coef=0, kl_coef=0: the RL step's loss is SFT's cross-entropy on the prompts' targets."""
    from lmreg.batching import collate

    X, y = ["n 1 a", "n 2 b"] * 10, np.array([3.0, 5.0] * 10)
    est = LMRegressor(max_epochs=1, validation_fraction=0.0, **TINY).fit(X, y)
    enc = est._encode(X)
    with torch.no_grad():
        lp = _sequence_logprobs(est.model_.eval(), est.grammar_, collate(enc, np.arange(2), est.tokenizer_.pad_id),
                                torch.as_tensor(est.codec_.encode(y[:2])))
    expected = -lp.sum(1).mean().item()  # 2 prompts per step, one of each kind
    res = train_rl(est.model_, enc, y, est.codec_, est.grammar_, np.arange(2), est.tokenizer_.pad_id,
                   RLConfig(group_size=4, prompts_per_step=2, pg_coef=0.0, kl_coef=0.0, sft_coef=1.0),
                   max_steps=1)
    assert res.history[0]["loss"] == pytest.approx(expected, rel=1e-5)
    res = train_rl(est.model_, enc, y, est.codec_, est.grammar_, np.arange(2), est.tokenizer_.pad_id,
                   RLConfig(group_size=4, prompts_per_step=2, sft_coef=0.5, learning_rate=1e-3), max_steps=2)
    assert res.steps == 2 and all(np.isfinite(h["loss"]) for h in res.history)


def test_remax_defaults_to_a_pointwise_reward():
    """ReMax's greedy baseline needs a pointwise reward: its default is 'abs', not GRPO's crps_loo."""
    assert stage_reward(RLConfig(variant="remax")) == "abs"
    assert stage_reward(LMRegressor(rl_steps=1, rl_variant="remax")._rl_config()) == "abs"
    with pytest.raises(ValueError, match="group_size >= 3"):
        RLConfig(variant="grpo", reward="crps_loo", group_size=2)
    assert RLConfig(variant="grpo", reward="abs", group_size=2).group_size == 2


def _tiny_rl_problem():
    from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    from lmreg.batching import Encoded
    from lmreg.codecs import make_codec
    from lmreg.decoding import NumberGrammar

    torch.manual_seed(0)
    cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10)
    y = np.array([2.0, 8.0, 5.0, 3.0])
    codec = make_codec("digits", n_digits=2).fit(y)
    ids = [np.array([2, 5 + i, 3]) for i in range(4)]
    enc = Encoded(ids, [np.zeros(3, np.float32)] * 4, [np.zeros(3, np.int8)] * 4)
    return model, enc, y, codec, NumberGrammar(codec.grammar())


@pytest.mark.parametrize("deadline", [None, 600.0])
def test_checkpoints_fall_at_step_shares_also_under_a_deadline(deadline):
    """A far deadline must not swallow the checks: a share of the steps used is a check due."""
    import time

    model, enc, y, codec, grammar = _tiny_rl_problem()
    steps = []
    train_rl(model, enc, y, codec, grammar, np.arange(4), 0,
             RLConfig(variant="median", prompts_per_step=2, checks=3), max_steps=6,
             deadline=None if deadline is None else time.monotonic() + deadline,
             on_check=lambda m, step: steps.append(step))
    assert steps == [2, 4]


def test_the_closing_check_is_not_repeated(monkeypatch):
    """When the last intermediate checkpoint falls on the last step, run_stage scores it once."""
    from lmreg.training import rl_stage

    model, enc, y, codec, grammar = _tiny_rl_problem()
    calls = []

    def score():
        calls.append(1)
        return np.ones(3), 1.0, None

    result, _ = rl_stage.run_stage(model, (enc, y, codec, grammar, np.arange(4), 0,
                                           RLConfig(variant="median", prompts_per_step=2, checks=3), 2),
                                   score, None)
    assert [c["step"] for c in result.checks] == [1, 2] and len(calls) == 1 + 2


def test_a_non_finite_reward_is_an_error_not_nan_weights():
    model, enc, y, codec, grammar = _tiny_rl_problem()
    nan_reward = lambda pred, target, scale: np.where(pred > 5, np.nan, -np.abs(pred - target))  # noqa: E731
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="reward is not finite"):
        train_rl(model, enc, y, codec, grammar, np.arange(4), 0,
                 RLConfig(variant="dr_grpo", reward=nan_reward, group_size=8, prompts_per_step=4), max_steps=2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("variant", ["grpo", "median", "tree"])
def test_weights_that_diverge_are_an_error_as_in_sft(variant):
    """A learning rate that breaks the policy: without validation rows to revert it, the NaN
    weights were kept and every prediction was one number outside the targets."""
    model, enc, y, codec, grammar = _tiny_rl_problem()
    # A NaN gradient stands in for a learning rate so large that the weights overflow:
    # whether a given rate overflows float32 depends on the CPU's kernels.
    next(p for p in model.parameters() if p.requires_grad).register_hook(lambda g: g * float("nan"))
    config = RLConfig(variant=variant, prompts_per_step=4, updates_per_rollout=3)
    with pytest.raises(FloatingPointError, match="lower rl_config's learning_rate"):
        train_rl(model, enc, y, codec, grammar, np.arange(4), 0, config, max_steps=5)


def test_rl_data_errors_come_before_sft(monkeypatch):
    """A 2-D y or too few validation rows for held-out prompts fail before any SFT step."""
    import lmreg.estimator as E

    def no_sft(*args, **kw):
        raise AssertionError("SFT ran before the RL settings were checked")

    monkeypatch.setattr(E, "train_sft", no_sft)
    X = [f"n {i}" for i in range(30)]
    with pytest.raises(ValueError, match="one target per row .* set rl_steps=0 for several targets"):
        LMRegressor(rl_steps=1, **TINY).fit(X, np.c_[np.arange(30.0), np.arange(30.0)])
    with pytest.raises(ValueError, match=r"y has shape \(30, 1\); pass it 1-D \(y.ravel\(\)\)"):
        LMRegressor(rl_steps=1, **TINY).fit(X, np.arange(30.0)[:, None])
    with pytest.raises(ValueError, match=r"validation rows, but there are 3: 4 are needed: raise "
                                         r"validation_fraction to 0.12 or more"):
        LMRegressor(rl_steps=1, validation_fraction=0.1, rl_config={"prompt_rows": "holdout"}, **TINY).fit(
            X, np.arange(30.0))
    with pytest.raises(ValueError, match="there are 15 rows and fewer than 20 hold none out"):
        LMRegressor(rl_steps=1, rl_config={"prompt_rows": "holdout"}, **TINY).fit(X[:15], np.arange(15.0))
    # a reward the stage could not call: its bound keywords, or a user callable's arity
    for reward, match in [(functools.partial(R.neg_abs_error, scale=0.0), "scale must be a positive finite"),
                          (functools.partial(R.gaussian_kernel, bandwith=0.5), "does not take"),
                          (lambda pred, target: -np.abs(pred - target), r"reward\(pred, target, scale\)")]:
        with pytest.raises(ValueError, match=match):
            LMRegressor(rl_steps=1, rl_reward=reward, **TINY).fit(X, np.arange(30.0))
    est = LMRegressor(rl_steps=1, validation_fraction=0.12, rl_config={"prompt_rows": "holdout"}, **TINY)
    est.seed_ = 0
    assert len(est._split(30)[1]) == 4   # the fraction the message names is enough
    # reinforce keeps fit's rows and split: the advice for fit ("pass it 1-D", "raise
    # validation_fraction") led into another error, or changed nothing
    monkeypatch.undo()
    column = np.arange(30.0)[:, None]
    est = LMRegressor(max_epochs=1, **TINY).fit(X, column)
    with pytest.raises(ValueError, match=r"shape \(30, 1\); refit the model on y.ravel\(\) \(reinforce takes fit's y"):
        est.set_params(rl_steps=1).reinforce(X, column)
    est = LMRegressor(max_epochs=1, **TINY).fit(X, np.arange(30.0))
    with pytest.raises(ValueError, match=r"4 are needed: refit with validation_fraction at 0.12 or more "
                                         r"\(reinforce keeps fit's split\)"):
        est.set_params(rl_steps=1, rl_config={"prompt_rows": "holdout"}).reinforce(X, np.arange(30.0))


def test_calibrate_after_held_out_prompts_uses_the_rows_fit_used():
    X, y = [f"n {i % 6}" for i in range(120)], (np.arange(120) % 6).astype(float)
    est = LMRegressor(max_epochs=5, validation_fraction=0.25, rl_steps=1, rl_config={"prompt_rows": "holdout"},
                      **TINY).fit(X, y)
    assert not est.fallback_   # (a fallback has no calibrator)
    fitted = est.calibrator_.y_.copy()
    assert est.rl_result_.prompt_rows == "holdout" and len(fitted) == 15   # half of 30 validation rows
    np.testing.assert_array_equal(est.calibrate(X, y).calibrator_.y_, fitted)


def test_rl_weights_that_beat_the_median_lift_the_fallback():
    X = [f"n {i % 7}" for i in range(140)]
    y = np.array([100.0 if i % 7 >= 5 else 0.0 for i in range(140)])
    est = LMRegressor(max_epochs=1, learning_rate=1e-6, **TINY).fit(X, y)
    assert est.fallback_                                   # the premise: SFT learnt nothing
    rl = dict(rl_steps=60, rl_config={"learning_rate": 3e-3})
    est.set_params(**rl).reinforce(X, y)
    assert est.rl_result_.kept and not est.fallback_       # was: still the median, RL's weights unused
    np.testing.assert_allclose(est.predict(X[:7]), y[:7], atol=2.0)
    in_fit = LMRegressor(max_epochs=1, learning_rate=1e-6, **rl, **TINY).fit(X, y)
    assert in_fit.rl_result_.kept and not in_fit.fallback_


def test_a_stage_with_no_time_left_does_not_score_its_start():
    """Scoring the starting weights (n_samples per judging row) ran past a spent budget."""
    import time

    from lmreg.training.rl_stage import run_stage

    scored = []
    model = torch.nn.Linear(1, 1)
    result, samples = run_stage(model, (), lambda: scored.append(1), deadline=time.monotonic() - 1.0)
    assert scored == [] and samples is None and result.steps == 0 and not result.kept


def _batched_check(monkeypatch, seconds):
    """The RL check made to cost ``seconds`` per decoding batch (on a CPU 16 rows at n_samples=16, 4 at 64)."""
    import math
    import time

    from lmreg.decoding import rows_per_batch
    from lmreg.stages import HeldOutStages

    check = HeldOutStages._rl_check

    def slow(self, enc, y, rows, weights=None):
        time.sleep(seconds * math.ceil(len(rows) / rows_per_batch(self.n_samples, device=self.device_)))
        return check(self, enc, y, rows, weights)

    monkeypatch.setattr(HeldOutStages, "_rl_check", slow)


def test_a_stage_whose_checks_would_outlast_the_budget_is_skipped(monkeypatch):
    """A slow check (a large n_samples, a pretrained trunk on a CPU) had scored the starting
    weights in full past the deadline, for a stage that then took no step."""
    _batched_check(monkeypatch, 0.25)
    X, y = [f"n {i % 7}" for i in range(200)], (np.arange(200) % 7).astype(float)
    LMRegressor(max_epochs=1, **TINY).fit(X[:20], y[:20])   # transformers' lazy imports: not the budget's
    est = LMRegressor(**{**TINY, "max_time": 4}, rl_steps=100, validation_fraction=0.5, n_samples=64)
    with pytest.warns(UserWarning, match=r"two RL checks .* n_samples=64 on 100 validation rows, about [0-9.]+ s "
                                         r"each\) would not end before the deadline: the RL stage was skipped"):
        est.fit(X, y)   # 100 judging rows: 25 batches of 4, 6.25 s a check (its probe: 16 rows, 1 s)
    assert [r.steps for r in est.member_rl_results_] == [0] * len(est.members_)
    assert est.fit_seconds_ < 4 + 1.0


def test_the_check_is_timed_on_a_whole_decoding_batch(monkeypatch):
    # timed on 16 rows of a 64-row batch, a check of 200 rows had read as 12.5 batches, not 4
    X, y = [f"n {i % 7}" for i in range(400)], (np.arange(400) % 7).astype(float)
    est = LMRegressor(max_epochs=1, validation_fraction=0.5, **TINY).fit(X, y).set_params(n_samples=4)
    _batched_check(monkeypatch, 0.2)   # 64 rows a batch at 4 samples each
    enc, check = est._encode(X), np.arange(200)
    with est._torch_scope():
        seconds = est._check_seconds(enc, y, check, deadline=1e18)
    assert 0.6 < seconds < 0.9   # 200 / 64 batches of 0.2 s (the check itself: 4 batches, 0.8 s)
    assert est._check_seconds(enc, y, check[:64], deadline=1e18) is None   # one batch: no probe


def test_a_stage_that_took_no_step_warns(monkeypatch, capsys):
    """A deadline SFT used up leaves RL no step: a warning, and "no step" rather than "reverted"."""
    import lmreg.stages
    from lmreg.training.rl_config import RLResult

    monkeypatch.setattr(lmreg.stages, "run_stage", lambda *a, **k: (RLResult(kept=False), None))
    X, y = [f"n {i % 6}" for i in range(60)], (np.arange(60) % 6).astype(float)
    est = LMRegressor(max_epochs=1, rl_steps=5, n_members=2, verbose=True, **TINY)
    with pytest.warns(UserWarning, match=r"rl_steps=5 but the RL stage took no step before its deadline"):
        est.fit(X, y)
    assert "RL member 1: 0 steps, no step in the time left" in capsys.readouterr().out
    monkeypatch.setattr(lmreg.stages, "run_stage", lambda *a, **k: (RLResult(steps=3, kept=False), None))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # steps taken: no warning
        est.set_params(verbose=False).fit(X, y)


def test_a_stage_no_rows_judge_keeps_its_last_step():
    X, y = [f"n {i % 6}" for i in range(30)], (np.arange(30) % 6).astype(float)
    # keep_alpha, guard_crps and checks had nothing to act on, without a word
    with pytest.warns(UserWarning, match="no validation rows judge the RL stage, so its last weights stay"):
        est = LMRegressor(max_epochs=1, rl_steps=2, validation_fraction=0.0, **TINY).fit(X, y)
    r = est.rl_result_
    assert (r.steps, r.kept, r.best_step, r.checks) == (2, True, 2, [])   # best_step was 0
    with pytest.warns(UserWarning, match="took no step before its deadline"), \
            pytest.warns(UserWarning, match="no validation rows judge the RL stage"):
        est.reinforce(X, y, max_time=1e-9)
    assert (est.rl_result_.steps, est.rl_result_.kept) == (0, False)   # kept was True with no step


def test_train_rl_without_a_step_is_not_kept_and_its_reward_unit_holds_any_magnitude(monkeypatch):
    """A direct train_rl call that took no step reported kept=True; the reward unit was the
    std of the raw targets: infinite past ~1e154 (RL failed after SFT on "scale") and 0 below
    ~1e-154 (a unit of 1 left every reward ~0: no gradient)."""
    import time

    from lmreg.training import rl

    X, y = [f"n {i % 6}" for i in range(30)], (np.arange(30) % 6).astype(float)
    est = LMRegressor(max_epochs=1, **TINY).fit(X, y)
    args = (est.model_, est._encode(X), y, est.codec_, est.grammar_, np.arange(27), est.tokenizer_.pad_id,
            RLConfig())
    assert not rl.train_rl(*args, 3, deadline=time.monotonic() - 1).kept
    seen, real = [], rl.reward_function
    monkeypatch.setattr(rl, "reward_function", lambda reward, scale: seen.append(scale) or real(reward, scale))
    for factor in (1.0, 1e160):   # (targets far off the model's scale: a unit, not a good fit, is checked)
        rl.train_rl(*args[:2], y * factor, *args[3:], 1)
    assert seen[0] == pytest.approx(np.std(y[:27])) and seen[1] == pytest.approx(seen[0] * 1e160, rel=1e-12)
    w = np.arange(1.0, 28.0)
    for factor in (1e160, 1e-170):   # weighted too
        assert rl._reward_scale(y[:27] * factor, w) == pytest.approx(rl._reward_scale(y[:27], w) * factor, rel=1e-12)
