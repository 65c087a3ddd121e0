"""The torch side of the efficient blocks' primitives and compositions (:mod:`convcost.efficient`).

Modules ``torch.nn`` lacks are in :mod:`convcost.torch.modules_efficient`.

>>> import torch.nn as nn
>>> from convcost.torch import from_torch
>>> from_torch(nn.Upsample(scale_factor=2))
Interpolate(scale=2)
"""

from __future__ import annotations

import torch

from convcost import primitives as p
from convcost.arith import div
from convcost.efficient import Dynamic, Octave
from convcost.efficient.octave import PATHS
from convcost.shapes import numel
from convcost.torch import modules_efficient as m
from convcost.torch.binding import binds
from convcost.torch.build import as_int, build
from convcost.torch.layouts import like_input, view_layout
from convcost.torch.registry import from_torch


@binds(p.Shift, modules=(m.Shift,))
class ShiftBinding:
    def read(module):
        return p.Shift(K=module.k)

    def build(layer, rank):
        return m.Shift(as_int(layer.K))


@binds(p.Permute, modules=(m.Permute,))
class PermuteBinding:
    def read(module):
        return p.Permute(dims=module.dims)

    def build(layer, rank):
        return m.Permute(layer.dims)

    output_layout = view_layout(torch.permute, lambda layer: (layer.dims,))


@binds(p.LayerScale, modules=(m.LayerScale,))
class LayerScaleBinding:
    def read(module):
        return p.LayerScale(C=module.gamma.shape[0])

    def build(layer, rank):
        return m.LayerScale(as_int(layer.C))

    output_layout = like_input


@binds(p.ExpertConv, modules=(m.ExpertConv,))
class ExpertConvBinding:
    def read(module):
        o, c_per_group, k, _ = module.shape
        return p.ExpertConv(C=c_per_group * module.groups, O=o, K=k, S=module.stride, P=module.padding,
                            G=module.groups, experts=module.weight.shape[0])

    def build(layer, rank):
        return m.ExpertConv(as_int(layer.C), as_int(layer.O), as_int(layer.K), stride=as_int(layer.S),
                            padding=as_int(layer.P), groups=as_int(layer.G), experts=as_int(layer.experts))

    def torch_backward(c):
        """``FlopCounterMode`` counts its kernels' gradient as one convolution of ``G N`` groups (the batch folded
        into the channels), its weight gradient ``G N`` times over (see the binding of ``Conv``)."""
        if not (c.trainable or c.input_grads[1:2] != (False,)):
            return None
        spec = c.spec
        conv = numel(c.output_shape) * div(spec.C, spec.G) * spec.K**2
        return c.backward_macs + (spec.G * c.output_shape[0] - 1) * conv


@binds(p.InvolutionAggregate, modules=(m.InvolutionAggregate,))
class InvolutionAggregateBinding:
    def read(module):
        return p.InvolutionAggregate(C=module.channels, K=module.k, S=module.stride,
                                     group_channels=module.group_channels)

    def build(layer, rank):
        return m.InvolutionAggregate(as_int(layer.C), as_int(layer.K), stride=as_int(layer.S),
                                     group_channels=as_int(layer.group_channels))


@binds(p.DeformConv, modules=(m.DeformConv,))
class DeformConvBinding:
    def read(module):
        o, c_per_group, k, _ = module.weight.shape
        return p.DeformConv(C=c_per_group * module.groups, O=o, K=k, S=module.stride, P=module.padding,
                            D=module.dilation, G=module.groups, offset_groups=module.offset_groups,
                            modulated=module.modulated, bias=module.bias is not None)

    def build(layer, rank):
        return m.DeformConv(as_int(layer.C), as_int(layer.O), as_int(layer.K), stride=as_int(layer.S),
                            padding=as_int(layer.P), dilation=as_int(layer.D), groups=as_int(layer.G),
                            offset_groups=as_int(layer.offset_groups), modulated=layer.modulated, bias=layer.bias)


@binds(Dynamic, modules=(m.Dynamic,))
class DynamicBinding:
    read_through = True

    def read(module):
        made, used = module.names
        return Dynamic((made, from_torch(getattr(module, made))), (used, from_torch(getattr(module, used))))

    def build(layer, rank):
        (made, generator), (used, op) = layer.generator, layer.op
        return m.Dynamic((made, build(generator, rank)), (used, build(op, rank)))


@binds(Octave, modules=(m.Octave,))
class OctaveBinding:
    read_through = True

    def read(module):
        return Octave(low=module.low, **{name: from_torch(getattr(module, name)) for name in PATHS})

    def build(layer, rank):
        return m.Octave({name: build(getattr(layer, name), rank) for name in PATHS}, as_int(layer.low))
