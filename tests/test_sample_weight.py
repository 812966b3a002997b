"""``sample_weight``: checks, the weighted loss and validation error, calibration, refusals."""

import numpy as np
import pandas as pd
import pytest
import torch

from lmreg import LMRegressor, load
from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
from lmreg.batching import Encoded, collate
from lmreg.calibration import ConformalQuantiles, calibrated_order_statistic
from lmreg.codecs import make_codec
from lmreg.decoding import NumberGrammar
from lmreg.quantile_decoding import quantile_tokens
from lmreg.training.sft import target_error, validation_mae

FAST = dict(max_time=None, max_epochs=2, random_state=0, hidden_size=32, num_layers=1, num_heads=2)
X = pd.DataFrame({"item": [f"item {i % 5}" for i in range(120)], "size": np.arange(120.0) % 7})
y = 3.0 * (np.arange(120) % 5) + X["size"].to_numpy()
W = 1.0 + (np.arange(120) % 3)   # 1, 2, 3, 1, 2, 3, ...
# Long enough to beat the median on validation rows: a model that falls back has no calibrator.
TRAINED = dict(FAST, max_epochs=6)


def _trained(est):
    """What SFT did, without its timings."""
    r = est.fit_result_
    return r.steps, r.best_step, r.best_val_mae, [h["val_mae"] for h in r.history]


@pytest.fixture(scope="module")
def weighted():
    return LMRegressor(**FAST).fit(X, y, sample_weight=W)


@pytest.mark.parametrize("weights, match", [
    (np.ones(119), "119 weights but X has 120 rows"),
    (np.ones((120, 1)), "must be 1-D"),
    (np.r_[np.ones(119), -1.0], "1 negative value"),
    (np.r_[np.ones(119), np.nan], "NaN or infinite"),
    (np.zeros(120), "zero for every row"),
    (np.r_[np.zeros(119), 1.0], "leaves 1 row"),
])
def test_bad_weights_are_refused_before_training(weights, match):
    est = LMRegressor(**FAST)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y, sample_weight=weights)
    assert not hasattr(est, "model_")


def test_non_numeric_weights_are_a_type_error():
    with pytest.raises(TypeError, match="sample_weight must be numeric"):
        LMRegressor(**FAST).fit(X, y, sample_weight=["heavy"] * 120)


@pytest.mark.parametrize("weights", [np.full(120, 2.5), 2.5])   # a scalar weighs every row (as in sklearn)
def test_equal_weights_are_the_unweighted_fit(weights):
    plain = LMRegressor(**FAST).fit(X, y)
    equal = LMRegressor(**FAST).fit(X, y, sample_weight=weights)
    assert not equal._weighted
    np.testing.assert_array_equal(plain.predict(X), equal.predict(X))
    assert _trained(plain) == _trained(equal)


def test_weights_whose_sum_overflows_are_their_ratios():
    """1e307 and 2e307: their mean overflowed to inf and made every weight 0 (a zero loss,
    then numpy's "Weights sum to zero")."""
    ratios = np.where(np.arange(120) % 2, 2.0, 1.0)
    small = LMRegressor(**FAST).fit(X, y, sample_weight=ratios)
    huge = LMRegressor(**FAST).fit(X, y, sample_weight=ratios * 1e307)
    np.testing.assert_allclose(huge.predict(X), small.predict(X))


def test_a_zero_weight_is_the_row_left_out():
    keep = np.arange(120) % 6 != 0   # 100 rows: 10 held out, enough to calibrate
    w = np.where(keep, W, 0.0)
    dropped = LMRegressor(**TRAINED).fit(X, y, sample_weight=w)
    left_out = LMRegressor(**TRAINED).fit(X[keep].reset_index(drop=True), y[keep], sample_weight=W[keep])
    assert not dropped.fallback_
    np.testing.assert_array_equal(dropped.predict(X), left_out.predict(X))
    assert _trained(dropped) == _trained(left_out)
    np.testing.assert_array_equal(dropped.calibrator_.weights_, left_out.calibrator_.weights_)


def test_a_field_of_zero_weight_records_alone_is_no_field():
    # the records had become a DataFrame with the dropped record's fields as all-missing columns
    rng = np.random.default_rng(0)
    recs = [{"num": float(v), "c": f"k{i % 3}"} for i, v in enumerate(rng.normal(size=60))]
    ys = np.array([r["num"] * 2 for r in recs])
    kw = dict(hidden_size=16, num_layers=1, num_heads=2, max_time=None, max_epochs=2, random_state=0)
    left_out = LMRegressor(**kw).fit(recs, ys)
    extra = recs + [{"num": 0.0, "c": "k0", "zz": 5.0, "meta": {"c": 1}}]
    dropped = LMRegressor(**kw).fit(extra, np.r_[ys, 0.0], sample_weight=np.r_[np.ones(60), 0.0])
    assert dropped.serializer_.kinds_ == left_out.serializer_.kinds_ == {"num": "num", "c": "cat"}
    assert dropped.n_features_in_ == left_out.n_features_in_ == 2
    np.testing.assert_array_equal(dropped.predict(recs[:20]), left_out.predict(recs[:20]))


@pytest.mark.parametrize("heavy, low", [(3.0, True), (1 / 3, False)])
def test_weights_move_the_predicted_median(heavy, low):
    """Identical rows, targets 100 or 300: the weighted cross-entropy alone (no validation
    rows) decides on which side of 200 the predicted median falls."""
    Xs, ys = ["the same house"] * 40, np.array([100.0, 300.0] * 20)
    est = LMRegressor(max_time=None, max_epochs=30, validation_fraction=0.0, hidden_size=32, num_layers=1,
                      num_heads=2, random_state=0)
    pred = est.fit(Xs, ys, sample_weight=[heavy, 1.0] * 20).predict(Xs[:1])[0]
    assert (pred < 200) == low, pred
    assert est.baseline_ == (100.0 if low else 300.0)   # the weighted median of the fallback


def test_weighted_validation_error_is_the_weighted_mean():
    torch.manual_seed(0)
    cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    yv = np.array([2.0, 8.0, 5.0, 1.0])
    codec = make_codec("digits", n_digits=2).fit(yv)
    grammar = NumberGrammar(codec.grammar())
    ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4]), np.array([2, 9, 3]), np.array([4, 4])]
    enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids], [np.zeros(len(r), np.int8) for r in ids])
    rows, w = np.array([0, 1, 3]), np.array([1.0, 0.0, 4.0, 2.0])
    got = validation_mae(model, enc, rows, grammar, codec, yv, pad_id=0, device="cpu", level=0.5, weights=w)
    pred = codec.decode(quantile_tokens(model, enc.subset(rows), grammar, 0, [0.5])[:, 0])
    err = np.abs(pred - yv[rows])
    assert got == pytest.approx((1.0 * err[0] + 0.0 * err[1] + 2.0 * err[2]) / 3.0)
    # several targets: each row's mean scaled error, weighted over rows
    p2, y2 = np.array([[1.0, 10.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [1.0, 20.0]])
    assert target_error(p2, y2, np.array([1.0, 10.0]), np.array([1.0, 3.0])) == pytest.approx((1.0 + 3 * 1.5) / 4)


def test_weighted_conformal_shift_equal_weights_and_by_hand():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(37, 3))
    for level in (0.05, 0.1, 0.3, 0.5, 0.77, 0.9, 0.99):
        np.testing.assert_array_equal(calibrated_order_statistic(scores, level),
                                      calibrated_order_statistic(scores, level, np.full(37, 0.3)))
    s = np.array([4.0, 1.0, 3.0, 2.0])        # sorted: 1 2 3 4; weights follow their rows
    w = np.array([1.0, 1.0, 1.0, 5.0])        # the score 2 weighs 5: cumulative (x 4/8) .5 3 3.5 4
    assert calibrated_order_statistic(s, 0.5, w) == 2.0    # (n + 1) 0.5 = 2.5: first to reach it
    assert calibrated_order_statistic(s, 0.1, w) == 1.0    # 0.5: largest at most 0.5
    assert calibrated_order_statistic(s, 0.7, w) == 3.0    # 3.5: reached at the score 3
    cal = ConformalQuantiles().fit(np.zeros((4, 2)), s, w)
    assert cal.shifts([0.1, 0.5, 0.7]).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="calibration weights"):
        ConformalQuantiles().fit(np.zeros((4, 2)), s, w[:3])


def test_calibrate_needs_the_weights_of_fit():
    weighted = LMRegressor(**TRAINED).fit(X, y, sample_weight=W)
    assert not weighted.fallback_
    shifts = weighted.calibrator_.shifts([0.1, 0.9])
    again = weighted.calibrate(X, y, sample_weight=W).calibrator_
    np.testing.assert_array_equal(again.shifts([0.1, 0.9]), shifts)
    with pytest.raises(ValueError, match="fitted with it"):
        weighted.calibrate(X, y)
    with pytest.raises(ValueError, match="fit had 120 rows of positive weight; these give weights that differ from fit's"):
        weighted.calibrate(X, y, sample_weight=W[::-1])   # other positive weights were taken silently
    with pytest.raises(ValueError, match="fitted without it"):
        LMRegressor(**FAST).fit(X, y).calibrate(X, y, sample_weight=W)


def test_stages_need_the_weights_that_dropped_rows_even_if_the_rest_are_equal():
    """Zeros drop rows, so the split depends on the weights even where the other weights are
    equal: calibrating without them would re-split all rows, trained ones among the held out."""
    w = np.r_[np.zeros(3), np.ones(117)]
    est = LMRegressor(**FAST).fit(X, y, sample_weight=w)
    assert est._weighted
    with pytest.raises(ValueError, match="calibrate needs the sample_weight of fit"):
        est.calibrate(X, y)
    with pytest.raises(ValueError, match="reinforce needs the sample_weight of fit"):
        est.set_params(rl_steps=1).reinforce(X, y)
    est.calibrate(X, y, sample_weight=w)


def test_rl_with_weights_checks_weighted_means(weighted):
    est = LMRegressor(rl_steps=3, **FAST).fit(X, y, sample_weight=W)
    result = est.rl_result_
    assert result.steps == 3 and np.isfinite(result.val_before["error"])
    # reinforce needs the weights of fit, and a keep test with a weighted form
    with pytest.raises(ValueError, match="reinforce needs the sample_weight of fit: this model was fitted with it"):
        weighted.set_params(rl_steps=2).reinforce(X, y)
    with pytest.raises(ValueError, match="fitted without it"):
        LMRegressor(**FAST).fit(X, y).set_params(rl_steps=2).reinforce(X, y, sample_weight=W)
    with pytest.raises(ValueError, match="keep_test='signed_rank' has no weighted form"):
        LMRegressor(rl_steps=2, rl_config={"keep_alpha": 0.1}, **FAST).fit(X, y, sample_weight=W)
    weighted.set_params(rl_steps=2, rl_config={"keep_alpha": 0.5, "keep_test": "permutation"})
    weighted.reinforce(X, y, sample_weight=W)
    assert weighted.rl_result_.steps == 2
    weighted.set_params(rl_steps=0, rl_config=None)


def test_rl_keep_check_compares_weighted_means(monkeypatch):
    """Two judging rows: RL halves the error of the first and triples that of the second.
    Unweighted the mean error rises (reverted); with the first row ten times as heavy it falls (kept)."""
    from lmreg.training import rl_stage
    from lmreg.training.rl_config import RLResult

    def fake_rl(model, *args, on_check=None, **kw):   # "RL": moves the one weight from 0 to 9
        model.weight.data.fill_(9.0)
        return RLResult(steps=1)

    monkeypatch.setattr(rl_stage, "train_rl", fake_rl)
    for check_weights, kept in ((None, False), (np.array([10.0, 1.0]), True)):
        model = torch.nn.Linear(1, 1)
        model.weight.data.fill_(0.0)
        score = lambda: (np.array([0.5, 3.0] if model.weight.item() else [1.0, 1.0]), 0.0, None)  # noqa: E731
        result, _ = rl_stage.run_stage(model, (), score, None, check_weights=check_weights)
        assert result.kept is kept
        assert result.val_before["error"] == pytest.approx(1.0)
        assert result.val_after["error"] == pytest.approx(1.75 if check_weights is None else 8.0 / 11)
        assert model.weight.item() == (9.0 if kept else 0.0)


def test_weighted_rl_losses_are_weighted_means_of_rows():
    """Each RL loss with row weights equals the weighted mean of its single-row losses."""
    from lmreg.training import tree_rl as T
    from lmreg.training.rl import policy_loss, reward_function

    torch.manual_seed(0)
    cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    reference = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    yv = np.array([2.0, 8.0, 5.0, 9.0])
    codec = make_codec("digits", n_digits=2).fit(yv)
    grammar = NumberGrammar(codec.grammar())
    ids = [np.array([2, 5, 3]), np.array([2, 7, 4]), np.array([2, 9, 3]), np.array([4, 4, 1])]  # one length
    enc = Encoded(ids, [np.zeros(3, np.float32)] * 4, [np.zeros(3, np.int8)] * 4)
    rows, w = np.arange(4), torch.tensor([0.5, 2.0, 1.0, 0.5])
    reward = reward_function("abs", scale=3.0)

    def median(rows, weights=None):
        return T.median_loss(model, reference, grammar, collate(enc, rows, 0), codec, reward, yv[rows], 3.0,
                             kl_coef=0.1, sft_coef=0.2, row_weights=weights)[0]

    def tree(rows, weights=None):
        targets = T.tree_rewards(codec, reward, yv[rows], "cpu")
        return T.tree_loss(model, reference, grammar, collate(enc, rows, 0), *targets, kl_coef=0.1,
                           sft_coef=0.2, row_weights=weights)[0]

    for loss in (median, tree):
        singles = torch.stack([loss(np.array([i])) for i in rows])
        assert loss(rows, w).item() == pytest.approx((w * singles).mean().item(), rel=1e-5)
        assert loss(rows).item() == pytest.approx(singles.mean().item(), rel=1e-5)
    lp = torch.log(torch.rand(4, 2))
    adv, old = torch.tensor([1.0, -2.0, 0.5, 3.0]), lp.sum(1) - 0.1
    singles = torch.stack([policy_loss(lp[i:i + 1], old[i:i + 1], lp[i:i + 1] - 0.3, adv[i:i + 1], 0.2, 0.1)
                           for i in range(4)])
    assert policy_loss(lp, old, lp - 0.3, adv, 0.2, 0.1, w).item() == pytest.approx((w * singles).mean().item())


@pytest.mark.parametrize("heavy, low", [(3.0, True), (1 / 3, False)])
def test_weighted_rl_moves_the_median_to_the_heavy_side(heavy, low):
    """An SFT model that has not yet decided, identical prompts, targets 100 or 300: RL on the
    exact median alone (``train_rl`` with weights) takes it to the heavier side of 200."""
    from lmreg.training.rl import train_rl
    from lmreg.training.rl_config import RLConfig

    Xs, ys = ["the same house"] * 40, np.array([100.0, 300.0] * 20)
    est = LMRegressor(max_time=None, max_epochs=1, validation_fraction=0.0, hidden_size=32, num_layers=1,
                      num_heads=2, random_state=0).fit(Xs, ys)
    enc, weights = est._encode(Xs), np.array([heavy, 1.0] * 20)
    config = RLConfig(variant="median", reward="abs", learning_rate=5e-3, kl_coef=0.0)
    train_rl(est.model_, enc, ys, est.codec_, est.grammar_, np.arange(40), est.tokenizer_.pad_id, config,
             max_steps=60, seed=0, weights=weights)
    pred = est.predict(Xs[:1])[0]
    assert (pred < 200) == low, pred


def test_save_load_keeps_the_weighted_calibration(weighted, tmp_path):
    weighted.save(tmp_path / "m")
    back = load(tmp_path / "m")
    np.testing.assert_array_equal(back.calibrator_.weights_, weighted.calibrator_.weights_)
    np.testing.assert_array_equal(back.predict_quantiles(X[:5]), weighted.predict_quantiles(X[:5]))
    assert back._weighted
    with pytest.raises(ValueError, match="fitted with it"):
        back.set_params(rl_steps=2).reinforce(X, y)
    back.reinforce(X, y, sample_weight=W)   # the weights of fit: RL runs on the loaded model
    assert back.rl_result_.steps == 2


def test_members_and_score_take_weights():
    est = LMRegressor(n_members=2, **FAST).fit(X, y, sample_weight=W)
    assert len(est.members_) == 2
    assert np.isfinite(est.score(X, y, sample_weight=W))


def test_a_weighted_fallback_predicts_the_weighted_mean_and_quantiles(tmp_path):
    """The fallback's mean and quantiles came from a weighted resample: 0.52 where the weighted
    mean of the training targets was 1.41 (the unweighted one, 0.76, was closer)."""
    rng = np.random.default_rng(0)
    Xc, yc, wc = ["a house"] * 60, rng.normal(size=60) * 10, rng.uniform(0.1, 5, size=60)
    est = LMRegressor(**dict(FAST, max_epochs=1), decision="mean").fit(Xc, yc, sample_weight=wc)
    est.fallback_ = True   # the fallback's constants are under test, not whether it beat them
    train = est._split(60)[0]
    mean = np.average(yc[train], weights=wc[train])
    q9 = np.quantile(yc[train], 0.9, weights=wc[train], method="inverted_cdf")
    np.testing.assert_allclose(est.predict(Xc[:2]), [mean, mean])
    np.testing.assert_allclose(est.set_params(decision=0.9).predict(Xc[:1]), [q9])
    np.testing.assert_allclose(est.predict_quantiles(Xc[:1], [0.9]), [[q9]])
    est.save(tmp_path / "m")
    np.testing.assert_allclose(load(tmp_path / "m").set_params(decision="mean").predict(Xc[:1]), [mean])


def test_skewed_weights_on_a_varied_target_do_not_read_as_a_constant():
    """The constant-target rule read the weighted resample, which skewed weights make one value:
    a fit of 6 varied rows (no validation rows) predicted a constant."""
    yv = np.array([1.377, 0.2, -1.1, 2.4, 0.7, -0.5])
    for seed in range(3):
        est = LMRegressor(**dict(FAST, max_epochs=1, random_state=seed)).fit(
            [f"r {i}" for i in range(6)], yv, sample_weight=[100, 1, 1, 1, 1, 1])
        assert np.ptp(est._train_targets) == 0 and not est.fallback_   # the premise, and the network used
