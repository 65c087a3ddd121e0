"""The efficient blocks of convcost.efficient: their papers' ratios, derived exactly, and oracles
PyTorch's FlopCounterMode cannot be (hand arithmetic written out here).

The Hypothesis proofs against PyTorch (params == numel, MACs == FlopCounterMode // 2, per part) run
for every block in tests/test_torch_properties.py, through convcost.testing.VARIANT_CASES.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from convcost import VARIANTS, ConvcostError, break_even, cost, derive
from convcost.efficient import (
    EFFICIENT,
    BSConvU,
    CondConv,
    DeformableConv,
    GhostModule,
    Involution,
    MixConv,
    OctaveConv,
    PartialConv,
    RepVGGBlock,
)
from convcost.efficient.papers import CLAIMS, baseline, page
from convcost.tour import EXAMPLES

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = [cls.__name__ for cls in EFFICIENT]


# -- the papers' headline ratios ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_papers_ratio_is_derived_exactly(name):
    claim = CLAIMS[name]
    assert claim.holds(), (claim.derived(), claim.stated)


def test_octave_is_exactly_seven_sixteenths_at_one_half():
    c, o, h, w = sympy.symbols("c o h w", integer=True, positive=True)
    block = OctaveConv(C=2 * c, O=2 * o, H=2 * h, W=2 * w)  # alpha = 1/2 splits exactly: no floor left
    assert sympy.simplify(block.cost().macs / baseline(block).cost().macs) == sympy.Rational(7, 16)
    # and in numbers: 7/16 of 64*64*9*32*32
    assert cost(OctaveConv, C=64, O=64, H=32, W=32).macs * 16 == 64 * 64 * 9 * 32 * 32 * 7


def test_partial_conv_is_one_sixteenth_of_a_full_conv():
    c = sympy.Symbol("c", integer=True, positive=True)
    block = PartialConv(C=4 * c)
    assert sympy.simplify(block.cost().macs / baseline(block).cost().macs) == sympy.Rational(1, 16)


def test_ghost_speed_up_tends_to_s():
    from convcost.symbols import C, s

    assert sympy.limit(CLAIMS["GhostModule"].derived(), C, sympy.oo) == s  # wide inputs: the speed-up is s


def test_docs_variants_md_is_current():
    assert (ROOT / "docs" / "variants.md").read_text() == page() + "\n", \
        "regenerate: python -m convcost.efficient > docs/variants.md"


def test_a_break_even_against_the_baseline():
    block = GhostModule(C=16, O=32, K=1, d=3)
    be = break_even(baseline(block), block, metric="macs", solve_for="H")
    assert be.holds(H=8, W=8)  # 16 input channels: the ghost module is cheaper at any size


@pytest.mark.parametrize("name", NAMES)
def test_derive_walks_every_block(name):
    d = derive(cost(VARIANTS[name], **EXAMPLES[name]))
    assert d.steps[-1].rhs == cost(VARIANTS[name], **EXAMPLES[name]).macs
    assert derive(VARIANTS[name]).markdown()


# -- hand arithmetic where FlopCounterMode does not see the work --------------------------------------


@given(c=st.integers(1, 3), o=st.integers(1, 3), k=st.sampled_from((1, 3)), og=st.integers(1, 2),
       modulated=st.booleans(), n=st.integers(1, 2), size=st.integers(3, 6))
@settings(deadline=None, max_examples=15)
def test_deformable_conv_by_hand(c, o, k, og, modulated, n, size):
    """params: torchvision's DeformConv2d (O C K^2 + O) plus the offset conv; MACs: both as convolutions."""
    from convcost.torch import measure, to_torch

    C, O = c * og, o
    block = DeformableConv(C=C, O=O, K=k, P=k // 2, offset_groups=og, modulated=modulated, N=n, H=size, W=size)
    got = block.cost()
    offset_channels = og * (3 if modulated else 2) * k * k
    deform_params = O * C * k * k + O  # torchvision.ops.DeformConv2d(C, O, k).parameters()
    offset_params = offset_channels * C * k * k + offset_channels  # nn.Conv2d(C, offset_channels, k)
    pixels = n * size * size  # padding k//2, stride 1: the size is kept
    assert got.params == deform_params + offset_params
    assert got.macs == pixels * (O * C * k * k + offset_channels * C * k * k)
    assert got.elementwise_ops == pixels * C * k * k * (5 if modulated else 4)  # the bilinear sampling rule
    module = to_torch(block)
    assert sum(p.numel() for p in module.parameters()) == got.params
    assert measure(module, (n, C, size, size)).macs == got.macs  # convcost's module: one counted matmul


def test_deformable_conv_with_zero_offsets_is_a_convolution():
    import torch
    import torch.nn.functional as F

    from convcost.torch.modules_efficient import DeformConv

    torch.manual_seed(0)
    for stride, pad, dilation, groups in ((1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 1)):
        m = DeformConv(4, 6, 3, stride, pad, dilation, groups, offset_groups=2, modulated=True)
        x = torch.randn(2, 4, 7, 7)
        expected = F.conv2d(x, m.weight, m.bias, stride, pad, dilation, groups)
        offsets = torch.zeros(2, 2 * 3 * 9, *expected.shape[2:])
        offsets[:, 2 * 2 * 9:] = 30.0  # mask logits: sigmoid(30) = 1 to float precision
        assert torch.allclose(m(x, offsets), expected, atol=1e-4)


def test_involution_aggregation_is_counted_where_flop_counter_misses_it():
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    n, C, k, gc, size = 2, 32, 7, 16, 8
    got = cost(Involution, C=C, K=k, group_channels=gc, N=n, H=size, W=size)
    reduced, kernels = C // 4, k * k * C // gc
    by_hand_generation = n * size * size * (C * reduced + reduced * kernels)
    by_hand_aggregation = n * size * size * C * k * k  # K^2 C multiply-accumulates per output pixel
    assert got.macs == by_hand_generation + by_hand_aggregation
    # the reference code's unfold, multiply, sum: FlopCounterMode counts none of it
    x, weight = torch.zeros(n, C, size, size), torch.zeros(n, C // gc, 1, k * k, size, size)
    with FlopCounterMode(display=False) as counter:
        cols = F.unfold(x, k, padding=(k - 1) // 2).view(n, C // gc, gc, k * k, size, size)
        (weight * cols).sum(dim=3)
    assert counter.get_total_flops() == 0


def test_condconv_mixes_per_sample_and_counts_the_mix():
    import torch
    import torch.nn.functional as F

    from convcost.torch import to_torch

    n, C, O, k, e, size = 3, 4, 6, 3, 5, 6
    got = cost(CondConv, C=C, O=O, K=k, experts=e, N=n, H=size, W=size)
    kernel = O * C * k * k
    assert got.params == e * kernel + C * e + e  # experts' kernels, the router Linear(C, E)
    assert got.macs == n * C * e + n * e * kernel + n * size * size * kernel  # router, mix, convolution
    module = to_torch(CondConv(C=C, O=O, K=k, experts=e))
    x = torch.randn(n, C, size, size)
    routing = module.condconv.routing(x)
    expert = module.condconv.conv
    for i in range(n):  # each sample convolved with its own mixture
        w = (routing[i] @ expert.weight).view(O, C, k, k)
        assert torch.allclose(module(x)[i], F.conv2d(x[i:i + 1], w, padding=1)[0], atol=1e-4)


def test_mixconv_splits_with_the_remainder_first():
    assert MixConv(C=11).splits() == (5, 3, 3)
    assert cost(MixConv, C=11, kernels=(3, 5, 7), H=4, W=4).params == 5 * 9 + 3 * 25 + 3 * 49


def test_repvgg_fused_has_the_deploy_form():
    block = RepVGGBlock(C=8, O=8, H=6, W=6)
    assert block.fused() == RepVGGBlock(C=8, O=8, deploy=True, H=6, W=6)
    assert cost(block.fused()).params == 8 * 8 * 9 + 8
    assert cost(RepVGGBlock, C=8, O=16, S=2, H=6, W=6).params == 16 * 8 * 9 + 32 + 16 * 8 + 32  # no identity


def test_bsconv_is_pointwise_then_depthwise():
    c = cost(BSConvU, C=16, O=32, K=3, H=8, W=8)
    assert c.params == 16 * 32 + 32 * 9 + 32
    assert c.macs == 64 * (16 * 32 + 32 * 9)


@pytest.mark.parametrize("bad, rule", [
    (lambda: GhostModule(C=4, O=4, s=1), "s=1 must be at least 2"),
    (lambda: OctaveConv(C=4, O=4, alpha=1), "alpha=1 must be below 1"),
    (lambda: OctaveConv(C=4, O=4, S=3), "S=3 must be 1 or 2"),
    (lambda: cost(OctaveConv, C=4, O=4, H=5, W=4), "must be even"),
    (lambda: cost(OctaveConv, C=1, O=4, H=4, W=4), "leaves an empty frequency"),
    (lambda: Involution(C=24, group_channels=16), "not divisible by group_channels=16"),
    (lambda: RepVGGBlock(C=4, O=4, K=2), "K=2 must be odd"),
    (lambda: MixConv(C=4, kernels=()), "must not be empty"),
    (lambda: cost(MixConv, C=2, kernels=(3, 5, 7), H=4, W=4), "must be a positive integer"),
])
def test_bad_blocks_are_refused_with_the_rule(bad, rule):
    with pytest.raises(ConvcostError, match=re.escape(rule)):
        bad()


def test_every_block_is_in_the_catalog_the_tour_and_the_strategies():
    from convcost.testing import VARIANT_CASES

    for cls in EFFICIENT:
        assert VARIANTS[cls.__name__] is cls and cls.__name__ in EXAMPLES and cls in VARIANT_CASES


@given(c=st.integers(1, 3), o=st.integers(1, 3), k=st.sampled_from((1, 3, 5)), stride=st.integers(1, 2),
       g=st.integers(1, 2), same=st.booleans())
@settings(deadline=None, max_examples=15)
def test_repvgg_folds_into_its_fused_form(c, o, k, stride, g, same):
    """The training form, in eval mode, computes what one KxK conv with bias computes: .fused() is exact."""
    import torch

    from convcost.torch import to_torch
    from convcost.torch.reparameterise import fuse_repvgg

    C, O = c * g, (c if same else o) * g
    block = RepVGGBlock(C=C, O=O, K=k, S=stride, G=g)
    training = to_torch(block)
    for bn in (m for m in training.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    training.eval()
    deploy = fuse_repvgg(training)
    assert repr(deploy) == repr(to_torch(block.fused()))
    assert sum(p.numel() for p in deploy.parameters()) == cost(block.fused()).params
    x = torch.randn(2, C, 6, 6)
    assert torch.allclose(training(x), deploy(x), atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_a_block_with_free_symbols_is_not_built(name):
    from convcost.torch import to_torch

    with pytest.raises(ConvcostError, match="bind the free symbols"):
        to_torch(VARIANTS[name].general())


def test_deformable_conv_samples_where_its_offsets_point():
    """Every tap moved one row down (dy = 1, dx = 0) is the convolution of the input moved one row up."""
    import torch
    import torch.nn.functional as F

    from convcost.torch.modules_efficient import DeformConv

    torch.manual_seed(1)
    m = DeformConv(3, 5, 3, padding=1, modulated=False)
    x = torch.randn(2, 3, 6, 7)
    offsets = torch.zeros(2, 2 * 9, 6, 7)
    offsets[:, 0::2] = 1.0  # (dy, dx) pairs per tap: dy = 1
    moved = torch.cat((x[:, :, 1:], torch.zeros(2, 3, 1, 7)), dim=2)
    expected = F.conv2d(moved, m.weight, m.bias, padding=1)
    # below the first row: on it, the deformable taps reach row 0 of x, the moved input's padding there is 0
    assert torch.allclose(m(x, offsets)[:, :, 1:], expected[:, :, 1:], atol=1e-4)
    assert not torch.allclose(m(x, offsets)[:, :, 0], expected[:, :, 0], atol=1e-4)


def test_shift_moves_each_group_one_step():
    import torch

    from convcost.torch.modules_efficient import Shift

    x = torch.randn(1, 19, 5, 5)  # 9 groups of 2 channels, one channel left unshifted
    y = Shift(3)(x)
    assert torch.equal(y[:, 8:10], x[:, 8:10])  # group 4 is the centre: no move
    assert torch.equal(y[:, 18:], x[:, 18:])
    assert torch.equal(y[:, 0:2, :-1, :-1], x[:, 0:2, 1:, 1:]) and not y[:, 0:2, -1].any()


def test_octave_module_takes_the_pair_and_the_nominal_form():
    import torch

    from convcost.torch import to_torch

    block = OctaveConv(C=8, O=6, alpha=0.25)  # 2 low channels in, 1 out
    module = to_torch(block)
    high, low = module((torch.randn(2, 6, 8, 8), torch.randn(2, 2, 4, 4)))
    assert high.shape == (2, 5, 8, 8) and low.shape == (2, 1, 4, 4)
    assert module(torch.randn(2, 8, 8, 8)).shape == cost(block, H=8, W=8, N=2).output_shape
    # params: the four KxK convs without bias, 6->5, 6->1, 2->5, 2->1
    assert sum(p.numel() for p in module.parameters()) == 9 * (6 * 5 + 6 * 1 + 2 * 5 + 2 * 1) == cost(block).params
