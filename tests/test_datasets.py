"""Tests for the bundled benchmark datasets and their loader."""

import numpy as np
import pandas as pd
import pytest

from lmreg.datasets import DATA_DIR, data_dir, dataset_info, list_datasets, load_dataset

EXPECTED = {
    "ames_housing",
    "compress_perf",
    "diabetes",
    "imdb_movies_scale",
    "lending_club_rate",
    "movies_json",
    "tweets_engagement",
}


@pytest.fixture(autouse=True)
def _default_data_dir(monkeypatch):
    # Tests exercise the bundled folder unless they set the variable themselves.
    monkeypatch.delenv("LMREG_DATA_DIR", raising=False)


def test_list_datasets_sorted_and_complete():
    names = list_datasets()
    assert names == sorted(names)
    assert EXPECTED <= set(names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_info_fields(name):
    info = dataset_info(name)
    assert info["name"] == name
    for key in ("target", "n_train", "n_test", "source", "license", "columns"):
        assert key in info


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_every_split(name, split):
    info = dataset_info(name)
    X, y = load_dataset(name, split=split)
    assert isinstance(X, pd.DataFrame)
    assert isinstance(y, np.ndarray)
    assert len(X) == len(y) == info[f"n_{split}"]
    assert y.dtype == np.float64 and y.ndim == 1
    assert np.isfinite(y).all()
    assert info["target"] not in X.columns
    assert list(X.columns) == list(info["columns"])
    assert isinstance(X.index, pd.RangeIndex) and X.index[0] == 0


def test_default_split_is_train():
    X, _ = load_dataset("diabetes")
    assert len(X) == dataset_info("diabetes")["n_train"]


def test_max_rows_is_deterministic_prefix():
    X_full, y_full = load_dataset("diabetes", "test")
    X, y = load_dataset("diabetes", "test", max_rows=7)
    assert len(X) == len(y) == 7
    pd.testing.assert_frame_equal(X, X_full.iloc[:7])
    np.testing.assert_array_equal(y, y_full[:7])
    X0, y0 = load_dataset("diabetes", max_rows=0)
    assert len(X0) == len(y0) == 0
    X_big, _ = load_dataset("diabetes", "test", max_rows=10**6)
    assert len(X_big) == len(X_full)


@pytest.mark.parametrize("bad", [-1, 2.5, "3", True])
def test_bad_max_rows(bad):
    with pytest.raises(ValueError, match="max_rows"):
        load_dataset("diabetes", max_rows=bad)


def test_bad_split_names_allowed_values():
    with pytest.raises(ValueError, match="train") as exc:
        load_dataset("diabetes", split="validation")
    assert "test" in str(exc.value) and "validation" in str(exc.value)


@pytest.mark.parametrize("bad", ["no_such_dataset", "../datasets/diabetes"])
def test_unknown_name_lists_available(bad):
    with pytest.raises(ValueError, match="Unknown dataset") as exc:
        load_dataset(bad)
    assert "diabetes" in str(exc.value) and "ames_housing" in str(exc.value)
    with pytest.raises(ValueError, match="available"):
        dataset_info(bad)


def test_data_dir_default_and_env_override(monkeypatch, tmp_path):
    assert data_dir() == DATA_DIR
    (tmp_path / "toy.json").write_text('{"name": "toy", "target": "y"}')
    pd.DataFrame({"a": [1, 2, 3], "y": [1, 2, 3]}).to_parquet(tmp_path / "toy.test.parquet")
    monkeypatch.setenv("LMREG_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    assert list_datasets() == ["toy"]
    X, y = load_dataset("toy", "test")
    assert list(X.columns) == ["a"] and y.tolist() == [1.0, 2.0, 3.0]


def test_missing_data_dir_raises(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("LMREG_DATA_DIR", str(missing))
    with pytest.raises(FileNotFoundError, match="LMREG_DATA_DIR") as exc:
        list_datasets()
    assert str(missing) in str(exc.value)
    with pytest.raises(FileNotFoundError):
        load_dataset("diabetes")


def test_a_folder_without_dataset_files_is_not_the_data(monkeypatch, tmp_path):
    """An installed wheel's default path can be another package (Hugging Face's `datasets`)."""
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv("LMREG_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no lmreg datasets at .*ships with the source repository"):
        load_dataset("diabetes")


def test_a_missing_split_or_target_is_named(monkeypatch, tmp_path):
    (tmp_path / "toy.json").write_text('{"name": "toy", "target": "y"}')
    pd.DataFrame({"a": [1, 2, 3], "z": [1, 2, 3]}).to_parquet(tmp_path / "toy.test.parquet")
    monkeypatch.setenv("LMREG_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="dataset 'toy' has a sidecar but no train split"):
        load_dataset("toy", "train")
    with pytest.raises(ValueError, match="the sidecar's target 'y' is not a column of toy.test.parquet"):
        load_dataset("toy", "test")
    # other JSON in the folder is not a dataset (a default bench run stopped at it with "error: target")
    (tmp_path / "notes.json").write_text('{"author": "me"}')
    (tmp_path / "broken.json").write_text('{"target": ')
    assert list_datasets() == ["toy"]
