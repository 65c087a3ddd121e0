"""The bytes a training step keeps, per dtype: mixed precision as autograd sees it.

A step read by :func:`convcost.torch.profile` counts the elements autograd saves (``saved_elements``). Their
bytes depend on each saved tensor's dtype, which :class:`Precision` follows storage by storage:

- a model input or a constant made in the forward has its own dtype, a parameter its own;
- under ``torch.autocast`` (in force where ``profile`` runs), each row's operator has the cast policy of the
  running release (:mod:`convcost.torch.runtime.autocast`, named by the binding's ``autocast_op``): a
  ``lower`` one (convolution, linear, the matrix products, attention) casts its floating operands to the
  autocast dtype and computes in it, an ``fp32`` one (losses, 3-D pools, reflection padding) to float32, a
  ``promote`` one (``cat``) to the widest of them; the step keeps the cast copies it reads, new storages, in
  place of the operands. A parameter is cast once per step (autocast caches it) and the copy is kept where
  the binding's ``weight_copies`` says (a convolution's weight always, a linear layer's when its input needs
  a gradient);
- an operator autocast lets through runs in its operands' dtype, promoted as PyTorch promotes (a bfloat16
  convolution output added to a float32 input is float32);
- what a row keeps beside its operands and output (batch norm's statistics, the fused attention's log-sum-
  exp) has the dtype the binding's ``private_dtype`` gives, max pooling's indices are int64.

Each saved storage counts once, all of it, in its dtype (``untyped_storage().nbytes()``, as
``saved_tensors_hooks`` sees it). Forward MACs do not depend on precision. Where a dtype cannot be read (a layer
with MACs whose autocast policy convcost does not know: einsum, an LSTM, ``nn.MultiheadAttention`` as one
row; a strided operand whose copies cannot be run on meta tensors), the call is listed in the step's
``untracked``, so ``memory()`` refuses rather than answering wrongly.

>>> import torch, torch.nn as nn
>>> from convcost.torch import profile
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
>>> with torch.autocast("cpu", dtype=torch.bfloat16):
...     step = profile(net, (2, 3, 8, 8), training=True).training
>>> step.saved_by_dtype       # bfloat16: the input's copy, the conv weight's, its output, the ReLU's, the fc weight's
(('bfloat16', 9264), ('float32', 64))
>>> 2 * (2 * 3 * 8 * 8 + 8 * 3 * 3 * 3 + 2 * 576 + 10 * 288), 4 * 2 * 8   # batch norm's statistics: float32
(9264, 64)
"""

from __future__ import annotations

import functools

import sympy
import torch

from convcost.arith import total
from convcost.costs import Cost
from convcost.shapes import numel
from convcost.storages import saved_storages
from convcost.torch import layouts
from convcost.torch.binding import hooks_of
from convcost.torch.rules import Tensor
from convcost.torch.runtime import autocast, device_of


class Precision:
    """The dtypes of one training reading's storages (see the module docstring), kept by its recorder."""

    def __init__(self, record, model):
        self.record = record
        device = device_of(model)
        self.device = device
        #: the model's floating dtype: what a tensor of unknown dtype holds (its first floating parameter's)
        self.floating = next((t.dtype for t in model.parameters() if t.is_floating_point()),
                             torch.get_default_dtype())
        if device == "cuda" and torch.is_autocast_enabled("cuda"):
            record.untrack("autocast", "", "CUDA's autocast lists are not replayed (only the CPU's)")
        self.dtypes = {}  # storage key -> dtype
        self.private = {}  # graph entry -> dtype of what it keeps beside its operands and output
        self.apart = []  # the dtype of each of the recorder's extra_saved (None: the floating dtype)
        self.cached = {}  # (storage key, dtype) -> key of autocast's cached copy of a parameter
        #: whether any dtype but the floating one was seen (else the bytes are the old itemsize rule's)
        self.mixed = self.autocast is not None
        #: whether a storage of a boolean, integer or complex dtype the itemsize rule would price wrong was seen
        self.sized = False

    @property
    def autocast(self):
        """The autocast dtype in force for the model's device now, or None: read at each call, since the
        forward runs for real while it is read and may turn autocast off inside (``with torch.autocast(...,
        enabled=False)`` around a float32 section)."""
        found = autocast.state(self.device)
        if found is not None:
            self.mixed = True
        return found

    # -- dtypes ----------------------------------------------------------------------------------
    def of(self, t: Tensor):
        """The dtype of tensor ``t`` in this step: its storage's, else its own, else the floating one."""
        found = self.dtypes.get(t.storage)
        if found is not None:
            return found
        if isinstance(t.dtype, torch.dtype):
            return t.dtype
        real = t.tensor
        return real.dtype if isinstance(real, torch.Tensor) else self.floating

    @property
    def plain(self) -> bool:
        """No autocast, a float32 model and no other floating dtype seen yet: every storage is float32."""
        return not self.mixed and self.floating is torch.float32 and self.autocast is None

    def note(self, dtype) -> None:
        """A tensor of ``dtype`` was made: the step is mixed from here when it is another floating dtype; its bytes
        follow each storage's dtype when it is a boolean, integer or complex one the itemsize rule would price
        wrong (a mask: 1 byte, not the floating itemsize; a complex64 tensor: 8)."""
        if dtype == self.floating:
            return
        if dtype.is_floating_point:
            self.mixed = True
        elif dtype.itemsize != self.floating.itemsize and dtype is not torch.int64:
            self.sized = True  # (no floating dtype changes: the reading's fast path stays)

    def shown(self, storage):
        """The dtype a row's output shows the reading under autocast or in a model of a low precision (None in
        float32: the floating one, as before)."""
        return None if self.plain else self.dtypes.get(storage)

    def noted(self, operands) -> None:
        """Storages a graph entry reads: the dtype its tensors say, where the storage has none yet."""
        for t in operands:
            if isinstance(t.dtype, torch.dtype) and t.storage not in self.dtypes:
                self.dtypes[t.storage] = t.dtype
                self.note(t.dtype)

    def promoted(self, tensors):
        """The dtype PyTorch's type promotion gives ``tensors`` (a tensor with axes wins over a 0-d one; a
        Python number, kept as a storage of no elements, takes no part), the floating one when none."""
        real = [t for t in tensors if not _number(t)]
        ranked = [t for t in real if len(t.shape)] or real
        if not ranked:
            return self.floating
        return functools.reduce(torch.promote_types, (self.of(t) for t in ranked))

    # -- a row -----------------------------------------------------------------------------------
    def cast(self, path, op, spec, inputs, reads, weights, operands, c, call=None) -> tuple:  # noqa: PLR0913
        """``(kept, dtype)``: the operands a row's saved tensors are read from (a cast copy where autocast
        casts one) and the dtype of its output (a call's ``dtype=``, as ``softmax(x, dtype=torch.float32)``
        takes it, where given)."""
        asked = call[2].get("dtype") if call is not None and isinstance(call[2], dict) else None
        if asked is None and call is not None:  # ``torch.softmax(x, -1, torch.float64)``: given by position
            asked = next((a for a in call[1] if isinstance(a, torch.dtype)), None)
        if isinstance(asked, torch.dtype):
            self.note(asked)
            return operands, asked
        if self.plain:  # every tensor so far float32 and no autocast: nothing to follow (the reading's speed)
            return operands, None
        hooks = hooks_of(spec)
        rule = autocast.policy(hooks.autocast_op(spec)) if self.autocast is not None else None
        if self.autocast is not None and rule is None and _has_macs(c):
            self.record.untrack(op, path, "under autocast: the dtype it runs in is not modelled")
        dtypes = [self.of(t) for t in operands]
        floats = [d for t, d in zip(operands, dtypes) if d.is_floating_point and not _number(t)]
        if rule == "lower":
            target = self.autocast
        elif rule == "fp32":
            target = torch.float32
        elif rule == "promote" and floats:
            target = functools.reduce(torch.promote_types, floats)
        else:
            target = None
        out = target or self.promoted(operands)
        inner = hooks.computes_in(spec, [tuple(s) for s in inputs], out)
        if inner is not None and inner != out:  # it casts its operands itself and keeps those copies
            self.mixed = True
            return [self.copy(t, inner, cached=False) if not _number(t) else t for t in operands], out
        if target is None:
            return operands, out
        if weights and not hooks.passes_weights and any(w.grad and len(w.shape) > 1
                                                        and not self.record.is_parameter(w.storage) for w in weights):
            # (a bias computed in the forward is cast too, but no backward keeps it)
            self.record.untrack(op, path, "under autocast: the copy of a weight computed in the forward is not "
                                "modelled")
        kept = [self.copy(t, target) if d.is_floating_point and d != target and not _number(t) else t
                for t, d in zip(operands, dtypes)]
        return kept, target

    def computes(self, spec):
        """The dtype autocast casts ``spec``'s operator's floating inputs to (its weights too), None where it
        casts nothing."""
        if self.autocast is None:
            return None
        return {"lower": self.autocast, "fp32": torch.float32}.get(autocast.policy(hooks_of(spec).autocast_op(spec)))

    def cast_kept(self, spec, weights) -> list:
        """The weights computed in the forward that a call of ``spec`` keeps, as autocast hands them to it: a
        fresh copy in the dtype it computes in (a non-leaf's cast is not cached)."""
        target = None if self.plain else self.computes(spec)
        if target is None:
            return weights
        return [self.copy(w, target, cached=False) if self.of(w).is_floating_point and self.of(w) != target else w
                for w in weights]

    def for_meta(self, spec, call) -> tuple:
        """``call`` (``(function, args, kwargs)``) with its floating tensors in the dtype the row's operator
        computes in under autocast, laid out as autocast's cast leaves them (strides kept where dense, as
        ``.to()`` keeps them), so that a run on meta tensors sees what the kernel sees."""
        target = None if self.plain else self.computes(spec)
        if target is None:
            return call

        def convert(value):
            if isinstance(value, Tensor):
                d = self.of(value)
                if not d.is_floating_point or d == target or _number(value):
                    return value
                meta = layouts.meta_of(value)
                if meta is None:
                    return value
                layout = None if meta.is_contiguous() else torch.empty_like(meta, dtype=target)
                return Tensor(value.shape, None, value.name, target, grad=value.grad, storage=value.storage,
                              layout=layout)
            if isinstance(value, (tuple, list)):
                return type(value)(convert(v) for v in value)
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            return value

        function, args, kwargs = call
        return function, convert(args), convert(kwargs)

    def copy(self, t: Tensor, dtype, cached=True) -> Tensor:
        """Autocast's cast of ``t`` to ``dtype``: a new storage, or the one copy of a parameter per step (a
        float32 leaf that needs a gradient: autocast caches its cast; ``cached`` False: a cast a kernel makes
        itself, never cached)."""
        leaf = cached and self.record.is_parameter(t.storage)
        if leaf and (t.storage, dtype) in self.cached:
            key = self.cached[(t.storage, dtype)]
        else:
            key = self.record.new_storage(t.shape, dtype)
            if leaf:
                self.cached[(t.storage, dtype)] = key
        self.mixed = True
        return Tensor(t.shape, dtype=dtype, grad=t.grad, storage=key)

    def row_kept(self, spec, inputs, reads, kept) -> None:
        """After a row's graph entry: the dtype of what it keeps beside its operands, and the low-precision
        copies of its own parameters autocast made and the step keeps (each parameter's copy once)."""
        if self.plain:
            return  # float32 throughout: what it keeps is float32 (the fused attention's log-sum-exp too)
        record, hooks = self.record, hooks_of(spec)
        entry = len(record.graph) - 1
        cost = record.graph[entry][0]
        weight = next((t.dtype for t in reads if t.is_floating_point()), None)
        operand = self.of(kept[0]) if kept else self.floating  # a cast copy's dtype where it was cast
        if weight is None and self.autocast is None:
            weight = operand  # no autocast: what a row without weights reads (its buffers) is in its input's dtype
        private = hooks.private_dtype(spec, [tuple(s) for s in inputs], operand, weight, self.floating)
        if private is None:
            record.untrack(type(spec).__name__, "", "what it keeps beside its operands in this dtype is not "
                           "modelled")
            private = operand
        self.private[entry] = private
        if private != self.floating:
            self.mixed = True
        rule = autocast.policy(hooks.autocast_op(spec)) if self.autocast is not None else None
        if rule != "lower" or not cost.output_grad and not any(t.grad for t in kept):
            return  # no cast, or no backward that keeps anything
        params = tuple(t for t in reads if t.is_floating_point() and t.dtype != self.autocast)
        if not params:
            return
        copies = hooks.weight_copies(spec, params, tuple(bool(t.grad) for t in kept))
        if copies is None:
            record.untrack(type(spec).__name__, "", "under autocast: which copies of its weights the step keeps "
                           "is not modelled")
            return
        for p in copies:
            real = record.tracked(Tensor(tuple(p.shape), p))
            copy = self.copy(Tensor(real.shape, grad=p.requires_grad, storage=real.storage), self.autocast) \
                if p.requires_grad else self.copy(Tensor(real.shape), self.autocast)
            record.keeps(Cost(output_shape=(), saved_elements=numel(copy.shape), saves_input=(True,)), [copy])

    def cast_call(self, name, args, kwargs) -> tuple:
        """``(args, kwargs)`` of a call read by running it on meta tensors (no row: a loss inside the forward),
        as autocast hands them to its operator: floating tensors cast to the autocast dtype or float32 (new
        storages) where its policy says (:func:`convcost.torch.runtime.autocast.call_policy`)."""
        rule = autocast.call_policy(name) if self.autocast is not None else None
        target = {"lower": self.autocast, "fp32": torch.float32}.get(rule)
        if target is None:
            return args, kwargs

        def convert(value):
            if isinstance(value, Tensor):
                d = self.of(value)
                return self.copy(value, target) if d.is_floating_point and d != target else value
            if isinstance(value, (tuple, list)):
                return type(value)(convert(v) for v in value)
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            return value

        return convert(args), convert(kwargs)

    def simulated(self, op, path, name, first) -> None:
        """A call read by running it on meta tensors (no row; ``first``, its first output): what it keeps
        beside its operands is in that output's dtype; one autocast promotes runs otherwise: listed."""
        self.private[len(self.record.graph) - 1] = first.dtype if isinstance(first.dtype, torch.dtype) \
            else self.floating
        if self.autocast is not None and autocast.call_policy(name) == "promote":
            self.record.untrack(op, path, "under autocast: an operator autocast promotes, read without a row")

    # -- totals ----------------------------------------------------------------------------------
    def totals(self, saved, indices) -> dict:
        """``saved_bytes`` and ``saved_by_dtype`` of the step (:class:`convcost.training.StepTotals`) that keeps
        ``saved`` elements, ``indices`` of them int64 indices."""
        record = self.record
        by = {}

        def add(dtype, n):
            name = str(dtype).removeprefix("torch.")
            by[name] = by.get(name, 0) + n

        if not (self.mixed or self.sized):  # one floating dtype: the itemsize rule, indices int64
            add(self.floating, (saved - indices) * self.floating.itemsize)
            add(torch.int64, 8 * indices)
        else:
            keys, claimed = set(), set()
            for i, (c, inputs, output) in enumerate(record.graph):
                private, found = saved_storages([(c, inputs, output)])
                keys |= found
                # an int64 storage kept as an operand counts in its own dtype below, once; a call read on meta
                # tensors counts it among its indices too (the first time): only the rest are its own
                ints = {k for k in found if self.dtypes.get(k) == torch.int64 and k not in claimed}
                claimed |= ints
                indices = c.saved_indices - total(record.storages[k] for k in ints)
                indices = sympy.Max(0, sympy.Min(indices, private)) if not _known(indices, private) \
                    else max(0, min(indices, private))
                dtype = self.private.get(i, self.floating)
                add(dtype, (private - indices) * dtype.itemsize)
                add(torch.int64, 8 * indices)
            for key in keys:
                dtype = self.dtypes.get(key, self.floating)
                add(dtype, record.storages[key] * dtype.itemsize)
            for n, dtype in zip(record.extra_saved, self.apart):
                add(dtype or self.floating, n * (dtype or self.floating).itemsize)
        shown = {k: _int(v) for k, v in sorted(by.items()) if v != 0}
        return {"saved_bytes": _int(total(by.values())), "saved_by_dtype": tuple(shown.items()),
                "param_itemsize": self.floating.itemsize}


def _number(t) -> bool:
    """A Python number a rule saw as an operand (``x * 0.5``): a storage of its own holding nothing."""
    return isinstance(t.storage, tuple) and t.storage[0] == "number"


def _has_macs(c) -> bool:
    macs = sympy.sympify(c.macs)
    return not (macs.is_number and macs == 0)


def _known(*values) -> bool:
    return all(isinstance(v, int) or getattr(v, "is_Integer", False) for v in values)


def _int(x):
    x = sympy.sympify(x)
    return int(x) if x.is_Integer else x


def cpu_autocast(name: str):
    """``torch.autocast`` on the CPU in the dtype ``name`` says (``bf16``/``bfloat16`` or ``fp16``/``float16``:
    the CLI's ``--autocast``).

    >>> with cpu_autocast("bf16"):
    ...     torch.get_autocast_dtype("cpu")
    torch.bfloat16
    """
    dtype = torch.bfloat16 if name in ("bf16", "bfloat16") else torch.float16
    return torch.autocast("cpu", dtype=dtype)
