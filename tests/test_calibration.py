"""Split-conformal quantile calibration: the order statistic, coverage, and the estimator's use of it."""

import warnings

import numpy as np
import pytest

import lmreg
from lmreg import LMRegressor
from lmreg.calibration import ConformalQuantiles, calibrated_order_statistic


def test_order_statistic_by_hand():
    scores = np.array([5.0, 1.0, 4.0, 2.0, 3.0])   # sorted: 1 2 3 4 5, n + 1 = 6
    assert calibrated_order_statistic(scores, 0.5) == 3.0    # ceil(3.0) = 3rd
    assert calibrated_order_statistic(scores, 0.6) == 4.0    # ceil(3.6) = 4th
    assert calibrated_order_statistic(scores, 0.4) == 2.0    # floor(2.4) = 2nd
    assert calibrated_order_statistic(scores, 0.1) == 1.0    # floor(0.6) = 0 -> clipped to the 1st
    assert calibrated_order_statistic(scores, 0.95) == 5.0   # ceil(5.7) = 6 -> clipped to the 5th
    # along axis 0, one column per target
    both = np.stack([scores, 10 * scores], axis=1)
    np.testing.assert_array_equal(calibrated_order_statistic(both, 0.6), [4.0, 40.0])


def test_shifts_by_hand():
    samples = np.tile(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), (9, 1))   # every row: median 2, q(0.25) = 1
    y = np.arange(9.0)                                                 # 0..8, n + 1 = 10
    cal = ConformalQuantiles().fit(samples, y)
    # level 0.5: scores y - 2 = -2..6, ceil(5.0) = 5th smallest = 2
    # level 0.25: scores y - 1 = -1..7, floor(2.5) = 2nd smallest = 0
    np.testing.assert_allclose(cal.shifts([0.5, 0.25]), [2.0, 0.0])
    np.testing.assert_allclose(cal.quantiles(samples[:2], [0.25, 0.5]), [[1.0, 4.0], [1.0, 4.0]])


def test_too_narrow_samples_get_nominal_coverage():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=600)
    samples = mu[:, None] + 0.2 * rng.normal(size=(600, 32))        # right centre, far too sharp
    y = mu + rng.normal(size=600)
    cal = ConformalQuantiles().fit(samples[:300], y[:300])
    raw = np.quantile(samples[300:], [0.1, 0.9], axis=1).T
    q = cal.quantiles(samples[300:], [0.1, 0.9])
    inside = lambda lo, hi: np.mean((lo <= y[300:]) & (y[300:] <= hi))   # noqa: E731
    assert inside(raw[:, 0], raw[:, 1]) < 0.3
    assert 0.74 < inside(q[:, 0], q[:, 1]) < 0.88


def test_finite_sample_coverage_holds_on_average():
    """Over many draws of exchangeable rows, the calibrated 80% interval covers >= 80% (minus noise)."""
    rng = np.random.default_rng(1)
    covers = []
    for _ in range(200):
        y = rng.standard_t(3, size=31)
        samples = rng.normal(scale=0.1, size=(31, 8))
        q = ConformalQuantiles().fit(samples[:30], y[:30]).quantiles(samples[30:], [0.1, 0.9])
        covers.append(q[0, 0] <= y[30] <= q[0, 1])
    assert np.mean(covers) >= 0.78   # guarantee: >= 1 - 2 * 0.1 = 0.8; 200 draws: sd ~ 0.028


def test_multi_target_and_level_order():
    rng = np.random.default_rng(2)
    samples = rng.normal(size=(50, 16, 2)) * [1.0, 100.0]
    y = rng.normal(size=(50, 2)) * [2.0, 50.0]
    cal = ConformalQuantiles().fit(samples, y)
    q = cal.quantiles(samples[:5], [0.9, 0.1, 0.5])
    assert q.shape == (5, 3, 2)
    assert (q[:, 1] <= q[:, 2]).all() and (q[:, 2] <= q[:, 0]).all()   # sorted by level, not position
    assert cal.shifts([0.1, 0.9]).shape == (2, 2)


def test_crossing_quantiles_are_repaired_outwards_whatever_else_is_asked(monkeypatch):
    """A shift that would put the 0.9-quantile below the median (or the 0.1 above it) moves it out
    to the nearest grid level's quantile, with or without other levels in the call."""
    from lmreg.calibration import MONOTONE_GRID

    cal = ConformalQuantiles().fit(np.zeros((9, 4)), np.arange(9.0) - 4)
    zeros = np.zeros((3, 8))
    monkeypatch.setattr(cal, "shifts", lambda lv: np.where(np.isclose(lv, 0.9), -5.0, np.where(np.isclose(lv, 0.1),
                                                                                             5.0, 0.0)))
    for levels in ([0.9], [0.1], [0.1, 0.9], [0.1, 0.5, 0.9], [0.9, 0.3, 0.1, 0.7]):
        q = cal.quantiles(zeros, levels)
        np.testing.assert_array_equal(q, 0.0)   # per call, [0.9] alone was -5 and [0.1] alone +5
    # monotone shifts, at the grid's levels or between or beyond them: untouched
    monkeypatch.setattr(cal, "shifts", lambda lv: 10 * (np.asarray(lv) - 0.5))
    levels = [0.005, 0.1, 0.333, 0.5, 0.505, 0.9, 0.995]
    np.testing.assert_allclose(cal.quantiles(zeros, levels), np.broadcast_to(10 * (np.array(levels) - 0.5), (3, 7)))
    # a crossing between two grid levels is repaired against the nearer asked level
    step = lambda lv: np.where(np.asarray(lv) > 0.9095, 3.0, 0.0)   # grid 0.91 and up at 3
    monkeypatch.setattr(cal, "shifts", lambda lv: np.where(np.isclose(lv, 0.905), 2.0,
                                                           np.where(np.isclose(lv, 0.906), 1.0, step(lv))))
    assert cal.quantiles(zeros, [0.905, 0.906]).tolist() == [[2.0, 2.0]] * 3
    assert cal.quantiles(zeros, [0.906]).tolist() == [[1.0]] * 3
    # but never past the grid levels around it: 0.905 at 5 sat above the 0.91-quantile (3) asked
    # alone, and an interval asked in two calls could be wider at 85% than at 90%
    monkeypatch.setattr(cal, "shifts", lambda lv: np.where(np.isclose(lv, 0.905), 5.0,
                                                           np.where(np.isclose(lv, 0.095), -5.0, step(lv))))
    for levels in ([0.905], [0.905, 0.91], [0.095, 0.905, 0.5]):
        q = cal.quantiles(zeros, levels)
        assert q[0, levels.index(0.905)] == 3.0 and (0.095 not in levels or q[0, 0] == 0.0)
    assert MONOTONE_GRID[0] == 0.01 and MONOTONE_GRID[-1] == 0.99 and 0.5 in MONOTONE_GRID


def test_zero_weight_rows_do_not_count():
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([1.0, 0.0, 1.0, 1.0])   # the row of score 2 weighs nothing: scores 1, 3, 4
    for level in (0.3, 0.5, 0.9):
        assert calibrated_order_statistic(scores, level, w) == calibrated_order_statistic(scores[w > 0], level)
    assert calibrated_order_statistic(scores, 0.5, w) == 3.0


@pytest.mark.parametrize("samples, y, match", [
    (np.zeros((5, 4)), np.zeros(6), "do not match"),
    (np.zeros((5, 4, 2)), np.zeros(5), "do not match"),
    (np.zeros((1, 4)), np.zeros(1), "at least 2 rows"),
    (np.full((3, 4), np.nan), np.zeros(3), "finite"),
])
def test_bad_input_is_named(samples, y, match):
    with pytest.raises(ValueError, match=match):
        ConformalQuantiles().fit(samples, y)


def _noisy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 8, size=n)
    return [f"level {v}" for v in k], k + rng.normal(scale=1.5, size=n)


def test_estimator_calibrates_on_validation_rows(tmp_path):
    X, y = _noisy()
    kw = dict(max_time=None, max_epochs=3, random_state=0, hidden_size=32, num_layers=1, num_heads=2)
    est = LMRegressor(**kw).fit(X, y)
    assert est.calibrator_ is not None and est.calibrator_.y_.shape == (40,)   # the 10% held out
    q = est.predict_quantiles(X[:20], [0.1, 0.5, 0.9])
    samples = est.sample(X[:20])
    raw = np.moveaxis(np.quantile(samples, [0.1, 0.5, 0.9], axis=1), 0, 1)
    shifted = raw + est.calibrator_.shifts([0.1, 0.5, 0.9])
    np.testing.assert_allclose(q[:, 1], shifted[:, 1])
    # crossings are repaired outwards from the median, against the grid's levels between
    from lmreg.calibration import MONOTONE_GRID

    grid = np.quantile(samples, MONOTONE_GRID, axis=1).T + est.calibrator_.shifts(MONOTONE_GRID)
    np.testing.assert_allclose(q[:, 2], np.maximum(shifted[:, 2], grid[:, (MONOTONE_GRID >= 0.5)
                                                                        & (MONOTONE_GRID <= 0.9)].max(1)))
    np.testing.assert_allclose(q[:, 0], np.minimum(shifted[:, 0], grid[:, (MONOTONE_GRID >= 0.1)
                                                                        & (MONOTONE_GRID <= 0.5)].min(1)))
    assert np.all(np.diff(q, axis=1) >= 0)
    for j, level in enumerate([0.1, 0.5, 0.9]):   # asked alone: the same value
        np.testing.assert_allclose(est.predict_quantiles(X[:20], level)[:, 0], q[:, j])
    # the round trip keeps the calibration
    est.save(tmp_path / "m")
    np.testing.assert_allclose(lmreg.load(tmp_path / "m").predict_quantiles(X[:20], [0.1, 0.9]), q[:, [0, 2]])
    # calibration=None: raw sample quantiles; predict is unchanged either way
    plain = LMRegressor(**kw, calibration=None).fit(X, y)
    assert plain.calibrator_ is None
    np.testing.assert_allclose(plain.predict_quantiles(X[:20], [0.1, 0.5, 0.9]), raw)
    np.testing.assert_array_equal(plain.predict(X[:20]), est.predict(X[:20]))
    # set on the fitted model, it takes effect at predict as n_samples and temperature do
    np.testing.assert_allclose(est.set_params(calibration=None).predict_quantiles(X[:20], [0.1, 0.5, 0.9]), raw)
    est.set_params(calibration="conformal", n_samples=4)
    with pytest.warns(UserWarning, match="fitted on quantiles of 16 samples, these are of n_samples=4"):
        est.predict_quantiles(X[:2])
    # another temperature warns too, after a save and load as well; calibrate refits at it
    loaded = lmreg.load(tmp_path / "m").set_params(temperature=0.5)
    for model in (est.set_params(n_samples=16, temperature=0.5), loaded):
        with pytest.warns(UserWarning, match="fitted on samples at temperature=1, these are at temperature=0.5"):
            model.predict_quantiles(X[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        loaded.calibrate(X, y).predict_quantiles(X[:2])


def test_reinforce_and_calibrate_refit_it():
    X, y = _noisy(200, seed=3)
    est = LMRegressor(max_time=None, max_epochs=5, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2).fit(X, y)
    assert not est.fallback_   # (a fallback has no calibrator)
    before = est.calibrator_
    est.set_params(rl_steps=2).reinforce(X, y)
    assert est.calibrator_ is not before and est.calibrator_.y_.shape == before.y_.shape
    est.calibrator_ = None
    assert est.calibrate(X, y).calibrator_ is not None
    with pytest.raises(ValueError, match="'calibration' parameter"):
        est.set_params(calibration="isotonic").calibrate(X, y)


def test_too_few_validation_rows_leave_quantiles_raw():
    X, y = _noisy(60, seed=4)    # 6 validation rows < 10
    est = LMRegressor(max_time=None, max_epochs=20, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2).fit(X, y)
    assert est.calibrator_ is None and not est.fallback_   # (a fallback's are the training targets')
    np.testing.assert_allclose(est.predict_quantiles(X[:3], [0.5]),
                               np.quantile(est.sample(X[:3]), [0.5], axis=1).T)


def test_shifts_do_not_depend_on_an_offset_of_the_targets():
    """Targets such as timestamps near 1.7e9: the kept samples are float64 (float32 steps are 128 there)."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=200) * 10
    samples = y[:, None] + rng.normal(size=(200, 16)) * 10
    levels = [0.1, 0.5, 0.9]
    base = ConformalQuantiles().fit(samples, y).shifts(levels)
    for offset in (1.7e9, -3e12):
        np.testing.assert_allclose(ConformalQuantiles().fit(samples + offset, y + offset).shifts(levels),
                                   base, atol=1e-3)


def test_a_weighted_order_statistic_that_hits_its_target_exactly_is_not_one_off():
    w = np.array([2, 1, 1, 1, 1, 2, 3, 1, 2, 1, 3, 2, 3, 1, 1], dtype=float)   # in score order
    # cumulative weights (scaled to 15) reach (15 + 1) * 0.75 = 12 exactly at the 12th score; in
    # floating point the sum fell just below it and the 13th was taken
    assert calibrated_order_statistic(np.arange(1.0, 16.0), 0.75, w) == 12.0


def test_an_unweighted_order_statistic_whose_rank_is_whole_is_not_one_off():
    """(n + 1) level in floating point: 100 * 0.55 = 55.00000000000001 took the 56th score, and
    100 * 0.29 = 28.999999999999996 the 28th; weights 1e-12 from equal took the right ones."""
    scores = np.arange(1.0, 100.0)
    nearly = np.r_[np.ones(98), 1 + 1e-12]
    for level, rank in ((0.55, 55), (0.29, 29), (0.56, 56), (0.9, 90)):
        assert calibrated_order_statistic(scores, level) == rank
        assert calibrated_order_statistic(scores, level, nearly) == rank


def test_calibrate_and_reinforce_find_fits_split_and_refuse_other_data(tmp_path):
    """calibrate read the live validation_fraction (18 of its 30 rows had been trained on after
    set_params(validation_fraction=0.5)) and took any X, y: other targets moved every shift."""
    X, y = _noisy(60)
    est = LMRegressor(max_time=None, max_epochs=2, random_state=0, hidden_size=16, num_layers=1, num_heads=2,
                      n_samples=4, validation_fraction=0.2).fit(X, y)
    est.fallback_ = False   # (a fallback has no calibrator) the rows, not the model, are under test
    est.calibrate(X, y)
    before = est.calibrator_.y_.copy()
    assert before.shape == (12,)
    est.set_params(validation_fraction=0.5).calibrate(X, y)
    np.testing.assert_array_equal(est.calibrator_.y_, before)   # fit's 12 held-out rows, not 30
    for other_X, other_y, match in ((X, y + 1000.0, "targets that differ from fit's"),
                                    (X[:40], y[:40], "fit had 60 rows; these give 40 rows")):
        with pytest.raises(ValueError, match=f"calibrate needs the X, y and sample_weight of fit.*{match}"):
            est.calibrate(other_X, other_y)
        with pytest.raises(ValueError, match=f"reinforce needs the X, y and sample_weight of fit.*{match}"):
            est.set_params(rl_steps=1).reinforce(other_X, other_y)
    est.save(tmp_path / "m")
    loaded = lmreg.load(tmp_path / "m")
    loaded.fallback_ = False
    np.testing.assert_array_equal(loaded.calibrate(X, y).calibrator_.y_, before)
    with pytest.raises(ValueError, match="targets that differ from fit's"):
        loaded.calibrate(X, y * 2)


def test_calibration_past_its_deadline_draws_only_the_rows_it_needs():
    """Chunks are sized in sequences: with many samples a late calibration draws its first
    ten rows, not a chunk of 64 rows times ``n_samples``; the rows it draws sample alike."""
    X, y = _noisy(400, seed=5)
    est = LMRegressor(max_time=None, max_epochs=3, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2, n_members=1).fit(X, y)
    assert not est.fallback_ and est.calibrator_.y_.shape == (40,)
    est.set_params(n_samples=256)
    full = est.calibrate(X, y).calibrator_   # 4 rows a chunk after the first ten: all 40 rows in time
    late = est.calibrate(X, y, max_time=1e-9).calibrator_
    assert full.y_.shape == (40,) and late.y_.shape == (10,)
    np.testing.assert_array_equal(late.y_, full.y_[:10])
