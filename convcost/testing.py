"""Hypothesis strategies and a PyTorch check, to prove convcost's counts in your own CI.

Every strategy draws a :class:`Case` ``(layer, input_shape)`` that is valid by
construction (``C = G * m``, kernels that fit the padded input, output padding
below the stride or dilation ...), small enough to measure in microseconds.
:func:`assert_matches_torch` builds the layer in PyTorch and checks that
convcost's parameters, MACs and output shape equal what PyTorch counts
(:func:`convcost.torch.measure`), exactly, for the layer and each named part.

Importing this module needs ``hypothesis`` but not torch; torch is imported
when a check runs. Both come with ``pip install 'convcost[testing]'``.

>>> from convcost import SeparableConv
>>> assert_matches_torch(SeparableConv, C=8, O=16, K=3, P=1, N=2, H=12, W=12).macs
57600
>>> 2 * 12 * 12 * (8 * 3 * 3 + 8 * 16)   # batch x positions x (depthwise + pointwise taps)
57600
>>> from hypothesis import given, settings
>>> @given(cases(SeparableConv))
... @settings(deadline=None)  # measuring in PyTorch is slow on a busy machine: no per-example deadline
... def test_separable(case):
...     assert_matches_torch(*case)
>>> test_separable()
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import sympy

from convcost.extras import need

need("hypothesis", "testing", "convcost.testing")
from hypothesis import strategies as st

from convcost import blocks, efficient, variants
from convcost import primitives as p
from convcost.compose import Parallel, Residual, Sequential, When
from convcost.errors import ConvcostError
from convcost.layers import Layer


class Case(NamedTuple):
    """A layer and an input shape it accepts."""

    layer: Layer
    input_shape: tuple


_ints = st.integers


def _axis_value(draw, values: list):
    """Per-axis values as one value when they agree (sometimes) or as a tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


def _dims(draw, dims):
    return dims if dims is not None else draw(st.sampled_from((1, 2, 3)))


def _extra(dims: int) -> int:
    return 3 if dims == 3 else 5


@st.composite
def _conv_config(draw, dims: int, groups: bool = True, dilation: bool = True):
    """Fields of a convolution and an input it fits: ``(fields, spatial lengths)``."""
    g = draw(_ints(1, 3)) if groups else 1
    c, o = g * draw(_ints(1, 3)), g * draw(_ints(1, 3))
    ks = [draw(_ints(1, 3)) for _ in range(dims)]
    ds = [draw(_ints(1, 2)) if dilation else 1 for _ in range(dims)]
    mode = draw(st.sampled_from(("int", "tuple", "same", "valid")))
    ss = [1] * dims if mode == "same" else [draw(_ints(1, 3)) for _ in range(dims)]
    if mode == "int":
        ps = [draw(_ints(0, 2))] * dims
    elif mode == "tuple":
        ps = [draw(_ints(0, 2)) for _ in range(dims)]
    else:
        ps = [0] * dims
    lengths = [max(1, d * (k - 1) + 1 - 2 * pad) + draw(_ints(0, _extra(dims))) for k, d, pad in zip(ks, ds, ps)]
    padding = mode if mode in ("same", "valid") else (ps[0] if mode == "int" else tuple(ps))
    fields = dict(C=c, O=o, K=_axis_value(draw, ks), S=_axis_value(draw, ss), P=padding, D=_axis_value(draw, ds), G=g)
    return fields, lengths


def _batch(draw) -> int:
    return draw(_ints(1, 3))


# -- primitives -----------------------------------------------------------------


@st.composite
def conv_cases(draw, dims=None):
    """``Conv`` in 1-3 D with groups, stride, dilation, padding ints/tuples/"same"/"valid", bias, batch > 1."""
    dims = _dims(draw, dims)
    fields, lengths = draw(_conv_config(dims))
    layer = p.Conv(**fields, bias=draw(st.booleans()), dims=dims)
    return Case(layer, (_batch(draw), fields["C"], *lengths))


@st.composite
def conv_transpose_cases(draw, dims=None):
    """``ConvTranspose`` in 1-3 D with groups, stride, dilation, padding and output padding."""
    dims = _dims(draw, dims)
    g = draw(_ints(1, 3))
    c, o = g * draw(_ints(1, 3)), g * draw(_ints(1, 3))
    axes = []
    for _ in range(dims):
        k, s, d = draw(_ints(1, 3)), draw(_ints(1, 3)), draw(_ints(1, 2))
        op = draw(_ints(0, max(s, d) - 1))  # PyTorch: smaller than the stride or the dilation
        length = draw(_ints(1, _extra(dims)))
        room = ((length - 1) * s + d * (k - 1) + op) // 2  # padding that keeps the output positive
        axes.append((k, s, draw(_ints(0, min(2, room))), d, op, length))
    k, s, pad, d, op, lengths = (list(v) for v in zip(*axes))
    layer = p.ConvTranspose(
        C=c, O=o, K=_axis_value(draw, k), S=_axis_value(draw, s), P=_axis_value(draw, pad),
        output_padding=_axis_value(draw, op), D=_axis_value(draw, d), G=g, bias=draw(st.booleans()), dims=dims,
    )
    return Case(layer, (_batch(draw), c, *lengths))


@st.composite
def linear_cases(draw):
    """``Linear`` on the last axis of an input with 0-3 leading axes (channels-last tensors)."""
    c, o = draw(_ints(1, 8)), draw(_ints(1, 8))
    lead = draw(st.lists(_ints(1, 4), min_size=0, max_size=3))
    return Case(p.Linear(c, o, bias=draw(st.booleans())), (*lead, c))


@st.composite
def batch_norm_cases(draw):
    """``BatchNorm`` on inputs of rank 2-5 (``BatchNorm1d/2d/3d``)."""
    c = draw(_ints(1, 6))
    spatial = draw(st.lists(_ints(1, 4), min_size=0, max_size=3))
    return Case(p.BatchNorm(c, affine=draw(st.booleans())), (_batch(draw), c, *spatial))


def _any_shape(min_rank=2, max_rank=4):
    return st.lists(_ints(1, 4), min_size=min_rank, max_size=max_rank).map(tuple)


@st.composite
def activation_cases(draw):
    """Every activation kind on any small shape."""
    return Case(p.Activation(draw(st.sampled_from(p.ACTIVATIONS))), draw(_any_shape()))


@st.composite
def pool_cases(draw, kind=None, dims=None):
    """``MaxPool``/``AvgPool`` in 1-3 D: stride (default = kernel), padding, dilation (max), ``ceil_mode``."""
    cls = kind or draw(st.sampled_from((p.MaxPool, p.AvgPool)))
    dims = _dims(draw, dims)
    ks = [draw(_ints(1, 3)) for _ in range(dims)]
    ds = [draw(_ints(1, 2)) if cls is p.MaxPool else 1 for _ in range(dims)]
    ps = [draw(_ints(0, k // 2)) for k in ks]
    strides = None if draw(st.booleans()) else _axis_value(draw, [draw(_ints(1, 3)) for _ in range(dims)])
    # PyTorch's avg_pool3d needs each axis at least as long as the kernel, padding aside
    least = [k if (cls is p.AvgPool and dims == 3) else max(1, d * (k - 1) + 1 - 2 * pad) for k, d,
             pad in zip(ks, ds, ps)]
    lengths = [n + draw(_ints(0, _extra(dims))) for n in least]
    fields = dict(K=_axis_value(draw, ks), P=_axis_value(draw, ps), ceil_mode=draw(st.booleans()), dims=dims)
    if cls is p.MaxPool:
        fields["D"] = _axis_value(draw, ds)
    if strides is not None:
        fields["S"] = strides
    return Case(cls(**fields), (_batch(draw), draw(_ints(1, 3)), *lengths))


@st.composite
def adaptive_pool_cases(draw, kind=None, dims=None):
    """``AdaptiveAvgPool``/``AdaptiveMaxPool`` in 1-3 D, bins that tile, overlap or outnumber the input."""
    cls = kind or draw(st.sampled_from((p.AdaptiveAvgPool, p.AdaptiveMaxPool)))
    dims = _dims(draw, dims)
    bins = [draw(_ints(1, 4)) for _ in range(dims)]
    lengths = [draw(_ints(1, 6)) for _ in range(dims)]
    return Case(cls(_axis_value(draw, bins), dims=dims), (_batch(draw), draw(_ints(1, 3)), *lengths))


@st.composite
def pixel_shuffle_cases(draw):
    """``PixelShuffle(r)`` on ``C = c r^2`` channels."""
    r = draw(_ints(1, 3))
    return Case(p.PixelShuffle(r), (_batch(draw), draw(_ints(1, 3)) * r * r, draw(_ints(1, 4)), draw(_ints(1, 4))))


@st.composite
def pixel_unshuffle_cases(draw):
    """``PixelUnshuffle(r)`` on ``H = h r``, ``W = w r``."""
    r = draw(_ints(1, 3))
    return Case(p.PixelUnshuffle(r), (_batch(draw), draw(_ints(1, 3)), draw(_ints(1, 3)) * r, draw(_ints(1, 3)) * r))


@st.composite
def channel_shuffle_cases(draw):
    """``ChannelShuffle(G)`` on ``C = G m`` channels."""
    g = draw(_ints(1, 4))
    spatial = draw(st.lists(_ints(1, 4), min_size=1, max_size=2))
    return Case(p.ChannelShuffle(g), (_batch(draw), g * draw(_ints(1, 3)), *spatial))


@st.composite
def flatten_cases(draw):
    """``Flatten(start_dim, end_dim)`` with axes counted from either end."""
    shape = draw(_any_shape(1, 4))
    n = len(shape)
    start = draw(_ints(0, n - 1))
    end = draw(_ints(start, n - 1))
    start -= n * draw(st.booleans())
    end -= n * draw(st.booleans())
    return Case(p.Flatten(start, end), shape)


@st.composite
def narrow_cases(draw):
    """``Narrow(dim, start, length)``, a slice inside the axis."""
    shape = draw(_any_shape(1, 4))
    dim = draw(_ints(0, len(shape) - 1))
    length = draw(_ints(1, shape[dim]))
    start = draw(_ints(0, shape[dim] - length))
    return Case(p.Narrow(dim - len(shape) * draw(st.booleans()), start, length), shape)


def identity_cases():
    """``Identity`` on any small shape."""
    return _any_shape(1, 4).map(lambda shape: Case(p.Identity(), shape))



@st.composite
def upsample_cases(draw):
    """``Interpolate(scale=s)``, nearest, on 1-3 spatial axes (what ``nn.Upsample(scale_factor=s)`` reads as)."""
    spatial = draw(st.lists(_ints(1, 4), min_size=1, max_size=3))
    return Case(p.Interpolate(scale=draw(_ints(1, 3))), (_batch(draw), draw(_ints(1, 3)), *spatial))


@st.composite
def shift_cases(draw):
    """``Shift(K)`` on channels that fill the K^2 groups or leave a remainder."""
    k = draw(st.sampled_from((1, 3, 5)))
    return Case(p.Shift(K=k), (_batch(draw), draw(_ints(1, 12)), draw(_ints(1, 5)), draw(_ints(1, 5))))


@st.composite
def permute_cases(draw):
    """``Permute(dims)`` of a 2-5-D input."""
    shape = draw(_any_shape(2, 5))
    return Case(p.Permute(dims=tuple(draw(st.permutations(range(len(shape)))))), shape)


@st.composite
def layer_norm_cases(draw):
    """``LayerNorm(C)`` over the last axis of a 2-4-D input, affine or not, with or without a bias."""
    c = draw(_ints(1, 6))
    affine = draw(st.booleans())
    bias = affine and draw(st.booleans())  # without affine parameters there is no bias to leave out
    return Case(p.LayerNorm(C=c, affine=affine, bias=bias or not affine), (*draw(_any_shape(1, 3)), c))


@st.composite
def layer_scale_cases(draw):
    """``LayerScale(C)`` on a channels-first 4-D input."""
    c = draw(_ints(1, 6))
    return Case(p.LayerScale(C=c), (_batch(draw), c, draw(_ints(1, 4)), draw(_ints(1, 4))))

#: a strategy factory for every primitive with a module of its own
@st.composite
def max_unpool_cases(draw):
    """``MaxUnpool`` in 1 to 3 dimensions, scattering into an output at least as large on every axis."""
    dims = draw(st.integers(1, 3))
    lengths = [draw(_ints(1, 3)) for _ in range(dims)]
    size = tuple(n + draw(_ints(0, 2)) for n in lengths)
    return Case(p.MaxUnpool(size=size if dims > 1 or draw(st.booleans()) else size[0]),
                (_batch(draw), draw(_ints(1, 3)), *lengths))


PRIMITIVE_CASES = {
    p.Conv: conv_cases,
    p.ConvTranspose: conv_transpose_cases,
    p.Linear: linear_cases,
    p.BatchNorm: batch_norm_cases,
    p.Activation: activation_cases,
    p.MaxPool: lambda: pool_cases(kind=p.MaxPool),
    p.AvgPool: lambda: pool_cases(kind=p.AvgPool),
    p.AdaptiveAvgPool: lambda: adaptive_pool_cases(kind=p.AdaptiveAvgPool),
    p.AdaptiveMaxPool: lambda: adaptive_pool_cases(kind=p.AdaptiveMaxPool),
    p.PixelShuffle: pixel_shuffle_cases,
    p.PixelUnshuffle: pixel_unshuffle_cases,
    p.ChannelShuffle: channel_shuffle_cases,
    p.Flatten: flatten_cases,
    p.Narrow: narrow_cases,
    p.Identity: identity_cases,
    p.Interpolate: upsample_cases,
    p.Shift: shift_cases,
    p.Permute: permute_cases,
    p.LayerNorm: layer_norm_cases,
    p.LayerScale: layer_scale_cases,
    p.MaxUnpool: max_unpool_cases,
}


# -- primitives read from the functions a model calls (no module of their own to read back) ----------------


@st.composite
def pad_cases(draw):
    """``Pad`` in every mode: constant on any axes; reflect, replicate and circular on the last 1-3 axes of an
    input with one or two more, within the sizes PyTorch accepts."""
    mode = draw(st.sampled_from(p.PAD_MODES))
    if mode == "constant":
        shape = draw(_any_shape(1, 4))
        axes = draw(_ints(1, len(shape)))
    else:
        axes = draw(_ints(1, 3))
        shape = tuple(draw(_ints(1, 4)) for _ in range(axes + draw(_ints(1, 2))))
    pads = []
    for i in range(2 * axes):
        length = shape[len(shape) - 1 - i // 2]
        most = {"reflect": length - 1, "circular": length}.get(mode, 2)
        pads.append(draw(_ints(0, min(2, most))))
    return Case(p.Pad(P=tuple(pads), mode=mode), shape)


@st.composite
def interpolate_cases(draw):
    """``Interpolate`` in every mode its input rank allows, to a size or by an integer scale (down to 1s)."""
    spatial = draw(_ints(1, 3))
    modes = ["nearest", "nearest-exact", "area", {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial]]
    modes += ["bicubic"] if spatial == 2 else []
    mode = draw(st.sampled_from(modes))
    shape = (_batch(draw), draw(_ints(1, 3)), *(draw(_ints(1, 4)) for _ in range(spatial)))
    if draw(st.booleans()):
        return Case(p.Interpolate(scale=draw(_ints(1, 2)), mode=mode), shape)
    sizes = [draw(_ints(1, 5)) for _ in range(spatial)]
    return Case(p.Interpolate(size=_axis_value(draw, sizes), mode=mode), shape)


@st.composite
def reduce_cases(draw):
    """``Reduce`` of every kind, over all axes or some (one, for ``max``, ``min`` and ``prod``), keepdim or not."""
    kind = draw(st.sampled_from(p.pad_upsample_reduce.REDUCTIONS))
    shape = draw(_any_shape(1, 4))
    if kind in ("max", "min", "prod"):
        dims = draw(st.sampled_from([(), *((d,) for d in range(len(shape)))]))
    else:
        dims = tuple(sorted(draw(st.sets(_ints(0, len(shape) - 1)))))
    dims = tuple(d - len(shape) * draw(st.booleans()) for d in dims)
    return Case(p.Reduce(dims=dims, keepdim=draw(st.booleans()), kind=kind), shape)


@st.composite
def normalization_cases(draw):
    """``Normalization`` of every kind: group norm in groups, instance norm on 1-3 spatial axes, RMS norm over
    the last axis; affine or not (layer norm is ``LayerNorm``'s)."""
    kind = draw(st.sampled_from(p.normalize.KINDS))
    affine = draw(st.booleans())
    if kind == "rms":
        c = draw(_ints(1, 5))
        return Case(p.Normalization(kind=kind, C=c, affine=affine, bias=False), (*draw(_any_shape(1, 3)), c))
    if kind == "group":
        groups = draw(_ints(1, 3))
        c = groups * draw(_ints(1, 2))
        shape = (_batch(draw), c, *draw(st.lists(_ints(1, 3), max_size=2)))
        return Case(p.Normalization(kind=kind, C=c, affine=affine, groups=groups), shape)
    c = draw(_ints(1, 4))
    # training-mode instance norm needs more than one element per channel
    spatial = (draw(_ints(2, 3)), *draw(st.lists(_ints(1, 3), max_size=2)))
    return Case(p.Normalization(kind=kind, C=c, affine=affine), (_batch(draw), c, *spatial))


#: a strategy factory for the primitives read from the functions a model calls (``F.pad``, ``F.interpolate``,
#: reductions, the norms); each is built as a small module that calls its function
CALL_CASES = {
    p.Pad: pad_cases,
    p.Interpolate: interpolate_cases,
    p.Reduce: reduce_cases,
    p.Normalization: normalization_cases,
}


# -- recurrent layers ---------------------------------------------------------------


@st.composite
def lstm_cases(draw):
    """``LSTM`` with 1-3 layers, bidirectional or not, with or without biases, a projection (``0 < P < H``) or
    not, on a ``(T, N, I)``, ``batch_first`` ``(N, T, I)`` or unbatched ``(T, I)`` input. The built module
    returns a tuple ``(output, (h_n, c_n))``: a training check reads its output."""
    i, h = draw(_ints(1, 6)), draw(_ints(1, 7))
    proj = draw(_ints(1, h - 1)) if h > 1 and draw(_ints(0, 3)) == 0 else 0
    layer = p.LSTM(I=i, H=h, layers=draw(_ints(1, 3)), bias=draw(st.booleans()), batch_first=draw(st.booleans()),
                   bidirectional=draw(st.booleans()), P=proj)
    steps, batch = draw(_ints(1, 5)), draw(_ints(1, 4))
    if draw(_ints(0, 4)) == 0:
        return Case(layer, (steps, i))
    return Case(layer, (batch, steps, i) if layer.batch_first else (steps, batch, i))


#: a strategy factory for the recurrent layers (their modules return a tuple, so they are checked on their own)
RECURRENT_CASES = {p.LSTM: lstm_cases}


#: einsum equations as models write them, with operand shapes: batched products, outer and inner products, heads,
#: a three-operand chain, ellipses, indices summed out first, an implicit output, a channel mix
EINSUM_CASES = [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("i,j->ij", [(3,), (4,)]), ("i,i->", [(3,), (3,)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]), ("ij,kj->", [(3, 4), (5, 4)]), ("ijk,jl->il", [(2, 3, 4), (3, 5)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]), ("bij,bjk", [(2, 3, 4), (2, 4, 5)]), ("bchw,bkc->bkhw", [(2, 3, 4, 5), (2, 6, 3)]),
]


# -- merges: primitives of several inputs (their cases hold a list of input shapes) ---------------------------


@st.composite
def expert_conv_cases(draw):
    """``ExpertConv`` (CondConv's) on ``[x (N, C, H, W), routing (N, experts)]``: groups, stride, padding."""
    g = draw(_ints(1, 3))
    k, pad = draw(_ints(1, 3)), draw(_ints(0, 1))
    layer = p.ExpertConv(C=g * draw(_ints(1, 2)), O=g * draw(_ints(1, 2)), K=k, S=draw(_ints(1, 2)), P=pad, G=g,
                         experts=draw(_ints(1, 3)))
    n = _batch(draw)
    lengths = [max(1, k - 2 * pad) + draw(_ints(0, 3)) for _ in range(2)]
    return Case(layer, [(n, layer.C, *lengths), (n, layer.experts)])


@st.composite
def involution_aggregate_cases(draw):
    """``InvolutionAggregate`` on ``[x, kernels]``: odd and even kernels, stride, channel groups, single pixels."""
    gc, k, s = draw(_ints(1, 3)), draw(_ints(1, 4)), draw(_ints(1, 2))
    layer = p.InvolutionAggregate(C=gc * draw(_ints(1, 3)), K=k, S=s, group_channels=gc)
    pad = (k - 1) // 2
    lengths = [max(1, k - 2 * pad) + draw(_ints(0, 4)) for _ in range(2)]
    out = [(n + 2 * pad - k) // s + 1 for n in lengths]
    n = _batch(draw)
    return Case(layer, [(n, layer.C, *lengths), (n, k * k * (layer.C // gc), *out)])


@st.composite
def deform_conv_cases(draw):
    """``DeformConv`` on ``[x, offsets]``: groups, offset groups, stride, padding, dilation, modulated or not."""
    g, og = draw(_ints(1, 2)), draw(_ints(1, 2))
    k, s, pad, d = draw(_ints(1, 3)), draw(_ints(1, 2)), draw(_ints(0, 1)), draw(_ints(1, 2))
    layer = p.DeformConv(C=g * og * draw(_ints(1, 2)), O=g * draw(_ints(1, 3)), K=k, S=s, P=pad, D=d, G=g,
                         offset_groups=og, modulated=draw(st.booleans()), bias=draw(st.booleans()))
    lengths = [max(1, d * (k - 1) + 1 - 2 * pad) + draw(_ints(0, 3)) for _ in range(2)]
    out = [(n + 2 * pad - d * (k - 1) - 1) // s + 1 for n in lengths]
    n = _batch(draw)
    return Case(layer, [(n, layer.C, *lengths), (n, layer.offset_channels(), *out)])


@st.composite
def sum_cases(draw):
    """``Add`` of two to four equal shapes."""
    shape = draw(_any_shape(1, 4))
    return Case(p.Add(), [shape] * draw(st.integers(2, 4)))


@st.composite
def product_cases(draw):
    """``Mul`` of two to four tensors of one rank, each broadcast on some axes (size 1)."""
    shape = draw(_any_shape(1, 4))
    shapes = [tuple(1 if draw(st.integers(0, 3)) == 0 else n for n in shape) for _ in range(draw(st.integers(2, 4)))]
    return Case(p.Mul(), shapes)


@st.composite
def concat_cases(draw):
    """``Concat`` of two to four tensors along any axis (counted from the end too)."""
    shape = draw(_any_shape(1, 4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    shapes = []
    for _ in range(draw(st.integers(2, 4))):
        own = list(shape)
        own[axis] = draw(_ints(1, 4))
        shapes.append(tuple(own))
    return Case(p.Concat(dim=axis), shapes)


@st.composite
def matmul_cases(draw):
    """``MatMul`` of a batch of matrices by another, of ranks 2 to 4, batch axes broadcast or missing."""
    n, k, m = (draw(_ints(1, 4)) for _ in range(3))
    batch = draw(st.lists(_ints(1, 3), max_size=2))

    def batch_of():
        own = batch[len(batch) - draw(st.integers(0, len(batch))):]
        return [1 if draw(st.booleans()) else b for b in own]

    return Case(p.MatMul(), [(*batch_of(), n, k), (*batch_of(), k, m)])


@st.composite
def attention_cases(draw):
    """``Attention`` on query ``(..., L, E)``, key ``(..., S, E)`` and value ``(..., S, Ev)`` of rank 2 to 4: the
    fused kernel (4-D, one head size) or the math path, dropout, grouped key and value heads."""
    groups = draw(st.sampled_from([1, 1, 2]))
    batch = draw(st.lists(_ints(1, 3), min_size=2 if groups > 1 else 0, max_size=2))
    length, keys, e = draw(_ints(1, 5)), draw(_ints(1, 5)), draw(_ints(1, 4))
    ev = e if draw(st.booleans()) else draw(_ints(1, 4))
    layer = p.Attention(kernel=draw(st.sampled_from(["auto", "math"])), dropout=draw(st.booleans()), kv_groups=groups)
    heads = (*batch[:-1], batch[-1] * groups) if groups > 1 else tuple(batch)
    return Case(layer, [(*heads, length, e), (*batch, keys, e), (*batch, keys, ev)])


@st.composite
def linear_attention_cases(draw):
    """``LinearAttention`` on query ``(..., L, E)``, key ``(..., S, E)`` and value ``(..., S, Ev)`` of rank 2 to 4,
    one batch shared by all three."""
    batch = tuple(draw(st.lists(_ints(1, 3), max_size=2)))
    length, keys, e, ev = (draw(_ints(1, 5)) for _ in range(4))
    return Case(p.LinearAttention(), [(*batch, length, e), (*batch, keys, e), (*batch, keys, ev)])


@st.composite
def grouped_matmul_cases(draw):
    """``GroupedMatMul``: tokens ``(T, K)`` by ``(G, K, N)`` with ``offs`` ``(G,)``, or ``(G, M, K)`` by
    ``(G, K, N)``."""
    groups, k, n = (draw(_ints(1, 4)) for _ in range(3))
    if draw(st.booleans()):
        return Case(p.GroupedMatMul(), [(draw(_ints(1, 9)), k), (groups, k, n), (groups,)])
    return Case(p.GroupedMatMul(), [(groups, draw(_ints(1, 5)), k), (groups, k, n)])


@st.composite
def triangular_solve_cases(draw):
    """``TriangularSolve``: ``(..., n, n)`` and ``(..., n, k)`` (``(..., k, n)`` solving from the right), batch axes
    that broadcast, unitriangular or not."""
    n, k, left = draw(_ints(1, 6)), draw(_ints(1, 4)), draw(st.booleans())
    batch = tuple(draw(st.lists(_ints(1, 3), max_size=2)))
    a_batch = tuple(draw(st.sampled_from((b, 1))) for b in batch)[draw(_ints(0, len(batch))):]
    layer = p.TriangularSolve(left=left, unitriangular=draw(st.booleans()))
    return Case(layer, [(*a_batch, n, n), (*batch, n, k) if left else (*batch, k, n)])


@st.composite
def multihead_attention_cases(draw):
    """``MultiheadAttention`` on the distinct tensors it is called with (``[x]``, ``[q, kv]``, ``[q, k, v]``),
    batched or not: packed or separate projections (``kdim``, ``vdim``), bias, extra keys, the explicit weights
    or the fused kernel, dropout."""
    heads = draw(_ints(1, 3))
    e, distinct = heads * draw(_ints(1, 3)), draw(st.integers(1, 3))
    separate = distinct > 1 and draw(st.booleans())  # kdim, vdim of their own: three projection weights
    kdim = draw(_ints(1, 5)) if separate else e
    vdim = kdim if distinct == 2 or not separate else draw(_ints(1, 5))
    layer = p.MultiheadAttention(E=e, H=heads, kdim=kdim, vdim=vdim, bias=draw(st.booleans()),
                                 add_bias_kv=draw(st.booleans()), add_zero_attn=draw(st.booleans()),
                                 need_weights=draw(st.booleans()), dropout=draw(st.booleans()))
    batch = () if draw(st.booleans()) else (_batch(draw),)
    length = draw(_ints(1, 4))
    keys = length if distinct == 1 else draw(_ints(1, 4))
    q, k, v = (length, *batch, e), (keys, *batch, kdim), (keys, *batch, vdim)
    return Case(layer, [q, k, v][:distinct])


@st.composite
def einsum_cases(draw):
    """``Einsum`` of two to four operands on random equations: indices shared, summed by one operand or by
    several, broadcast (size 1 in one operand), repeated in an operand (a diagonal), an ellipsis of broadcast
    axes, an output in any order."""
    pool = draw(st.lists(st.sampled_from("abcdefAB"), min_size=2, max_size=6, unique=True))
    sizes = {x: draw(_ints(1, 4)) for x in pool}
    ellipsis = draw(st.lists(_ints(1, 3), max_size=2)) if draw(st.booleans()) else None
    parts, shapes = [], []
    for _ in range(draw(st.integers(2, 4))):
        labels = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
        if draw(st.integers(0, 9)) == 0:
            labels.append(labels[0])  # a repeated index: the diagonal
        shape = [1 if draw(st.integers(0, 5)) == 0 else sizes[x] for x in labels]
        shape = [sizes[x] if labels.count(x) > 1 else n for x, n in zip(labels, shape)]  # a diagonal's sizes agree
        text = "".join(labels)
        if ellipsis is not None and draw(st.booleans()):
            axes = ellipsis[len(ellipsis) - draw(st.integers(0, len(ellipsis))):]
            axes = [1 if draw(st.booleans()) else n for n in axes]
            cut = draw(st.integers(0, len(labels)))
            text, shape = "".join(labels[:cut]) + "..." + "".join(labels[cut:]), shape[:cut] + axes + shape[cut:]
        parts.append(text)
        shapes.append(tuple(shape))
    used = sorted(set("".join(parts).replace(".", "")))
    output = draw(st.permutations(used))[:draw(st.integers(0, len(used)))]
    dots = "..." if any("..." in part for part in parts) and draw(st.booleans()) else ""
    return Case(p.Einsum(equation=",".join(parts) + "->" + dots + "".join(output)), shapes)


#: a strategy factory for every primitive of several inputs (a case's input is a list of shapes)
MERGE_CASES = {
    p.Add: sum_cases,
    p.Mul: product_cases,
    p.Concat: concat_cases,
    p.MatMul: matmul_cases,
    p.Attention: attention_cases,
    p.LinearAttention: linear_attention_cases,
    p.GroupedMatMul: grouped_matmul_cases,
    p.TriangularSolve: triangular_solve_cases,
    p.MultiheadAttention: multihead_attention_cases,
    p.Einsum: einsum_cases,
    p.ExpertConv: expert_conv_cases,
    p.InvolutionAggregate: involution_aggregate_cases,
    p.DeformConv: deform_conv_cases,
}


def primitive_cases():
    """Any primitive (one strategy per primitive, drawn evenly)."""
    return st.one_of(*(factory() for factory in PRIMITIVE_CASES.values()))


# -- named variants -----------------------------------------------------------------


def _variant(cls, fields, lengths, batch, dims=2):
    names = ("T", "H", "W")[3 - dims :]
    return Case(cls(**fields, N=batch, **dict(zip(names, lengths))), (batch, fields["C"], *lengths))


@st.composite
def _grouped(draw, cls):
    fields, lengths = draw(_conv_config(2))
    return _variant(cls, {**fields, "bias": draw(st.booleans())}, lengths, _batch(draw))


@st.composite
def _ungrouped(draw, cls):
    fields, lengths = draw(_conv_config(2, groups=False))
    del fields["G"]
    return _variant(cls, {**fields, "bias": draw(st.booleans())}, lengths, _batch(draw))


@st.composite
def _pointwise(draw):
    g = draw(_ints(1, 3))
    fields = dict(C=g * draw(_ints(1, 3)), O=g * draw(_ints(1, 3)), S=draw(_ints(1, 3)), G=g, bias=draw(st.booleans()))
    return _variant(variants.PointwiseConv, fields, [draw(_ints(1, 6)), draw(_ints(1, 6))], _batch(draw))


@st.composite
def _depthwise(draw):
    fields, lengths = draw(_conv_config(2, groups=False))
    del fields["G"], fields["O"]
    fields.update(M=draw(_ints(1, 3)), bias=draw(st.booleans()))
    return _variant(variants.DepthwiseConv, fields, lengths, _batch(draw))


@st.composite
def _asymmetric(draw):
    k, s, pad = draw(_ints(1, 4)), draw(_ints(1, 3)), draw(_ints(0, 2))
    lengths = [max(1, k - 2 * pad) + draw(_ints(0, 5)) for _ in range(2)]
    fields = dict(C=draw(_ints(1, 4)), O=draw(_ints(1, 4)), K=k, S=s, P=pad, bias=draw(st.booleans()))
    return _variant(variants.AsymmetricConv, fields, lengths, _batch(draw))


@st.composite
def _factorized(draw):
    k = draw(st.sampled_from((3, 5, 7)))
    pad = draw(st.one_of(st.sampled_from(("same", "valid")), _ints(0, 3)))
    lengths = [k + draw(_ints(0, 3)) for _ in range(2)]
    fields = dict(C=draw(_ints(1, 4)), O=draw(_ints(1, 4)), K=k, P=pad, bias=draw(st.booleans()))
    return _variant(variants.FactorizedConv, fields, lengths, _batch(draw))


@st.composite
def _transposed(draw):
    case = draw(conv_transpose_cases(dims=2))
    fields = {name: value for name, value in case.layer.fields().items() if name != "dims"}
    return _variant(variants.TransposedConv, fields, list(case.input_shape[2:]), case.input_shape[0])


@st.composite
def _conv3d(draw):
    fields, lengths = draw(_conv_config(3))
    return _variant(variants.Conv3d, {**fields, "bias": draw(st.booleans())}, lengths, _batch(draw), dims=3)


@st.composite
def _space_to_depth(draw):
    r = draw(_ints(1, 3))
    lengths = [r * draw(_ints(1, 3)), r * draw(_ints(1, 3))]
    return _variant(variants.SpaceToDepth, dict(C=draw(_ints(1, 3)), r=r), lengths, _batch(draw))


@st.composite
def _depth_to_space(draw):
    r = draw(_ints(1, 3))
    lengths = [draw(_ints(1, 4)), draw(_ints(1, 4))]
    return _variant(variants.DepthToSpace, dict(C=r * r * draw(_ints(1, 3)), r=r), lengths, _batch(draw))


def _small_image(draw, least=1):
    return [least + draw(_ints(0, 5)), least + draw(_ints(0, 5))]


@st.composite
def _fire(draw):
    fields = dict(C=draw(_ints(1, 8)), s=draw(_ints(1, 4)), e=draw(_ints(1, 4)), bn=draw(st.booleans()))
    return _variant(blocks.FireModule, fields, _small_image(draw), _batch(draw))


@st.composite
def _squeeze_excitation(draw):
    r = draw(_ints(1, 4))
    return _variant(blocks.SqueezeExcitation, dict(C=r * draw(_ints(1, 4)), r=r), _small_image(draw), _batch(draw))


def _block_kernel(draw, odd=False):
    k = draw(st.sampled_from((1, 3, 5))) if odd else draw(_ints(1, 5))
    return k, max(1, k - 2 * ((k - 1) // 2))  # the input its (K-1)//2 padding needs


@st.composite
def _mobilenet_v1(draw):
    k, least = _block_kernel(draw)
    fields = dict(C=draw(_ints(1, 6)), O=draw(_ints(1, 6)), S=draw(_ints(1, 2)), K=k)
    return _variant(blocks.MobileNetV1Block, fields, _small_image(draw, least), _batch(draw))


@st.composite
def _inverted_residual(draw):
    k, least = _block_kernel(draw, odd=True)  # an even kernel changes the size, so the residual cannot add
    c = draw(_ints(1, 6))
    o = draw(st.one_of(st.just(c), _ints(1, 6)))  # C = O at stride 1 exercises the residual
    fields = dict(C=c, O=o, t=draw(_ints(1, 3)), S=draw(_ints(1, 2)), K=k)
    return _variant(blocks.InvertedResidual, fields, _small_image(draw, least), _batch(draw))


@st.composite
def _inception(draw):
    fields = dict(C=draw(_ints(1, 4)), O=draw(_ints(1, 4)), form=draw(st.sampled_from(("5x5", "3x3", "asymmetric"))))
    return _variant(blocks.InceptionBlock, fields, _small_image(draw), _batch(draw))


# -- efficient blocks (convcost.efficient) -----------------------------------------------------


@st.composite
def _ghost(draw):
    fields = dict(C=draw(_ints(1, 4)), O=draw(_ints(1, 6)), K=draw(st.sampled_from((1, 3))), s=draw(_ints(2, 3)),
                  d=draw(st.sampled_from((1, 3))), S=draw(_ints(1, 2)))
    return _variant(efficient.GhostModule, fields, _small_image(draw), _batch(draw))


@st.composite
def _mixconv(draw):
    kernels = tuple(draw(st.lists(st.sampled_from((1, 3, 5)), min_size=1, max_size=3)))
    fields = dict(C=len(kernels) + draw(_ints(0, 4)), kernels=kernels, S=draw(_ints(1, 2)))
    return _variant(efficient.MixConv, fields, _small_image(draw), _batch(draw))


@st.composite
def _octave(draw):
    stride = draw(_ints(1, 2))
    fields = dict(C=draw(_ints(2, 6)), O=draw(_ints(2, 6)), K=draw(st.sampled_from((1, 3))),
                  alpha=draw(st.sampled_from((0.5, 0.25, 0.75))), S=stride)
    if not all(0 < int(fields["alpha"] * fields[x]) < fields[x] for x in ("C", "O")):
        fields["alpha"] = 0.5
    unit = 2 * stride
    return _variant(efficient.OctaveConv, fields, [unit * draw(_ints(1, 3)), unit * draw(_ints(1, 3))], _batch(draw))


@st.composite
def _deformable(draw):
    g, og = draw(_ints(1, 2)), draw(_ints(1, 2))
    k, s, pad, d = draw(_ints(1, 3)), draw(_ints(1, 2)), draw(_ints(0, 1)), draw(_ints(1, 2))
    fields = dict(C=g * og * draw(_ints(1, 2)), O=g * draw(_ints(1, 3)), K=k, S=s, P=pad, D=d, G=g, offset_groups=og,
                  modulated=draw(st.booleans()))
    lengths = [max(1, d * (k - 1) + 1 - 2 * pad) + draw(_ints(0, 3)) for _ in range(2)]
    return _variant(efficient.DeformableConv, fields, lengths, _batch(draw))


@st.composite
def _condconv(draw):
    fields, lengths = draw(_conv_config(2, dilation=False))
    k = fields["K"] if isinstance(fields["K"], int) else fields["K"][0]
    pad = draw(_ints(0, 1))
    fields = dict(C=fields["C"], O=fields["O"], G=fields["G"], K=k, S=draw(_ints(1, 2)), P=pad,
                  experts=draw(_ints(1, 4)))
    lengths = [max(1, k - 2 * pad) + draw(_ints(0, 3)) for _ in range(2)]
    return _variant(efficient.CondConv, fields, lengths, _batch(draw))


@st.composite
def _involution(draw):
    r, gc, s = draw(_ints(1, 2)), draw(_ints(1, 3)), draw(_ints(1, 2))
    fields = dict(C=r * gc * draw(_ints(1, 2)), K=draw(st.sampled_from((1, 3, 5))), S=s, r=r, group_channels=gc)
    return _variant(efficient.Involution, fields, [s * draw(_ints(1, 4)), s * draw(_ints(1, 4))], _batch(draw))


@st.composite
def _repvgg(draw):
    g = draw(_ints(1, 2))
    c = g * draw(_ints(1, 3))
    o = draw(st.one_of(st.just(c), st.just(g * draw(_ints(1, 3)))))  # C = O at stride 1 adds the identity
    fields = dict(C=c, O=o, K=draw(st.sampled_from((1, 3))), S=draw(_ints(1, 2)), G=g, deploy=draw(st.booleans()))
    return _variant(efficient.RepVGGBlock, fields, _small_image(draw), _batch(draw))


@st.composite
def _shiftconv(draw):
    fields = dict(C=draw(_ints(1, 12)), O=draw(_ints(1, 4)), S=draw(_ints(1, 2)))
    return _variant(efficient.ShiftConv, fields, _small_image(draw), _batch(draw))


@st.composite
def _bsconv(draw):
    k, pad = draw(_ints(1, 3)), draw(_ints(0, 1))
    fields = dict(C=draw(_ints(1, 4)), O=draw(_ints(1, 4)), K=k, S=draw(_ints(1, 2)), P=pad)
    return _variant(efficient.BSConvU, fields, [max(1, k - 2 * pad) + draw(_ints(0, 3)) for _ in range(2)],
                    _batch(draw))


@st.composite
def _partial(draw):
    n_div = draw(_ints(2, 4))
    fields = dict(C=n_div * draw(_ints(1, 2)) + draw(_ints(0, n_div - 1)), n_div=n_div, K=draw(st.sampled_from((1, 3))))
    return _variant(efficient.PartialConv, fields, _small_image(draw), _batch(draw))


@st.composite
def _convnext(draw):
    fields = dict(C=draw(_ints(1, 4)), K=draw(st.sampled_from((1, 3, 7))), expansion=draw(_ints(1, 4)))
    return _variant(efficient.ConvNeXtBlock, fields, _small_image(draw), _batch(draw))


#: a strategy factory for every named variant of :data:`convcost.VARIANTS`
VARIANT_CASES = {
    variants.StandardConv: lambda: _grouped(variants.StandardConv),
    variants.PointwiseConv: _pointwise,
    variants.DepthwiseConv: _depthwise,
    variants.SeparableConv: lambda: _ungrouped(variants.SeparableConv),
    variants.GroupedConv: lambda: _grouped(variants.GroupedConv),
    variants.ShuffleGroupedConv: lambda: _grouped(variants.ShuffleGroupedConv),
    variants.DilatedConv: lambda: _ungrouped(variants.DilatedConv),
    variants.AsymmetricConv: _asymmetric,
    variants.FactorizedConv: _factorized,
    variants.TransposedConv: _transposed,
    variants.Conv3d: _conv3d,
    variants.SpaceToDepth: _space_to_depth,
    variants.DepthToSpace: _depth_to_space,
    blocks.FireModule: _fire,
    blocks.SqueezeExcitation: _squeeze_excitation,
    blocks.MobileNetV1Block: _mobilenet_v1,
    blocks.InvertedResidual: _inverted_residual,
    blocks.InceptionBlock: _inception,
    efficient.GhostModule: _ghost,
    efficient.MixConv: _mixconv,
    efficient.OctaveConv: _octave,
    efficient.DeformableConv: _deformable,
    efficient.CondConv: _condconv,
    efficient.Involution: _involution,
    efficient.RepVGGBlock: _repvgg,
    efficient.ShiftConv: _shiftconv,
    efficient.BSConvU: _bsconv,
    efficient.PartialConv: _partial,
    efficient.ConvNeXtBlock: _convnext,
}


# -- compositions -----------------------------------------------------------------


@st.composite
def composition_cases(draw, max_steps: int = 4):
    """Sequentials of convs, norms, activations, shuffles, concat/add/mul branches, residuals,
    ``When`` and a pooled ``Flatten`` + ``Linear`` head (which makes a following batch norm 1-D)."""
    c = draw(_ints(1, 4))
    shape_in = (_batch(draw), c, draw(_ints(1, 5)), draw(_ints(1, 5)))
    parts = {}
    for i in range(draw(_ints(1, max_steps))):
        step = draw(st.sampled_from(("conv", "bn", "act", "shuffle", "concat", "add", "mul", "residual", "projected",
                                     "when")))
        o = draw(_ints(1, 4))
        k = draw(st.sampled_from((1, 3)))
        same = lambda c_in, c_out, k=k: p.Conv(c_in, c_out, k, P=k // 2)  # noqa: E731 - keeps the size
        if step == "conv":
            layer, c = same(c, o), o
        elif step == "bn":
            layer = p.BatchNorm(c)
        elif step == "act":
            layer = p.Activation(draw(st.sampled_from(p.ACTIVATIONS)))
        elif step == "shuffle":
            layer = p.ChannelShuffle(draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0])))
        elif step == "concat":
            o2 = draw(_ints(1, 4))
            layer, c = Parallel(left=same(c, o), right=Sequential(p.Conv(c, o2, 1), p.Activation("relu"))), o + o2
        elif step == "add":
            layer, c = Parallel(same(c, o), p.Conv(c, o, 1, bias=False), merge="add"), o
        elif step == "mul":
            gate = Sequential(pool=p.AdaptiveAvgPool(1), fc=p.Conv(c, c, 1), act=p.Activation("sigmoid"))
            layer = Parallel(identity=p.Identity(), gate=gate, merge="mul")
        elif step == "residual":
            layer = Residual(Sequential(conv=same(c, c), bn=p.BatchNorm(c)), when=draw(st.booleans()))
        elif step == "projected":
            layer, c = Residual(same(c, o), shortcut=p.Conv(c, o, 1, bias=False)), o
        else:
            layer = When(draw(st.booleans()), p.Conv(c, c, 1))
        parts[f"{step}{i}"] = layer
    if draw(st.booleans()):
        o = draw(_ints(1, 5))
        parts["head"] = Sequential(pool=p.AdaptiveAvgPool(1), flatten=p.Flatten(), fc=p.Linear(c, o))
        if draw(st.booleans()):
            parts["head_bn"] = p.BatchNorm(o)
    return Case(Sequential(**parts), shape_in)


# -- any layer -----------------------------------------------------------------


def inputs(layer: Layer, sizes=None):
    """Cases of one fixed ``layer`` on inputs whose free sizes (``N, H, W`` ...) are drawn.

    The layer's default input says which sizes are free; inputs convcost
    rejects (a kernel wider than the image ...) are filtered out.
    """
    sizes = sizes if sizes is not None else _ints(1, 16)
    shape = layer.default_input()
    free = sorted(set().union(*(sympy.sympify(x).free_symbols for x in shape)), key=str)

    def bind(values):
        mapping = dict(zip(free, values))
        return Case(layer, tuple(int(sympy.sympify(x).subs(mapping)) for x in shape))

    return st.tuples(*(sizes for _ in free)).map(bind).filter(_accepted)


def _accepted(case: Case) -> bool:
    try:
        case.layer.cost(case.input_shape)
    except ConvcostError:
        return False
    return True


def cases(spec_or_class, **fixed):
    """The strategy for a primitive or variant class, or for a fixed layer on drawn inputs.

    >>> from convcost import SeparableConv
    >>> from convcost.primitives import Conv
    >>> from hypothesis import find
    >>> type(find(cases(SeparableConv), lambda case: True).layer).__name__
    'SeparableConv'
    >>> find(cases(Conv(C=3, O=8, K=3)), lambda case: True)     # the smallest input it accepts
    Case(layer=Conv(C=3, O=8, K=3), input_shape=(1, 3, 3, 3))
    """
    if isinstance(spec_or_class, Layer):
        return inputs(spec_or_class, **fixed)
    factory = (PRIMITIVE_CASES.get(spec_or_class) or RECURRENT_CASES.get(spec_or_class)
               or VARIANT_CASES.get(spec_or_class))
    if factory is None:
        name = getattr(spec_or_class, "__name__", repr(spec_or_class))
        raise ConvcostError(
            f"cases: no strategy for {name}; pass a layer instance to fuzz its input size, e.g. cases({name}(...))"
        )
    if fixed:
        raise ConvcostError(f"cases: fields {', '.join(fixed)} apply to a layer instance, not to the class strategy")
    return factory()


# -- the check -----------------------------------------------------------------


def assert_matches_torch(spec_or_class, input_shape=None, /, parts: bool = True, **fields):
    """Assert that convcost's params, MACs and output shape equal PyTorch's, exactly.

    ``spec_or_class`` is a layer, or a class built from ``fields`` (a variant's
    ``N, H, W`` give its input). With ``parts``, every named part that is a
    submodule of the built module is checked too, on the input convcost says
    it receives. Returns PyTorch's measurement of the whole layer.

    ``spec_or_class`` may also be your own ``torch.nn.Module``: then convcost's reading of it
    (:func:`convcost.torch.profile` on ``input_shape``) is checked against PyTorch's own counts
    (``numel`` and ``FlopCounterMode`` on meta tensors):

    >>> import torch.nn as nn
    >>> assert_matches_torch(nn.Sequential(nn.Conv2d(16, 32, 3), nn.ReLU()), (1, 16, 32, 32)).macs
    4147200
    """
    if _is_torch_module(spec_or_class):
        return _module_matches_torch(spec_or_class, input_shape, fields)
    from convcost.torch import measure, to_torch

    if isinstance(spec_or_class, type):
        layer = spec_or_class(**fields)
    elif not isinstance(spec_or_class, Layer):
        raise ConvcostError(f"assert_matches_torch: {spec_or_class!r} is neither a convcost layer or class nor a "
                            "torch.nn.Module; give one of them (a module with its input shape)")
    elif fields:
        raise ConvcostError(f"assert_matches_torch: fields {', '.join(fields)} need a class, got "
                            f"the layer {spec_or_class!r}")
    else:
        layer = spec_or_class
    shape = tuple(input_shape) if input_shape is not None else layer.default_input()
    predicted = layer.cost(shape)
    module = to_torch(layer, shape, device="meta")
    measured = measure(module, _concrete(shape, layer))
    problems = _compare(predicted, measured, "")
    if parts:
        problems += _compare_parts(predicted, module, "")
    if problems:
        raise AssertionError(f"{layer!r} on input {shape}: convcost and PyTorch disagree:\n  " + "\n  ".join(problems))
    return measured


def _is_torch_module(x) -> bool:
    torch = sys.modules.get("torch")  # a module of the user's means torch is imported: never import it here
    return torch is not None and isinstance(x, torch.nn.Module)


def _module_matches_torch(module, input_shape, fields):
    """A user's module: convcost's reading of it (its report's totals and last output) against PyTorch's."""
    from convcost.torch import measure, profile

    if fields:
        raise ConvcostError(f"assert_matches_torch: fields {', '.join(fields)} build a convcost class; a torch module "
                            "is checked as it is, on an input shape")
    if input_shape is None:
        raise ConvcostError(f"assert_matches_torch: give the input shape of {type(module).__name__}, e.g. "
                            "assert_matches_torch(module, (1, 3, 32, 32))")
    report = profile(module, input_shape)
    if not report.exact:
        raise AssertionError(f"{type(module).__name__} on input {input_shape}: convcost cannot count "
                             + ", ".join(u.op for u in report.unsupported if u.macs))
    measured = measure(module, input_shape)
    ours = {"params": _number(report.total["params"]), "macs": _number(report.total["macs"])}
    theirs = {"params": measured.params, "macs": measured.macs}
    problems = [f"total: {key} convcost={ours[key]} pytorch={theirs[key]}" for key in ours if ours[key] != theirs[key]]
    if problems:
        raise AssertionError(f"{type(module).__name__} on input {input_shape}: convcost and PyTorch disagree:\n  "
                             + "\n  ".join(problems))
    return measured


def _concrete(shape, layer) -> tuple:
    try:
        return tuple(int(x) for x in shape)
    except TypeError:
        raise ConvcostError(f"{layer!r}: input shape {shape} has free symbols; give a concrete input") from None


def _number(value):
    value = sympy.sympify(value)
    return int(value) if value.is_Integer else value


def _compare(predicted, measured, where: str) -> list:
    ours = {
        "params": _number(predicted.params),
        "macs": _number(predicted.macs),
        "output_shape": tuple(_number(x) for x in predicted.output_shape),
    }
    theirs = {"params": measured.params, "macs": measured.macs, "output_shape": measured.output_shape}
    return [
        f"{where or 'total'}: {key} convcost={ours[key]} pytorch={theirs[key]}"
        for key in ours
        if ours[key] != theirs[key]
    ]


def _compare_parts(cost, module, prefix: str) -> list:
    from convcost.torch import measure

    problems = []
    for name, part in cost.parts:
        path = f"{prefix}.{name}" if prefix else name
        if part.spec.several_inputs:  # several inputs (a sum, a deformable conv): checked within the whole
            continue
        try:
            sub = module.get_submodule(path)
        except AttributeError:  # no module of its own
            continue
        problems += _compare(part, measure(sub, tuple(int(x) for x in part.input_shape)), path)
        problems += _compare_parts(part, module, path)
    return problems
