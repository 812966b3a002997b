"""Multi-task fitting: one model, several datasets, targets scaled per task.

OmniPred-style: the task name stays in each row's prompt (it is just another
categorical field), so one model learns every task; what differs per task is the
target's scale. :class:`TaskScaler` standardises each task's targets robustly
(median and IQR) before the number codec sees them, and maps the model's numbers
back to each row's task afterwards. The map is affine and increasing, so medians,
means and quantiles of the samples commute with it.

Examples
--------
>>> import numpy as np
>>> X = [{"task": "a", "x": 1}, {"task": "a", "x": 2}, {"task": "b", "x": 1}, {"task": "b", "x": 2}]
>>> s = TaskScaler("task").fit(X, np.array([1.0, 3.0, 100.0, 300.0]))
>>> s.transform(X, np.array([1.0, 3.0, 100.0, 300.0])).round(3).tolist()
[-1.349, 1.349, -1.349, 1.349]
>>> s.inverse(X, np.array([0.0, 0.0, 0.0, 0.0])).tolist()
[2.0, 2.0, 200.0, 200.0]
"""

from __future__ import annotations

import numpy as np

from .frames import to_frame
from .cells import category_names

__all__ = ["TaskScaler"]


def _spread(v: np.ndarray) -> float:
    """IQR / 1.349 (the standard deviation for a normal), else the standard deviation, else 0."""
    q25, q75 = np.quantile(v, [0.25, 0.75])
    return float((q75 - q25) / 1.349 or np.std(v))


class TaskScaler:
    """Per-task robust standardisation of 1-D targets.

    Parameters
    ----------
    column : str
        Name of the field of ``X`` that holds each row's task; a nested field is
        named as the serializer flattens it (``"meta.task"``).

    Attributes
    ----------
    center_, scale_ : dict
        Task name -> median and spread (IQR / 1.349, else the standard deviation)
        of its training targets. A task whose targets do not vary (one row) takes
        the median spread of the other tasks (with none, of all targets; else 1).

    Examples
    --------
    >>> s = TaskScaler("task").fit([{"task": "a"}, {"task": "a"}, {"task": "a"}], [1.0, 2.0, 9.0])
    >>> s.center_, round(s.scale_["a"], 3)
    ({'a': 2.0}, 2.965)
    """

    def __init__(self, column: str):
        self.column = column

    def tasks(self, X) -> np.ndarray:
        """Each row's task name (a string), or a ValueError naming what is missing."""
        frame = to_frame(X, flatten_json=False)
        column = str(self.column)  # to_frame's column names are strings (a CSV header "2020" too)
        if column not in frame.columns and "." in column:   # "meta.task": a field of a dict or JSON column
            frame = to_frame(X, flatten_json=True)
        if column not in frame.columns:
            raise ValueError(f"task_column={self.column!r} is not a column of X; columns: {list(frame.columns)}.")
        tasks = frame[column]
        if tasks.isna().any():
            raise ValueError(f"task column {self.column!r} has missing values (first at row "
                             f"{int(np.flatnonzero(tasks.isna().to_numpy())[0])}).")
        return category_names(tasks)  # task 1 is task 1.0 (ints read as floats next to a NaN)

    def fit(self, X, y) -> "TaskScaler":
        y = np.asarray(y, dtype=float)
        if y.ndim == 2 and y.shape[1] == 1:   # one target as a column (df[["target"]])
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"task_column supports one target per row (a 1-D y, or one column); "
                             f"got y of shape {y.shape}.")
        tasks = self.tasks(X)
        if len(tasks) != len(y):   # else numpy's boolean-index error from the loop below
            raise ValueError(f"X has {len(tasks)} rows but y has {len(y)}.")
        self.center_, self.scale_ = {}, {}
        for t in np.unique(tasks):
            v = y[tasks == t]
            with np.errstate(over="ignore", invalid="ignore"):
                self.center_[t], self.scale_[t] = float(np.median(v)), _spread(v)
            if not (np.isfinite(self.center_[t]) and np.isfinite(self.scale_[t])):   # else NaN targets, blamed on y
                raise ValueError(f"task {t!r}: its targets ({v.min():.3g} .. {v.max():.3g}) span more than float64 "
                                 "holds (their median or spread overflows); rescale y.")
        # a task whose targets do not vary (one row, a constant) has no scale of its own; 1.0 in
        # its units would be a guess that depends on them, so it takes the other tasks' typical one
        pooled = [v for v in self.scale_.values() if v > 0]
        fill = float(np.median(pooled)) if pooled else (_spread(y) or 1.0)
        self.scale_ = {t: v if v > 0 else fill for t, v in self.scale_.items()}
        with np.errstate(over="ignore"):
            center, scale = self._params_of(tasks)
            z = (y - center) / scale
        if not np.isfinite(z).all():   # else the codec's "non-finite value" for a finite y
            t = tasks[np.flatnonzero(~np.isfinite(z))[0]]
            raise ValueError(f"task {t!r}: its targets ({y[tasks == t].min():.3g} .. {y[tasks == t].max():.3g}) lie "
                             f"too far from their median for their spread ({self.scale_[t]:.3g}): standardised, "
                             "they overflow float64; rescale y.")
        return self

    def check(self, X) -> None:
        """Raise ValueError when ``X`` lacks the task field, misses a task or names an unknown one."""
        self._params(X)

    def _params(self, X):
        tasks = self.tasks(X)
        unknown = sorted(set(tasks) - set(self.center_))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; the model was fitted on {sorted(self.center_)}.")
        return self._params_of(tasks)

    def _params_of(self, tasks):
        """Each row's centre and scale, for its task name in ``tasks``."""
        return np.array([self.center_[t] for t in tasks]), np.array([self.scale_[t] for t in tasks])

    def transform(self, X, y) -> np.ndarray:
        """Targets ``[n]`` or ``[n, 1]`` in task units -> standardised units."""
        values, center, scale = self._aligned(X, y)
        return (values - center) / scale

    def inverse(self, X, values) -> np.ndarray:
        """Standardised values ``[n, ...]`` (e.g. ``[n, n_samples]``) -> each row's task units."""
        values, center, scale = self._aligned(X, values)
        return values * scale + center

    def _aligned(self, X, values):
        """``values`` as floats, and each row's centre and scale shaped to broadcast over the
        row's other axes (samples, one target column)."""
        center, scale = self._params(X)
        values = np.asarray(values, dtype=float)
        shape = (-1,) + (1,) * (values.ndim - 1)
        return values, center.reshape(shape), scale.reshape(shape)

    def get_config(self) -> dict:
        # a label that is no string (a MultiIndex tuple, a Timestamp) as the name it is read by
        return {"column": str(self.column), "center": self.center_, "scale": self.scale_}

    @classmethod
    def from_config(cls, config: dict) -> "TaskScaler":
        s = cls(config["column"])
        s.center_, s.scale_ = dict(config["center"]), dict(config["scale"])
        return s
