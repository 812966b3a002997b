"""Exact quantiles on the number's token tree: one decode pass per level, no sampling.

With the ``digits`` codec token sequences sort like the numbers they write, so the
``tau``-quantile of the model's number distribution is one walk down the tree
(:func:`quantile_batch`); :func:`quantile_walk` keeps its log-probs for the RL
``median`` step, and :func:`quantile_tokens` runs it over encoded rows, batched by
length as :func:`~lmreg.decoding.sample_tokens` batches sampling.
"""

from __future__ import annotations

import numpy as np
import torch

from . import kernels
from .batching import Encoded
from .decoding import NumberGrammar, _by_length, _walk


@torch.no_grad()
def quantile_batch(model, grammar: NumberGrammar, batch, levels, temperature: float = 1.0) -> torch.Tensor:
    """The exact ``levels``-quantiles of the model's number distribution, for one batch.

    Valid when, at every position, the allowed ids in increasing order are the
    digits in increasing numeric order and earlier positions are more significant
    (the ``digits`` codec): token sequences then sort like the numbers they write,
    and the ``tau``-quantile (the smallest number whose probability of being
    reached is at least ``tau``) is found by walking down the token tree once. At
    each position take the first token whose cumulative probability reaches
    ``tau``, and carry on inside it with ``tau <- (tau - mass before it) / its
    mass``: inverse-CDF sampling with one uniform number ``tau`` for the whole
    sequence. One decode pass per level, like greedy decoding, and no sampling
    noise: the median of 16 samples scatters around this one.

    Parameters
    ----------
    model : RegressionLM
    grammar : NumberGrammar
    batch : Batch
        Left-padded prompts on the model's device.
    levels : sequence of float in [0, 1]
    temperature : float, default=1.0
        The quantiles are those of ``softmax(logits / temperature)``, as sampled.

    Returns
    -------
    LongTensor [B, len(levels), length]

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> from lmreg.batching import Encoded, collate
    >>> from lmreg.decoding import sample_batch
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    >>> grammar = NumberGrammar(np.ones((2, 10), dtype=bool))       # two digits, 00 .. 99
    >>> ids = [np.array([2, 5, 3])]
    >>> enc = Encoded(ids, [np.zeros(3, np.float32)], [np.zeros(3, np.int8)])
    >>> q = quantile_batch(model, grammar, collate(enc, [0], 0), [0.1, 0.5, 0.9])
    >>> values = (q[0] * torch.tensor([10, 1])).sum(-1).tolist()
    >>> samples, _ = sample_batch(model, grammar, collate(enc, [0], 0), n_samples=4000, seed=0)
    >>> drawn = (samples[0] * torch.tensor([10, 1])).sum(-1).double()
    >>> values == sorted(values), [abs((drawn <= v).double().mean().item() - t) < 0.05
    ...                            for v, t in zip(values, [0.1, 0.5, 0.9])]
    (True, [True, True, True])

    :func:`quantile_walk` takes the same walk and keeps its log-probs, with gradients:

    >>> tokens, logp = quantile_walk(model, grammar, collate(enc, [0], 0), [0.1, 0.5, 0.9])
    >>> torch.equal(tokens, q), logp.shape, logp.requires_grad
    (True, torch.Size([3, 2, 10]), True)
    """
    return _quantile_walk(model, grammar, batch, levels, temperature, None)


def quantile_walk(model, grammar: NumberGrammar, batch, levels, temperature: float = 1.0):
    """:func:`quantile_batch` that also returns the log-probs it walked through, differentiable.

    The log-probs of every allowed token at each position of each quantile's path
    are those a teacher-forced pass on the quantile's tokens would give (the walk
    feeds the same tokens), so an objective on the quantile's path needs no second
    forward pass (equal up to float rounding: the walk runs one token at a time on a
    KV cache); they are the policy's (temperature 1), whatever ``temperature``
    chose the path. Run it with gradients enabled to train through them. Every
    position must allow the same number ``K`` of tokens (the ``digits`` codec).

    Returns
    -------
    tokens : LongTensor [B, len(levels), length]
    logp : Tensor [B * len(levels), length, K]
        Log-softmax over each position's ``K`` allowed tokens (float32); row
        ``b * len(levels) + l`` walks ``tokens[b, l]`` (``tokens.reshape(-1, length)``).

    Examples
    --------
    See :func:`quantile_batch`'s.
    """
    logps = []
    tokens = _quantile_walk(model, grammar, batch, levels, temperature, logps)
    return tokens, torch.stack(logps, dim=1)


def _quantile_walk(model, grammar: NumberGrammar, batch, levels, temperature: float, logps: list | None):
    """The walk of :func:`quantile_batch`; appends each position's log-probs to ``logps`` if given."""
    kernels.check_temperature(temperature, greedy_zero=False)   # 0 or below: all-zero or reversed quantiles
    levels = np.atleast_1d(np.asarray(levels, dtype=float))
    if levels.ndim != 1 or not levels.size or not np.all((levels >= 0) & (levels <= 1)):
        raise ValueError(f"levels must be one or more quantile levels in [0, 1]; got {levels.tolist()!r}.")
    sizes = {len(a) for a in grammar.allowed}
    if logps is not None and len(sizes) > 1:   # the log-probs stack into [rows, length, K]
        raise ValueError(f"quantile_walk needs the same number of allowed ids at every position (the digits "
                         f"codec); this grammar allows {sorted(sizes)}.")
    tau = torch.as_tensor(levels, dtype=torch.float64, device=batch.ids.device).repeat(batch.ids.shape[0])

    def choose(p, h):
        nonlocal tau
        allowed = grammar.allowed[p]
        logits = kernels.allowed_logits(h, model.head.weight, model.head.bias, allowed).float()
        if logps is not None:
            logps.append(torch.log_softmax(logits, dim=-1))
        probs = torch.softmax(logits.detach() / temperature, dim=-1).double()
        cum = probs.cumsum(dim=-1)
        j = (cum < tau.unsqueeze(1)).sum(dim=1).clamp(max=len(allowed) - 1)
        mass = probs.gather(1, j.unsqueeze(1)).squeeze(1)
        before = cum.gather(1, j.unsqueeze(1)).squeeze(1) - mass
        tau = ((tau - before) / mass.clamp_min(1e-300)).clamp(0.0, 1.0)   # the level inside digit j
        return allowed[j]

    return _walk(model, grammar, batch, len(levels), choose)


@torch.no_grad()
def quantile_tokens(model, enc: Encoded, grammar: NumberGrammar, pad_id: int, levels, temperature: float = 1.0,
                    max_sequences: int | None = None, max_rows: int = 64, device="cpu") -> np.ndarray:
    """:func:`quantile_batch` over every encoded row, batched by length like :func:`sample_tokens`.

    Returns
    -------
    ndarray [n_rows, len(levels), length] of number-token ids, in input order.
    """
    levels = [float(t) for t in np.atleast_1d(levels)]
    if not levels or not all(0 < t < 1 for t in levels):
        raise ValueError(f"levels must be one or more quantile levels in (0, 1); got {levels!r}.")

    def decode(batch, rows):
        return quantile_batch(model, grammar, batch, levels, temperature)

    return _by_length(model, enc, pad_id, len(levels), grammar.length, decode, max_sequences, max_rows, device)
