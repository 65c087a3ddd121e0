"""The torch side of :mod:`convcost.primitives.conv`: ``nn.Conv*d``, ``nn.ConvTranspose*d``, ``F.conv*``.

>>> import torch.nn as nn
>>> from convcost.torch import from_torch
>>> from_torch(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, groups=2))
ConvTranspose(C=64, O=32, K=4, S=2, P=1, G=2)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.conventions import MACS_EVERYWHERE, thop_conv, torchinfo_conv
from convcost.torch.layouts import keeps_channels_last
from convcost.torch.rules import Emit, axes, batched, bind_arguments, reads

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def read_axes(value):
    """A module's per-axis tuple as one value when every axis agrees (``(3, 3)`` as ``3``)."""
    if isinstance(value, (tuple, list)):
        value = tuple(value)
        return value[0] if len(set(value)) == 1 else value
    return value


def _conv_call(dims):
    def rule(args, kwargs):
        a = bind_arguments(("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                           {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}, args, kwargs)
        x, w, b = a["input"], a["weight"], a["bias"]
        groups = int(a["groups"])
        shape, output = batched(x.shape, dims + 2)
        spec = p.Conv(C=int(w.shape[1]) * groups, O=int(w.shape[0]), K=axes(w.shape[2:]), S=axes(a["stride"]),
                      P=axes(a["padding"]), D=axes(a["dilation"]), G=groups, bias=b is not None, dims=dims)
        return Emit(spec, [shape], reads(w, b), output)
    return rule


def _conv_transpose_call(dims):
    def rule(args, kwargs):
        a = bind_arguments(("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
                           {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1},
                           args, kwargs)
        x, w, b = a["input"], a["weight"], a["bias"]
        groups = int(a["groups"])
        shape, output = batched(x.shape, dims + 2)
        spec = p.ConvTranspose(C=int(w.shape[0]), O=int(w.shape[1]) * groups, K=axes(w.shape[2:]),
                               S=axes(a["stride"]), P=axes(a["padding"]), output_padding=axes(a["output_padding"]),
                               D=axes(a["dilation"]), G=groups, bias=b is not None, dims=dims)
        return Emit(spec, [shape], reads(w, b), output)
    return rule


_CONV_CONVENTIONS = {**MACS_EVERYWHERE, "torchinfo": torchinfo_conv, "thop": thop_conv}


def grouped_backward(c):
    """``FlopCounterMode``'s backward MACs of a (transposed) convolution: torch 2.13 counts the weight gradient
    of a grouped one ``G`` times over (upstream PR 183405 divides it by the groups).

    >>> depthwise = p.Conv(C=4, O=4, K=3, G=4, bias=False).cost((1, 4, 10, 10), input_grad=False)
    >>> depthwise.backward_macs, grouped_backward(depthwise)
    (2304, 9216)
    """
    return c.backward_macs + ((c.spec.G - 1) * c.macs if c.trainable else 0)


def _kernel_copies(spec, reads, grads):
    # convolution_backward is one formula for input, weight and bias: the step keeps both copies it was given
    return tuple(t for t in reads if t.dim() > 1)


@binds(p.Conv, modules=(nn.Conv1d, nn.Conv2d, nn.Conv3d))
class ConvBinding:
    def read(m):
        return p.Conv(
            C=m.in_channels, O=m.out_channels, K=read_axes(m.kernel_size), S=read_axes(m.stride),
            P=m.padding if isinstance(m.padding, str) else read_axes(m.padding),
            D=read_axes(m.dilation), G=m.groups, bias=m.bias is not None, dims=len(m.kernel_size),
        )

    def build(layer, rank):
        return CONV[layer.dims](
            as_int(layer.C), as_int(layer.O), as_int(layer.K), stride=as_int(layer.S), padding=as_int(layer.P),
            dilation=as_int(layer.D), groups=as_int(layer.G), bias=layer.bias,
        )

    functions = {F.conv1d: _conv_call(1), F.conv2d: _conv_call(2), F.conv3d: _conv_call(3)}
    conventions = _CONV_CONVENTIONS
    passes_weights = True
    output_layout = keeps_channels_last
    torch_backward = grouped_backward

    def unbatched_rank(spec):
        return spec.dims + 1

    def autocast_op(spec):
        return f"conv{spec.dims}d"

    weight_copies = _kernel_copies


@binds(p.ConvTranspose, modules=(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
class ConvTransposeBinding:
    def read(m):
        return p.ConvTranspose(
            C=m.in_channels, O=m.out_channels, K=read_axes(m.kernel_size), S=read_axes(m.stride),
            P=read_axes(m.padding), output_padding=read_axes(m.output_padding), D=read_axes(m.dilation),
            G=m.groups, bias=m.bias is not None, dims=len(m.kernel_size),
        )

    def build(layer, rank):
        return CONV_TRANSPOSE[layer.dims](
            as_int(layer.C), as_int(layer.O), as_int(layer.K), stride=as_int(layer.S), padding=as_int(layer.P),
            output_padding=as_int(layer.output_padding), groups=as_int(layer.G), bias=layer.bias,
            dilation=as_int(layer.D),
        )

    functions = {F.conv_transpose1d: _conv_transpose_call(1), F.conv_transpose2d: _conv_transpose_call(2),
                 F.conv_transpose3d: _conv_transpose_call(3)}
    conventions = _CONV_CONVENTIONS
    passes_weights = True
    output_layout = keeps_channels_last
    torch_backward = grouped_backward

    def unbatched_rank(spec):
        return spec.dims + 1

    def autocast_op(spec):
        return f"conv_transpose{spec.dims}d.input"

    weight_copies = _kernel_copies
