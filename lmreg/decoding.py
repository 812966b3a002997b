"""Grammar-constrained decoding of numbers, and decision rules.

One prefill per input: the prompt runs through the backbone once, its KV cache is
then repeated for the ``n_samples`` samples of that input, and each number position
costs one single-token step for all samples at once. Each step goes through
:func:`lmreg.kernels.decode_step`, which only looks at the ids the codec's grammar
allows at that position, so every sample is a valid number.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from . import kernels
from .batching import Encoded, collate, length_batches

DECISION_RULES = ("median", "mean", "mode")


class NumberGrammar:
    """Device-side tables of a codec's position-indexed grammar.

    Parameters
    ----------
    grammar : bool array [length, n_number_tokens]
        ``grammar[p, t]`` is True when number token ``t`` may appear at position ``p``.

    Attributes
    ----------
    allowed : list of LongTensor
        For each position, the allowed number-token ids.
    index : LongTensor [length, n_number_tokens]
        Position of each token inside ``allowed[p]`` (-1 when not allowed).

    Examples
    --------
    >>> import numpy as np
    >>> g = NumberGrammar(np.array([[True, True, False], [False, True, True]]))
    >>> g.allowed[1].tolist(), g.index[1].tolist()
    ([1, 2], [-1, 0, 1])
    """

    def __init__(self, grammar, device="cpu"):
        grammar = torch.as_tensor(np.asarray(grammar, dtype=bool))
        if grammar.ndim != 2 or grammar.shape[0] == 0 or not bool(grammar.any(dim=1).all()):
            raise ValueError("grammar must be [length, vocab] with at least one position and one allowed token "
                             "per position.")
        self.length = grammar.shape[0]
        self.allowed = [torch.nonzero(row).squeeze(1).to(device) for row in grammar]
        index = torch.full(grammar.shape, -1, dtype=torch.long)
        for p, ids in enumerate(self.allowed):
            index[p, ids.cpu()] = torch.arange(len(ids))
        self.index = index.to(device)


def target_ranks(grammar: NumberGrammar, targets: torch.Tensor, check: bool = True) -> torch.Tensor:
    """Each target token's index among its position's allowed ids, ``[B, length]``.

    With ``check``, targets that are not ``[B, length]`` ids of the grammar's vocabulary
    (a negative id would index from the end) or that the grammar forbids are a ValueError
    (two host syncs); without, they are trusted (ids the codec encoded).
    """
    positions = torch.arange(grammar.length, device=grammar.index.device)
    if not check:
        return grammar.index[positions[None, :], targets]
    vocab = grammar.index.shape[1]
    if targets.ndim != 2 or targets.shape[1] != grammar.length:
        raise ValueError(f"targets must be [rows, {grammar.length}] number-token ids; got shape "
                         f"{tuple(targets.shape)}.")
    if targets.numel():
        lo, hi = (int(v) for v in torch.aminmax(targets))
        if lo < 0 or hi >= vocab:
            raise ValueError(f"target token ids must lie in 0 .. {vocab - 1}; got {lo if lo < 0 else hi}.")
    idx = grammar.index[positions[None, :], targets]   # -1 where the grammar forbids the id
    bad = (idx < 0).nonzero()
    if len(bad):   # the fused kernel would score such a target silently, the RPS as the first allowed id
        row, p = (int(v) for v in bad[0])
        raise ValueError(f"target token {int(targets[row, p])} (row {row}) is not allowed at number "
                         f"position {p} by the grammar.")
    return idx


def constrained_logprobs(model, hidden: torch.Tensor, grammar: NumberGrammar,
                         targets: torch.Tensor, temperature: float = 1.0, check: bool = True) -> torch.Tensor:
    """Log-probabilities of the target number tokens under the constrained policy.

    Differentiable (the training loss of SFT and RL); each position is normalised
    over the tokens its grammar allows, of ``softmax(logits / temperature)``.

    Parameters
    ----------
    model : RegressionLM
        Supplies the number head.
    hidden : Tensor [B, length, H]
        Hidden state that predicts each number position.
    grammar : NumberGrammar
    targets : LongTensor [B, length]
        Number-token ids.
    temperature : float, default=1.0
        That of the policy (RL scores samples drawn at it).
    check : bool, default=True
        Refuse targets outside the vocabulary or forbidden by the grammar
        (:func:`target_ranks`); False trusts them (the codec's own encodings).

    Returns
    -------
    Tensor [B, length], float32

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    >>> allowed = np.zeros((2, 10), dtype=bool)
    >>> allowed[0, :2] = allowed[1, 2:] = True  # position 0: ids 0-1; position 1: ids 2-9
    >>> grammar = NumberGrammar(allowed)
    >>> hidden = torch.randn(1, 2, 32).repeat(2, 1, 1)  # the same states for both rows
    >>> lp = constrained_logprobs(model, hidden, grammar, torch.tensor([[0, 2], [1, 9]]))
    >>> lp.shape, lp.dtype
    (torch.Size([2, 2]), torch.float32)
    >>> round(lp[:, 0].exp().sum().item(), 5)  # ids 0 and 1 share all the mass at position 0
    1.0
    """
    idx = target_ranks(grammar, targets, check)
    _check_hidden(hidden, targets, grammar)
    out = [kernels.allowed_logprobs(hidden[:, p], model.head.weight, model.head.bias, grammar.allowed[p],
                                    idx[:, p], temperature, check=False) for p in range(grammar.length)]
    return torch.stack(out, dim=1)


def _check_hidden(hidden: torch.Tensor, targets: torch.Tensor, grammar: NumberGrammar) -> None:
    """``hidden`` holds the states of the number positions only: the whole sequence's
    states would be read from their start, the prompt's."""
    if hidden.ndim != 3 or hidden.shape[1] != grammar.length or hidden.shape[0] != targets.shape[0]:
        raise ValueError(f"hidden must be [rows, {grammar.length}, H], the states that predict the "
                         f"{grammar.length} number positions of {targets.shape[0]} rows (teacher_forced_states); "
                         f"got {tuple(hidden.shape)}.")


def ranked_probability_scores(model, hidden: torch.Tensor, grammar: NumberGrammar,
                              targets: torch.Tensor, check: bool = True) -> torch.Tensor:
    """Ranked probability score of each number position against the target token.

    ``sum_k (F(k) - 1[k >= t])**2`` over the tokens allowed at the position, in id
    order, ``F`` the cumulative constrained probabilities and ``t`` the target's rank:
    zero only for all mass on the target, and, unlike cross-entropy, lower for mass
    on a neighbouring digit than on a distant one. Every codec here lists its digits
    (and exponents) in numeric order, so this is the discrete CRPS of each digit
    (Epstein 1969). Like cross-entropy it is a proper score, so adding it keeps the
    distribution the loss is minimised by. Training with a distance-aware loss on
    number tokens next to cross-entropy: Zausinger et al., "Regress, Don't Guess"
    (ICML 2025).

    Parameters
    ----------
    model : RegressionLM
        Supplies the number head.
    hidden : Tensor [B, length, H]
        Hidden state that predicts each number position (teacher forced).
    grammar : NumberGrammar
    targets : LongTensor [B, length]
        Number-token ids.
    check : bool, default=True
        As in :func:`constrained_logprobs`.

    Returns
    -------
    Tensor [B, length], float32

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> cfg = BackboneConfig(hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16)
    >>> model = RegressionLM(build_backbone(cfg, 4 + 10), 4, 10)
    >>> _ = torch.nn.init.zeros_(model.head.weight), torch.nn.init.zeros_(model.head.bias)  # uniform
    >>> grammar = NumberGrammar(np.ones((1, 10), dtype=bool))
    >>> rps = ranked_probability_scores(model, torch.zeros(2, 1, 8), grammar, torch.tensor([[0], [9]]))
    >>> [round(v, 4) for v in rps[:, 0].tolist()]   # sum over k<9 of (1-(k+1)/10)**2, and of ((k+1)/10)**2
    [2.85, 2.85]
    """
    ranks = target_ranks(grammar, targets, check)
    _check_hidden(hidden, targets, grammar)
    scores = []
    for p in range(grammar.length):
        allowed = grammar.allowed[p]
        logits = hidden[:, p].float() @ model.head.weight[allowed].float().T + model.head.bias[allowed].float()
        cdf = torch.softmax(logits, dim=-1).cumsum(-1)[:, :-1]
        rank = ranks[:, p]
        above = (torch.arange(len(allowed) - 1, device=rank.device) >= rank[:, None]).float()
        scores.append(((cdf - above) ** 2).sum(-1))
    return torch.stack(scores, dim=1)


def teacher_forced_states(model, batch, grammar: NumberGrammar, tokens: torch.Tensor) -> torch.Tensor:
    """Hidden states ``[B, length, H]`` that predict each number position, ``tokens`` fed in.

    Teacher forcing: the prompt's last state predicts position 0, each number token
    the next one; one pass for the prompt and the number (differentiable).
    """
    hidden, _ = model(batch.ids, batch.values, batch.kinds, batch.attention_mask, number_tokens=tokens[:, :-1])
    return hidden[:, -grammar.length:]


@torch.no_grad()
def sample_batch(model, grammar: NumberGrammar, batch, n_samples: int = 1, temperature: float = 1.0,
                 greedy: bool = False, seed: int = 0, row_seeds: torch.Tensor | None = None,
                 first_sample: int = 0):
    """Decode ``n_samples`` numbers for every row of one (left-padded) batch.

    The sampler's noise is a pure function of (``seed``, position, the row's seed,
    sample index), so a row's samples do not depend on the rows batched with it.

    Parameters
    ----------
    model : RegressionLM
    grammar : NumberGrammar
    batch : Batch
        Left-padded prompts (:func:`~lmreg.batching.collate`) on the model's device.
    n_samples : int, default=1
        Samples per row; the prompt's KV cache is shared between them.
    temperature : float, default=1.0
    greedy : bool, default=False
        Pick the most likely allowed token at each position (one sample per row).
    seed : int, default=0
    row_seeds : LongTensor [B] or None, default=None
        One seed per row; ``None`` means ``0 .. B-1``.
    first_sample : int, default=0
        Index of the first sample: samples ``first_sample .. first_sample + n_samples - 1``
        are drawn, so a row's samples can be decoded in blocks and come out the same.

    Returns
    -------
    tokens : LongTensor [B, n_samples, length]
    logprob : Tensor [B, n_samples]
        Sum over positions of the chosen tokens' log-probabilities.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    >>> allowed = np.zeros((2, 10), dtype=bool)
    >>> allowed[0, :2] = allowed[1, 2:] = True  # position 0: ids 0-1; position 1: ids 2-9
    >>> grammar = NumberGrammar(allowed)
    >>> from lmreg.batching import Encoded, collate
    >>> ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4])]
    >>> enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> tokens, logprob = sample_batch(model, grammar, collate(enc, [0, 1], 0), n_samples=4, seed=1)
    >>> tokens.shape, logprob.shape
    (torch.Size([2, 4, 2]), torch.Size([2, 4]))
    >>> bool((tokens[..., 0] < 2).all() and (tokens[..., 1] >= 2).all())  # grammar holds
    True
    >>> alone, _ = sample_batch(model, grammar, collate(enc, [1], 0), n_samples=4, seed=1,
    ...                         row_seeds=torch.tensor([1]))
    >>> torch.equal(alone[0], tokens[1])  # row 1 samples alike without row 0
    True
    >>> last, _ = sample_batch(model, grammar, collate(enc, [0, 1], 0), n_samples=2, seed=1, first_sample=2)
    >>> torch.equal(last, tokens[:, 2:])  # samples 2 and 3 alike in a block of their own
    True
    """
    B = batch.ids.shape[0]
    S = 1 if greedy else check_n_samples(n_samples)
    if row_seeds is None:
        row_seeds = torch.arange(B)
    sample_seeds = kernels.reference.mix32(
        row_seeds.long().repeat_interleave(S) * 0x9E3779B9
        + torch.arange(first_sample, first_sample + S).repeat(B)).to(batch.ids.device)
    total = torch.zeros(B * S, device=batch.ids.device)

    def choose(p, h):
        nonlocal total
        step_seed = None if greedy else (int(seed) * 1000003 + p) & 0x7FFFFFFF
        tok, lp, _ = kernels.decode_step(h, model.head.weight, model.head.bias, grammar.allowed[p],
                                         temperature=temperature, seed=step_seed, row_seeds=sample_seeds)
        total = total + lp
        return tok

    return _walk(model, grammar, batch, S, choose), total.view(B, S)


def check_n_samples(n_samples) -> int:
    """``n_samples`` as an int, or a ValueError unless it is a positive integer (not a bool)."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    return int(n_samples)


def _walk(model, grammar: NumberGrammar, batch, n: int, choose) -> torch.Tensor:
    """Prefill ``batch`` once, repeat its KV cache for ``n`` sequences per row, then run one
    single-token step per number position with the token ``choose(p, h [B*n, H])`` picks.

    Returns LongTensor [B, n, length].
    """
    hidden, cache = model(batch.ids, batch.values, batch.kinds, batch.attention_mask, use_cache=True)
    h, mask = hidden[:, -1], batch.attention_mask
    B = h.shape[0]
    if n > 1:  # share the prefill between all sequences of an input
        cache.batch_repeat_interleave(n)
        h, mask = h.repeat_interleave(n, dim=0), mask.repeat_interleave(n, dim=0)
    tokens = []
    for p in range(grammar.length):
        tok = choose(p, h)
        tokens.append(tok)
        if p + 1 < grammar.length:
            mask = torch.cat([mask, mask.new_ones(B * n, 1)], dim=1)
            h, cache = model.run(model.embed_numbers(tok).unsqueeze(1), mask, past_key_values=cache, use_cache=True)
            h = h[:, -1]
    return torch.stack(tokens, dim=1).view(B, n, grammar.length)


@torch.no_grad()
def sample_tokens(model, enc: Encoded, grammar: NumberGrammar, pad_id: int, n_samples: int = 1,
                  temperature: float = 1.0, greedy: bool = False, seed: int = 0,
                  max_sequences: int | None = None, max_rows: int = 64, device="cpu") -> np.ndarray:
    """Decode every encoded row; rows are batched by length (dynamic padding).

    Each row's seed is a hash of its content, so duplicate rows, and the same row
    in another order or batch, get the same samples. The model is put in eval
    mode for the call and its mode restored afterwards.

    Parameters
    ----------
    model : RegressionLM
    enc : Encoded
    grammar : NumberGrammar
    pad_id : int
    n_samples, temperature, greedy, seed
        As in :func:`sample_batch`.
    max_sequences : int or None, default=None
        Rows times samples decoded together at most (memory grows with it): more samples of
        one row than this are decoded in blocks, each with its own prefill, and come out
        the same. None: :func:`max_sequences_for` the device.
    max_rows : int, default=64
        Prompts per prefill at most.
    device : str or torch.device, default="cpu"

    Returns
    -------
    ndarray [n_rows, n_samples (1 if greedy), length] of number-token ids, in input order.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10).eval()
    >>> allowed = np.zeros((2, 10), dtype=bool)
    >>> allowed[0, :2] = allowed[1, 2:] = True  # position 0: ids 0-1; position 1: ids 2-9
    >>> grammar = NumberGrammar(allowed)
    >>> ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4])]
    >>> enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> out = sample_tokens(model, enc, grammar, pad_id=0, n_samples=3, seed=1)
    >>> out.shape, out.dtype
    ((2, 3, 2), dtype('int64'))
    >>> swapped = Encoded(enc.ids[::-1], enc.values[::-1], enc.kinds[::-1])
    >>> np.array_equal(sample_tokens(model, swapped, grammar, 0, n_samples=3, seed=1), out[::-1])
    True
    >>> sample_tokens(model, enc, grammar, pad_id=0, greedy=True).shape
    (2, 1, 2)
    """
    S = 1 if greedy else check_n_samples(n_samples)
    row_seeds = row_keys(enc)
    max_sequences = max_sequences_for(device) if max_sequences is None else max_sequences
    block = max(1, min(S, max_sequences))   # one row's samples decoded together at most

    def decode(batch, rows):
        seeds = row_seeds[torch.as_tensor(rows)]
        return torch.cat([sample_batch(model, grammar, batch, min(block, S - first), temperature, greedy, seed, seeds,
                                       first_sample=first)[0] for first in range(0, S, block)], dim=1)

    return _by_length(model, enc, pad_id, S, grammar.length, decode, max_sequences, max_rows, device)


def row_keys(enc: Encoded) -> torch.Tensor:
    """One seed per row from its content (CRC-32 of its ids and values): duplicate rows, and
    a row in another order or batch, get the same key, so they sample alike.

    >>> enc = Encoded([np.array([2, 5]), np.array([2, 5])], [np.zeros(2, np.float32)] * 2,
    ...               [np.zeros(2, np.int8)] * 2)
    >>> keys = row_keys(enc); keys.dtype, bool(keys[0] == keys[1])
    (torch.int64, True)
    """
    return torch.tensor([zlib.crc32(i.tobytes() + v.tobytes()) for i, v in zip(enc.ids, enc.values)],
                        dtype=torch.int64)


def max_sequences_for(device) -> int:
    """Sequences decoded together by default on ``device``: 256 on a CPU, where each decode
    step copies the whole key-value cache (1,024 made sampling 16-47% slower there, same
    samples), 1,024 on an accelerator.

    >>> max_sequences_for("cpu"), max_sequences_for("cuda")
    (256, 1024)
    """
    return 256 if torch.device(device).type == "cpu" else 1024


def rows_per_batch(S: int, max_sequences: int | None = None, max_rows: int = 64, device="cpu") -> int:
    """Rows decoded together with ``S`` sequences each (the defaults of :func:`sample_tokens`):
    few rows per prefill keep length-sorted batches tight (padding is wasted compute); many
    samples per row fill the decode steps instead.

    >>> rows_per_batch(16), rows_per_batch(1), rows_per_batch(4000), rows_per_batch(16, device="cuda")
    (16, 64, 1, 64)
    """
    max_sequences = max_sequences_for(device) if max_sequences is None else max_sequences
    return max(1, min(max_rows, max_sequences // S))


def _by_length(model, enc: Encoded, pad_id: int, S: int, length: int, decode, max_sequences: int,
               max_rows: int, device) -> np.ndarray:
    """Run ``decode(batch, rows) -> LongTensor [len(rows), S, length]`` over length-sorted batches.

    The model is in eval mode for the call and its mode restored afterwards.
    """
    was_training = model.training
    model.eval()
    out = np.zeros((len(enc), S, length), dtype=np.int64)
    try:
        for rows in length_batches(enc.lengths(), rows_per_batch(S, max_sequences, max_rows, device)):
            out[rows] = decode(collate(enc, rows, pad_id).to(device), rows).cpu().numpy()
    finally:
        model.train(was_training)
    return out


def decide(samples: np.ndarray, rule="median") -> np.ndarray:
    """Reduce samples ``[n, S]`` to one prediction per row.

    ``median`` minimises absolute error, ``mean`` squared error (RAFT, Lukasik et
    al. 2025), a float ``q`` in (0, 1) the pinball loss at level ``q`` (the sample
    quantile). ``mode`` is handled by greedy decoding, not by this function.

    Examples
    --------
    >>> decide(np.array([[1.0, 2.0, 9.0]]), "median").tolist()
    [2.0]
    >>> decide(np.array([[1.0, 2.0, 9.0]]), 0.5).tolist()
    [2.0]
    """
    check_rule(rule)
    samples = np.asarray(samples)
    if samples.ndim < 2 or samples.shape[1] == 0:
        raise ValueError(f"samples must be [rows, n_samples] with at least one sample per row; got shape "
                         f"{samples.shape}.")
    if rule == "median":
        return np.median(samples, axis=1)
    if rule == "mean":
        return samples.mean(axis=1)
    if rule == "mode":
        raise ValueError("the 'mode' rule decodes greedily; it does not reduce samples.")
    return np.quantile(samples, float(rule), axis=1)


def check_rule(rule) -> None:
    """Raise ValueError unless ``rule`` is a known decision rule or a level in (0, 1).

    Parameters
    ----------
    rule : {"median", "mean", "mode"} or float
        A decision rule name, or a quantile level strictly between 0 and 1.

    Examples
    --------
    >>> check_rule("median"), check_rule(0.9)
    (None, None)
    >>> check_rule(1.5)
    Traceback (most recent call last):
    ...
    ValueError: decision must be one of ('median', 'mean', 'mode') or a quantile level in (0, 1); got 1.5.
    """
    if isinstance(rule, str):
        if rule not in DECISION_RULES:
            raise ValueError(f"decision must be one of {DECISION_RULES} or a quantile level in (0, 1); "
                             f"got {rule!r}.")
    elif not (isinstance(rule, (float, int, np.floating)) and not isinstance(rule, bool) and 0 < rule < 1):
        raise ValueError(f"decision must be one of {DECISION_RULES} or a quantile level in (0, 1); "
                         f"got {rule!r}.")
