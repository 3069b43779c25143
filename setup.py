"""Build dualad's Cython extensions.

The extension table, the global Cython directives, NumPy's include path and
``NPY_NO_DEPRECATED_API``, and the rendering of the generated kernel header
``dualad/_kernels.pxd`` from the rule table.  Metadata lives in ``pyproject.toml``.
Set ``DUALAD_CYTHON_DEBUG=1`` to build with bounds, wraparound and None checks on.
"""

import importlib.util
import os
import pathlib
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = pathlib.Path(__file__).resolve().parent
DEBUG = os.environ.get("DUALAD_CYTHON_DEBUG", "0") not in ("", "0")


def _load(name, path):
    """Import a pure-Python module of the package by path (the package is not built yet)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def render_kernels():
    """Write dualad/_kernels.pxd from the rule table if its text changed."""
    _load("dualad.rules._elementwise", HERE / "dualad" / "rules" / "_elementwise.py")
    codegen = _load("dualad.rules._codegen", HERE / "dualad" / "rules" / "_codegen.py")
    target = HERE / "dualad" / "_kernels.pxd"
    text = codegen.render_kernels()
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    for name in ("dualad.rules._codegen", "dualad.rules._elementwise"):
        sys.modules.pop(name, None)


render_kernels()

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
    "binding": True,
}

MACROS = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
CFLAGS = ["-O3"] if not DEBUG else ["-O0", "-g"]

EXTENSIONS = [
    Extension(f"dualad.{name}", [f"dualad/{name}.pyx"], include_dirs=[np.get_include()],
              define_macros=MACROS, extra_compile_args=CFLAGS)
    for name in ("_scalar", "_array", "_tape", "_memory", "_hyper")
]

setup(
    # Generated C goes to a directory per build mode: Cython does not notice a change of
    # directives, so a debug build must never reuse the optimised build's C files.
    ext_modules=cythonize(EXTENSIONS, compiler_directives=DIRECTIVES,
                          include_path=[str(HERE)], nthreads=0,
                          build_dir="build/cython-debug" if DEBUG else "build/cython"),
    package_data={"dualad": ["*.pxd", "*.pyi", "py.typed"]},
)
