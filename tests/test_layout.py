"""The test tree itself: its packages must not shadow installed modules.

pytest puts ``tests/`` on ``sys.path``, so a test package named like an installed
top-level module (``kernels``, which transformers imports) would be imported in its place.
"""

from importlib.metadata import packages_distributions
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_packages_do_not_shadow_installed_modules():
    packages = sorted(p.parent.name for p in TESTS.glob("*/__init__.py"))
    assert packages                                   # the glob found the test packages
    installed = packages_distributions()
    clashes = {name: installed[name] for name in packages if name in installed}
    assert not clashes, clashes
