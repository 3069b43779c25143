"""``python -m dualad``: the main job runs, prints both rows of each table, and passes."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from dualad import __main__ as main_module


@pytest.fixture(scope="module")
def quick_output():
    out = io.StringIO()
    ok = main_module.demo(quick=True, out=out)
    return ok, out.getvalue()


def test_quick_run_passes_its_checks(quick_output):
    ok, text = quick_output
    assert ok, text
    assert text.rstrip().endswith("all checks passed")


def test_both_rows_in_both_tables(quick_output):
    _, text = quick_output
    fit, rosen = text.split("2. Rosenbrock")
    for section in (fit, rosen):
        rows = [line.split() for line in section.splitlines()
                if line.strip().startswith(("dualad ", "finite differences"))]
        assert [r[0] for r in rows] == ["dualad", "finite"], section
        for r in rows:  # evaluations, time (ms), error
            name_len = 1 if r[0] == "dualad" else 2
            evals, ms, error = r[name_len:name_len + 3]
            assert int(evals) > 0 and float(ms) > 0 and np.isfinite(float(error))
    assert "max gap" in fit and "(ok)" in fit


def test_reference_jacobian_is_the_derivative():
    """The hand-written Jacobian the job checks against, checked by central differences."""
    t, y = main_module.fit_data()
    p = main_module.P0
    J = main_module.residual_jacobian(p, t, y)
    h = 1e-6
    for j in range(p.size):
        e = np.zeros_like(p)
        e[j] = h
        r = main_module.residual
        fd = (r(p + e, t, y) - r(p - e, t, y)) / (2 * h)
        np.testing.assert_allclose(J[:, j], fd, rtol=1e-7, atol=1e-8)


def test_main_info(capsys):
    assert main_module.main(["--info"]) == 0
    text = capsys.readouterr().out
    assert "dualad build information" in text and "scipy" in text
    assert "Curve fit" not in text


def test_module_runs_as_a_program():
    # the dualad under test (an in-place build or an installed one) comes first
    import dualad
    where = os.path.dirname(os.path.dirname(os.path.abspath(dualad.__file__)))
    env = dict(os.environ, PYTHONPATH=where + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "dualad", "--info"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "compiled core" in proc.stdout
