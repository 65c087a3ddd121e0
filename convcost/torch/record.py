"""What every reading of a model records: rows built from the rules, tied parameters counted once,
and every call convcost cannot count listed (never a silent zero).

The walker (:mod:`convcost.torch.walker`) tells a :class:`Recorder` what the model called, where (the
module path), and what the rules of :mod:`convcost.torch.bindings` made of it; the recorder builds the
:class:`~convcost.report.Row` objects and the :class:`~convcost.report.Report`. It is written only by
its own methods: what a call needs (the call itself, to run on meta tensors; an attention's options) is an
argument of :meth:`Recorder.emit`, never an attribute set beforehand.
"""

from __future__ import annotations

import dataclasses

import torch

from convcost.arith import total
from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Merge, _takes_grad
from convcost.report import ModuleCall, Report, Row, Unsupported
from convcost.shapes import numel
from convcost.storages import distinct_saved
from convcost.torch import layouts, runtime
from convcost.torch.binding import hooks_of
from convcost.torch.conventions import torch_backward_macs
from convcost.torch.library_blocks import name_blocks, reader
from convcost.torch.precision import Precision
from convcost.torch.rules import UNBATCHED, WITH_INDICES, Emit, Tensor, broadcasts
from convcost.torch.tree import Tree, named_parameters
from convcost.training import StepTotals


class Recorder:
    """Rows, unsupported calls and parameter ownership of one reading of one model."""

    def __init__(self, model, training: bool = False, modules=None):
        self.model = model
        #: ``dict(model.named_modules())`` where the reading has it (:class:`convcost.torch.tree.Tree`), else None
        self.modules = modules
        self.rows, self.unsupported, self.seen, self.calls = [], {}, {}, {}
        self.module_calls = []  # childless modules read by what they call: what module-hook tools see of them
        self.block_inputs = {}  # the input shapes of each block the zoos build that convcost can name, by path
        # a training reading (see :meth:`operands`): each row's cost with its gradient flags, the storages
        # of the tensors it reads and writes, and what the step does that convcost cannot count
        self.training = training
        self.graph, self.storages, self.untracked, self.extra_saved = [], {}, {}, []
        # storages written in place from a tensor needing a gradient (``k[..., :d].copy_(y)``): every tensor
        # that reads one needs a gradient from then on (the view written, its base, the other views of it)
        self.written = set()
        # id() of the parameters read where autograd does not follow them (under torch.no_grad(), through .data)
        self.read_without_grad = set()
        # the dtype of every storage, what the autocast in force casts, and the bytes it all keeps
        self.precision = Precision(self, model) if training else None
        # while the walker reads a call it may read again from memory (:meth:`convcost.torch.walker.Walk.remembered`):
        # what the call does here, one step a change (``("unique", path)``, ``("row", row)``, ``("skip", ...)``,
        # ``("forget", ...)``; anything else a step it cannot do again), else None
        self.tape = None
        # a reading without values that went on with them (a value the forward reads, computed where it reads it:
        # :meth:`convcost.torch.trace_shapes._Session.catch_up`): what the forward read, else None
        self.values_from = None

    # -- training -----------------------------------------------------------------------------
    def new_storage(self, shape, dtype=None) -> int:
        """A fresh storage holding a tensor of ``shape`` (its key), of ``dtype`` where it is known."""
        if self.tape is not None:
            self.tape.append(("other",))
        key = len(self.storages)
        self.storages[key] = numel(shape)
        if dtype is not None and self.precision is not None:
            self.precision.dtypes[key] = dtype
            self.precision.note(dtype)
        return key

    def read_as_reals(self, key, dtype) -> None:
        """Complex storage ``key`` read as reals (``x.real``, ``view_as_real``): autograd's hooks count a saved
        view of it in the real dtype's elements, two per complex element (once, however many views read it)."""
        done = self.__dict__.setdefault("_read_as_reals", set())
        if key in done or key not in self.storages:
            return
        done.add(key)
        self.storages[key] = 2 * self.storages[key]
        if self.precision is not None and isinstance(dtype, torch.dtype) and key in self.precision.dtypes:
            self.precision.dtypes[key] = dtype

    def tensor(self, shape, grad=False) -> Tensor:
        """A new tensor in its own storage."""
        return Tensor(shape, grad=grad, storage=self.new_storage(shape))

    def keeps(self, cost, operands, output=None) -> None:
        """Something the step keeps beside the rows: ``cost``'s saved tensors, read from ``operands``
        (:class:`Tensor` values with storages), writing ``output`` (a storage key, or None)."""
        if self.tape is not None:
            self.tape.append(("other",))
        self.graph.append((cost, [(t.storage, t.shape) for t in operands], output))
        if self.precision is not None:
            self.precision.noted(operands)

    def keeps_apart(self, elements, dtype=None) -> None:
        """Elements the step keeps in a storage of their own (dropout's noise, a boolean mask's float copy), of
        ``dtype`` (None: the model's floating dtype)."""
        if self.tape is not None:
            self.tape.append(("other",))
        self.extra_saved.append(elements)
        if self.precision is not None:
            self.precision.apart.append(dtype)

    def untrack(self, op, path, why) -> None:
        """A call whose backward convcost cannot count (what it saves, or its backward MACs)."""
        if self.tape is not None:
            self.tape.append(("other",))
        self.untracked.setdefault(op, {"paths": [], "why": why})["paths"].append(path)

    # -- names ------------------------------------------------------------------------------
    def unique(self, path: str) -> str:
        """``path``, or ``path#n`` for its n-th use (a module called twice, two adds in one forward)."""
        n = self.calls[path] = self.calls.get(path, 0) + 1
        if self.tape is not None:
            self.tape.append(("unique", path))
        return path if n == 1 else f"{path}#{n}"

    # -- rows -------------------------------------------------------------------------------
    def emit(self, path, op, emit: Emit, source="function", operands=None, weights=None, inplace=False,  # noqa: PLR0913
             call=None, options=None):
        """The row of a rule's answer, and what the call returns (a :class:`Tensor`, or a tuple of them).

        In a training reading: ``operands``, the tensors the rule's inputs are (gradient flags, storages);
        ``weights``, the call's other tensors (a function's weight and bias: a parameter, a buffer, or one
        computed in the forward), None for a module (its own parameters); ``inplace``, the call writes its
        output into its input; ``call``, the call as ``(function, args, kwargs)`` of tracked tensors, which
        the step may run on meta tensors (what a strided operand or a computed weight changes); ``options``,
        what the call's options change in the attention it is (kernel, dropout)."""
        step = (weights, inplace, call, options or {})
        try:
            row, c, base = self.row(path, op, emit.spec, emit.inputs, emit.reads, source, operands, step)
        except ConvcostError:
            if not unbatchable(emit):
                raise
            # PyTorch's layers take an input without its batch axis: the row is a batch of one
            emit = Emit(emit.spec, [(1, *emit.inputs[0])], emit.reads, UNBATCHED)
            row, c, base = self.row(path, op, emit.spec, emit.inputs, emit.reads, source, operands, step)
            base = (base[0], None)
        out = row.output_shape
        if emit.output == UNBATCHED:
            return self.output(Tensor(out[1:]), c, base)
        if emit.output == WITH_INDICES:
            return (self.output(Tensor(out), c, base), self.output(Tensor(out), None, None))
        if emit.output is not None:
            if isinstance(emit.output, tuple) and emit.output and isinstance(emit.output[0], Tensor):
                first, *rest = emit.output
                return (self.output(first, c, base),
                        *(self.output(t, c, None) if t is not None else None for t in rest))
            return self.output(Tensor(emit.output), c, base)
        made = self.output(Tensor(out), c, base)
        # an integer or complex result (token ids plus one, a complex product); a floating one on shapes alone (a
        # training step's floating dtypes are its precision's)
        if emit.dtype is not None and not (self.training and emit.dtype.is_floating_point):
            made.dtype = emit.dtype
            if self.training and made.storage is not None and not inplace:
                self.precision.dtypes[made.storage] = emit.dtype
                self.precision.note(emit.dtype)  # (a boolean amax: one byte an element, not the itemsize rule's)
        return made

    def output(self, t, c, base):
        """``t`` with its gradient flag, storage and layout, in a training reading (``base``: the row's output
        ``(storage, layout)``, None for another output of the call); an indices tensor (``c`` None) needs no
        gradient."""
        if not self.training:
            return t
        if isinstance(t, tuple):  # a nested output (an LSTM's final states)
            return tuple(self.output(x, c, None) for x in t)
        if c is None:
            return self.tensor(t.shape)
        storage, layout = base if base is not None else (self.new_storage(t.shape), None)
        if layout is not None and tuple(layout.shape) != tuple(t.shape):
            layout = None  # a call that returns another shape than its row's (an unbatched input)
        dtype = self.precision.shown(storage) if self.precision is not None else None
        if dtype is not None and layout is not None and layout.dtype != dtype:  # laid out in its own dtype
            layout = torch.empty_strided(layout.shape, layout.stride(), dtype=dtype, device="meta")
        return Tensor(t.shape, dtype=dtype, grad=bool(c.output_grad), storage=storage, layout=layout)

    def split(self, emit: Emit, tensors) -> tuple:
        """``(operands, weights)`` of a call: the tensors the rule's inputs are, matched by shape in the call's
        order (an unbatched input is the rule's batch of one), and the call's other tensors; each with its
        storage (a parameter's or buffer's holds nothing autograd counts, a constant made in the forward is
        its own)."""
        if emit.operands is not None:  # the rule named them
            named = {id(t) for t in emit.operands}
            return [self.tracked(t) for t in emit.operands], [self.tracked(t) for t in tensors if id(t) not in named]
        pool, found = list(tensors), []
        for shape in emit.inputs:
            shape = tuple(shape)
            for i, t in enumerate(pool):
                # an unbatched input is the rule's batch of one; a 0-d operand its broadcast (1, 1 ...)
                if len(t.shape) <= len(shape) and (1,) * (len(shape) - len(t.shape)) + tuple(t.shape) == shape:
                    found.append(self.tracked(pool.pop(i)))
                    break
            else:
                t = next((t for t in pool if broadcasts(t.shape, shape)), None)
                if t is not None:  # an operand the rule read as expanded (a learned bias added to a mask)
                    pool.remove(t)
                    found.append(self.tracked(t))
                    continue
                # a Python number the rule saw as an operand (x * 0.5): nothing autograd keeps
                key = ("number", len(self.storages))
                self.storages[key] = 0
                found.append(Tensor(shape, storage=key))
        return found, [self.tracked(t) for t in pool]

    def tracked(self, t: Tensor) -> Tensor:
        """``t`` with a storage: its own, or its real tensor's (see :meth:`storage_of`)."""
        if t.storage is not None:
            if not t.grad and t.storage in self.written:
                t.grad = True
            return t
        if t.tensor is not None:
            storage = self.storage_of(t.tensor)
            return Tensor(t.shape, t.tensor, t.name, t.dtype, grad=bool(t.tensor.requires_grad) or
                          storage in self.written, storage=storage)
        return Tensor(t.shape, t.tensor, t.name, t.dtype, grad=t.grad, storage=self.new_storage(t.shape))

    def storage_of(self, real) -> object:
        """The storage key of a real tensor the model holds or made: a parameter's or buffer's counts no
        saved element (autograd's saved tensors leave them out), a constant's counts its elements."""
        owned = self.__dict__.get("_owned")
        if owned is None:
            owned = self._owned = {id(t) for t in (*self.model.parameters(), *self.model.buffers())}
        # a constant by its storage: views of one index the forward made once (a cached relative-position
        # index, read by every layer) are one saved storage, as autograd's hooks see it
        key = ("tensor", id(real)) if id(real) in owned else ("storage", real.untyped_storage()._cdata)
        if key not in self.storages:
            # all of the storage, as autograd's hooks see it: an expanded view of one row is that row
            self.storages[key] = 0 if id(real) in owned else real.untyped_storage().nbytes() // real.element_size()
            if self.precision is not None:
                self.precision.dtypes[key] = real.dtype
                self.precision.note(real.dtype)
            # held until the reading ends: a constant freed mid-forward would give its id to the next one
            self.__dict__.setdefault("_held", []).append(real)
        return key

    def flow(self, sources, results) -> None:
        """A call's result ``results`` (storage keys) computed from ``sources``: the backward reaches the
        sources only through the results (see :meth:`unreached`)."""
        self.__dict__.setdefault("_flows", []).append((frozenset(sources), frozenset(results)))

    def returned(self, storages) -> None:
        """The storages of what the forward returned: the loss is computed from them alone."""
        self._returned = frozenset(storages)

    def unreached(self) -> tuple:
        """``(entries, params)``: the step's graph entries whose output the loss does not reach (a router read
        only through ``argmax``), and the parameters only they read: autograd runs no backward for them and
        gives those parameters no gradient. Empty where the reading did not follow every call."""
        flows, live = self.__dict__.get("_flows"), self.__dict__.get("_returned")
        followed = {key[1] for sources, _ in flows or () for key in sources
                    if isinstance(key, tuple) and key[0] == "tensor"}
        # a parameter read only under torch.no_grad() (DeepSeek's indexer, a frozen audio encoder) or through
        # .data: no gradient
        quiet = self.read_without_grad - followed
        if not flows or not live:
            return set(), quiet
        live, made = set(live), set()
        for sources, results in reversed(flows):
            made |= results
            if results & live:
                live |= sources
        dead = {out for _, _, out in self.graph if out is not None and out in made and out not in live}
        entries = {i for i, (_, _, out) in enumerate(self.graph) if out in dead}
        readers = self.__dict__.get("_readers", {})
        params = {pid for pid, outs in readers.items()
                  if outs and all(o in dead for o in outs) and ("tensor", pid) not in live}
        # a parameter read as data (a class token expanded into an attention's query) that the loss never
        # reaches through any call
        return entries, params | quiet | {pid for pid in followed if ("tensor", pid) not in live}

    def mark(self) -> tuple:
        """Where the step's bookkeeping stands, for :meth:`rewind` (calls read under ``torch.no_grad()``)."""
        apart = len(self.precision.apart) if self.precision is not None else 0
        return len(self.graph), len(self.extra_saved), apart, frozenset(self.__dict__.get("_indices", ()))

    def rewind(self, mark) -> None:
        """Forget what the step was told to keep since ``mark`` (the calls' rows stay): autograd keeps nothing
        for calls under ``torch.no_grad()``, and an index they read is kept first by a later call."""
        graph, apart, dtypes, indices = mark
        del self.graph[graph:], self.extra_saved[apart:]
        if self.precision is not None:
            del self.precision.apart[dtypes:]
            for entry in [i for i in self.precision.private if i >= graph]:
                del self.precision.private[entry]
        if "_indices" in self.__dict__:
            self._indices = set(indices)

    def overwritten(self, key, source=None, op="", path="") -> None:
        """Storage ``key`` written in place (``x[..., d:] = y``) after calls kept it as an operand. The call that made
        the value written (storage ``source``, None: any call) kept a copy of its operand instead, in a storage of its
        own: torch.fx spells ``x[..., d:] *= s`` as ``x[..., d:] = x[..., d:] * s`` (its proxies have no in-place
        operators), and PyTorch's in-place ``mul_`` keeps the copy (``original_self``), of the view's elements. Any
        other call that kept it would read values no longer there: PyTorch raises at backward, so the write is
        listed (see :meth:`saved_then_written`)."""
        for i, (c, inputs, output) in enumerate(self.graph):
            flags = c.saves_input if isinstance(c.saves_input, tuple) else (c.saves_input,)
            if not any(f is True and k == key for (k, _), f in zip(inputs, flags)):
                continue
            if source is not None and output != source:
                self.untrack(op, path, _SAVED_THEN_WRITTEN)
                continue
            copied = tuple(False if f is True and k == key else f for (k, _), f in zip(inputs, flags))
            copied += flags[len(copied):]
            self.graph[i] = (dataclasses.replace(c, saves_input=copied if isinstance(c.saves_input, tuple)
                                                 else copied[0]), inputs, output)
            dtype = self.precision.dtypes.get(key) if self.precision is not None else None
            if dtype is not None and dtype.is_floating_point:  # the copy is in the storage's own dtype
                self.precision.private.setdefault(i, dtype)

    def saved_then_written(self, key, op, path) -> None:
        """Storage ``key`` about to be written in place (``x.mul_(y)``, ``x *= y``, or ``x[i] = v`` under
        ``torch.no_grad()``) after a call kept it for its backward, as an operand or as its own output: that
        backward would read values no longer there, and PyTorch raises when it runs (a tensor it saved was modified
        by an in-place operation). Listed, never counted. A parameter's or buffer's storage is left out: a forward
        writes those through ``.data``, which autograd does not see."""
        if key is None or self.is_parameter(key):
            return
        for c, inputs, output in self.graph:
            flags = c.saves_input if isinstance(c.saves_input, tuple) else (c.saves_input,)
            if c.saves_output is True and output == key or any(f is True and k == key
                                                               for (k, _), f in zip(inputs, flags)):
                self.untrack(op, path, _SAVED_THEN_WRITTEN)
                return

    def first_index(self, key) -> bool:
        """Whether storage ``key``, an int64 index autograd keeps, is kept here for the first time (an index
        read by several calls is one saved storage)."""
        kept = self.__dict__.setdefault("_indices", set())
        if key in kept:
            return False
        kept.add(key)
        return True

    def keep_computed(self, weights, call, spec=None) -> bool:
        """A weight computed in the forward (weight standardisation, a kernel made by a network): autograd keeps
        it for the input's gradient as it keeps any tensor, so its storage is saved once; whether it is, from
        the call (``(function, args, kwargs)``) run on meta tensors. False when that cannot run. Under autocast
        the call of ``spec`` keeps autocast's copy of it instead."""
        if call is None:
            return False
        function, args, kwargs = self.precision.for_meta(spec, call) if spec is not None else call
        run = layouts.simulate(function, args, kwargs)
        if run is None:
            return False
        flags = run.kept_of(weights)
        kept = Cost(output_shape=(), saved_elements=total(numel(w.shape) for w, f in zip(weights, flags) if f),
                    saves_input=tuple(flags))
        self.keeps(kept, self.precision.cast_kept(spec, weights) if spec is not None else weights)
        return True

    def step_spec(self, spec, operands, options=None):
        """The layer the step runs on ``operands``: its binding's kernel choice for their strides (the fused
        CPU attention needs unit strides on the last axis), and the call's ``options`` (dropout, a mask needing
        a gradient) as the reading found them."""
        spec = hooks_of(spec).kernel(spec, operands)
        return dataclasses.replace(spec, **options) if options else spec

    def is_parameter(self, key) -> bool:
        """Whether storage ``key`` is a parameter's or buffer's (autograd's saved tensors leave them out)."""
        return isinstance(key, tuple) and key[0] == "tensor" and self.storages.get(key) == 0

    def row(self, path, op, spec, inputs, reads, source, operands=None, step=(None, False, None, None)):
        c = None
        weights, inplace, call, options = step
        if self.training and operands is not None:
            spec = self.step_spec(spec, operands, options)
            c = self.training_cost(path, op, spec, inputs, reads, operands, weights, call)
            if inplace and c.saves_input is True and hooks_of(spec).inplace_clone(spec):
                # an in-place op whose backward needs the input it overwrites: autograd keeps a clone of it
                c = dataclasses.replace(c, saves_input=False)
            c = self.folded(path, op, spec, c, operands, call)
            if inplace and isinstance(c.saves_input, tuple) and c.saves_input and c.saves_input[0] is True:
                # ``x[..., :d] *= s``: autograd cannot keep the input it overwrites, so it keeps a copy of it
                # (``original_self``) in a storage of its own, of the input's elements, not the storage it views
                c = dataclasses.replace(c, saves_input=(False, *c.saves_input[1:]))
            kept, out_dtype = self.precision.cast(path, op, spec, inputs, reads, weights, operands, c, call)
        params, tied, first = self.claims(path, reads)
        row = Row.of(path, op, spec, inputs, source=source, params=params, tied_to=tied, cost=c)  # raises before
        self.seen.update(first)  # anything is recorded
        self.rows.append(row)
        if self.tape is not None:
            self.tape.append(("row", row, tuple(reads)) if c is None else ("other",))
        out = layout = None
        if c is not None:
            layout, copied = layouts.output_layout(spec, operands, row.output_shape, inplace) if c.output_grad \
                or c.output_view is True else (None, False)
            view = (c.output_view is True or inplace) and operands and operands[0].storage is not None and not copied
            out = operands[0].storage if view else self.new_storage(row.output_shape, out_dtype)
            c = self.with_kept_indices(c, kept)
            self.keeps(c, kept, out)
            self.__dict__.setdefault("_row_of", {})[len(self.graph) - 1] = len(self.rows) - 1
            self.precision.row_kept(spec, inputs, reads, kept)
            for t in reads:  # which rows' outputs each parameter's gradient comes through
                self.__dict__.setdefault("_readers", {}).setdefault(id(t), []).append(out)
        return row, c, (out, layout)

    def claims(self, path, reads) -> tuple:
        """``(params, tied, first)`` of a row at ``path`` reading parameters ``reads``: the elements of those it reads
        first, the row another one was first read by (a tensor read twice by this call: this row), and
        ``{id: (path, tensor)}`` of the first ones, to be put in :attr:`seen` once the row is made (so that a row is
        made once)."""
        params, tied, first = 0, "", {}
        seen = self.seen
        for t in reads:
            if id(t) in seen:
                tied = tied or seen[id(t)][0]
            elif id(t) in first:
                tied = tied or path
            else:
                first[id(t)] = (path, t)
                params += t.numel()
        return params, tied, first

    def with_kept_indices(self, c, operands):
        """``c`` with the int64 operands it keeps counted among its ``saved_indices`` (``x * ids``, a loss divided
        by an integer count: autograd keeps the integer operand), each storage once however many rows keep it."""
        if not any(t.dtype == torch.int64 for t in operands):
            return c
        flags = c.saves_input if isinstance(c.saves_input, tuple) else (c.saves_input,) + (False,) * len(operands)
        indices = sum(self.storages.get(t.storage, numel(t.shape)) for t, kept in zip(operands, flags)
                      if kept is True and t.dtype == torch.int64 and not self.is_parameter(t.storage)
                      and self.first_index(t.storage))
        return dataclasses.replace(c, saved_indices=c.saved_indices + indices) if indices else c

    def folded(self, path, op, spec, c, operands, call):  # noqa: PLR0913 - the row's own arguments
        """``c`` as the step runs it on strided operands. The formula counts contiguous ones; a strided one
        may be copied before it is kept: ``torch.matmul``, ``F.linear`` and attention's math path fold it to
        a batch of matrices, ``group_norm`` makes it contiguous, and autograd keeps the copy instead. The call
        runs on meta tensors laid out as they are and contiguous (:func:`convcost.torch.layouts.simulate`),
        and the difference is applied to the formula's count."""
        if all(t.layout is None for t in operands):
            return c
        # the function call, or the module on meta copies of its parameters, unless the binding says what runs
        run = hooks_of(spec).step_call(spec, operands, call)
        if run is None:
            return c
        function, args, kwargs = self.precision.for_meta(spec, run)  # as autocast casts them
        actual, plain = _kept_by(layouts.simulate(function, args, kwargs),
                                 layouts.simulate(function, _contiguous(args), _contiguous(kwargs)), operands)
        if (actual is None or plain is None) and not self.precision.plain:
            self.untrack(op, path, "a strided operand in mixed precision whose copies cannot be run on meta tensors")
        if actual is None or plain is None or actual == plain:
            return c
        (kept, fresh), (assumed, assumed_fresh) = actual, plain
        copies = fresh - assumed_fresh
        if copies and not all(type(n) is int for t in operands for n in t.shape):
            # the meta run sized the copies at generic stand-ins for the symbols: when they are the copies of the
            # operands no longer kept, their sizes are those operands' own
            copied = [numel(t.shape) for t, k, a in zip(operands, kept, assumed) if a and not k]
            if copies != sum(layouts.concrete(n) or 0 for n in copied):
                self.untrack(op, path, "a copy of a strided operand whose size is symbolic: not modelled")
                return c
            copies = total(copied)
        change = copies + sum((k - a) * numel(t.shape) for k, a, t in zip(kept, assumed, operands))
        flags = tuple(kept) if isinstance(c.saves_input, tuple) else kept[0]
        return dataclasses.replace(c, saves_input=flags, saved_elements=c.saved_elements + change)

    def training_cost(self, path, op, spec, inputs, reads, operands, weights=None, call=None):  # noqa: PLR0913
        """The row's cost in this step: which inputs need a gradient, whether its weights get one."""
        grads = tuple(bool(t.grad) for t in operands)
        if weights is None:  # a module: its own parameters
            trainable = not reads or any(getattr(t, "requires_grad", True) for t in reads)
        else:  # a function: its weight and bias as they were passed (a buffer gets no gradient)
            trainable = any(w.grad for w in weights)
            # a view of a parameter (nn.MultiheadAttention's slices of its packed projection) is the parameter
            computed = [w for w in weights if w.grad and w.tensor is None and not self.is_parameter(w.storage)]
            if computed and hooks_of(spec).passes_weights and not self.keep_computed(computed, call, spec):
                self.untrack(op, path, "a weight computed in the forward: what autograd keeps of it is not modelled")
        shapes = [tuple(s) for s in inputs]
        counted = hooks_of(spec).step_cost(spec, shapes, grads, operands, call)
        if counted is not None:
            return counted
        if not _takes_grad(type(spec)):
            if any(grads) or reads and trainable:  # it takes part in the backward
                self.untrack(op, path, getattr(spec, "untrained_why", None)
                             or f"convcost has no training counts for {type(spec).__name__} yet")
            return spec.cost(shapes if isinstance(spec, Merge) else shapes[0])
        if isinstance(spec, Merge):
            return spec.cost(shapes, input_grads=grads)
        return spec.cost(shapes[0], input_grad=grads[0], trainable=trainable)

    def entered(self, path, module, shapes) -> None:
        """Note the input shapes of a block convcost may name (:mod:`convcost.torch.library_blocks`)."""
        if path not in self.block_inputs and reader(module) is not None:
            self.block_inputs[path] = tuple(tuple(int(x) for x in s) for s in shapes)

    def called(self, path, module, output) -> None:
        """Note a childless module that was read by its calls (a ``Conv2d`` subclass that pads in its forward):
        its type, output shape and own parameters, which tools that hook modules count it by."""
        shape = getattr(output, "shape", None)
        if module._modules or shape is None:
            return
        params = tuple([(name, t.numel()) for name, t in module._parameters.items() if t is not None])
        self.module_calls.append(ModuleCall(path, type(module).__name__, tuple(map(int, shape)), params))

    def hold(self, path, tensors) -> int:
        """Claim the parameters among ``tensors`` not claimed yet (for an unsupported module); their numel."""
        if self.tape is not None:
            self.tape.append(("other",))
        params = 0
        for t in tensors:
            if id(t) not in self.seen:
                self.seen[id(t)] = (path, t)
                params += t.numel()
        return params

    def skip(self, op, path, reason, *, macs=True, params=0):
        """List one call convcost does not count; ``macs`` says whether it may hold multiply-accumulates."""
        entry = self.unsupported.setdefault(op, {"paths": [], "reason": reason, "held": [], "macs": macs})
        if self.tape is not None:
            self.tape.append(("skip", op, path, reason, macs, params))
        entry["paths"].append(path)
        entry["macs"] = entry["macs"] or macs
        if params:
            entry["held"].append((path, params))

    def forget(self, op, reason):
        """Replace the reason listed for ``op`` (its output shape turned out unknown too)."""
        self.unsupported[op]["reason"] = reason
        if self.tape is not None:
            self.tape.append(("forget", op, reason))

    # -- the report -------------------------------------------------------------------------
    def report(self, *, inputs, traced_with, notes=(), convention="convcost", headline=None, modules=None) -> Report:
        named = self.modules if self.modules is not None else Tree(self.model).named
        unused = [(n, t) for n, t in named_parameters(named) if id(t) not in self.seen]
        unsupported = [Unsupported(op, len(e["paths"]), tuple(e["paths"]), e["reason"],
                                   sum(p for _, p in e["held"]), tuple(e["held"]), e["macs"])
                       for op, e in self.unsupported.items()]
        rows = self.step_rows() if self.training else self.rows
        return Report(rows, unsupported=unsupported, input_shape=inputs.report_shape,
                      input_shapes=inputs.shapes, model=type(self.model).__name__, traced_with=traced_with,
                      notes=notes, unused=tuple((n, t.numel()) for n, t in unused), convention=convention,
                      headline=headline, modules=modules, module_calls=self.module_calls,
                      training=self.step_totals() if self.training else None,
                      blocks=name_blocks(self.rows, self.block_inputs, named)
                      if self.block_inputs else None)

    def step_rows(self) -> list:
        """The rows as the step runs them: a row whose output the loss does not reach has no backward (its
        saved tensors are still kept: autograd saves them in the forward)."""
        entries, _ = self.unreached()
        at = {self.__dict__.get("_row_of", {}).get(i) for i in entries}
        return [dataclasses.replace(r, counts={**r.counts, "backward_macs": 0}) if i in at else r
                for i, r in enumerate(self.rows)]

    def step_totals(self) -> StepTotals:
        """The training step's totals: backward MACs summed over the rows, saved storages counted once."""
        unreached, unreached_params = self.unreached()
        costs = [c for i, (c, _, _) in enumerate(self.graph) if i not in unreached]
        params = {id(p): p for p in self.model.parameters()}
        # a parameter the forward never reads, or reads only where the loss does not reach, gets no gradient
        # and no optimizer state
        used = set(self.seen) | {key[1] for key in self.storages if isinstance(key, tuple) and key[0] == "tensor"}
        trainable = [p for p in params.values() if p.requires_grad]
        unread = [p for p in trainable if id(p) not in used or id(p) in unreached_params]
        saved = _number(distinct_saved(self.graph, self.storages) + total(self.extra_saved))
        # autograd keeps in the forward what a backward that never runs would read, as for saved_elements
        indices = _number(total(c.saved_indices for c, _, _ in self.graph))
        bytes_ = self.precision.totals(saved, indices)  # before untracked: reading the dtypes may list a row
        untracked = tuple((op, len(e["paths"]), tuple(e["paths"]), e["why"]) for op, e in self.untracked.items())
        return StepTotals(
            backward_macs=_number(total(c.backward_macs for c in costs)),
            # FlopCounterMode's grouped overcount only where the running release has it
            backward_macs_torch=_number(total(torch_backward_macs(c) if runtime.flop_counter().grouped_overcount
                                              else c.backward_macs for c in costs)),
            saved_elements=saved, saved_indices=indices, **bytes_,
            params=sum(p.numel() for p in params.values()), trainable_params=sum(p.numel() for p in trainable),
            trainable_tensors=len(trainable), untracked=untracked, unread_params=sum(p.numel() for p in unread),
            unread_tensors=len(unread), unproven=runtime.unproven_step(runtime.device_of(self.model)))


#: why a write in place into a storage a call kept for its backward is listed
_SAVED_THEN_WRITTEN = ("writes in place into a tensor an earlier call saved for its backward: PyTorch raises at "
                       "backward (a variable needed for gradient computation modified by an inplace operation)")


def _kept_by(actual, plain, operands):
    """``(kept, fresh)`` of two :func:`convcost.torch.layouts.simulate` runs of one call (as laid out, and
    contiguous), ``kept`` per operand of the row, read at the same argument positions in both."""
    if actual is None or plain is None or len(actual.operands) != len(plain.operands):
        return None, None
    where = [actual.position(t) for t in operands]
    return tuple(([any(run.kept[j] for j in js) for js in where], run.fresh) for run in (actual, plain))


def _contiguous(value):
    """``value`` with every :class:`Tensor` in it laid out contiguously (what the formulas count)."""
    if isinstance(value, Tensor):
        real = value.tensor if not isinstance(value.tensor, torch.Tensor) or value.tensor.is_contiguous() else None
        return Tensor(value.shape, real, value.name, value.dtype, grad=value.grad, storage=value.storage)
    if isinstance(value, (tuple, list)):
        return type(value)(_contiguous(v) for v in value)
    if isinstance(value, dict):
        return {k: _contiguous(v) for k, v in value.items()}
    return value


def _number(x):
    import sympy

    x = sympy.sympify(x)
    return int(x) if x.is_Integer else x


def unbatchable(emit) -> bool:
    """Whether a refused answer could be an unbatched input: one input, a layer (not a merge), no output set."""
    return len(emit.inputs) == 1 and emit.output is None and not isinstance(emit.spec, Merge)
