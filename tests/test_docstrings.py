"""Every public name has a NumPy-style docstring whose Examples run (as doctests)."""

import doctest
import inspect

import numpy as np
import pytest

import dualad
from dualad import api, diagnostics, forward, optim, optimize, sparse, special
from dualad.rules import registry

PUBLIC = [getattr(dualad, name) for name in dualad.__all__ if name != "CHUNK_THRESHOLD"
          and name != "__version__"]
EXTRA = [forward.chunk_size, registry.defrule, special.logsumexp, special.softmax,
         special.log_softmax, diagnostics.find_nonfinite]
# the submodules' public names (classes and functions)
EXTRA += [getattr(mod, name) for mod in (diagnostics, optim, optimize, sparse)
          for name in mod.__all__ if getattr(mod, name) not in PUBLIC]


def _name(obj):
    return getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))


@pytest.mark.parametrize("obj", PUBLIC + EXTRA, ids=_name)
def test_docstring_has_sections(obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{_name(obj)} has no docstring"
    assert "Examples" in doc, f"{_name(obj)}: no Examples section"
    if inspect.isfunction(obj):
        assert "Parameters" in doc and "Returns" in doc, f"{_name(obj)}: sections"


@pytest.mark.parametrize("obj", PUBLIC + EXTRA, ids=_name)
def test_docstring_examples_run(obj):
    doc = inspect.getdoc(obj)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(doc, {"np": np, "dualad": dualad}, _name(obj), None, 0)
    assert test.examples, f"{_name(obj)}: the Examples section has no doctest"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                   | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{_name(obj)}: {result.failed} doctest(s) failed"


def test_version_matches_pyproject():
    import pathlib
    import re
    text = (pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == dualad.__version__


def test_api_module_all():
    assert set(api.__all__) <= set(dualad.__all__)
