"""Multi-task fitting: one model on several datasets, targets scaled per task."""

import warnings

import numpy as np
import pytest

import lmreg
from lmreg import LMRegressor
from lmreg.tasks import TaskScaler


def _two_tasks(spelled_numbers, n=300):
    """The same spelled numbers as two tasks whose targets differ by scale and offset."""
    X, y = spelled_numbers
    rows, targets = [], []
    for i in range(n):
        task = "small" if i % 2 else "large"
        rows.append({"task": task, "text": X[i]})
        targets.append(y[i] / 100.0 if task == "small" else 5e4 + 100.0 * y[i])
    return rows, np.array(targets)


def test_scaler_round_trip_and_errors():
    X = [{"task": t} for t in "aabbb"]
    y = np.array([1.0, 3.0, 10.0, 20.0, 40.0])
    s = TaskScaler("task").fit(X, y)
    np.testing.assert_allclose(s.inverse(X, s.transform(X, y)), y)
    samples = np.stack([s.transform(X, y)] * 3, axis=1)            # [n, S]
    np.testing.assert_allclose(s.inverse(X, samples), np.stack([y] * 3, axis=1))
    with pytest.raises(ValueError, match="unknown task"):
        s.transform([{"task": "c"}], [1.0])
    with pytest.raises(ValueError, match="is not a column"):
        TaskScaler("name").fit(X, y)
    with pytest.raises(ValueError, match="missing values"):
        TaskScaler("task").fit([{"task": "a"}, {"task": None}], [1.0, 2.0])
    with pytest.raises(ValueError, match=f"X has {len(X)} rows but y has {len(y) - 1}"):   # numpy's IndexError
        TaskScaler("task").fit(X, y[:-1])
    # a spread past float64: a NaN centre, another task's scale, and an error blaming y's NaN
    wide = np.array([-1e308, 1e308, 0.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"task 'a': its targets \(-1e\+308 .. 1e\+308\) span more than float64"):
        TaskScaler("task").fit(X, wide)
    # finite median and spread, but a target that standardised overflows: the codec had said
    # "got 1 non-finite value(s)" of a y whose every value is finite
    with pytest.raises(ValueError, match=r"task 'a': its targets \(1 .. 1e\+308\) lie too far from their median"):
        TaskScaler("task").fit([{"task": t} for t in "aaaaab"], np.array([1.0, 1.1, 1.2, 1.3, 1e308, 5.0]))


def test_integer_task_ids_and_column_names():
    """Task 1 given as 1.0 at predict is still task 1; an int task_column names the CSV header "2020"."""
    import pandas as pd

    X = pd.DataFrame({"2020": [1, 1, 2, 2], "x": [0.0, 1.0, 2.0, 3.0]})
    y = np.array([1.0, 3.0, 100.0, 300.0])
    s = TaskScaler(2020).fit(X, y)
    later = pd.DataFrame({"2020": [1.0, 2.0], "x": [0.0, 0.0]})
    np.testing.assert_allclose(s.inverse(later, s.transform(later, [2.0, 200.0])), [2.0, 200.0])


def test_one_model_learns_two_tasks_on_their_own_scales(spelled_numbers, tmp_path):
    X, y = _two_tasks(spelled_numbers)
    est = LMRegressor(task_column="task", max_time=None, max_epochs=40, random_state=0, n_samples=8)
    est.fit(X[:250], y[:250])
    pred, y_test = est.predict(X[250:]), y[250:]
    task_train = np.array([r["task"] for r in X[:250]])
    task_test = np.array([r["task"] for r in X[250:]])
    # Each task's predictions land on its own scale ...
    assert pred[task_test == "small"].max() < 20 and pred[task_test == "large"].min() > 4e4
    # ... and track its targets far better than that task's training mean does.
    for task in ("small", "large"):
        m = task_test == task
        mean_mae = np.abs(y_test[m] - y[:250][task_train == task].mean()).mean()
        assert np.abs(pred[m] - y_test[m]).mean() < 0.5 * mean_mae
    q = est.predict_quantiles(X[250:260], [0.1, 0.9])
    assert (q[:, 0] <= q[:, 1]).all()
    est.save(tmp_path / "m")
    np.testing.assert_allclose(lmreg.load(tmp_path / "m").predict(X[250:260]), est.predict(X[250:260]))
    with warnings.catch_warnings():   # refused before encoding: no unknown-category warning first
        warnings.simplefilter("error")
        for call in (est.predict, est.sample, lambda X: est.predict_quantiles(X, [0.5])):
            with pytest.raises(ValueError, match="unknown task"):
                call([{"task": "other", "text": "one"}])


def test_integer_task_ids_are_categories_in_the_prompt():
    """Task ids 1, 2 are read as names (one category token each), and 2.0 at predict is task 2."""
    import pandas as pd

    X = pd.DataFrame({"task": [1, 1, 2, 2] * 5, "x": np.arange(20.0)})
    y = np.where(X["task"] == 1, 1.0, 100.0) + X["x"].to_numpy()
    est = LMRegressor(task_column="task", max_time=None, max_epochs=1, random_state=0, n_samples=2).fit(X, y)
    assert est.serializer_.kinds_ == {"task": "cat", "x": "num"}
    later = pd.DataFrame({"task": [2.0, 1.0], "x": [0.0, 0.0]})
    task = est.serializer_.transform(later).columns[0]
    assert task.kind == "cat" and task.values.tolist() == ["2", "1"]
    ids, _, _ = est.tokenizer_.encode(est.serializer_.transform(later))
    fitted, _, _ = est.tokenizer_.encode(est.serializer_.transform(X.iloc[[2, 0]]))
    for a, b in zip(ids, fitted):            # the same tokens as the fitted ints ...
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(ids[0], ids[1])  # ... and the two tasks' tokens differ


def test_categorical_and_huge_task_ids():
    """A pandas category of float ids names its tasks as a plain column of them does, and ids
    past int64 stay apart."""
    import pandas as pd

    y = np.array([1.0, 3.0, 100.0, 300.0])
    s = TaskScaler("task").fit(pd.DataFrame({"task": pd.Categorical([1.0, 1.0, 2.0, 2.0])}), y)
    assert sorted(s.center_) == ["1", "2"]
    np.testing.assert_allclose(s.transform(pd.DataFrame({"task": [2.0, 1.0]}), [200.0, 2.0]), [0.0, 0.0])
    huge = TaskScaler("task").fit(pd.DataFrame({"task": [1e20, 1e20, 2e20, 2e20]}), y)
    assert huge.center_ == {"100000000000000000000": 2.0, "200000000000000000000": 200.0}


def test_one_target_as_a_column_with_task_column():
    """y as df[["target"]] (shape [n, 1]) is one target per row: the scaler broadcast its
    per-row centres against it into an [n, n] matrix, then refused it outright."""
    X = [{"task": t, "x": float(i)} for i, t in enumerate("ab" * 20)]
    y = np.where(np.arange(40) % 2, 100.0, 1.0) * np.arange(40.0)
    s = TaskScaler("task").fit(X, y[:, None])
    assert s.center_ == TaskScaler("task").fit(X, y).center_
    assert s.transform(X, y[:, None]).shape == (40, 1)
    np.testing.assert_allclose(s.inverse(X, s.transform(X, y[:, None])), y[:, None])
    est = LMRegressor(task_column="task", max_time=None, max_epochs=2, random_state=0).fit(X, y[:, None])
    pred = est.predict(X)
    assert pred.shape == (40, 1) and est.predict_quantiles(X[:4], [0.5]).shape[0] == 4
    # each task's numbers on its own scale: task a's targets are 0..38, task b's 100..3900
    assert pred[0::2].max() <= 38 + 1e-6 and pred[1::2].min() >= 100 - 1e-6
    with pytest.raises(ValueError, match=r"one target per row .* got y of shape \(40, 2\)"):
        LMRegressor(task_column="task").fit(X, np.c_[y, y])


def test_a_task_without_spread_takes_the_other_tasks_typical_one():
    """One row (or a constant) has no spread: 1.0 in its own units was a guess that depended on
    them (a z of 0.5 was 0.5 of a task whose targets are 1e-6 apart, and of one 1e6 apart)."""
    X = [{"task": t} for t in ["a"] * 4 + ["b"] * 4 + ["one", "flat", "flat"]]
    y = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 30.0, 50.0, 70.0, 5e6, 7.0, 7.0])
    s = TaskScaler("task").fit(X, y)
    spread = {t: (np.quantile(v, 0.75) - np.quantile(v, 0.25)) / 1.349 for t, v in (("a", y[:4]), ("b", y[4:8]))}
    assert s.scale_["a"] == pytest.approx(spread["a"]) and s.scale_["b"] == pytest.approx(spread["b"])
    assert s.scale_["one"] == s.scale_["flat"] == pytest.approx(np.median([spread["a"], spread["b"]]))
    assert s.center_["one"] == 5e6 and s.center_["flat"] == 7.0
    np.testing.assert_allclose(s.inverse(X, s.transform(X, y)), y)
    # every task constant: the spread of all targets; one value in all: 1
    flat = TaskScaler("task").fit([{"task": t} for t in "aabb"], np.array([1.0, 1.0, 5.0, 5.0]))
    assert flat.scale_ == {"a": pytest.approx(4.0 / 1.349), "b": pytest.approx(4.0 / 1.349)}   # IQR 5 - 1
    assert TaskScaler("task").fit([{"task": "a"}], [3.0]).scale_ == {"a": 1.0}


def test_a_nested_task_field_is_named_as_flattened():
    """task_column="meta.task" finds the field in a DataFrame's dict column, as in records."""
    import pandas as pd

    rows = [{"meta": {"task": "ab"[i % 2], "k": i % 3}, "x": float(i)} for i in range(24)]
    y = np.where(np.arange(24) % 2, 1000.0, 1.0) + np.arange(24.0)
    s = TaskScaler("meta.task").fit(pd.DataFrame(rows), y)
    assert s.center_ == TaskScaler("meta.task").fit(rows, y).center_ and set(s.center_) == {"a", "b"}
    with pytest.raises(ValueError, match=r"task_column='meta.nope' is not a column of X"):
        TaskScaler("meta.nope").fit(pd.DataFrame(rows), y)
    est = LMRegressor(task_column="meta.task", max_time=None, max_epochs=1, random_state=0, n_samples=2)
    est.fit(pd.DataFrame(rows), y)
    assert est.serializer_.kinds_["meta.task"] == "cat" and set(est.tasks_.center_) == {"a", "b"}
    assert est.predict(pd.DataFrame(rows[:2])).shape == (2,)


def test_a_task_label_that_is_no_string_saves_as_the_name_it_is_read_by(tmp_path):
    import pandas as pd
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    X = pd.DataFrame({("f", "a"): rng.normal(size=24), ("meta", "task"): ["A", "B"] * 12,
                      pd.Timestamp("2020-01-01"): ["u", "v", "w"] * 8})
    y = X[("f", "a")].to_numpy() + 10 * (np.arange(24) % 2)
    tiny = dict(max_time=None, max_epochs=1, random_state=0, n_samples=2, hidden_size=16, num_layers=1, num_heads=2)
    for label in (("meta", "task"), pd.Timestamp("2020-01-01")):
        est = LMRegressor(task_column=label, **tiny).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # a Timestamp had warned "load as None", then failed as JSON
            est.save(tmp_path / "m")
        back = lmreg.load(tmp_path / "m")   # a tuple had come back a list, which names no column
        assert back.task_column == str(label)
        np.testing.assert_array_equal(back.predict(X[:4]), est.predict(X[:4]))
        assert clone(back).fit(X, y).tasks_.center_ == est.tasks_.center_


@pytest.mark.parametrize("weighted", [False, True])
def test_a_model_that_fell_back_predicts_each_row_from_its_own_tasks_targets(weighted, tmp_path):
    # pooled in standardised units, task a's mean had been 65 (its targets 0..39) and task b's
    # 10% quantile -14.6 (its targets >= 0): another task's shape in this task's scale
    X = [{"task": t, "x": "same"} for t in ["a"] * 40 + ["b"] * 40]
    y = np.r_[np.arange(40.0), np.zeros(30), np.arange(1, 11) * 100.0]
    w = np.r_[np.ones(40), np.arange(40) % 3 + 1.0] if weighted else None
    est = LMRegressor(max_time=None, max_epochs=1, hidden_size=16, num_heads=2, num_layers=1, vocab_size=100,
                      random_state=0, task_column="task", decision="mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, sample_weight=w)
    assert est.fallback_
    train = est._split(len(y))[0]
    new = [{"task": "a", "x": "same"}, {"task": "b", "x": "same"}]
    by_task = [train[np.array([X[i]["task"] for i in train]) == t] for t in "ab"]
    ww = np.ones(len(y)) if w is None else w
    np.testing.assert_allclose(est.predict(new), [np.average(y[r], weights=ww[r]) for r in by_task])
    q = est.predict_quantiles(new, [0.1, 0.5, 0.9])
    for row, r in zip(q, by_task):
        assert y[r].min() <= row.min() and row.max() <= y[r].max()
    samples = est.sample(new, n_samples=200, random_state=1)
    assert set(samples[0]) <= set(y[by_task[0]]) and set(samples[1]) <= set(y[by_task[1]])
    assert np.array_equal(est.sample(new[1:], n_samples=200, random_state=1)[0], samples[1])   # any batch
    est.save(tmp_path / "m")
    loaded = lmreg.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(new), est.predict(new))
    assert np.array_equal(loaded.predict_quantiles(new, [0.1, 0.9]), est.predict_quantiles(new, [0.1, 0.9]))
