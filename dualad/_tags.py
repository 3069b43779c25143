"""Tags: one fresh, increasing integer per differentiation.

Design note
-----------
Every transform call takes a new tag and gives it to the values it seeds.  Values of
different tags never mix their partials: when they meet, the newer tag wins and the older
value is a constant whose value is itself a tracer (see :mod:`dualad._array`).  That is
what keeps nested derivatives free of perturbation confusion.  ``itertools.count`` is
atomic under the GIL, so threads get distinct tags.
"""

import itertools

__all__ = ["new_tag"]

_COUNTER = itertools.count(1)


def new_tag():
    """Return a fresh tag, larger than every tag handed out before."""
    return next(_COUNTER)
