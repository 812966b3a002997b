"""Classical reference models on the same serialized rows.

Used by the quickstart and the benchmarks to put lmreg's numbers next to a
TF-IDF + ridge regression on exactly the text lmreg reads.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from .serialize import Serializer


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
    serializer = Serializer(numeric="text")
    to_text = FunctionTransformer(lambda X: serializer.to_text(X) if hasattr(serializer, "kinds_")
                                  else serializer.fit(X).to_text(X))
    return make_pipeline(to_text, TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                         Ridge(alpha=1.0))
