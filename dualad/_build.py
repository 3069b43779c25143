"""Make sure the compiled core is there before anything else is imported.

Design note
-----------
dualad has no pure-Python fallback: a silent fallback would be tens of times slower.
If the Cython extensions are missing, importing dualad raises ``ImportError`` saying how
to build them.

One case is not an error: running ``python -m dualad`` or ``python -m pytest`` from a
source checkout after ``pip install .`` puts the checkout (without compiled modules)
first on ``sys.path``.  Then the installed copy is used instead of the bare source tree.
"""

import glob
import importlib.machinery
import os
import sys

__all__ = ["check_build", "EXTENSIONS"]

EXTENSIONS = ("_scalar", "_array", "_tape", "_memory", "_hyper")


def _has_extensions(folder):
    return all(glob.glob(os.path.join(folder, f"{name}.*.so"))
               or glob.glob(os.path.join(folder, f"{name}.*.pyd"))
               or glob.glob(os.path.join(folder, f"{name}.so"))
               for name in EXTENSIONS)


def check_build():
    """Raise ``ImportError`` unless the compiled extensions can be imported."""
    package = sys.modules["dualad"]
    here = os.path.dirname(os.path.abspath(package.__file__))
    if _has_extensions(here):
        return
    root = os.path.dirname(here)
    others = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != root]
    spec = importlib.machinery.PathFinder.find_spec("dualad", others)
    if spec is not None and spec.submodule_search_locations:
        installed = list(spec.submodule_search_locations)[0]
        if os.path.abspath(installed) != here and _has_extensions(installed):
            package.__path__[:] = [installed]
            package.__file__ = os.path.join(installed, "__init__.py")
            return
    raise ImportError(
        f"dualad's compiled core ({', '.join('dualad.' + e for e in EXTENSIONS)}) is not "
        f"built in {here}. Install the package with `pip install .` (or `pip install -e .`"
        " for development), which compiles the Cython extensions; dualad has no "
        "pure-Python fallback.")
