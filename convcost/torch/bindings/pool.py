"""The torch side of :mod:`convcost.primitives.pool`: max, average and adaptive pools in 1-3 D.

``AvgPool``'s ``count_include_pad`` and ``divisor_override`` change no count and are not kept.
A pool that returns indices is read as the same pool (the indices cost no arithmetic); the call returns both.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.errors import ConvcostError
from convcost.torch.binding import binds
from convcost.torch.bindings.conv import read_axes
from convcost.torch.build import pool_size
from convcost.torch.conventions import in_numel, out_numel, thop_adaptive, times
from convcost.torch.layouts import keeps_channels_last
from convcost.torch.rules import WITH_INDICES, Emit, NoRule, axes, bind_arguments

MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
ADAPTIVE_AVG_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
ADAPTIVE_MAX_POOL = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}
_DIMS = {cls: dims for table in (MAX_POOL, AVG_POOL, ADAPTIVE_AVG_POOL, ADAPTIVE_MAX_POOL)
         for dims, cls in table.items()}

_MAX_ARGS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_MAX_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False}
_AVG_ARGS = ("input", "kernel_size", "stride", "padding", "ceil_mode")
_AVG_DEFAULTS = {"stride": None, "padding": 0, "ceil_mode": False}


def _pool_call(cls, dims, names, defaults, indices=False):
    def rule(args, kwargs):
        a = bind_arguments(names, defaults, args, kwargs)
        output = WITH_INDICES if indices or a.get("return_indices") else None
        k = axes(a["kernel_size"])
        s = k if a["stride"] in (None, [], ()) else axes(a["stride"])
        fields = dict(K=k, S=s, P=axes(a["padding"]), ceil_mode=bool(a["ceil_mode"]), dims=dims)
        if cls is p.MaxPool:
            fields["D"] = axes(a["dilation"])
        return Emit(cls(**fields), [a["input"].shape], (), output)
    return rule


def _adaptive_call(cls, dims):
    def rule(args, kwargs):
        a = bind_arguments(("input", "output_size", "return_indices"), {"return_indices": False}, args, kwargs)
        size = a["output_size"]
        if size is None or (isinstance(size, (tuple, list)) and None in size):
            raise NoRule("adaptive pooling to a None size")
        output = WITH_INDICES if a["return_indices"] else None
        return Emit(cls(output_size=axes(size), dims=dims), [a["input"].shape], (), output)
    return rule


def _output_size(m):
    size = m.output_size
    if size is None or (isinstance(size, tuple) and None in size):
        raise ConvcostError(f"cannot read {m!r}: an output size of None (keep the input size) has no fixed cost")
    return read_axes(size)


_PTFLOPS = {"ptflops": in_numel, "ptflops/patched": in_numel}  # ptflops counts the input, and again via F.*pool


@binds(p.MaxPool, modules=tuple(MAX_POOL.values()))
class MaxPoolBinding:
    def autocast_op(spec):
        return "max_pool3d" if spec.dims == 3 else None  # the 3-D pools are float32 operators under autocast

    def read(m):
        return p.MaxPool(K=read_axes(m.kernel_size), S=read_axes(m.stride), P=read_axes(m.padding),
                         D=read_axes(m.dilation), ceil_mode=m.ceil_mode, dims=_DIMS[type(m)])

    def build(layer, rank):
        return MAX_POOL[layer.dims](pool_size(layer.K), pool_size(layer.S), pool_size(layer.P), pool_size(layer.D),
                                    ceil_mode=layer.ceil_mode)

    functions = {F.max_pool1d: _pool_call(p.MaxPool, 1, _MAX_ARGS, _MAX_DEFAULTS),
                 F.max_pool2d: _pool_call(p.MaxPool, 2, _MAX_ARGS, _MAX_DEFAULTS),
                 F.max_pool3d: _pool_call(p.MaxPool, 3, _MAX_ARGS, _MAX_DEFAULTS),
                 F.max_pool1d_with_indices: _pool_call(p.MaxPool, 1, _MAX_ARGS, _MAX_DEFAULTS, indices=True),
                 F.max_pool2d_with_indices: _pool_call(p.MaxPool, 2, _MAX_ARGS, _MAX_DEFAULTS, indices=True),
                 F.max_pool3d_with_indices: _pool_call(p.MaxPool, 3, _MAX_ARGS, _MAX_DEFAULTS, indices=True)}
    conventions = _PTFLOPS
    output_layout = keeps_channels_last


@binds(p.AvgPool, modules=tuple(AVG_POOL.values()))
class AvgPoolBinding:
    def autocast_op(spec):
        return "avg_pool3d" if spec.dims == 3 else None  # the 3-D pools are float32 operators under autocast

    def read(m):
        return p.AvgPool(K=read_axes(m.kernel_size), S=read_axes(m.stride), P=read_axes(m.padding),
                         ceil_mode=m.ceil_mode, dims=_DIMS[type(m)])

    def build(layer, rank):
        return AVG_POOL[layer.dims](pool_size(layer.K), pool_size(layer.S), pool_size(layer.P),
                                    ceil_mode=layer.ceil_mode)

    functions = {F.avg_pool1d: _pool_call(p.AvgPool, 1, _AVG_ARGS, _AVG_DEFAULTS),
                 F.avg_pool2d: _pool_call(p.AvgPool, 2, _AVG_ARGS, _AVG_DEFAULTS),
                 F.avg_pool3d: _pool_call(p.AvgPool, 3, _AVG_ARGS, _AVG_DEFAULTS)}
    conventions = {**_PTFLOPS, "thop": times(2, out_numel)}
    output_layout = keeps_channels_last


@binds(p.AdaptiveAvgPool, modules=tuple(ADAPTIVE_AVG_POOL.values()))
class AdaptiveAvgPoolBinding:
    def autocast_op(spec):
        return "adaptive_avg_pool3d" if spec.dims == 3 else None  # the 3-D pools are float32 operators under autocast

    def read(m):
        return p.AdaptiveAvgPool(output_size=_output_size(m), dims=_DIMS[type(m)])

    def build(layer, rank):
        return ADAPTIVE_AVG_POOL[layer.dims](pool_size(layer.output_size))

    functions = {F.adaptive_avg_pool1d: _adaptive_call(p.AdaptiveAvgPool, 1),
                 F.adaptive_avg_pool2d: _adaptive_call(p.AdaptiveAvgPool, 2),
                 F.adaptive_avg_pool3d: _adaptive_call(p.AdaptiveAvgPool, 3)}
    conventions = {**_PTFLOPS, "fvcore": in_numel, "thop": thop_adaptive}


@binds(p.AdaptiveMaxPool, modules=tuple(ADAPTIVE_MAX_POOL.values()))
class AdaptiveMaxPoolBinding:
    def autocast_op(spec):
        return "adaptive_max_pool3d" if spec.dims == 3 else None  # the 3-D pools are float32 operators under autocast

    def read(m):
        return p.AdaptiveMaxPool(output_size=_output_size(m), dims=_DIMS[type(m)])

    def build(layer, rank):
        return ADAPTIVE_MAX_POOL[layer.dims](pool_size(layer.output_size))

    functions = {F.adaptive_max_pool1d: _adaptive_call(p.AdaptiveMaxPool, 1),
                 F.adaptive_max_pool2d: _adaptive_call(p.AdaptiveMaxPool, 2),
                 F.adaptive_max_pool3d: _adaptive_call(p.AdaptiveMaxPool, 3)}
    conventions = _PTFLOPS
