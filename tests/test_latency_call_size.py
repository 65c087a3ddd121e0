"""A convolution's compute efficiency on a call of P output positions (batch x output height x width):
``1 / (1 / efficiency + pixel_slowdown / P)``, by hand and fitted."""

import math
import os
import tempfile

import pytest
import sympy

from convcost.errors import ConvcostError
from convcost.latency import Machine, Roof, fit, pixels_of, predict_latency
from convcost.latency_analysis import latency_formula
from convcost.primitives import Activation, Conv

TRUTH = Machine("truth", peak_flops=1e9, bandwidth=1e12, overhead=2e-6,
                efficiency={"dense_conv": 0.8, "pointwise_conv": 0.6, "elementwise": 0.5},
                pixel_slowdown={"dense_conv": 40.0, "pointwise_conv": 10.0})


def samples(batches, sizes=(7, 14)):
    layers = [(Conv(c, c, 3, P=1), (n, c, h, h)) for c in (8, 32) for h in sizes for n in batches]
    layers += [(Conv(c, 2 * c, 1), (n, c, h, h)) for c in (8, 32) for h in sizes for n in batches]
    layers += [(Activation("relu"), (n, 16, 14, 14)) for n in batches]
    return [(spec.cost(shape), predict_latency(spec.cost(shape), TRUTH).seconds) for spec, shape in layers]


def test_a_convolution_on_a_call_of_p_positions_by_hand():
    # 3x3, 8 -> 8 channels, 6x6 padded, batch 2: 72 output positions, 2 * 8*8*9 * 72 = 82944 FLOPs, no bias
    c = Conv(8, 8, 3, P=1, bias=False).cost((2, 8, 6, 6))
    assert pixels_of(c) == 72
    est = predict_latency(c, TRUTH)
    compute = 2 * 8 * 8 * 9 * 72 / 1e9
    assert est.seconds == pytest.approx(2e-6 + compute * (1 / 0.8 + 40 / 72), rel=1e-12)
    assert est.kernels[0].efficiency == pytest.approx(1 / (1 / 0.8 + 40 / 72), rel=1e-12)
    # per image, a batch of eight runs faster than one; as a call grows its efficiency tends to the kind's own
    one, eight = (predict_latency(Conv(8, 8, 3, P=1).cost((n, 8, 6, 6)), TRUTH.replace(overhead=0)).seconds
                  for n in (1, 8))
    assert eight / 8 < one
    assert TRUTH.factor("dense_conv") == 0.8 and TRUTH.factor("dense_conv", 40) == pytest.approx(1 / (1.25 + 1))
    # kinds outside the convolutions take no size
    relu = [predict_latency(Activation("relu").cost((n, 8, 6, 6)), TRUTH).kernels[0].efficiency for n in (1, 8)]
    assert relu == [0.5, 0.5] and pixels_of(Activation("relu").cost((1, 8, 6, 6))) == math.inf


def test_fit_recovers_the_size_term_and_predicts_other_batches_and_images():
    fitted = fit(Machine("m", 1e9, 1e12), samples((1, 8)))
    for kind in ("dense_conv", "pointwise_conv"):
        assert fitted.efficiency[kind] == pytest.approx(TRUTH.efficiency[kind], rel=1e-6)
        assert fitted.pixel_slowdown[kind] == pytest.approx(TRUTH.pixel_slowdown[kind], rel=1e-6)
    # batches and an image size it was not fitted on, by the same law
    for n, h in ((4, 10), (16, 10), (1, 28)):
        c = Conv(32, 32, 3, P=1).cost((n, 32, h, h))
        assert predict_latency(c, fitted).seconds == pytest.approx(predict_latency(c, TRUTH).seconds, rel=1e-6)


def test_a_fit_on_one_size_has_no_size_term():
    # from one size alone the term cannot be told from the efficiency: none is fitted, that size's efficiency is
    fitted = fit(Machine("m", 1e9, 1e12), samples((1,), sizes=(7,)))
    assert "dense_conv" not in fitted.pixel_slowdown
    assert fitted.efficiency["dense_conv"] == pytest.approx(1 / (1 / 0.8 + 40 / 49), rel=1e-6)


def test_the_symbolic_latency_takes_the_call_size():
    n = sympy.Symbol("N", positive=True, integer=True)
    spec = Conv(16, 16, 3, P=1)
    formula = latency_formula(spec.cost((n, 16, 12, 12)), TRUTH)
    for batch in (1, 3, 8):
        at = float(formula.subs(n, batch))
        assert at == pytest.approx(predict_latency(spec.cost((batch, 16, 12, 12)), TRUTH).seconds, rel=1e-12)


def test_pixel_slowdown_is_saved_and_checked():
    path = os.path.join(tempfile.mkdtemp(), "m.json")
    TRUTH.save(path)
    assert Machine.load(path).pixel_slowdown == TRUTH.pixel_slowdown
    with pytest.raises(ConvcostError, match=r"pixel_slowdown\['dense_conv'\]=-1"):
        TRUTH.replace(pixel_slowdown={"dense_conv": -1})
    with pytest.raises(ConvcostError, match="unknown kernel kind 'gpu'"):
        TRUTH.replace(pixel_slowdown={"gpu": 1.0})
    roof = Roof.from_dict({"efficiency": {"dense_conv": 0.5}, "memory_efficiency": {}, "overhead": 0.0,
                           "pixels": {"dense_conv": 10.0}})
    assert roof.efficiency_of("dense_conv", 20) == pytest.approx(1 / 2.5)
