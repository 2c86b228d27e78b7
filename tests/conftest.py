import importlib.util
import os
import sys

# the package (repo root) and the test helpers (this folder) import by name
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]


def _installed_name(name, folder):
    """export/ and demos/ install as edgebnn_export / edgebnn_demos (see
    pyproject.toml); in a source tree that was only built in place, load
    them under that one name too, so no module exists twice."""
    if importlib.util.find_spec(name) is not None:
        return
    path = os.path.join(ROOT, folder)
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(path, "__init__.py"), submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_installed_name("edgebnn_demos", "demos")
_installed_name("edgebnn_export", "export")


def pytest_collection_modifyitems(config, items):
    """Long jobs (marked slow) run only when asked for: pytest -m slow."""
    if config.option.markexpr:
        return
    keep = [it for it in items if "slow" not in it.keywords]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[it for it in items if "slow" in it.keywords])
        items[:] = keep
