"""Warnings that point at the user's line.

lmreg warns from deep inside ``fit`` and ``predict`` (the serializer, the tokenizers,
the column checks), at call depths that differ by path, so no fixed ``stacklevel``
names the user's ``fit(...)`` or ``predict(...)`` line for all of them;
:func:`warn_user` walks up to the first frame outside the package (and outside
scikit-learn and joblib, through which a pipeline or a search calls it) instead: what
Python 3.12's ``skip_file_prefixes`` does.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _inside() -> tuple[str, ...]:
    """lmreg's folder, and those of the libraries that call it for the user (scikit-learn's
    ``score``, pipelines and searches; joblib's parallel calls)."""
    import sklearn

    folders = [_PACKAGE, os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep]
    try:
        import joblib
    except ImportError:   # pragma: no cover - scikit-learn requires it
        pass
    else:
        folders.append(os.path.dirname(os.path.abspath(joblib.__file__)) + os.sep)
    return tuple(folders)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first caller outside lmreg
    and the libraries that call it (scikit-learn, joblib).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("a column was cut")
    >>> caught[0].filename.startswith(_PACKAGE), str(caught[0].message)
    (False, 'a column was cut')
    """
    inside = _inside()
    frame, level = sys._getframe(1), 2   # stacklevel 2: warn_user's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(inside):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


@contextlib.contextmanager
def each_once():
    """Inside the block, each distinct warning is shown once, when the block ends (the
    command line predicts and then reads quantiles of the same rows: their column warnings
    are the same). The filters apply as the warnings leave, so ``-W error`` still raises.

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with each_once():
    ...         for _ in range(2):
    ...             warn_user("a column was cut")
    >>> [str(w.message) for w in caught]
    ['a column was cut']
    """
    caught, seen = [], set()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:   # an error in the block keeps the warnings that came before it
        for w in caught:
            if (w.category, str(w.message)) not in seen:
                seen.add((w.category, str(w.message)))
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
