"""The model: a ``transformers`` decoder with value embeddings and a number head.

:class:`RegressionLM` wraps any Hugging Face base model that accepts
``inputs_embeds`` (the default is a small Llama built from a config, random init).
Around it sit three small pieces:

* one embedding table covering the input vocabulary *and* the number tokens (number
  token ``t`` has id ``n_input_tokens + t``), so emitted numbers are fed back as
  ordinary tokens;
* a :class:`ValueEmbedding` that adds a learnt function of the normalised value to
  each numeric field token (periodic features, Gorishniy et al. 2022);
* a number head: a linear layer onto the number sub-vocabulary only (10-25 ids), so
  no logits are ever computed over the input vocabulary.

Sequences are left-padded: the prompt ends at the same position for every row, so
the number tokens sit at the tail and positions come from the attention mask.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
import threading
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn


@dataclass
class BackboneConfig:
    """Size of the from-scratch default backbone.

    Measured on 2 CPU cores (``benchmarks/``): a 1-2M parameter model gets several
    times more optimizer updates per second than a 4M one, and under a fixed time
    budget the extra updates matter more than the width.

    Parameters
    ----------
    arch : {"llama"}, default="llama"
        Architecture family of :func:`build_backbone`.
    hidden_size : int, default=128
    num_layers : int, default=2
    num_heads : int, default=4
        Attention heads; must divide ``hidden_size``.
    intermediate_size : int, default=384
        Width of the MLP blocks.
    max_positions : int, default=1024
        Longest sequence, prompt and number tokens together.
    dropout : float, default=0.0
        Attention dropout; :class:`RegressionLM` applies the same rate to its input
        embeddings.

    Examples
    --------
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> cfg.to_dict()["hidden_size"], cfg.to_dict()["arch"]
    (32, 'llama')
    >>> BackboneConfig(**cfg.to_dict()) == cfg  # how a saved model stores it
    True
    """

    arch: str = "llama"
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 1024
    dropout: float = 0.0

    def __post_init__(self):
        # transformers' configs are strict dataclasses: np.int64(32) (a grid from np.arange) is refused
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.generic):
                setattr(self, f.name, value.item())

    def to_dict(self) -> dict:
        """The fields as a JSON-serializable dict."""
        return asdict(self)


def check_heads(hidden_size: int, num_heads: int) -> None:
    """``hidden_size`` must split into ``num_heads`` heads of an even size: rotary position
    embeddings turn the dimensions of a head in pairs (an odd size fails inside
    transformers' config check, or at the first forward pass for a size of 3).

    Examples
    --------
    >>> check_heads(32, 2)
    >>> check_heads(20, 4)
    Traceback (most recent call last):
    ...
    ValueError: hidden_size / num_heads must be an even head size (rotary position embeddings rotate pairs of dimensions); got hidden_size=20, num_heads=4: heads of 5. Try num_heads=2 or 5.
    """
    if num_heads < 1 or hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}).")
    if (hidden_size // num_heads) % 2:
        ok = [h for h in range(1, hidden_size + 1) if hidden_size % h == 0 and (hidden_size // h) % 2 == 0]
        near = sorted(ok, key=lambda h: abs(h - num_heads))[:2]
        hint = f" Try num_heads={' or '.join(map(str, sorted(near)))}." if near else " Use an even hidden_size."
        raise ValueError(f"hidden_size / num_heads must be an even head size (rotary position embeddings rotate "
                         f"pairs of dimensions); got hidden_size={hidden_size}, num_heads={num_heads}: heads of "
                         f"{hidden_size // num_heads}.{hint}")


def build_backbone(config: BackboneConfig, vocab_size: int) -> nn.Module:
    """Instantiate a randomly initialised ``transformers`` base model from a config.

    Parameters
    ----------
    config : BackboneConfig
    vocab_size : int
        Rows of the embedding table: input tokens plus number tokens.

    Returns
    -------
    transformers.LlamaModel
        Base model (no LM head) with SDPA attention.

    Raises
    ------
    ValueError
        For an unknown ``arch``, or heads that :func:`check_heads` refuses.

    Examples
    --------
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> backbone = build_backbone(cfg, vocab_size=50 + 12)
    >>> backbone.get_input_embeddings().weight.shape, len(backbone.layers)
    (torch.Size([62, 32]), 1)
    >>> build_backbone(BackboneConfig(hidden_size=30, num_heads=4), 62)
    Traceback (most recent call last):
    ...
    ValueError: hidden_size (30) must be divisible by num_heads (4).
    """
    if config.arch != "llama":
        raise ValueError(f"Unknown backbone arch {config.arch!r}; supported: 'llama'.")
    from transformers import LlamaConfig, LlamaModel

    check_heads(config.hidden_size, config.num_heads)
    hf_config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_positions,
        attention_dropout=config.dropout,
        tie_word_embeddings=False,
    )
    hf_config._attn_implementation = "sdpa"
    return LlamaModel(hf_config)


class ValueEmbedding(nn.Module):
    """Map a normalised scalar to a hidden-size vector, per feature.

    Periodic features with *per-column* learnt frequencies followed by a shared MLP
    (the "PLR" embeddings of Gorishniy et al., 2022): each numeric column gets its own
    frequency vector and its own "missing" vector, indexed by its field token id.

    Parameters
    ----------
    hidden_size : int
        Output size (the backbone's hidden size).
    n_tokens : int
        Input vocabulary size: one frequency vector and one missing vector per id.
    n_frequencies : int, default=16
        Frequencies per column; the features are ``v``, ``sin(2 pi f v)`` and
        ``cos(2 pi f v)``.
    sigma : float, default=1.0
        Standard deviation of the initial frequencies.

    Examples
    --------
    >>> emb = ValueEmbedding(hidden_size=8, n_tokens=5, n_frequencies=4)
    >>> values = torch.tensor([[0.5, -1.0]])
    >>> ids = torch.tensor([[3, 4]])  # field token ids of two numeric columns
    >>> emb(values, ids).shape
    torch.Size([1, 2, 8])
    >>> bool((emb.missing(ids) == 0).all())  # "missing" vectors start at zero
    True
    """

    def __init__(self, hidden_size: int, n_tokens: int, n_frequencies: int = 16, sigma: float = 1.0):
        super().__init__()
        self.frequencies = nn.Embedding(n_tokens, n_frequencies)
        nn.init.normal_(self.frequencies.weight, std=sigma)
        self.proj = nn.Sequential(
            nn.Linear(2 * n_frequencies + 1, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))
        self.missing = nn.Embedding(n_tokens, hidden_size)
        nn.init.zeros_(self.missing.weight)

    def forward(self, values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Values ``[B, T]`` at field token ids ``[B, T]`` -> embeddings ``[B, T, hidden_size]``."""
        angles = 2 * math.pi * values.unsqueeze(-1) * self.frequencies(ids)
        feats = torch.cat([values.unsqueeze(-1), torch.sin(angles), torch.cos(angles)], dim=-1)
        return self.proj(feats)


class RegressionLM(nn.Module):
    """Backbone + value embeddings + number head.

    Parameters
    ----------
    backbone : torch.nn.Module
        A ``transformers`` base model accepting ``inputs_embeds`` and returning
        ``last_hidden_state`` (and ``past_key_values`` when ``use_cache``).
    n_input_tokens : int
        Size of the input vocabulary; number token ``t`` has embedding id
        ``n_input_tokens + t``.
    n_number_tokens : int
        Size of the number sub-vocabulary (the head's output size).

    Examples
    --------
    >>> import torch
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 50 + 12), 50, 12)
    >>> ids = torch.randint(0, 50, (2, 7))
    >>> hidden, _ = model(ids, torch.zeros(2, 7), torch.zeros(2, 7, dtype=torch.int8),
    ...                   torch.ones(2, 7, dtype=torch.long))
    >>> model.number_logits(hidden[:, -1]).shape
    torch.Size([2, 12])
    """

    def __init__(self, backbone: nn.Module, n_input_tokens: int, n_number_tokens: int,
                 value_embedding: bool = True, number_embedding: nn.Embedding | None = None):
        super().__init__()
        self.backbone = backbone
        self.n_input_tokens = n_input_tokens
        self.n_number_tokens = n_number_tokens
        hidden = backbone.config.hidden_size
        self.values = ValueEmbedding(hidden, n_input_tokens) if value_embedding else None
        self.dropout = nn.Dropout(getattr(backbone.config, "attention_dropout", 0.0) if value_embedding else 0.0)
        self.head = nn.Linear(hidden, n_number_tokens, bias=True)
        # A separate table for number tokens (pretrained backbones: the vocabulary
        # stays frozen), else number token t is row n_input_tokens + t of the shared one.
        self.number_embedding = number_embedding
        # transformers 5.x renamed ``past_key_values`` to ``cache``; accept both.
        params = inspect.signature(backbone.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        emb = backbone.get_input_embeddings()
        if number_embedding is None and emb.num_embeddings < n_input_tokens + n_number_tokens:
            raise ValueError("backbone vocabulary is smaller than input + number tokens.")

    def embed(self, ids: torch.Tensor, values: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
        """Token embeddings plus value embeddings at numeric slots."""
        x = self.backbone.get_input_embeddings()(ids)
        if self.values is not None and bool((kinds > 0).any()):
            present = (kinds == 1).unsqueeze(-1).to(x.dtype)
            missing = (kinds == 2).unsqueeze(-1).to(x.dtype)
            slots = ids.clamp_max(self.n_input_tokens - 1)  # number tokens carry no value
            x = x + present * self.values(values.to(x.dtype), slots) + missing * self.values.missing(slots)
        return self.dropout(x)

    def embed_numbers(self, number_tokens: torch.Tensor) -> torch.Tensor:
        """Embeddings of emitted number tokens (sub-vocabulary ids)."""
        if self.number_embedding is not None:
            return self.number_embedding(number_tokens)
        return self.backbone.get_input_embeddings()(number_tokens + self.n_input_tokens)

    def embed_prompt(self, ids, values, kinds, attention_mask) -> torch.Tensor:
        """Inputs of the backbone for a left-padded prompt (overridden for encoder trunks)."""
        return self.embed(ids, values, kinds)

    def forward(self, ids, values, kinds, attention_mask, number_tokens=None,
                past_key_values=None, use_cache=False):
        """Run the backbone on a left-padded prompt, optionally followed by number tokens.

        Returns the last hidden states ``[B, T, H]`` and the KV cache (or None).
        """
        x = self.embed_prompt(ids, values, kinds, attention_mask)
        if number_tokens is not None and number_tokens.shape[1] > 0:
            x = torch.cat([x, self.embed_numbers(number_tokens)], dim=1)
            ones = attention_mask.new_ones(number_tokens.shape)
            attention_mask = torch.cat([attention_mask, ones], dim=1)
        return self.run(x, attention_mask, past_key_values=past_key_values, use_cache=use_cache)

    def run(self, inputs_embeds, attention_mask, past_key_values=None, use_cache=False):
        """Backbone call on embeddings; ``attention_mask`` covers cache + new tokens."""
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        position_ids = position_ids[:, -inputs_embeds.shape[1]:]
        out = self.backbone(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                            position_ids=position_ids, use_cache=use_cache,
                            **{self._cache_kw: past_key_values})
        if not use_cache:
            return out.last_hidden_state, None
        cache = getattr(out, "cache", None)
        return out.last_hidden_state, cache if cache is not None else out.past_key_values

    def number_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the number sub-vocabulary only."""
        return self.head(hidden)


#: Held by whatever seeds and draws from torch's process-wide generators (fit, RL stages,
#: calibration, load): in threads of one process they take turns (reentrant: a fit calibrates).
TORCH_RANDOM_LOCK = threading.RLock()


def takes_turns(method):
    """``method`` run holding :data:`TORCH_RANDOM_LOCK` from its first line, so that a call
    waiting for another thread's turn starts its clock (``max_time``) when its own begins."""
    @functools.wraps(method)
    def held(*args, **kwargs):
        with TORCH_RANDOM_LOCK:
            return method(*args, **kwargs)
    return held


@contextlib.contextmanager
def torch_scope(n_threads: int | None, device: torch.device, seeded: bool = True):
    """Inside the block: ``n_threads`` torch threads (None: torch's setting), restored after,
    and when ``seeded`` :data:`TORCH_RANDOM_LOCK` and a torch random state of its own (the
    CPU's generator and ``device``'s), so that the caller's stream goes on after it as if the
    block had not run, as scikit-learn estimators leave numpy's global state alone.

    >>> _ = torch.manual_seed(5); expected = torch.rand(1); _ = torch.manual_seed(5)
    >>> with torch_scope(1, torch.device("cpu")):
    ...     seed_torch(0); _ = torch.rand(3)
    >>> bool(torch.rand(1) == expected)   # the stream goes on as if the block had not drawn
    True
    """
    cuda = [] if device.type != "cuda" else [torch.cuda.current_device() if device.index is None else device.index]
    with contextlib.ExitStack() as scope:
        if seeded:
            scope.enter_context(TORCH_RANDOM_LOCK)
            scope.enter_context(torch.random.fork_rng(devices=cuda))
        previous = torch.get_num_threads()
        if n_threads is not None:
            torch.set_num_threads(int(n_threads))
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def seed_torch(seed: int, device=None) -> None:
    """Seed torch's CPU generator and, for a CUDA ``device``, that GPU's; not every GPU's,
    as ``torch.manual_seed`` does: the estimator puts back the generators of the device it
    uses, and a CPU fit reseeded (or queued a seed for) GPUs it never touched.

    >>> seed_torch(0); a = torch.rand(1); seed_torch(0); bool(torch.rand(1) == a)
    True
    """
    torch.random.default_generator.manual_seed(seed)
    device = None if device is None else torch.device(device)
    if device is not None and device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def trained_state(model: nn.Module) -> dict:
    """Copies of the tensors training changes (the parameters that train, and the buffers):
    a checkpoint to restore with :func:`restore_state`. Under LoRA the frozen trunk is most
    of the state; copying it on every validation improvement doubled the model's memory.

    >>> m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> _ = m[0].requires_grad_(False)
    >>> sorted(trained_state(m))
    ['1.bias', '1.weight']
    """
    names = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in names}


def restore_state(model: nn.Module, state: dict) -> None:
    """Load a :func:`trained_state` checkpoint back (the frozen tensors never changed)."""
    unexpected = model.load_state_dict(state, strict=False).unexpected_keys
    if unexpected:
        raise RuntimeError(f"checkpoint tensors the model does not have: {unexpected[:5]}")


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with no gradients, sharing its frozen
    parameters: the RL stage's reference policy costs the trainable tensors only.

    >>> m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> _ = m[0].requires_grad_(False)
    >>> ref = frozen_copy(m)
    >>> ref[0].weight is m[0].weight, ref[1].weight is m[1].weight, ref[1].weight.requires_grad
    (True, False, False)
    """
    shared = {id(p): p for p in model.parameters() if not p.requires_grad}
    return copy.deepcopy(model, shared).eval().requires_grad_(False)
