"""lmreg's rewards in TRL's reward-function signature (:func:`trl_reward`).

``f(prompts, completions, **kwargs) -> list[float | None]``: each completion's number is
parsed and scored by a reward of :mod:`lmreg.training.rewards` (or any callable) against
its target, passed as a dataset column (``target=...``); group rewards take TRL's
``num_generations``. Also importable from :mod:`lmreg.training.rewards`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .rewards import (REWARD_BOUND, REWARDS, _check_params, _check_positive_params, _unwrap, crps_loo,
                      is_group_reward, neg_log_error)

__all__ = ["trl_reward", "TRLReward"]


def trl_reward(name_or_fn, parse=float, invalid_reward=None, num_generations=None,
               target_column="target", name=None, **params):
    """Wrap a reward in TRL's ``f(prompts, completions, **kwargs)`` signature.

    Each completion (a string, or chat messages: the last one's ``content``, its text
    parts joined when it is a list of parts) goes
    through ``parse``; targets come from the dataset column ``target_column``. The returned
    list never holds a NaN or an infinity, which would turn TRL's group advantages
    into NaN or overflow them:

    - rewards are clipped to ``±REWARD_BOUND`` (1e15): TRL holds them as float32, and
      an overflowed error (a 20-digit completion under ``"squared"``) is the worst
      reward, not an infinity that would zero the advantages of the whole batch;
    - a completion that does not parse, parses to NaN or an infinity, or whose reward
      is NaN, gets ``invalid_reward``; by default a value below every parsable
      completion of the same prompt and target, TRL's group (of the call when none of
      that group parsed): the worst reward minus the larger of the rewards' range, the
      worst reward's magnitude and 1, so writing a number always beats not writing one;
    - when no completion of a call parses (and ``invalid_reward`` is None), or a
      target is missing or not finite, the reward is None: TRL's "not applicable",
      which it leaves out of the group baseline and gives no advantage.

    Group rewards (``rank``, ``crps_loo``) score each completion against the other
    completions of its prompt, so they need ``num_generations`` (TRL's
    ``GRPOConfig.num_generations``) and each call's completions in whole groups: TRL
    passes a process's completions with a prompt's generations next to each other,
    whole when ``per_device_train_batch_size`` is a multiple of ``num_generations``;
    anything else is a ValueError. Evaluation calls the same function: leave TRL's
    ``num_generations_eval`` unset, since smaller eval groups that share a prompt
    would be scored as one group. A group's reward is computed over its parsable
    completions; ``crps_loo`` needs three of them, with fewer they get 0.

    Parameters
    ----------
    name_or_fn : str or callable
        A key of ``REWARDS``, a pointwise ``fn(value, target, **params)``, or a
        ``functools.partial`` of one of ``REWARDS`` (a group reward's stays a group reward).
    parse : callable, default float
        ``parse(text) -> float``; raising ``ValueError``, ``TypeError``, ``KeyError``,
        ``IndexError``, ``AttributeError`` (``re.search(...).group()`` without a match)
        or ``OverflowError`` marks the completion unparsable. Pass e.g. a
        regular-expression extractor when the policy writes the number inside other text.
    invalid_reward : float, optional
        A fixed reward for unparsable completions instead of the default above.
    num_generations : int, optional
        Completions per prompt; required by the group rewards, refused by the others.
    target_column : str, default "target"
        The dataset column that holds the targets (TRL passes every column but the
        prompt to reward functions as a keyword argument).
    name : str, optional
        The function's ``__name__``, under which TRL logs its rewards; default: the
        reward's own name. Give two rewards of one function different names.
    **params
        Passed to the reward (``scale=``, ``bandwidth=``...); ``scale``, ``bandwidth`` and
        ``eps`` must be positive finite numbers.

    Returns
    -------
    TRLReward
        ``f(prompts, completions, **kwargs) -> list[float | None]``, named after the
        reward (TRL's log key); it pickles when ``name_or_fn`` and ``parse`` do.

    Examples
    --------
    >>> f = trl_reward("abs", scale=1.0)
    >>> f(prompts=["x", "y", "z"], completions=["3.5", "oops", "1"], target=[3.0, 1.0, 2.0])
    [-0.5, -2.0, -1.0]
    >>> f(prompts=["x"], completions=["oops"], target=[3.0])
    [None]
    >>> g = trl_reward("rank", num_generations=3)
    >>> g(prompts=["x"] * 3, completions=["1", "5", "2"], target=[1.2] * 3)
    [1.0, 0.0, 0.5]
    >>> f(prompts=["x", "y"], completions=["1", "2"], target=[1.0, "n/a"])
    Traceback (most recent call last):
    ...
    ValueError: 'target' must hold one number (None or NaN when missing) per completion; its element 1 is 'n/a'.
    """
    if isinstance(name_or_fn, str) and name_or_fn not in REWARDS:
        raise ValueError(f"unknown reward {name_or_fn!r}; choose one of {sorted(REWARDS)} or pass a callable.")
    fn = REWARDS[name_or_fn] if isinstance(name_or_fn, str) else name_or_fn
    base, bound = _unwrap(fn)  # a functools.partial of crps_loo is crps_loo, with its keywords
    group = is_group_reward(fn)
    if group and num_generations is None:
        raise ValueError("group rewards score a completion against the others of its prompt: pass "
                         "num_generations= (TRL's GRPOConfig.num_generations).")
    if not group and num_generations is not None:
        raise ValueError("num_generations is for the group rewards ('rank', 'crps_loo') only.")
    if group and (isinstance(num_generations, bool) or not isinstance(num_generations, (int, np.integer))
                  or num_generations < 2):
        raise ValueError(f"num_generations must be an integer >= 2, got {num_generations!r}.")
    if base is crps_loo and num_generations < 3:
        raise ValueError(f"crps_loo scores each completion against the others of its group: it needs "
                         f"num_generations >= 3, got {num_generations}.")
    if invalid_reward is not None and not (isinstance(invalid_reward, (int, float, np.integer, np.floating))
                                           and not isinstance(invalid_reward, bool) and np.isfinite(invalid_reward)
                                           and abs(invalid_reward) <= REWARD_BOUND):
        raise ValueError(f"invalid_reward must be a finite number within +-{REWARD_BOUND:g} (rewards are held as "
                         f"float32 and squared), got {invalid_reward!r}.")
    _check_params(fn, params)
    # checked now rather than as NaN rewards (silently penalised) at the trainer's first step
    for param, value in _check_positive_params(base, {**bound, **params}):
        if np.ndim(value):   # one completion is scored at a time: one number, not one per row
            raise ValueError(f"{param} must be one number here (each completion is scored on its own), "
                             f"got an array of shape {np.shape(value)}.")
    if name is not None and not (isinstance(name, str) and name):
        raise ValueError(f"name must be a non-empty string, got {name!r}.")
    reward = TRLReward(fn, parse, invalid_reward, num_generations if group else None, target_column, params)
    if name is not None:
        reward.__name__ = name
    return reward


class TRLReward:
    """A reward in TRL's signature, built by :func:`trl_reward` (which checks its arguments).

    A plain object rather than a closure, so it pickles (for process pools and
    spawned workers) when ``fn`` and ``parse`` do. ``__name__`` is the reward's own
    name, a ``functools.partial``'s included: TRL logs each reward function under it.

    >>> import functools, pickle
    >>> from lmreg.training.rewards import neg_abs_error
    >>> f = pickle.loads(pickle.dumps(trl_reward(functools.partial(neg_abs_error, scale=2.0))))
    >>> f.__name__, f(prompts=["x"], completions=["3"], target=[2.0])
    ('neg_abs_error', [-0.5])
    """

    def __init__(self, fn, parse, invalid_reward, num_generations, target_column, params):
        self.fn, self.parse, self.invalid_reward = fn, parse, invalid_reward
        self.num_generations, self.target_column, self.params = num_generations, target_column, params
        self._base = _unwrap(fn)[0]
        self.__name__ = getattr(self._base, "__name__", type(self._base).__name__)

    def __repr__(self) -> str:
        return f"<TRL reward {self.__name__}>"

    def _value(self, completion) -> float:
        text = _text(completion)   # outside the try: a wrong format is an error, not a bad answer
        try:
            value = float(self.parse(text))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
            return np.nan
        return value if np.isfinite(value) else np.nan

    def _pointwise(self, values, targets):
        out = np.full(len(values), np.nan)
        for i in np.flatnonzero(np.isfinite(values) & np.isfinite(targets)):
            out[i] = float(self.fn(values[i], targets[i], **self.params))
        return out

    def _grouped(self, values, targets, prompts):
        G, n = self.num_generations, len(values)
        out = np.full(n, np.nan)
        for s in range(0, n, G):
            block = range(s, s + G)
            if s + G > n or any(prompts[i] != prompts[s] for i in block) or not np.array_equal(
                    targets[block], np.full(G, targets[s]), equal_nan=True):
                raise ValueError(
                    f"{self.__name__} needs the completions of a call in whole groups of "
                    f"num_generations={G} with one prompt and target each; completions {s}-{min(s + G, n) - 1} "
                    "are not one group. In TRL, make per_device_train_batch_size a multiple of "
                    "num_generations, and leave num_generations_eval unset (evaluation's groups "
                    "must be of num_generations too).")
            out[block] = self.fn(values[block][None, :], targets[s:s + 1], **self.params)[0]
        return out

    def __call__(self, prompts, completions, **kwargs):
        if self.target_column not in kwargs:
            raise ValueError(f"no {self.target_column!r} column reached the reward; got {sorted(kwargs)}. "
                             "Add the targets to the training dataset or pass target_column=.")
        targets = _target_values(kwargs[self.target_column], len(completions), self.target_column)
        if self._base is neg_log_error:   # every row's target, not only those whose completion parsed
            neg_log_error(0.0, targets[np.isfinite(targets)])
        values = np.array([self._value(text) for text in completions], dtype=float)
        if not len(values) == len(targets) == len(prompts):
            raise ValueError(f"{len(prompts)} prompts, {len(completions)} completions and "
                             f"{len(targets)} targets; expected one of each per completion.")
        with np.errstate(over="ignore", invalid="ignore"):
            out = (self._grouped(values, targets, prompts) if self.num_generations
                   else self._pointwise(values, targets))
        # TRL holds rewards as float32 and squares their deviations: an overflowed error
        # (a 20-digit completion under "squared") is the worst reward there is, not inf.
        out = np.clip(out, -REWARD_BOUND, REWARD_BOUND)
        invalid = np.isfinite(targets) & (~np.isfinite(values) | np.isnan(out))
        if invalid.any():
            out[invalid] = np.nan
            scored = out.copy()
            # TRL's group: one prompt and its target (a prompt repeated with another target is another)
            keys = np.unique([f"{p}\0{t!r}" for p, t in zip(prompts, targets)], return_inverse=True)[1]
            for key in np.unique(keys[invalid]):
                rows = keys == key
                # below the other completions of the same group, else of the call
                out[rows & invalid] = _penalty(scored[rows], self.invalid_reward, fallback=scored)
        return [float(r) if np.isfinite(r) else None for r in out]


def _text(completion) -> str:
    """A completion's text: the string itself, or chat messages' last ``content``: a string,
    or a list of parts (``{"type": "text", "text": ...}``) whose text parts are joined.

    >>> _text("3"), _text([{"role": "assistant", "content": "4"}])
    ('3', '4')
    >>> _text([{"role": "assistant", "content": [{"type": "text", "text": "5"}, {"type": "image"}]}])
    '5'
    """
    if isinstance(completion, str):
        return completion
    try:
        content = completion[-1]["content"]
        if isinstance(content, str):
            return content
        return "".join(part["text"] for part in content if isinstance(part, Mapping) and part.get("type") == "text")
    except (KeyError, TypeError, IndexError):   # every reward would be None: nothing learned, no word
        raise ValueError(f"a completion must be a string or chat messages (a list of dicts with a 'content' "
                         f"string or text parts); got {completion!r:.200}.") from None


def _target_values(target, n, column) -> np.ndarray:
    """``target`` (a dataset column: a list, array or tensor) as ``n`` floats, None as NaN, or
    an error naming ``column``, the form expected and what came instead of numpy's own."""
    expected = f"{column!r} must hold one number (None or NaN when missing) per completion"
    # a string is iterable, but its characters are not one target per completion
    if (isinstance(target, (str, bytes, Mapping)) or not isinstance(target, Iterable)
            or getattr(target, "ndim", 1) == 0):
        raise TypeError(f"{expected}, {n} here; got a single {type(target).__name__}: {target!r}.")
    if hasattr(target, "to_numpy") and not isinstance(target, np.ndarray):   # a pandas column or frame, as values
        target = target.to_numpy()   # (a DataFrame iterates its column names)
    if getattr(target, "ndim", 1) == 2 and target.shape[1] == 1:   # a column array or tensor [n, 1]
        target = target.reshape(-1)
    target = list(target)
    if len(target) != n:
        raise ValueError(f"{expected}, {n} here; got {len(target)}.")
    out = np.empty(n)
    for i, y in enumerate(target):
        try:
            out[i] = np.nan if y is None else float(y)
        except (ValueError, OverflowError):  # a string that is not a number, an int past float's range
            raise ValueError(f"{expected}; its element {i} is {y!r}.") from None
        except TypeError:   # a dict, a list, a 2-D array's row...
            raise TypeError(f"{expected}; its element {i} is a {type(y).__name__}: {y!r}.") from None
    return out


def _penalty(rewards, fixed, fallback) -> float:
    """The reward of an unparsable completion: ``fixed`` if given, else below every finite
    reward of ``rewards`` (its prompt's), else of ``fallback`` (the call's); NaN if none."""
    if fixed is not None:
        return float(fixed)
    for pool in (rewards, fallback):
        valid = pool[np.isfinite(pool)]
        if valid.size:
            lo, hi = valid.min(), valid.max()
            return float(lo - max(hi - lo, abs(lo), 1.0))
    return np.nan
