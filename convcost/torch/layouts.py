"""How a tensor lies in its storage, in a training reading: its strides, carried as a meta tensor.

A view (a permute, a transpose, a slice, a chunk) shares its base's storage with other strides, and what
PyTorch does next depends on them: ``reshape`` and ``contiguous`` copy a view they cannot express, the
folding inside ``torch.matmul`` and ``F.linear`` copies an operand whose axes do not merge (and autograd
then keeps the copy), and the CPU's fused attention kernel needs unit strides on the last axis (else the
math path runs, with other saved tensors and other backward work). convcost does not re-derive strides:
it runs the view calls themselves on meta tensors (no data, no kernel), so they are PyTorch's own. Where a
strided input changes what a call keeps, or a call has no row of its own but holds no multiply-accumulates,
the call itself runs on meta tensors under ``saved_tensors_hooks`` (:func:`simulate`): PyTorch's own
derivative formulas say what autograd keeps, and the closed forms count the rest.

>>> import torch
>>> x = Tensor((2, 8, 6))
>>> out, base = run_view(torch.Tensor.transpose, (x, 1, 2), {})
>>> out.stride(), is_view(out, base)
((48, 1, 6), True)
>>> y = Tensor(out.shape, layout=layout_of(out))
>>> copied, base = run_view(torch.reshape, (y, (12, 8)), {})
>>> is_view(copied, base)            # (6, 8) over strides (1, 6) do not merge: reshape copies
False
"""

from __future__ import annotations

import sympy
import torch

from convcost.arith import total
from convcost.shapes import numel
from convcost.torch.binding import hooks_of
from convcost.torch.rules import Tensor
from convcost.torch.runtime.private import suggest_memory_format, torch_functions_off


def meta_of(t: Tensor):
    """``t`` as a meta tensor with its strides (contiguous unless it carries a layout); None when its shape
    cannot be made concrete. A symbolic size stands for a generic one: each symbol takes a size of its own
    (above 1), the same one every time, so that view-or-copy decisions are those of sizes in general."""
    if t.layout is not None:
        return t.layout
    real = t.tensor
    if isinstance(real, torch.Tensor) and not real.is_contiguous():  # a parameter's transposed view ...
        return torch.empty_strided(real.shape, real.stride(), device="meta", dtype=real.dtype)
    shape = [concrete(n) for n in t.shape]
    if None in shape:
        return None
    return torch.empty(shape, device="meta", dtype=t.dtype if isinstance(t.dtype, torch.dtype) else torch.float32)


#: the generic size each symbol stands for in a meta run (see :func:`meta_of`)
_GENERIC: dict = {}


def concrete(n):
    """``n`` as an int: itself, or a symbolic size with each symbol at its generic stand-in; None if that
    is not a positive integer."""
    if type(n) is int:
        return n
    if not isinstance(n, sympy.Basic):
        return None
    for symbol in sorted(n.free_symbols, key=str):
        _GENERIC.setdefault(symbol, 1009 + 2 * len(_GENERIC))
    value = n.subs(_GENERIC)
    return int(value) if value.is_Integer and value > 0 else None


def like(t: Tensor):
    """The layout of a new tensor made like ``t`` (``torch.empty_like``: an element-wise op's output)."""
    meta = meta_of(t) if t.layout is not None or _strided_real(t) else None
    return None if meta is None else layout_of(torch.empty_like(meta))


def layout_of(meta):
    """What a :class:`Tensor` carries of a meta result: None when it is contiguous (the default), else itself."""
    return None if meta.is_contiguous() else meta


def _as_meta(value):
    if isinstance(value, Tensor):
        meta = meta_of(value)
        if meta is None:
            raise _Symbolic
        return meta
    if isinstance(value, (tuple, list)):
        return type(value)(_as_meta(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_meta(v) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_as_meta(value.start), _as_meta(value.stop), _as_meta(value.step))
    if isinstance(value, sympy.Basic):  # a symbolic size passed to a view call
        n = concrete(value)
        if n is None:
            raise _Symbolic
        return n
    return value


class _Symbolic(Exception):
    pass


def run_view(function, args, kwargs):
    """``function(*args, **kwargs)`` on meta tensors standing for the :class:`Tensor` arguments:
    ``(result, base)``, ``base`` the meta tensor the first argument became; ``(None, None)`` when a shape is
    symbolic or PyTorch refuses the call. ``function`` is a torch function or a ``torch.Tensor`` method."""
    try:
        margs, mkwargs = _as_meta(tuple(args)), _as_meta(dict(kwargs or {}))
    except _Symbolic:
        return None, None
    try:
        with torch_functions_off():  # a shape reading's TorchFunctionMode must not see these calls
            return function(*margs, **mkwargs), (margs[0] if margs else None)
    except Exception:  # noqa: BLE001 - a call meta tensors cannot run: its layout is not known
        return None, None


def is_view(out, base) -> bool:
    """Whether meta result ``out`` shares the storage of ``base`` (a view, a detached alias, or ``base``)."""
    if not isinstance(out, torch.Tensor) or not isinstance(base, torch.Tensor):
        return False
    return _storage(out) == _storage(base)


def _storage(meta) -> int:
    """The identity of a meta tensor's storage (meta storages have no data pointer to compare)."""
    return meta.untyped_storage()._cdata


def last_stride_one(t: Tensor) -> bool:
    """Whether the last axis of ``t`` has unit stride (what the CPU's fused attention kernel needs)."""
    meta = meta_of(t)
    return meta is None or not meta.dim() or meta.stride(-1) == 1


# -- what a layer's output looks like ----------------------------------------------------------------


def output_layout(spec, operands, output_shape, inplace: bool = False):
    """``(layout, copied)`` of a row's output in a training step: its strides (None: contiguous), and
    whether a layer convcost models as a view (``Flatten``) had to copy instead. An in-place call's output is
    its input; otherwise the layer's binding says (its ``output_layout`` hook, from the rules below: as
    PyTorch 2.13's CPU kernels lay outputs out, an element-wise op keeps its input's strides, a binary one
    follows its operands', a convolution, norm or pool keeps a channels-last input channels last, the views
    are run on meta tensors, every other layer writes a contiguous tensor)."""
    if not operands or all(t.layout is None and not _strided_real(t) for t in operands) \
            and not hooks_of(spec).strided_output:
        return None, False
    if inplace:
        return operands[0].layout, False
    return hooks_of(spec).output_layout(spec, operands, output_shape)


def as_input(spec, operands, output_shape):
    """An output that is its input (the identity): the input's layout."""
    return operands[0].layout, False


def like_input(spec, operands, output_shape):
    """An element-wise op's output: made like its input (``torch.empty_like``), its strides kept."""
    return like(operands[0]), False


def broadcast_layout(spec, operands, output_shape):
    """A binary op's output: laid out as ``TensorIterator`` lays out ``a + b`` (following its operands)."""
    if len(operands) != 2:
        return None, False
    out, _ = run_view(torch.add, tuple(operands), {})
    return (layout_of(out) if out is not None else None), False


def keeps_channels_last(spec, operands, output_shape):
    """A convolution, norm, pool or resize: a channels-last input gives a channels-last output (sizes known)."""
    meta = meta_of(operands[0])
    if meta is None or not all(type(n) is int for n in output_shape):
        return None, False
    form = suggest_memory_format(meta)
    if form in (torch.channels_last, torch.channels_last_3d) and len(output_shape) == meta.dim():
        return layout_of(torch.empty(output_shape, device="meta", memory_format=form)), False
    return None, False


def view_layout(function, arguments):
    """The ``output_layout`` hook of a layer that is the view call ``function(x, *arguments(spec))``: its
    output as that call lays it out on meta tensors, and whether the call had to copy."""

    def hook(spec, operands, output_shape):
        out, base = run_view(function, (operands[0], *arguments(spec)), {})
        if out is None:
            return None, False
        return layout_of(out), not is_view(out, base)

    return hook


def _strided_real(t: Tensor) -> bool:
    return isinstance(t.tensor, torch.Tensor) and not t.tensor.is_contiguous()


# -- what a call keeps, from PyTorch's own derivative formulas -------------------------------------------


class Simulated:
    """What autograd keeps for one call, run on meta tensors (see :func:`simulate`): ``operands``, the call's
    :class:`Tensor` arguments in order; ``kept[i]``, whether the storage of the ``i``-th is saved; ``fresh``
    and ``fresh_indices``, the elements
    (int64 among them) of the other storages it saves; ``outputs``, per tensor output ``(meta, operand)``:
    its layout, and the index of the argument whose storage it shares (a view, an in-place result) or
    None; ``saves_output``, whether the first output's storage is saved; ``saved_outputs``, the positions of
    the other outputs whose storage it saves (counted in ``fresh``: ``topk``'s indices)."""

    __slots__ = ("fresh", "fresh_indices", "kept", "operands", "outputs", "saved_outputs", "saves_output")

    def __init__(self, operands, kept, fresh, fresh_indices, outputs, saves_output, saved_outputs=()):
        self.operands, self.kept, self.fresh, self.fresh_indices = operands, kept, fresh, fresh_indices
        self.outputs, self.saves_output, self.saved_outputs = outputs, saves_output, tuple(saved_outputs)

    def kept_of(self, tensors) -> list:
        """Per tensor, whether the run kept its storage: the argument that is it, else the first one with its
        storage and shape (query, key and value cut from one projection share a storage)."""
        return [any(self.kept[j] for j in self.position(t)) for t in tensors]

    def position(self, t) -> list:
        """The index of the argument ``t`` is, as a list of none or one."""
        same = [j for j, o in enumerate(self.operands) if o is t] or \
            [j for j, o in enumerate(self.operands) if o.storage == t.storage and tuple(o.shape) == tuple(t.shape)]
        return same[:1]

    def saved_elements(self, output_shape, output_view=False):
        """The elements a row of this call saves, as :func:`convcost.storages.distinct_saved` reads a cost:
        the fresh storages, every kept argument's elements and the output's (unless a view)."""
        return self.fresh + total(numel(t.shape) for t, k in zip(self.operands, self.kept) if k) \
            + (numel(output_shape) if self.saves_output and not output_view else 0)


def simulate(function, args, kwargs):
    """Run ``function(*args, **kwargs)`` on meta tensors standing for the :class:`Tensor` arguments (their
    strides, and ``requires_grad`` where they need a gradient) under ``saved_tensors_hooks``: what autograd
    keeps, PyTorch's own derivative formulas deciding. Each argument lives in a storage of its own, so
    in-place calls run as they do in the model. None when a shape is symbolic or the call fails on meta."""
    operands, storages = [], []

    def stand_in(t: Tensor):
        meta = meta_of(t)
        if meta is None:
            raise _Symbolic
        size = max(meta.untyped_storage().nbytes() // max(meta.element_size(), 1),
                   meta.storage_offset() + 1 if meta.numel() else 0)
        with torch.enable_grad():
            if t.grad and meta.is_floating_point():  # a non-leaf of its own storage: in-place calls allowed
                root = torch.empty(size, device="meta", dtype=meta.dtype).requires_grad_() * 1
            else:
                root = torch.empty(size, device="meta", dtype=meta.dtype)
            out = root.as_strided(meta.shape, meta.stride(), meta.storage_offset())
        operands.append(t)
        storages.append(_storage(root))
        return out

    def convert(value):
        if isinstance(value, Tensor):
            return stand_in(value)
        if isinstance(value, (tuple, list)):
            return type(value)(convert(v) for v in value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    try:
        margs, mkwargs = convert(tuple(args)), convert(dict(kwargs or {}))
    except _Symbolic:
        return None
    saved = []
    try:
        with torch_functions_off(), torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(
                lambda t: saved.append(t) or t, lambda t: t):
            out = function(*margs, **mkwargs)
    except Exception:  # noqa: BLE001 - a call meta tensors cannot run: what it keeps is not known
        return None
    flat = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, torch.Tensor)]
    owner = {key: i for i, key in reversed(list(enumerate(storages)))}
    outputs = [(o, owner.get(_storage(o))) for o in flat]
    first = _storage(flat[0]) if flat else None
    kept, fresh, indices, counted, saves_output = [False] * len(operands), 0, 0, set(), False
    for t in saved:
        key = _storage(t)
        if key in owner:
            kept[owner[key]] = True
        elif key not in counted:
            counted.add(key)
            n = t.untyped_storage().nbytes() // max(t.element_size(), 1)
            if key == first:
                saves_output = True
            else:
                fresh += n
                indices += n if t.dtype == torch.int64 else 0
        if key == first and key in owner:
            saves_output = True
    saved_outputs = [i for i, (o, own) in enumerate(outputs) if i and own is None and _storage(o) in counted]
    return Simulated(operands, kept, fresh, indices, outputs, saves_output, saved_outputs)
