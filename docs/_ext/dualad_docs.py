"""Sphinx extension for dualad's documentation: generated tables and a completeness check.

Directives
----------
``.. dualad-coverage:: <table>``
    A table generated at build time from the code, so that it cannot drift from it:

    * ``elementwise``: every NumPy rule of ``dualad.rules._elementwise.RULES`` (the
      ufunc, its aliases and operators, the first partials as written in the table, and
      its flags);
    * ``special``: the same for the rules of the table whose ufunc is ``scipy.special``'s;
    * ``boolean``: ``BOOLEAN_UFUNCS`` (applied to values only);
    * ``functions`` / ``values-only``: the NumPy functions outside ``numpy.linalg`` of
      ``dualad.rules.registry.registered(mode)`` with a derivative rule, and those
      evaluated on values only, for both modes: the names with a rule in both, then
      any with a rule in one mode only (rules added at run time with ``defrule`` and
      dualad's internal entries are left out);
    * ``linalg``: the ``numpy.linalg`` functions with a rule, one row each, with the
      modes that have it;
    * ``methods``: the public methods and properties of ``dualad.DualArray``, and how
      the reverse-mode array ``dualad._tape.RArray`` differs.

``.. dualad-rule:: <name>``
    One entry of the rule table and the C kernels generated from it.

``.. dualad-benchmark::``
    The table ``_static/bench/comparison.md`` written by ``benchmarks/compare.py``,
    converted to docutils nodes, or a note saying how to produce it when it is absent.

Check
-----
Every name of ``dualad.__all__`` (dunder names aside) must be documented somewhere in
the Python domain (the API reference); a missing one is a warning, so ``-W`` fails.
"""

import os
import re

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx import addnodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

BENCH_MD = os.path.join("_static", "bench", "comparison.md")
BENCH_PNG = os.path.join("_static", "bench", "comparison.png")

# Python spellings that reach a rule of the table (documentation only: the operators
# dispatch to these ufuncs in Dual/HyperDual/DualArray).
OPERATORS = {
    "add": "a + b", "subtract": "a - b", "multiply": "a * b", "true_divide": "a / b",
    "power": "a ** b", "negative": "-a", "positive": "+a", "absolute": "abs(a)",
}

FLAG_TEXT = {
    "linear": "linear",
    "kink": "not differentiable everywhere: see conventions",
    "zero": "piecewise constant: derivative 0",
    "special": "hand-written case in the engines: see conventions",
}


# -- small node builders -----------------------------------------------------------------

_INLINE = re.compile(r"(`[^`]+`|\*\*[^*]+\*\*)")


def _inline(text):
    """Docutils inline nodes for a line of Markdown-ish text: `code` and **bold**."""
    out = []
    for part in _INLINE.split(text):
        if not part:
            continue
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(nodes.literal(part[1:-1], part[1:-1]))
        elif part.startswith("**") and part.endswith("**") and len(part) > 3:
            out.append(nodes.strong(part[2:-2], part[2:-2]))
        else:
            out.append(nodes.Text(part))
    return out


def _para(*children):
    p = nodes.paragraph()
    for c in children:
        if isinstance(c, str):
            p += nodes.Text(c)
        elif isinstance(c, list):
            p.extend(c)
        else:
            p += c
    return p


def _code(text):
    return nodes.literal(text, text)


def _codes(items, sep=", "):
    """A paragraph of literals separated by ``sep``."""
    children = []
    for i, item in enumerate(items):
        if i:
            children.append(nodes.Text(sep))
        children.append(_code(item))
    return _para(children)


def _doc_link(target, text):
    """A link to another page of the documentation (resolved like :doc:)."""
    ref = addnodes.pending_xref("", refdomain="std", reftype="doc", reftarget=target,
                                refexplicit=True)
    ref += nodes.inline(text, text)
    return ref


def _table(header, rows, widths=None, classes=()):
    """A docutils table; each cell is a str, a node or a list of inline nodes."""
    ncols = len(header)
    table = nodes.table(classes=["dualad-table", *classes])
    group = nodes.tgroup(cols=ncols)
    table += group
    for w in widths or [1] * ncols:
        group += nodes.colspec(colwidth=w)

    def row(cells):
        r = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            if isinstance(cell, tuple):  # block nodes, e.g. one paragraph per line
                entry.extend(cell)
            elif isinstance(cell, nodes.Element) and not isinstance(cell, nodes.Inline):
                entry += cell
            elif isinstance(cell, str):
                if cell:
                    entry += _para(cell)
            elif isinstance(cell, nodes.Node):
                entry += _para(cell)
            else:
                entry += _para(list(cell))
            r += entry
        return r

    thead = nodes.thead()
    thead += row(header)
    group += thead
    tbody = nodes.tbody()
    for cells in rows:
        tbody += row(cells)
    group += tbody
    return table


# -- coverage ------------------------------------------------------------------------------

def public_name(func):
    """``numpy.linalg.norm`` for np.linalg.norm (private module parts dropped)."""
    module = getattr(func, "__module__", None) or "numpy"
    parts = [p for p in module.split(".") if not p.startswith("_")]
    return f"{'.'.join(parts) or 'numpy'}.{getattr(func, '__name__', repr(func))}"


def _kind(impl):
    """How dualad implements a registered function: rule, values only, or a user rule."""
    qualname = getattr(impl, "__qualname__", "")
    if qualname.startswith("defrule."):
        return "user"
    if qualname.startswith("_plain."):
        return "values"
    return "rule"


#: How a rule's ufunc is spelled in the tables, by the module that defines it.
MODULE_PREFIX = {"numpy": "np.", "scipy.special": "scipy.special."}


def elementwise_rows(module="numpy"):
    """One row per rule of the table whose ufunc belongs to ``module``."""
    from dualad.rules._elementwise import RULES, ZERO_ORDER_OF

    prefix = MODULE_PREFIX.get(module, module + ".")
    aliases = {}
    for alias, name in ZERO_ORDER_OF.items():
        aliases.setdefault(name, []).append(f"np.{alias}")
    rows = []
    for rule in RULES:
        if getattr(rule, "module", "numpy") != module:
            continue
        also = list(aliases.get(rule.name, [])) if module == "numpy" else []
        if module == "numpy" and rule.name in OPERATORS:
            also.append(OPERATORS[rule.name])
        args = "x" if rule.arity == 1 else "x, y"
        partials = tuple(_para(f"{label} = ", _code(expr))
                         for label, expr in zip(("∂/∂x", "∂/∂y"), rule.d))
        notes = []
        for flag in sorted(rule.flags):
            text = FLAG_TEXT.get(flag)
            if not text:
                continue
            if notes:
                notes.append(nodes.Text("; "))
            if text.endswith("see conventions"):
                notes.append(nodes.Text(text[:-len("conventions")]))
                notes.append(_doc_link("/user/conventions", "conventions"))
            else:
                notes.append(nodes.Text(text))
        rows.append([
            _code(f"{prefix}{rule.name}({args})"),
            _codes(also) if also else "",
            partials,
            notes,
        ])
    return rows


MODES = ("forward", "reverse")


def registered_names(kind, linalg):
    """``{public name: modes}`` of the registered NumPy functions of ``kind`` ("rule" or
    "values"), inside ``numpy.linalg`` or outside it; dualad's internal entries and
    ``defrule`` rules are left out.  Names are spelled ``np.``."""
    from dualad.rules.registry import registered

    names = {}
    for mode in MODES:
        for func, impl in registered(mode).items():
            name = public_name(func)
            if not name.startswith("numpy.") or _kind(impl) != kind:
                continue
            if name.startswith("numpy.linalg.") != linalg:
                continue
            names.setdefault(name.replace("numpy.", "np.", 1), set()).add(mode)
    return names


def _by_modes(names):
    """Paragraphs: the names with a rule in both modes, then those in one mode only."""
    both = sorted(n for n, modes in names.items() if len(modes) == len(MODES))
    out = [_codes(both)] if both else []
    for mode in MODES:
        only = sorted(n for n, modes in names.items() if modes == {mode})
        if only:
            out.append(_para(f"In {mode} mode only: ", _codes(only).children))
    return out


class CoverageDirective(Directive):
    """``.. dualad-coverage:: elementwise|special|boolean|functions|values-only|linalg|
    methods``."""

    required_arguments = 1
    has_content = False

    def run(self):
        which = self.arguments[0]
        env = self.state.document.settings.env
        for mod in ("_elementwise", "registry", "linear", "linalg", "vjps", "special"):
            path = os.path.join(os.path.dirname(_package_dir()), "dualad", "rules",
                                f"{mod}.py")
            if os.path.exists(path):
                env.note_dependency(path)
        if which in ("elementwise", "special"):
            module = "numpy" if which == "elementwise" else "scipy.special"
            return [_table(["ufunc", "also reached by", "first partials (from the table)",
                            "notes"], elementwise_rows(module), widths=[22, 16, 42, 20],
                           classes=["dualad-coverage"])]
        if which == "boolean":
            from dualad.rules._elementwise import BOOLEAN_UFUNCS
            return [_codes([f"np.{n}" for n in BOOLEAN_UFUNCS])]
        if which in ("functions", "values-only"):
            kind = "rule" if which == "functions" else "values"
            return _by_modes(registered_names(kind, linalg=False))
        if which == "linalg":
            names = registered_names("rule", linalg=True)
            rows = [[_code(name), "yes" if "forward" in modes else "no",
                     "yes" if "reverse" in modes else "no"]
                    for name, modes in sorted(names.items())]
            return [_table(["function", "forward mode", "reverse mode"], rows,
                           widths=[40, 30, 30])]
        if which == "methods":
            import inspect

            from numpydoc.docscrape import NumpyDocString

            from dualad import DualArray
            from dualad._tape import RArray
            attributes = {p.name.strip(): " ".join(p.desc)
                          for p in NumpyDocString(inspect.getdoc(DualArray))["Attributes"]}
            rows = []
            for name in sorted(n for n in dir(DualArray) if not n.startswith("_")):
                attr = getattr(DualArray, name)
                doc = (getattr(attr, "__doc__", None) or "").strip()
                # Cython methods carry an embedded signature as their first line.
                lines = [ln for ln in doc.splitlines() if ln.strip()]
                if lines and lines[0].startswith(f"DualArray.{name}("):
                    lines = lines[1:]
                summary = lines[0].strip() if lines else ""
                if name in attributes and (not summary or summary.startswith(f"{name}:")):
                    # a Cython attribute: its automatic docstring is "name: type"
                    summary = attributes[name]
                is_method = callable(attr) and not isinstance(attr, property)
                parsed, messages = self.state.inline_text(summary, self.lineno)
                rows.append([_code(f"{name}()" if is_method else name),
                             parsed + messages])
            out = [_table(["member", "what it does"], rows, widths=[25, 75])]
            public = {n for n in dir(DualArray) if not n.startswith("_")}
            rpublic = {n for n in dir(RArray) if not n.startswith("_")}
            missing, extra = sorted(public - rpublic), sorted(rpublic - public)
            text = ["In reverse mode the array is an ", _code("RArray"), ". "]
            if missing or extra:
                text.append("It has the same members")
                if missing:
                    text += [" except "] + _codes(missing).children
                if extra:
                    text += ["; instead it has "] + _codes(extra).children
                text.append(".")
            else:
                text.append("It has the same members.")
            out.append(_para(*text))
            return out
        raise self.error(f"dualad-coverage: unknown table {which!r}")


def _package_dir():
    import dualad
    return os.path.dirname(os.path.abspath(dualad.__file__))


# -- one rule, as written and as compiled ---------------------------------------------------

class RuleDirective(Directive):
    """``.. dualad-rule:: tanh``: the table entry and the C kernels generated from it."""

    required_arguments = 1
    has_content = False

    def run(self):
        from dualad.rules._codegen import render_kernels
        from dualad.rules._elementwise import RULES_BY_NAME

        name = self.arguments[0]
        rule = RULES_BY_NAME.get(name)
        if rule is None:
            raise self.error(f"dualad-rule: no rule named {name!r}")
        fields = [f"    name={rule.name!r},", f"    arity={rule.arity},",
                  f"    primal={rule.primal!r},", f"    d={rule.d!r},",
                  f"    dd={rule.dd!r},", f"    domain={rule.domain!r},",
                  f"    flags={rule.flags!r},"]
        entry = "ElementwiseRule(\n" + "\n".join(fields) + "\n)"
        text = render_kernels((rule,))
        start = text.find(f"cdef inline void rule_{name}(")
        end = text.find("cdef enum:")
        kernels = text[start:end].strip() if start >= 0 and end > start else text.strip()
        out = [_para("The entry in ", _code("dualad/rules/_elementwise.py"), ":")]
        out.append(nodes.literal_block(entry, entry, language="python"))
        out.append(_para("The kernels ", _code("setup.py"), " renders from it into ",
                         _code("dualad/_kernels.pxd"), ":"))
        out.append(nodes.literal_block(kernels, kernels, language="cython"))
        return out


# -- benchmark table -------------------------------------------------------------------------

def markdown_to_nodes(text):
    """Convert the subset of Markdown that compare.py writes into docutils nodes.

    Headings become rubrics, ``- `` lines bullet lists, ``|`` lines tables, anything
    else paragraphs; inline `code` and **bold** are kept.
    """
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            out.append(nodes.rubric(title, "", *_inline(title)))
            i += 1
        elif line.startswith("- "):
            blist = nodes.bullet_list()
            while i < len(lines) and lines[i].startswith("- "):
                item = nodes.list_item()
                item += _para(_inline(lines[i][2:].strip()))
                blist += item
                i += 1
            out.append(blist)
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i].strip())
                i += 1
            cells = [[c.strip() for c in row.strip("|").split("|")] for row in block]
            cells = [r for r in cells if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            if cells:
                header, body = cells[0], cells[1:]
                body = [(r + [""] * len(header))[:len(header)] for r in body]
                widths = [min(40, max(4, *(len(r[j]) for r in [header] + body)))
                          for j in range(len(header))]
                out.append(_table([_inline(c) for c in header],
                                  [[_inline(c) for c in r] for r in body],
                                  widths=widths, classes=["dualad-bench"]))
        else:
            para = []
            while (i < len(lines) and lines[i].strip()
                   and not lines[i].startswith(("#", "- ", "|"))):
                para.append(lines[i].strip())
                i += 1
            out.append(_para(_inline(" ".join(para))))
    return out


class BenchmarkDirective(Directive):
    """``.. dualad-benchmark::``: the comparison table, or how to produce it."""

    has_content = False

    def run(self):
        env = self.state.document.settings.env
        path = os.path.join(env.srcdir, BENCH_MD)
        env.note_dependency(path)
        if not os.path.exists(path):
            note = nodes.note()
            note += _para(
                "No comparison table in this build: ", _code("docs/" + BENCH_MD.replace(os.sep, "/")),
                " does not exist. Produce it from the repository root with ",
                _code("python benchmarks/compare.py"),
                " (about five minutes, single-threaded; ", _code("--quick"),
                " for a smoke test), then rebuild the documentation. Peers that are not "
                "installed (JAX, autograd, PyTorch, numdifftools) are skipped with a note.")
            return [note]
        with open(path, encoding="utf-8") as fh:
            result = markdown_to_nodes(fh.read())
        png = os.path.join(env.srcdir, BENCH_PNG)
        if os.path.exists(png):
            env.note_dependency(png)
            # a leading "/" makes the URI relative to the source directory
            uri = "/" + BENCH_PNG.replace(os.sep, "/")
            result.append(nodes.image(uri=uri, alt="time of each tool divided by the time "
                                      "of the plain function, log scale"))
        return result


# -- Cython attribute docstrings ------------------------------------------------------------

_CYTHON_ATTR = re.compile(r"^(\s+):obj:`(\w+) <[^>]*>`( : .*)?$")


def restore_attribute_descriptions(app, what, name, obj, options, lines):
    """Keep a class docstring's own Attributes descriptions for Cython attributes.

    With ``embedsignature=True`` Cython gives every ``cdef public`` attribute declared in
    a ``.pyx`` an automatic docstring ``"value: object"``.  numpydoc (run before this
    handler) prefers an attribute's own docstring to the description written in the
    class's Attributes section, so ``DualArray``'s entries would read ``value: object``.
    Only entries whose attribute docstring is that automatic ``"<name>: <type>"`` line are
    changed back; the name is shown in bold, as for a plain attribute.
    """
    if what != "class":
        return
    import inspect

    from numpydoc.docscrape import NumpyDocString

    try:
        parsed = NumpyDocString(inspect.getdoc(obj) or "")
    except Exception:  # numpydoc reports docstring problems itself
        return
    written = {p.name.strip(): p.desc for p in parsed["Attributes"]}
    out = []
    i = 0
    while i < len(lines):
        m = _CYTHON_ATTR.match(lines[i])
        attr = m and getattr(obj, m.group(2), None)
        auto = (getattr(attr, "__doc__", None) or "").strip() if attr is not None else ""
        if (m and m.group(2) in written and i + 1 < len(lines)
                and auto.startswith(f"{m.group(2)}:") and lines[i + 1].strip() == auto):
            indent, attr_name, typ = m.group(1), m.group(2), m.group(3) or ""
            out.append(f"{indent}**{attr_name}**{typ}")
            out.extend(f"{indent}    {d}" if d.strip() else "" for d in written[attr_name])
            i += 2
            continue
        out.append(lines[i])
        i += 1
    lines[:] = out


def drop_self(app, what, name, obj, options, signature, return_annotation):
    """Drop ``self`` from method signatures taken from Cython's embedded signatures."""
    if what == "method" and signature and signature.startswith("(self"):
        rest = signature[len("(self"):].lstrip()
        signature = "(" + rest[1:].lstrip() if rest.startswith(",") else "(" + rest
        return signature, return_annotation
    return None


# -- completeness check ---------------------------------------------------------------------

def check_public_names(app, env):
    """Warn for every public name of dualad that the API reference does not document."""
    import dualad
    documented = set(env.get_domain("py").objects)
    for name in dualad.__all__:
        if name.startswith("__"):
            continue
        if f"dualad.{name}" not in documented:
            logger.warning("dualad.%s is public (dualad.__all__) but not documented in "
                           "the API reference", name, type="dualad", subtype="undocumented")


def setup(app):
    app.add_directive("dualad-coverage", CoverageDirective)
    app.add_directive("dualad-benchmark", BenchmarkDirective)
    app.add_directive("dualad-rule", RuleDirective)
    app.connect("env-check-consistency", check_public_names)
    # after numpydoc's own autodoc-process-docstring handler (priority 500)
    app.connect("autodoc-process-docstring", restore_attribute_descriptions, priority=600)
    # before numpydoc's autodoc-process-signature handler: the first result wins
    app.connect("autodoc-process-signature", drop_self, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
