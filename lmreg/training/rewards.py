"""Rewards on decoded numbers, for the RL stage and for TRL.

Each reward is a plain function of predictions and targets (numpy, broadcasting),
higher is better. Pointwise rewards take ``pred`` of any shape and ``target``
broadcastable to it; group rewards (``rank``, ``crps_loo``) take a group of samples
per input, ``pred`` of shape ``[B, G]`` and ``target`` of shape ``[B]``.
:func:`lmreg.training.trl_rewards.trl_reward` wraps any of them in TRL's
reward-function signature ``f(prompts, completions, **kwargs) -> list[float | None]``,
with the targets passed as a dataset column (``target=...``); group rewards take TRL's
``num_generations``. A fitted estimator as a learned reward is
:func:`lmreg.training.reward_model.model_reward`. Both are importable from here too.

Scales: error rewards divide by ``scale``, the target's spread, so one learning rate
suits every dataset; the RL stage passes the (weighted) std of its prompts' targets,
:func:`~lmreg.training.trl_rewards.trl_reward` whatever ``scale=`` it is given (1 by default: raw units).
"""

from __future__ import annotations

import functools
import inspect

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
    keywords, checked as :func:`~lmreg.training.trl_rewards.trl_reward` checks them; any other callable as
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
    # trl_reward and model_reward live in trl_rewards and reward_model (they import this
    # module): importable from here as before
    if name in ("trl_reward", "TRLReward"):
        from . import trl_rewards

        return getattr(trl_rewards, name)
    if name == "model_reward":
        from .reward_model import model_reward

        return model_reward
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
