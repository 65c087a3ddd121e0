"""The torch side of :mod:`convcost.primitives.pad_upsample_reduce`: ``F.pad``, ``F.interpolate`` (and ``nn.Upsample``),
reductions (``mean``, ``sum``, ``amax``, ``amin``) and max unpooling.
``nn.Upsample`` and the padding modules are read by what they call.

>>> from convcost.torch.rules import Tensor
>>> _interpolate((Tensor((1, 3, 5, 5)),), {"scale_factor": 2.5, "mode": "bilinear"}).spec
Interpolate(size=12, mode='bilinear')
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.errors import ConvcostError
from convcost.torch.binding import binds
from convcost.torch.bindings.conv import read_axes
from convcost.torch.build import as_int
from convcost.torch.layouts import keeps_channels_last
from convcost.torch.rules import Emit, NoRule, Refused, bind_arguments, size_value, tensor_arg


def _pad(args, kwargs):
    a = bind_arguments(("input", "pad", "mode", "value"), {"mode": "constant", "value": None}, args, kwargs)
    pads = tuple(size_value(x) for x in a["pad"])
    if any(x < 0 for x in pads):
        raise NoRule("padding by a negative amount (a crop)")
    mode = a["mode"] or "constant"
    if mode not in p.PAD_MODES:
        raise NoRule(f"padding in mode {mode!r}")
    return Emit(p.Pad(P=pads, mode=mode), [tensor_arg(a["input"], "the input").shape])


def interpolated_size(shape, size, scale) -> tuple:
    """The spatial output size of ``F.interpolate`` (``size``, else ``floor(input x scale_factor)``)."""
    spatial = tuple(shape[2:])
    if size is not None:
        return tuple(size_value(s) for s in size) if isinstance(size, (tuple, list)) else \
            (size_value(size),) * len(spatial)
    if scale is None:
        raise NoRule("interpolation without a size or a scale factor")
    scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * len(spatial)
    if not all(type(n) is int for n in spatial):
        raise NoRule("interpolation of a symbolic size by a scale factor")
    return tuple(math.floor(float(n * s)) for n, s in zip(spatial, scales))


def _interpolate(args, kwargs):
    a = bind_arguments(("input", "size", "scale_factor", "mode"), {"size": None, "scale_factor": None,
                                                                   "mode": "nearest"}, args, kwargs)
    x = tensor_arg(a["input"], "the input")
    if len(x.shape) < 3:
        raise NoRule("interpolation of an input without spatial axes")
    size = interpolated_size(x.shape, a["size"], a["scale_factor"])
    return Emit(p.Interpolate(size=read_axes(size), mode=a["mode"]), [x.shape])


def _reduce(kind, default_dim):
    def rule(args, kwargs):
        aliases = {"axis": "dim", "keepdims": "keepdim"}  # NumPy's names, which PyTorch accepts too (ImageGPT)
        kwargs = {aliases.get(k, k): v for k, v in kwargs.items()}
        a = bind_arguments(("input", "dim", "keepdim"), {"dim": default_dim, "keepdim": False}, args, kwargs)
        x = tensor_arg(a["input"], "the input")
        dim = a["dim"]
        dims = () if dim is None else (int(dim),) if isinstance(dim, int) else tuple(int(d) for d in dim)
        return Emit(p.Reduce(dims=dims, keepdim=bool(a["keepdim"]), kind=kind), [x.shape],
                    dtype=reduced_dtype(kind, dtype_of(x), a.get("dtype")))
    return rule


def dtype_of(x):
    """A :class:`~convcost.torch.rules.Tensor`'s dtype where the reading knows it (its own, or its tensor's), else
    None (the floating one the reading leaves open)."""
    return x.dtype if x.dtype is not None else getattr(x.tensor, "dtype", None)


def reduced_dtype(kind, dtype, asked=None):
    """The dtype of a reduction's result, as PyTorch gives it: the ``dtype=`` asked for, else an integer or boolean
    input's ``sum`` in int64 (a count of a mask's set elements, which a loss divides by, is an int64 tensor autograd
    keeps), its ``amax``/``amin`` in its own dtype, and a floating or complex input's result in the input's dtype
    (``x.double().sum()`` is float64); None where the input's dtype is the floating one the reading leaves open.
    PyTorch refuses the ``mean`` of an integer or boolean tensor, and so does this (:class:`Refused`).

    >>> reduced_dtype("sum", torch.bool), reduced_dtype("sum", torch.int32), reduced_dtype("sum", None)
    (torch.int64, torch.int64, None)
    >>> reduced_dtype("sum", torch.bool, torch.float32), reduced_dtype("amax", torch.bool)
    (torch.float32, torch.bool)
    >>> reduced_dtype("amin", torch.int32), reduced_dtype("mean", torch.float64)
    (torch.int32, torch.float64)
    """
    if isinstance(asked, torch.dtype):
        return asked
    if not isinstance(dtype, torch.dtype) or dtype.is_floating_point or dtype.is_complex:
        return dtype if isinstance(dtype, torch.dtype) else None
    if kind == "sum":
        return torch.int64
    if kind == "mean":  # PyTorch's own words (2.13)
        raise Refused(f"PyTorch rejects mean of a {str(dtype).removeprefix('torch.')} tensor: mean(): could not "
                      "infer output dtype. Input dtype must be either a floating point or complex dtype. Got: "
                      f"{_TYPE_NAMES.get(dtype, str(dtype).removeprefix('torch.'))}")
    return dtype  # amax, amin: the largest or smallest element, in the input's dtype


#: the names PyTorch's messages give integer and boolean dtypes
_TYPE_NAMES = {torch.bool: "Bool", torch.uint8: "Byte", torch.int8: "Char", torch.int16: "Short", torch.int32: "Int",
               torch.int64: "Long"}


def _max_unpool(dims):
    def rule(args, kwargs):
        a = bind_arguments(("input", "indices", "kernel_size", "stride", "padding", "output_size"),
                           {"stride": None, "padding": 0, "output_size": None}, args, kwargs)
        x = tensor_arg(a["input"], "the input")
        return Emit(p.MaxUnpool(size=read_axes(unpooled_size(x.shape, dims, a["kernel_size"], a["stride"],
                                                             a["padding"], a["output_size"]))), [x.shape])
    return rule


def unpooled_size(shape, dims, kernel, stride, padding, output_size) -> tuple:
    """What ``F.max_unpool*d`` returns per spatial axis: ``output_size``, else ``(in - 1) S - 2 P + K``."""
    if output_size is not None:
        return tuple(int(s) for s in tuple(output_size)[-dims:])
    each = lambda v: tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * dims  # noqa: E731
    k, pad = each(kernel), each(padding)
    s = k if stride is None else each(stride)
    return tuple((n - 1) * si - 2 * pi + ki for n, ki, si, pi in zip(shape[-dims:], k, s, pad))


@binds(p.Pad)
class PadBinding:
    def autocast_op(spec):
        names = {"reflect": "reflection_pad", "replicate": "replication_pad"}
        axes = len(spec.P) // 2 if isinstance(spec.P, tuple) else 1
        return f"{names[spec.mode]}{axes}d" if spec.mode in names else None

    def build(layer, rank):
        pads = tuple(as_int(x) for x in layer.P) if isinstance(layer.P, tuple) else (as_int(layer.P),) * 2
        return Padding(pads, layer.mode)

    functions = {F.pad: _pad}
    output_layout = keeps_channels_last


@binds(p.Interpolate, modules=(nn.Upsample,))
class InterpolateBinding:
    def read(module):
        """``nn.Upsample`` by one integer factor on every axis; another (a size, a fractional factor, per-axis
        factors) is read by what it calls (``F.interpolate``, whose size the input decides)."""
        factor = module.scale_factor
        factors = set(factor) if isinstance(factor, tuple) else {factor}
        if module.size is not None or len(factors) != 1 or None in factors or float(next(iter(factors))) % 1:
            raise ConvcostError(f"cannot read {module!r} as one layer: only a single integer scale factor is")
        return p.Interpolate(scale=int(next(iter(factors))), mode=module.mode)

    def build(layer, rank):
        if layer.scale:
            return nn.Upsample(scale_factor=as_int(layer.scale), mode=layer.mode)
        return nn.Upsample(size=layer.size, mode=layer.mode)

    functions = {F.interpolate: _interpolate, F.upsample: _interpolate}
    output_layout = keeps_channels_last


class Reduction(nn.Module):
    """A reduction as a module (what :func:`convcost.torch.to_torch` builds for a Reduce): the torch function of
    its kind (``max``/``min`` over one axis return their values; ``any``/``all`` read the input as booleans).

    >>> import torch
    >>> Reduction("max", (1,), keepdim=False)(torch.tensor([[1.0, 3.0], [4.0, 2.0]]))
    tensor([3., 4.])
    """

    def __init__(self, kind: str, dims: tuple, keepdim: bool):
        super().__init__()
        self.kind, self.dims, self.keepdim = kind, tuple(dims), keepdim

    def forward(self, x):
        dims = self.dims or tuple(range(x.dim()))
        if self.kind in ("max", "min", "prod"):
            if not self.dims:  # over every axis: torch's full reduction (keepdim only reshapes it)
                out = getattr(torch, self.kind)(x)
                return out.reshape((1,) * x.dim()) if self.keepdim else out
            if len(self.dims) != 1:
                raise ConvcostError(f"torch.{self.kind} reduces one axis or all of them, not {self.dims}")
            out = getattr(torch, self.kind)(x, self.dims[0], keepdim=self.keepdim)
            return out if self.kind == "prod" else out.values
        if self.kind in ("any", "all"):
            return getattr(torch, self.kind)(x > 0, dim=dims, keepdim=self.keepdim)
        if self.kind == "norm":
            return torch.linalg.vector_norm(x, dim=dims, keepdim=self.keepdim)
        return getattr(torch, self.kind)(x, dim=dims, keepdim=self.keepdim)


class Padding(nn.Module):
    """``F.pad(x, P, mode)`` as a module (what :func:`convcost.torch.to_torch` builds for a Pad)."""

    def __init__(self, pads: tuple, mode: str = "constant"):
        super().__init__()
        self.pads, self.mode = tuple(pads), mode

    def forward(self, x):
        return F.pad(x, self.pads, mode=self.mode)

    def extra_repr(self) -> str:
        return f"pads={self.pads}, mode={self.mode!r}"


@binds(p.Reduce)
class ReduceBinding:
    def build(layer, rank):
        return Reduction(layer.kind, layer.dims, layer.keepdim)

    functions = {torch.mean: _reduce("mean", None), torch.sum: _reduce("sum", None),
                 torch.amax: _reduce("amax", ()), torch.amin: _reduce("amin", ())}
    methods = {"mean": _reduce("mean", None), "sum": _reduce("sum", None), "amax": _reduce("amax", ()),
               "amin": _reduce("amin", ())}



class Unpooled(nn.Module):
    """``F.max_unpool1d/2d/3d`` to the spec's output ``size``, each input plane scattered to the first positions of
    its output plane (a max pool's indices are where its maxima were; any valid indices cost the same): what
    :func:`convcost.torch.to_torch` builds for a ``MaxUnpool``, runnable on one tensor."""

    def __init__(self, size, dims: int):
        super().__init__()
        self.size, self.dims = size, dims  # one size for every axis, or one per axis, as the spec has it

    def forward(self, x):
        spatial = tuple(x.shape[x.dim() - self.dims:])
        size = self.size if isinstance(self.size, tuple) else (self.size,) * self.dims
        if any(n > m for n, m in zip(spatial, size)):
            raise ConvcostError(f"MaxUnpool: an input of {spatial} scatters into an output of {size}, not smaller")
        indices = torch.arange(math.prod(spatial), device=x.device).reshape(spatial).expand(x.shape).contiguous()
        unpool = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}[self.dims]
        # stride 1 and a window that makes the output exactly ``size`` (PyTorch checks output_size against them)
        window = tuple(m - n + 1 for n, m in zip(spatial, size))
        return unpool(x, indices, kernel_size=window, stride=1, output_size=size)

    def extra_repr(self) -> str:
        return f"size={self.size}"


@binds(p.MaxUnpool, modules=(Unpooled,))
class MaxUnpoolBinding:
    def read(module):
        return p.MaxUnpool(size=module.size)

    def build(layer, rank):
        size = tuple(as_int(n) for n in layer.size) if isinstance(layer.size, tuple) else as_int(layer.size)
        return Unpooled(size, rank - 2)

    functions = {F.max_unpool1d: _max_unpool(1), F.max_unpool2d: _max_unpool(2), F.max_unpool3d: _max_unpool(3)}
