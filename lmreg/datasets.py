"""Bundled benchmark datasets with fixed train/test splits.

Each dataset ``NAME`` is stored in the data folder as three files:
``NAME.train.parquet``, ``NAME.test.parquet`` and a ``NAME.json`` sidecar
describing the target column, split sizes, source and license.

Examples
--------
>>> from lmreg.datasets import list_datasets, load_dataset
>>> "diabetes" in list_datasets()
True
>>> X, y = load_dataset("diabetes", split="test")
>>> X.shape, y.shape
((88, 10), (88,))
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DATA_DIR", "data_dir", "list_datasets", "dataset_info", "load_dataset"]

#: Default location of the bundled data: ``datasets/`` at the repository root.
DATA_DIR = Path(__file__).resolve().parent.parent / "datasets"

#: Environment variable that overrides :data:`DATA_DIR`.
ENV_VAR = "LMREG_DATA_DIR"

_SPLITS = ("train", "test")


def data_dir() -> Path:
    """Return the folder holding the datasets.

    ``$LMREG_DATA_DIR`` is used when set, else :data:`DATA_DIR`. The variable
    is read at call time, so it can be changed after import.

    Returns
    -------
    pathlib.Path
        The existing data folder.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.

    Examples
    --------
    >>> (data_dir() / "diabetes.json").is_file()
    True
    """
    env = os.environ.get(ENV_VAR)
    path = Path(env).expanduser() if env else DATA_DIR
    # Installed from a wheel there is no datasets/ next to the package, and that path may
    # be another distribution's (Hugging Face's `datasets` package): look for the files.
    if not path.is_dir() or not any(path.glob("*.parquet")):
        origin = f"${ENV_VAR}" if env else "the repository's datasets/ folder, next to the lmreg package"
        raise FileNotFoundError(
            f"no lmreg datasets at {path} (from {origin}). The data ships with the source "
            f"repository, not the wheel: set the {ENV_VAR} environment variable to a folder "
            "holding the NAME.json / NAME.{train,test}.parquet files (the repository's datasets/)."
        )
    return path


def list_datasets() -> list[str]:
    """Return the sorted names of the available datasets.

    A dataset is listed when its ``NAME.json`` sidecar is present: a JSON object naming
    the ``target`` (another ``.json`` file in the folder is not a dataset).

    Examples
    --------
    >>> names = list_datasets()
    >>> names == sorted(names) and "diabetes" in names
    True
    """
    return sorted(p.stem for p in data_dir().glob("*.json") if _is_sidecar(p))


def _is_sidecar(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):   # unreadable, or not JSON
        return False
    return isinstance(info, dict) and "target" in info


def _check_name(name: str) -> Path:
    # Only accept listed names (also rules out paths such as "../x").
    names = list_datasets()
    if name not in names:
        raise ValueError(
            f"Unknown dataset {name!r}; available datasets: {', '.join(names)}."
        )
    return data_dir()


def dataset_info(name: str) -> dict:
    """Return the parsed JSON sidecar of a dataset.

    Parameters
    ----------
    name : str
        Dataset name, one of :func:`list_datasets`.

    Returns
    -------
    dict
        Metadata: ``target``, ``n_train``, ``n_test``, ``columns``,
        ``source``, ``license``, ``task``, ``split``...

    Examples
    --------
    >>> info = dataset_info("diabetes")
    >>> info["target"], info["n_train"], info["n_test"]
    ('progression', 354, 88)
    """
    folder = _check_name(name)
    with open(folder / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def load_dataset(
    name: str, split: str = "train", *, max_rows: int | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Load one split of a bundled dataset.

    Parameters
    ----------
    name : str
        Dataset name, one of :func:`list_datasets`.
    split : {"train", "test"}, default="train"
        Which fixed split to load.
    max_rows : int or None, default=None
        If given, keep only the first ``max_rows`` rows (deterministic).

    Returns
    -------
    X : pandas.DataFrame
        Input columns (target removed), with a fresh ``RangeIndex``.
    y : numpy.ndarray of shape (n_rows,)
        Target values as float64.

    Raises
    ------
    ValueError
        On an unknown name, a bad split, a negative ``max_rows`` or a split file
        without the sidecar's target column.
    FileNotFoundError
        When the split's parquet file is missing beside the sidecar.

    Examples
    --------
    >>> X, y = load_dataset("diabetes", max_rows=5)
    >>> list(X.columns[:3]), y.dtype, len(y)
    (['age', 'sex', 'bmi'], dtype('float64'), 5)
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}.")
    valid_int = isinstance(max_rows, (int, np.integer)) and not isinstance(max_rows, bool)
    if max_rows is not None and not (valid_int and max_rows >= 0):
        raise ValueError(f"max_rows must be a non-negative integer or None, got {max_rows!r}.")
    target = dataset_info(name)["target"]
    path = data_dir() / f"{name}.{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"dataset {name!r} has a sidecar but no {split} split: {path} is missing.")
    df = pd.read_parquet(path)
    if target not in df.columns:
        raise ValueError(f"dataset {name!r}: the sidecar's target {target!r} is not a column of {path.name}.")
    if max_rows is not None:
        df = df.iloc[: int(max_rows)]
    y = df[target].to_numpy(dtype=np.float64, copy=True)
    X = df.drop(columns=[target]).reset_index(drop=True)
    return X, y
