"""lmreg's reward functions inside TRL's GRPOTrainer (a tiny random policy on the CPU)."""

import math
import re

import numpy as np
import pytest

pytest.importorskip("trl")

from test_bench import _benchmark  # noqa: E402  (tests/ is on sys.path: no __init__.py)


@pytest.fixture(scope="module")
def trl_grpo():
    return _benchmark("trl_grpo")


def test_grpo_learns_from_trl_reward(trl_grpo, tmp_path):
    """With the default penalty for unparsable completions, GRPO teaches a random policy to
    write numbers and to read its prompt: below the best constant answer's error."""
    record, _ = trl_grpo.run("penalty", steps=400, seed=0, workdir=str(tmp_path))
    assert record["parsed_before"] < 0.6 and record["mae_before"] > trl_grpo.BEST_CONSTANT_MAE
    assert record["parsed_after"] >= 0.95
    assert record["mae_after"] < trl_grpo.BEST_CONSTANT_MAE
    assert record["losses_finite"] and math.isfinite(record["last_reward"])


def test_group_reward_gets_whole_groups_from_grpo(trl_grpo, tmp_path):
    """TRL hands a process's completions with each prompt's generations side by side: the
    group reward scores them (it raises on a split group) as crps_loo on each group."""
    from lmreg.training.rewards import crps_loo

    calls = []
    inner = trl_grpo.reward_for("crps_loo")

    def reward(prompts, completions, target, **kwargs):
        out = inner(prompts=prompts, completions=completions, target=target, **kwargs)
        calls.append((prompts, completions, target, out))
        return out

    record, _ = trl_grpo.run("crps_loo", steps=3, seed=0, workdir=str(tmp_path), reward=reward)
    assert len(calls) == 3 and record["losses_finite"]
    G = trl_grpo.GENERATIONS
    scored = 0
    for prompts, completions, target, out in calls:
        for s in range(0, len(out), G):
            values = [trl_grpo.first_number(c) if re.search(r"\d", c) else None for c in completions[s:s + G]]
            ok = [i for i, v in enumerate(values) if v is not None]
            if len(ok) >= 3:  # the group's parsable completions, scored against each other
                expect = crps_loo(np.array([[values[i] for i in ok]]), np.array([target[s]]))[0]
                np.testing.assert_allclose([out[s + i] for i in ok], expect, rtol=1e-6)
                scored += 1
    assert scored > 0


def test_model_reward_scores_grpo_completions(trl_grpo, tmp_path):
    """A fitted LMRegressor as TRL's reward: GRPOTrainer calls it with its completions and
    dataset columns, and logs the mean of what it returned."""
    from lmreg import LMRegressor
    from lmreg.training.rewards import model_reward

    rng = np.random.default_rng(0)
    completions = ["".join(rng.choice(list("ab5 "), size=rng.integers(1, 5))) for _ in range(200)]
    rows = [{"prompt": "lo", "completion": c} for c in completions]
    est = LMRegressor(max_time=10, random_state=0).fit(rows, [c.count("a") for c in completions])

    calls = []
    inner = model_reward(est, make_row=lambda p, c, target, **kw: {"prompt": p, "completion": c})

    def reward(prompts, completions, **kwargs):
        out = inner(prompts=prompts, completions=completions, **kwargs)
        calls.append((list(prompts), list(completions), list(kwargs["target"]), out))
        return out

    _, trainer = trl_grpo.run("lmreg_model", steps=2, seed=0, workdir=str(tmp_path), reward=reward)
    assert len(calls) == 2
    for prompts, completions, targets, out in calls:
        assert len(out) == len(completions) == 16 and all(isinstance(v, float) for v in out)
        # the dataset column reaches the reward row by row
        assert targets == [trl_grpo.TARGETS[trl_grpo.PROMPTS.index(p)] for p in prompts]
        expected = est.predict([{"prompt": p, "completion": c} for p, c in zip(prompts, completions)])
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert len({v for *_, out in calls for v in out}) > 1  # a fitted model, not its median fallback
    logged = [h["reward"] for h in trainer.state.log_history if "loss" in h]
    # one log line for the two steps: the mean of the two calls' means
    assert logged == pytest.approx([np.mean([np.mean(out) for *_, out in calls])], rel=1e-5)
