"""Primitives: the only hand-written cost formulas in convcost, each written once.

Every variant and block is a composition of these; see :mod:`convcost.costs`
for the counting conventions. Defaults follow PyTorch's modules (bias on,
stride 1, padding 0, dilation 1, groups 1) and inputs are channels-first
``(N, C, *spatial)`` except for :class:`Linear`, which acts on the last axis.
Each formula is written with :mod:`convcost.arith`, so it runs on Python ints
(microseconds) and on sympy symbols (closed forms) alike.

>>> Conv(C=3, O=32, K=3, P=1).cost((1, 3, 32, 32)).macs
884736
>>> from convcost.symbols import H, W
>>> Conv(C=3, O=32, K=3, P=1).cost((1, 3, H, W)).macs
864*H*W
"""

from convcost.primitives.activation import ACTIVATIONS, Activation
from convcost.primitives.base import KINDS
from convcost.primitives.conv import Conv, ConvTranspose
from convcost.primitives.data_movement import (
    ChannelShuffle,
    Flatten,
    Identity,
    Narrow,
    Permute,
    PixelShuffle,
    PixelUnshuffle,
    Shift,
)
from convcost.primitives.dynamic import DeformConv, ExpertConv, InvolutionAggregate
from convcost.primitives.einsum import Einsum
from convcost.primitives.layer_norm import LayerNorm, LayerScale
from convcost.primitives.linear import Linear
from convcost.primitives.matmul import Attention, GroupedMatMul, LinearAttention, MatMul, TriangularSolve
from convcost.primitives.merge import Add, Concat, Mul
from convcost.primitives.multihead import MultiheadAttention
from convcost.primitives.norm import BatchNorm
from convcost.primitives.normalize import Normalization
from convcost.primitives.pad_upsample_reduce import PAD_MODES, Interpolate, MaxUnpool, Pad, Reduce
from convcost.primitives.pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, MaxPool
from convcost.primitives.recurrent import LSTM

#: every primitive layer class, in the order the docs list them
PRIMITIVES = (
    Conv, ConvTranspose, Linear, BatchNorm, Activation, MaxPool, AvgPool, AdaptiveAvgPool, AdaptiveMaxPool,
    PixelShuffle, PixelUnshuffle, ChannelShuffle, Flatten, Narrow, Identity, Add, Mul, Concat,
    # the efficient blocks' own (convcost.efficient)
    LayerNorm, LayerScale, Shift, Permute, ExpertConv, InvolutionAggregate, DeformConv,
    # what modern models call beside convolutions (matrix products, attention, norms, resizing, reductions)
    MatMul, Einsum, Attention, MultiheadAttention, Normalization, Pad, Interpolate, Reduce, MaxUnpool, LSTM,
    LinearAttention, GroupedMatMul, TriangularSolve,
)

__all__ = ["ACTIVATIONS", "KINDS", "PAD_MODES", "PRIMITIVES", *(cls.__name__ for cls in PRIMITIVES)]
