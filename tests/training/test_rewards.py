import functools

import numpy as np
import pytest

from lmreg.metrics import crps_per_row
from lmreg.training import rewards as R


def test_pointwise_rewards_on_hand_computed_cases():
    p = np.array([1.0, 3.0, 6.0])
    np.testing.assert_allclose(R.neg_abs_error(p, 3.0, scale=2.0), [-1.0, 0.0, -1.5])
    np.testing.assert_allclose(R.neg_squared_error(p, 3.0, scale=2.0), [-1.0, 0.0, -2.25])
    np.testing.assert_allclose(R.neg_relative_error(p, 2.0), [-0.5, -0.5, -2.0])
    # below 0 the log continues as a line: -5 is 5 below 0, never as good as 0
    np.testing.assert_allclose(R.neg_log_error(np.array([0.0, -5.0]), np.e - 1), [-1.0, -6.0])
    np.testing.assert_allclose(R.gaussian_kernel(np.array([3.0, 3.5]), 3.0, scale=2.0, bandwidth=0.25),
                               [1.0, np.exp(-0.5)])


def test_rank_reward():
    out = R.rank(np.array([[10.0, 0.0, 4.0, 4.0]]), np.array([5.0]))
    np.testing.assert_allclose(out, [[1 / 6, 1 / 6, 5 / 6, 5 / 6]])  # errors 5, 5, 1, 1: tied ranks
    assert R.rank(np.array([[1.0]]), np.array([0.0])).tolist() == [[1.0]]


def test_crps_loo_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6))
    y = rng.normal(size=4)
    out = R.crps_loo(x, y, scale=2.0)
    full = crps_per_row(y, x)
    for i in range(6):
        loo = crps_per_row(y, np.delete(x, i, axis=1))
        np.testing.assert_allclose(out[:, i], (loo - full) / 2.0, atol=1e-12)
    with pytest.raises(ValueError, match="at least 3"):
        R.crps_loo(x[:, :2], y)


def test_group_rewards_leave_a_non_finite_sample_out_of_its_group():
    # one NaN sample had made its whole group NaN; it is scored as missing, the others
    # among themselves, as the TRL wrapper scores an unparsable completion's group
    x = np.array([[10.0, np.nan, 0.0, 4.0, 4.0], [1.0, 2.0, 3.0, np.inf, 5.0]])
    out = R.rank(x, np.array([5.0, 1.0]))
    np.testing.assert_allclose(out[0], [1 / 6, np.nan, 1 / 6, 5 / 6, 5 / 6])
    np.testing.assert_allclose(out[1], np.append(R.rank(x[1:, [0, 1, 2, 4]], [1.0])[0], np.nan)[[0, 1, 2, 4, 3]])
    c = R.crps_loo(x, np.array([5.0, np.nan]), scale=2.0)
    np.testing.assert_allclose(c[0, [0, 2, 3, 4]], R.crps_loo(x[:1, [0, 2, 3, 4]], [5.0], scale=2.0)[0])
    assert np.isnan(c[0, 1]) and np.isnan(c[1]).all()  # a NaN target: the group has no reward
    # fewer than three finite samples: no spread to judge, as inside TRL
    assert R.crps_loo(np.array([[1.0, np.nan, np.nan]]), [0.0])[0, 0] == 0.0


def test_trl_signature():
    f = R.trl_reward("squared", scale=1.0)
    # "x" does not parse: below the worst parsable reward (-4) by max(range 3, |-4|, 1) = 4
    assert f(prompts=["a", "b", "c"], completions=["1", "x", "2"], target=[3.0, 0.0, 1.0]) == [-4.0, -8.0, -1.0]
    conversational = [[{"role": "assistant", "content": "2.5"}]]
    assert R.trl_reward("abs")(prompts=["a"], completions=conversational, target=[2.0]) == [-0.5]
    # a single parsable completion: the margin is max(0, |0|, 1) = 1
    assert R.trl_reward("gaussian")(prompts=["a", "b"], completions=["?", "1"], target=[1.0, 1.0]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="group rewards"):
        R.trl_reward("crps_loo")


def test_trl_reward_never_returns_a_non_finite_number():
    """NaN or inf rewards would make TRL's group advantages NaN or overflow them."""
    f = R.trl_reward("abs")
    # "nan" and "inf" parse as floats but are not numbers a policy should be paid for
    out = f(prompts=list("abcd"), completions=["nan", "inf", "1e999", "3"], target=[1.0, 1.0, 1.0, 1.0])
    assert out == [-4.0, -4.0, -4.0, -2.0]  # -2 - max(0, |-2|, 1)
    # nothing parses: TRL's "not applicable" (None), not a penalty relative to nothing
    assert f(prompts=["a", "b"], completions=["?", ""], target=[1.0, 2.0]) == [None, None]
    # a missing or non-finite target makes the row unscorable whatever the completion
    assert f(prompts=["a", "b", "c"], completions=["1", "2", "?"], target=[None, float("nan"), 1.0]) == [
        None, None, None]
    assert R.trl_reward("abs", invalid_reward=-7)(prompts=["a", "b"], completions=["?", "1"],
                                                  target=[1.0, 1.0]) == [-7.0, 0.0]
    with pytest.raises(ValueError, match="invalid_reward must be a finite number"):
        R.trl_reward("abs", invalid_reward=float("-inf"))


def test_trl_reward_target_column():
    f = R.trl_reward("abs", target_column="price")
    assert f(prompts=["a"], completions=["3"], price=[5.0], completion_ids=[[1]]) == [-2.0]
    with pytest.raises(ValueError, match="no 'price' column reached the reward; got \\['completion_ids', 'target'\\]"):
        f(prompts=["a"], completions=["3"], target=[5.0], completion_ids=[[1]])


def test_trl_group_rewards_score_each_group_of_generations():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    y = np.array([0.5, -1.0, 2.0])
    prompts = [p for p in "abc" for _ in range(4)]
    completions = [str(v) for v in x.ravel()]
    f = R.trl_reward("crps_loo", num_generations=4, scale=2.0)
    out = f(prompts=prompts, completions=completions, target=np.repeat(y, 4).tolist())
    np.testing.assert_allclose(out, R.crps_loo(x, y, scale=2.0).ravel(), rtol=1e-12)
    # an unparsable completion: the group is scored over its other three, it gets the penalty
    completions[1] = "?"
    out = f(prompts=prompts, completions=completions, target=np.repeat(y, 4).tolist())
    np.testing.assert_allclose(np.delete(out[:4], 1), R.crps_loo(np.delete(x[:1], 1, axis=1), y[:1], scale=2.0)[0])
    valid = [out[0], out[2], out[3]]   # below the other completions of its own prompt
    assert out[1] == pytest.approx(min(valid) - max(max(valid) - min(valid), abs(min(valid)), 1.0))
    # two unparsable: two numbers left, no spread to judge -> 0 for them
    completions[2] = "??"
    out = f(prompts=prompts, completions=completions, target=np.repeat(y, 4).tolist())
    assert out[0] == out[3] == 0.0 and out[1] == out[2] == -1.0
    # rank within each group; a missing target makes its whole group unscorable
    g = R.trl_reward("rank", num_generations=2)
    assert g(prompts=["a", "a", "b", "b"], completions=["1", "3", "0", "9"],
             target=[2.5, 2.5, None, None]) == [0.0, 1.0, None, None]


def test_trl_group_rewards_refuse_split_groups():
    f = R.trl_reward("rank", num_generations=2)
    with pytest.raises(ValueError, match="per_device_train_batch_size a multiple of num_generations"):
        f(prompts=["a", "b", "b", "c"], completions=["1"] * 4, target=[1.0] * 4)   # TRL split a group
    with pytest.raises(ValueError, match="completions 2-2 are not one group"):
        f(prompts=["a", "a", "b"], completions=["1"] * 3, target=[1.0] * 3)
    with pytest.raises(ValueError, match="completions 0-1 are not one group"):
        f(prompts=["a", "a"], completions=["1", "2"], target=[1.0, 2.0])            # two targets
    with pytest.raises(ValueError, match="pass num_generations"):
        R.trl_reward("rank")
    with pytest.raises(ValueError, match="for the group rewards"):
        R.trl_reward("abs", num_generations=4)
    with pytest.raises(ValueError, match="integer >= 2"):
        R.trl_reward("crps_loo", num_generations=1)


def test_trl_reward_parse_hook():
    import re

    def last_number(text):
        found = re.findall(r"-?\d+(?:\.\d+)?", text)
        if not found:
            raise ValueError(text)
        return float(found[-1])

    f = R.trl_reward("abs", parse=last_number)
    assert f(prompts=["a", "b"], completions=["the answer is 4.5", "no idea"], target=[4.0, 0.0]) == [-0.5, -1.5]
    # the strict default refuses numbers inside text
    assert R.trl_reward("abs")(prompts=["a", "b"], completions=[" 4.5\n", "it is 4.5"],
                               target=[4.0, 4.0]) == [-0.5, -1.5]


def test_every_reward_has_a_decision_rule():
    assert set(R.DECISION_FOR_REWARD) == set(R.REWARDS)


@pytest.mark.parametrize("args, kw, match", [
    (("crps_loo",), {"num_generations": 2}, "num_generations >= 3"),   # every reward would be 0
    (("abs",), {"scale": 0.0}, "scale must be a positive"),           # every reward None
    (("abs",), {"scale": -1.0}, "scale must be a positive"),          # worse predictions paid more
    (("rank",), {"num_generations": 4, "scale": 1.0}, r"rank does not take \['scale'\]"),
    (("abs",), {"bandwidth": 0.5}, r"neg_abs_error does not take \['bandwidth'\]"),
])
def test_trl_reward_checks_its_parameters_when_built(args, kw, match):
    with pytest.raises(ValueError, match=match):
        R.trl_reward(*args, **kw)


def test_is_group_reward_takes_names_and_functions():
    assert R.is_group_reward("rank") and R.is_group_reward(R.crps_loo)
    assert not R.is_group_reward("abs") and not R.is_group_reward(lambda p, t: p)


def test_trl_rewards_stay_within_float32_and_penalise_per_prompt():
    """TRL keeps rewards as float32: one overflowing completion must not zero every advantage."""
    import torch

    f = R.trl_reward("squared")
    completions = ["9" * 20, "50", "3", "bad", "7", "2", "9", "bad"]
    out = f(prompts=["a"] * 4 + ["b"] * 4, completions=completions, target=[3.0] * 4 + [8.0] * 4)
    assert out[0] == -R.REWARD_BOUND and out[3] < out[0]   # the worst reward, the penalty below it
    assert out[4:] == [-1.0, -36.0, -1.0, -36.0 - 36.0]    # prompt b's penalty from prompt b alone
    r = torch.tensor(out, dtype=torch.float32).view(2, 4)
    adv = (r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True)
    assert torch.isfinite(adv).all() and (adv.abs() > 0.1).all()
    # a reward that overflows (not a completion that fails to parse) is the worst, not "not applicable"
    g = R.trl_reward("abs")
    assert g(prompts=["a"] * 3, completions=["1e308", "-1e308", "0"], target=[-1e308] * 3)[0] == -R.REWARD_BOUND
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        R.trl_reward("nope")
    with pytest.raises(ValueError, match="log reward needs targets >= 0"):
        R.trl_reward("log")(prompts=["a"], completions=["-5"], target=[-3.0])


def test_trl_reward_penalises_per_group_is_named_after_its_reward_and_pickles():
    import pickle

    # one prompt in two groups (two targets): each group's penalty comes from that group alone
    f = R.trl_reward("abs")
    out = f(prompts=["a"] * 4, completions=["1", "bad", "100", "bad"], target=[1.0, 1.0, 0.0, 0.0])
    assert out == [0.0, -1.0, -100.0, -200.0]   # was -200.0 for both: one pool for the prompt text
    partial = R.trl_reward(functools.partial(R.gaussian_kernel, bandwidth=0.5))
    assert (f.__name__, partial.__name__, R.trl_reward("crps_loo", num_generations=3).__name__) == (
        "neg_abs_error", "gaussian_kernel", "crps_loo")   # TRL's log keys; a partial was "reward"
    assert R.trl_reward("abs", name="abs_in_dollars").__name__ == "abs_in_dollars"   # two of one function
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        R.trl_reward("abs", name="")
    for reward in (f, partial, R.trl_reward("rank", num_generations=2, parse=int)):
        again = pickle.loads(pickle.dumps(reward))
        kw = dict(prompts=["a", "a"], completions=["3", "x"], target=[2.0, 2.0])
        assert again(**kw) == reward(**kw) and again.__name__ == reward.__name__


def test_the_log_reward_is_refused_for_negative_targets_before_training():
    from lmreg import LMRegressor

    with pytest.raises(ValueError, match="rl_reward='log' needs targets >= 0"):
        LMRegressor(rl_steps=2, rl_reward="log", max_time=None, max_epochs=1).fit(
            [f"n {i}" for i in range(20)], np.arange(20.0) - 5)
    # zero targets under 'relative' gave rewards of about -1e8 that drove the stage
    X, y = [f"n {i % 10}" for i in range(40)], np.arange(40.0) % 10
    with pytest.raises(ValueError, match=r"'relative' divides each error by \|y\|, but the RL prompts' y has \d zero"):
        LMRegressor(rl_steps=2, rl_reward="relative", max_time=None, max_epochs=1).fit(X, y)
    floored = functools.partial(R.neg_relative_error, eps=1.0)   # a floor in target units: accepted
    est = LMRegressor(rl_steps=2, rl_reward=floored, max_time=None, max_epochs=1, hidden_size=16, num_layers=1,
                      num_heads=2, n_samples=4, random_state=0).fit(X, y)
    assert all(h["reward"] > -20 for h in est.rl_result_.history)


def test_rewards_in_the_targets_own_units_are_refused_with_task_column():
    from lmreg import LMRegressor

    # positive targets, but the stage sees them standardised per task: 'log' was refused as
    # negative, 'relative' divided by the distance to the task's median
    X = [{"task": "ab"[i % 2], "n": i % 7} for i in range(40)]
    y = 2.0 + np.arange(40.0) % 7 + 100.0 * (np.arange(40) % 2)
    for reward in ("log", "relative", functools.partial(R.neg_relative_error, eps=1.0)):
        est = LMRegressor(rl_steps=2, rl_reward=reward, task_column="task", max_time=None, max_epochs=1)
        with pytest.raises(ValueError, match=r"compares numbers in the target's own units, but with task_column"):
            est.fit(X, y)
        assert not hasattr(est, "model_")


def test_trl_reward_takes_a_column_array_or_tensor_of_targets():
    import torch

    f = R.trl_reward("abs")
    want = f(prompts=["a", "b"], completions=["3", "5"], target=[3.0, 4.0])
    for target in (np.array([[3.0], [4.0]]), torch.tensor([[3.0], [4.0]])):   # numpy's was a TypeError
        assert f(prompts=["a", "b"], completions=["3", "5"], target=target) == want


def test_trl_reward_refuses_malformed_targets_clearly():
    """A scalar, a wrong-length or a non-numeric target column is an error naming the column,
    the expected form and what came, not numpy's bare TypeError or ValueError."""
    import torch

    f = R.trl_reward("abs", target_column="price")
    call = lambda target: f(prompts=list("abc"), completions=["1", "2", "3"], price=target)  # noqa: E731
    for scalar in (3.0, np.float64(3.0), np.array(3.0), torch.tensor(3.0), "123", {"a": 1.0}):
        with pytest.raises(TypeError, match=r"'price' must hold one number \(None or NaN when missing\) per "
                                            r"completion, 3 here; got a single"):
            call(scalar)
    with pytest.raises(ValueError, match=r"'price' must hold one number .* per completion, 3 here; got 2\.$"):
        call([1.0, 2.0])
    with pytest.raises(ValueError, match=r"'price' must .* its element 1 is 'n/a'\.$"):
        call([1.0, "n/a", 3.0])
    with pytest.raises(TypeError, match=r"'price' must .* its element 0 is a dict: \{\}\.$"):
        call([{}, 1.0, 2.0])
    with pytest.raises(TypeError, match=r"its element 0 is a ndarray"):
        call(np.ones((3, 2)))
    # what was valid stays valid: lists, arrays, tensors, numeric strings, None / NaN / inf as missing
    for ok in ([1.0, 2.0, 4.0], np.array([1, 2, 4]), torch.tensor([1.0, 2.0, 4.0]), ["1", "2", "4"]):
        assert call(ok) == [0.0, 0.0, -1.0]
    assert call([None, float("nan"), float("inf")]) == [None, None, None]


@pytest.mark.parametrize("value", [0, 0.0, -0.25, float("inf"), float("nan"), None, "0.25"])
def test_positive_reward_parameters_are_checked(value):
    """A zero bandwidth made every Gaussian reward NaN (silently penalised) or 0: refused,
    where the reward is built and where it is called, as the other dividing parameters."""
    msg = r"bandwidth must be a positive finite number, got "
    with pytest.raises(ValueError, match=msg):
        R.trl_reward("gaussian", bandwidth=value)
    with pytest.raises(ValueError, match=msg):
        R.trl_reward(functools.partial(R.gaussian_kernel, bandwidth=value))
    with pytest.raises(ValueError, match=msg):
        R.gaussian_kernel(np.array([0.0, 1.0]), 0.0, bandwidth=value)
    with pytest.raises(ValueError, match="eps must be a positive finite number"):
        R.trl_reward("relative", eps=value)
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        R.trl_reward(functools.partial(R.crps_loo, scale=value), num_generations=3)
    for fn in (R.neg_abs_error, R.neg_squared_error, R.gaussian_kernel):
        with pytest.raises(ValueError, match="scale must be a positive finite number"):
            fn(np.array([0.0, 1.0]), 0.0, scale=value)
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        R.crps_loo(np.zeros((1, 3)), np.zeros(1), scale=value)
    with pytest.raises(ValueError, match="eps must be a positive finite number"):
        R.neg_relative_error(1.0, 0.0, eps=value)


def test_a_partial_of_a_group_reward_is_a_group_reward():
    """functools.partial(crps_loo, scale=2) scores a group, so it must not be run one
    completion at a time (it failed on a 0-d target) nor lose crps_loo's group checks."""
    rank, loo = functools.partial(R.rank), functools.partial(functools.partial(R.crps_loo, scale=2.0))
    assert R.is_group_reward(rank) and R.is_group_reward(loo)
    assert not R.is_group_reward(functools.partial(R.neg_abs_error, scale=2.0))
    g = R.trl_reward(rank, num_generations=3)
    assert g(prompts=["x"] * 3, completions=["1", "5", "2"], target=[1.2] * 3) == [1.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="pass num_generations"):
        R.trl_reward(loo)
    with pytest.raises(ValueError, match="num_generations >= 3"):
        R.trl_reward(loo, num_generations=2)
    x = np.array([[0.0, 1.0, 9.0, 4.0]])
    f = R.trl_reward(loo, num_generations=4)
    np.testing.assert_allclose(f(prompts=["x"] * 4, completions=[str(v) for v in x[0]], target=[0.5] * 4),
                               R.crps_loo(x, np.array([0.5]), scale=2.0)[0], rtol=1e-12)
    # two parsable completions left: no spread to judge, 0 as for crps_loo itself
    assert f(prompts=["x"] * 4, completions=["0", "?", "1", "?"], target=[0.5] * 4) == [0.0, -1.0, 0.0, -1.0]


def test_the_rl_stage_reads_partials_of_lmregs_rewards_as_the_rewards_themselves():
    from lmreg.training.rl import reward_function

    pred, y = np.array([[90.0, 110.0, 150.0]]), np.array([100.0])
    for name, fn in (("crps_loo", R.crps_loo), ("relative", R.neg_relative_error), ("log", R.neg_log_error),
                     ("abs", R.neg_abs_error), ("rank", R.rank)):
        # once: crps_loo's scale dropped, the relative error's eps given the scale, log a TypeError
        np.testing.assert_allclose(reward_function(functools.partial(fn), 20.0)(pred, y),
                                   reward_function(name, 20.0)(pred, y))
    bound = reward_function(functools.partial(R.neg_abs_error, scale=1.0), 20.0)(pred, y)
    np.testing.assert_allclose(bound, [[-10.0, -10.0, -50.0]])     # a scale the partial binds stays
    np.testing.assert_allclose(reward_function(functools.partial(R.neg_relative_error, eps=1e-3), 20.0)(pred, y),
                               [[-0.1, -0.1, -0.5]])


def test_a_user_reward_of_the_wrong_shape_is_named():
    from lmreg.training.rl import reward_function

    pred, y = np.array([[1.0, 2.0, 9.0], [5.0, 5.0, 0.0]]), np.array([1.0, 5.0])
    for bad in (lambda p, t, s: (-np.abs(p - t) / s).T, lambda p, t, s: float(-np.abs(p - t).mean())):
        with pytest.raises(ValueError, match=r"reward returned shape .* for predictions of shape \(2, 3\)"):
            reward_function(bad, 1.0)(pred, y)


@pytest.mark.parametrize("reward, rl, match", [
    (R.neg_log_error, {}, r"rl_reward \(neg_log_error\) needs targets >= 0"),
    (functools.partial(R.crps_loo), {"rl_variant": "grpo", "rl_config": {"group_size": 2}}, "group_size >= 3"),
])
def test_a_reward_function_is_checked_before_training_as_its_name_is(reward, rl, match):
    from lmreg import LMRegressor

    est = LMRegressor(rl_steps=2, rl_reward=reward, max_time=None, max_epochs=1, **rl)
    with pytest.raises(ValueError, match=match):
        est.fit([f"n {i}" for i in range(20)], np.arange(20.0) - 5)
    assert not hasattr(est, "model_")


def test_trl_reward_reads_content_parts_and_checks_scale_and_penalty_types():
    f = R.trl_reward("abs")
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": "1"}]}],
             [{"role": "assistant", "content": "5"}]]
    assert f(prompts=["p", "q"], completions=parts, target=[1.0, 1.0]) == [-0.0, -4.0]
    with pytest.raises(ValueError, match="scale must be one number"):
        R.trl_reward("abs", scale=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="invalid_reward must be a finite number"):
        R.trl_reward("abs", invalid_reward="-5")


def test_model_reward_gives_one_reward_per_completion_or_names_the_mismatch():
    from lmreg import LMRegressor

    rows = [{"prompt": "rate", "completion": "good " * k} for k in range(1, 21)]
    est = LMRegressor(max_time=None, max_epochs=1, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2).fit(rows, list(range(1, 21)))
    reward = R.model_reward(est, make_row=lambda p, c, note: {"prompt": p, "completion": c + note})
    assert len(reward(prompts=["rate"] * 2, completions=["good", "good"], note=["", "!"])) == 2
    assert reward(prompts=[], completions=[], note=[]) == []
    with pytest.raises(ValueError, match=r"2 prompts and 2 completions, 1 values of 'note'"):
        reward(prompts=["rate"] * 2, completions=["good", "good"], note=[""])
    with pytest.raises(ValueError, match="1 prompts and 2 completions;"):
        reward(prompts=["rate"], completions=["good", "good"], note=["", ""])
    from lmreg.training.reward_model import model_reward
    assert R.model_reward is model_reward   # importable from rewards, as before the split
    import pickle

    again = pickle.loads(pickle.dumps(R.model_reward(est)))   # a closure did not pickle
    kw = dict(prompts=["rate"] * 2, completions=["good", "good good"])
    assert again(**kw) == R.model_reward(est)(**kw) and again.__name__ == "lmreg_model_reward"


def test_model_reward_rows_columns_and_checks():
    """The default rows carry the dataset columns the model was fitted on (they were dropped
    silently); one-row DataFrames from make_row, a transform's length, and models the default
    rows cannot feed are checked before TRL copies a wrong reward across a batch."""
    import pandas as pd

    from lmreg import LMRegressor

    tiny = dict(max_time=None, max_epochs=6, random_state=0, hidden_size=32, num_layers=1, num_heads=2,
                validation_fraction=0)
    rows = [{"prompt": "rate", "completion": "good " * (k % 5 + 1), "lang": "ab"[k % 2]} for k in range(40)]
    y = [float(k % 5 + 10 * (k % 2)) for k in range(40)]
    est = LMRegressor(**tiny).fit(rows, y)
    reward = R.model_reward(est)
    lang = np.array(["a", "b"])                        # a 1-D array column, as a list would be
    got = reward(prompts=["rate"] * 2, completions=["good", "good"], lang=lang, other=[1, 2])
    np.testing.assert_allclose(got, est.predict([{"prompt": "rate", "completion": "good", "lang": "a"},
                                                 {"prompt": "rate", "completion": "good", "lang": "b"}]))
    framed = R.model_reward(est, make_row=lambda p, c, lang: pd.DataFrame([{"prompt": p, "completion": c, "lang": lang}]))
    np.testing.assert_allclose(framed(prompts=["rate"] * 2, completions=["good", "good"], lang=["a", "b"]), got)
    with pytest.raises(ValueError, match=r"transform returned shape \(1,\) for 2 completions"):
        R.model_reward(est, transform=lambda p: p[:1])(prompts=["rate"] * 2, completions=["good", "good"])
    on_text = LMRegressor(**tiny).fit([r["completion"] for r in rows], y)
    with pytest.raises(ValueError, match="fitted on rows without field names .* pass make_row="):
        R.model_reward(on_text)
    assert len(R.model_reward(on_text, make_row=lambda p, c: c)(prompts=["rate"], completions=["good"])) == 1
    # TRL passes completion_ids with every call: a make_row that does not name it is not given it
    # (it was a TypeError at the first training step); one with **kw gets every column
    plain = R.model_reward(on_text, make_row=lambda p, c: c)
    assert plain(prompts=["rate"], completions=["good"], completion_ids=[[1, 2]]) == plain(
        prompts=["rate"], completions=["good"])
    seen = []
    R.model_reward(on_text, make_row=lambda p, c, **kw: seen.append(sorted(kw)) or c)(
        prompts=["rate"], completions=["good"], completion_ids=[[1, 2]], lang=["a"])
    assert seen == [["completion_ids", "lang"]]
    flat = LMRegressor(**tiny).fit(rows, np.full(40, 2.0))   # a constant target: the fallback
    with pytest.warns(UserWarning, match=r"fell back to the training median \(fallback_=True\): it gives every"):
        R.model_reward(flat)
    two = LMRegressor(**tiny).fit(rows, np.c_[y, y])
    with pytest.raises(ValueError, match="one target per row; this one was fitted on 2"):
        R.model_reward(two)
    column = LMRegressor(**tiny).fit(rows, np.asarray(y)[:, None])   # a y of shape (n, 1) is one target
    got = R.model_reward(column)(prompts=["rate"] * 2, completions=["good", "good"], lang=["a", "b"])
    assert len(got) == 2 and all(isinstance(v, float) for v in got)


def test_a_parse_that_finds_no_number_marks_the_completion_unparsable():
    """``re.search(...).group()`` raises AttributeError without a match: a penalty, not a crashed run."""
    import re

    f = R.trl_reward("abs", parse=lambda t: re.search(r"-?\d+(\.\d+)?", t).group(), scale=1.0)
    assert f(prompts=["x", "x"], completions=["it is 3", "no idea"], target=[3.0, 3.0]) == [0.0, -1.0]


def test_model_reward_leaves_columns_named_like_make_rows_first_two_arguments_out():
    """A dataset column 'completion' (a reference answer) was passed to make_row(prompt, completion)
    a second time: "got multiple values for argument 'completion'"."""
    from lmreg import LMRegressor

    rows = [{"prompt": "rate", "completion": "good " * (k % 4 + 1)} for k in range(40)]
    est = LMRegressor(max_time=None, max_epochs=1, random_state=0, hidden_size=16, num_layers=1, num_heads=2,
                      n_samples=2).fit(rows, [float(k % 4) for k in range(40)])
    kw = dict(prompts=["rate"], completions=["good"], completion=["reference"], prompt=["p"])
    for make_row in (None, lambda prompt, completion: {"prompt": prompt, "completion": completion},
                     lambda p, c, **rest: {"prompt": p, "completion": c}):
        assert len(R.model_reward(est, make_row=make_row)(**kw)) == 1


@pytest.mark.parametrize("name", ["abs", "squared", "log", "relative"])
def test_the_decision_rule_of_each_pointwise_reward_is_its_best_constant(name):
    """Over draws of a skewed target, the constant prediction with the highest mean reward is
    the rule DECISION_FOR_REWARD names; relative's (no rule of the estimator's) lies below the
    median, at the 1/y-weighted median."""
    y = np.random.default_rng(0).lognormal(0.0, 1.0, 20_000)
    grid = np.linspace(0.05, 6.0, 2_000)
    mean_reward = [R.REWARDS[name](np.full_like(y, g), y).mean() for g in grid]
    best = grid[int(np.argmax(mean_reward))]
    order = np.argsort(y)
    weighted_median = y[order][np.searchsorted(np.cumsum(1 / y[order]), 0.5 * np.sum(1 / y))]
    want = {"median": np.median(y), "mean": y.mean(), None: weighted_median}[R.DECISION_FOR_REWARD[name]]
    assert best == pytest.approx(want, abs=0.01)
    if name == "relative":
        assert best < 0.5 * np.median(y)   # the median scores far worse


def test_rewards_refuse_what_they_would_misread():
    import pandas as pd
    import torch

    # a [B, 1] target broadcast to [B, 1, G]; two targets for one group scored both
    np.testing.assert_array_equal(R.rank(np.array([[1.0, 5.0, 2.0]]), [[1.2]]), [[1.0, 0.0, 0.5]])
    assert R.crps_loo(np.array([[0.0, 1.0, 9.0]]), [[0.5]]).shape == (1, 3)
    for fn in (R.rank, R.crps_loo):
        with pytest.raises(ValueError, match=r"one target per group, \[B\]; got pred \(1, 3\) and target \(2,\)"):
            fn(np.array([[0.0, 1.0, 9.0]]), [0.5, 1.0])
    # a torch or pandas target: numpy's TypeError, or a Series back
    for fn in (R.neg_abs_error, R.neg_squared_error, R.gaussian_kernel):
        want = fn(np.array([1.0, 2.0]), np.array([2.0, 3.0]))
        for target in (torch.tensor([2.0, 3.0]), pd.Series([2.0, 3.0], index=[5, 6])):
            got = fn(np.array([1.0, 2.0]), target)
            assert isinstance(got, np.ndarray) and np.array_equal(got, want)
    f = R.trl_reward("abs")
    frame = pd.DataFrame({"y": [3.0, 4.0]})   # a DataFrame iterated its column names
    assert f(prompts=["a", "b"], completions=["3", "5"], target=frame) == [-0.0, -1.0]
    with pytest.raises(TypeError, match="its element 0 is a ndarray"):
        f(prompts=["a", "b"], completions=["0", "1"], target=pd.DataFrame([[5.0, 6.0], [7.0, 8.0]]))
    # a chat message not in a list, or "text" for "content": every reward had been None
    for bad in ({"role": "assistant", "content": "3"}, [{"role": "assistant", "text": "3"}]):
        with pytest.raises(ValueError, match="a completion must be a string or chat messages"):
            f(prompts=["a"], completions=[bad], target=[3.0])
    # a negative target under 'log' raised only where the completion parsed
    g = R.trl_reward("log")
    for completions in (["oops", "1"], ["2", "1"]):
        with pytest.raises(ValueError, match="the log reward needs targets >= 0; got -3.0"):
            g(prompts=["a", "b"], completions=completions, target=[-3.0, 1.0])
    with pytest.raises(ValueError, match=r"invalid_reward must be a finite number within \+-1e\+15"):
        R.trl_reward("abs", invalid_reward=-1e39)   # -inf in TRL's float32
    with pytest.raises(ValueError, match=r"called as reward\(pred, target, \*\*params\), which <lambda> does not take"):
        R.trl_reward(lambda p: 0.0)   # was: "does not take []"


def test_an_rl_config_key_that_is_no_string_is_named():
    from lmreg import LMRegressor

    with pytest.raises(ValueError, match=r"rl_config has no field\(s\) \['foo', 1\]"):   # was sorted()'s TypeError
        LMRegressor(rl_steps=2, rl_config={1: 2, "foo": 3}, max_time=None, max_epochs=1).fit(["a", "b", "c"], [1.0, 2, 3])
