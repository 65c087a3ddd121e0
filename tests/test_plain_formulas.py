"""The benchmark's plain-Python formulas (written out by hand, without convcost) equal cost() on every metric.

They are the baseline ``benchmarks/bench_cost.py`` times ``cost()`` against, so they
must compute the same thing; they are also one more independent oracle for the tour's numbers.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

from convcost import METRICS, VARIANTS, cost
from convcost.costs import TRAINING_METRICS
from convcost.tour import EXAMPLES

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from plain_formulas import PLAIN


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_formula_equals_cost(name):
    counts, shape = PLAIN[name](**EXAMPLES[name])
    c = cost(VARIANTS[name], **EXAMPLES[name])
    forward = [m for m in METRICS if m not in TRAINING_METRICS]  # the plain formulas count the forward pass
    assert dict(zip(forward, counts, strict=True)) == {m: getattr(c, m) for m in forward}
    assert shape == c.output_shape


def test_a_hand_count_checks_the_plain_formula_itself():
    # SeparableConv(C=10, O=32, K=3) on 128x128: 126x126 positions, depthwise 10*9 + pointwise 10*32 taps each
    counts, shape = PLAIN["SeparableConv"](C=10, O=32, K=3, H=128, W=128)
    assert counts[1] == 126 * 126 * (10 * 9 + 10 * 32) == 6509160
    assert shape == (1, 32, 126, 126)
