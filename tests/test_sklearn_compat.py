"""LMRegressor as a scikit-learn citizen: estimator checks and composition."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from lmreg import LMRegressor

# A fit cut by a wall-clock budget depends on the machine's speed, so the checks
# (several compare two fits) run a deterministic budget: 3 epochs, no time limit.
# With max_time set, the estimator's `non_deterministic` tag says so honestly.
CHECKED = LMRegressor(max_time=None, max_epochs=3, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2)

# Every other check passes; a future failure must be listed here with its reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    # As for scikit-learn's own mini-batch estimators (SGDRegressor, MLPRegressor): a row
    # repeated k times is not the same fit as one row of weight k, since the validation
    # split and the shuffled mini-batches are drawn over rows. (A weight of 0 is the same
    # as leaving the row out: tests/test_sample_weight.py.)
    "check_sample_weight_equivalence_on_dense_data":
        "mini-batch training over a row split: repeating a row is not weighting it",
}


@parametrize_with_checks([CHECKED], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_every_parameter_is_validated_the_scikit_learn_way():
    """scikit-learn's check: for each parameter, values outside its constraint (wrong type,
    out of range, unknown option) make ``fit`` raise InvalidParameterError naming it."""
    assert set(LMRegressor._parameter_constraints) == set(LMRegressor().get_params())
    check_param_validation("LMRegressor", CHECKED)


TINY = dict(max_time=None, max_epochs=2, random_state=0, hidden_size=32, num_layers=1, num_heads=2)


def test_skip_parameter_validation_is_honoured():
    """``set_config(skip_parameter_validation=True)`` turns scikit-learn's type and range checks
    off in fit and predict, as for its own estimators; a float thread count that ``int`` reads
    is then taken. The rules between parameters still hold."""
    from sklearn import config_context
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = ["a", "b", "c"] * 5, np.arange(15.0)
    with pytest.raises(InvalidParameterError, match="'n_threads' parameter"):
        LMRegressor(**TINY, n_threads=1.0).fit(X, y)
    with config_context(skip_parameter_validation=True):
        est = LMRegressor(**TINY, n_threads=1.0).fit(X, y)
        assert np.isfinite(est.predict(["a"])).all()
        with pytest.raises(ValueError, match="hidden_size"):   # a rule between parameters
            LMRegressor(**{**TINY, "hidden_size": 130, "num_heads": 4}).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'n_threads' parameter"):   # the switch is off again
        est.predict(["a"])


def test_max_length_leaves_room_for_a_field():
    """max_length=2 was a row of <bos> <sep> alone: the model saw no input, with only a warning."""
    from sklearn.utils._param_validation import InvalidParameterError

    for bad in (1, 2):
        with pytest.raises(InvalidParameterError, match=r"'max_length' parameter .* range \[3, inf\)"):
            LMRegressor(**TINY, max_length=bad).fit(["a", "b", "c"], [1.0, 2, 3])
    assert LMRegressor(**TINY, max_length=3).fit(["a", "b", "c"], [1.0, 2, 3]).tokenizer_.max_length == 3


@pytest.mark.parametrize("hidden_size, num_heads, match", [
    (130, 4, r"hidden_size \(130\) must be divisible by num_heads \(4\)"),
    (24, 8, r"even head size .* heads of 3\. Try num_heads=4 or 6"),   # a shape error in the forward pass
    (20, 4, r"even head size .* heads of 5"),                           # transformers' own RoPE check
])
def test_heads_of_odd_size_are_refused_before_training(hidden_size, num_heads, match):
    with pytest.raises(ValueError, match=match):
        LMRegressor(**{**TINY, "hidden_size": hidden_size, "num_heads": num_heads}).fit(["a", "b", "c"], [1.0, 2, 3])


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40),
                      "note": [f"word{i % 4} and more" for i in range(40)]})
    return X, 2 * X["a"].to_numpy() + (np.arange(40) % 4)


def test_time_budget_is_declared_non_deterministic():
    assert LMRegressor(max_time=2).__sklearn_tags__().non_deterministic
    assert not LMRegressor(max_time=None).__sklearn_tags__().non_deterministic


def test_pipeline_and_column_transformer(frame):
    X, y = frame
    pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"])], remainder="passthrough",
                            verbose_feature_names_out=False).set_output(transform="pandas")
    pipe = Pipeline([("pre", pre), ("reg", LMRegressor(**TINY))]).fit(X, y)
    assert pipe.predict(X).shape == (40,)
    assert list(pipe[-1].feature_names_in_) == ["a", "b", "note"]


def test_grid_search_over_nested_parameters(frame):
    X, y = frame
    pipe = Pipeline([("reg", LMRegressor(**TINY))])
    search = GridSearchCV(pipe, {"reg__decision": ["median", "mean"], "reg__n_samples": [2, 4]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["reg__n_samples"] in (2, 4)


def test_numpy_typed_parameters_fit_save_and_refit(frame, tmp_path):
    """A grid from np.arange hands np.int64 values: transformers' strict configs and JSON refuse them."""
    from lmreg import load

    X, y = frame
    params = {**TINY, "hidden_size": np.int64(32), "num_layers": np.int64(1), "num_heads": np.int64(2),
              "dropout": np.float32(0.1), "vocab_size": np.int64(300), "max_length": np.int64(64),
              "max_field_tokens": np.int64(16), "verbose": np.bool_(False)}
    est = LMRegressor(**params).fit(X, y)
    est.save(tmp_path / "m")
    back = load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.get_params()["verbose"] is False and back.get_params()["hidden_size"] == 32
    back.fit(X, y)   # the loaded parameters still validate


def test_cross_val_score_and_clone(frame):
    X, y = frame
    scores = cross_val_score(LMRegressor(**TINY), X, y, cv=2, scoring="neg_mean_absolute_error")
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    est = LMRegressor(**TINY).fit(X, y)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params() and not hasattr(fresh, "model_")


@pytest.mark.parametrize("roundtrip", [lambda e, p: pickle.loads(pickle.dumps(e)),
                                       lambda e, p: (joblib.dump(e, p / "m.joblib"), joblib.load(p / "m.joblib"))[1]],
                         ids=["pickle", "joblib"])
def test_pickle_and_joblib_give_identical_predictions(frame, roundtrip, tmp_path):
    X, y = frame
    est = LMRegressor(**TINY).fit(X, y)
    np.testing.assert_array_equal(roundtrip(est, tmp_path).predict(X), est.predict(X))


def test_feature_names_are_checked(frame):
    X, y = frame
    est = LMRegressor(**TINY).fit(X, y)
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(X[["b", "a", "note"]])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(X.to_numpy(dtype=object))


def test_a_pyarrow_table_names_its_columns(frame):
    """A pyarrow table (``pq.read_table``) keeps its column names: a DataFrame with them predicts
    alike and without the warning for unnamed data."""
    import warnings

    pa = pytest.importorskip("pyarrow")
    X, y = frame
    est = LMRegressor(**TINY).fit(pa.Table.from_pandas(X), y)
    assert list(est.feature_names_in_) == list(X.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(est.predict(X), est.predict(pa.Table.from_pandas(X)))


def test_only_string_column_names_are_feature_names():
    """As scikit-learn: integer column names are not feature names, a mix of both is an error."""
    import warnings

    X, y = pd.DataFrame(np.random.default_rng(0).random((30, 2))), np.arange(30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no "fitted without feature names" warning either way
        est = LMRegressor(**TINY).fit(X, y)
        assert not hasattr(est, "feature_names_in_")
        np.testing.assert_array_equal(est.predict(X.to_numpy()), est.predict(X))
    # ... but the fitted integer names in another order are a reordered table, not read by position
    with pytest.raises(ValueError, match=r"columns \[1, 0\] are those of fit in another order"):
        est.predict(X[[1, 0]])
    with pytest.raises(ValueError, match=r"columns \['1', '0'\] are those of fit"):   # a CSV's string headers
        est.predict(X[[1, 0]].rename(columns=str))
    with pytest.raises(TypeError, match=r"column names mix strings and other types \(\['int', 'str'\]\)"):
        LMRegressor(**TINY).fit(X.rename(columns={0: "a"}), y)


def test_unnamed_columns_are_matched_by_position(frame):
    """An array (or a list of rows) at one end and a DataFrame at the other: matched by position,
    as in scikit-learn, rather than every column read as missing."""
    X, y = frame
    est = LMRegressor(**TINY).fit(X, y)
    rows = X.to_numpy(dtype=object)
    with pytest.warns(UserWarning, match="matched by position"):
        np.testing.assert_array_equal(est.predict(rows), est.predict(X))
    with pytest.warns(UserWarning, match="does not have valid feature names"):   # a list too, as scikit-learn
        np.testing.assert_array_equal(est.predict(rows.tolist()), est.predict(X))
    on_rows = LMRegressor(**{**TINY, "max_epochs": 8}).fit(rows, y)   # trained past the median's error
    with pytest.warns(UserWarning, match="fitted without feature names"):
        np.testing.assert_array_equal(on_rows.predict(X), on_rows.predict(rows))
    assert not on_rows.fallback_ and len(set(on_rows.predict(rows))) > 1   # not a constant: the columns were read


def test_text_columns_are_matched_by_position():
    texts = [f"{'great ' * (i % 5)}film {i % 3}" for i in range(40)]
    y = np.array([i % 5 for i in range(40)], dtype=float)
    learns = {**TINY, "max_epochs": 40}
    named = LMRegressor(**learns).fit(pd.Series(texts, name="review"), y)
    on_list = LMRegressor(**learns).fit(texts, y)
    for est in (named, on_list):
        ref = est.predict(texts[:6])
        assert len(set(ref)) > 1
        np.testing.assert_array_equal(est.predict(pd.Series(texts[:6], name="review")), ref)
        np.testing.assert_array_equal(est.predict(np.array(texts[:6])), ref)
    with pytest.raises(ValueError, match=r"columns \['body'\] are not the ones the model was fitted on"):
        named.predict(pd.Series(texts[:2], name="body"))


def test_records_may_lack_or_add_fields():
    rows = [{"size": i % 7, "kind": "ab"[i % 2], **({"extra": {"n": i % 3}} if i % 2 else {})}
            for i in range(40)]
    y = np.array([r["size"] * 2.0 for r in rows])
    est = LMRegressor(**TINY).fit(rows, y)
    bare = [{"size": 3, "kind": "a"}, {"size": 6, "kind": "b", "new": 1}]
    np.testing.assert_array_equal(
        est.predict(bare), est.predict([{"size": 3, "kind": "a", "extra": {"n": None}},
                                        {"size": 6, "kind": "b", "extra": {"n": None}}]))
    with pytest.raises(ValueError, match="none of X's fields"):
        est.predict([{"colour": "red"}])
    # a dict where a value was fitted reads as new fields "size.centimetres": said, not silent
    with pytest.warns(UserWarning, match=r"'size.centimetres' \(a dict given for 'size'\?\)"):
        est.predict([{"size": {"centimetres": 3}, "kind": "a"}])
    # rows with no field at all, alone in their batch (they were read as one text column)
    missing = est.predict([{"size": None, "kind": None, "extra": {"n": None}}])
    for empty, n in (([None], 1), ([{}], 1), ({}, 1), ((None, {}), 2), ([{"extra": {}}], 1),
                     ({"extra": {"n": None}}, 1)):   # a nested {} flattens to no field either
        np.testing.assert_array_equal(est.predict(empty), np.repeat(missing, n))


def test_records_for_a_model_fitted_on_an_array_go_by_the_names_x0_x1():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 2))
    est = LMRegressor(**{**TINY, "max_epochs": 15}).fit(A, 5 * A[:, 0])
    row = est.predict(np.array([[2.0, -1.0]]))
    assert not est.fallback_ and row != est.predict(np.array([[-1.0, 2.0]]))   # the columns' order shows
    # the batch's first record had set the columns' order: {"x1", "x0"} read x1 as x0
    np.testing.assert_array_equal(est.predict([{"x1": -1.0, "x0": 2.0}]), row)
    np.testing.assert_array_equal(est.predict([{"x0": 0.0, "x1": 0.0}, {"x1": -1.0, "x0": 2.0}])[1:], row)
    np.testing.assert_array_equal(est.predict([{"x0": 2.0}]), est.predict(np.array([[2.0, np.nan]])))
    with pytest.raises(ValueError, match=r"records have field\(s\) \['age', 'income'\], but the model was fitted on "
                                         r"unnamed columns, which records name \['x0', 'x1'\]"):
        est.predict([{"age": 1.0, "income": 2.0}])   # had been read by position, without a word


def test_a_record_with_no_fields_predicts_alone_as_in_a_batch_for_a_frame_model(frame):
    X, y = frame
    est = LMRegressor(**TINY).fit(X, y)
    in_batch = est.predict([{"a": 0.5}, {}])[1]   # every field missing
    # alone it was "X has no columns" ([{}], {}) or a wrong feature count ([None])
    for empty in ([{}], {}, [None]):
        np.testing.assert_array_equal(est.predict(empty), [in_batch])
    assert est.sample([{}], n_samples=3).shape == (1, 3)


def test_a_row_as_a_series_is_a_clear_error(frame):
    X, y = frame
    est = LMRegressor(**TINY).fit(X, y)
    with pytest.raises(ValueError, match=r"pass one row as a one-row DataFrame \(df.iloc\[\[i\]\]"):
        est.predict(X.iloc[0])


def test_predictions_do_not_depend_on_batching(frame):
    X, y = frame
    est = LMRegressor(**TINY).fit(X, y)
    full = est.predict(X)
    np.testing.assert_allclose([est.predict(X.iloc[[i]])[0] for i in (0, 7, 31)], full[[0, 7, 31]])
    np.testing.assert_allclose(est.predict(X.iloc[::-1])[::-1], full)


def test_fit_and_predict_leave_torchs_random_stream_alone(frame):
    import torch

    X, y = frame
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    est = LMRegressor(**TINY).fit(X, y)
    est.predict(X[:3])
    est.sample(X[:3])
    assert torch.equal(torch.rand(4), expected)   # fit seeds torch inside its own random state


def test_a_misspelled_record_field_warns():
    rows = [{"size": i % 7, "kind": "ab"[i % 2]} for i in range(40)]
    est = LMRegressor(**TINY).fit(rows, [r["size"] * 2.0 for r in rows])
    with pytest.warns(UserWarning, match=r"'Size' \(did you mean 'size'\?\)"):
        est.predict([{"Size": 3, "kind": "a"}])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")   # an absent field and an unrelated new one: records as usual
        est.predict([{"kind": "a", "colour": "red"}])
    # a table's columns are the fields of all its rows: one it lacks (or adds) is a structural
    # mismatch, which a DataFrame-fitted model refuses and this one read silently
    with pytest.warns(UserWarning, match=r"X lacks the fitted field\(s\) \['kind'\], read as missing in every "
                                         r"row; it has column\(s\) \['price'\] the model does not know, ignored"):
        est.predict(pd.DataFrame({"size": [3, 4], "price": [1.0, 2.0]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # every field, in another order: matched by name
        est.predict(pd.DataFrame({"kind": ["a"], "size": [3]}))
    # unnamed columns meet named fields by position: as scikit-learn, said (both were silent)
    with pytest.warns(UserWarning, match=r"fitted on records; its columns are matched by position to the fields "
                                         r"in the order fit first met them: \['size', 'kind'\]"):
        est.predict(np.array([[3, "a"]], dtype=object))
    on_frame = LMRegressor(**TINY).fit(pd.DataFrame(rows), [r["size"] * 2.0 for r in rows])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        on_frame.predict(pd.DataFrame({0: [3], 1: ["a"]}))


def test_records_flat_columns_and_a_dict_column_name_the_same_nested_fields():
    import warnings

    frame = pd.DataFrame({"meta": [{"a": i % 5, "b": "xy"[i % 2]} for i in range(40)]})
    records = frame.to_dict("records")   # fields "meta.a", "meta.b" where the frame has "meta"
    flat = pd.json_normalize(records)    # columns "meta.a", "meta.b"
    y = np.arange(40.0) % 5
    for fitted, other in ((frame, records), (records, frame), (frame, flat), (flat, frame)):
        est = LMRegressor(**TINY).fit(fitted, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # was: 'meta.a' ignored ("did you mean 'meta'?")
            np.testing.assert_allclose(est.predict(other[:6]), est.predict(fitted[:6]))   # rows 0-5 either way
    with pytest.raises(ValueError, match="none of X's fields"):
        est.predict([{"metadata": 1}])
    on_dicts = LMRegressor(**TINY).fit(frame, y)   # the fitted column "meta" holds the fields
    with pytest.warns(UserWarning, match=r"'meta.A' \(did you mean 'meta.a'\?\)"):   # not "a dict for 'meta'"
        on_dicts.predict([{"meta": {"A": 1, "b": "x"}}])
    with pytest.raises(ValueError, match="feature names should match"):   # other columns still refused
        est.predict(frame.assign(extra=1.0))
    # a dotted name is nesting only where fit's fields say so: "x" and "x.1" are two columns
    two = LMRegressor(**TINY).fit(pd.DataFrame({"x": y, "x.1": y, "b": y}), y)
    with pytest.raises(ValueError, match=r"expecting 3 features as input\. Fitted columns X lacks: \['x\.1'\]"):
        two.predict(pd.DataFrame({"x": [1.0], "b": [2.0]}))
    with pytest.raises(ValueError, match=r"expecting 3 features as input\. Columns unseen at fit: \['id'\]\.$"):
        two.predict(pd.DataFrame({"x": [1.0], "x.1": [1.0], "b": [2.0], "id": [7]}))   # the count alone was said
    with pytest.raises(ValueError, match="none of X's fields"):   # "b" is a number, not a dict column
        two.predict([{"b": {"c": 1.0}}])


def test_warnings_name_the_users_line_also_through_a_pipeline():
    from sklearn.pipeline import make_pipeline

    rows = [{"size": i % 7, "kind": "ab"[i % 2]} for i in range(40)]
    est = LMRegressor(**TINY).fit(rows, [r["size"] * 2.0 for r in rows])
    for call in (est.predict, make_pipeline(est).predict, lambda X: est.score(X * 2, [1.0, 2.0])):
        with pytest.warns(UserWarning, match="did you mean 'size'") as caught:
            call([{"Size": 3, "kind": "a"}])
        assert {w.filename for w in caught} == {__file__}   # fixed stacklevels named lmreg's (or sklearn's) lines


def test_fits_in_threads_draw_their_own_random_streams():
    """Fits in threads (joblib's threading backend) had interleaved their draws from torch's
    process-wide generator, and a predict's restore of it had reset a running fit's: each
    threaded fit came out different (predictions off by up to 2.8)."""
    import threading

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = 3 * X[:, 0] + X[:, 1]
    params = dict(TINY, max_epochs=4, dropout=0.1)
    ref = LMRegressor(**params).fit(X, y).predict(X)
    other = LMRegressor(**params).fit(X[:20], y[:20])
    fits, stop = [LMRegressor(**params) for _ in range(2)], threading.Event()

    def predict_meanwhile():
        while not stop.is_set():
            other.predict(X[:2])

    threads = [threading.Thread(target=est.fit, args=(X, y)) for est in fits]
    reader = threading.Thread(target=predict_meanwhile)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    reader.join()
    for est in fits:
        np.testing.assert_array_equal(est.predict(X), ref)


def test_a_threaded_fit_starts_its_clock_on_its_turn():
    """A fit waiting for another thread's turn had spent its max_time waiting: it fell back to the
    median without a training step, the warning blaming the data's preparation."""
    import threading
    import warnings

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = 3 * X[:, 0] + X[:, 1]
    LMRegressor(**TINY).fit(X[:20], y[:20])   # transformers' lazy imports: not the budget's
    fits = [LMRegressor(**dict(TINY, max_time=2, max_epochs=10_000, validation_fraction=0.0)) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # "used up before the first training step" among them
        threads = [threading.Thread(target=est.fit, args=(X, y)) for est in fits]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(est.fit_result_.steps > 10 and est.fit_result_.stopped == "time" and not est.fallback_ for est in fits)
