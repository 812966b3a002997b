"""Reinforcement learning on the constrained number policy (GRPO family).

After SFT the model still spreads probability over wrong digits, and token
cross-entropy cannot tell a wrong leading digit from a wrong last one. Here the
policy is rewarded on the *decoded number*. One step:

1. **rollout**: for each of ``prompts_per_step`` prompts, ``group_size`` samples from
   the grammar-constrained sampler (one shared prefill); with one update per rollout
   the sampling policy is the learner itself, so the old log-probs are the learner's,
   detached;
2. **reward**: any reward of :mod:`lmreg.training.rewards` on the decoded numbers;
3. **advantage**: group-relative (GRPO: centred and divided by the group's std,
   floored; Dr.GRPO: centred only; ReMax: minus the greedy decode's reward);
4. **loss**: clipped policy gradient on the sequence ratio (one ratio per number,
   as GSPO has one per sequence, rather than PPO's one per token; on a rollout's
   first update, where every ratio is 1, their gradients agree up to the number's
   length, and later updates clip differently) plus a KL penalty to the frozen SFT
   model (k3 estimator), computed through the sub-vocabulary log-prob op (fused on
   GPU).

Dropout is off during RL so the on-policy ratio is exactly 1 at the first update.

The ``"tree"`` and ``"median"`` variants (:mod:`lmreg.training.tree_rl`) replace
steps 1-4 by a computation on the digit tree: the expected reward along the target's
path, or the reward of the exact median through the CDF at it; no rollout.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..backbone import frozen_copy
from ..batching import Encoded, collate
from ..decoding import NumberGrammar, constrained_logprobs, sample_batch, teacher_forced_states
from . import rewards as R
from . import tree_rl as T
from .rl_config import (KEEP_TESTS, PROMPT_ROWS, TREE_VARIANTS, VARIANTS, RLConfig,  # noqa: F401
                        RLResult, stage_reward, step_prompts)


def group_advantages(rewards: np.ndarray, variant: str, std_floor: float = 0.05,
                     baseline: np.ndarray | None = None) -> np.ndarray:
    """Advantages ``[B, G]`` from group rewards ``[B, G]``.

    Examples
    --------
    >>> r = np.array([[1.0, 2.0, 3.0]])
    >>> group_advantages(r, "dr_grpo").tolist()
    [[-1.0, 0.0, 1.0]]
    >>> group_advantages(r, "remax", baseline=np.array([2.5])).tolist()
    [[-1.5, -0.5, 0.5]]
    """
    if variant == "remax":
        if baseline is None:
            raise ValueError("remax needs the greedy decode's reward as baseline.")
        return rewards - baseline[:, None]
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    if variant == "dr_grpo":
        return centred
    if variant == "grpo":
        return centred / np.maximum(rewards.std(axis=1, keepdims=True), std_floor)
    raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}.")


def policy_loss(new_lp: torch.Tensor, old_lp: torch.Tensor, ref_lp: torch.Tensor, adv: torch.Tensor,
                clip_eps: float, kl_coef: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Clipped policy-gradient loss with a k3 KL penalty.

    Parameters
    ----------
    new_lp, ref_lp : Tensor [N, L]
        Per-position log-probs of the sampled tokens under the current and the frozen
        reference policy.
    old_lp : Tensor [N]
        Sequence log-prob under the sampling policy.
    adv : Tensor [N]
        Advantage of each sequence (:func:`group_advantages`, flattened).
    clip_eps : float
        Ratio clipping: ``ratio`` is limited to ``[1 - clip_eps, 1 + clip_eps]``.
    kl_coef : float
        Weight of the KL penalty.
    weights : Tensor [N] or None, default=None
        Weight of each sequence (its prompt's ``sample_weight``, scaled to mean 1 over
        the prompts): the mean is then of the weighted terms.

    Returns
    -------
    Tensor
        Scalar loss, the mean over the ``N`` sequences.

    Examples
    --------
    >>> import math, torch
    >>> new_lp = torch.log(torch.tensor([[0.5, 0.5], [0.25, 1.0]]))
    >>> old_lp, adv = new_lp.sum(dim=1), torch.tensor([2.0, 0.0])  # on-policy: ratio 1
    >>> policy_loss(new_lp, old_lp, new_lp, adv, clip_eps=0.2, kl_coef=0.05).item()  # -mean(adv)
    -1.0
    >>> round(policy_loss(new_lp, old_lp, new_lp - 0.5, adv, 0.2, 0.05).item(), 4)  # + KL
    -0.9893
    >>> round(policy_loss(new_lp, old_lp - math.log(2), new_lp, adv, 0.2, 0.0).item(), 4)
    -1.2
    >>> policy_loss(new_lp, old_lp, new_lp, adv, 0.2, 0.05, weights=torch.tensor([1.5, 0.5])).item()
    -1.5
    """
    seq = new_lp.sum(dim=1)
    ratio = torch.exp(seq - old_lp)
    pg = -torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
    delta = ref_lp - new_lp
    kl = (torch.exp(delta) - delta - 1).sum(dim=1)
    return T.row_mean(pg + kl_coef * kl, weights)


def reward_function(reward, scale: float):
    """``f(pred [B, G], target [B]) -> [B, G]`` for a reward name or callable.

    A user callable is called as ``reward(pred [B, G], target [B, 1], scale)`` and must
    return ``[B, G]``; lmreg's rewards and ``functools.partial`` of them get ``scale=``
    if they take one and the partial does not bind it. Every
    variant's rewards pass through here, so a reward that is not finite (say, a user
    reward taking the log of a negative number) is a ValueError here rather than NaN
    weights later.

    Parameters
    ----------
    reward : str or callable
        A name in :data:`lmreg.training.rewards.REWARDS`, or a callable.
    scale : float
        Spread of the targets, for the rewards that take one.

    Examples
    --------
    >>> pred, target = np.array([[1.0, 3.0, 6.0]]), np.array([2.0])
    >>> reward_function("abs", scale=2.0)(pred, target).tolist()
    [[-0.5, -0.5, -2.0]]
    >>> mine = reward_function(lambda p, t, s: -np.square(p - t) / s, scale=2.0)
    >>> mine(pred, target).tolist()
    [[-0.5, -0.5, -8.0]]
    >>> reward_function(lambda p, t, s: np.where(p > t, -1.0, np.nan), scale=2.0)(pred, target)
    Traceback (most recent call last):
    ...
    ValueError: the reward is not finite on a number the codec can write (e.g. a user reward taking the log of a negative number), which would turn the weights into NaN; choose another rl_reward.
    """
    fn = R.REWARDS[reward] if isinstance(reward, str) else reward
    base, bound = R._unwrap(fn)   # the function under a functools.partial, and what it binds
    # lmreg's rewards (and partials of them) get the prompts' scale unless the partial binds one
    kw = {} if "scale" in bound else {"scale": scale}
    if base in (R.crps_loo, R.gaussian_kernel, R.neg_abs_error, R.neg_squared_error):
        call = lambda pred, y: fn(pred, y if base is R.crps_loo else y[:, None], **kw)  # noqa: E731
    elif base is R.rank:
        call = lambda pred, y: fn(pred, y)  # noqa: E731
    elif base in (R.neg_relative_error, R.neg_log_error):
        call = lambda pred, y: fn(pred, y[:, None])  # noqa: E731
    else:
        call = lambda pred, y: fn(pred, y[:, None], scale)  # noqa: E731

    def checked(pred, y):
        r = np.asarray(call(pred, y), dtype=np.float64)
        if r.shape != pred.shape:   # a transposed [G, B] would mix the groups' advantages
            raise ValueError(f"the reward returned shape {r.shape} for predictions of shape {pred.shape} "
                             "([prompts, samples]); it must return one reward per prediction, in their shape.")
        if not np.isfinite(r).all():
            raise ValueError("the reward is not finite on a number the codec can write (e.g. a user reward taking "
                             "the log of a negative number), which would turn the weights into NaN; choose another "
                             "rl_reward.")
        return r

    return checked


def _sequence_logprobs(model, grammar, batch, tokens):
    """Per-position log-probs of ``tokens [N, L]``, prompt and number in one pass (reference)."""
    return constrained_logprobs(model, teacher_forced_states(model, batch, grammar, tokens), grammar, tokens)


def group_logprobs(model, grammar: NumberGrammar, batch, tokens: torch.Tensor, group_size: int,
                   temperature: float = 1.0) -> torch.Tensor:
    """Per-position log-probs ``[B * G, L]`` of ``G`` numbers per prompt, each prompt run once.

    The prompt (tens to hundreds of tokens) is shared by the ``G`` samples of a group;
    only the ``L - 1`` number tokens differ. The prompt's KV cache is computed once per
    prompt, with gradients, and repeated for the group, so a step costs ``B * P + B * G * L``
    token positions instead of ``B * G * (P + L)``: same values and gradients as running
    every sequence whole (:func:`_sequence_logprobs`), about ``G`` times less work.

    Parameters
    ----------
    model : RegressionLM
    grammar : NumberGrammar
    batch : Batch
        ``B`` left-padded prompts.
    tokens : LongTensor [B * G, L]
        Group ``b`` is rows ``b * G .. b * G + G - 1``.
    group_size : int
    temperature : float, default=1.0
        The policy's, the one the group was sampled at (its log-probs are what the
        ratio and the KL compare).

    Returns
    -------
    Tensor [B * G, L], float32

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> from lmreg.batching import Encoded, collate
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    >>> allowed = np.zeros((2, 10), dtype=bool)
    >>> allowed[0, :2] = allowed[1, 2:] = True
    >>> grammar = NumberGrammar(allowed)
    >>> ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4])]
    >>> enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> tokens = torch.tensor([[0, 2], [1, 9], [0, 5], [1, 3], [0, 4], [1, 2]])  # G = 3
    >>> shared = group_logprobs(model, grammar, collate(enc, [0, 1], 0), tokens, 3)
    >>> whole = _sequence_logprobs(model, grammar, collate(enc, [0, 0, 0, 1, 1, 1], 0), tokens)
    >>> shared.shape, torch.allclose(shared, whole, atol=1e-5)
    (torch.Size([6, 2]), True)
    """
    G = int(group_size)
    hidden, cache = model(batch.ids, batch.values, batch.kinds, batch.attention_mask,
                          use_cache=grammar.length > 1)
    first = hidden[:, -1:].repeat_interleave(G, dim=0)  # predicts position 0
    if grammar.length > 1:
        cache.batch_repeat_interleave(G)
        mask = batch.attention_mask.repeat_interleave(G, dim=0)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], grammar.length - 1)], dim=1)
        rest, _ = model.run(model.embed_numbers(tokens[:, :-1]), mask, past_key_values=cache, use_cache=True)
        first = torch.cat([first, rest], dim=1)
    return constrained_logprobs(model, first, grammar, tokens, temperature)


def train_rl(model, enc: Encoded, y: np.ndarray, codec, grammar: NumberGrammar, rows: np.ndarray,
             pad_id: int, config: RLConfig, max_steps: int, deadline: float | None = None,
             seed: int = 0, device="cpu", on_check=None, weights: np.ndarray | None = None) -> RLResult:
    """Run up to ``max_steps`` RL steps on prompts ``rows`` (in place); returns the history.

    Parameters
    ----------
    model : RegressionLM
        The policy, usually after :func:`~lmreg.training.sft.train_sft`; a frozen copy
        is the KL reference.
    enc : Encoded
    y : float array [n]
        Targets in original units (one target per row).
    codec : NumberCodec
    grammar : NumberGrammar
    rows : index array
        Prompts to draw from; the reward scale is the std of ``y[rows]``.
    pad_id : int
    config : RLConfig
    max_steps : int
    deadline : float or None
        ``time.monotonic()`` value after which no new step starts.
    seed : int, default=0
    device : str or torch.device, default="cpu"
    on_check : callable or None, default=None
        ``on_check(model, step)``, called after the steps that complete each of the
        first ``config.checks - 1`` equal shares of the budget (of the time to
        ``deadline`` or of ``max_steps``, whichever share is used first); the
        estimator scores and snapshots the policy there.
    weights : float array [n] or None, default=None
        Row weights (``sample_weight``), aligned with ``y``. Prompts are still drawn
        uniformly from ``rows``; each one's loss counts its weight, scaled to mean 1
        over ``rows`` (as SFT weighs each row's cross-entropy), and the reward scale
        is the weighted std. None: every row counts once.

    Returns
    -------
    RLResult

    Examples
    --------
    >>> import torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> from lmreg.batching import Encoded
    >>> from lmreg.codecs import make_codec
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10)
    >>> y = np.array([2.0, 8.0, 5.0])
    >>> codec = make_codec("digits", n_digits=2).fit(y)
    >>> ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4]), np.array([2, 9, 3])]
    >>> enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> result = train_rl(model, enc, y, codec, NumberGrammar(codec.grammar()), rows=np.arange(3),
    ...                   pad_id=0, config=RLConfig(group_size=4, prompts_per_step=2), max_steps=2)
    >>> result.steps, sorted(result.history[0])
    (2, ['kl', 'loss', 'reward', 'seconds', 'step'])
    >>> abs(result.history[0]["kl"]) < 1e-6  # the first rollout: still the reference policy
    True
    """
    config.check()  # again: a field may have been set since the config was built
    if y.ndim != 1:
        raise ValueError("the RL stage supports one target per row.")
    if config.variant in TREE_VARIANTS and getattr(codec, "name", None) != "digits":
        raise ValueError(f"variant={config.variant!r} works on the digits codec's token tree: it needs "
                         f"codec='digits', not codec={getattr(codec, 'name', codec)!r}.")
    rng = np.random.default_rng(seed)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    w = None if w is None else w / w[rows].mean()
    scale = _reward_scale(y[rows], None if w is None else w[rows])
    reward = reward_function(stage_reward(config), scale)
    reference = frozen_copy(model)   # the frozen trunk shared, not copied
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0, foreach=True)   # as SFT
    model.eval()  # no dropout: sampler and learner are the same policy
    result, t0 = RLResult(), time.monotonic()
    # Intermediate checkpoints at equal shares of the budget; the estimator scores the last one.
    marks = [k / config.checks for k in range(1, max(1, int(config.checks)))]
    for step in range(max_steps):
        if deadline is not None and time.monotonic() >= deadline:
            break
        picked = rng.choice(rows, size=min(step_prompts(config), len(rows)), replace=False)
        batch = collate(enc, picked, pad_id).to(device)
        row_w = None if w is None else torch.as_tensor(w[picked], dtype=torch.float32, device=device)
        if config.variant == "tree":
            targets = T.tree_rewards(codec, reward, y[picked], device)
            for _ in range(max(1, int(config.updates_per_rollout))):
                loss, mean_reward, kl = T.tree_loss(model, reference, grammar, batch, *targets, config.kl_coef,
                                                    config.sft_coef, config.pg_coef, config.temperature, row_w)
                _update(model, opt, loss, config.grad_clip)
        elif config.variant == "median":
            for _ in range(max(1, int(config.updates_per_rollout))):
                loss, mean_reward, kl = T.median_loss(model, reference, grammar, batch, codec, reward,
                                                      y[picked], scale, config.kl_coef, config.sft_coef,
                                                      config.pg_coef, config.temperature, row_w)
                _update(model, opt, loss, config.grad_clip)
        else:
            loss, mean_reward, kl = _group_step(model, reference, opt, grammar, batch, picked, y, codec,
                                                reward, config, rng, device, row_w)
        result.history.append({"step": step + 1, "reward": mean_reward, "loss": float(loss.item()),
                               "kl": kl, "seconds": time.monotonic() - t0})
        result.steps = step + 1
        if on_check is not None and len(marks) and _past(marks[0], step + 1, t0, deadline, max_steps):
            marks.pop(0)
            on_check(model, step + 1)
    # Each update's loss is checked before it is applied; the last update is checked here.
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad):
        raise FloatingPointError(f"the weights became NaN or infinite at RL step {result.steps}; "
                                 "lower rl_config's learning_rate.")
    result.seconds = time.monotonic() - t0
    result.kept = result.steps > 0   # as RLResult documents; the estimator may still revert them
    return result


def _reward_scale(y: np.ndarray, w=None) -> float:
    """The (weighted) standard deviation of the prompts' targets, the rewards' unit (1 when
    they do not vary). Taken on ``y / max|y|``: squares of targets past ~1e154 overflowed to
    an infinite scale, and of targets below ~1e-154 underflowed to 0 (a unit of 1 then left
    every reward ~0 and the stage without a gradient).

    >>> f"{_reward_scale(np.array([1e160, 3e160])):.6g}", f"{_reward_scale(np.array([1e-170, 3e-170])):.6g}"
    ('1e+160', '1e-170')
    >>> _reward_scale(np.array([5.0, 5.0]))
    1.0
    """
    top = float(np.abs(y).max()) if len(y) else 0.0
    if not top > 0:
        return 1.0
    v = y / top
    spread = np.std(v) if w is None else np.sqrt(np.cov(v, aweights=w, bias=True))
    return float(spread * top) or 1.0


def _update(model, opt, loss, grad_clip: float) -> None:
    if not torch.isfinite(loss):   # as in SFT: never carry on (or keep) NaN weights
        raise FloatingPointError(f"the RL loss became {loss.item()}; lower rl_config's learning_rate.")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def _group_step(model, reference, opt, grammar, batch, picked, y, codec, reward, config, rng, device,
                row_w=None):
    """One GRPO / Dr.GRPO / ReMax step: rollout, rewards, advantages, clipped updates.

    ``row_w`` ``[B]``: the prompts' weights, shared by the samples of each group.
    Returns the last update's loss, the rollouts' mean reward and the KL to ``reference``.
    """
    G = config.group_size
    with torch.no_grad():
        tokens, _ = sample_batch(model, grammar, batch, G, config.temperature,
                                 seed=int(rng.integers(2**31 - 1)), row_seeds=torch.as_tensor(picked))
        values = codec.decode(tokens.cpu().numpy())                     # [B, G]
        r = np.asarray(reward(values, y[picked]), dtype=float)
        base = None
        if config.variant == "remax":
            greedy, _ = sample_batch(model, grammar, batch, 1, greedy=True)
            base = np.asarray(reward(codec.decode(greedy.cpu().numpy()), y[picked]), float)[:, 0]
        adv = torch.as_tensor(group_advantages(r, config.variant, config.std_floor, base),
                              dtype=torch.float32, device=device).reshape(-1)
        flat = tokens.reshape(-1, grammar.length)
        ref_lp = group_logprobs(reference, grammar, batch, flat, G, config.temperature)
        adv = adv * config.pg_coef
        if config.sft_coef:  # the true numbers ride along as one more member of each group
            true = torch.as_tensor(codec.encode(y[picked]), device=device)[:, None]
            flat = torch.cat([tokens, true], dim=1).reshape(-1, grammar.length)
    old_lp = None
    for _ in range(max(1, int(config.updates_per_rollout))):
        new_lp = group_logprobs(model, grammar, batch, flat, G + bool(config.sft_coef), config.temperature)
        sft_loss = 0.0
        if config.sft_coef:
            new_lp = new_lp.view(len(picked), G + 1, -1)
            sft_loss = -config.sft_coef * T.row_mean(new_lp[:, G].sum(dim=1), row_w)  # SFT's loss
            new_lp = new_lp[:, :G].reshape(-1, grammar.length)
        if old_lp is None:
            # The sampling policy is the learner before its first update on this
            # rollout: its log-probs, detached (the first ratio is exactly 1).
            old_lp = new_lp.sum(dim=1).detach()
        seq_w = None if row_w is None else row_w.repeat_interleave(G)
        loss = policy_loss(new_lp, old_lp, ref_lp, adv, config.clip_eps, config.kl_coef, seq_w) + sft_loss
        _update(model, opt, loss, config.grad_clip)
    with torch.no_grad():
        kl = float(((ref_lp - new_lp).exp() - (ref_lp - new_lp) - 1).sum(1).mean())
    return loss, float(r.mean()), kl


def _past(share: float, steps: int, t0: float, deadline, max_steps: int) -> bool:
    """Whether ``share`` of the RL budget is used: of the steps, or of the time to ``deadline``.

    >>> _past(0.5, 5, time.monotonic(), time.monotonic() + 60, 10)  # half the steps, little time
    True
    >>> _past(0.5, 4, time.monotonic() - 31, time.monotonic() + 29, 10)  # half the time, fewer steps
    True
    >>> _past(0.5, 4, time.monotonic(), None, 10)
    False
    """
    if steps >= share * max_steps:
        return True
    return deadline is not None and time.monotonic() - t0 >= share * (deadline - t0)
