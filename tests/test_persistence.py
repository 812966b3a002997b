import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lmreg
from lmreg import LMRegressor, load
from lmreg import persistence

FAST = dict(max_time=None, max_epochs=2, random_state=0, hidden_size=32, num_layers=1, num_heads=2)
X = [f"item {i % 5} costs {i}" for i in range(30)]
y = np.arange(30.0)


@pytest.fixture(scope="module")
def fitted():
    return LMRegressor(**FAST).fit(X, y)


def test_load_in_a_fresh_process_gives_identical_predictions(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    code = ("import json, sys, lmreg; est = lmreg.load(sys.argv[1]); "
            "print(json.dumps(est.predict(json.loads(sys.argv[2])).tolist()))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m"), json.dumps(X)],
                         capture_output=True, text=True, check=True)
    np.testing.assert_array_equal(np.array(json.loads(out.stdout.strip().splitlines()[-1])),
                                  fitted.predict(X))


def test_saved_files_are_json_and_safetensors_only(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["codec"]["name"] == "digits" and "tokenizer" in config


def test_a_crash_mid_save_leaves_the_previous_model_intact(fitted, tmp_path, monkeypatch):
    fitted.save(tmp_path / "m")
    before = load(tmp_path / "m").predict(X)

    def crash(*args, **kwargs):
        with open(args[1], "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(persistence, "save_file", crash)
    other = LMRegressor(**{**FAST, "random_state": 1}).fit(X, y[::-1].copy())
    with pytest.raises(OSError, match="disk full"):
        other.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").predict(X), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary leftovers


def test_save_replaces_only_a_saved_model_or_an_empty_directory(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "data.csv").write_text("a,b")
    (tmp_path / "hf").mkdir()  # another library's config.json + weights
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"x")
    for target in ("notes.txt", "project", "hf"):
        with pytest.raises(FileExistsError, match="not a saved lmreg model"):
            fitted.save(tmp_path / target)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "project" / "data.csv").read_text() == "a,b"
    assert (tmp_path / "hf" / "config.json").read_text() == '{"model_type": "llama"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "notes.txt", "project"]  # nothing written
    (tmp_path / "empty").mkdir()
    fitted.save(tmp_path / "empty")
    fitted.save(tmp_path / "empty")  # now a saved model: replaced
    np.testing.assert_array_equal(load(tmp_path / "empty").predict(X[:3]), fitted.predict(X[:3]))


def test_corrupted_config_names_the_file(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json.*not valid JSON"):
        load(tmp_path / "m")


def test_weights_that_do_not_match_the_config(fitted, tmp_path):
    fitted.save(tmp_path / "a")
    LMRegressor(**{**FAST, "hidden_size": 16}).fit(X, y).save(tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="do not match"):
        load(tmp_path / "a")


def test_weights_with_nan_are_refused_by_name(fitted, tmp_path):
    from safetensors.torch import load_file, save_file

    fitted.save(tmp_path / "a")
    state = load_file(str(tmp_path / "a" / "model.safetensors"))
    name = sorted(state)[-1]
    state[name] = state[name].clone().reshape(-1).index_fill(0, torch.tensor([0]), float("nan")).reshape(
        state[name].shape)
    save_file(state, str(tmp_path / "a" / "model.safetensors"))
    with pytest.raises(ValueError, match=f"NaN or infinite values in '{re.escape(name)}'"):
        load(tmp_path / "a")


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LMRegressor().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_load_maps_weights_to_the_requested_device(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    est = lmreg.load(tmp_path / "m", device="cpu")
    assert next(est.model_.parameters()).device.type == "cpu"
    for bad in ("bogus", "meta"):   # the device named, not "not a complete lmreg model config"
        with pytest.raises(ValueError, match=f"device='{bad}' is not a torch device"):
            lmreg.load(tmp_path / "m", device=bad)
    if not torch.backends.mps.is_available():   # torch's error came from deep inside the first move
        with pytest.raises(ValueError, match="device='mps' was requested but this torch has no mps device"):
            lmreg.load(tmp_path / "m", device="mps")


def test_list_columns_round_trip_as_tags(tmp_path):
    rows = [{"genre": ["drama", "crime"][: 1 + i % 2], "cast": ["Star", f"extra {i % 3}"], "year": 1990 + i % 9}
            for i in range(60)]
    est = LMRegressor(**FAST).fit(rows, np.arange(60.0) % 7)
    assert est.serializer_.kinds_["genre"] == "tags"
    est.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.tokenizer_.min_tag_count == est.tokenizer_.min_tag_count
    np.testing.assert_array_equal(back.predict(rows), est.predict(rows))


def test_list_dict_and_device_parameters_round_trip(tmp_path):
    import torch

    est = LMRegressor(**{**FAST, "device": torch.device("cpu")}, lora_target_modules=("q_proj", "v_proj"),
                      rl_config={"kl_coef": 0.1, "checks": 2}).fit(X, y)
    est.save(tmp_path / "m")
    params = load(tmp_path / "m").get_params()
    assert params["lora_target_modules"] == ["q_proj", "v_proj"]
    assert params["rl_config"] == {"kl_coef": 0.1, "checks": 2} and params["device"] == "cpu"
    load(tmp_path / "m").set_params(max_epochs=1).fit(X, y)   # refits with the loaded parameters


def test_parameters_json_cannot_hold_warn_and_load_as_none(fitted, tmp_path):
    est = LMRegressor(**{**FAST, "random_state": np.random.RandomState(0)},
                      rl_reward=lambda pred, target, scale: -abs(pred - target)).fit(X, y)
    with pytest.warns(UserWarning, match=r"\['random_state', 'rl_reward'\] cannot be written as JSON"):
        est.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.rl_reward is None and loaded.random_state is None
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_a_failed_replace_puts_the_previous_model_back(fitted, tmp_path, monkeypatch):
    import os

    fitted.save(tmp_path / "m")
    before = load(tmp_path / "m").predict(X)
    rename, calls = os.rename, []

    def second_rename_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:   # the new folder into place, after the old one moved aside
            raise PermissionError("denied")
        rename(src, dst)

    monkeypatch.setattr(persistence.os, "rename", second_rename_fails)
    with pytest.raises(PermissionError):
        LMRegressor(**{**FAST, "random_state": 1}).fit(X, y[::-1].copy()).save(tmp_path / "m")
    monkeypatch.setattr(persistence.os, "rename", rename)
    np.testing.assert_array_equal(load(tmp_path / "m").predict(X), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_saving_into_the_working_directory_is_refused(fitted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for target in (".", "", str(tmp_path.parent)):
        with pytest.raises(ValueError, match="current working directory"):
            fitted.save(target)
    assert list(tmp_path.iterdir()) == []


def test_saved_files_follow_the_umask(fitted, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        fitted.save(tmp_path / "m")
    finally:
        os.umask(old)
    assert oct((tmp_path / "m").stat().st_mode & 0o777) == oct(0o755)
    assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "m").iterdir()} == {oct(0o644)}


def test_saving_over_a_model_keeps_its_permissions(fitted, tmp_path):
    import os

    fitted.save(tmp_path / "m")
    os.chmod(tmp_path / "m", 0o700)
    for p in (tmp_path / "m").iterdir():
        os.chmod(p, 0o600)
    fitted.save(tmp_path / "m")   # a folder locked to its owner was made 0755 / 0644 again
    assert oct((tmp_path / "m").stat().st_mode & 0o777) == oct(0o700)
    assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "m").iterdir()} == {oct(0o600)}


def test_saving_over_a_read_only_model_folder_replaces_it(fitted, tmp_path, monkeypatch):
    """A folder moved to another parent needs write permission on itself (its ".." entry
    changes): the model folder locked 0555 was moved into a hidden folder to be replaced,
    which failed and left a full hidden copy of the new model behind. The rename is emulated
    with that rule, as the owner of the files (root passes every permission check)."""
    import os
    import stat

    rename = os.rename

    def posix_rename(src, dst):
        src, dst = Path(src), Path(dst)
        if src.is_dir() and src.parent != dst.parent and not stat.S_IMODE(src.stat().st_mode) & stat.S_IWUSR:
            raise PermissionError(13, "Permission denied", str(src))
        rename(src, dst)

    fitted.save(tmp_path / "m")
    os.chmod(tmp_path / "m", 0o555)
    other = LMRegressor(**{**FAST, "random_state": 1}).fit(X, y[::-1].copy())
    monkeypatch.setattr(persistence.os, "rename", posix_rename)
    other.save(tmp_path / "m")
    monkeypatch.undo()
    np.testing.assert_array_equal(load(tmp_path / "m").predict(X), other.predict(X))
    assert oct((tmp_path / "m").stat().st_mode & 0o777) == oct(0o555)   # the lock stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]          # no hidden copies
    os.chmod(tmp_path / "m", 0o755)


def test_a_failed_save_leaves_no_folder_it_made_and_long_names_save(fitted, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(persistence, "save_file", crash)
        with pytest.raises(OSError, match="No space left"):
            fitted.save(tmp_path / "runs" / "2024" / "m")
    assert list(tmp_path.iterdir()) == []   # runs/2024 stayed behind
    name = "m" * 240   # the hidden folders' names went past 255 bytes: "File name too long"
    fitted.save(tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    wide = "\N{CHART WITH UPWARDS TREND}" * 60   # 240 bytes too: cut to 64 characters it was 256
    fitted.save(tmp_path / wide)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, wide])


def test_a_broken_link_on_the_way_is_refused_before_fitting(tmp_path):
    (tmp_path / "models").symlink_to(tmp_path / "gone")
    with pytest.raises(ValueError, match="models' is a broken symbolic link"):
        persistence.check_save_path(tmp_path / "models" / "run1")   # mkdir failed once the fit was done


def test_a_config_nested_past_what_json_reads_or_a_ragged_calibrator_is_named(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    good = path.read_text()
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="config.json' is not valid JSON"):   # a RecursionError before
        load(tmp_path / "m")
    config = json.loads(good)
    config["fitted"]["calibrator_"] = {"samples": [[1.0, 2.0], [3.0]], "y": [1.0, 2.0], "weights": None}
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config.json' is not a complete lmreg model config: fitted.calibrator_ must"):
        load(tmp_path / "m")   # numpy's "setting an array element with a sequence" before
    config["fitted"]["calibrator_"]["samples"] = [[1.0, 2.0]] * 3
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"model config: fitted.calibrator_: samples of shape \(3, 2\) do not match"):
        load(tmp_path / "m")


def test_config_is_strict_json_and_keeps_infinite_values(tmp_path):
    est = LMRegressor(**{**FAST, "validation_fraction": 0.0}).fit(X, y)
    assert est.fit_result_.best_val_mae == float("inf")   # no validation rows
    est.save(tmp_path / "m")

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    json.loads((tmp_path / "m" / "config.json").read_text(), parse_constant=refuse)
    back = load(tmp_path / "m")
    assert back.fit_result_.best_val_mae == float("inf")
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def _edit(config, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[key]
    config[last] = value


@pytest.mark.parametrize("param, value, match", [
    ("n_samples", 0, "'n_samples' parameter of LMRegressor must be"),
    ("decision", "mode ", "'decision' parameter"),
    ("codec", "digitz", "'codec' parameter")])
def test_a_hand_edited_parameter_is_refused_at_load(fitted, tmp_path, param, value, match):
    """It loaded, then failed at the first predict (or worse, at the next fit)."""
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["params"][param] = value
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"config.json' holds a parameter lmreg refuses: .*{match}"):
        load(tmp_path / "m")


def test_a_callable_reward_saved_as_none_still_loads(tmp_path):
    """save writes a callable rl_reward as None; the RL rules then read another reward (grpo's
    crps_loo, which needs group_size >= 3) and must not refuse a model that predicts as saved."""
    import functools

    from lmreg.training.rewards import gaussian_kernel

    X, y = [f"n {i}" for i in range(30)], np.arange(30.0)
    est = LMRegressor(max_time=None, max_epochs=1, random_state=0, rl_variant="grpo",
                      rl_reward=functools.partial(gaussian_kernel, bandwidth=0.5), rl_config={"group_size": 2})
    with pytest.warns(UserWarning):
        est.fit(X, y).save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").predict(X[:3]), est.predict(X[:3]))


@pytest.mark.parametrize("damage", ["params", "fitted", "list", "tokenizer.tokenizer.model", "serializer.kinds",
                                    "codec.state", "backbone.num_heads"])
def test_an_incomplete_config_is_a_clear_error(fitted, tmp_path, damage):
    """Deleted sections, and values the readers (tokenizers, torch, numpy) choke on."""
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    if damage == "list":
        config = [config]
    elif "." in damage:
        _edit(config, damage, -1 if damage == "backbone.num_heads" else None)
    else:
        del config[damage]
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json.*(not a complete lmreg model config|format_version)"):
        load(tmp_path / "m")


def test_a_parameter_this_version_does_not_know_is_named(fitted, tmp_path):
    """It was "not a complete lmreg model config (TypeError: ... unexpected keyword argument)"."""
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["params"]["some_new_param"] = 1
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="holds parameter\\(s\\) this lmreg does not know: some_new_param "
                                         "\\(saved by a newer lmreg"):
        load(tmp_path / "m")


def test_a_hand_edited_tokenizer_section_is_checked_against_the_columns(tmp_path):
    """A numeric column's map deleted loaded, then predict failed with a bare KeyError; columns
    renamed in the tokenizer loaded and predicted, every real column silently ignored."""
    import pandas as pd

    frame = pd.DataFrame({"a": np.arange(30.0), "note": X})
    LMRegressor(**FAST).fit(frame, y).save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    saved = path.read_text()
    for edit, expected in ((lambda t: t.update(numeric={}), r"the numeric column\(s\) \['a'\] have no numeric map"),
                           (lambda t: t.update(kinds={"zzz": "num"}), r"its columns \['zzz'\] are not the serializer's "
                                                                       r"\['a', 'note'\]"),
                           (lambda t: t.update(params={"bogus": 1}), "TypeError")):
        config = json.loads(saved)
        edit(config["tokenizer"])
        path.write_text(json.dumps(config))
        with pytest.raises(ValueError, match="config.json' is not a complete lmreg model config: tokenizer: " + expected):
            load(tmp_path / "m")


@pytest.mark.parametrize("key, value, expected", [
    ("baseline_", "abc", "fitted.baseline_ must be a number or a list of numbers, got 'abc'"),
    ("n_features_in_", "3", "fitted.n_features_in_ must be an integer, got '3'"),
    ("feature_names_in_", "text", "fitted.feature_names_in_ must be null or a list of strings"),
    ("seed_", "a", "fitted.seed_ must be an integer"),       # loaded, and failed at predict_quantiles
    ("fallback_", 1, "fitted.fallback_ must be true or false"),
    # these loaded and failed at predict, calibrate or load with Python's or numpy's words alone
    ("seed_", 2**70, "fitted.seed_ must be an integer in [0, 2**31)"),
    ("baseline_", [[1.0], [1.0, 2.0]], "fitted.baseline_ must be a number or a list of numbers"),
    ("input_columns", 3, "fitted.input_columns must be null or a list of strings, got 3"),
    ("input_kind", "table", 'fitted.input_kind must be null or one of "frame", "series"'),
    ("split_key", [1], 'fitted.split_key must be null or {"rows": an integer'),
    ("split_key", {"rows": "60", "validation_fraction": 0.2, "y_sha1": "ab"}, "fitted.split_key must be null"),
    ("calibrator_", {"samples": [[1.0, 2.0]] * 2, "y": [1.0, 2.0], "weights": None, "temperature": "1.0"},
     'fitted.calibrator_ must be null or {"samples"')])
def test_a_hand_edited_fitted_value_names_its_key(fitted, tmp_path, key, value, expected):
    """They reached the user as numpy's words ("could not convert string to float", "X has 3
    features, but LMRegressor is expecting 3") without the file, or loaded and failed later."""
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    _edit(config["fitted"], key, value)
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=re.escape(f"config.json' is not a complete lmreg model config: {expected}")):
        load(tmp_path / "m")


def test_a_cli_file_not_in_utf8_is_named(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "cli.json").write_bytes(b'{"target": "pr\xe9"}')   # a bare UnicodeDecodeError before
    with pytest.raises(ValueError, match=r"cli.json' is not UTF-8 text \(invalid continuation byte at byte 14\)"):
        load(tmp_path / "m")


def test_a_boolean_format_version_is_refused_and_older_nan_literals_load(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "format_version": True}))   # True == 1 was read as version 1
    with pytest.raises(ValueError, match="has format_version True; this lmreg reads 1"):
        load(tmp_path / "m")
    config["fitted"]["fit_result_"]["best_val_mae"] = float("inf")   # as saves before strict JSON wrote it
    path.write_text(json.dumps(config))
    assert "Infinity" in path.read_text() and load(tmp_path / "m").fit_result_.best_val_mae == float("inf")


def test_a_model_saved_under_a_path_of_non_utf8_bytes_loads(tmp_path):
    # save succeeded, and load failed: safetensors refuses a path that is not valid UTF-8
    import os

    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    est = LMRegressor(max_time=None, max_epochs=1, hidden_size=16, num_layers=1, num_heads=2,
                      random_state=0).fit([f"n {i}" for i in range(20)], np.arange(20.0))
    est.save(folder / "m")
    np.testing.assert_array_equal(lmreg.load(folder / "m").predict(["n 3"]), est.predict(["n 3"]))
