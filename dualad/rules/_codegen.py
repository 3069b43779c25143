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
from libc.math cimport (sin, cos, tan, asin, acos, atan, atan2, sinh, cosh, tanh,
                        asinh, acosh, atanh, exp, exp2, expm1, log, log2, log10, log1p,
                        sqrt, cbrt, hypot, pow, fabs, floor, ceil, rint, trunc, fmax,
                        fmin, isnan)

ctypedef void (*unary_kernel)(double x, double* out) noexcept nogil
ctypedef void (*binary_kernel)(double x, double y, double* out) noexcept nogil


cdef inline double _dd_sign(double x) noexcept nogil:
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return x * 0.0  # 0 for 0, nan for nan (as np.sign)


cdef inline double _dd_square(double x) noexcept nogil:
    return x * x


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


cdef inline double _dd_logaddexp(double x, double y) noexcept nogil:
    if isnan(x) or isnan(y):
        return x + y
    if x == y:  # also covers x = y = +-inf, where x - y is nan
        return x + 0.6931471805599453
    return fmax(x, y) + log1p(exp(-fabs(x - y)))


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

cdef inline void rule_{n}(double x, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}


cdef inline void rule2_{n}(double x, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}
    out[2] = {dxx}
'''


def _binary(rule):
    n = rule.name
    p = to_cython(rule.primal, n)
    dx, dy = (to_cython(e, n) for e in rule.d)
    dxx, dxy, dyy = (to_cython(e, n) for e in rule.dd)
    return f'''

cdef inline void rule_{n}(double x, double y, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}
    out[2] = {dy}


cdef inline void rule_{n}_dx(double x, double y, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[1] = {dx}


cdef inline void rule_{n}_dy(double x, double y, double* out) noexcept nogil:
    cdef double ans = {p}
    out[0] = ans
    out[2] = {dy}


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
    ``unary_names()``/``binary_names()``) and ``fill_tables`` which stores the kernels'
    addresses in caller-owned arrays.
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
    parts.append("\n".join(fill) + "\n")
    return "".join(parts)
