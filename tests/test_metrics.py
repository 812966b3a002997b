import numpy as np
import pytest

from lmreg.metrics import crps, crps_per_row, interval_coverage, quantile_coverage


def brute_force_crps(y, samples):
    """O(S^2) energy form: mean |X - y| - 0.5 * mean |X - X'| over all sample pairs."""
    out = []
    for yi, x in zip(y, samples):
        out.append(np.mean(np.abs(x - yi)) - 0.5 * np.mean(np.abs(x[:, None] - x[None, :])))
    return np.array(out)


def brute_force_integral(y, x, grid=200_001):
    """CRPS as the integral of (F(t) - 1{t >= y})^2 dt, on a fine grid."""
    lo, hi = min(x.min(), y) - 1, max(x.max(), y) + 1
    t = np.linspace(lo, hi, grid)
    F = np.searchsorted(np.sort(x), t, side="right") / len(x)
    return float(np.sum(((F - (t >= y)) ** 2)[:-1] * np.diff(t)))  # left Riemann sum


def test_hand_computed_cases():
    assert crps([0.0], [[0.0, 1.0]]) == pytest.approx(0.25)
    assert crps([0.5], [[0.0, 1.0]]) == pytest.approx(0.25)  # 0.5 - 0.25
    assert crps([3.0], [[1.0, 1.0, 1.0]]) == pytest.approx(2.0)  # point mass: |x - y|
    assert crps([-1.0, 2.0], [[4.0], [2.0]]) == pytest.approx(2.5)  # (5 + 0) / 2
    # Samples [0, 1, 2] vs y = 1: E|X-y| = 2/3, E|X-X'| = 8/9, CRPS = 2/3 - 4/9 = 2/9.
    assert crps([1.0], [[2.0, 0.0, 1.0]]) == pytest.approx(2 / 9)


def test_point_mass_equals_absolute_error():
    rng = np.random.default_rng(1)
    y, x = rng.normal(size=50), rng.normal(size=50)
    np.testing.assert_allclose(crps_per_row(y, np.repeat(x[:, None], 7, axis=1)), np.abs(x - y),
                               atol=1e-12)


@pytest.mark.parametrize("S", [1, 2, 5, 16, 101])
def test_matches_brute_force(S):
    rng = np.random.default_rng(S)
    y = rng.normal(size=40) * 3
    samples = rng.standard_t(3, size=(40, S)) + rng.normal(size=(40, 1))
    samples[:, 0] = np.round(samples[:, 0])  # some ties
    if S > 2:
        samples[:, 1] = samples[:, 2]
    np.testing.assert_allclose(crps_per_row(y, samples), brute_force_crps(y, samples), atol=1e-12)
    assert crps(y, samples) == pytest.approx(brute_force_crps(y, samples).mean())


def test_matches_integral_definition():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=9), 0.3
    assert crps_per_row([y], [x])[0] == pytest.approx(brute_force_integral(y, x), abs=1e-4)


def test_crps_properties():
    rng = np.random.default_rng(4)
    samples = rng.normal(size=(30, 64))
    per_row = crps_per_row(np.zeros(30), samples)
    assert per_row.shape == (30,) and np.all(per_row >= 0)
    # Invariant to sample order; shifting both y and samples changes nothing.
    np.testing.assert_allclose(crps_per_row(np.zeros(30), samples[:, ::-1]), per_row)
    np.testing.assert_allclose(crps_per_row(np.full(30, 5.0), samples + 5), per_row, atol=1e-12)
    assert isinstance(crps(np.zeros(30), samples), float)


@pytest.mark.parametrize("y, samples, match", [
    ([0.0, 1.0], [[0.0, 1.0]], "1 rows but y_true has 2"),
    ([0.0], [0.0, 1.0], "samples must be 2-D"),
    ([[0.0]], [[0.0]], "y_true must be 1-D"),
    ([], np.zeros((0, 3)), "y_true is empty"),
    ([0.0], np.zeros((1, 0)), "no columns"),
    ([np.nan], [[0.0]], "NaN"),
    ([np.inf], [[0.0]], "infinite"),
    ([0.0], [[np.nan, 1.0]], "samples contains NaN"),
    ([0.0], [[np.inf, 1.0]], "samples contains NaN or infinite"),
])
def test_crps_errors(y, samples, match):
    with pytest.raises(ValueError, match=match):
        crps(y, samples)


def test_interval_coverage():
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    assert interval_coverage(y, y - 1, y + 1) == 1.0
    assert interval_coverage(y, y, y) == 1.0  # closed interval
    assert interval_coverage(y, y + 0.5, y + 1) == 0.0
    assert interval_coverage(y, np.full(5, 1.0), np.full(5, 3.0)) == pytest.approx(0.6)
    assert interval_coverage(y, np.full(5, -np.inf), np.full(5, 2.0)) == pytest.approx(0.6)


@pytest.mark.parametrize("lower, upper, match", [
    ([0.0, 2.0], [1.0, 1.0], r"lower > upper in 1 row\(s\); first at index 1"),
    ([0.0], [1.0, 1.0], "lengths differ"),
    ([0.0, np.nan], [1.0, 1.0], "lower contains 1 NaN"),
])
def test_interval_coverage_errors(lower, upper, match):
    with pytest.raises(ValueError, match=match):
        interval_coverage([0.5, 0.5], lower, upper)


def test_quantile_coverage():
    y = np.arange(10.0)
    pred = np.column_stack([np.full(10, 1.5), np.full(10, 4.0), np.full(10, 100.0)])
    assert quantile_coverage(y, pred, [0.1, 0.5, 0.9]) == {0.1: 0.2, 0.5: 0.5, 0.9: 1.0}
    # A calibrated predictor: true quantiles of the generating distribution.
    rng = np.random.default_rng(0)
    y = rng.uniform(size=20_000)
    levels = [0.05, 0.5, 0.8]
    got = quantile_coverage(y, np.tile(levels, (len(y), 1)), np.array(levels))
    assert list(got) == levels
    assert all(abs(got[q] - q) < 0.02 for q in levels)


@pytest.mark.parametrize("pred, q, match", [
    ([[0.0, 1.0]] * 3, [0.5], "2 columns but 1 quantile levels"),
    ([[0.0]] * 2, [0.5], "2 rows but y_true has 3"),
    ([[0.0]] * 3, [1.5], r"in \[0, 1\]"),
    ([[0.0, 1.0]] * 3, [0.5, 0.5], "distinct"),
    ([[0.0]] * 3, [np.nan], "quantiles contains 1 NaN"),
])
def test_quantile_coverage_errors(pred, q, match):
    with pytest.raises(ValueError, match=match):
        quantile_coverage([1.0, 2.0, 3.0], pred, q)


def test_crps_near_the_float64_limit_is_finite_and_scales():
    """Samples near 1e308 overflowed the weighted sum to inf, and inf - inf gave NaN."""
    x = np.array([[1.5, 1.7, -1.0], [-1.0, 1.0, 0.0]])
    y = np.array([1.0, 0.0])
    small = crps_per_row(y, x)
    np.testing.assert_allclose(small, brute_force_crps(y, x))
    np.testing.assert_allclose(crps_per_row(y * 1e308, x * 1e308), small * 1e308, rtol=1e-12)
    tiny = crps_per_row(y * 1e-300, x * 1e-300)   # rows far from the limit are not rescaled
    np.testing.assert_allclose(tiny, small * 1e-300, rtol=1e-12)


def test_crps_of_samples_far_from_zero_is_that_of_the_shifted_ones():
    """E|X - X'| from the raw sorted values cancelled away its digits for rows far from 0
    compared with their spread: 6% off at an offset of 1e14, a point mass at 1e10 + 0.1 scored 1e-7."""
    rng = np.random.default_rng(0)
    x = rng.integers(-50, 50, size=(4, 2000)).astype(float)   # integers: exact at an offset of 2**50
    y = rng.integers(-50, 50, size=4).astype(float)
    base = crps_per_row(y, x)
    np.testing.assert_allclose(crps_per_row(y + 2.0**50, x + 2.0**50), base, rtol=1e-12)
    assert crps_per_row([1e10 + 0.1], [[1e10 + 0.1] * 8])[0] == 0.0
