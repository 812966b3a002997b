import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score

from lmreg import LMRegressor, load

FAST = dict(max_time=None, max_epochs=30, random_state=0, hidden_size=32, num_layers=1, num_heads=2)


def test_learns_a_deterministic_function_of_text(spelled_numbers):
    """Spelled-out numbers -> their value: cannot pass by luck (R^2 of the mean is 0).

    An epoch budget, not a time one: a clock-driven schedule on a loaded machine trains less
    (R^2 0.947 once under max_time=30)."""
    X, y = spelled_numbers
    est = LMRegressor(max_time=None, max_epochs=60, random_state=0).fit(X[:800], y[:800])
    r2 = r2_score(y[800:], est.predict(X[800:]))
    assert r2 > 0.95, f"held-out R^2 {r2:.3f}; fit: {est.fit_result_}"
    assert not est.fallback_


@pytest.mark.parametrize("X", [
    [f"item {i}" for i in range(30)],
    [{"a": i, "b": {"c": f"t{i % 3}"}} for i in range(30)],
    np.arange(60, dtype=float).reshape(30, 2),
    pd.DataFrame({"num": np.arange(30.0), "cat": ["x", "y", None] * 10,
                  "txt": [f"some words {i}" for i in range(30)],
                  "when": pd.date_range("2020-01-01", periods=30)}),
])
def test_accepts_every_input_kind(X):
    y = np.arange(30.0)
    est = LMRegressor(**FAST).fit(X, y)
    pred = est.predict(X)
    assert pred.shape == (30,) and np.all(np.isfinite(pred))
    assert est.n_features_in_ >= 1


def test_missing_values_in_X_are_data():
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0] * 10, "b": ["u", None, "v"] * 10})
    pred = LMRegressor(**FAST).fit(X, np.arange(30.0)).predict(X)
    assert np.all(np.isfinite(pred))


@pytest.mark.parametrize("y, err, match", [
    ([1.0, np.nan, 3.0], ValueError, "NaN"),
    ([1.0, np.inf, 3.0], ValueError, "infinite"),
    ([1.0, 2.0], ValueError, "inconsistent lengths"),
    (["a", "b", "c"], TypeError, "numeric"),
    (np.ones((3, 2, 2)), ValueError, "1-D"),
    ([[1.0], [1.0, 2.0], [3.0]], ValueError, "y's rows have different lengths"),
    (pd.array([True, None, False], dtype="boolean"), ValueError, "1 NaN value"),   # was: "must be numeric"
    (pd.Series([1.0, pd.NA, 3.0], dtype=object), ValueError, "1 NaN value"),
])
def test_bad_targets(y, err, match):
    with pytest.raises(err, match=match):
        LMRegressor(**FAST).fit(["a", "b", "c"], y)


def test_empty_input_and_unfitted_predict():
    with pytest.raises(ValueError, match="0 sample"):
        LMRegressor(**FAST).fit([], [])
    with pytest.raises(NotFittedError):
        LMRegressor().predict(["x"])


@pytest.mark.parametrize("param, value", [
    ("decision", "avg"), ("decision", 1.5), ("max_time", -1), ("n_samples", 0), ("validation_fraction", 1.5),
    ("temperature", 0.0), ("temperature", 1e-40), ("temperature", float("nan")), ("dropout", 1.5), ("dropout", "x"), ("hidden_size", 0),
    ("num_heads", 3), ("weight_decay", -1.0), ("lora_dropout", 2.0), ("n_threads", 0), ("verbose", "yes"),
    ("codec", "p11"), ("device", "tpu"), ("rl_variant", "ppo"), ("rl_reward", "mae"),
    ("rl_config", {"temperature": -1.0}), ("rl_config", {"foo": 1}), ("rl_config", {"group_size": 1}),
    ("rl_config", {"variant": "grpo"}), ("rl_config", {"keep_alpha": 0.0}), ("rl_config", {"prompt_rows": "test"}),
])
def test_bad_parameters(param, value):
    """Every bad setting (the RL ones too, RL off or on) is a ValueError naming it, raised before any training."""
    est = LMRegressor(**{**FAST, param: value})
    with pytest.raises(ValueError, match=param):
        est.fit(["a", "b", "c"], [1.0, 2.0, 3.0])
    assert not hasattr(est, "model_") and not hasattr(est, "tokenizer_")


@pytest.mark.parametrize("codec", ["digits", "p10"])
def test_n_digits_beyond_float64_is_refused_by_its_constraint(codec):
    from sklearn.utils._param_validation import InvalidParameterError

    # a ValueError from the codec had come after the checks, naming n_mantissa for p10
    with pytest.raises(InvalidParameterError, match=r"'n_digits' parameter .* in the range \[1, 15\]"):
        LMRegressor(**{**FAST, "codec": codec, "n_digits": 16}).fit(["a", "b", "c"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("param, value", [("temperature", 0.0), ("temperature", 1e-40), ("n_samples", 0),
                                          ("quantile_decoding", "bogus"), ("decision", "avg"), ("n_threads", 0),
                                          ("calibration", False), ("calibration", "none")])
def test_parameters_changed_after_fit_are_checked_at_predict(param, value):
    """set_params after fit must not decode garbage (a temperature of 0 gave one number for every row;
    calibration=False kept the calibrated quantiles, which only None turns off)."""
    X, y = [f"n {i % 5}" for i in range(40)], [float(i % 5) for i in range(40)]
    est = LMRegressor(**{**FAST, "max_epochs": 2}).fit(X, y).set_params(**{param: value})
    for call in (est.predict, est.sample, est.predict_quantiles):
        with pytest.raises(ValueError, match=param):
            call(X[:2])


@pytest.mark.parametrize("bad", [{0.1, 0.9}, ["a"], [[0.1], [0.2, 0.3]], [], 1.0, "0.5"])
def test_bad_quantile_levels_are_named(bad):
    est = LMRegressor(**{**FAST, "max_epochs": 1}).fit(["a", "b", "c", "d"], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="quantiles must be a level or a sequence of levels in"):
        est.predict_quantiles(["a"], bad)


def test_feature_count_checked_at_predict():
    est = LMRegressor(**FAST).fit(np.zeros((10, 3)), np.arange(10.0))
    with pytest.raises(ValueError, match="3 features"):
        est.predict(np.zeros((2, 4)))


def test_reproducible_under_random_state():
    X = [f"row {i} of {i % 7}" for i in range(40)]
    y = np.arange(40.0) % 7
    kw = dict(FAST, max_time=None, max_epochs=3)
    a = LMRegressor(**kw).fit(X, y)
    b = LMRegressor(**kw).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.sample(X, 4), b.sample(X, 4))


def test_a_cpu_fit_leaves_the_gpu_generators_alone(monkeypatch):
    """torch.manual_seed seeds every GPU too (or queues the seed until CUDA starts), which the
    random-state scope, forking only the estimator's device, did not put back: after a CPU fit
    the caller's GPU stream went on from lmreg's seed."""
    calls = []
    for name in ("manual_seed", "manual_seed_all"):
        monkeypatch.setattr(torch.cuda, name, lambda seed, name=name: calls.append(name))
    X = [f"row {i} of {i % 7}" for i in range(40)]
    est = LMRegressor(**dict(FAST, max_time=None, max_epochs=2, n_members=2, device="cpu")).fit(X, np.arange(40.0) % 7)
    est.predict(X[:3])
    assert calls == []


def test_rps_weight_adds_the_ranked_probability_score_to_the_loss(monkeypatch):
    import lmreg.training.sft as sft

    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs.get("check", True))
        return real(*args, **kwargs)

    real = sft.ranked_probability_scores
    monkeypatch.setattr(sft, "ranked_probability_scores", spy)
    X = [f"row {i} of {i % 7}" for i in range(40)]
    y = np.arange(40.0) % 7
    kw = dict(FAST, max_time=None, max_epochs=3, n_members=1)
    plain = LMRegressor(**kw, rps_weight=0.0).fit(X, y)
    assert not calls   # 0: cross-entropy alone
    weighted = LMRegressor(**kw).fit(X, y)   # the default, 1
    assert weighted.rps_weight == 1.0
    assert len(calls) == weighted.fit_result_.steps > 0   # once per training step
    assert not any(calls)   # codec-encoded targets are not checked again
    a, b = plain.model_.state_dict(), weighted.model_.state_dict()
    assert any(not np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    with pytest.raises(ValueError, match="rps_weight"):
        LMRegressor(**kw, rps_weight=-1.0).fit(X, y)


def test_max_time_is_respected():
    X = [f"text number {i} " * 10 for i in range(3000)]
    est = LMRegressor(max_time=3, random_state=0).fit(X, np.arange(3000.0))
    assert est.fit_result_.stopped == "time"
    assert est.fit_seconds_ < 3 + 2.0  # within one step and one validation pass


def test_sample_and_decision_rules():
    X = [f"v {i % 5}" for i in range(50)]
    y = (np.arange(50) % 5).astype(float)
    est = LMRegressor(**FAST).fit(X, y)
    s = est.sample(X[:3], n_samples=7)
    assert s.shape == (3, 7)
    lo, hi = est.codec_.representable_range()
    assert np.all((s >= lo) & (s <= hi))
    for rule in ("median", "mean", "mode"):
        est.set_params(decision=rule)
        assert est.predict(X[:3]).shape == (3,)


def test_save_load_round_trip(tmp_path):
    X = pd.DataFrame({"t": [f"w{i % 4}" for i in range(30)], "x": np.arange(30.0)})
    est = LMRegressor(**FAST).fit(X, np.arange(30.0))
    est.save(tmp_path / "m")
    est.save(tmp_path / "m")  # overwriting an existing model is atomic
    loaded = load(tmp_path / "m")
    np.testing.assert_array_equal(est.predict(X), loaded.predict(X))
    assert list(loaded.feature_names_in_) == ["t", "x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp leftovers


def test_load_errors_name_the_file(tmp_path):
    est = LMRegressor(**FAST).fit(["a", "b", "c"], [1.0, 2.0, 3.0])
    est.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="model.safetensors"):
        load(tmp_path / "m")
    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="no saved lmreg model"):
        load(tmp_path / "nope")


def test_uncertainty_api():
    X = [f"v {i % 5}" for i in range(50)]
    y = (np.arange(50) % 5).astype(float)
    est = LMRegressor(**FAST).fit(X, y)
    q = est.predict_quantiles(X[:4], [0.1, 0.5, 0.9])
    assert q.shape == (4, 3) and np.all(np.diff(q, axis=1) >= 0)
    pred, std = est.predict(X[:4], return_std=True)
    assert pred.shape == std.shape == (4,) and np.all(std >= 0)
    np.testing.assert_allclose(std, est.sample(X[:4]).std(axis=1))
    est.set_params(decision=0.9, quantile_decoding="samples")   # 5 validation rows: not calibrated
    np.testing.assert_allclose(est.predict(X[:4]), q[:, 2])
    with pytest.raises(ValueError, match="quantiles"):
        est.predict_quantiles(X[:1], [0.0, 1.2])


def test_return_std_on_huge_targets_is_finite():
    """Squares of numbers near 1e300 overflow: the spread is computed on rescaled samples."""
    X = [f"v {i % 5}" for i in range(50)]
    y = (1.0 + np.arange(50) % 5) * 1e300
    est = LMRegressor(**{**FAST, "max_time": None, "max_epochs": 2}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        pred, std = est.predict(X[:4], return_std=True)
        _, std_mode = est.set_params(decision="mode").predict(X[:4], return_std=True)
    assert np.isfinite(pred).all() and np.isfinite(std).all() and np.isfinite(std_mode).all()
    assert std.max() > 1e297          # the spread of numbers of order 1e300, not 0


def test_tree_quantiles_are_the_quantiles_of_many_samples():
    """quantile_decoding="tree": the exact quantile of the model's distribution, one decode pass."""
    rng = np.random.default_rng(0)
    k = rng.integers(0, 6, size=200)
    X, y = [f"v {v}" for v in k], k + rng.normal(size=200)
    est = LMRegressor(**FAST).fit(X, y)
    rows = X[:6]
    many = est.sample(rows, 2000)
    for level in (0.2, 0.5, 0.9):
        exact = est.set_params(decision=level if level != 0.5 else "median").predict(rows)
        # the share of 2,000 samples at or below the exact quantile brackets its level
        below = (many <= exact[:, None] + 1e-9).mean(axis=1)
        strictly = (many < exact[:, None] - 1e-9).mean(axis=1)
        assert np.all(below >= level - 0.04) and np.all(strictly <= level + 0.04)
    lo, hi = (est.set_params(decision=q).predict(rows) for q in (0.1, 0.9))
    assert np.all(lo <= hi)
    # the p10 codec does not sort like its numbers: its quantiles come from the samples
    p10 = LMRegressor(**FAST, codec="p10").fit(X, y)
    assert p10._tree_level("median") is None
    np.testing.assert_allclose(p10.predict(rows), np.median(p10.sample(rows), axis=1))
    with pytest.raises(ValueError, match="quantile_decoding"):
        LMRegressor(quantile_decoding="exact").fit(X, y)


def test_multi_target_is_decoded_natively(tmp_path):
    X = [f"a {i % 6} b {i % 4}" for i in range(60)]
    Y = np.stack([np.arange(60) % 6, 100.0 * (np.arange(60) % 4)], axis=1)
    est = LMRegressor(**FAST).fit(X, Y)
    assert est.codec_.length == 2 * 4  # two 4-digit numbers in one sequence
    pred = est.predict(X)
    assert pred.shape == (60, 2)
    assert est.sample(X[:3], 5).shape == (3, 5, 2)
    _, std = est.predict(X[:3], return_std=True)   # the spread of the samples predict draws
    np.testing.assert_allclose(std, est.sample(X[:3]).std(axis=1))
    assert est.predict_quantiles(X[:3], [0.1, 0.9]).shape == (3, 2, 2)
    # each target stays inside its own fitted range
    for t, (lo, hi) in enumerate(est.codec_.representable_range()):
        assert np.all((pred[:, t] >= lo) & (pred[:, t] <= hi))
    est.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").predict(X), pred)


def test_a_budget_spent_before_training_warns_and_falls_back():
    X, y = [f"n {i}" for i in range(50)], np.arange(50.0)
    with pytest.warns(UserWarning, match="before the first training step"):
        est = LMRegressor(max_time=1e-4, random_state=0).fit(X, y)
    assert est.fit_result_.steps == 0 and est.fallback_
    np.testing.assert_allclose(est.predict(X[:3]), np.full(3, est.baseline_))
    # the constant follows the decision rule: the training targets' quantile or mean
    train = est._train_targets
    assert 0 < len(train) < 50 and est.baseline_ == np.median(train)
    np.testing.assert_allclose(est.set_params(decision=0.9).predict(X[:2]), np.quantile(train, 0.9))
    np.testing.assert_allclose(est.set_params(decision="mean").predict(X[:2]), train.mean())
    np.testing.assert_allclose(est.set_params(decision="mode").predict(X[:2]), est.baseline_)
    # uncalibrated quantiles are the training targets' own, not those of n_samples draws
    assert est.calibrator_ is None
    np.testing.assert_allclose(est.predict_quantiles(X[:2], [0.1, 0.9]), [np.quantile(train, [0.1, 0.9])] * 2)
    # independent draws from the training targets for different seeds, the same for one seed
    a, b = (est.sample(X[:4], 16, random_state=s) for s in (1, 2))
    assert not np.array_equal(a, b) and np.array_equal(a, est.sample(X[:4], 16, random_state=1))
    assert np.isin(a, train).all()
    assert (a == a[0]).all()            # every row the same draws, whatever its place in the batch
    np.testing.assert_array_equal(est.sample(X[2:3], 16, random_state=1)[0], a[0])


def test_validation_is_subsampled_when_it_would_eat_the_budget():
    """A large validation share on a short budget: one pass may cost ~5% of it, not more."""
    rng = np.random.default_rng(0)
    X = [" ".join(rng.choice(["alpha", "beta", "gamma", "delta"], 20)) for _ in range(2000)]
    y = rng.normal(size=2000)
    est = LMRegressor(max_time=20, validation_fraction=0.9, batch_size=2, random_state=0, n_threads=1)
    est.fit(X, y)
    # 1,000 rows (the cap) held out; at 2 rows per step one pass would cost >> 5% of 20 s
    assert est.fit_result_.steps > 2
    assert 32 <= est.fit_result_.val_rows < 1000
    assert est.fit_seconds_ < 20 + 2.5


def test_sample_random_state_gives_independent_draws():
    X = [f"n {i % 7}" for i in range(60)]
    est = LMRegressor(max_time=None, max_epochs=2, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2).fit(X, np.arange(60.0) % 7)
    fixed = est.sample(X[:8], 16)
    np.testing.assert_array_equal(est.sample(X[:8], 16), fixed)             # the model's own seed
    np.testing.assert_array_equal(est.sample(X[:8], 16, random_state=3), est.sample(X[:8], 16, random_state=3))
    assert not np.array_equal(est.sample(X[:8], 16, random_state=3), est.sample(X[:8], 16, random_state=4))
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        est.sample(X[:2], 2.7)


def test_a_validation_share_of_every_row_still_trains():
    """validation_fraction=0.98 of 20 rows rounds to all 20: one row is kept for training
    (before: no batch ever came and fit spun forever, max_time included)."""
    X, y = [f"n {i}" for i in range(20)], np.arange(20.0)
    est = LMRegressor(**{**FAST, "max_epochs": 2, "validation_fraction": 0.98}).fit(X, y)
    assert est.fit_result_.steps == 2 and est.fit_result_.val_rows == 19


def test_validation_judges_the_median_at_the_estimators_temperature():
    """Early stopping and the fallback test read the exact median at ``temperature``, what predict returns."""
    X, y = [f"v {i % 7} w {i % 3}" for i in range(60)], ((np.arange(60) % 7) * 3.0 + np.arange(60) % 3)
    est = LMRegressor(**{**FAST, "max_epochs": 40, "n_members": 1, "temperature": 0.3}).fit(X, y)
    assert not est.fallback_
    val = est._split(len(X))[1]
    pred = est.predict([X[i] for i in val])
    assert est.fit_result_.best_val_mae == pytest.approx(np.abs(pred - y[val]).mean(), rel=1e-9)


def test_a_one_column_y_is_decoded_like_a_1d_y():
    """y of shape (n, 1) is one target: the same exact tree median as the 1-D y, in shape (n, 1)."""
    X, y = [f"v {i % 7} w {i % 3}" for i in range(60)], ((np.arange(60) % 7) * 3.0 + np.arange(60) % 3)
    flat = LMRegressor(**{**FAST, "max_epochs": 10, "n_members": 1}).fit(X, y)
    column = LMRegressor(**{**FAST, "max_epochs": 10, "n_members": 1}).fit(X, y[:, None])
    assert column._tree_level("median") == 0.5
    pred = column.predict(X[:5])
    assert pred.shape == (5, 1)
    np.testing.assert_allclose(pred[:, 0], flat.predict(X[:5]), rtol=1e-12)


def test_a_refit_that_fails_leaves_the_fitted_model_as_it_was():
    X, y = [f"n {i % 7}" for i in range(40)], np.arange(40.0) % 7
    est = LMRegressor(**{**FAST, "max_epochs": 2}).fit(X, y)
    before, codec = est.predict(X), est.codec_
    with pytest.raises(ValueError, match="one target per row"):   # found after the inputs were set up
        est.set_params(rl_steps=2).fit([x + " more words" for x in X], np.c_[y, y])
    assert est.codec_ is codec and est.set_params(rl_steps=0).predict(X).shape == (40,)
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError, match="one target per row"):
        fresh = LMRegressor(**{**FAST, "rl_steps": 2})
        fresh.fit(X, np.c_[y, y])
    with pytest.raises(NotFittedError):
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(fresh)


def test_an_interrupted_rl_stage_leaves_the_weights_and_results(monkeypatch):
    import torch

    from lmreg.training import rl_stage

    X, y = [f"n {i % 7}" for i in range(70)], np.arange(70.0) % 7
    est = LMRegressor(**FAST).fit(X, y)
    assert not est.fallback_   # predictions come from the weights
    before = est.predict(X)

    def interrupted(model, *args, **kwargs):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)   # a half-done update
        raise KeyboardInterrupt

    monkeypatch.setattr(rl_stage, "train_rl", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.set_params(rl_steps=2).reinforce(X, y)
    assert est.rl_result_ is None
    np.testing.assert_array_equal(est.predict(X), before)


def test_a_quantile_decision_is_judged_by_its_pinball_loss():
    def pinball(pred, y, level=0.1):   # twice the pinball loss: the absolute error at 0.5
        return float(np.mean(2 * np.maximum(level * (y - pred), (level - 1) * (y - pred))))

    rng = np.random.default_rng(0)
    g = rng.integers(0, 5, 200)
    y = 6.0 * g + rng.exponential(10, 200)
    X = [f"group {v}" for v in g]
    est = LMRegressor(max_time=None, max_epochs=10, decision=0.1, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2).fit(X, y)
    val = est._split(200)[1]
    pred, y_val = est.predict([X[i] for i in val]), y[val]
    # far below the median, a good 0.1-quantile loses to the median by absolute error (the
    # fallback test once read that and kept the constant); by its own pinball loss it wins
    assert np.abs(pred - y_val).mean() > np.abs(np.median(y) - y_val).mean()
    constant = pinball(np.quantile(y[est._split(200)[0]], 0.1), y_val)
    assert not est.fallback_ and est.fit_result_.best_val_mae == pytest.approx(pinball(pred, y_val))
    assert est.fit_result_.best_val_mae < constant


def test_a_fallback_with_validation_rows_keeps_the_training_targets_quantiles():
    """Conformal shifts fitted on one 16-draw set of training targets and applied to another
    moved every row's quantiles alike (the 0.5 level far from predict's median)."""
    X, y = [f"n {i}" for i in range(150)], np.arange(150.0) % 19     # 15 validation rows
    with pytest.warns(UserWarning, match="before the first training step"):
        est = LMRegressor(max_time=1e-4, random_state=0).fit(X, y)
    assert est.fallback_ and est.calibrator_ is None
    train = est._train_targets
    np.testing.assert_allclose(est.predict_quantiles(X[:2], [0.1, 0.5, 0.9]),
                               [np.quantile(train, [0.1, 0.5, 0.9])] * 2)
    assert est.calibrate(X, y).calibrator_ is None


def test_a_fit_that_never_trained_falls_back_without_validation_rows():
    X, y = [f"n {i}" for i in range(15)], np.arange(15.0)     # < 20 rows: no validation rows
    with pytest.warns(UserWarning, match="before the first training step"):
        est = LMRegressor(max_time=1e-4, random_state=0).fit(X, y)
    assert est.fallback_           # was: the random network's numbers, while the warning said median
    np.testing.assert_allclose(est.predict(X[:3]), np.median(y))


def test_weights_broken_by_the_last_step_are_an_error():
    X, y = [f"n {i % 7}" for i in range(30)], np.arange(30.0)
    est = LMRegressor(max_time=None, max_epochs=3, learning_rate=1e6, validation_fraction=0.0, random_state=0,
                      hidden_size=32, num_layers=1, num_heads=2)
    # the loss of every step was finite; the update of the last one made the weights NaN
    with pytest.raises(FloatingPointError, match="weights became NaN or infinite at step 3"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_flags_for_numbers_and_datetime_targets_are_refused():
    from sklearn.utils._param_validation import InvalidParameterError

    X = [f"n {i}" for i in range(30)]
    for name in ("n_members", "rl_steps", "n_samples", "max_epochs"):   # True ran as 1
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of LMRegressor must be a number, not a bool"):
            LMRegressor(max_time=None, **{name: True}).fit(X, np.arange(30.0))
    est = LMRegressor(max_time=None, max_epochs=1, random_state=0, hidden_size=32, num_layers=1, num_heads=2)
    est.fit(X, np.arange(30.0))
    with pytest.raises(InvalidParameterError, match="'n_samples' parameter .* not a bool"):   # set after fit
        est.set_params(n_samples=True).predict(X[:2])
    for y, what in ((pd.date_range("2020-01-01", periods=30), "datetimes"),
                    (pd.to_timedelta(np.arange(30), unit="D"), "durations")):
        with pytest.raises(TypeError, match=f"y holds {what}"):   # was: regressed as float nanoseconds
            LMRegressor(max_time=None).fit(X, y)
    # in an object array numpy's own times read as counts of their units (days, hours: mixed)
    for y, what in ((np.array([np.datetime64("2020-01-01", "D")] * 30, dtype=object), "datetimes"),
                    (np.array([np.timedelta64(1, "D"), np.timedelta64(2, "h")] * 15, dtype=object), "durations"),
                    (np.array([None] + [dt.date(2020, 1, 2)] * 29, dtype=object), "datetimes")):
        with pytest.raises(TypeError, match=rf"y holds {what} \(numpy\.|y holds {what} \(datetime\.date"):
            LMRegressor(max_time=None).fit(X, y)


def test_a_constant_target_among_several_is_scaled_by_its_size():
    from lmreg.training.sft import target_error, target_scale

    y = np.c_[np.arange(10.0), np.full(10, 1e3), np.full(10, 0.1)]
    pred = y + [0.0, 1.0, 0.01]   # the constants decoded a little off (their codec window is about +-60%)
    # divided by a floor of 1e-12 such an error outweighed every other target: early stopping
    # and the fallback test read only the constant (3e11 on a 5-epoch fit, and the fallback)
    assert target_error(pred, y, target_scale(y)) == pytest.approx((1 / 1e3 + 0.01 / 1.0) / 3)


def test_a_constant_target_is_predicted_exactly_without_validation_rows():
    """Fewer than 20 rows leave no validation rows, so the fallback test never ran: the network's
    numbers (2.94-3.00 for y = 3, intervals of width 2) were returned for a constant."""
    X = pd.DataFrame({"a": np.arange(15.0), "note": [f"word{i % 4}" for i in range(15)]})
    tiny = dict(max_time=None, max_epochs=2, hidden_size=16, num_layers=1, num_heads=2, n_samples=4,
                random_state=0)
    for y, kw in ((np.full(15, 3.0), {}), (np.full(40, -2.5), {"validation_fraction": 0.0})):
        est = LMRegressor(**tiny, **kw).fit(pd.concat([X] * 3, ignore_index=True)[:len(y)], y)
        assert est.fallback_
        np.testing.assert_array_equal(est.predict(X[:3]), y[:3])
        np.testing.assert_array_equal(est.predict_quantiles(X[:2], [0.1, 0.9]), np.full((2, 2), y[0]))
    assert not LMRegressor(**tiny).fit(X, np.r_[np.full(14, 3.0), 3.5]).fallback_   # not constant: the network
    # a y of one column, or of constant columns, is constant as well (it was judged 1-D only)
    for y in (np.full((15, 1), 3.0), np.c_[np.full(15, 3.0), np.full(15, -1.0)]):
        est = LMRegressor(**tiny).fit(X, y)
        assert est.fallback_
        np.testing.assert_array_equal(est.predict(X[:3]), y[:3])
    assert not LMRegressor(**tiny).fit(X, np.c_[np.full(15, 3.0), np.arange(15.0)]).fallback_
    # every decision rule: the mean of 15 times 0.1 had been 0.09999999999999999
    for decision in ("median", "mean", "mode", 0.9):
        est = LMRegressor(**tiny, decision=decision).fit(X, np.full(15, 0.1))
        assert est.fallback_ and est.predict(X[:2]).tolist() == [0.1, 0.1]


def test_sparse_dummies_read_as_their_dense_columns():
    """pd.get_dummies(sparse=True) fitted, but a batch where a dummy is all False (one row) raised
    pandas' "fill_value must be a valid value for the SparseDtype.subtype"."""
    tiny = dict(max_time=None, max_epochs=1, hidden_size=16, num_layers=1, num_heads=2, n_samples=4,
                random_state=0, validation_fraction=0.0)
    y = np.arange(40) % 5 * 1.0
    sparse = pd.get_dummies(pd.Series(["p", "q", "r", "s"] * 10), sparse=True).assign(
        never=pd.arrays.SparseArray([False] * 40, fill_value=False))
    dense = sparse.sparse.to_dense()
    est, ref = LMRegressor(**tiny).fit(sparse, y), LMRegressor(**tiny).fit(dense, y)
    assert est.serializer_.kinds_ == ref.serializer_.kinds_
    np.testing.assert_array_equal(est.predict(sparse.iloc[[0]]), ref.predict(dense.iloc[[0]]))
    np.testing.assert_array_equal(est.predict(sparse), ref.predict(dense))


def test_a_tags_column_that_keeps_no_element_warns():
    """A column of embedding vectors reads as tags whose every float occurs once: it kept nothing
    and every row got the same prediction, silently."""
    emb = pd.DataFrame({"emb": [np.random.default_rng(i).normal(size=8) for i in range(30)]})
    tiny = dict(max_time=None, max_epochs=1, hidden_size=16, num_layers=1, num_heads=2, n_samples=4,
                random_state=0)
    with pytest.warns(UserWarning, match=r"tags column 'emb' keeps no element: each of its 240 distinct"):
        LMRegressor(**tiny).fit(emb, np.arange(30.0))
    genres = pd.DataFrame({"g": [["a", "b"], ["a"], ["b"]] * 10})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        LMRegressor(**tiny).fit(genres, np.arange(30.0))
