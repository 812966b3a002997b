"""Save and load a fitted :class:`~lmreg.LMRegressor` without pickle.

A saved model is a directory with ``config.json`` (parameters and every fitted
stage as JSON: serializer schema, tokenizer with its BPE model, numeric maps, codec)
and ``model.safetensors`` (weights; the further networks of a seed ensemble under
``members.{k}.``, the first unprefixed). With a pretrained backbone and LoRA only the
trained tensors are written (adapters, number embedding and head); the frozen
weights are reloaded from the backbone's local source, checked against the sha256 of its
files recorded at save. Loading executes no stored code, so a
parameter JSON cannot hold (a callable reward, a RandomState) is saved as None, with a
warning. The directory is written next to its destination and renamed into place, so an
interrupted save never leaves a half-written model where a good one was; ``config.json``
is strict JSON (an infinite value is ``{"__float__": "inf"}``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import BaseEstimator

from ._warnings import warn_user
from .backbone import BackboneConfig, check_heads
from .calibration import ConformalQuantiles
from .codecs import codec_from_config
from .members import member_seed
from .model_folder import (CLI_FILE, CONFIG, WEIGHTS, _copy_permissions, _make_parents, _move_into_place,
                           _remove_new, _short, check_save_path)
from .pretrained import LoraSettings, make_text_tokenizer, trainable_state
from .pretrained_source import (SHORTCUTS, PretrainedSource, changed_source_files, resolve_backbone,
                                source_fingerprint)
from .serialize import Serializer
from .tasks import TaskScaler
from .tokenizer import InputTokenizer
from .training.rl_config import RLResult
from .training.sft import SFTResult

FORMAT_VERSION = 1
#: Weights of member ``k >= 1`` of a seed ensemble are stored as ``members.{k}.<name>``.
MEMBER_PREFIX = "members."


#: What :func:`_jsonable` returns for a value JSON cannot hold.
_UNSAVABLE = object()


def _jsonable(value):
    """``value`` as JSON (lists, string-keyed dicts and devices too), or :data:`_UNSAVABLE`.

    >>> _jsonable({"kl_coef": np.float32(0.5), "modules": ("q", "v")}), _jsonable(print) is _UNSAVABLE
    ({'kl_coef': 0.5, 'modules': ['q', 'v']}, True)
    """
    if isinstance(value, np.generic):   # np.int64, np.float32, np.bool_: their Python values
        value = value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, os.PathLike):  # a backbone folder given as a Path
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v) for v in value]
        return _UNSAVABLE if any(v is _UNSAVABLE for v in items) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _jsonable(v) for k, v in value.items()}
        return _UNSAVABLE if any(v is _UNSAVABLE for v in items.values()) else items
    return _UNSAVABLE  # a callable, a RandomState...: JSON cannot hold it without pickling


def save(est, path) -> None:
    """Write ``est`` to directory ``path`` (created or atomically replaced).

    The directory holds ``config.json`` and ``model.safetensors`` (see the module
    docstring); :func:`load` reads it back. ``LMRegressor.save`` calls this.

    Parameters
    ----------
    est : LMRegressor
        A fitted estimator.
    path : str or path-like
        Directory to write; missing parents are created (and removed again if the
        save fails). An existing ``path`` is replaced only if it is a model saved here
        before or an empty directory, and keeps its permissions; a new one gets those
        of a plain ``mkdir`` under the umask.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``est`` is not fitted.
    FileExistsError
        When ``path`` is a file, or a directory holding anything but a saved model
        (nothing is written then).

    Examples
    --------
    >>> import os, tempfile, lmreg
    >>> est = lmreg.LMRegressor(hidden_size=16, num_layers=1, num_heads=2, max_epochs=1,
    ...                         random_state=0).fit(["a", "b", "c"], [1.0, 2.0, 3.0])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(est, os.path.join(d, "m"))
    ...     save(est, os.path.join(d, "m"))  # replaces it, leaving no temporary folders
    ...     sorted(os.listdir(d)), sorted(os.listdir(os.path.join(d, "m")))
    (['m'], ['config.json', 'model.safetensors'])
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "model_")
    path = check_save_path(path)
    params = est.get_params()
    if params["task_column"] is not None:   # a tuple (MultiIndex) or Timestamp label: the name it reads by
        params["task_column"] = str(params["task_column"])
    params = {k: _jsonable(v) for k, v in params.items()}
    unsaved = sorted(k for k, v in params.items() if v is _UNSAVABLE)
    if unsaved:
        warn_user(f"parameter(s) {unsaved} cannot be written as JSON (e.g. a callable or a RandomState) "
                  "and load as None: the loaded model predicts the same, but set them again before "
                  "refitting it or running reinforce.")
        params.update({k: None for k in unsaved})
    config = {
        "format_version": FORMAT_VERSION,
        "params": params,
        "serializer": est.serializer_.get_config(),
        "tokenizer": est.tokenizer_.get_config(),
        "codec": est.codec_.get_config(),
        "backbone": est.backbone_config_.to_dict(),
        "pretrained": asdict(est.pretrained_) if getattr(est, "pretrained_", None) else None,
        "pretrained_files": (getattr(est, "_source_files", None)   # as fit read them
                             or source_fingerprint(est.pretrained_, weights=bool(est._fitted_lora().r))
                             if getattr(est, "pretrained_", None) else None),
        # the adapters' shape and scale as fitted (set_params after fit changes only the parameters)
        "lora": asdict(est._fitted_lora()) if getattr(est, "pretrained_", None) else None,
        "tasks": est.tasks_.get_config() if getattr(est, "tasks_", None) else None,
        # a pretrained encoder reads its prompt right-padded (models saved before: 0-based positions)
        "encoder_padding": "legacy" if getattr(est.model_, "legacy_positions", False) else "right",
        "fitted": {
            "n_features_in_": int(est.n_features_in_),
            "feature_names_in_": (list(map(str, est.feature_names_in_))
                                  if hasattr(est, "feature_names_in_") else None),
            "input_columns": getattr(est, "_input_columns", None),
            "input_kind": getattr(est, "_input_kind", None),
            "seed_": est.seed_,
            "baseline_": np.asarray(est.baseline_).tolist(),
            "fallback_": bool(est.fallback_),
            "train_targets": est._train_targets.tolist(),
            "train_weighted": ([a.tolist() for a in est._train_weighted]
                               if getattr(est, "_train_weighted", None) is not None else None),
            "train_tasks": (None if getattr(est, "_train_tasks", None) is None
                            else [str(t) for t in est._train_tasks]),
            "fit_seconds_": est.fit_seconds_,
            "fit_result_": _result_state(est.fit_result_),
            "member_results_": [_result_state(r) for r in getattr(est, "member_results_", [])[1:]],
            "rl_result_": dict(vars(est.rl_result_)) if getattr(est, "rl_result_", None) else None,
            "member_rl_results_": [dict(vars(r)) for r in getattr(est, "member_rl_results_", [])[1:]],
            "calibrator_": ({"samples": est.calibrator_.samples_.tolist(), "y": est.calibrator_.y_.tolist(),
                             "weights": (None if est.calibrator_.weights_ is None
                                         else est.calibrator_.weights_.tolist()),
                             "temperature": getattr(est, "_calibration_temperature", None)}
                            if getattr(est, "calibrator_", None) is not None else None),
            "sample_weighted": bool(getattr(est, "_weighted", False)),
            "split_key": getattr(est, "_split_key", None),
        },
    }
    created = _make_parents(path.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{_short(path.name)}.", dir=path.parent))
    except BaseException:
        _remove_new(created)
        raise
    try:
        state = {}
        for k, model in enumerate(est._members()):  # member 0 unprefixed: a one-network layout
            if getattr(est, "pretrained_", None) and est._fitted_lora().r:
                part = trainable_state(model)  # adapters + number head; the trunk reloads from source
            else:
                part = {name: v.detach().cpu().contiguous() for name, v in model.state_dict().items()}
            state.update({f"{_member_prefix(k)}{name}": v for name, v in part.items()})
        save_file(state, str(tmp / WEIGHTS))
        with open(tmp / CONFIG, "w") as f:
            json.dump(_strict(config), f, allow_nan=False)
        if getattr(est, "_cli_meta", None) is not None:  # a model `lmreg fit` wrote, loaded and saved again
            (tmp / CLI_FILE).write_text(est._cli_meta)
        folder_mode = _copy_permissions(tmp, path)
        _move_into_place(tmp, path)
        os.chmod(path, folder_mode)   # after the move: a read-only mode would keep a failed one's leftovers
    except BaseException:   # nothing half-written stays: the folder, nor the parents made for it
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_new(created)
        raise


def _result_state(result: SFTResult) -> dict:
    """An SFT result as saved: every field but ``scored_rows``, which only serves its fit."""
    return {k: v for k, v in vars(result).items() if k != "scored_rows"}


#: How a float JSON cannot write (inf, nan) is stored in config.json, which stays strict JSON.
_FLOAT_KEY = "__float__"


def _strict(value):
    """``value`` with non-finite floats as ``{"__float__": "inf"}`` (read back by :func:`_unstrict`).

    >>> _strict({"best_val_mae": float("inf"), "steps": [1.5, float("nan")], "n": np.int64(3)})
    {'best_val_mae': {'__float__': 'inf'}, 'steps': [1.5, {'__float__': 'nan'}], 'n': 3}
    """
    if isinstance(value, np.generic):   # a numpy scalar a user passed (np.int64(32)): its Python value
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return {_FLOAT_KEY: repr(value)}
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _unstrict(obj: dict):
    """``json.load``'s object hook: undo :func:`_strict`."""
    return float(obj[_FLOAT_KEY]) if len(obj) == 1 and _FLOAT_KEY in obj else obj


def _member_prefix(k: int) -> str:
    return "" if k == 0 else f"{MEMBER_PREFIX}{k}."


def load(path, device: str = "cpu"):
    """Rebuild a fitted :class:`~lmreg.LMRegressor` from a directory written by ``save``.

    Parameters
    ----------
    path : str or path-like
        The model's directory.
    device : str, default="cpu"
        Where the networks are loaded (``"cuda"``, ``"cuda:1"``, ``"auto"``: a GPU when
        one is available); the saved model records none, so a model fitted on a GPU
        loads on a machine without one.

    Returns
    -------
    LMRegressor

    Examples
    --------
    >>> import tempfile, lmreg
    >>> est = lmreg.LMRegressor(max_time=3, random_state=0).fit(["a", "b", "c"], [1.0, 2.0, 3.0])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     est.save(d + "/m")
    ...     lmreg.load(d + "/m").predict(["a"]).shape
    (1,)
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no saved lmreg model at {str(path)!r} (expected a directory).")
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise FileNotFoundError(f"saved model is incomplete: {str(path / name)!r} is missing.")
    try:   # (models saved before the configs were strict JSON hold Infinity and NaN literals)
        with open(path / CONFIG) as f:
            config = json.load(f, object_hook=_unstrict)
    except (ValueError, RecursionError) as err:   # RecursionError: nested past what json reads
        raise ValueError(f"{str(path / CONFIG)!r} is not valid JSON: {err}") from None
    version = config.get("format_version") if isinstance(config, dict) else None
    if type(version) is not int or version != FORMAT_VERSION:   # not True, not 1.0
        raise ValueError(f"{str(path / CONFIG)!r} has format_version {version!r}; this lmreg reads "
                         f"{FORMAT_VERSION}.")
    try:
        return _rebuild(config, path, device)
    except (FileNotFoundError, ValueError, MemoryError):   # already named (a moved backbone, a bad value)
        raise
    except Exception as err:  # a damaged or hand-edited config: whatever its reader (tokenizers, torch) raised
        raise ValueError(f"{str(path / CONFIG)!r} is not a complete lmreg model config "
                         f"({type(err).__name__}: {err}).") from None


def _check_fitted(fitted: dict, where: Path) -> None:
    """Refuse a ``fitted`` section whose values have the wrong type (a hand-edited file), with
    the key named, rather than as a numpy or tokenizer error at load or at predict."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_numbers(v):
        flat = v if isinstance(v, list) else [v]
        return all(isinstance(x, (int, float)) and not isinstance(x, bool) or isinstance(x, list) and is_numbers(x)
                   for x in flat)

    def is_list(v):
        return isinstance(v, list) and is_numbers(v)

    def is_table(v):   # rows of numbers of one length (numpy makes a ragged list an object array)
        return is_list(v) and all(isinstance(r, list) for r in v) and len({len(r) for r in v}) <= 1

    def is_strings(v):
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    def is_number(v):
        return is_numbers(v) and not isinstance(v, list)

    def rectangular(v):   # numbers in lists of one shape (a ragged list is numpy's object array)
        try:
            return is_numbers(v) and np.asarray(v, dtype=float) is not None
        except ValueError:
            return False

    def is_split(v):
        return isinstance(v, dict) and split.keys() >= v.keys() >= split.keys() - {"w_sha1"} and all(
            split[k](x) for k, x in v.items())

    split = {"rows": is_int, "validation_fraction": is_number, "y_sha1": lambda v: isinstance(v, str),
             "w_sha1": lambda v: v is None or isinstance(v, str)}
    checks = {"n_features_in_": (is_int, "an integer"),
              "seed_": (lambda v: is_int(v) and 0 <= v < 2**31, "an integer in [0, 2**31)"),
              "fallback_": (lambda v: isinstance(v, bool), "true or false"),
              "feature_names_in_": (lambda v: v is None or is_strings(v), "null or a list of strings"),
              "baseline_": (rectangular, "a number or a list of numbers"),
              "input_columns": (lambda v: v is None or is_strings(v), "null or a list of strings"),
              "input_kind": (lambda v: v is None or v in ("frame", "series", "records", "unnamed"),
                             'null or one of "frame", "series", "records", "unnamed"'),
              "split_key": (lambda v: v is None or is_split(v),
                            'null or {"rows": an integer, "validation_fraction": a number, "y_sha1": a '
                            'string, "w_sha1": null or a string}'),
              "train_targets": (lambda v: isinstance(v, list) and is_numbers(v), "a list of numbers"),
              "train_tasks": (lambda v: v is None or is_strings(v), "null or a list of strings"),
              "fit_seconds_": (is_number, "a number"),
              "calibrator_": (lambda v: v is None or isinstance(v, dict) and is_table(v.get("samples"))
                              and is_list(v.get("y")) and (v.get("weights") is None or is_list(v["weights"]))
                              and (v.get("temperature") is None or is_number(v["temperature"])),
                              'null or {"samples": rows of numbers of one length, "y": numbers, '
                              '"weights": null or numbers, "temperature": null or a number}')}
    for key, (ok, expected) in checks.items():
        if key in fitted and not ok(fitted[key]):
            raise ValueError(f"{str(where)!r} is not a complete lmreg model config: fitted.{key} must be "
                             f"{expected}, got {fitted[key]!r:.60}.")


def _rebuild(config: dict, path: Path, device: str):
    """The estimator ``config`` (read from ``path``) describes, on ``device``."""
    from .estimator import LMRegressor
    from .validation import resolve_device

    unknown = sorted(set(config["params"]) - set(LMRegressor._parameter_constraints))
    if unknown:
        raise ValueError(f"{str(path / CONFIG)!r} holds parameter(s) this lmreg does not know: {', '.join(unknown)} "
                         "(saved by a newer lmreg, or edited); load it with the lmreg that saved it.")
    est = LMRegressor(**config["params"])
    try:   # a hand-edited parameter is refused here, not at the first predict; each on its own
        # (the RL rules are fit's: a callable rl_reward is saved as None, which they may refuse)
        BaseEstimator._validate_params(est)
    except ValueError as err:
        raise ValueError(f"{str(path / CONFIG)!r} holds a parameter lmreg refuses: {err}") from None
    est.serializer_ = Serializer.from_config(config["serializer"])
    est.codec_ = codec_from_config(config["codec"])
    est.backbone_config_ = BackboneConfig(**config["backbone"])
    if not config.get("pretrained"):
        try:
            check_heads(est.backbone_config_.hidden_size, est.backbone_config_.num_heads)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{str(path / CONFIG)!r} is not a complete lmreg model config: backbone: {err}") from None
    est.tasks_ = TaskScaler.from_config(config["tasks"]) if config.get("tasks") else None
    est.pretrained_ = None
    if config.get("pretrained"):
        source = PretrainedSource(**config["pretrained"])
        if not Path(source.path).is_dir() and source.name in SHORTCUTS:
            try:   # a shortcut's wheel installed elsewhere (another environment): found again by name
                source = resolve_backbone(source.name)
            except ValueError:   # not installed here: the error below says where it was
                pass
        if not Path(source.path).is_dir():
            raise FileNotFoundError(f"the model's pretrained backbone {source.name!r} is no longer at "
                                    f"{source.path!r}; install or copy it there to load this model.")
        est._lora_settings = _lora_settings(config, path)
        _check_source(source, config.get("pretrained_files"), weights=bool(est._fitted_lora().r))
        est.pretrained_, est._source_files = source, config.get("pretrained_files")
        est.tokenizer_ = make_text_tokenizer(source, est.serializer_, config["tokenizer"]["max_length"],
                                            reserve=est.codec_.length)
    else:
        est.tokenizer_ = _input_tokenizer(config["tokenizer"], est.serializer_, path)
    fitted = config["fitted"]
    _check_fitted(fitted, path / CONFIG)
    est.n_features_in_ = fitted["n_features_in_"]
    if fitted["feature_names_in_"] is not None:
        est.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
    if fitted.get("input_columns") is not None:  # how predict matches columns (models saved before: by name)
        est._input_columns, est._input_kind = fitted["input_columns"], fitted["input_kind"]
    est.seed_, est.fallback_ = fitted["seed_"], fitted["fallback_"]
    est.baseline_ = np.asarray(fitted["baseline_"], dtype=float)
    est._train_targets = np.asarray(fitted["train_targets"], dtype=float)
    weighted = fitted.get("train_weighted")   # None: unweighted, or saved before it was kept
    est._train_weighted = None if weighted is None else tuple(np.asarray(a, dtype=float) for a in weighted)
    tasks = fitted.get("train_tasks")   # None: no task_column, or saved before (a fallback pools the tasks)
    est._train_tasks = None if tasks is None else np.asarray(tasks, dtype=object)
    if tasks is not None and len(tasks) != len(est._train_targets):
        raise ValueError(f"{str(path / CONFIG)!r} is not a complete lmreg model config: fitted.train_tasks has "
                         f"{len(tasks)} entries for {len(est._train_targets)} training targets.")
    est.fit_seconds_ = fitted["fit_seconds_"]
    est.fit_result_ = SFTResult(**fitted["fit_result_"])
    est.rl_result_ = RLResult(**fitted["rl_result_"]) if fitted.get("rl_result_") else None
    est.member_rl_results_ = [] if est.rl_result_ is None else (
        [est.rl_result_] + [RLResult(**r) for r in fitted.get("member_rl_results_", [])])
    cal = fitted.get("calibrator_")
    try:
        est.calibrator_ = ConformalQuantiles().fit(cal["samples"], cal["y"], cal.get("weights")) if cal else None
    except ValueError as err:   # shapes that do not match: the calibrator's words, the file named
        raise ValueError(f"{str(path / CONFIG)!r} is not a complete lmreg model config: fitted.calibrator_: "
                         f"{err}") from None
    est._calibration_temperature = cal.get("temperature") if cal else None   # None: saved before it was kept
    est._weighted = fitted.get("sample_weighted", False)
    est._split_key = fitted.get("split_key")   # None: saved before it was kept (the split is not checked)
    cli_meta = path / CLI_FILE   # the CLI's column names, kept if this model is saved again
    try:
        est._cli_meta = cli_meta.read_text(encoding="utf-8") if cli_meta.is_file() else None
    except UnicodeDecodeError as err:   # a ValueError: it would pass load's handler unnamed
        raise ValueError(f"{str(cli_meta)!r} is not UTF-8 text ({err.reason} at byte {err.start}): the "
                         "file is damaged or was edited.") from None
    est.device_ = resolve_device(device)
    est._grammar = None
    try:
        state = _read_weights(path / WEIGHTS)
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"could not read weights from {str(path / WEIGHTS)!r}: {err}") from None
    results = fitted.get("member_results_", [])
    est.member_results_ = [est.fit_result_] + [SFTResult(**r) for r in results]
    members = [{} for _ in est.member_results_]
    for name, v in state.items():
        k, rest = 0, name
        if name.startswith(MEMBER_PREFIX):
            k_str, _, rest = name[len(MEMBER_PREFIX):].partition(".")
            k = int(k_str) if k_str.isdigit() and 0 < int(k_str) < len(members) else -1
        if k < 0:
            raise ValueError(f"weights in {str(path / WEIGHTS)!r} do not match {CONFIG}: unexpected {name!r}.")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):   # would decode garbage, not raise
            raise ValueError(f"weights in {str(path / WEIGHTS)!r} hold NaN or infinite values in {name!r}: "
                             "the file is damaged or was edited (training never keeps such weights).")
        members[k][rest] = v
    with est._torch_scope(est.device_):   # building a network draws (and a pretrained one seeds) torch's
        est.members_ = [_load_member(est, part, path, member_seed(est.seed_, k)).to(est.device_).eval()
                        for k, part in enumerate(members)]   # generators
    est.model_ = est.members_[0]
    if config.get("encoder_padding", "legacy") == "legacy":   # read as it was trained
        for model in est.members_:
            if hasattr(model, "legacy_positions"):
                model.legacy_positions = True
    codecs = getattr(est.codec_, "codecs", [est.codec_])   # a MultiTargetCodec holds one per target
    if not hasattr(est.serializer_, "kinds_") or not all(c._fitted for c in codecs):   # predict would fail
        raise ValueError(f"{str(path / CONFIG)!r} is not a complete lmreg model config (the serializer's "
                         "kinds or the codec's state is missing).")
    return est


def _input_tokenizer(config: dict, serializer: Serializer, path: Path) -> InputTokenizer:
    """The tokenizer ``config`` describes, checked against the serializer's columns (a
    hand-edited section failed at predict with a bare KeyError, or read no column at all)."""
    where = f"{str(path / CONFIG)!r} is not a complete lmreg model config: tokenizer"
    try:
        tok = InputTokenizer.from_config(config)
    except Exception as err:   # a key, a type or the BPE model's JSON
        raise ValueError(f"{where}: {type(err).__name__}: {err}") from None
    columns = set(getattr(serializer, "kinds_", ()))
    if set(tok.kinds_) != columns:
        raise ValueError(f"{where}: its columns {sorted(tok.kinds_)} are not the serializer's {sorted(columns)}.")
    unmapped = sorted(name for name, kind in tok.kinds_.items() if kind == "num" and name not in tok.numeric_)
    if unmapped:
        raise ValueError(f"{where}: the numeric column(s) {unmapped} have no numeric map.")
    return tok


def _lora_settings(config: dict, path: Path) -> LoraSettings | None:
    """The fitted LoRA settings ``config`` holds (None: saved before they were kept; the
    parameters, which such a file saved as fitted, stand in)."""
    lora = config.get("lora")
    if lora is None:
        return None
    try:
        return LoraSettings(int(lora["r"]), float(lora["alpha"]), float(lora["dropout"]), lora["target_modules"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{str(path / CONFIG)!r} is not a complete lmreg model config: "
                         f"lora: {type(err).__name__}: {err}") from None


def _check_source(source: PretrainedSource, expected, weights: bool) -> None:
    """Refuse a backbone folder changed since the model was saved (``expected``: its
    :func:`~lmreg.pretrained_source.source_fingerprint` then; None for models saved before it was kept)."""
    if expected is None:
        return
    changed = changed_source_files(source, expected, weights)
    if changed:
        raise ValueError(f"the pretrained backbone at {source.path!r} changed since this model was saved "
                         f"({', '.join(changed)} differ): the model was trained on the files that were there; "
                         "put them back, or fit a new model on this backbone.")


def _read_weights(file: Path) -> dict:
    """The tensors of a safetensors ``file``: memory-mapped, or read whole when its path is
    not valid UTF-8 (a folder name of Latin-1 bytes), which safetensors' path argument refuses."""
    try:
        str(file).encode("utf-8")
    except UnicodeEncodeError:
        from safetensors.torch import load

        return load(file.read_bytes())
    return load_file(str(file), device="cpu")


def _load_member(est, state: dict, path: Path, seed: int):
    """One network of ``est`` with ``state`` loaded (frozen pretrained tensors may be absent),
    built from the member's ``seed``, as in ``fit``: a tensor the backbone's files lack gets the
    random values it trained with."""
    partial = est.pretrained_ is not None and bool(est._fitted_lora().r)
    # every tensor saved (lora_r=0): the trunk's structure suffices, its weight files may be gone
    model = est._build_model(seed, pretrained_weights=partial)
    try:
        missing, unexpected = model.load_state_dict(state, strict=not partial)
    except RuntimeError as err:
        raise ValueError(f"weights in {str(path / WEIGHTS)!r} do not match {CONFIG}: {err}") from None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing):  # only frozen pretrained tensors may be absent
        raise ValueError(f"weights in {str(path / WEIGHTS)!r} do not match {CONFIG}: missing "
                         f"{sorted(trainable & set(missing))[:5]}, unexpected {sorted(unexpected)[:5]}.")
    return model
