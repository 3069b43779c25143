"""Tags: one fresh, increasing integer per differentiation.

Design note
-----------
Every transform call takes a new tag and gives it to the values it seeds.  Values of
different tags never mix their partials: when they meet, the newer tag wins and the older
value is a constant whose value is itself a tracer (see :mod:`dualad._array`).  That is
what keeps nested derivatives free of perturbation confusion.  The counter lives in C
(:func:`dualad._scalar.new_tag`, incremented under the GIL) so that seeding a scalar
derivative costs no Python call; this module is its Python face.
"""

from ._scalar import new_tag

__all__ = ["new_tag"]
