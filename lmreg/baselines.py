"""Classical reference models on the same rows lmreg reads.

The benchmark harness (:mod:`lmreg.bench`) puts lmreg next to what a data scientist
already uses:

* ``mean``: the training mean (R^2 = 0 on the test split, up to sampling);
* ``ridge_tfidf``: TF-IDF (word 1-2 grams) + ridge on rows rendered as ``name: value`` text;
* ``knn``: 10 nearest neighbours (distance-weighted) on standardised :class:`TabularFeatures`;
* ``hgb``: :class:`~sklearn.ensemble.HistGradientBoostingRegressor` on
  :class:`TabularFeatures` (numbers as is, categories as native categorical codes,
  text columns as TF-IDF -> SVD components);
* ``lgbm``: LightGBM on the same features, when ``lightgbm`` is installed.

Every factory returns an unfitted scikit-learn estimator that accepts anything
:class:`~lmreg.serialize.Serializer` accepts.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .cells import cell_text
from .serialize import Serializer

__all__ = ["BASELINES", "TabularFeatures", "RowText", "make_baseline", "tfidf_ridge"]


class RowText(TransformerMixin, BaseEstimator):
    """Rows -> ``"name: value | ..."`` strings (numbers rendered as text).

    Examples
    --------
    >>> RowText().fit_transform([{"a": 1, "b": "x"}])
    ['a: 1 | b: x']
    """

    def fit(self, X, y=None):
        self.serializer_ = Serializer(numeric="text").fit(X)
        return self

    def transform(self, X):
        return self.serializer_.to_text(X)


class TabularFeatures(TransformerMixin, BaseEstimator):
    """Rows -> a dense float matrix for tree models.

    Numeric (and datetime) columns pass through (NaN kept: trees handle it; one with
    no value in ``fit`` is left out), categorical columns become integer codes learnt
    in ``fit`` (unseen -> NaN), and each text column becomes ``svd_components``
    TF-IDF -> truncated-SVD features. Rows with none of these get one constant
    column (the models then predict a constant).

    Parameters
    ----------
    svd_components : int, default=32
        Components per text column (fewer when the vocabulary is smaller).
    max_features : int, default=20000
        TF-IDF vocabulary size per text column.
    random_state : int, default=0
        Seeds the truncated SVD.

    Attributes
    ----------
    categorical_mask_ : ndarray of bool
        Which output columns hold category codes (for ``categorical_features``).

    Examples
    --------
    >>> rows = [{"n": i, "c": "ab"[i % 2], "t": f"a longer free text, row {i} of words"} for i in range(12)]
    >>> f = TabularFeatures(svd_components=2).fit(rows)
    >>> f.transform(rows).shape, f.categorical_mask_.tolist()
    ((12, 4), [False, True, False, False])
    """

    def __init__(self, svd_components=32, max_features=20000, random_state=0):
        self.svd_components = svd_components
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X, y=None):
        self.serializer_ = Serializer().fit(X)
        table = self.serializer_.transform(X)
        self.categories_, self.text_ = {}, {}
        self.numeric_ = [c.name for c in table.columns if c.kind == "num" and not np.isnan(c.values.astype(float)).all()]
        for col in table.columns:
            if col.kind == "cat":
                seen = sorted({v for v in col.values if v is not None})
                self.categories_[col.name] = {v: i for i, v in enumerate(seen)}
            elif col.kind in ("text", "tags"):
                docs = [cell_text(v) or "" for v in col.values]
                tfidf = TfidfVectorizer(max_features=self.max_features, sublinear_tf=True)
                try:
                    M = tfidf.fit_transform(docs)
                except ValueError:  # empty vocabulary: the column carries no words
                    continue
                k = min(self.svd_components, M.shape[1] - 1, M.shape[0] - 1)
                if k < 1:
                    continue
                svd = TruncatedSVD(n_components=k, random_state=self.random_state).fit(M)
                self.text_[col.name] = (tfidf, svd)
        mask = []
        for col in table.columns:
            if col.name in self.numeric_ or col.kind == "cat":
                mask.append(col.kind == "cat")
            elif col.name in self.text_:
                mask += [False] * self.text_[col.name][1].n_components
        self.categorical_mask_ = np.array(mask or [False], dtype=bool)
        return self

    def transform(self, X):
        table = self.serializer_.transform(X)
        blocks = []
        for col in table.columns:
            if col.name in self.numeric_:
                blocks.append(col.values.astype(float)[:, None])
            elif col.kind == "cat":
                codes = self.categories_[col.name]
                blocks.append(np.array([codes.get(v, np.nan) for v in col.values], float)[:, None])
            elif col.name in self.text_:
                tfidf, svd = self.text_[col.name]
                blocks.append(svd.transform(tfidf.transform([cell_text(v) or "" for v in col.values])))
        if not blocks:   # nothing to split on: one constant column
            return np.zeros((len(table), 1))
        return np.hstack(blocks)


class _TreeOnFeatures(BaseEstimator):
    """A tree model fitted on :class:`TabularFeatures`, categorical codes declared."""

    def __init__(self, kind="hgb", random_state=0):
        self.kind = kind
        self.random_state = random_state

    def fit(self, X, y):
        self.features_ = TabularFeatures(random_state=self.random_state).fit(X)
        F = self.features_.transform(X)
        mask = self.features_.categorical_mask_
        # HGB treats at most max_bins (255) categories natively; wider columns stay ordinal.
        cat = [int(i) for i in np.flatnonzero(mask) if np.nanmax(F[:, i], initial=0) < 255]
        if self.kind == "hgb":
            self.model_ = HistGradientBoostingRegressor(
                categorical_features=cat or None, random_state=self.random_state)
            self.model_.fit(F, y)
        else:
            import lightgbm

            self.model_ = lightgbm.LGBMRegressor(random_state=self.random_state, verbose=-1)
            self.model_.fit(F, y, categorical_feature=cat or "auto")
        return self

    def predict(self, X):
        return self.model_.predict(self.features_.transform(X))


def tfidf_ridge():
    """TF-IDF (word 1-2 grams) + ridge regression (alpha 1) on rows rendered as ``name: value`` text.

    A fixed alpha keeps the fit to seconds: ``RidgeCV``'s leave-one-out path forms an
    n x n Gram matrix on sparse input.

    Examples
    --------
    >>> import numpy as np
    >>> X = [f"size: {i}" for i in range(20)]
    >>> model = tfidf_ridge().fit(X, np.arange(20.0))
    >>> model.predict(["size: 3"]).shape
    (1,)
    """
    return make_pipeline(RowText(), TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                         Ridge(alpha=1.0))


def _knn(random_state=0):
    return make_pipeline(TabularFeatures(random_state=random_state), SimpleImputer(), StandardScaler(),
                         KNeighborsRegressor(n_neighbors=10, weights="distance"))


def _lightgbm_available() -> bool:
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


#: Baseline name -> factory of an unfitted estimator, called with a ``random_state``
#: (the deterministic ones take it and ignore it).
BASELINES = {
    "mean": lambda random_state=0: DummyRegressor(strategy="mean"),
    "ridge_tfidf": lambda random_state=0: tfidf_ridge(),
    "knn": _knn,
    "hgb": lambda random_state=0: _TreeOnFeatures("hgb", random_state),
    "lgbm": lambda random_state=0: _TreeOnFeatures("lgbm", random_state),
}


def make_baseline(name: str, random_state: int = 0):
    """An unfitted baseline by name (one of :data:`BASELINES`), seeded by ``random_state``
    (the trees' early-stopping split and the text columns' SVD).

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        For ``lgbm`` when ``lightgbm`` is not installed.

    Examples
    --------
    >>> make_baseline("mean").fit([[1.0], [2.0]], [1.0, 3.0]).predict([[5.0]]).tolist()
    [2.0]
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}.")
    if name == "lgbm" and not _lightgbm_available():
        raise ImportError("the 'lgbm' baseline needs lightgbm: pip install 'lmreg[bench]'.")
    return BASELINES[name](random_state)
