"""Algorithms that run a convolution: direct, im2col, Winograd and FFT, each an exact cost model.

A convolution layer says *what* is computed; an algorithm says *how*. Each
function here takes a convolution (:class:`convcost.primitives.Conv`, or a
variant that is one, such as :class:`convcost.StandardConv`) and an input
shape (the spec's default input when left out) and returns an
:class:`AlgorithmCost`: ``multiplications``, ``additions`` and
``workspace_elements``, each an exact closed form while fields are symbols
and an exact integer once they are bound. The direct convolution's products
and output size come from the layer's own cost (``spec.cost(shape)``), so no
convolution formula is written here again.

``direct``
    multiplications = the layer's MACs; additions = MACs - output elements
    (each output sums its ``C/G prod(K)`` products; bias not counted, as in
    convcost's MACs); no workspace.
``im2col``
    the same GEMM arithmetic; workspace = the unfolded input,
    ``N C prod(K) prod(out)`` elements, which is ``F.unfold(x, ...).numel()``
    (all C channels unfolded once; group ``g`` multiplies its ``C/G prod(K)`` rows).
``winograd``
    F(m x m, 3 x 3) for m = 2, 4, 6 on a stride-1, dilation-1 2-D conv:
    elementwise multiplications ``N ceil(H'/m) ceil(W'/m) (m+r-1)^2 C O / G``;
    transform additions counted row by row on the matrices of
    :func:`winograd_matrices` (see :func:`transform_counts`).
``fft``
    a stride-1, dilation-1 conv by FFT at the padded size: per axis the next
    power of two at least ``H + 2P``; complex pointwise products; radix-2
    transforms of ``n`` points costing ``n log2 n`` complex additions and
    ``(n/2) log2 n`` complex multiplications.

The parts: :mod:`~convcost.algorithms.result` (:class:`AlgorithmCost`),
:mod:`~convcost.algorithms.convolution` (the conv a spec is),
:mod:`~convcost.algorithms.gemm` (direct, im2col),
:mod:`~convcost.algorithms.minimal_filtering` (Winograd),
:mod:`~convcost.algorithms.spectral` (FFT), :mod:`~convcost.algorithms.versus`
(break-evens between algorithms) and :mod:`~convcost.algorithms.page`
(``python -m convcost.algorithms > docs/algorithms.md``).

>>> from convcost.primitives import Conv
>>> conv = Conv(C=64, O=64, K=3, P=1)
>>> shape = (1, 64, 48, 48)
>>> [direct(conv, shape).ratio(winograd(conv, shape, m=m)) for m in (2, 4, 6)]   # Lavin and Gray
[9/4, 4, 81/16]
>>> im2col(conv, shape).workspace_elements
1327104
>>> winograd(Conv(C=64, O=64, K=3, S=2), (1, 64, 48, 48))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: winograd F(2x2,3x3) of Conv(C=64, O=64, K=3, S=2): stride S=2 must be 1 (the tiles of F(m
x m, r x r) are computed at every position)
"""

from __future__ import annotations

from convcost.algorithms.convolution import conv_of
from convcost.algorithms.gemm import direct, im2col
from convcost.algorithms.minimal_filtering import (
    WINOGRAD_FILTER,
    WINOGRAD_POINTS,
    WINOGRAD_TILES,
    transform_counts,
    winograd,
    winograd_matrices,
)
from convcost.algorithms.page import document
from convcost.algorithms.result import COMPLEX_TO_REAL, QUANTITIES, AlgorithmCost
from convcost.algorithms.spectral import fft, fft_size
from convcost.algorithms.versus import break_even, compare_algorithms

__all__ = [
    "AlgorithmCost",
    "COMPLEX_TO_REAL",
    "QUANTITIES",
    "WINOGRAD_FILTER",
    "WINOGRAD_POINTS",
    "WINOGRAD_TILES",
    "break_even",
    "compare_algorithms",
    "conv_of",
    "direct",
    "document",
    "fft",
    "fft_size",
    "im2col",
    "transform_counts",
    "winograd",
    "winograd_matrices",
]
