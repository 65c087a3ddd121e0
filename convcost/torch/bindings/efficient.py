"""The torch side of the efficient blocks' primitives and compositions (:mod:`convcost.efficient`).

Modules ``torch.nn`` lacks are in :mod:`convcost.torch.modules_efficient`.

>>> import torch.nn as nn
>>> from convcost.torch import from_torch
>>> from_torch(nn.LayerNorm(96, eps=1e-6)), from_torch(nn.Upsample(scale_factor=2))
(LayerNorm(C=96), Upsample())
"""

from __future__ import annotations

from torch import nn

from convcost import primitives as p
from convcost.efficient import Dynamic, Octave
from convcost.efficient.octave import PATHS
from convcost.errors import ConvcostError
from convcost.torch import modules_efficient as m
from convcost.torch.binding import binds
from convcost.torch.build import as_int, build
from convcost.torch.registry import from_torch


@binds(p.Upsample, modules=(nn.Upsample,))
class UpsampleBinding:
    def read(module):
        factor = module.scale_factor
        factors = set(factor) if isinstance(factor, tuple) else {factor}
        if module.mode != "nearest" or module.size is not None or len(factors) != 1 or float(next(iter(factors))) % 1:
            raise ConvcostError(f"cannot read {module!r}: only nearest upsampling by one integer factor is counted")
        return p.Upsample(s=int(next(iter(factors))))

    def build(layer, rank):
        return nn.Upsample(scale_factor=as_int(layer.s), mode="nearest")


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


@binds(p.LayerNorm, modules=(nn.LayerNorm,))
class LayerNormBinding:
    def read(module):
        if len(module.normalized_shape) != 1 or (module.elementwise_affine and module.bias is None):
            raise ConvcostError(f"cannot read {module!r}: only a layer norm over the last axis, with its shift, is counted")
        return p.LayerNorm(C=module.normalized_shape[0], affine=module.elementwise_affine)

    def build(layer, rank):
        return nn.LayerNorm(as_int(layer.C), eps=1e-6, elementwise_affine=layer.affine)


@binds(p.LayerScale, modules=(m.LayerScale,))
class LayerScaleBinding:
    def read(module):
        return p.LayerScale(C=module.gamma.shape[0])

    def build(layer, rank):
        return m.LayerScale(as_int(layer.C))


@binds(p.ExpertConv, modules=(m.ExpertConv,))
class ExpertConvBinding:
    def read(module):
        o, c_per_group, k, _ = module.shape
        return p.ExpertConv(C=c_per_group * module.groups, O=o, K=k, S=module.stride, P=module.padding,
                            G=module.groups, experts=module.weight.shape[0])

    def build(layer, rank):
        return m.ExpertConv(as_int(layer.C), as_int(layer.O), as_int(layer.K), stride=as_int(layer.S),
                            padding=as_int(layer.P), groups=as_int(layer.G), experts=as_int(layer.experts))


@binds(p.InvolutionAggregate, modules=(m.InvolutionAggregate,))
class InvolutionAggregateBinding:
    def read(module):
        return p.InvolutionAggregate(C=module.channels, K=module.k, S=module.stride, group_channels=module.group_channels)

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
    def read(module):
        made, used = module.names
        return Dynamic((made, from_torch(getattr(module, made))), (used, from_torch(getattr(module, used))))

    def build(layer, rank):
        (made, generator), (used, op) = layer.generator, layer.op
        return m.Dynamic((made, build(generator, rank)), (used, build(op, rank)))


@binds(Octave, modules=(m.Octave,))
class OctaveBinding:
    def read(module):
        return Octave(low=module.low, **{name: from_torch(getattr(module, name)) for name in PATHS})

    def build(layer, rank):
        return m.Octave({name: build(getattr(layer, name), rank) for name in PATHS}, as_int(layer.low))
