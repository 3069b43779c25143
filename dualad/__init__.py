"""dualad: exact derivatives of plain NumPy code, with a Cython dual-number core.

Write your function with NumPy as usual and ask for its derivatives::

    import numpy as np
    import dualad

    def f(x):
        return np.sum(np.sin(x) * x ** 2)

    dualad.grad(f)(np.array([1.0, 2.0]))        # gradient, shape of x
    dualad.jacobian(np.sin)(np.array([1.0, 2.0]))  # (m, n) Jacobian

The transforms return plain functions with SciPy's calling convention, so they drop
into ``scipy.optimize`` as ``jac=``.
"""

from ._build import check_build as _check_build

_check_build()

from ._scalar import Dual, HyperDual  # noqa: E402
from ._array import DualArray  # noqa: E402
from .rules import linear as _linear  # noqa: E402,F401  (registers the NumPy functions)
from .rules import linalg as _linalg  # noqa: E402,F401  (registers numpy.linalg, both modes)
from .rules.registry import defrule  # noqa: E402
from .api import derivative, jvp, vjp, jacobian, grad, value_and_grad, hessian, hvp  # noqa: E402,E501
from .pytree import ravel  # noqa: E402
from ._errors import NoRuleError  # noqa: E402
from .diagnostics import check_grad, trace  # noqa: E402
from .sparse import linear_operator  # noqa: E402
from .forward import CHUNK_THRESHOLD  # noqa: E402
from ._version import __version__  # noqa: E402
from . import special  # noqa: E402,F401  (dualad.special: logsumexp, softmax...)
from . import optim  # noqa: E402,F401  (dualad.optim: SGD, Adam, AdamW, fit)
from . import optimize  # noqa: E402,F401  (SciPy's solvers with derivatives)

__all__ = ["Dual", "HyperDual", "DualArray", "derivative", "jvp", "vjp", "jacobian", "grad",
           "value_and_grad", "hessian", "hvp", "linear_operator", "check_grad", "trace", "NoRuleError",
           "ravel",
           "defrule", "CHUNK_THRESHOLD", "__version__"]
