"""The table of elementwise derivative rules: the one place each ufunc's calculus lives.

Design note
-----------
Every elementwise operation dualad differentiates is one :class:`ElementwiseRule` in
``RULES``.  An entry gives the primal and its first and second partials as short
expressions in Python syntax over ``x`` (first argument), ``y`` (second argument) and
``ans`` (the primal's value).  The expression language is deliberately tiny so that the
same text means the same thing in two places:

* at build time ``setup.py`` renders every entry into an inline, ``noexcept nogil``
  Cython kernel in ``dualad/_kernels.pxd`` (see :mod:`dualad.rules._codegen`); the
  ``Dual``/``HyperDual`` scalars and the fused ``DualArray`` loops call those kernels;
* at import time :mod:`dualad.rules.registry` compiles the same expressions over NumPy's
  functions.  Evaluated on tracer values they dispatch back into dualad, so the rules are
  themselves differentiable (nesting, forward-over-forward second derivatives).

This module must import nothing but the standard library: ``setup.py`` loads it by path
before the package is built.

Names usable in expressions (NumPy's or SciPy's spelling; the code generator maps them
to C): arithmetic ``+ - * / **``, comparisons, ``where(cond, a, b)``, and the functions
in ``FUNCTIONS`` below.  On the Python side a name means NumPy's function unless
``PY_MODULE`` names another (``scipy.special``'s, or dualad's polygamma functions).

Flags
-----
``linear``
    The rule is linear (its second partials vanish).
``kink``
    The function is not differentiable at some points; the partials encode the
    documented convention there (e.g. ``abs'(0) = 0``, ``max`` splits ties 50/50).
``zero``
    Piecewise constant: the derivative is zero wherever it exists.
``special``
    A consumer hand-writes part of the rule because the generic formula fails
    somewhere (see the comment at that consumer); the entry stays so tests cover it.
"""

import importlib
from dataclasses import dataclass, field

__all__ = ["ElementwiseRule", "RULES", "RULES_BY_NAME", "FUNCTIONS", "PY_MODULE",
           "BOOLEAN_UFUNCS", "ZERO_ORDER_OF", "ufunc_of", "function_of"]

#: Functions an expression may call: NumPy name -> C name.  The C side of the few
#: without a C99 equivalent (``sign``, ``logaddexp``, ``logaddexp2``, ``square``) is
#: defined as an inline helper in the generated header, and so is ``power``: for the
#: exponents 2, 1, 0 and -1 it uses x*x, x, 1 and 1/x, which equal ``pow`` bit for bit and
#: cost a fraction of it.
FUNCTIONS = {
    "sin": "sin", "cos": "cos", "tan": "tan",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arctan2": "atan2",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh",
    "exp": "exp", "exp2": "exp2", "expm1": "expm1",
    "log": "log", "log2": "log2", "log10": "log10", "log1p": "log1p",
    "sqrt": "sqrt", "cbrt": "cbrt", "hypot": "hypot", "power": "_dd_power",
    "float_power": "pow", "fabs": "fabs", "absolute": "fabs",
    "floor": "floor", "ceil": "ceil", "rint": "rint", "trunc": "trunc",
    "fmax": "fmax", "fmin": "fmin", "isnan": "isnan",
    "sign": "_dd_sign", "square": "_dd_square",
    "logaddexp": "_dd_logaddexp", "logaddexp2": "_dd_logaddexp2",
    # scipy.special (their Python side is named in PY_MODULE).  The C side calls SciPy's
    # own scalar code (scipy.special.cython_special), not C's erf/tgamma/lgamma, so that
    # the kernels equal the ufuncs; trigamma/tetragamma are dualad's (SciPy has no C
    # polygamma), in C and, with the same arithmetic, in NumPy.
    "erf": "_dd_erf", "erfc": "_dd_erfc", "gamma": "_dd_gamma", "gammaln": "_dd_gammaln",
    "digamma": "_dd_digamma", "trigamma": "_dd_trigamma", "tetragamma": "_dd_tetragamma",
    "expit": "_dd_expit", "logit": "_dd_logit",
}

#: Expression functions that are not NumPy's: name -> (module, attribute).
PY_MODULE = {
    "erf": ("scipy.special", "erf"), "erfc": ("scipy.special", "erfc"),
    "gamma": ("scipy.special", "gamma"), "gammaln": ("scipy.special", "gammaln"),
    "digamma": ("scipy.special", "digamma"), "expit": ("scipy.special", "expit"),
    "logit": ("scipy.special", "logit"),
    "trigamma": ("dualad.rules.special", "trigamma"),
    "tetragamma": ("dualad.rules.special", "tetragamma"),
}

LN2 = "0.6931471805599453"
LN10 = "2.302585092994046"


@dataclass(frozen=True)
class ElementwiseRule:
    """One elementwise operation: primal, first and second partials, test domain, flags.

    Parameters
    ----------
    name : str
        The ufunc's name in its module (``np.<name>``, ``scipy.special.<name>``).
    arity : int
        1 or 2.
    primal : str
        Expression for the value, in ``x`` (and ``y``).
    d : tuple of str
        First partials ``(dx,)`` or ``(dx, dy)``; may use ``ans``.
    dd : tuple of str
        Second partials ``(dxx,)`` or ``(dxx, dxy, dyy)``; may use ``ans``.
    domain : tuple of (float, float)
        Per argument, an interval inside which the rule is smooth; tests sample there.
    flags : frozenset of str
        Any of ``linear``, ``kink``, ``zero``, ``special``.
    module : str
        The module that defines the ufunc (``numpy`` or ``scipy.special``).
    """

    name: str
    arity: int
    primal: str
    d: tuple
    dd: tuple
    domain: tuple = ((-3.0, 3.0),)
    flags: frozenset = field(default_factory=frozenset)
    module: str = "numpy"

    def __post_init__(self):
        if self.arity not in (1, 2):
            raise ValueError(f"rule {self.name}: arity must be 1 or 2")
        if len(self.d) != self.arity or len(self.dd) != (1 if self.arity == 1 else 3):
            raise ValueError(f"rule {self.name}: wrong number of partials")
        if len(self.domain) != self.arity:
            raise ValueError(f"rule {self.name}: one domain interval per argument")


def _u(name, primal, dx, dxx, domain=(-3.0, 3.0), *flags):
    return ElementwiseRule(name, 1, primal, (dx,), (dxx,), (domain,), frozenset(flags))


def _b(name, primal, d, dd, domain=((-3.0, 3.0), (-3.0, 3.0)), *flags):
    return ElementwiseRule(name, 2, primal, tuple(d), tuple(dd), tuple(domain),
                           frozenset(flags))


def _s(name, primal, dx, dxx, domain=(-3.0, 3.0), *flags):
    return ElementwiseRule(name, 1, primal, (dx,), (dxx,), (domain,), frozenset(flags),
                           "scipy.special")


def _sb(name, primal, d, dd, domain, *flags):
    return ElementwiseRule(name, 2, primal, tuple(d), tuple(dd), tuple(domain),
                           frozenset(flags), "scipy.special")


_POS = (0.2, 4.0)
_UNIT = (-0.9, 0.9)

# maximum/minimum/fmax/fmin at a tie split the derivative evenly between the operands
# (the symmetric subgradient, as JAX does): max(x, x) then has derivative 1 in x.
_TIE_X = "where(x > y, 1.0, where(x < y, 0.0, 0.5))"
_TIE_Y = "where(x > y, 0.0, where(x < y, 1.0, 0.5))"


def _at_zero_base(cond, expr):
    """``expr``, except 0 where x == 0 and ``cond`` (there expr would be 0 * inf)."""
    # written with ``expr`` once: NumPy evaluates both branches of a where, and the
    # nested (forward-over-reverse) consumers evaluate this text on traced values
    # (numbers, not booleans, inside: the C rendering needs one type per branch)
    return f"where(where(x == 0.0, where({cond}, 1.0, 0.0), 0.0) != 0.0, 0.0, {expr})"


def _power_d(pw):
    return (_at_zero_base("y == 0.0", f"y * {pw}(x, y - 1.0)"), "ans * log(x)")


def _power_dd(pw):
    return (_at_zero_base("y * (y - 1.0) == 0.0", f"y * (y - 1.0) * {pw}(x, y - 2.0)"),
            f"{pw}(x, y - 1.0) * (1.0 + y * log(x))",
            "ans * log(x) * log(x)")


RULES = (
    # --- arithmetic -------------------------------------------------------------------
    _b("add", "x + y", ("1.0", "1.0"), ("0.0", "0.0", "0.0"), ((-3, 3), (-3, 3)),
       "linear"),
    _b("subtract", "x - y", ("1.0", "-1.0"), ("0.0", "0.0", "0.0"), ((-3, 3), (-3, 3)),
       "linear"),
    _b("multiply", "x * y", ("y", "x"), ("0.0", "1.0", "0.0")),
    _b("true_divide", "x / y", ("1.0 / y", "-ans / y"),
       ("0.0", "-1.0 / (y * y)", "2.0 * ans / (y * y)"), ((-3, 3), _POS)),
    _u("negative", "-x", "-1.0", "0.0", (-3, 3), "linear"),
    _u("positive", "x", "1.0", "0.0", (-3, 3), "linear"),
    # power: the consumers special-case a constant exponent (only dx is used, so
    # 0 ** 2 has derivative 0, not 0 * log(0) = nan) and a zero base with a traced
    # exponent (the dy term is 0 where ans == 0).  x ** 0 is constant, so dx = 0 even
    # at x = 0 where y * x ** (y - 1) would be 0 * inf.  The guard tests x == 0 first:
    # guarding on y alone would make dx constant in y at y == 0 and nested derivatives
    # (d/dy dx = 1/x there) wrong.  Same for dxx at y in {0, 1}.
    _b("power", "power(x, y)", _power_d("power"), _power_dd("power"),
       (_POS, (-2.5, 2.5)), "special"),
    _b("float_power", "float_power(x, y)", _power_d("float_power"),
       _power_dd("float_power"), (_POS, (-2.5, 2.5)), "special"),
    _u("square", "x * x", "2.0 * x", "2.0"),
    _u("sqrt", "sqrt(x)", "0.5 / ans", "-0.25 / (ans * x)", _POS),
    _u("cbrt", "cbrt(x)", "1.0 / (3.0 * ans * ans)", "-2.0 / (9.0 * ans * ans * x)", _POS),
    _u("reciprocal", "1.0 / x", "-ans * ans", "2.0 * ans * ans * ans", _POS),
    # --- exponentials and logarithms -------------------------------------------------
    _u("exp", "exp(x)", "ans", "ans"),
    _u("exp2", "exp2(x)", f"ans * {LN2}", f"ans * {LN2} * {LN2}"),
    _u("expm1", "expm1(x)", "ans + 1.0", "ans + 1.0"),
    _u("log", "log(x)", "1.0 / x", "-1.0 / (x * x)", _POS),
    _u("log2", "log2(x)", f"1.0 / (x * {LN2})", f"-1.0 / (x * x * {LN2})", _POS),
    _u("log10", "log10(x)", f"1.0 / (x * {LN10})", f"-1.0 / (x * x * {LN10})", _POS),
    _u("log1p", "log1p(x)", "1.0 / (1.0 + x)", "-1.0 / ((1.0 + x) * (1.0 + x))",
       (-0.8, 4.0)),
    _b("logaddexp", "logaddexp(x, y)", ("exp(x - ans)", "exp(y - ans)"),
       ("exp(x - ans) * exp(y - ans)", "-exp(x - ans) * exp(y - ans)",
        "exp(x - ans) * exp(y - ans)")),
    _b("logaddexp2", "logaddexp2(x, y)", ("exp2(x - ans)", "exp2(y - ans)"),
       (f"{LN2} * exp2(x - ans) * exp2(y - ans)", f"-{LN2} * exp2(x - ans) * exp2(y - ans)",
        f"{LN2} * exp2(x - ans) * exp2(y - ans)")),
    # --- trigonometric ---------------------------------------------------------------
    _u("sin", "sin(x)", "cos(x)", "-ans"),
    _u("cos", "cos(x)", "-sin(x)", "-ans"),
    _u("tan", "tan(x)", "1.0 + ans * ans", "2.0 * ans * (1.0 + ans * ans)", (-1.3, 1.3)),
    _u("arcsin", "arcsin(x)", "1.0 / sqrt(1.0 - x * x)",
       "x / ((1.0 - x * x) * sqrt(1.0 - x * x))", _UNIT),
    _u("arccos", "arccos(x)", "-1.0 / sqrt(1.0 - x * x)",
       "-x / ((1.0 - x * x) * sqrt(1.0 - x * x))", _UNIT),
    _u("arctan", "arctan(x)", "1.0 / (1.0 + x * x)",
       "-2.0 * x / ((1.0 + x * x) * (1.0 + x * x))"),
    _b("arctan2", "arctan2(x, y)", ("y / (x * x + y * y)", "-x / (x * x + y * y)"),
       ("-2.0 * x * y / ((x * x + y * y) * (x * x + y * y))",
        "(x * x - y * y) / ((x * x + y * y) * (x * x + y * y))",
        "2.0 * x * y / ((x * x + y * y) * (x * x + y * y))"),
       ((0.2, 3.0), (0.2, 3.0))),
    _b("hypot", "hypot(x, y)",
       # hypot is not differentiable at (0, 0); the convention there is 0 (as for abs).
       ("where(ans > 0.0, x / ans, 0.0)", "where(ans > 0.0, y / ans, 0.0)"),
       ("where(ans > 0.0, y * y / (ans * ans * ans), 0.0)",
        "where(ans > 0.0, -x * y / (ans * ans * ans), 0.0)",
        "where(ans > 0.0, x * x / (ans * ans * ans), 0.0)"),
       ((0.2, 3.0), (0.2, 3.0)), "kink"),
    _u("deg2rad", "x * 0.017453292519943295", "0.017453292519943295", "0.0", (-3, 3),
       "linear"),
    _u("rad2deg", "x * 57.29577951308232", "57.29577951308232", "0.0", (-3, 3), "linear"),
    # --- hyperbolic ------------------------------------------------------------------
    _u("sinh", "sinh(x)", "cosh(x)", "ans"),
    _u("cosh", "cosh(x)", "sinh(x)", "ans"),
    _u("tanh", "tanh(x)", "1.0 - ans * ans", "-2.0 * ans * (1.0 - ans * ans)"),
    _u("arcsinh", "arcsinh(x)", "1.0 / sqrt(x * x + 1.0)",
       "-x / ((x * x + 1.0) * sqrt(x * x + 1.0))"),
    _u("arccosh", "arccosh(x)", "1.0 / sqrt(x * x - 1.0)",
       "-x / ((x * x - 1.0) * sqrt(x * x - 1.0))", (1.2, 5.0)),
    _u("arctanh", "arctanh(x)", "1.0 / (1.0 - x * x)",
       "2.0 * x / ((1.0 - x * x) * (1.0 - x * x))", _UNIT),
    # --- kinks and piecewise functions -----------------------------------------------
    # abs'(0) = 0 (sign(0) = 0): the minimum-norm subgradient.
    _u("absolute", "fabs(x)", "sign(x)", "0.0", (-3, 3), "kink"),
    _u("fabs", "fabs(x)", "sign(x)", "0.0", (-3, 3), "kink"),
    _u("sign", "sign(x)", "0.0", "0.0", (-3, 3), "zero"),
    # NaN propagates as in NumPy: neither comparison holds, and x + y is nan.  A tie
    # returns y, as NumPy does (the sign of maximum(-0.0, 0.0) is y's).
    _b("maximum", "where(x > y, x, where(x <= y, y, x + y))", (_TIE_X, _TIE_Y),
       ("0.0", "0.0", "0.0"), ((-3, 3), (-3, 3)), "kink"),
    _b("minimum", "where(x < y, x, where(x >= y, y, x + y))", (_TIE_Y, _TIE_X),
       ("0.0", "0.0", "0.0"), ((-3, 3), (-3, 3)), "kink"),
    # fmax/fmin ignore a NaN operand, so the derivative follows the other one.
    _b("fmax", "fmax(x, y)",
       (f"where(isnan(y), 1.0, where(isnan(x), 0.0, {_TIE_X}))",
        f"where(isnan(y), 0.0, where(isnan(x), 1.0, {_TIE_Y}))"),
       ("0.0", "0.0", "0.0"), ((-3, 3), (-3, 3)), "kink"),
    _b("fmin", "fmin(x, y)",
       (f"where(isnan(y), 1.0, where(isnan(x), 0.0, {_TIE_Y}))",
        f"where(isnan(y), 0.0, where(isnan(x), 1.0, {_TIE_X}))"),
       ("0.0", "0.0", "0.0"), ((-3, 3), (-3, 3)), "kink"),
    # --- scipy.special ------------------------------------------------------------------
    _s("erf", "erf(x)", "1.1283791670955126 * exp(-x * x)",
       "-2.0 * x * 1.1283791670955126 * exp(-x * x)"),
    _s("erfc", "erfc(x)", "-1.1283791670955126 * exp(-x * x)",
       "2.0 * x * 1.1283791670955126 * exp(-x * x)"),
    _s("gamma", "gamma(x)", "ans * digamma(x)",
       "ans * (digamma(x) * digamma(x) + trigamma(x))", (0.3, 5.0)),
    _s("gammaln", "gammaln(x)", "digamma(x)", "trigamma(x)", (0.3, 8.0)),
    _s("digamma", "digamma(x)", "trigamma(x)", "tetragamma(x)", (0.3, 8.0)),
    _s("expit", "expit(x)", "ans * (1.0 - ans)", "ans * (1.0 - ans) * (1.0 - 2.0 * ans)",
       (-6.0, 6.0)),
    _s("logit", "logit(x)", "1.0 / (x * (1.0 - x))",
       "(2.0 * x - 1.0) / (x * x * (1.0 - x) * (1.0 - x))", (0.05, 0.95)),
    # xlogy(0, y) = 0 (nan for nan y); the partials are the smooth ones of x log y
    _sb("xlogy", "where(x == 0.0, where(isnan(y), y, 0.0), x * log(y))",
        ("log(y)", "x / y"), ("0.0", "1.0 / y", "-x / (y * y)"), ((-3, 3), _POS)),
    _sb("xlog1py", "where(x == 0.0, where(isnan(y), y, 0.0), x * log1p(y))",
        ("log1p(y)", "x / (1.0 + y)"),
        ("0.0", "1.0 / (1.0 + y)", "-x / ((1.0 + y) * (1.0 + y))"), ((-3, 3), (-0.8, 4.0))),
    _u("floor", "floor(x)", "0.0", "0.0", (-3, 3), "zero"),
    _u("ceil", "ceil(x)", "0.0", "0.0", (-3, 3), "zero"),
    _u("rint", "rint(x)", "0.0", "0.0", (-3, 3), "zero"),
    _u("trunc", "trunc(x)", "0.0", "0.0", (-3, 3), "zero"),
)

RULES_BY_NAME = {rule.name: rule for rule in RULES}

#: Ufuncs whose result is boolean (or otherwise carries no derivative): applied to the
#: primal values only; the result is a plain ndarray / NumPy scalar.
BOOLEAN_UFUNCS = (
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    "isfinite", "isnan", "isinf", "signbit", "logical_and", "logical_or", "logical_not",
    "logical_xor",
)

#: Aliases: NumPy names that are the same ufunc object under another name.
ZERO_ORDER_OF = {"divide": "true_divide", "abs": "absolute", "pow": "power"}


def ufunc_of(name):
    """The ufunc object a rule (or a boolean ufunc) of this name differentiates."""
    rule = RULES_BY_NAME.get(name)
    module = rule.module if rule is not None else "numpy"
    return getattr(importlib.import_module(module), name)


def function_of(name):
    """The Python function an expression's ``name`` means (NumPy's or ``PY_MODULE``)."""
    module, attr = PY_MODULE.get(name, ("numpy", name))
    return getattr(importlib.import_module(module), attr)
