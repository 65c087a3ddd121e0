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
convcost.errors.ConvcostError: Conv(O=8, K=3, G=2): bind the free symbols C before building a module (e.g.
.replace(C=...))
"""

from __future__ import annotations

import contextlib
import dataclasses

import sympy
from torch import nn

from convcost.compose import Parallel, Residual, Sequential, When
from convcost.errors import ConvcostError
from convcost.layers import Layer, Merge
from convcost.torch.binding import BINDINGS
from convcost.validate import entry_point, kind_of, refuse
from convcost.variants import Variant

#: the most parameter elements to_torch allocates on a real device (1 GiB of float32); build on "meta" past it
MAX_ALLOCATED = 2**28


@entry_point
def to_torch(layer: Layer, input_shape=None, *, device=None) -> nn.Module:
    """The ``nn.Module`` that computes ``layer``.

    ``input_shape`` (optional) picks the rank-specific class where the spec
    does not say it: ``BatchNorm`` becomes ``BatchNorm1d/2d/3d`` for inputs of
    rank 2-3/4/5 (``BatchNorm2d`` without a shape). ``device="meta"`` builds
    the module without allocating its weights (cheap to measure).

    >>> from convcost.primitives import BatchNorm
    >>> to_torch(BatchNorm(C=4), (2, 4, 9))
    BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, ...track_running_stats=True)
    """
    if not isinstance(layer, (Layer, Merge)):
        raise ConvcostError(f"to_torch: {layer!r} is not a convcost layer")
    free = free_symbols(layer)
    if free:
        names = ", ".join(sorted(str(s) for s in free))
        first = sorted(map(str, free))[0]
        raise ConvcostError(f"{layer!r}: bind the free symbols {names} before building a module "
                            f"(e.g. .replace({first}=...))")
    if input_shape is not None and kind_of(input_shape) != "sequence":
        raise refuse("to_torch", "input_shape", input_shape, "None or a tuple of sizes")
    rank = len(input_shape) if input_shape is not None else None
    device = _device(device)
    if device is None or device.type != "meta":  # count on meta first: a hostile size must not allocate
        with _on("meta"):
            elements = sum(t.numel() for t in _built(layer, rank).parameters())
        if elements > MAX_ALLOCATED:
            raise ConvcostError(f"to_torch: {layer!r} has {elements:,} parameters, over the {MAX_ALLOCATED:,} "
                                "to_torch allocates; build it with device='meta'")
    with (_on(device) if device is not None else contextlib.nullcontext()):
        return _built(layer, rank)


def _device(device):
    import torch

    if device is None or isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise refuse("to_torch", "device", device, "None, a device name such as 'cpu' or 'meta', or a torch.device")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConvcostError(f"to_torch: device={device!r}: {str(exc).splitlines()[0]}") from None


def _built(layer, rank):
    try:
        return build(layer, rank)
    except (RuntimeError, ValueError, OverflowError, MemoryError) as exc:  # ConvcostError passes unchanged
        if isinstance(exc, ConvcostError):
            raise
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConvcostError(f"to_torch: PyTorch cannot build {layer!r}: {why}") from None


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
    if isinstance(layer, Variant):
        return free_symbols(layer.layers())
    found = set()
    for f in dataclasses.fields(layer):
        found |= _symbols_of(getattr(layer, f.name))
    return found


def _symbols_of(value) -> set:
    if isinstance(value, tuple):
        return set().union(*(_symbols_of(v) for v in value))
    if isinstance(value, (Layer, Merge)):  # a layer held in a field (an octave path, a Dynamic's parts)
        return free_symbols(value)
    return set(value.free_symbols) if isinstance(value, sympy.Basic) else set()


@contextlib.contextmanager
def _on(device):
    import torch

    with torch.device(device):
        yield


def as_int(value):
    """A bound field as PyTorch takes it: ints, tuples of ints, or a padding string."""
    if isinstance(value, tuple):
        return tuple(as_int(v) for v in value)
    if isinstance(value, (str, bool)):
        return value
    return int(value)


def rank_after(layer, rank):
    """Rank of the output: its binding's ``rank_after`` (``Flatten`` changes it, a composition follows its
    parts); a named variant's is its composition's."""
    if rank is None:
        return None
    binding = BINDINGS.get(type(layer))
    if binding is not None:
        return binding.rank_after(layer, rank)
    if isinstance(layer, Variant):
        return rank_after(layer.layers(), rank)
    return rank


def pool_size(value):
    """A pooling size as PyTorch's constructor takes it; pools keep what they are given, so a
    uniform tuple is passed as one value and the module prints as PyTorch's own default does."""
    value = as_int(value)
    return value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value


def build(layer, rank):
    """The module of ``layer`` for an input of ``rank`` (None: unknown), from its binding
    (:mod:`convcost.torch.bindings`); a named variant or block becomes the module of its composition."""
    binding = BINDINGS.get(type(layer))
    if binding is not None and binding.build is not None:
        return binding.build(layer, rank)
    if isinstance(layer, Variant):
        return build(layer.layers(), rank)
    raise ConvcostError(f"to_torch: no PyTorch module is known for {type(layer).__name__} ({layer!r})")
