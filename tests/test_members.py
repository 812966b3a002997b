"""Seed ensembles (``n_members``): training, combination, budget, persistence, refusals."""

import numpy as np
import pytest
import torch

from lmreg import LMRegressor, load
from lmreg.members import AUTO_MAX_MEMBERS, member_deadline, sample_shares
from lmreg.persistence import WEIGHTS
from lmreg.training.sft import SFTResult

FAST = dict(max_time=None, max_epochs=2, random_state=0, hidden_size=32, num_layers=1, num_heads=2)
X = [f"item {i % 5} costs {i % 20}" for i in range(40)]   # 20 values twice each: a categorical column
y = np.arange(40.0) % 20   # what the rows say they cost: a model beats the median (no fallback)


@pytest.fixture(scope="module")
def single():
    return LMRegressor(**FAST).fit(X, y)


@pytest.fixture(scope="module")
def trio():
    return LMRegressor(n_members=3, **FAST).fit(X, y)


def _alone(est, k):
    """A shallow view of ``est`` predicting with member ``k`` only."""
    view = LMRegressor(**est.get_params())
    view.__dict__.update(est.__dict__)
    view.members_, view.model_ = [est.members_[k]], est.members_[k]
    return view


def test_members_differ_and_the_first_is_the_single_fit(single, trio):
    assert len(trio.members_) == len(trio.member_results_) == 3
    assert trio.members_[0] is trio.model_ and trio.member_results_[0] is trio.fit_result_
    first, other = trio.members_[0].state_dict(), trio.members_[1].state_dict()
    for name, v in single.model_.state_dict().items():  # no deadline: member 0 is the plain fit
        assert torch.equal(v, first[name]), name
    assert any(not torch.equal(v, other[k]) for k, v in first.items())


def test_predict_averages_the_members_exact_medians(trio):
    each = [_alone(trio, k).predict(X[:6]) for k in range(3)]
    np.testing.assert_allclose(trio.predict(X[:6]), np.mean(each, axis=0))
    assert not all(np.array_equal(each[0], e) for e in each[1:])


def test_mode_averages_the_members_greedy_decodes(trio):
    mode = trio.set_params(decision="mode")
    try:
        each = [_alone(mode, k).predict(X[:4]) for k in range(3)]
        np.testing.assert_allclose(mode.predict(X[:4]), np.mean(each, axis=0))
    finally:
        trio.set_params(decision="median")


def test_samples_are_the_mixture_in_equal_shares(single, trio):
    samples = trio.sample(X[:5], n_samples=7)
    keys = torch.arange(3000)
    shares = sample_shares(7, 3, keys, seed=1)
    assert samples.shape == (5, 7) and (shares.sum(axis=1) == 7).all() and set(shares.ravel().tolist()) == {2, 3}
    # the remainder goes to each member as often (the first members took it: 3 of 7 for member 0)
    np.testing.assert_allclose((shares == 3).mean(axis=0), 1 / 3, atol=0.03)
    # per row, from its key: the same alone as among other rows; another seed, another pick
    np.testing.assert_array_equal(sample_shares(7, 3, keys[1234:1235], seed=1), shares[1234:1235])
    assert not np.array_equal(sample_shares(7, 3, keys, seed=2), shares)
    # the first share is member 0's own draw with the estimator's sampling seed
    np.testing.assert_array_equal(samples[:, :2], single.sample(X[:5], n_samples=3)[:, :2])
    np.testing.assert_array_equal(trio.sample(X[3:4], n_samples=7), samples[3:4])
    q = trio.predict_quantiles(X[:5], [0.1, 0.5, 0.9])
    assert q.shape == (5, 3) and np.all(np.diff(q, axis=1) >= 0)


def test_save_and_load_keep_every_member(trio, tmp_path):
    trio.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert len(back.members_) == 3 and back.members_[0] is back.model_
    assert [r.steps for r in back.member_results_] == [r.steps for r in trio.member_results_]
    np.testing.assert_array_equal(back.predict(X), trio.predict(X))
    np.testing.assert_array_equal(back.predict_quantiles(X[:5]), trio.predict_quantiles(X[:5]))


def test_load_refuses_weights_of_a_member_the_config_does_not_have(trio, tmp_path):
    from safetensors.torch import load_file, save_file

    trio.save(tmp_path / "m")
    state = load_file(str(tmp_path / "m" / WEIGHTS))
    state["members.7.head.weight"] = state["head.weight"].clone()
    save_file(state, str(tmp_path / "m" / WEIGHTS))
    with pytest.raises(ValueError, match="members.7.head.weight"):
        load(tmp_path / "m")


def test_auto_adds_members_while_the_budget_allows():
    est = LMRegressor(n_members="auto", **{**FAST, "max_time": 120, "max_epochs": 1}).fit(X, y)
    # one epoch takes about a second: early stopping leaves room for the cap
    assert len(est.members_) == AUTO_MAX_MEMBERS
    assert all(r.stopped == "epochs" for r in est.member_results_)


def test_auto_is_one_network_without_a_deadline():
    est = LMRegressor(n_members="auto", **{**FAST, "max_epochs": 1}).fit(X, y)
    assert len(est.members_) == 1


def test_auto_keeps_its_members_with_rl():
    # SFT leaves 75% of the budget to the members as without RL, then every member gets its RL stage
    est = LMRegressor(n_members="auto", rl_steps=1, **{**FAST, "max_epochs": 1, "max_time": 120}).fit(X, y)
    assert len(est.members_) == len(est.member_rl_results_) == AUTO_MAX_MEMBERS
    assert all(r.steps == 1 for r in est.member_rl_results_)


def test_an_integer_splits_the_budget():
    assert member_deadline(4, 1, now=10.0, deadline=100.0, seconds=[10.0]) == 10.0 + 90.0 / 3
    assert member_deadline(2, 1, now=10.0, deadline=None, seconds=[10.0]) is None
    assert member_deadline("auto", AUTO_MAX_MEMBERS, now=0.0, deadline=1e9, seconds=[1.0]) is False


def test_a_member_that_got_no_step_is_dropped(trio):
    calls = []

    def no_time(model, seed, deadline):
        calls.append(seed)
        return SFTResult(steps=0)

    view = _alone(trio, 0)
    with pytest.warns(UserWarning, match=r"n_members=3 but only 1 network\(s\) trained"):   # it was silent
        view.set_params(n_members=3)._fit_members(no_time, deadline=None, t_start=0.0)
    assert len(calls) == 1 and view.members_ == [view.model_] and len(view.member_results_) == 1


def test_too_many_members_for_the_budget_are_named(recwarn):
    """max_time split into a million shares left the first network microseconds: it took no
    step, the warning said the budget was used up before it (raising max_time would not
    help), and the next member was still tried."""
    X = [f"row {i} of {i % 7}" for i in range(40)]
    est = LMRegressor(**{**FAST, "max_time": 2, "max_epochs": 30, "n_members": 10**6}).fit(X, np.arange(40.0) % 7)
    messages = [str(w.message) for w in recwarn]
    assert any("split into n_members=1000000 equal shares left the first network" in m and "fewer members" in m
               for m in messages), messages
    assert not any("used up before the first training step" in m or "network(s) trained" in m for m in messages)
    assert est.fallback_ and len(est.members_) == 1


def test_fewer_samples_than_members_warns(trio):
    """Two samples from three members: the third draws none, so the mixture leaves it out."""
    with pytest.warns(UserWarning, match="n_samples=2 is fewer than the 3 members"):
        s = trio.sample(X[:3], n_samples=2)
    assert s.shape == (3, 2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert trio.sample(X[:3], n_samples=3).shape == (3, 3)   # one each: no warning


@pytest.mark.parametrize("decision", ["median", "mode"])
def test_the_fallback_judges_the_members_average_not_member_0(trio, monkeypatch, decision):
    """predict returns the members' average: its validation error decides, whatever member 0's was."""
    import dataclasses

    view = LMRegressor(**trio.get_params())
    view.__dict__.update(trio.__dict__)
    view.decision = decision
    enc, y_model, (_, val_rows), _ = view._refit_data(X, y, None, "calibrate")
    assert len(val_rows) > 0
    decoder = "_decide" if decision == "median" else "_greedy_values"
    seen = []

    def average(value):
        def decode(sub, *args):
            seen.append(len(sub.ids))
            return np.full(len(sub.ids), value) if np.ndim(value) == 0 else value
        return decode

    # member 0 lost to the constant, the average is exact: no fallback
    view.fit_result_ = dataclasses.replace(trio.fit_result_, best_val_mae=np.inf)
    monkeypatch.setattr(view, decoder, average(y_model[val_rows]))
    view._judge_fallback(enc, y_model, val_rows)
    assert view.fallback_ is False and seen == [len(val_rows)]
    # member 0 was perfect, the average is far off: fallback
    view.fit_result_ = dataclasses.replace(trio.fit_result_, best_val_mae=0.0)
    monkeypatch.setattr(view, decoder, average(view.baseline_ + 1e6))
    view._judge_fallback(enc, y_model, val_rows)
    assert view.fallback_ is True
    # one network: its own validation error decides, nothing is decoded again
    view.members_, seen[:] = [trio.model_], []
    view._judge_fallback(enc, y_model, val_rows)
    assert view.fallback_ is False and seen == []
    assert trio.fallback_ is False and trio.fit_result_.best_val_mae < np.inf   # the fixture is unchanged


def test_the_fallback_judges_the_constant_on_the_rows_sft_scored(single, tmp_path):
    """SFT scores at most 1,000 validation rows: the median's error is taken on the same rows
    (it was taken on all of them, and a model that beat it there could fall back)."""
    import dataclasses

    view = LMRegressor(**single.get_params())
    view.__dict__.update(single.__dict__)
    enc, y_model, (_, val_rows), _ = view._refit_data(X, y, None, "calibrate")
    assert len(val_rows) >= 3 and single.fit_result_.scored_rows.tolist() == val_rows.tolist()
    gap = np.abs(y_model[val_rows] - view.baseline_)
    far = val_rows[np.argsort(gap)[-2:]]   # the two rows the median misses most
    between = 0.5 * (gap.mean() + gap[np.argsort(gap)[-2:]].mean())   # worse than the median on all, better on those
    assert gap.mean() < between
    view.fit_result_ = dataclasses.replace(single.fit_result_, best_val_mae=between, scored_rows=np.sort(far))
    view._judge_fallback(enc, y_model, val_rows)
    assert view.fallback_ is False
    view.fit_result_ = dataclasses.replace(single.fit_result_, best_val_mae=between, scored_rows=val_rows)
    view._judge_fallback(enc, y_model, val_rows)
    assert view.fallback_ is True
    single.save(tmp_path / "m")   # the rows serve the fit only: not saved
    loaded = load(tmp_path / "m").fit_result_
    assert loaded.scored_rows is None and loaded == single.fit_result_


def test_rl_trains_every_member_judged_on_the_ensemble(tmp_path):
    est, calls = LMRegressor(n_members=2, rl_steps=2, **FAST), []
    est._rl_check = lambda *a, **kw: calls.append(1) or LMRegressor._rl_check(est, *a, **kw)
    est.fit(X, y)
    del est._rl_check
    # the SFT weights are scored once; a later stage starts from the score its predecessor kept
    assert len(calls) == 1 + sum(len(r.checks) for r in est.member_rl_results_)
    est.save(tmp_path / "m")
    assert load(tmp_path / "m").member_rl_results_ == est.member_rl_results_
    assert len(est.members_) == len(est.member_rl_results_) == 2
    assert est.member_rl_results_[0] is est.rl_result_
    assert all(r.steps == 2 and r.checks for r in est.member_rl_results_)
    # each stage starts from the ensemble the previous one left: its SFT score is that stage's outcome
    first, second = est.member_rl_results_
    assert second.val_before["error"] == pytest.approx(first.val_mae)
    # the ensemble's score is what the stages judge: the last one's is what the weights now give
    errors, _, _ = est._rl_check(est._encode(X), y, est._judging_rows(*est._split(len(y)))[1])
    assert float(np.mean(errors)) == pytest.approx(second.val_mae)


def test_reinforce_runs_a_stage_per_member(trio):
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in trio.members_]
    trio.set_params(rl_steps=1).reinforce(X, y)
    try:
        assert len(trio.member_rl_results_) == 3
        for model, state, result in zip(trio.members_, before, trio.member_rl_results_):
            same = all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
            assert same != result.kept  # a reverted stage leaves its member's SFT weights
    finally:
        trio.set_params(rl_steps=0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "all", None])
def test_bad_n_members_is_refused_before_training(bad):
    est = LMRegressor(n_members=bad, **FAST)
    with pytest.raises(ValueError, match="n_members"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_several_targets_per_row_with_members():
    Y = np.column_stack([y, 2 * y])
    est = LMRegressor(n_members=2, **FAST).fit(X, Y)
    assert est.predict(X[:3]).shape == (3, 2)
    # the members' own mixture (a fallback model samples the training targets instead): 7 samples
    # of 2 members is a remainder drawn per row
    assert est._model_samples(est._encode(X[:3]), 7, 0).shape == (3, 7, 2)
    assert est.sample(X[:3], n_samples=5).shape == (3, 5, 2)
    assert est.predict_quantiles(X[:3], [0.1, 0.9]).shape == (3, 2, 2)
