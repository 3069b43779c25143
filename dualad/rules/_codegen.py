"""Turn the rule table's expressions into C kernels and into NumPy callables.

Design note
-----------
The rule table (:mod:`dualad.rules._elementwise`) writes each partial once, as a Python
expression.  This module gives that text its two meanings:

* :func:`render_kernels` emits ``dualad/_kernels.pxd``: for every rule an inline
  ``noexcept nogil`` first-order kernel ``rule_<name>`` (value and first partials) and a
  second-order kernel ``rule2_<name>`` (value, first and second partials), plus tables of
  function pointers indexed by the rule's position.  ``setup.py`` calls it before
  cythonizing; the file is generated, never edited.
* :func:`compile_expression` turns the same text into a Python function of
  ``(x, y, ans)`` that calls NumPy, for the generic (NumPy) path and for nesting.

Like the table, this module imports only the standard library.
"""

import ast

from ._elementwise import FUNCTIONS, RULES

__all__ = ["to_cython", "compile_expression", "render_kernels"]

_ARGS = ("x", "y", "ans")
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMPOPS = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==",
           ast.NotEq: "!="}


def _check(node, where):
    """Reject anything outside the expression language, naming the culprit."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in _ARGS \
                and sub.id not in FUNCTIONS and sub.id != "where":
            raise ValueError(f"{where}: unknown name {sub.id!r}")
        if isinstance(sub, ast.Call) and not isinstance(sub.func, ast.Name):
            raise ValueError(f"{where}: only plain function calls are allowed")


def to_cython(expr, where="expression"):
    """Translate one table expression into a Cython (C-level) expression.

    ``a ** 2`` becomes ``(a * a)``, other powers ``pow(a, b)``; ``where(c, a, b)``
    becomes a conditional expression; NumPy function names become C names.
    """
    tree = ast.parse(expr, mode="eval").body
    _check(tree, where)

    def emit(node):
        if isinstance(node, ast.Constant):
            return repr(float(node.value))
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return f"({'-' if isinstance(node.op, ast.USub) else '+'}{emit(node.operand)})"
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return f"({emit(node.left)} {_BINOPS[type(node.op)]} {emit(node.right)})"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            base = emit(node.left)
            if isinstance(node.right, ast.Constant) and node.right.value == 2:
                return f"({base} * {base})"
            return f"pow({base}, {emit(node.right)})"
        if isinstance(node, ast.Compare) and len(node.ops) == 1 \
                and type(node.ops[0]) in _CMPOPS:
            return (f"({emit(node.left)} {_CMPOPS[type(node.ops[0])]} "
                    f"{emit(node.comparators[0])})")
        if isinstance(node, ast.Call):
            name = node.func.id
            args = [emit(a) for a in node.args]
            if name == "where":
                if len(args) != 3:
                    raise ValueError(f"{where}: where() takes three arguments")
                return f"({args[1]} if {args[0]} else {args[2]})"
            return f"{FUNCTIONS[name]}({', '.join(args)})"
        raise ValueError(f"{where}: unsupported syntax {ast.dump(node)}")

    return emit(tree)


def compile_expression(expr, namespace, where="expression"):
    """Compile a table expression into ``f(x, y, ans)`` over the given functions.

    Parameters
    ----------
    expr : str
        The expression, in the table's language.
    namespace : dict
        Maps every name in ``FUNCTIONS`` and ``where`` to a callable.
    where : str
        A label for error messages.

    Returns
    -------
    callable
        ``f(x, y, ans)``; for unary rules pass ``y=None``.
    """
    tree = ast.parse(expr, mode="eval")
    _check(tree, where)
    code = compile(f"lambda x, y, ans: ({expr})", f"<rule {where}>", "eval")
    return eval(code, dict(namespace))  # noqa: S307 - text comes from the rule table


_HEADER = '''\
# generated from dualad/rules/_elementwise.py by dualad/rules/_codegen.py at build time
# -- do not edit; edit the rule table instead.
#
# For each rule: rule_<name> writes (ans, dx[, dy]) and rule2_<name> writes
# (ans, dx, dxx) for unary rules or (ans, dx, dy, dxx, dxy, dyy) for binary ones.
# Binary rules also get rule_<name>_dx / rule_<name>_dy, which skip the partial of a
# constant operand (faster, and no spurious floating-point flags such as log(x < 0)
# for x ** 2.0).
#
# Every function is compiled with cdivision: the kernels' contract is IEEE arithmetic,
# as NumPy's (1 / 0 = inf, 0 / 0 = nan); Python semantics (cdivision off, as in the
# DUALAD_CYTHON_DEBUG build) would raise ZeroDivisionError inside noexcept kernels.
cimport cython
from libc.math cimport (sin, cos, tan, asin, acos, atan, atan2, sinh, cosh, tanh,
                        asinh, acosh, atanh, exp, exp2, expm1, log, log2, log10, log1p,
                        sqrt, cbrt, hypot, pow, fabs, floor, ceil, rint, trunc, fmax,
                        fmin, isnan, INFINITY)
from scipy.special cimport cython_special as _sc

ctypedef void (*unary_kernel)(double x, double* out) noexcept nogil
ctypedef void (*binary_kernel)(double x, double y, double* out) noexcept nogil
ctypedef void (*unary_loop)(const double* v, double* ans, double* d,
                            Py_ssize_t n) noexcept nogil


@cython.cdivision(True)
cdef inline double _dd_sign(double x) noexcept nogil:
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    if x == 0.0:
        return 0.0  # +0 for either zero, as np.sign
    return x  # nan


@cython.cdivision(True)
cdef inline double _dd_square(double x) noexcept nogil:
    return x * x


@cython.cdivision(True)
cdef inline double _dd_power(double x, double y) noexcept nogil:
    # exponents where a cheaper exact form gives pow's result bit for bit (x ** 2.0)
    if y == 2.0:
        return x * x
    if y == 1.0:
        return x
    if y == 0.0:
        return 1.0
    if y == -1.0:
        return 1.0 / x
    return pow(x, y)  # (no sqrt for 0.5: pow(-0.0, 0.5) = +0 and pow(-inf, 0.5) = inf)


# scipy.special: the kernels call SciPy's own scalar implementations (the code behind
# the ufuncs, exported by scipy.special.cython_special), so a kernel's primal is the
# ufunc's value, poles and special values included (digamma(+-0) = -+inf, gammaln(-inf)
# = -inf, ...).  C's lgamma/tgamma/erfc and series of our own differ from SciPy by up
# to thousands of ulps near the zeros of gammaln, digamma and logit and in erfc's tail;
# lgamma also writes the global signgam, a data race without the GIL.
@cython.cdivision(True)
cdef inline double _dd_erf(double x) noexcept nogil:
    return _sc.erf(x)


@cython.cdivision(True)
cdef inline double _dd_erfc(double x) noexcept nogil:
    return _sc.erfc(x)


@cython.cdivision(True)
cdef inline double _dd_gamma(double x) noexcept nogil:
    return _sc.gamma(x)


@cython.cdivision(True)
cdef inline double _dd_gammaln(double x) noexcept nogil:
    return _sc.gammaln(x)


@cython.cdivision(True)
cdef inline double _dd_digamma(double x) noexcept nogil:
    return _sc.psi(x)


@cython.cdivision(True)
cdef inline double _dd_expit(double x) noexcept nogil:
    return _sc.expit(x)


@cython.cdivision(True)
cdef inline double _dd_logit(double x) noexcept nogil:
    return _sc.logit(x)


# Polygamma functions psi_1 and psi_2 (partials of gamma, gammaln, digamma): SciPy has
# no scalar C version, so these are ours, and dualad/rules/special.py evaluates the
# same arithmetic in NumPy (kernels = registry to the last bit or two, and the Python
# version is differentiable again).  For x > 0: recurrence psi_n(x) = psi_n(x + 1) -
# (-1)^n n! / x^(n+1) up to x >= 16, then the asymptotic series (DLMF 5.15.8), whose
# first omitted term is below 1e-17 relative there.  For x < 0: the reflection formula
# (DLMF 5.15.6 differentiated) with sin(pi t) and cos(pi t), t = x - rint(x) (an exact
# argument reduction to [-1/2, 1/2]).  Special values as scipy.special.polygamma(n, x):
# at the poles (x = 0, -1, ..., -inf) psi_1 = inf and psi_2 = -inf; at +inf both are 0;
# nan propagates.
@cython.cdivision(True)
cdef inline double _dd_sinpi(double t) noexcept nogil:
    # sin(pi t) for |t| <= 1/2; beyond 1/4 as cos(pi (1/2 - |t|)), whose argument is
    # exact (sin(pi * t) would turn the rounding of pi * t into a large error near 1/2)
    if fabs(t) <= 0.25:
        return sin(3.141592653589793 * t)
    if t < 0.0:
        return -cos(3.141592653589793 * (0.5 - fabs(t)))
    return cos(3.141592653589793 * (0.5 - fabs(t)))


@cython.cdivision(True)
cdef inline double _dd_cospi(double t) noexcept nogil:
    # cos(pi t) for |t| <= 1/2, likewise accurate near 1/2 (where it vanishes)
    if fabs(t) <= 0.25:
        return cos(3.141592653589793 * t)
    return sin(3.141592653589793 * (0.5 - fabs(t)))


@cython.cdivision(True)
cdef inline double _dd_trigamma(double x) noexcept nogil:
    cdef double acc = 0.0, r, r2, s
    if isnan(x):
        return x
    if x <= 0.0 and x == floor(x):
        return INFINITY
    if x < 0.0:  # psi_1(x) + psi_1(1 - x) = pi^2 / sin^2(pi x)
        s = _dd_sinpi(x - rint(x))
        return 9.869604401089358 / (s * s) - _dd_trigamma(1.0 - x)
    while x < 16.0:
        acc = acc + 1.0 / (x * x)
        x = x + 1.0
    r = 1.0 / x
    r2 = r * r
    return acc + r + 0.5 * r2 + r * r2 * (
        0.16666666666666666 - r2 * (0.03333333333333333 - r2 * (
            0.023809523809523808 - r2 * (0.03333333333333333 - r2 * (
                0.07575757575757576 - r2 * (0.2531135531135531
                                            - r2 * 1.1666666666666667))))))


@cython.cdivision(True)
cdef inline double _dd_tetragamma(double x) noexcept nogil:
    cdef double acc = -0.0, r, r2, s, t
    if isnan(x):
        return x
    if x <= 0.0 and x == floor(x):
        return -INFINITY
    if x < 0.0:  # psi_2(x) = psi_2(1 - x) - 2 pi^3 cos(pi x) / sin^3(pi x)
        t = x - rint(x)
        s = _dd_sinpi(t)
        return _dd_tetragamma(1.0 - x) - 62.01255336059963 * _dd_cospi(t) / (s * s * s)
    while x < 16.0:
        acc = acc + (-2.0) / (x * x * x)
        x = x + 1.0
    r = 1.0 / x
    r2 = r * r
    return acc - r2 - r * r2 - r2 * r2 * (0.5 - r2 * (
        0.16666666666666666 - r2 * (0.16666666666666666 - r2 * (
            0.3 - r2 * (0.8333333333333334 - r2 * (3.2904761904761903
                                                   - r2 * 17.5))))))


@cython.cdivision(True)
cdef inline double _dd_logaddexp(double x, double y) noexcept nogil:
    if isnan(x) or isnan(y):
        return x + y
    if x == y:  # also covers x = y = +-inf, where x - y is nan
        return x + 0.6931471805599453
    return fmax(x, y) + log1p(exp(-fabs(x - y)))


@cython.cdivision(True)
cdef inline double _dd_logaddexp2(double x, double y) noexcept nogil:
    if isnan(x) or isnan(y):
        return x + y
    if x == y:
        return x + 1.0
    # log2(1 + t) as NumPy computes it (npy_log2_1p: LOG2E * log1p(t)), so that the
    # primal is NumPy's to the last bit
    return fmax(x, y) + 1.4426950408889634 * log1p(exp2(-fabs(x - y)))
'''


def _unary(rule):
    n = rule.name
    p, dx, dxx = (to_cython(e, n) for e in (rule.primal, rule.d[0], rule.dd[0]))
    return f'''

@cython.cdivision(True)
cdef inline void rule_{n}(double x, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}


@cython.cdivision(True)
cdef inline void rule2_{n}(double x, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}
    out[2] = {dxx}


cdef inline void loop_{n}(const double* v, double* ans, double* d,
                          Py_ssize_t n) noexcept nogil:
    # the kernel inlined into a loop over contiguous values: no call per element
    cdef double out[2]
    cdef Py_ssize_t i
    for i in range(n):
        rule_{n}(v[i], out)
        ans[i] = out[0]
        d[i] = out[1]
'''


def _binary(rule):
    n = rule.name
    p = to_cython(rule.primal, n)
    dx, dy = (to_cython(e, n) for e in rule.d)
    dxx, dxy, dyy = (to_cython(e, n) for e in rule.dd)
    return f'''

@cython.cdivision(True)
cdef inline void rule_{n}(double x, double y, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}
    out[2] = {dy}


@cython.cdivision(True)
cdef inline void rule_{n}_dx(double x, double y, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}


@cython.cdivision(True)
cdef inline void rule_{n}_dy(double x, double y, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[2] = {dy}


@cython.cdivision(True)
cdef inline void rule2_{n}(double x, double y, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}
    out[2] = {dy}
    out[3] = {dxx}
    out[4] = {dxy}
    out[5] = {dyy}
'''


def render_kernels(rules=RULES):
    """Return the text of ``_kernels.pxd`` for the given rules.

    Besides one pair of kernels per rule it defines ``N_UNARY``/``N_BINARY``, the
    tuples ``UNARY_NAMES``/``BINARY_NAMES`` (kernel index -> ufunc name, through
    ``unary_names()``/``binary_names()``), ``fill_tables`` which stores the kernels'
    addresses in caller-owned arrays, and ``fill_loop_tables`` for the unary loops
    (``loop_<name>``: the first-order kernel inlined into a loop over an array).
    """
    unary = [r for r in rules if r.arity == 1]
    binary = [r for r in rules if r.arity == 2]
    parts = [_HEADER]
    parts += [_unary(r) for r in unary]
    parts += [_binary(r) for r in binary]
    fill = ["", "", "cdef enum:", f"    N_UNARY = {len(unary)}",
            f"    N_BINARY = {len(binary)}", "", ""]
    fill.append("cdef inline tuple unary_names():")
    fill.append(f"    return {tuple(r.name for r in unary)!r}")
    fill += ["", ""]
    fill.append("cdef inline tuple binary_names():")
    fill.append(f"    return {tuple(r.name for r in binary)!r}")
    fill += ["", ""]
    fill.append("cdef inline void fill_tables(unary_kernel* u1, unary_kernel* u2,")
    fill.append("                             binary_kernel* b1, binary_kernel* b2,")
    fill.append("                             binary_kernel* b1x, binary_kernel* b1y) noexcept:")
    for i, r in enumerate(unary):
        fill.append(f"    u1[{i}] = rule_{r.name}")
        fill.append(f"    u2[{i}] = rule2_{r.name}")
    for i, r in enumerate(binary):
        fill.append(f"    b1[{i}] = rule_{r.name}")
        fill.append(f"    b2[{i}] = rule2_{r.name}")
        fill.append(f"    b1x[{i}] = rule_{r.name}_dx")
        fill.append(f"    b1y[{i}] = rule_{r.name}_dy")
    fill += ["", ""]
    fill.append("cdef inline void fill_loop_tables(unary_loop* l1) noexcept:")
    for i, r in enumerate(unary):
        fill.append(f"    l1[{i}] = loop_{r.name}")
    parts.append("\n".join(fill) + "\n")
    return "".join(parts)
