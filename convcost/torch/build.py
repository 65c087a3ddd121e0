"""``to_torch``: the exact ``nn.Module`` of a convcost layer.

Primitives become the matching ``torch.nn`` module; ``Sequential`` becomes
``nn.Sequential`` with the part names; ``Parallel``, ``Residual`` and ``When``
become the small modules of :mod:`convcost.torch.modules`; a named variant
becomes the module of its ``.layers()``, so its submodules carry the names of
its parts (``depthwise``, ``pointwise`` ...). Every symbol must be bound
first: a module has concrete sizes.

>>> from convcost import SeparableConv
>>> to_torch(SeparableConv(C=8, O=16, K=3, P=1))
Sequential(
  (depthwise): Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=8)
  (pointwise): Conv2d(8, 16, kernel_size=(1, 1), stride=(1, 1))
)
>>> from convcost.primitives import Conv
>>> from convcost.symbols import C
>>> to_torch(Conv(C=C, O=8, K=3, G=2))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: Conv(O=8, K=3, G=2): bind the free symbols C before building a module (e.g. .replace(C=...))
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections import OrderedDict

import sympy
from torch import nn

from convcost import primitives as p
from convcost.compose import Parallel, Residual, Sequential, When
from convcost.errors import ConvcostError
from convcost.layers import Layer, Merge
from convcost.torch import modules

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
BATCH_NORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}  # by input rank
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
ADAPTIVE_AVG_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
ADAPTIVE_MAX_POOL = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}
ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


def to_torch(layer: Layer, input_shape=None, *, device=None) -> nn.Module:
    """The ``nn.Module`` that computes ``layer``.

    ``input_shape`` (optional) picks the rank-specific class where the spec
    does not say it: ``BatchNorm`` becomes ``BatchNorm1d/2d/3d`` for inputs of
    rank 2-3/4/5 (``BatchNorm2d`` without a shape). ``device="meta"`` builds
    the module without allocating its weights (cheap to measure).

    >>> to_torch(p.BatchNorm(C=4), (2, 4, 9))
    BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, ...track_running_stats=True)
    """
    if not isinstance(layer, (Layer, Merge)):
        raise ConvcostError(f"to_torch: {layer!r} is not a convcost layer")
    free = free_symbols(layer)
    if free:
        names = ", ".join(sorted(str(s) for s in free))
        raise ConvcostError(f"{layer!r}: bind the free symbols {names} before building a module (e.g. .replace({sorted(map(str, free))[0]}=...))")
    rank = len(input_shape) if input_shape is not None else None
    with (_on(device) if device is not None else contextlib.nullcontext()):
        return _build(layer, rank)


def free_symbols(layer) -> set:
    """Symbols a layer's module would depend on (a variant's input size ``N, H, W`` does not count).

    >>> from convcost import StandardConv
    >>> sorted(map(str, free_symbols(StandardConv.general())))
    ['C', 'D', 'G', 'K', 'O', 'P', 'S']
    """
    if isinstance(layer, (Sequential, Parallel)):
        return set().union(*(free_symbols(part) for _, part in layer.parts))
    if isinstance(layer, Residual):
        found = free_symbols(layer.body) | _symbols_of(layer.when)
        return found | (free_symbols(layer.shortcut) if layer.shortcut is not None else set())
    if isinstance(layer, When):
        return _symbols_of(layer.condition) | free_symbols(layer.layer)
    if hasattr(layer, "layers"):
        return free_symbols(layer.layers())
    found = set()
    for f in dataclasses.fields(layer):
        found |= _symbols_of(getattr(layer, f.name))
    return found


def _symbols_of(value) -> set:
    if isinstance(value, tuple):
        return set().union(*(_symbols_of(v) for v in value))
    return set(value.free_symbols) if isinstance(value, sympy.Basic) else set()


@contextlib.contextmanager
def _on(device):
    import torch

    with torch.device(device):
        yield


def _int(value):
    """A bound field as PyTorch takes it: ints, tuples of ints, or a padding string."""
    if isinstance(value, tuple):
        return tuple(_int(v) for v in value)
    if isinstance(value, (str, bool)):
        return value
    return int(value)


def _rank_after(layer, rank):
    """Rank of the output: only ``Flatten`` changes it (followed through compositions)."""
    if rank is None:
        return None
    if isinstance(layer, p.Flatten):
        return len(layer.reshape((1,) * rank))
    if isinstance(layer, Sequential):
        for _, part in layer.parts:
            rank = _rank_after(part, rank)
        return rank
    if isinstance(layer, Parallel):
        return _rank_after(layer.parts[0][1], rank)
    if isinstance(layer, Residual):
        return _rank_after(layer.body, rank)
    if isinstance(layer, When):
        return _rank_after(layer.layer, rank) if bool(layer.condition) else rank
    if hasattr(layer, "layers"):
        return _rank_after(layer.layers(), rank)
    return rank


def _pool(value):
    """A pooling size as PyTorch's constructor takes it; pools keep what they are given, so a
    uniform tuple is passed as one value and the module prints as PyTorch's own default does."""
    value = _int(value)
    return value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value


@functools.singledispatch
def _build(layer, rank):
    if hasattr(layer, "layers"):  # a named variant or block: the module of its composition
        return _build(layer.layers(), rank)
    raise ConvcostError(f"to_torch: no PyTorch module is known for {type(layer).__name__} ({layer!r})")


@_build.register
def _(layer: p.Conv, rank):
    return CONV[layer.dims](
        _int(layer.C), _int(layer.O), _int(layer.K), stride=_int(layer.S), padding=_int(layer.P),
        dilation=_int(layer.D), groups=_int(layer.G), bias=layer.bias,
    )


@_build.register
def _(layer: p.ConvTranspose, rank):
    return CONV_TRANSPOSE[layer.dims](
        _int(layer.C), _int(layer.O), _int(layer.K), stride=_int(layer.S), padding=_int(layer.P),
        output_padding=_int(layer.output_padding), groups=_int(layer.G), bias=layer.bias, dilation=_int(layer.D),
    )


@_build.register
def _(layer: p.Linear, rank):
    return nn.Linear(_int(layer.C), _int(layer.O), bias=layer.bias)


@_build.register
def _(layer: p.BatchNorm, rank):
    if rank is not None and rank not in BATCH_NORM:
        raise ConvcostError(f"{layer!r}: batch norm takes inputs of rank 2 to 5, got rank {rank}")
    return BATCH_NORM[rank or 4](_int(layer.C), affine=layer.affine)


@_build.register
def _(layer: p.Activation, rank):
    return ACTIVATIONS[layer.kind]()


@_build.register
def _(layer: p.MaxPool, rank):
    if type(layer) is p.AvgPool:
        return AVG_POOL[layer.dims](_pool(layer.K), _pool(layer.S), _pool(layer.P), ceil_mode=layer.ceil_mode)
    return MAX_POOL[layer.dims](_pool(layer.K), _pool(layer.S), _pool(layer.P), _pool(layer.D), ceil_mode=layer.ceil_mode)


@_build.register
def _(layer: p.AdaptiveAvgPool, rank):
    table = ADAPTIVE_MAX_POOL if type(layer) is p.AdaptiveMaxPool else ADAPTIVE_AVG_POOL
    return table[layer.dims](_pool(layer.output_size))


@_build.register
def _(layer: p.PixelShuffle, rank):
    return nn.PixelShuffle(_int(layer.r))


@_build.register
def _(layer: p.PixelUnshuffle, rank):
    return nn.PixelUnshuffle(_int(layer.r))


@_build.register
def _(layer: p.ChannelShuffle, rank):
    return nn.ChannelShuffle(_int(layer.G))


@_build.register
def _(layer: p.Flatten, rank):
    return nn.Flatten(layer.start_dim, layer.end_dim)


@_build.register
def _(layer: p.Narrow, rank):
    return modules.Narrow(layer.dim, _int(layer.start), _int(layer.length))


@_build.register
def _(layer: p.Identity, rank):
    return nn.Identity()


@_build.register
def _(layer: p.Add, rank):
    return modules.Merge("add")


@_build.register
def _(layer: p.Mul, rank):
    return modules.Merge("mul")


@_build.register
def _(layer: p.Concat, rank):
    return modules.Merge("concat", layer.dim)


@_build.register
def _(layer: Sequential, rank):
    built = OrderedDict()
    for name, part in layer.parts:
        built[name] = _build(part, rank)
        rank = _rank_after(part, rank)
    try:
        return nn.Sequential(built)
    except KeyError as exc:
        raise ConvcostError(f"{layer!r}: a part name cannot name a submodule: {exc.args[0]}") from None


@_build.register
def _(layer: Parallel, rank):
    return modules.Parallel({name: _build(part, rank) for name, part in layer.parts}, merge=layer.merge)


@_build.register
def _(layer: Residual, rank):
    shortcut = _build(layer.shortcut, rank) if layer.shortcut is not None else None
    return modules.Residual(_build(layer.body, rank), shortcut, add=bool(layer.when))


@_build.register
def _(layer: When, rank):
    return modules.When(_build(layer.layer, rank) if bool(layer.condition) else None)
