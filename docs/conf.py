"""Sphinx configuration for dualad's documentation.

Build (from the repository root, with dualad importable, e.g. after ``pip install .``
or with ``PYTHONPATH=.`` over an in-place build)::

    sphinx-build -W -b html docs docs/_build/html

``-W`` turns every warning into an error: a docstring that numpydoc cannot parse, a
public name of ``dualad.__all__`` missing from the API reference (checked by
``_ext/dualad_docs.py``) or a broken cross-reference fails the build.  The NumPy
coverage tables are generated from the rule table and the function registry during the
build, so they cannot drift from the code.  ``sphinx-build -b doctest docs
docs/_build/doctest`` runs every ``>>>`` example of the pages and the docstrings.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))

import dualad  # noqa: E402  (the compiled package must be importable: autodoc needs it)

project = "dualad"
author = "The dualad developers"
copyright = "The dualad developers"
version = dualad.__version__
release = dualad.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "dualad_docs",
]

root_doc = "index"
# Every cross-reference must resolve (with -W a broken one fails the build).
nitpicky = True
# ... except the SciPy functions that "See Also" sections name for comparison: the build
# has no intersphinx (it must work offline), so they cannot resolve.
nitpick_ignore = [("py:obj", "scipy.special.logsumexp")]
exclude_patterns = ["_build"]
templates_path = []

# -- autodoc ------------------------------------------------------------------------------
# Signatures of the Cython extension types come from the first line of their docstrings
# (``Dual(value, partials=(1.0,), tag=0)``); methods carry embedded signatures
# (``embedsignature=True`` in setup.py).
autodoc_docstring_signature = True
autodoc_default_options = {"member-order": "alphabetical"}
autodoc_typehints = "none"
add_module_names = False

# -- numpydoc -----------------------------------------------------------------------------
# Members are listed by autodoc (``:members:``); numpydoc's own autosummary tables of
# class members would duplicate them.
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- doctest builder ----------------------------------------------------------------------
doctest_global_setup = """
import numpy as np
import dualad
"""
# Exception messages are part of what the pages promise, so they are compared too
# (Sphinx's default ignores them); long outputs may be wrapped.
import doctest  # noqa: E402

doctest_default_flags = (doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
                         | doctest.DONT_ACCEPT_TRUE_FOR_1)

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"dualad {release}"
html_static_path = ["_static"]
html_css_files = ["dualad.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": [], "changelog": [], "roadmap": []}
html_show_sourcelink = False
