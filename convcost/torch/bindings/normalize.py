"""The torch side of :mod:`convcost.primitives.normalize` (group, instance and RMS norm) and of layer norm
(:class:`convcost.primitives.LayerNorm`), as modules and as the functions they call.

>>> import torch.nn as nn
>>> from convcost.torch import from_torch
>>> from_torch(nn.GroupNorm(4, 32))
Normalization(kind='group', C=32, groups=4)
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.errors import ConvcostError
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.conventions import per_element
from convcost.torch.layouts import keeps_channels_last
from convcost.torch.rules import Emit, Refused, Tensor, bind_arguments, reads, tensor_arg

INSTANCE_NORM = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}


def _affine(weight, bias, features):
    return dict(C=features, affine=weight is not None, bias=bias is not None or weight is None)


def _layer_norm(args, kwargs):
    a = bind_arguments(("input", "normalized_shape", "weight", "bias", "eps"), {"weight": None, "bias": None},
                       args, kwargs)
    x = tensor_arg(a["input"], "the input")
    size = a["normalized_shape"]
    features = math.prod(size) if isinstance(size, (tuple, list)) else int(size)
    axes = len(size) if isinstance(size, (tuple, list)) else 1
    return Emit(p.LayerNorm(**_affine(a["weight"], a["bias"], features), axes=axes), [x.shape],
                reads(a["weight"], a["bias"]))


def _rms_norm(args, kwargs):
    a = bind_arguments(("input", "normalized_shape", "weight", "eps"), {"weight": None}, args, kwargs)
    size = a["normalized_shape"]
    features = math.prod(size) if isinstance(size, (tuple, list)) else int(size)
    return Emit(p.Normalization(kind="rms", C=features, affine=a["weight"] is not None, bias=False),
                [tensor_arg(a["input"], "the input").shape], reads(a["weight"]))


def _group_channels(shape, groups, weight) -> None:
    """PyTorch's own refusals of a group norm (``native_group_norm``'s checks, in its order): channels that
    ``groups`` does not divide, a weight of another size than the channels."""
    if len(shape) < 2 or type(shape[1]) is not int or type(groups) is not int:
        return
    if groups <= 0 or shape[1] % groups:
        raise Refused(f"PyTorch rejects group norm of input {tuple(shape)}: Expected number of channels in input to "
                      f"be divisible by num_groups, but got input of shape {list(shape)} and num_groups={groups}")
    if weight is not None and type(weight) is int and weight != shape[1]:
        raise Refused(f"PyTorch rejects group norm of input {tuple(shape)}: Expected weight to be a vector of size "
                      f"equal to the number of channels in input, but got weight of shape [{weight}] and input of "
                      f"shape {list(shape)}")


def _module_inputs(m, args, kwargs):
    """The one tensor of a normalisation module's call; a group norm's channels checked as PyTorch checks
    them (the module's ``num_channels`` matters only through its weight)."""
    if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
        return None
    if isinstance(m, nn.GroupNorm):
        _group_channels(args[0].shape, m.num_groups, m.num_channels if m.affine else None)
    return [args[0]]


def _group_norm(args, kwargs):
    a = bind_arguments(("input", "num_groups", "weight", "bias", "eps"), {"weight": None, "bias": None}, args, kwargs)
    x = tensor_arg(a["input"], "the input")
    weight = a["weight"]
    _group_channels(x.shape, int(a["num_groups"]),
                    weight.shape[0] if isinstance(weight, Tensor) and len(weight.shape) == 1 else None)
    affine = _affine(a["weight"], a["bias"], x.shape[1])
    return Emit(p.Normalization(kind="group", groups=int(a["num_groups"]), **affine),
                [x.shape],
                reads(a["weight"], a["bias"]))


def _instance_norm(args, kwargs):
    a = bind_arguments(("input", "running_mean", "running_var", "weight", "bias"),
                       {"running_mean": None, "running_var": None, "weight": None, "bias": None}, args, kwargs)
    x = tensor_arg(a["input"], "the input")
    return Emit(p.Normalization(kind="instance", **_affine(a["weight"], a["bias"], x.shape[1])), [x.shape],
                reads(a["weight"], a["bias"]))


@binds(p.LayerNorm, modules=(nn.LayerNorm,))
class LayerNormBinding:
    def private_dtype(spec, shapes, operand, weight, buffers):
        return weight or operand  # the statistics take the parameters' dtype where they differ (autocast)

    def read(m):
        return p.LayerNorm(C=math.prod(m.normalized_shape), affine=m.elementwise_affine,
                           bias=m.bias is not None or not m.elementwise_affine, axes=len(m.normalized_shape))

    def build(layer, rank):
        if layer.axes != 1:
            raise ConvcostError(f"to_torch: {layer!r} normalises {layer.axes} axes whose sizes it does not hold; "
                                f"build nn.LayerNorm(normalized_shape) for it")
        # eps changes no count
        return nn.LayerNorm(as_int(layer.C), elementwise_affine=layer.affine, bias=layer.bias)

    functions = {F.layer_norm: _layer_norm}
    conventions = {"ptflops": per_element(2, 1)}
    passes_weights = True
    output_layout = keeps_channels_last


@binds(p.Normalization, modules=(nn.GroupNorm, nn.RMSNorm, *INSTANCE_NORM.values()))
class NormalizationBinding:
    def private_dtype(spec, shapes, operand, weight, buffers):
        return weight or operand  # the statistics take the parameters' dtype where they differ (autocast)

    def read(m):
        if isinstance(m, nn.RMSNorm):
            return p.Normalization(kind="rms", C=math.prod(m.normalized_shape), affine=m.weight is not None, bias=False)
        if isinstance(m, nn.GroupNorm):
            return p.Normalization(kind="group", C=m.num_channels, affine=m.affine, groups=m.num_groups)
        return p.Normalization(kind="instance", C=m.num_features, affine=m.affine)

    def build(layer, rank):
        c = as_int(layer.C)
        if layer.kind == "group":
            return nn.GroupNorm(as_int(layer.groups), c, affine=layer.affine)
        if layer.kind == "instance":
            return INSTANCE_NORM.get(rank or 4, nn.InstanceNorm2d)(c, affine=layer.affine)
        return nn.RMSNorm(c, elementwise_affine=layer.affine)

    functions = {F.group_norm: _group_norm, F.instance_norm: _instance_norm, F.rms_norm: _rms_norm}
    module_inputs = _module_inputs
    conventions = {"ptflops": per_element(2, 1)}
    passes_weights = True
    output_layout = keeps_channels_last
