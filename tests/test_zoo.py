"""The paper zoo reproduces the papers' tables and torchvision's exact counts.

Sources of the numbers asserted here (independent of convcost's formulas):
- MobileNet V1: Howard et al. 2017, arXiv:1704.04861, Table 6 (width multiplier) and Table 7 (resolution).
- MobileNetV2: Sandler et al. 2018, arXiv:1801.04381, Table 4 (1.0 at 224: 300 M MAdds, 3.4 M params).
- Exact parameter counts and GFLOPS: torchvision's model documentation, "Table of all available
  classification weights" (https://pytorch.org/vision/stable/models.html, ``num_params`` and ``GFLOPS``;
  torchvision's GFLOPS count multiply-adds). Published and stable since torchvision 0.13.
- MNIST nets: seed 004's Keras ``summary()`` (per-layer Param # and Output Shape).
"""

import subprocess
import sys
from fractions import Fraction

import pytest
import sympy

from convcost.errors import ConvcostError
from convcost.primitives import BatchNorm, MaxPool
from convcost.shapes import ceil_pool_size
from convcost.symbols import H, W, alpha, rho
from convcost.zoo import (
    MODELS,
    ZooModel,
    mnist_net,
    mobilenet_v1,
    mobilenet_v2,
    resnet18,
    resnet50,
    shufflenet_v2,
    squeezenet1_0,
    squeezenet1_1,
)

FC_MACS = 1024 * 1000  # MobileNet V1's classifier: independent of the resolution after global pooling


def _leaves(cost):
    if not cost.parts:
        yield cost
    for _, part in cost.parts:
        yield from _leaves(part)


def _millions(n) -> int:
    return (int(n) + 500_000) // 1_000_000  # the papers' rounding to whole millions


@pytest.fixture(scope="module")
def family():
    """One cost of MobileNet V1 with alpha and rho free: every row of Tables 6 and 7 is a binding of it."""
    return mobilenet_v1(alpha, rho).cost()


# -- MobileNet V1, Table 6: width multiplier at 224 ----------------------------------------------

TABLE_6 = [  # alpha, paper's mult-adds (M), paper's params (M), exact mult-adds, exact params (with BN)
    (Fraction(1), 569, Fraction(42, 10), 568_740_352, 4_231_976),
    (Fraction(3, 4), 325, Fraction(26, 10), 325_400_448, 2_585_560),
    (Fraction(1, 2), 149, Fraction(13, 10), 149_497_088, 1_331_592),
    (Fraction(1, 4), 41, Fraction(5, 10), 41_030_272, 470_072),
]


@pytest.mark.parametrize("a, paper_macs, paper_params, macs, params", TABLE_6)
def test_mobilenet_v1_table_6(family, a, paper_macs, paper_params, macs, params):
    bound = family.subs(alpha=a, rho=1)
    concrete = mobilenet_v1(alpha=a).cost()
    assert (bound.macs, bound.params) == (concrete.macs, concrete.params) == (macs, params)
    assert _millions(macs) == paper_macs
    assert (params + 50_000) // 100_000 == paper_params * 10


def test_mobilenet_v1_width_is_quadratic(family):
    """Params are a quadratic in alpha (the paper: cost falls roughly as alpha^2); no rho in them."""
    assert sympy.expand(family.params - (3_139_584 * alpha**2 + 1_091_392 * alpha + 1000)) == 0
    assert sympy.Poly(family.subs(rho=1).macs, alpha).degree() == 2


# -- MobileNet V1, Table 7: resolution 224 rho at alpha 1 -----------------------------------------

TABLE_7 = [(224, 569, 568_740_352), (192, 418, 418_121_728), (160, 290, 290_675_200), (128, 186, 186_400_768)]


@pytest.mark.parametrize("size, paper_macs, macs", TABLE_7)
def test_mobilenet_v1_table_7(family, size, paper_macs, macs):
    r = Fraction(size, 224)
    bound = family.subs(alpha=1, rho=r)
    model = mobilenet_v1(rho=r)
    assert model.input_shape == (1, 3, size, size)
    assert bound.macs == model.cost().macs == macs
    assert bound.params == 4_231_976  # resolution leaves the parameters alone: 4.2 M in every row
    # every convolution scales exactly as rho^2 (all four sizes are multiples of 32) ...
    assert (macs - FC_MACS) * 224**2 == (TABLE_7[0][2] - FC_MACS) * size**2
    # ... and the paper scales the whole 224 total by rho^2, the classifier included: its arithmetic
    assert _millions(sympy.Rational(TABLE_7[0][2] * size**2, 224**2)) == paper_macs
    # which is the exact count to the paper's rounding except at 160: 290.68 M, printed as 290
    assert _millions(macs) == (291 if size == 160 else paper_macs)


def test_mobilenet_v1_float_multipliers_read_as_whole_sizes():
    assert mobilenet_v1(0.75, 6 / 7).input_shape == (1, 3, 192, 192)
    assert mobilenet_v1(0.75, 6 / 7).cost().macs == mobilenet_v1(Fraction(3, 4), Fraction(6, 7)).cost().macs


# -- MobileNetV2 -----------------------------------------------------------------------------------


def test_mobilenet_v2_paper():
    """The MobileNetV2 paper cuts its numbers off rather than rounding them (300.77 M -> 300)."""
    c = mobilenet_v2().cost()
    assert c.macs == 300_774_272 and c.macs // 1_000_000 == 300
    batch_norm = sum(leaf.params for leaf in _leaves(c) if isinstance(leaf.spec, BatchNorm))
    assert batch_norm == 34_112
    # its 3.4 M are the convolution and classifier weights, 3,470,760 (torchvision's 3,504,872 less batch norm)
    assert c.params - batch_norm == 3_470_760 and (c.params - batch_norm) // 100_000 == 34


def test_mobilenet_v2_rounds_channels_like_torchvision():
    widths = [leaf.output_shape[1] for leaf in _leaves(mobilenet_v2(0.75).cost((1, 3, 224, 224)))
              if type(leaf.spec).__name__ == "Conv"]
    assert widths[0] == 24 and widths[-1] == 1280 and all(w % 8 == 0 for w in widths)


# -- exact counts of every model -----------------------------------------------------------------

TORCHVISION = [  # builder, num_params, GFLOPS (x100), output of the feature extractor
    (resnet18, 11_689_512, 181),
    (resnet50, 25_557_032, 409),
    (squeezenet1_0, 1_248_424, 82),
    (squeezenet1_1, 1_235_496, 35),
    (shufflenet_v2, 2_278_604, 14),
    (mobilenet_v2, 3_504_872, 30),
]


@pytest.mark.parametrize("build, params, gflops_x100", TORCHVISION, ids=lambda x: getattr(x, "__name__", ""))
def test_torchvision_counts(build, params, gflops_x100):
    model = build()
    c = model.cost()
    assert isinstance(model, ZooModel) and model.input_shape == (1, 3, 224, 224)
    assert c.params == params
    assert (int(c.macs) + 5_000_000) // 10_000_000 == gflops_x100
    assert c.output_shape == (1, 1000) and c.conditions == ()


@pytest.mark.parametrize(
    "build, stages",
    [
        (resnet50, {"layer1": (1, 256, 56, 56), "layer4": (1, 2048, 7, 7)}),
        (resnet18, {"maxpool": (1, 64, 56, 56), "layer4": (1, 512, 7, 7)}),
        (shufflenet_v2, {"stage2": (1, 116, 28, 28), "stage3": (1, 232, 14, 14), "stage4": (1, 464, 7, 7)}),
        (squeezenet1_0, {"features": (1, 512, 13, 13)}),
        (squeezenet1_1, {"features": (1, 512, 13, 13)}),
        (mobilenet_v1, {"conv1": (1, 32, 112, 112), "block13": (1, 1024, 7, 7)}),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_stage_shapes(build, stages):
    parts = dict(build().cost().parts)
    assert {name: parts[name].output_shape for name in stages} == stages


def test_mnist_nets_seed_004():
    assert 320 + 18_496 + 36_928 + 36_928 + 650 == 93_322 and 320 + 18_496 + 2 * 12_352 + 36_928 + 650 == 81_098
    for asymmetric, params, shapes in [
        (False, 93_322, [(1, 32, 26, 26), (1, 32, 13, 13), (1, 64, 11, 11), (1, 64, 5, 5), (1, 64, 3, 3)]),
        (True, 81_098,
         [(1, 32, 26, 26), (1, 32, 13, 13), (1, 64, 11, 11), (1, 64, 5, 5), (1, 64, 3, 5), (1, 64, 3, 3)]),
    ]:
        c = mnist_net(asymmetric).cost()
        assert c.params == params and c.output_shape == (1, 10)
        assert [p.output_shape for n, p in c.parts if n.startswith(("conv", "pool"))] == shapes


@pytest.mark.parametrize("name", sorted(MODELS))
def test_closed_form_in_input_size(name):
    """Every model's cost is a closed form in H, W that binds to the concrete count."""
    model = MODELS[name]()
    general = model.cost((1, model.input_shape[1], H, W))
    size = model.input_shape[2]
    bound = general.subs(H=size, W=size)
    concrete = model.cost()
    assert (bound.params, bound.macs, bound.output_shape) == (concrete.params, concrete.macs, concrete.output_shape)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mobilenet_v1(alpha=0.3), "32*alpha is 48/5, not a whole number"),
        (lambda: mobilenet_v1(rho=Fraction(1, 3)), "224*rho is 224/3"),
        (lambda: mobilenet_v1(alpha=-1), "alpha=-1 must be a positive number"),
        (lambda: mobilenet_v1(alpha="1"), "alpha='1' must be a positive number"),
        (lambda: mobilenet_v1(num_classes=0), "num_classes=0 must be a positive integer"),
        (lambda: mobilenet_v2(width=alpha), "channel rounding needs a value"),
        (lambda: shufflenet_v2(width=0.7), "width=0.7 must be one of 0.5, 1.0, 1.5, 2.0"),
        (lambda: resnet18(num_classes=2.5), "num_classes=2.5 must be a positive integer"),
        (lambda: ZooModel("x", "conv", (1, 3, 8, 8), ""), "is not a convcost layer"),
        (lambda: resnet18().cost((1, 4, 224, 224)), "input has 4 channels, expected C=3"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ConvcostError, match=message.replace("*", r"\*")):
        call()


# -- core fix: ceil-mode pooling needs no Piecewise when its last window cannot start in the padding --


def test_ceil_pool_size_closed_form_has_no_piecewise():
    assert ceil_pool_size(H, 3, 2, 0, 1) == sympy.ceiling((H - 3) / 2) + 1
    assert ceil_pool_size(H, 2, 2, 1, 1).has(sympy.Piecewise)  # here the last window may start in padding
    assert not squeezenet1_1().cost((1, 3, H, W)).macs.has(sympy.Piecewise)


def test_ceil_pool_size_matches_pytorch():
    torch = pytest.importorskip("torch")
    for k in range(1, 6):
        for s in range(1, 5):
            for p in range(k // 2 + 1):
                for d in (1, 2):
                    pool = torch.nn.MaxPool1d(k, s, p, d, ceil_mode=True)
                    for size in range(d * (k - 1) + 1 - 2 * p if d * (k - 1) + 1 > 2 * p else 1, 30):
                        expected = pool(torch.zeros(1, 1, size)).shape[-1]
                        assert ceil_pool_size(size, k, s, p, d) == expected, (size, k, s, p, d)
                        assert MaxPool(k, s, p, d, ceil_mode=True,
                                       dims=1).cost((1, 1, size)).output_shape[-1] == expected


# -- built with to_torch and measured by PyTorch (numel, FlopCounterMode) --------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_measures_the_same(name):
    ct = pytest.importorskip("convcost.torch")
    model = MODELS[name]()
    expected = model.cost()
    shape = tuple(int(x) for x in model.input_shape)
    measured = ct.measure(ct.to_torch(model.layer, shape, device="meta"), shape)
    assert (measured.params, measured.macs, measured.output_shape) == (expected.params, expected.macs,
                                                                       expected.output_shape)


@pytest.mark.parametrize("a, size, macs, params", [
    *[(a, 224, m, p) for a, _, _, m, p in TABLE_6[1:]],
    *[(1, size, m, 4_231_976) for size, _, m in TABLE_7[1:]],
])
def test_torch_reproduces_mobilenet_v1_tables(a, size, macs, params):
    ct = pytest.importorskip("convcost.torch")
    model = mobilenet_v1(a, Fraction(size, 224))
    measured = ct.measure(ct.to_torch(model.layer, device="meta"), (1, 3, size, size))
    assert (measured.macs, measured.params) == (macs, params)


def test_zoo_does_not_import_torch():
    code = "import sys, convcost.zoo; convcost.zoo.resnet50().cost(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_torch_model_runs_and_reads_back():
    torch = pytest.importorskip("torch")
    ct = pytest.importorskip("convcost.torch")
    model = shufflenet_v2()
    module = model.to_torch().eval()
    with torch.no_grad():
        assert module(torch.randn(2, 3, 64, 64)).shape == (2, 1000)  # real tensors through the split and shuffle
    back = ct.from_torch(module).cost(model.input_shape)
    assert (back.params, back.macs) == (2_278_604, model.cost().macs)
