"""Bugs other counters have shipped: exact here, and checked against PyTorch's own count."""

import pytest
import torch.nn as nn

from convcost import TransposedConv
from convcost.primitives import ConvTranspose, Linear, PixelShuffle
from convcost.testing import assert_matches_torch
from convcost.torch import from_torch, measure, to_torch


@pytest.mark.parametrize(
    "module, shape, macs, hand",
    [
        # input positions x kernel taps x O/G; counters that use output positions report ~4x
        (nn.ConvTranspose2d(32, 16, 3, stride=2), (1, 32, 128, 128), 75_497_472, 128 * 128 * 32 * 16 * 3 * 3),
        (nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, groups=2), (1, 64, 28, 28), 12_845_056,
         28 * 28 * 64 * (32 // 2) * 4 * 4),
        # nn.Linear on a channels-last tensor: every one of the 56*56 positions is a row
        (nn.Linear(96, 384), (1, 56, 56, 96), 115_605_504, 56 * 56 * 96 * 384),
    ],
)
def test_published_miscounts_are_exact(module, shape, macs, hand):
    assert macs == hand
    assert measure(module, shape).macs == macs
    spec = from_torch(module)
    assert spec.cost(shape).macs == macs
    assert_matches_torch(spec, shape)


def test_transposed_conv_variant_and_shape():
    c = TransposedConv(C=32, O=16, K=3, S=2, H=128, W=128).cost()
    measured = measure(to_torch(TransposedConv(C=32, O=16, K=3, S=2)), (1, 32, 128, 128))
    assert (c.macs, c.output_shape) == (75_497_472, (1, 16, 257, 257))
    assert (measured.macs, measured.output_shape) == (75_497_472, (1, 16, 257, 257))
    assert c.params == measured.params == 32 * 16 * 9 + 16


def test_linear_spec_on_channels_last_input():
    spec = Linear(C=96, O=384)
    assert spec.cost((1, 56, 56, 96)).macs == measure(to_torch(spec), (1, 56, 56, 96)).macs == 115_605_504


def test_parameter_free_pixel_shuffle_does_not_crash():
    module = nn.PixelShuffle(2)
    assert list(module.parameters()) == []
    measured = measure(module, (1, 16, 8, 8))
    assert (measured.params, measured.macs, measured.output_shape) == (0, 0, (1, 4, 16, 16))
    cost = from_torch(module).cost((1, 16, 8, 8))
    assert (cost.params, cost.macs, cost.output_shape) == (0, 0, (1, 4, 16, 16))
    assert_matches_torch(PixelShuffle(2), (1, 16, 8, 8))


def test_transposed_conv_with_dilation_and_output_padding():
    spec = ConvTranspose(C=4, O=6, K=3, S=2, P=1, output_padding=1, D=2, G=2)
    shape = (2, 4, 5, 7)
    assert_matches_torch(spec, shape)
    assert spec.cost(shape).macs == 2 * 5 * 7 * 4 * (6 // 2) * 9
