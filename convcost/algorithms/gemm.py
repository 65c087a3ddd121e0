"""Direct convolution and im2col then GEMM: the layer's own products, with and without an unfolded input."""

from __future__ import annotations

import sympy

from convcost.algorithms.convolution import fields_of, layer_cost, output_spatial
from convcost.algorithms.result import AlgorithmCost
from convcost.comparison import simplest
from convcost.costs import Cost
from convcost.shapes import numel, per_axis


def direct(spec, input_shape=None) -> AlgorithmCost:
    """The direct convolution: one product per output position, input channel of its group and kernel tap.

    >>> from convcost import StandardConv
    >>> c = direct(StandardConv(C=3, O=8, K=3, H=5, W=5))
    >>> c.multiplications, c.additions, c.workspace_elements
    (1944, 1872, 0)
    """
    conv, shape, layer = layer_cost(spec, input_shape)
    return _gemm_like("direct", spec, shape, layer, workspace=(),
                      rule="products = the layer's MACs (conv.cost); each output sums its C/G prod(K) products "
                           "(bias not counted); no workspace")


def im2col(spec, input_shape=None) -> AlgorithmCost:
    """im2col then GEMM: the direct convolution's products, after unfolding the input.

    The workspace is the unfolded input, ``N x (C prod(K)) x prod(out)``:
    ``torch.nn.functional.unfold(x, K, dilation=D, padding=P, stride=S).numel()``.
    With groups the whole input is unfolded once and group ``g``'s GEMM reads
    its ``C/G prod(K)`` rows.

    >>> from convcost.primitives import Conv
    >>> c = im2col(Conv(C=4, O=8, K=3, P=1, G=2), (2, 4, 6, 6))
    >>> c.multiplications, c.workspace_elements   # 2*8*36*(2*9) and 2*(4*9)*36
    (10368, 2592)
    """
    conv, shape, layer = layer_cost(spec, input_shape)
    taps = sympy.Mul(*per_axis(conv.K, conv.dims, conv, "K"))
    (channels,) = fields_of(conv, "C")
    unfolded = shape[0] * channels * taps * numel(output_spatial(layer))
    return _gemm_like("im2col", spec, shape, layer, workspace=(("unfolded input", unfolded),),
                      rule="a GEMM per group of (O/G) x (C/G prod(K)) weights by (C/G prod(K)) x (N prod(out)) "
                           "columns: products = the layer's MACs; workspace = the unfolded input "
                           "N C prod(K) prod(out) (F.unfold(...).numel(), all groups unfolded once)")


def _gemm_like(name, spec, shape, layer: Cost, workspace, rule) -> AlgorithmCost:
    macs = sympy.sympify(layer.macs)
    outputs = numel(layer.output_shape)
    return AlgorithmCost(
        algorithm=name,
        spec=spec,
        input_shape=shape,
        output_shape=tuple(layer.output_shape),
        multiplications=macs,
        additions_by_stage=(("accumulation", simplest(macs - outputs)),),
        constant_multiplications_by_stage=(),
        workspace_by_buffer=workspace,
        rule=rule,
        conditions=tuple(layer.conditions),
    )
