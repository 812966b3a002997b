"""lmreg: language-model regression with a scikit-learn API.

>>> from lmreg import LMRegressor, load, list_datasets
"""

from .datasets import list_datasets, load_dataset
from .estimator import LMRegressor
from .persistence import load

__version__ = "0.1.0"
__all__ = ["LMRegressor", "load", "load_dataset", "list_datasets", "__version__"]
