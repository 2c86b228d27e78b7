import os
import sys

# the package (repo root) and the test helpers (this folder) import by name
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]


def pytest_collection_modifyitems(config, items):
    """Long jobs (marked slow) run only when asked for: pytest -m slow."""
    if config.option.markexpr:
        return
    keep = [it for it in items if "slow" not in it.keywords]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[it for it in items if "slow" in it.keywords])
        items[:] = keep
