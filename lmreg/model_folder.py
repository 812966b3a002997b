"""The folder a model is saved in: where ``save`` may write, how it replaces a model.

``save`` writes next to the destination and renames into place, moving a model
already there aside first (a sibling name: a folder moved to another parent needs
write permission on itself), so an interrupted save never leaves a half-written model
where a good one was; the written files get the modes of the model they replace, or
the umask's. The command line checks its ``--out`` here before fitting.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

CONFIG, WEIGHTS = "config.json", "model.safetensors"
#: Written by ``lmreg fit`` into the model directory: ``{"target": COL}``.
CLI_FILE = "cli.json"


def _short(name: str) -> str:
    """A model folder's name, shortened for the hidden folders made next to it (with their
    prefix and random part they must stay under the file systems' 255 bytes): 64 bytes, not
    characters (an emoji is four), a character never cut in half.

    >>> _short("x" * 70) == "x" * 64, _short("\N{CHART WITH UPWARDS TREND}" * 60) == "\N{CHART WITH UPWARDS TREND}" * 16
    (True, True)
    """
    return os.fsencode(name)[:64].decode(sys.getfilesystemencoding(), "ignore")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, deepest first."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_new(folders: list[Path]) -> None:
    """Remove the (still empty) folders :func:`_make_parents` created, deepest first."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def process_umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _copy_permissions(folder: Path, like: Path) -> int:
    """Give the files of the written ``folder`` the modes of the model's it replaces at
    ``like`` (a folder locked to its owner stays locked), or, for a new path, those a plain
    ``open`` gives under the process umask (the weights are written 0600), so that whoever
    may read the destination folder may load the model; returns the mode the folder
    itself is to get likewise (``mkdtemp`` makes it 0700), set once it is in place."""
    umask = process_umask()
    old = like if like.is_dir() and not like.is_symlink() else None
    for item in folder.iterdir():
        before = old / item.name if old else None
        os.chmod(item, stat.S_IMODE(before.stat().st_mode) if before and before.is_file() else 0o666 & ~umask)
    return stat.S_IMODE(old.stat().st_mode) if old else 0o777 & ~umask


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the written folder ``tmp`` to ``path``; a model already there is moved aside
    first and put back if the second rename fails, so ``path`` always holds one model."""
    old = None
    try:
        if path.exists():
            # a free name next to it: a folder moved to another parent needs write permission
            # on itself (its ".." entry changes), which a model folder locked read-only lacks
            old = Path(tempfile.mkdtemp(prefix=f".{_short(path.name)}.old.", dir=path.parent))
            os.rmdir(old)
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException:
        if old is not None and old.exists() and not path.exists():
            os.rename(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_replaced(old)
        raise
    _remove_replaced(old)


def _remove_replaced(old: Path | None) -> None:
    """Remove the model folder ``old`` a save moved aside; its files go even if it was
    read-only (deleting them needs write permission on the folder, which it is given)."""
    if old is None or not old.exists():
        return
    try:
        os.chmod(old, stat.S_IRWXU)
    except OSError:
        pass
    shutil.rmtree(old, ignore_errors=True)


def check_save_path(path) -> Path:
    """``path`` made absolute, or an error if ``save`` could not write it there: it holds
    the working directory, is not replaceable (:func:`check_replaceable`), or its nearest
    existing parent is not a folder new files can be made in. The command line checks
    ``--out`` with it before fitting.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     check_save_path(os.path.join(f.name, "m"))
    Traceback (most recent call last):
    ...
    ValueError: cannot save into '.../m': '...' is a file, not a folder.
    """
    path = Path(os.path.abspath(path))   # "." and "" name the folder itself, not a child of it
    if Path.cwd().is_relative_to(path):
        raise ValueError(f"cannot save into {str(path)!r}: it holds the current working directory, which "
                         "saving replaces; choose a new folder (e.g. a subfolder).")
    check_replaceable(path)
    problem = unwritable(path)
    if problem:
        raise ValueError(f"cannot save into {str(path)!r}: {problem}.")
    return path


def unwritable(path: Path) -> str | None:
    """Why nothing could be created at ``path`` (None: it could): its nearest existing
    parent is a file, or a folder that does not take new files.

    >>> unwritable(Path(tempfile.gettempdir()) / "new" / "deeper") is None
    True
    """
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink():   # mkdir would fail on it once the fit is done
            return f"{str(parent)!r} is a broken symbolic link"
        parent = parent.parent
    if not parent.is_dir():
        return f"{str(parent)!r} is a file, not a folder"
    try:   # a real attempt: permissions, read-only and special file systems all answer it
        os.rmdir(tempfile.mkdtemp(prefix=f".{_short(path.name)}.check.", dir=parent))
    except OSError as err:
        return f"its folder {str(parent)!r} does not take new files ({err.strerror})"
    return None


def check_replaceable(path) -> None:
    """Raise FileExistsError unless ``save`` may write ``path``: a new path, an empty
    directory, or a directory holding only what lmreg writes (a readable lmreg config).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     check_replaceable(Path(d) / "new")  # nothing there: fine
    ...     _ = (Path(d) / "notes.txt").write_text("mine")
    ...     check_replaceable(d)
    Traceback (most recent call last):
    ...
    FileExistsError: ... exists and is not a saved lmreg model; save replaces only a saved model or an empty directory, so choose a new path.
    """
    path = Path(path)
    if path.is_symlink():   # renaming it would replace the link, not the model it points to
        raise FileExistsError(f"{str(path)!r} is a symbolic link; save does not replace links, so give "
                              "the folder it points to or a new path.")
    if not path.exists() or _is_saved_model_or_empty(path):
        return
    raise FileExistsError(f"{str(path)!r} exists and is not a saved lmreg model; save replaces only "
                          "a saved model or an empty directory, so choose a new path.")


def _is_saved_model_or_empty(path: Path) -> bool:
    return path.is_dir() and (not os.listdir(path) or is_saved_model(path))


def is_saved_model(path) -> bool:
    """Whether folder ``path`` holds a model ``save`` wrote and nothing else (a readable
    lmreg config next to the weights).

    >>> is_saved_model(tempfile.gettempdir())
    False
    """
    path = Path(path)
    names = set(os.listdir(path)) if path.is_dir() else set()
    if not names <= {CONFIG, WEIGHTS, CLI_FILE} or CONFIG not in names:
        return False
    try:
        with open(path / CONFIG) as f:
            return "format_version" in json.load(f)
    except (OSError, ValueError, TypeError):
        return False
