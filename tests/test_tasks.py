"""Multi-task fitting: one model on several datasets, targets scaled per task."""

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
    with pytest.raises(ValueError, match="unknown task"):
        est.predict([{"task": "other", "text": "one"}])


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
