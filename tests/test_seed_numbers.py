"""The numbers convcost must reproduce, each with its arithmetic asserted and its source named."""

import pytest

from convcost import (
    AsymmetricConv,
    Conv3d,
    DepthToSpace,
    FireModule,
    InceptionBlock,
    InvertedResidual,
    MobileNetV1Block,
    SeparableConv,
    Sequential,
    SqueezeExcitation,
    StandardConv,
    TransposedConv,
    cost,
)
from convcost.primitives import Activation, BatchNorm, Conv, Flatten, Linear, MaxPool


def test_standard_conv_seed_000():
    c3 = cost(StandardConv, C=3, O=32, K=3, P=1, H=32, W=32)
    c5 = cost(StandardConv, C=3, O=32, K=5, P=2, H=32, W=32)
    assert 3 * 3 * 3 * 32 + 32 == 896 and 32 * 32 * 32 * 3 * 9 == 884_736
    assert (c3.params, c3.macs) == (896, 884_736)
    assert 5 * 5 * 3 * 32 + 32 == 2432 and 32 * 32 * 32 * 3 * 25 == 2_457_600
    assert (c5.params, c5.macs) == (2432, 2_457_600)
    assert c3.output_shape == c5.output_shape == (1, 32, 32, 32)


def test_standard_and_separable_seed_003():
    standard = cost(StandardConv, C=10, O=32, K=3, H=128, W=128)
    assert 10 * 32 * 9 + 32 == 2912
    assert standard.params == 2912 and standard.output_shape == (1, 32, 126, 126)
    separable = cost(SeparableConv, C=10, O=32, K=3, H=128, W=128)
    assert 10 * 9 + 10 + 10 * 32 + 32 == 452
    assert 126 * 126 * (10 * 9 + 32 * 10) == 6_509_160
    assert (separable.params, separable.macs) == (452, 6_509_160)


def test_transposed_conv_seed_003():
    c = cost(TransposedConv, C=32, O=16, K=3, S=2, H=128, W=128)
    assert 32 * 16 * 9 + 16 == 4624 and (128 - 1) * 2 + 3 == 257
    assert 128 * 128 * 32 * 16 * 9 == 75_497_472  # input positions x taps, not output positions
    assert (c.params, c.output_shape, c.macs) == (4624, (1, 16, 257, 257), 75_497_472)


def test_conv3d_seed_003():
    c = cost(Conv3d, C=16, O=32, K=3, S=2, P=1, T=3, H=512, W=512)
    assert 16 * 32 * 27 + 32 == 13_856 and 2 * 256 * 256 * 32 * 16 * 27 == 1_811_939_328
    assert (c.params, c.output_shape, c.macs) == (13_856, (1, 32, 2, 256, 256), 1_811_939_328)


def test_depth_to_space_seed_003():
    c = cost(DepthToSpace, C=32, r=2, H=128, W=128)
    assert (c.params, c.macs, c.output_shape) == (0, 0, (1, 8, 256, 256))


@pytest.mark.parametrize(
    "form, params, macs",
    [("5x5", 35_264, 35_946_496), ("3x3", 28_128, 28_606_464), ("asymmetric", 19_008, 19_169_280)],
)
def test_inception_seed_000(form, params, macs):
    c = cost(InceptionBlock, C=3, O=32, form=form, H=32, W=32)
    assert (c.params, c.macs, c.output_shape) == (params, macs, (1, 96, 32, 32))


def test_inception_arithmetic_seed_000():
    one_by_one = 3 * 32 + 32
    assert one_by_one + (one_by_one + 9 * 32 * 32 + 32) + (one_by_one + 25 * 32 * 32 + 32) == 35_264
    assert one_by_one + (one_by_one + 9_248) + (one_by_one + 2 * 9_248) == 28_128
    assert one_by_one + (one_by_one + 2 * 3_104) + (one_by_one + 4 * 3_104) == 19_008


MOBILENET_INPUT = dict(N=3, H=224, W=224)


def test_plain_conv_block_seed_002():
    block = Sequential(conv=Conv(64, 128, 3, 2, 1, bias=False), bn=BatchNorm(128), relu=Activation("relu"))
    c = block.cost((3, 64, 224, 224))
    assert 64 * 128 * 9 + 2 * 128 == 73_984 and 3 * 128 * 112 * 112 * 64 * 9 == 2_774_532_096
    assert (c.params, c.macs) == (73_984, 2_774_532_096)


def test_mobilenet_v1_block_seed_002():
    c = cost(MobileNetV1Block, C=64, O=128, S=2, **MOBILENET_INPUT)
    assert 64 * 9 + 128 + 64 * 128 + 256 == 9_152
    assert 21_676_032 + 308_281_344 == 329_957_376
    assert (c.params, c.macs, c.output_shape) == (9_152, 329_957_376, (3, 128, 112, 112))


def test_inverted_residual_seed_002():
    c = cost(InvertedResidual, C=64, O=128, t=2, S=2, **MOBILENET_INPUT)
    assert 8_192 + 256 + 1_152 + 256 + 16_384 + 256 == 26_496
    assert 1_233_125_376 + 43_352_064 + 616_562_688 == 1_893_040_128
    assert (c.params, c.macs, c.output_shape) == (26_496, 1_893_040_128, (3, 128, 112, 112))
    assert c.elementwise_ops == 0  # stride 2: no residual addition


def test_fire_seed_003():
    c = cost(FireModule, C=256, s=48, e=192, bn=True, H=64, W=64)
    assert (256 * 48 + 48 + 96) + (48 * 192 + 192 + 384) + (48 * 192 * 9 + 192 + 384) == 105_744
    assert c.params == 105_744 and c.output_shape == (1, 384, 64, 64)


def test_squeeze_excitation():
    c = cost(SqueezeExcitation, C=64, r=16, H=56, W=56)
    assert (64 * 4 + 4) + (4 * 64 + 64) == 580 and 64 * 4 + 4 * 64 == 512
    assert (c.params, c.macs) == (580, 512)
    assert c.act_ops == 4 + 64 and c.elementwise_ops == 64 * 56 * 56


def _mnist(asymmetric: bool):
    third = (
        [("conv3_kx1", Conv(64, 64, (3, 1))), ("conv3_1xk", Conv(64, 64, (1, 3)))]
        if asymmetric
        else [("conv3", Conv(64, 64, 3))]
    )
    return Sequential(
        ("conv1", Conv(1, 32, 3)), ("pool1", MaxPool(2)),
        ("conv2", Conv(32, 64, 3)), ("pool2", MaxPool(2)),
        *third,
        ("flatten", Flatten()), ("dense1", Linear(576, 64)), ("dense2", Linear(64, 10)),
    )


@pytest.mark.parametrize(
    "asymmetric, per_layer",
    [
        (False, [320, 0, 18_496, 0, 36_928, 0, 36_928, 650]),
        (True, [320, 0, 18_496, 0, 12_352, 12_352, 0, 36_928, 650]),
    ],
)
def test_mnist_nets_seed_004(asymmetric, per_layer):
    assert 3 * 3 * 1 * 32 + 32 == 320 and 3 * 64 * 64 + 64 == 12_352 and 576 * 64 + 64 == 36_928
    c = _mnist(asymmetric).cost((1, 1, 28, 28))
    assert [part.params for _, part in c.parts] == per_layer
    assert c.output_shape == (1, 10)


def test_asymmetric_conv_matches_seed_004_layer():
    c = cost(AsymmetricConv, C=64, O=64, K=3, H=5, W=5)
    assert [p.output_shape for _, p in c.parts] == [(1, 64, 3, 5), (1, 64, 3, 3)]
    assert c.params == 2 * 12_352
