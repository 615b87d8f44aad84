"""The verdict on a paper's ordering of two rows: beyond twice the sd of their difference, or not."""

import pytest

from pyro_mm.experiments.verdict import difference, verdict


def test_difference_and_its_sd():
    d, sd = difference((0.6, 0.03, 3), (0.2, 0.04, 3))
    assert d == pytest.approx(0.4) and sd == pytest.approx(0.05)


@pytest.mark.parametrize("a, b, expected", [
    ((0.60, 0.03, 3), (0.20, 0.04, 3), "reproduced"),        # 0.40 > 2 × 0.05
    ((0.20, 0.04, 3), (0.60, 0.03, 3), "reversed"),
    ((0.30, 0.03, 3), (0.22, 0.04, 3), "not separated"),     # 0.08 < 0.10
    ((0.30, 0.03, 3), (0.20, 0.04, 3), "not separated"),     # 0.10 is not beyond 0.10
    ((0.60, 0.0, 1), (0.20, 0.04, 3), "not separated (fewer than two seeds)"),
])
def test_verdict(a, b, expected):
    assert verdict(a, b) == expected
