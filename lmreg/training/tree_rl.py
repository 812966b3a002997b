"""RL steps on the digit tree, without sampling: ``variant="tree"`` and ``"median"``.

**tree: the expected reward.**

With the ``digits`` codec a number is a path down a tree of digits, most significant
first, and every subtree holds an interval of values. Split the policy's expected
reward ``E[r(Y)]`` by the first position ``i`` where a number leaves the target's
digits ``t``::

    E[r(Y)] = sum_i  P(t_<i) * sum_{d != t_i} pi_i(d) * E[r(Y) | t_<i, d]  +  P(t) * r(v(t))

``P(t_<i)`` and the next-digit distributions ``pi_i`` along the target's path come
from one teacher-forced pass on ``t`` (the forward pass of an SFT step). The one
unknown, the reward inside each sibling subtree ``(t_<i, d)``, is taken at the
subtree's centre (the mean of its smallest and largest value): exact at the last
position, and elsewhere off by at most the reward's change across the subtree, which
is small against the differences between siblings that the gradient acts on. The
decomposition covers every number exactly once, so the weights sum to 1 and a
constant added to the reward does not move the gradient (no baseline needed).

Against the sampled GRPO step of :mod:`lmreg.training.rl` this is the same objective
(the expected reward of the policy) with the expectation over the first deviation
computed rather than sampled: no sampling variance, and one forward and backward pass
per prompt instead of a group of samples. A wrong leading digit weighs in with the
full distance to its subtree, a wrong last digit with one grid step; cross-entropy
weighs both alike. Pointwise rewards only (a group reward such as ``crps_loo`` needs
samples to compare).

**median: the reward of the decision.** ``predict`` returns the exact median ``m``,
not a sample, so :func:`median_loss` rewards ``r(m)`` itself. The same split gives
the policy's CDF at ``m`` from the next-digit distributions along ``m``'s digits
(:func:`path_cdf`), which the walk that finds ``m`` computes anyway: one
differentiable walk is the learner's whole forward pass. ``m`` moves when that
mass does (``dm = -dF(m) / f(m)``).
The objective rises with the mass below a median that is too high (and above one
that is too low); rows whose median is right contribute nothing.

Both losses take ``row_weights`` (``sample_weight``): each prompt's terms count its
weight, as each row's cross-entropy does in SFT (:func:`row_mean`).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import kernels
from ..decoding import NumberGrammar, teacher_forced_states
from ..quantile_decoding import quantile_walk


def row_mean(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-row terms ``x [B]``, each times its weight when ``weights [B]`` is given.

    Weights are scaled to mean 1 over all the prompts (not over the batch), so a batch
    of heavy rows pulls harder, as it does in the weighted SFT loss; the expectation
    over uniformly drawn batches is the weighted mean.

    Examples
    --------
    >>> x = torch.tensor([1.0, 3.0])
    >>> row_mean(x, None).item(), row_mean(x, torch.tensor([1.5, 0.5])).item()
    (2.0, 1.5)
    """
    return x.mean() if weights is None else (weights * x).mean()


def path_logprobs(model, grammar: NumberGrammar, batch, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token log-probs ``[B, L, K]`` at every position of the target's path.

    One teacher-forced pass: the prompt's last state predicts position 0, each target
    token the next position. Differentiable; ``K`` is the number of allowed tokens
    (the same at every position, as for the digits codec).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> from lmreg.batching import Encoded, collate
    >>> from lmreg.decoding import constrained_logprobs
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    >>> grammar = NumberGrammar(np.ones((2, 10), dtype=bool))
    >>> enc = Encoded([np.array([2, 5, 3])], [np.zeros(3, np.float32)], [np.zeros(3, np.int8)])
    >>> batch, tokens = collate(enc, [0], 0), torch.tensor([[4, 7]])
    >>> lp = path_logprobs(model, grammar, batch, tokens)
    >>> lp.shape, torch.allclose(lp.exp().sum(-1), torch.ones(1, 2))
    (torch.Size([1, 2, 10]), True)
    >>> hidden, _ = model(batch.ids, batch.values, batch.kinds, batch.attention_mask, number_tokens=tokens[:, :-1])
    >>> torch.allclose(lp.gather(2, tokens[..., None])[..., 0],   # what SFT's loss reads
    ...                constrained_logprobs(model, hidden[:, -2:], grammar, tokens), atol=1e-6)
    True
    """
    hidden = teacher_forced_states(model, batch, grammar, tokens)
    out = [torch.log_softmax(kernels.allowed_logits(hidden[:, p], model.head.weight, model.head.bias,
                                                    grammar.allowed[p]).float(), dim=-1)
           for p in range(grammar.length)]
    return torch.stack(out, dim=1)


def subtree_values(codec, tokens: np.ndarray) -> np.ndarray:
    """Centre value ``[B, L, 10]`` of the subtree ``(t_<i, d)`` for every position ``i`` and digit ``d``.

    The centre is the mean of the subtree's smallest value (``d`` then all zeros) and
    its largest (``d`` then all nines), in original units; at the last position the
    subtree is one number.

    Examples
    --------
    >>> from lmreg.codecs import make_codec
    >>> codec = make_codec("digits", n_digits=2, scaling="minmax", margin=0.0).fit(np.array([0.0, 99.0]))
    >>> v = subtree_values(codec, np.array([[3, 7]]))
    >>> v[0, 0, [0, 3, 9]].tolist()   # first digit 0, 3, 9: centres of 0-9, 30-39, 90-99
    [4.5, 34.5, 94.5]
    >>> v[0, 1, [0, 7]].tolist()      # second digit, after the target's 3: 30 and 37
    [30.0, 37.0]
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    L = tokens.shape[1]
    i = np.arange(L)[:, None, None]           # the position that deviates
    d = np.arange(10)[None, :, None]          # the digit taken there
    j = np.arange(L)[None, None, :]           # every position of the number
    path = tokens[:, None, None, :]
    lo = np.where(j < i, path, np.where(j == i, d, 0))
    hi = np.where(j < i, path, np.where(j == i, d, 9))
    return 0.5 * (codec.decode(lo) + codec.decode(hi))


def expected_reward(logp: torch.Tensor, tokens: torch.Tensor, sibling_reward: torch.Tensor,
                    path_reward: torch.Tensor) -> torch.Tensor:
    """The policy's expected reward ``[B]`` split at the first digit off the target's path.

    Parameters
    ----------
    logp : Tensor [B, L, K]
        :func:`path_logprobs`.
    tokens : LongTensor [B, L]
        The target's digits (indices into each position's ``K`` allowed tokens).
    sibling_reward : Tensor [B, L, K]
        Reward of each subtree ``(t_<i, d)`` (:func:`subtree_values`, then the reward);
        the entries at ``d = t_i`` are not read.
    path_reward : Tensor [B]
        Reward of the target's own number.

    Examples
    --------
    Two binary positions; the policy writes each bit with probability 0.5:

    >>> logp = torch.full((1, 2, 2), 0.5).log()
    >>> tokens = torch.tensor([[1, 0]])                       # the target's number: "10"
    >>> sib = torch.tensor([[[-3.0, 0.0], [0.0, -1.0]]])      # "0x" subtree: -3; "11": -1
    >>> expected_reward(logp, tokens, sib, torch.tensor([0.0])).item()  # 0.5 * -3 + 0.25 * -1
    -1.75
    """
    lp_path = logp.gather(2, tokens.unsqueeze(2)).squeeze(2)                       # [B, L]
    before = torch.cumsum(lp_path, dim=1) - lp_path                               # log P(t_<i)
    off = logp.exp().scatter(2, tokens.unsqueeze(2), 0.0)                        # pi_i(d), d != t_i
    leave = (before.exp().unsqueeze(2) * off * sibling_reward).sum(dim=(1, 2))
    return leave + lp_path.sum(dim=1).exp() * path_reward


def path_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """``sum_i KL(pi_i || ref_i)`` over the positions of the target's path, per row ``[B]``.

    Exact over each position's allowed tokens (no sampling estimator needed).

    Examples
    --------
    >>> p = torch.tensor([[[0.5, 0.5]]]).log()
    >>> round(path_kl(p, torch.tensor([[[0.9, 0.1]]]).log()).item(), 4)  # 0.5 ln(0.5/0.9) + 0.5 ln(5)
    0.5108
    """
    return (logp.exp() * (logp - ref_logp)).sum(dim=(1, 2))


def tempered(logp: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-probs of ``softmax(logits / temperature)`` from those at temperature 1 ``[..., K]``.

    ``logp`` differs from the logits by a constant per position, which the
    normalisation removes, so this is the distribution the estimator samples and
    decides from at its ``temperature``. Temperature 1 returns ``logp`` itself.

    Examples
    --------
    >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
    >>> torch.allclose(tempered(torch.log_softmax(logits, -1), 0.5), torch.log_softmax(logits / 0.5, -1))
    True
    """
    if temperature == 1.0:
        return logp
    return torch.log_softmax(logp / temperature, dim=-1)


def tree_loss(model, reference, grammar: NumberGrammar, batch, target_tokens: torch.Tensor,
              sibling_reward: torch.Tensor, path_reward: torch.Tensor, kl_coef: float,
              sft_coef: float = 0.0, pg_coef: float = 1.0, temperature: float = 1.0,
              row_weights: torch.Tensor | None = None):
    """The loss of one tree step: ``-pg_coef * E[r] + kl_coef * KL + sft_coef * CE``, batch means.

    ``E[r]`` is the expected reward of the policy at ``temperature`` (the one the
    estimator samples from); the KL and the cross-entropy are those of the policy
    itself (temperature 1), as in SFT. ``row_weights`` ``[B]``: weighted batch means
    (:func:`row_mean`).

    Returns
    -------
    loss : Tensor (scalar)
    reward : float
        Mean expected reward of the batch (unweighted, as are the reports below).
    kl : float
        Mean path KL to ``reference``.
    """
    logp = path_logprobs(model, grammar, batch, target_tokens)
    with torch.no_grad():
        ref_logp = path_logprobs(reference, grammar, batch, target_tokens)
    reward = expected_reward(tempered(logp, temperature), target_tokens, sibling_reward, path_reward)
    kl = path_kl(logp, ref_logp)
    w = row_weights
    loss = -pg_coef * row_mean(reward, w) + kl_coef * row_mean(kl, w)
    if sft_coef:
        loss = loss - sft_coef * row_mean(logp.gather(2, target_tokens.unsqueeze(2)).sum(dim=(1, 2)), w)
    return loss, float(reward.detach().mean()), float(kl.detach().mean())


def tree_rewards(codec, reward, y: np.ndarray, device):
    """Target tokens and the rewards of their sibling subtrees and their own number.

    ``reward`` is ``f(pred [B, G], target [B]) -> [B, G]``
    (:func:`~lmreg.training.rl.reward_function` of a pointwise reward).

    Returns
    -------
    tokens : LongTensor [B, L]
    sibling_reward : Tensor [B, L, 10]
    path_reward : Tensor [B]
    """
    tokens = codec.encode(y)
    B, L = tokens.shape
    values = subtree_values(codec, tokens).reshape(B, -1)
    sib = np.asarray(reward(values, y), dtype=np.float64).reshape(B, L, 10)   # reward_function: finite
    own = np.asarray(reward(codec.decode(tokens)[:, None], y), dtype=np.float64)[:, 0]
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    return torch.as_tensor(tokens, device=device), as_t(sib), as_t(own)


def path_cdf(logp: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mid-CDF ``P(Y < v) + P(Y = v) / 2`` ``[B]`` of the number ``v`` that ``tokens`` write.

    Numbers below ``v`` leave its path for a smaller digit; they are summed at the
    first position where they do, as in :func:`expected_reward`. Differentiable.

    Examples
    --------
    >>> logp = torch.full((1, 2, 10), 0.1).log()       # two uniform digits: 00 .. 99
    >>> round(path_cdf(logp, torch.tensor([[3, 7]])).item(), 4)  # 37 numbers below 37, half of 37
    0.375
    """
    lp_path = logp.gather(2, tokens.unsqueeze(2)).squeeze(2)
    before = torch.cumsum(lp_path, dim=1) - lp_path
    smaller = torch.arange(logp.shape[2], device=logp.device) < tokens.unsqueeze(2)
    below = (logp.exp() * smaller).sum(dim=2)                                      # [B, L]
    return (before.exp() * below).sum(dim=1) + 0.5 * lp_path.sum(dim=1).exp()


def _grid_slope(v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The reward's slope at the middle of three neighbouring grid values ``v`` ``[B, 3]``:
    the mean of the two one-sided slopes (one at the grid's ends, where two values meet).

    A central difference ``(r2 - r0) / (v2 - v0)`` is the same on an even grid, but on the
    quantile codec's uneven one it is not 0 at an on-grid target (gaps 13.2 below and 0.3
    above gave ``abs`` a slope of 0.96 there, the pull of a median two steps off).

    >>> v = np.array([[0.0, 1.0, 1.5], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]])
    >>> _grid_slope(v, -np.abs(v - np.array([[1.0], [1.25], [0.0]]))).tolist()   # on target, 1/4 step off, at an end
    [0.0, 0.25, -1.0]
    """
    left, right = v[:, 1] > v[:, 0], v[:, 2] > v[:, 1]
    sl = np.where(left, (r[:, 1] - r[:, 0]) / np.maximum(v[:, 1] - v[:, 0], 1e-300), 0.0)
    sr = np.where(right, (r[:, 2] - r[:, 1]) / np.maximum(v[:, 2] - v[:, 1], 1e-300), 0.0)
    return (sl + sr) / np.maximum(left.astype(float) + right, 1.0)


def median_loss(model, reference, grammar: NumberGrammar, batch, codec, reward, y: np.ndarray,
                scale: float, kl_coef: float, sft_coef: float = 0.0, pg_coef: float = 1.0,
                temperature: float = 1.0, row_weights: torch.Tensor | None = None):
    """The loss of one step on the reward of the exact median (the estimator's decision).

    The median ``m`` (:func:`~lmreg.quantile_decoding.quantile_walk`: its walk down the
    digit tree is the learner's forward pass, its log-probs those of a
    teacher-forced pass on ``m``'s digits) moves when the mass below it does:
    ``dm = -dF(m) / f(m)``, with ``F`` the policy's CDF and ``f`` its density. So
    ``r(m)`` rises along ``-r'(m) dF(m)``, and the loss is ``mean(scale * r'(m) *
    F(m))``, with ``r'`` the reward's slope across ``m``'s neighbouring grid values
    (for ``abs``: ``-sign(m - y) / scale``, so a median above its target lowers the
    mass above it). Dividing by ``f`` is left out: every row moves its CDF, not its
    median, by a step of one size. A row whose median is the target's nearest grid
    value still has a slope (for ``abs``: the target's offset from the median in steps
    of the grid gap on the target's side, below 1/2 and 0 when the target is on the
    grid, however uneven the gaps (:func:`_grid_slope`); a median two or more steps
    off has slope 1): it moves the CDF toward the target's position between the grid values, not mass
    onto the median, so rows the model has learned are not sharpened.
    The guard is the exact KL of each next-digit distribution on the median's path.
    ``temperature``: the median and the CDF are those of ``softmax(logits /
    temperature)``, the estimator's decision at its ``temperature``; the KL is the
    policy's own (temperature 1). ``row_weights`` ``[B]``: weighted batch means
    (:func:`row_mean`).

    Returns
    -------
    loss : Tensor (scalar)
    reward : float
        Mean reward of the medians.
    kl : float
        Mean KL to ``reference`` along the medians' paths.
    """
    median, logp = quantile_walk(model, grammar, batch, [0.5], temperature)      # the walk is the pass
    median = median[:, 0]                                                          # [B, L]
    powers = 10 ** np.arange(grammar.length - 1, -1, -1, dtype=np.int64)
    k = (median.cpu().numpy() * powers).sum(-1)
    grid = np.stack([k - 1, k, k + 1], axis=1).clip(0, 10 ** grammar.length - 1)   # [B, 3]
    near = (grid[..., None] // powers) % 10                                        # [B, 3, L]
    v = codec.decode(near)
    r = np.asarray(reward(v, y), dtype=np.float64)
    slope = torch.as_tensor(scale * _grid_slope(v, r), dtype=torch.float32, device=median.device)
    with torch.no_grad():
        ref_logp = path_logprobs(reference, grammar, batch, median)
    kl = path_kl(logp, ref_logp)
    w = row_weights
    cdf = path_cdf(tempered(logp, temperature), median)
    loss = pg_coef * row_mean(slope * cdf, w) + kl_coef * row_mean(kl, w)
    if sft_coef:
        true = torch.as_tensor(codec.encode(y), device=median.device)
        lp = path_logprobs(model, grammar, batch, true).gather(2, true.unsqueeze(2))
        loss = loss - sft_coef * row_mean(lp.sum(dim=(1, 2)), w)
    return loss, float(r[:, 1].mean()), float(kl.detach().mean())
