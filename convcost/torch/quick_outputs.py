"""The output of a few frequent calls without a rule, from their operands' shapes and dtypes, not from running
them on meta tensors.

A call convcost has no rule for gets its output shape by running it alone on meta tensors
(:func:`convcost.torch.walker.Walk.unknown`). Indexing a meta tensor costs a tenth of a millisecond, integer
floor division and ``cumsum`` with a dtype a millisecond or more, ``torch.polar`` 25 milliseconds the first
time in a process (their meta kernels are torch's Python references), and a transformer's forward makes dozens
of them (``x[..., : d // 2]`` in every rotary embedding, the expert bookkeeping of a mixture of experts): more
than the forward ``FlopCounterMode`` runs. Each function here answers what the meta run would (the shape and
dtype of its output, as a :class:`~convcost.torch.rules.Tensor`: no meta tensor made, as a torch call from the
walker costs more than the arithmetic) for the plain cases of one call, and None for anything else, which then
runs on meta tensors as before. ``tests/test_profile_first_call.py`` checks every case against the meta run.

>>> import operator, torch
>>> from convcost.torch.events import Event
>>> from convcost.torch.rules import Tensor
>>> x = Tensor((2, 4, 8, 6))
>>> quick_output(Event("function", operator.getitem, (x, (Ellipsis, slice(None, 3))), {}, "")).shape
(2, 4, 8, 3)
>>> ids = Tensor((5,), dtype=torch.int64)
>>> quick_output(Event("function", operator.floordiv, (ids, 2), {}, "")).dtype
torch.int64
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F

from convcost.torch.events import METHOD, MODULE
from convcost.torch.ops import key
from convcost.torch.rules import Tensor, broadcast, broadcasts, dtype_of

_INTEGRAL_INDEX = (torch.int64, torch.int32)


def _meta(shape, dtype):
    """What the meta run's output tensor tells the walker (its shape and dtype), without making one: a torch call
    from the walker costs more than the arithmetic (the reading's mode sees it)."""
    return Tensor(tuple(shape), dtype=dtype)


def _stand_in(shape, dtype):
    """A meta tensor of ``shape`` and ``dtype``, for ``torch.result_type`` (type promotion)."""
    return torch.empty(shape, dtype=dtype, device="meta")


def _broadcast_shapes(*shapes):
    """``torch.broadcast_shapes`` of plain int shapes, in Python (torch's runs its reference implementation), or
    None where they do not broadcast."""
    out = broadcast(shapes)
    return out if all(broadcasts(shape, out) for shape in shapes) else None


def _index(args, kwargs):
    """``x[key]``: basic indexing (ints, slices of ints, None, one Ellipsis), or one integer tensor among full
    slices (``x[idx]``, ``x[:, idx]``)."""
    if len(args) != 2 or kwargs or not isinstance(args[0], Tensor):
        return None
    source, keys = args
    keys = keys if type(keys) is tuple else (keys,)
    shape = source.shape
    if not all(type(s) is int for s in shape):
        return None
    tensors = [k for k in keys if isinstance(k, Tensor)]
    if tensors:
        return _gathered(source, shape, keys, tensors)
    consumed = sum(1 for k in keys if type(k) in (int, slice))
    ellipses = sum(1 for k in keys if k is Ellipsis)
    if ellipses > 1 or consumed > len(shape):
        return None
    out, dim = [], 0
    for k in keys:
        if k is None:
            out.append(1)
        elif k is Ellipsis:
            skip = len(shape) - consumed
            out.extend(shape[dim:dim + skip])
            dim += skip
        elif type(k) is int:
            if not -shape[dim] <= k < shape[dim]:
                return None  # IndexError: said by the meta run
            dim += 1
        elif type(k) is slice:
            if not all(v is None or type(v) is int for v in (k.start, k.stop, k.step)) or (k.step or 1) <= 0:
                return None
            out.append(len(range(*k.indices(shape[dim]))))
            dim += 1
        else:
            return None
    out.extend(shape[dim:])
    return _meta(tuple(out), dtype_of(source))


def _gathered(source, shape, keys, tensors):
    """One integer tensor among full slices (and at most one Ellipsis): that axis replaced by the index's shape."""
    if len(tensors) != 1 or dtype_of(tensors[0]) not in _INTEGRAL_INDEX:
        return None
    if not all(isinstance(k, Tensor) or k is Ellipsis or k == slice(None) for k in keys):
        return None
    at = next(i for i, k in enumerate(keys) if isinstance(k, Tensor))
    if Ellipsis in keys[:at] or keys.count(Ellipsis) > 1 or len(keys) - (Ellipsis in keys) > len(shape):
        return None
    index = tensors[0].shape
    return _meta((*shape[:at], *index, *shape[at + 1:]), dtype_of(source))


def _broadcast(args, kwargs):
    """An element-wise operation of tensors and numbers whose dtype is torch's type promotion of its operands
    (floor division, remainder): the broadcast shape, the promoted dtype."""
    if len(args) != 2 or kwargs:
        return None
    metas = []
    for a in args:
        if isinstance(a, Tensor):
            if not all(type(s) is int for s in a.shape):
                return None
            metas.append(_stand_in(a.shape, dtype_of(a)))
        elif type(a) in (int, float, bool):
            metas.append(a)
        else:
            return None
    if not any(isinstance(m, torch.Tensor) for m in metas):
        return None
    shape = _broadcast_shapes(*(tuple(m.shape) for m in metas if isinstance(m, torch.Tensor)))
    if shape is None:  # shapes that do not broadcast: said by the meta run
        return None
    try:
        dtype = torch.result_type(*metas)
    except RuntimeError:
        return None
    if (dtype == torch.bool) or (not dtype.is_floating_point and any(type(m) is float for m in metas)):
        return None
    return _meta(shape, dtype)


def _scan(args, kwargs):
    """``cumsum`` and ``cumprod`` along one axis: the operand's shape; the dtype asked, else the operand's (an
    integer or boolean one summed as int64)."""
    if not args or not isinstance(args[0], Tensor) or len(args) > 2 or set(kwargs) - {"dim", "dtype"}:
        return None
    source = args[0]
    dim = args[1] if len(args) == 2 else kwargs.get("dim")
    if type(dim) is not int or not -max(len(source.shape), 1) <= dim < max(len(source.shape), 1):
        return None
    dtype = kwargs.get("dtype")
    if dtype is None:
        dtype = dtype_of(source)
        dtype = dtype if dtype.is_floating_point or dtype.is_complex else torch.int64
    elif not isinstance(dtype, torch.dtype):
        return None
    return _meta(source.shape, dtype)


def _embedding(args, kwargs):
    """``F.embedding(ids, weight)`` without max_norm: the ids' shape and one row of the weight each."""
    if len(args) != 2 or not isinstance(args[0], Tensor) or not isinstance(args[1], Tensor):
        return None
    ids, weight = args
    if kwargs.get("max_norm") is not None or len(weight.shape) != 2 or dtype_of(ids) not in _INTEGRAL_INDEX:
        return None
    return _meta((*ids.shape, weight.shape[1]), dtype_of(weight))


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _polar(args, kwargs):
    """``torch.polar(abs, angle)`` (a rotary embedding's frequencies): their broadcast shape, complex."""
    if len(args) != 2 or kwargs or not all(isinstance(a, Tensor) for a in args):
        return None
    dtypes = {dtype_of(a) for a in args}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _COMPLEX:
        return None
    shape = _broadcast_shapes(args[0].shape, args[1].shape)
    return None if shape is None else _meta(shape, _COMPLEX[dtypes.pop()])


def _compare(args, kwargs):
    """A comparison of a tensor with a tensor or a number (``ids == pad``, ``x > 0``): the broadcast shape, boolean
    (complex operands left to the meta run, which refuses an ordering of them; a number first too: ``torch.gt``
    takes a tensor first)."""
    if len(args) != 2 or kwargs or not isinstance(args[0], Tensor):
        return None
    shapes = []
    for a in args:
        if isinstance(a, Tensor):
            if not all(type(s) is int for s in a.shape) or dtype_of(a).is_complex:
                return None
            shapes.append(a.shape)
        elif type(a) not in (int, float, bool):
            return None
    shape = _broadcast_shapes(*shapes)
    return None if shape is None else _meta(shape, torch.bool)  # (shapes that do not broadcast: said by the meta run)


#: the devices a call's ``device=`` may name for :func:`_like` (the reading's own; another is left to the meta run,
#: which says whether PyTorch has it)
_HERE = frozenset({"cpu", "meta"})


def _like(args, kwargs):
    """``torch.zeros_like(x)``, ``ones_like``, ``empty_like``, ``full_like(x, v)``: ``x``'s shape, in the dtype asked
    or ``x``'s; ``device=x.device`` (the CPU) as often given."""
    if not args or not isinstance(args[0], Tensor) or set(kwargs) - {"dtype", "device"} or len(args) > 2:
        return None
    if len(args) == 2 and type(args[1]) not in (int, float, bool):
        return None
    dtype, device = kwargs.get("dtype"), kwargs.get("device")
    if dtype is not None and not isinstance(dtype, torch.dtype):
        return None
    if device is not None and (str(device) if isinstance(device, (str, torch.device)) else None) not in _HERE:
        return None
    if not all(type(s) is int for s in args[0].shape):
        return None
    return _meta(args[0].shape, dtype or dtype_of(args[0]))


def _filled(args, kwargs):
    """``x.masked_fill(mask, v)``: ``x`` itself, where the boolean mask broadcasts to it and ``v`` is a number (or a
    0-d tensor) that does not need a wider dtype (a float into an integer tensor: left to the meta run)."""
    if len(args) != 3 or kwargs or not isinstance(args[0], Tensor) or not isinstance(args[1], Tensor):
        return None
    source, mask, value = args
    dtype = dtype_of(source)
    if dtype_of(mask) is not torch.bool or not all(type(s) is int for s in (*source.shape, *mask.shape)):
        return None
    if isinstance(value, Tensor):
        if value.shape != () or dtype_of(value) != dtype:
            return None
    elif type(value) not in (int, float, bool) or type(value) is float and not dtype.is_floating_point:
        return None
    if _broadcast_shapes(source.shape, mask.shape) != tuple(source.shape):
        return None
    return _meta(source.shape, dtype)


def _where(args, kwargs):
    """``torch.where(cond, x, y)``: the broadcast shape of all three, torch's type promotion of ``x`` and ``y``."""
    if len(args) != 3 or kwargs or not isinstance(args[0], Tensor) or dtype_of(args[0]) is not torch.bool:
        return None
    metas = []
    for a in args[1:]:
        if isinstance(a, Tensor):
            metas.append(_stand_in(a.shape, dtype_of(a)))
        elif type(a) in (int, float, bool):
            metas.append(a)
        else:
            return None
    tensors = [m.shape for m in metas if isinstance(m, torch.Tensor)]
    if not tensors or not all(type(s) is int for shape in (args[0].shape, *tensors) for s in shape):
        return None
    shape = _broadcast_shapes(args[0].shape, *(tuple(t) for t in tensors))
    try:
        dtype = torch.result_type(*metas)
    except RuntimeError:
        return None
    return None if shape is None else _meta(shape, dtype)


def _one_hot(args, kwargs):
    """``F.one_hot(ids, num_classes=n)`` with ``n`` given: the ids' shape and ``n``, int64."""
    a = dict(zip(("tensor", "num_classes"), args), **kwargs)
    ids, n = a.get("tensor"), a.get("num_classes")
    if set(a) - {"tensor", "num_classes"} or len(args) > 2 or not isinstance(ids, Tensor) or type(n) is not int \
            or n <= 0 or dtype_of(ids) is not torch.int64 or not all(type(s) is int for s in ids.shape):
        return None
    return _meta((*ids.shape, n), torch.int64)


def _plain(t) -> bool:
    return isinstance(t, Tensor) and all(type(s) is int for s in t.shape)


def _dim(args, kwargs, at, default=-1):
    """The axis argument at position ``at`` (or ``dim=``), as a non-negative axis of ``args[0]``, or None."""
    dim = args[at] if len(args) > at else kwargs.get("dim", default)
    rank = max(len(args[0].shape), 1)
    return dim % rank if type(dim) is int and -rank <= dim < rank else None


def _topk(args, kwargs):
    """``torch.topk(x, k, dim)``: values in ``x``'s dtype and int64 indices, ``k`` along the axis."""
    if not args or not _plain(args[0]) or len(args) > 3 or set(kwargs) - {"k", "dim", "largest", "sorted"}:
        return None
    source, k = args[0], args[1] if len(args) > 1 else kwargs.get("k")
    dtype = dtype_of(source)
    dim = _dim(args, kwargs, 2)
    if type(k) is not int or dim is None or dtype.is_complex or dtype is torch.bool or not source.shape:
        return None
    if not 0 <= k <= source.shape[dim]:
        return None
    shape = (*source.shape[:dim], k, *source.shape[dim + 1:])
    return torch.return_types.topk((_meta(shape, dtype), _meta(shape, torch.int64)))


def _sort(args, kwargs):
    """``torch.sort(x, dim, descending)``: values in ``x``'s dtype and int64 indices, ``x``'s shape."""
    if not args or not _plain(args[0]) or len(args) > 3 or set(kwargs) - {"dim", "descending", "stable"}:
        return None
    if len(args) == 3 or len(args) == 2 and type(args[1]) is not int:
        return None  # (sort(x, stable, dim=...) and other spellings: the meta run)
    dtype = dtype_of(args[0])
    if _dim(args, kwargs, 1) is None or dtype.is_complex:
        return None
    return torch.return_types.sort((_meta(args[0].shape, dtype), _meta(args[0].shape, torch.int64)))


def _extreme(pair):
    """The quick output of ``torch.max`` or ``torch.min`` (``pair``: ``torch.return_types.max`` or ``min``):
    ``x.max()`` (the 0-d extreme of a tensor holding something), and ``x.max(dim, keepdim)`` (values in ``x``'s
    dtype and int64 indices, the axis dropped or kept at 1, where it holds something); against another tensor (the
    element-wise maximum), or of a bool or complex tensor, left to the meta run."""

    def output(args, kwargs):
        if not args or not _plain(args[0]) or len(args) > 3 or set(kwargs) - {"dim", "keepdim"}:
            return None
        source, dtype = args[0], dtype_of(args[0])
        if dtype.is_complex or dtype is torch.bool:
            return None
        if len(args) == 1 and not kwargs:
            return _meta((), dtype) if all(source.shape) else None
        keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        dim = _dim(args, kwargs, 1, default=None)
        if dim is None or type(keepdim) is not bool or source.shape and not source.shape[dim]:
            return None
        shape = source.shape[:dim] + ((1,) if keepdim else ()) + source.shape[dim + 1:] if source.shape else ()
        return pair((_meta(shape, dtype), _meta(shape, torch.int64)))

    return output


def _histc(args, kwargs):
    """``torch.histc(x, bins, min, max)`` of a floating tensor: ``bins`` counts in its dtype."""
    a = dict(zip(("input", "bins", "min", "max"), args), **kwargs)
    if len(args) > 4 or set(a) - {"input", "bins", "min", "max"} or not _plain(a["input"]):
        return None
    bins, dtype = a.get("bins", 100), dtype_of(a["input"])
    if type(bins) is not int or bins <= 0 or not dtype.is_floating_point or not all(
            type(a.get(m, 0)) in (int, float) for m in ("min", "max")) or a.get("min", 0) > a.get("max", 0):
        return None
    return _meta((bins,), dtype)


def _repeat(args, kwargs):
    """``x.repeat(*sizes)``: each axis times its size (sizes that add leading axes too)."""
    if kwargs or len(args) < 2 or not _plain(args[0]):
        return None
    sizes = args[1] if len(args) == 2 and type(args[1]) in (tuple, list) else args[1:]
    shape = args[0].shape
    if not all(type(n) is int and n >= 0 for n in sizes) or len(sizes) < len(shape):
        return None
    padded = (1,) * (len(sizes) - len(shape)) + tuple(shape)
    return _meta(tuple(a * n for a, n in zip(padded, sizes)), dtype_of(args[0]))


_REALS = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def _as_complex(args, kwargs):
    """``torch.view_as_complex(x)`` of a float32 or float64 ``(..., 2)`` tensor: its complex view, one axis fewer."""
    if len(args) != 1 or kwargs or not _plain(args[0]) or not args[0].shape or args[0].shape[-1] != 2:
        return None
    dtype = _COMPLEX.get(dtype_of(args[0]))
    return None if dtype is None else _meta(args[0].shape[:-1], dtype)


def _as_real(args, kwargs):
    """``torch.view_as_real(z)`` of a complex64 or complex128 tensor: its real view, a last axis of 2."""
    if len(args) != 1 or kwargs or not _plain(args[0]):
        return None
    dtype = _REALS.get(dtype_of(args[0]))
    return None if dtype is None else _meta((*args[0].shape, 2), dtype)


_QUICK = {
    torch.polar: _polar,
    operator.getitem: _index,
    key(METHOD, "__getitem__"): _index,
    torch.floor_divide: _broadcast,
    torch.remainder: _broadcast,
    torch.cumsum: _scan,
    torch.cumprod: _scan,
    F.embedding: _embedding,
    torch.zeros_like: _like,
    torch.ones_like: _like,
    torch.empty_like: _like,
    torch.full_like: _like,
    key(METHOD, "masked_fill"): _filled,
    torch.where: _where,
    F.one_hot: _one_hot,
    torch.topk: _topk,
    torch.sort: _sort,
    torch.histc: _histc,
    torch.max: _extreme(torch.return_types.max),
    key(METHOD, "max"): _extreme(torch.return_types.max),
    torch.min: _extreme(torch.return_types.min),
    key(METHOD, "min"): _extreme(torch.return_types.min),
    key(METHOD, "repeat"): _repeat,
    torch.view_as_complex: _as_complex,
    torch.view_as_real: _as_real,
}
_QUICK.update({key("function", f): _compare for f in (
    torch.eq, torch.ne, torch.lt, torch.le, torch.gt, torch.ge, torch.greater, torch.greater_equal, torch.less,
    torch.less_equal, torch.not_equal)})


def quick_output(event):
    """What running ``event``'s call alone on meta tensors would return (its output's shape and dtype, a
    :class:`~convcost.torch.rules.Tensor`; topk's and sort's a pair of them), for the cases above;
    None for any other call (a module, an operation in place), or any case they leave to the meta run."""
    if event.kind == MODULE or event.target in _IN_PLACE:
        return None
    name = event.target if event.kind == METHOD else ""
    if name.endswith("_") and not name.endswith("__") or name.startswith("__i"):
        return None
    found = _QUICK.get(key(event.kind, event.target))
    if found is _where and event.kind == METHOD:  # ``x.where(cond, y)``: another order of its operands
        return None
    return None if found is None else found(event.args, event.kwargs)


_IN_PLACE = frozenset({operator.ifloordiv, operator.imod})
