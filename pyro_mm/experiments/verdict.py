"""A claim's verdict from a table: does our ordering of two rows match the paper's, beyond noise?

For two rows a and b measured over seeds, with means ``m_a``, ``m_b`` and standard deviations
``s_a``, ``s_b`` over seeds, the difference ``d = m_a − m_b`` has the standard deviation
``s_d = sqrt(s_a² + s_b²)`` (the seeds of the two rows are independent runs). The verdict on the
paper's claim "a above b" is

* **reproduced**: ``d > 2 s_d`` (the paper's ordering, beyond twice the difference's sd);
* **reversed**: ``d < −2 s_d`` (the opposite ordering, likewise);
* **not separated**: otherwise, and whenever either row has fewer than two seeds (no spread to
  hold the difference against).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

__all__ = ["verdict", "difference", "signed", "comparison_cells", "NO_RECORDS"]

#: the cells of a comparison without records
NO_RECORDS = "— | — | — | no records yet"

Point = Tuple[float, float, int]  #: (mean, sd over seeds, number of seeds)


def difference(a: Point, b: Point) -> Tuple[float, float]:
    """``(m_a − m_b, sqrt(s_a² + s_b²))``."""
    return a[0] - b[0], math.hypot(a[1], b[1])


def signed(d: float, sd: float, n: int, digits: int) -> str:
    """A difference with its sign, and ``± sd`` where it rests on at least two seeds (one seed has
    no spread to show)."""
    return f"{d:+.{digits}f}" + (f" ± {sd:.{digits}f}" if n >= 2 else "")


def verdict(a: Point, b: Point) -> str:
    """The verdict on the claim "a above b" (see the module docstring)."""
    if min(a[2], b[2]) < 2:
        return "not separated (fewer than two seeds)"
    d, sd = difference(a, b)
    if d > 2 * sd:
        return "reproduced"
    if d < -2 * sd:
        return "reversed"
    return "not separated"


def comparison_cells(ours: Optional[Point], theirs: Optional[Point], paper: Tuple[Optional[float], Optional[float]] =
                     (None, None), row: Optional[str] = None, digits: int = 3) -> str:
    """The last four cells of a table row on the claim "ours above theirs": each mean (the paper's
    value in brackets where ``paper`` has it; the other row's name in parentheses where given), the
    difference ± its sd, and the verdict with the seeds it rests on — or :data:`NO_RECORDS`."""
    if ours is None or theirs is None:
        return NO_RECORDS

    def value(point, reported):
        return f"{point[0]:.{digits}f}" + ("" if reported is None else f" [{reported:.{digits}f}]")

    n = min(ours[2], theirs[2])
    return (f"{value(ours, paper[0])} | {value(theirs, paper[1])}" + (f" ({row})" if row else "")
            + f" | {signed(*difference(ours, theirs), n, digits)} | {verdict(ours, theirs)} (n = {n})")
