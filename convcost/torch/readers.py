"""convcost's readers: the spec of every ``torch.nn`` module convcost knows, registered once each.

Arguments that do not change any count are not kept: ``padding_mode``
(the same number of padded positions), ``LeakyReLU``'s slope, ``ELU``'s alpha,
``GELU``'s approximation, ``BatchNorm``'s ``eps``/``momentum``, ``AvgPool``'s
``count_include_pad``/``divisor_override``, and ``Dropout`` (identity at
inference). A uniform per-axis tuple is read as one value (``(3, 3)`` as ``3``).

>>> import torch.nn as nn
>>> from_torch(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, groups=2))
ConvTranspose(C=64, O=32, K=4, S=2, P=1, G=2)
>>> from_torch(nn.MaxPool3d((1, 2, 2), ceil_mode=True))
MaxPool(K=(1, 2, 2), S=(1, 2, 2), ceil_mode=True, dims=3)
>>> from_torch(nn.Dropout(0.2))
Identity()
"""

from __future__ import annotations

from torch import nn

from convcost import primitives as p
from convcost.compose import Parallel, Residual, Sequential, When
from convcost.errors import ConvcostError
from convcost.torch import modules
from convcost.torch.build import ACTIVATIONS
from convcost.torch.registry import from_torch, register


def _axes(value):
    """A per-axis tuple as one value when every axis agrees."""
    if isinstance(value, (tuple, list)):
        value = tuple(value)
        return value[0] if len(set(value)) == 1 else value
    return value


def _dims(module) -> int:
    return len(module.kernel_size) if isinstance(module.kernel_size, tuple) else 1


@register(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def read_conv(m):
    return p.Conv(
        C=m.in_channels, O=m.out_channels, K=_axes(m.kernel_size), S=_axes(m.stride),
        P=m.padding if isinstance(m.padding, str) else _axes(m.padding),
        D=_axes(m.dilation), G=m.groups, bias=m.bias is not None, dims=len(m.kernel_size),
    )


@register(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
def read_conv_transpose(m):
    return p.ConvTranspose(
        C=m.in_channels, O=m.out_channels, K=_axes(m.kernel_size), S=_axes(m.stride), P=_axes(m.padding),
        output_padding=_axes(m.output_padding), D=_axes(m.dilation), G=m.groups, bias=m.bias is not None,
        dims=len(m.kernel_size),
    )


@register(nn.Linear)
def read_linear(m):
    return p.Linear(C=m.in_features, O=m.out_features, bias=m.bias is not None)


@register(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
def read_batch_norm(m):
    if m.affine and m.bias is None:  # torch 2.13's bias=False: a scale without a shift
        raise ConvcostError(f"cannot read {m!r}: batch norm with a scale but no shift (bias=False) has no convcost spec")
    return p.BatchNorm(C=m.num_features, affine=m.affine)


_KIND = {cls: kind for kind, cls in ACTIVATIONS.items()}


@register(*ACTIVATIONS.values())
def read_activation(m):
    return p.Activation(_KIND[type(m)])


_POOL_DIMS = {
    nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3,
    nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
    nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3,
}


@register(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
def read_max_pool(m):
    return p.MaxPool(
        K=_axes(m.kernel_size), S=_axes(m.stride), P=_axes(m.padding), D=_axes(m.dilation),
        ceil_mode=m.ceil_mode, dims=_POOL_DIMS[type(m)],
    )


@register(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
def read_avg_pool(m):
    return p.AvgPool(K=_axes(m.kernel_size), S=_axes(m.stride), P=_axes(m.padding), ceil_mode=m.ceil_mode, dims=_POOL_DIMS[type(m)])


def _output_size(m):
    size = m.output_size
    if size is None or (isinstance(size, tuple) and None in size):
        raise ConvcostError(f"cannot read {m!r}: an output size of None (keep the input size) has no fixed cost")
    return _axes(size)


@register(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
def read_adaptive_avg_pool(m):
    return p.AdaptiveAvgPool(_output_size(m), dims=_POOL_DIMS[type(m)])


@register(nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
def read_adaptive_max_pool(m):
    return p.AdaptiveMaxPool(_output_size(m), dims=_POOL_DIMS[type(m)])


@register(nn.PixelShuffle)
def read_pixel_shuffle(m):
    return p.PixelShuffle(m.upscale_factor)


@register(nn.PixelUnshuffle)
def read_pixel_unshuffle(m):
    return p.PixelUnshuffle(m.downscale_factor)


@register(nn.ChannelShuffle)
def read_channel_shuffle(m):
    return p.ChannelShuffle(m.groups)


@register(nn.Flatten)
def read_flatten(m):
    return p.Flatten(m.start_dim, m.end_dim)


@register(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
def read_identity(m):
    return p.Identity()


@register(modules.Narrow)
def read_narrow(m):
    return p.Narrow(m.dim, m.start, m.length)


# Containers: their parts are read through the same registry.


@register(nn.Sequential)
def read_sequential(m):
    if len(m) == 0:
        raise ConvcostError("cannot read an empty nn.Sequential")
    return Sequential(**{name: from_torch(child) for name, child in m.named_children()})


@register(modules.Parallel)
def read_parallel(m):
    return Parallel(**{name: from_torch(getattr(m, name)) for name in m.branch_names}, merge=m.merge)


@register(modules.Residual)
def read_residual(m):
    if not m.add:
        return Residual(from_torch(m.body), when=False)
    shortcut = None if isinstance(m.shortcut, nn.Identity) else from_torch(m.shortcut)
    return Residual(from_torch(m.body), shortcut)


@register(modules.When)
def read_when(m):
    return When(True, from_torch(m.layer)) if m.kept else When(False, p.Identity())


_MERGE = {"add": p.Add, "mul": p.Mul}


@register(modules.Merge)
def read_merge(m):
    return p.Concat(m.dim) if m.kind == "concat" else _MERGE[m.kind]()
