"""Pure-torch reference ops for grammar-constrained number decoding.

These define the exact semantics that fused kernels must reproduce, and they are
the CPU path. Both ops work on a *sub-vocabulary*: the output-projection rows of the
token ids allowed at one position of the number grammar (``allowed``, typically
10-25 ids), so the cost never depends on the size of the full vocabulary. All
accumulation is in float32, whatever the input dtype.
"""

from __future__ import annotations

import torch


def allowed_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   allowed: torch.Tensor) -> torch.Tensor:
    """Logits over the allowed ids only: ``hidden @ weight[allowed].T (+ bias)``.

    Parameters
    ----------
    hidden : Tensor [N, H]
    weight : Tensor [V, H]
        The full output projection; only ``allowed`` rows are read.
    bias : Tensor [V] or None
    allowed : LongTensor [A]

    Returns
    -------
    Tensor [N, A], float32

    Examples
    --------
    >>> weight, bias = torch.eye(4), torch.tensor([0.0, 0.0, 10.0, 0.0])
    >>> hidden = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float16)
    >>> logits = allowed_logits(hidden, weight, bias, torch.tensor([3, 2]))
    >>> logits.tolist(), logits.dtype  # columns follow the order of allowed
    ([[4.0, 13.0]], torch.float32)
    """
    logits = hidden.float() @ weight.index_select(0, allowed).float().t()
    if bias is not None:
        logits = logits + bias.index_select(0, allowed).float()
    return logits


_M32 = 0xFFFFFFFF


def mix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's 32-bit finaliser on int64 tensors holding values in [0, 2**32).

    Only the low 32 bits of the input count; the result is in ``[0, 2**32)``.

    Examples
    --------
    >>> mix32(torch.tensor([0, 1, 2, 2**32 - 1])).tolist()
    [0, 1364076727, 821347078, 2180083513]
    >>> mix32(torch.tensor([1 + 2**32])).tolist()  # same low 32 bits as 1
    [1364076727]
    """
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & _M32  # int64 products wrap, their low 32 bits stay exact
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & _M32
    return x ^ (x >> 16)


def counter_gumbel(seed: int, row_seeds: torch.Tensor, n_cols: int) -> torch.Tensor:
    """Gumbel noise ``[N, n_cols]`` that is a pure function of (seed, row seed, column).

    A counter-based generator: a row's noise does not depend on which other rows share
    its batch or in which order, so sampled predictions are invariant to batching.

    Parameters
    ----------
    seed : int
        One per decode step.
    row_seeds : LongTensor [N]
        One per row.
    n_cols : int

    Returns
    -------
    Tensor [N, n_cols], float32

    Examples
    --------
    >>> noise = counter_gumbel(7, torch.tensor([10, 11, 12]), n_cols=5)
    >>> noise.shape, noise.dtype
    (torch.Size([3, 5]), torch.float32)
    >>> torch.equal(counter_gumbel(7, torch.tensor([12]), 5)[0], noise[2])  # row 12 alone
    True
    >>> torch.equal(counter_gumbel(8, torch.tensor([12]), 5)[0], noise[2])  # another seed
    False
    """
    row_seeds = row_seeds.long()   # int32 ones could not hold a step seed of 2**31 or more
    cols = torch.arange(n_cols, device=row_seeds.device, dtype=torch.int64)
    key = mix32(torch.full_like(row_seeds, int(seed) & _M32) ^ mix32(row_seeds))
    x = mix32(mix32(key.unsqueeze(1) + cols * 0x9E3779B9) + 0x632BE5AB)
    u = (x.double() + 0.5) / 2.0**32
    return (-torch.log(-torch.log(u))).float()


def gumbel_noise(shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(U))`` (float32), U uniform on (0, 1).

    ``U`` is clamped to ``[1e-10, 1 - 1e-7]``, so the noise is always finite.

    Examples
    --------
    >>> noise = gumbel_noise((10000,), generator=torch.Generator().manual_seed(0))
    >>> noise.dtype, bool(torch.isfinite(noise).all())
    (torch.float32, True)
    >>> abs(noise.mean().item() - 0.5772) < 0.05  # the Gumbel mean: Euler's constant
    True
    """
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    u = u.clamp_(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def decode_step(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                allowed: torch.Tensor, temperature: float = 1.0,
                noise: torch.Tensor | None = None, seed: int | None = None,
                row_seeds: torch.Tensor | None = None, return_probs: bool = False):
    """One constrained decode step: logits over ``allowed`` -> temperature -> sample.

    Sampling is Gumbel-max: ``argmax(logits / T + noise)`` draws exactly from
    ``softmax(logits / T)``. ``noise`` is external Gumbel noise ``[N, A]``. Without
    it, ``seed`` (one per step) and ``row_seeds`` (one per row, default ``0..N-1``)
    key a counter-based generator (:func:`counter_gumbel`, which the Triton kernel
    computes in-kernel: the same noise on both), so a row's draw never depends on
    its batch. With neither, or ``temperature == 0``, decoding is greedy.

    Returns
    -------
    tokens : LongTensor [N]
        Ids from ``allowed`` (full-vocabulary ids), never anything else.
    logprob : Tensor [N], float32
        Log-probability of the chosen token under ``softmax(logits / T)`` (under
        ``softmax(logits)`` when ``temperature == 0``); not differentiable, as the
        fused kernel's is not (:func:`allowed_logprobs` is the training path).
    probs : Tensor [N, A] or None
        The distribution over ``allowed`` when ``return_probs``.

    Examples
    --------
    >>> weight = torch.eye(4)  # logits = hidden over a vocabulary of 4 ids
    >>> hidden = torch.tensor([[0.0, 5.0, 1.0, 9.0], [3.0, 0.0, 2.0, 0.0]])
    >>> allowed = torch.tensor([0, 2])
    >>> tokens, logprob, probs = decode_step(hidden, weight, None, allowed, return_probs=True)
    >>> tokens.tolist(), probs.shape  # neither noise nor seed: greedy
    ([2, 0], torch.Size([2, 2]))
    >>> torch.allclose(probs.sum(dim=1), torch.ones(2))
    True
    >>> many, _, _ = decode_step(hidden.repeat(50, 1), weight, None, allowed, seed=3)
    >>> sorted(set(many.tolist()))  # sampled: both allowed ids occur, nothing else
    [0, 2]
    >>> pair, _, _ = decode_step(hidden, weight, None, allowed, seed=3)
    >>> alone, _, _ = decode_step(hidden[1:], weight, None, allowed, seed=3, row_seeds=torch.tensor([1]))
    >>> alone.item() == pair[1].item()  # row 1's draw does not depend on row 0
    True
    """
    with torch.no_grad():
        return _decode_step(hidden, weight, bias, allowed, temperature, noise, seed, row_seeds, return_probs)


def _decode_step(hidden, weight, bias, allowed, temperature, noise, seed, row_seeds, return_probs):
    logits = allowed_logits(hidden, weight, bias, allowed)
    if temperature > 0:
        logits = logits / temperature
    lse = torch.logsumexp(logits, dim=-1)
    if temperature > 0 and noise is None and seed is not None:
        if row_seeds is None:
            row_seeds = torch.arange(logits.shape[0], device=logits.device)
        noise = counter_gumbel(seed, row_seeds.to(logits.device), logits.shape[1])
    if noise is None or temperature == 0:
        choice = logits.argmax(dim=-1)
    else:
        choice = (logits + noise.to(logits.device, torch.float32)).argmax(dim=-1)
    chosen = logits.gather(1, choice.unsqueeze(1)).squeeze(1) - lse
    probs = torch.exp(logits - lse.unsqueeze(1)) if return_probs else None
    return allowed[choice].long(), chosen, probs


def allowed_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     allowed: torch.Tensor, targets: torch.Tensor,
                     temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities of target tokens over the allowed set (differentiable).

    Parameters
    ----------
    hidden : Tensor [N, H]
    weight, bias : the full output projection
    allowed : LongTensor [A]
    targets : LongTensor [N]
        Indices *into* ``allowed`` (0 .. A-1), not vocabulary ids.

    Returns
    -------
    Tensor [N], float32: ``log softmax(logits / T)[targets]``.

    Examples
    --------
    >>> hidden = torch.tensor([[0.0, 5.0, 1.0, 9.0]], requires_grad=True)
    >>> lp = allowed_logprobs(hidden, torch.eye(4), None, torch.tensor([0, 2]), torch.tensor([1]))
    >>> round(lp.exp().item(), 4)  # softmax([0, 1])[1]
    0.7311
    >>> lp.sum().backward()
    >>> [round(g, 4) for g in hidden.grad[0].tolist()]  # no gradient through disallowed ids
    [-0.2689, 0.0, 0.2689, 0.0]
    """
    logits = allowed_logits(hidden, weight, bias, allowed)
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
