"""Rewards on decoded numbers, for the RL stage and for TRL.

Each reward is a plain function of predictions and targets (numpy, broadcasting),
higher is better. Pointwise rewards take ``pred`` of any shape and ``target``
broadcastable to it; group rewards (``rank``, ``crps_loo``) take a group of samples
per input, ``pred`` of shape ``[B, G]`` and ``target`` of shape ``[B]``.
:func:`trl_reward` wraps any of them in TRL's reward-function signature
``f(prompts, completions, **kwargs) -> list[float | None]``, with the targets passed
as a dataset column (``target=...``); group rewards take TRL's ``num_generations``.
A fitted estimator as a learned reward is :func:`lmreg.training.reward_model.model_reward`,
importable from here too.

Scales: error rewards divide by ``scale``, the target's spread, so one learning rate
suits every dataset; the RL stage passes the (weighted) std of its prompts' targets,
:func:`trl_reward` whatever ``scale=`` it is given (1 by default: raw units).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping

import numpy as np


def neg_abs_error(pred, target, scale=1.0):
    """``-|pred - target| / scale``; its Bayes decision is the median.

    Examples
    --------
    >>> neg_abs_error(np.array([1.0, 4.0]), 2.0, scale=2.0).tolist()
    [-0.5, -1.0]
    """
    _check_positive("scale", scale)
    return -np.abs(np.asarray(pred, float) - np.asarray(target, float)) / scale


def neg_squared_error(pred, target, scale=1.0):
    """``-((pred - target) / scale)^2``; its Bayes decision is the mean.

    Examples
    --------
    >>> neg_squared_error(np.array([1.0, 4.0]), 2.0, scale=2.0).tolist()
    [-0.25, -1.0]
    """
    _check_positive("scale", scale)
    return -np.square((np.asarray(pred, float) - np.asarray(target, float)) / scale)


def neg_relative_error(pred, target, eps=1e-8):
    """``-|pred - target| / max(|target|, eps)``; its Bayes decision is the median of the
    distribution reweighted by ``1 / |target|``, below the median (no rule of the estimator).

    Examples
    --------
    >>> neg_relative_error(np.array([90.0, 120.0]), 100.0).tolist()
    [-0.1, -0.2]
    """
    _check_positive("eps", eps)
    target = np.asarray(target, float)
    return -np.abs(np.asarray(pred, float) - target) / np.maximum(np.abs(target), eps)


def neg_log_error(pred, target):
    """``-|log1p(pred) - log1p(target)|`` for non-negative, heavy-tailed targets.

    Below 0, where ``log1p`` is not defined, ``log1p(pred)`` continues as ``pred`` (the
    line with its slope at 0), so a negative prediction scores worse the further it
    is below 0, never as well as 0. A negative target is a ValueError (no log, and
    clipped, -5 for a target of -3 would score as a perfect answer).

    Examples
    --------
    >>> round(float(neg_log_error(np.e - 1, 0.0)), 6)
    -1.0
    >>> neg_log_error(np.array([0.0, -1.0, -1e9]), 0.0).tolist()
    [-0.0, -1.0, -1000000000.0]
    >>> neg_log_error(1.0, -3.0)
    Traceback (most recent call last):
    ...
    ValueError: the log reward needs targets >= 0; got -3.0. Use 'abs' or 'relative' for signed targets.
    """
    pred = np.asarray(pred, float)
    target = np.asarray(target, float)
    if (target < 0).any():
        raise ValueError(f"the log reward needs targets >= 0; got {float(np.min(target))!r}. Use 'abs' or "
                         "'relative' for signed targets.")
    return -np.abs(np.where(pred >= 0, np.log1p(np.maximum(pred, 0.0)), pred) - np.log1p(target))


def gaussian_kernel(pred, target, scale=1.0, bandwidth=0.25):
    """``exp(-0.5 ((pred - target) / (bandwidth * scale))^2)``: bounded in (0, 1].

    Examples
    --------
    >>> gaussian_kernel(np.array([0.0, 0.25]), 0.0).round(4).tolist()
    [1.0, 0.6065]
    >>> gaussian_kernel(0.0, 0.0, bandwidth=0)
    Traceback (most recent call last):
    ...
    ValueError: bandwidth must be a positive finite number, got 0.
    """
    _check_positive("bandwidth", bandwidth)
    _check_positive("scale", scale)
    z = (np.asarray(pred, float) - np.asarray(target, float)) / (bandwidth * scale)
    return np.exp(-0.5 * z * z)


def rank(pred, target):
    """Within each group, ``1 - rank(|error|) / (G - 1)``: 1 for the closest sample, 0 for the farthest.

    Scale-free; ties share the average rank.

    Examples
    --------
    >>> rank(np.array([[1.0, 5.0, 2.0]]), np.array([1.2])).tolist()
    [[1.0, 0.0, 0.5]]
    """
    x, y = _groups("rank", pred, target)
    return _by_finite(_rank, x, y)


def _rank(x, y):
    from scipy.stats import rankdata

    err = np.abs(x - y[:, None])
    G = err.shape[1]
    if G == 1:
        return np.ones_like(err)
    return 1.0 - (rankdata(err, axis=1) - 1.0) / (G - 1)


def crps_loo(pred, target, scale=1.0):
    """Leave-one-out CRPS improvement of each sample in its group (DAR-style).

    ``r_i = (CRPS(group without i) - CRPS(group)) / scale``: positive when sample
    ``i`` makes the group's empirical distribution a better forecast of the target,
    so the reward favours calibrated spread, not only closeness.

    Examples
    --------
    >>> r = crps_loo(np.array([[0.0, 1.0, 9.0]]), np.array([0.5]))
    >>> bool(r[0, 2] < 0 < r[0, 0])
    True
    """
    _check_positive("scale", scale)
    x, y = _groups("crps_loo", pred, target)
    if x.shape[1] < 3:
        raise ValueError("crps_loo needs groups of at least 3 samples.")
    return _by_finite(_crps_loo, x, y) / scale


def _crps_loo(x, y):
    if x.shape[1] < 3:
        return np.zeros_like(x)  # no spread to judge with fewer than three numbers
    y = y[:, None]
    G = x.shape[1]
    abs_y = np.abs(x - y)                                 # [B, G]
    pair = np.abs(x[:, :, None] - x[:, None, :])          # [B, G, G]
    full = abs_y.mean(1) - 0.5 * pair.sum((1, 2)) / G**2  # CRPS of the whole group
    loo_abs = (abs_y.sum(1, keepdims=True) - abs_y) / (G - 1)
    loo_pair = (pair.sum((1, 2))[:, None] - 2 * pair.sum(2)) / (G - 1) ** 2
    loo = loo_abs - 0.5 * loo_pair
    return loo - full[:, None]


def _by_finite(score, x, y):
    """``score`` of each group over its finite samples: a NaN or infinite sample gets NaN and
    is left out of its group's ranks and spread (not NaN for the whole group); a group whose
    target is not finite gets NaN, as a pointwise reward does.

    >>> _by_finite(_rank, np.array([[1.0, np.nan, 5.0]]), np.array([1.2])).tolist()
    [[1.0, nan, 0.0]]
    """
    ok = np.isfinite(x) & np.isfinite(y)[:, None]
    if ok.all():
        return score(x, y)
    out = np.full(x.shape, np.nan)
    for b in np.flatnonzero(ok.any(1)):
        out[b, ok[b]] = score(x[b, ok[b]][None, :], y[b:b + 1])[0]
    return out


def _groups(name, pred, target):
    """``pred`` [B, G] and one target per group [B] (a column [B, 1] too), else a ValueError:
    numpy would broadcast a [B, 1] target, or two for one group, into a wrong result.

    >>> _groups("rank", [[1.0, 2.0]], [[1.5]])[1].tolist()
    [1.5]
    >>> _groups("rank", [[1.0, 2.0]], [1.0, 2.0])
    Traceback (most recent call last):
    ...
    ValueError: rank scores groups of samples: pred of shape [B, G] and one target per group, [B]; got pred (1, 2) and target (2,).
    """
    x, y = np.asarray(pred, float), np.asarray(target, float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ValueError(f"{name} scores groups of samples: pred of shape [B, G] and one target per group, [B]; "
                         f"got pred {x.shape} and target {y.shape}.")
    return x, y


REWARDS = {
    "abs": neg_abs_error, "squared": neg_squared_error, "relative": neg_relative_error,
    "log": neg_log_error, "gaussian": gaussian_kernel, "rank": rank, "crps_loo": crps_loo,
}
#: Rewards computed over a whole group of samples rather than one sample at a time.
GROUP_REWARDS = {"rank", "crps_loo"}
#: The decision rule whose expected reward is highest under the model's distribution; None
#: where no rule of the estimator is: ``relative``'s best is the median of the distribution
#: reweighted by ``1 / |y|`` (Gneiting 2011's median of order -1), below the median.
DECISION_FOR_REWARD = {"abs": "median", "squared": "mean", "relative": None, "log": "median",
                       "gaussian": "mode", "rank": "median", "crps_loo": "median"}


#: Parameters of the rewards above that divide: zero, negative or infinite ones make every
#: reward NaN, infinite, constant or reversed.
POSITIVE_PARAMS = ("scale", "bandwidth", "eps")

#: Rewards handed to TRL are clipped to this magnitude: TRL keeps them as float32 (max ~3.4e38)
#: and squares their deviations from the group mean. An unparsable completion's penalty
#: lies below its group's rewards, so within 3x the bound (squared deviations ~2e31 at most).
REWARD_BOUND = 1e15


def is_group_reward(reward):
    """Whether ``reward`` (a name, a function or a ``functools.partial`` of one) is one of
    :data:`GROUP_REWARDS`.

    >>> is_group_reward("rank"), is_group_reward(crps_loo), is_group_reward("abs")
    (True, True, False)
    >>> is_group_reward(functools.partial(crps_loo, scale=2.0))
    True
    """
    if isinstance(reward, str):
        return reward in GROUP_REWARDS
    return any(base_reward(reward) is REWARDS[name] for name in GROUP_REWARDS)


def base_reward(reward):
    """The function a reward name, function or ``functools.partial`` comes down to.

    >>> base_reward("log") is neg_log_error, base_reward(functools.partial(crps_loo, scale=2.0)) is crps_loo
    (True, True)
    """
    return REWARDS[reward] if isinstance(reward, str) else _unwrap(reward)[0]


def _unwrap(fn):
    """``(base, keywords)``: the function under (nested) ``functools.partial`` wrappers and
    the keywords they bind, outer ones winning, as the call would see them."""
    keywords = {}
    while isinstance(fn, functools.partial):
        keywords = {**fn.keywords, **keywords}
        fn = fn.func
    return fn, keywords


def _check_positive(name, value) -> None:
    """Refuse a ``value`` of parameter ``name`` that is not a positive finite number (or an
    array of them): the rewards divide by it."""
    try:
        ok = bool(np.all(np.isfinite(value) & (np.asarray(value) > 0)))
    except TypeError:  # a string, None...: not a number at all
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


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

    >>> import pickle
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


def _is_ours(fn) -> bool:
    return any(fn is f for f in REWARDS.values())


def _check_positive_params(base, params) -> list:
    """Refuse a non-positive divisor among ``params`` of the reward ``base``, and return the
    ``(name, value)`` pairs checked. Every reward divides by its ``scale`` (the targets'
    spread); only lmreg's are known to divide by ``bandwidth`` and ``eps`` too."""
    checked = [(name, value) for name, value in params.items()
               if name == "scale" or (_is_ours(base) and name in POSITIVE_PARAMS)]
    for name, value in checked:
        _check_positive(name, value)
    return checked


def _check_params(fn, params) -> None:
    """Refuse ``params`` that ``fn(pred, target, **params)`` would not take, now rather than
    at the trainer's first step."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no introspectable signature: the call will tell
        return
    try:
        signature.bind(0.0, 0.0, **params)
    except TypeError as err:
        name = getattr(fn, "__name__", "the reward")
        if not params:   # "does not take []" named no argument
            raise ValueError(f"a reward is called as reward(pred, target, **params), which {name} does not "
                             f"take: {err}.") from None
        raise ValueError(f"{name} does not take {sorted(params)}: {err}.") from None


def check_stage_reward(reward) -> None:
    """Refuse a callable the RL stage could not call, before SFT rather than after it.

    The stage calls lmreg's rewards (and ``functools.partial`` of them) with their bound
    keywords, checked as :func:`trl_reward` checks them; any other callable as
    ``reward(pred, target, scale)``.

    >>> check_stage_reward(functools.partial(gaussian_kernel, bandwith=0.5))
    Traceback (most recent call last):
    ...
    ValueError: gaussian_kernel does not take ['bandwith']: got an unexpected keyword argument 'bandwith'.
    >>> check_stage_reward(lambda pred, target: -abs(pred - target))
    Traceback (most recent call last):
    ...
    ValueError: rl_reward is called as reward(pred, target, scale), which <lambda> does not take: too many positional arguments.
    """
    base, bound = _unwrap(reward)
    if _is_ours(base):
        _check_params(base, bound)
        _check_positive_params(base, bound)
        return
    try:
        signature = inspect.signature(reward)
    except (TypeError, ValueError):  # no introspectable signature: the call will tell
        return
    try:
        signature.bind(0.0, 0.0, 1.0)
    except TypeError as err:
        raise ValueError(f"rl_reward is called as reward(pred, target, scale), which "
                         f"{getattr(base, '__name__', 'the reward')} does not take: {err}.") from None


def __getattr__(name):
    # model_reward lives in reward_model (it imports this module): importable from here as before
    if name == "model_reward":
        from .reward_model import model_reward

        return model_reward
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
