"""A fitted regressor as a learned reward model in TRL's signature (:func:`model_reward`,
also importable from :mod:`lmreg.training.rewards`)."""

from __future__ import annotations

import inspect

import numpy as np

from .._warnings import warn_user
from .trl_rewards import _text

__all__ = ["ModelReward", "model_reward"]


def _keywords(fn):
    """``(takes, taken)``: the keyword arguments ``make_row`` names after its first two
    (None when it takes any, ``**kwargs``, or has no signature to read), and the names of
    those two, which the prompt and completion fill (a column of that name is not passed)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None, {"prompt", "completion"}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    taken = {p.name for p in positional[:2]}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None, taken
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - taken, taken


def model_reward(estimator, make_row=None, transform=None):
    """A fitted :class:`~lmreg.LMRegressor` as a learned reward model in TRL's signature.

    RL engineers train lmreg on (prompt, completion) -> score data, then hand the
    returned function to a TRL trainer as ``reward_funcs``: each completion's reward is
    the estimator's prediction for its row.

    Parameters
    ----------
    estimator : fitted LMRegressor
        Fitted on one target per row.
    make_row : callable, optional
        ``make_row(prompt, completion, **columns) -> row`` (a dict, a string, a list of
        values or a one-row DataFrame: one row as lmreg reads it); ``columns`` are the
        dataset columns TRL passes (lists or 1-D arrays, one value per completion): all
        of them when it takes ``**columns``, else those it names (TRL also passes
        ``completion_ids``, which ``make_row(p, c)`` would not take).
        Default: the record ``{"prompt": prompt, "completion": completion}`` plus
        the columns that are fields the model was fitted on (a model fitted on records
        or a DataFrame). Chat-format prompts and completions (lists of messages) are
        reduced to their last message's text.
    transform : callable, optional
        Applied to the predictions (e.g. a standardisation); must return one value
        per completion.

    Returns
    -------
    ModelReward
        ``f(prompts, completions, **kwargs) -> list[float]``, named
        ``lmreg_model_reward``; it pickles when the estimator, ``make_row`` and
        ``transform`` do.

    Examples
    --------
    >>> from lmreg import LMRegressor
    >>> rows = [{"prompt": "rate", "completion": "good " * k} for k in range(1, 21)]
    >>> est = LMRegressor(max_time=3, random_state=0).fit(rows, list(range(1, 21)))
    >>> reward = model_reward(est)
    >>> scores = reward(prompts=["rate", "rate"], completions=["good", "good good good"])
    >>> len(scores), all(isinstance(s, float) for s in scores)
    (2, True)
    >>> reward(prompts=["rate"], completions=["good", "good good"])
    Traceback (most recent call last):
    ...
    ValueError: 1 prompts and 2 completions; expected one of each per completion.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "model_")
    if np.size(estimator.baseline_) > 1:   # a y of shape (n, 1) is one target
        raise ValueError(f"model_reward needs a model fitted on one target per row; this one was fitted "
                         f"on {np.size(estimator.baseline_)} targets per row.")
    kind = getattr(estimator, "_input_kind", None)   # None: saved before it was kept
    if make_row is None and kind not in (None, "records", "frame"):
        raise ValueError("the default make_row writes records {'prompt': ..., 'completion': ...}, but this "
                         "model was fitted on rows without field names (strings, arrays); pass make_row= "
                         "to build its rows, e.g. lambda p, c, **kw: p + ' ' + c.")
    if estimator.fallback_:
        warn_user("this model fell back to the training median (fallback_=True): it gives every completion "
                  "the same reward, so GRPO's advantages are all 0 and RL learns nothing from it; fit it "
                  "longer or on more rows.")
    return ModelReward(estimator, make_row, transform)


class _DefaultRow:
    """The default ``make_row``: the record ``{"prompt": ..., "completion": ...}`` plus the
    dataset columns that are fields the model was fitted on (a class, not a closure, so
    that a :class:`ModelReward` pickles)."""

    def __init__(self, fields):
        self.fields = set(fields)

    def __call__(self, prompt, completion, **columns):
        return {**{k: v for k, v in columns.items() if k in self.fields},
                "prompt": _text(prompt), "completion": _text(completion)}


class ModelReward:
    """The reward :func:`model_reward` returns (which checks its arguments): a plain object
    rather than a closure, so it pickles (process pools, spawned workers) when the
    estimator, ``make_row`` and ``transform`` do.

    >>> import pickle
    >>> from lmreg import LMRegressor
    >>> rows = [{"prompt": "rate", "completion": "good " * k} for k in range(1, 21)]
    >>> est = LMRegressor(max_time=None, max_epochs=1, hidden_size=16, num_layers=1, num_heads=2,
    ...                   validation_fraction=0.0, random_state=0).fit(rows, list(range(1, 21)))
    >>> reward = model_reward(est)
    >>> again, kw = pickle.loads(pickle.dumps(reward)), dict(prompts=["rate"], completions=["good"])
    >>> again.__name__, again(**kw) == reward(**kw)
    ('lmreg_model_reward', True)
    """

    __name__ = "lmreg_model_reward"

    def __init__(self, estimator, make_row=None, transform=None):
        self.estimator, self.transform = estimator, transform
        self.make_row = make_row or _DefaultRow(getattr(estimator, "_input_columns", None) or ())
        self._takes, self._taken = _keywords(self.make_row)

    def __repr__(self) -> str:
        return "<TRL reward lmreg_model_reward>"

    def __call__(self, prompts, completions, **kwargs):
        import pandas as pd

        n = len(completions)
        columns = {k: v for k, v in kwargs.items()
                   if isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim == 1)}
        short = {k: len(v) for k, v in columns.items() if len(v) != n}
        if len(prompts) != n or short:
            extra = "".join(f", {m} values of {k!r}" for k, m in short.items())
            raise ValueError(f"{len(prompts)} prompts and {n} completions{extra}; expected one of each per "
                             "completion.")
        if n == 0:
            return []
        passed = [k for k in columns if k not in self._taken and (self._takes is None or k in self._takes)]
        per_row = [{k: columns[k][i] for k in passed} for i in range(n)]
        rows = [self.make_row(p, c, **cols) for p, c, cols in zip(prompts, completions, per_row)]
        if any(isinstance(r, pd.DataFrame) for r in rows):   # one-row frames: one table of rows
            if not all(isinstance(r, pd.DataFrame) and len(r) == 1 for r in rows):
                raise ValueError("make_row returned a DataFrame that is not one row, or DataFrames for "
                                 "some completions only; return one row per completion.")
            rows = pd.concat(rows, ignore_index=True)
        pred = np.asarray(self.estimator.predict(rows), dtype=float).reshape(n)   # (n, 1) for a y of (n, 1)
        if self.transform is not None:
            pred = np.asarray(self.transform(pred), dtype=float)
            if pred.shape != (n,):
                raise ValueError(f"transform returned shape {pred.shape} for {n} completions; it must "
                                 "return one value per completion.")
        return [float(v) for v in pred]
