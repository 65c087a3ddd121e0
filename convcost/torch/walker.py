"""The walker: every call a reading sees, turned into rows through the bindings.

Its one input is a call :class:`~convcost.torch.events.Event` (a function, a tensor method or a module;
its target; its arguments, tensors as :class:`~convcost.torch.rules.Tensor`; its module path). Each
reading is a front end that only produces events: the forward on shapes
(:mod:`convcost.torch.trace_shapes`, with or without the tensors computed alongside), a ``torch.fx``
graph (:mod:`convcost.torch.trace_fx`), every call on tensors (:mod:`convcost.torch.trace_calls`). So the
readings share the rows, the labels, the unsupported classification and the training bookkeeping.

A module call is one row when its exact type reads as a primitive and its binding accepts its
arguments; a function or method goes through its binding's rule, a view through the shape rule of the
table (:mod:`convcost.torch.ops`), and anything else is listed, its output shape from running it alone on
meta tensors. What a primitive needs beyond its rule (an LSTM's states, an unbatched convolution, several
inputs) is a hook of its binding (:class:`convcost.torch.binding.Binding`), never a test of its class here.

>>> import torch.nn as nn, torch.nn.functional as F
>>> from convcost.torch.events import Event
>>> from convcost.torch.inputs import model_inputs
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3))
>>> walk = Walk(net, model_inputs(net, (1, 3, 8, 8)), symbolic=False)
>>> x = walk.input_tensor(walk.inputs.positional[0])
>>> y = walk.call(Event("module", net[0], (x,), {}, "0"))
>>> walk.call(Event("function", F.relu, (y,), {}, "")).shape
(1, 8, 6, 6)
>>> [(row.path, row.op) for row in walk.record.rows]
[('0', 'Conv2d'), ('relu', 'F.relu')]
"""

from __future__ import annotations

import inspect
import operator
import sys

import torch
import torch.nn.functional as F

from convcost.costs import Cost
from convcost.errors import ConvcostError, InternalError
from convcost.report import Row
from convcost.torch import layouts, refusals, runtime
from convcost.torch.binding import BINDINGS, FUNCTIONS, METHODS, binding_of, hooks_of, module_binding
from convcost.torch.custom_functions import Context
from convcost.torch.events import FUNCTION, METHOD, MODULE, Event
from convcost.torch.leftovers import holds
from convcost.torch.ops import key, op_of
from convcost.torch.quick_outputs import quick_output
from convcost.torch.record import Recorder
from convcost.torch.registry import REGISTRY
from convcost.torch.rules import LEAF, WITH_INDICES, Emit, NoRule, Refused, Tensor, bind_arguments, first_line, integral
from convcost.torch.runtime import meta_gaps
from convcost.torch.runtime.private import is_dropout
from convcost.torch.tree import Tree

#: module types read as one leaf: those whose binding is a primitive (containers are read by what they call)
LEAF_TYPES = frozenset(m for b in BINDINGS.values() if not b.read_through for m in b.modules)


class own_code:
    """Run convcost's own code (the walker, a rule, a formula): an exception it raises other than a verdict on
    the input (:class:`ConvcostError`) is convcost's bug, and surfaces as :class:`InternalError`, whatever
    the forward around it does with exceptions. (A class, not a generator: it wraps every call of a forward.)"""

    __slots__ = ("where",)

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, (ConvcostError, InternalError)) or not isinstance(exc, Exception):
            return False
        raise InternalError(self.where, exc) from exc


class Unknown:
    """The value of an operation whose output convcost could not determine."""

    __slots__ = ("op",)

    def __init__(self, op):
        self.op = op


class Walk:
    """One reading's walk: shapes from convcost's formulas, a row per costed call, in a :class:`Recorder`."""

    def __init__(self, model, inputs, symbolic, training=False, modules=None, in_place=True):
        self.model, self.inputs, self.symbolic = model, inputs, symbolic
        self.training = training
        # whether the reading sees ``x *= y`` as the write in place it is (every reading but torch.fx, whose proxies
        # have no in-place operators: it spells ``x[..., d:] *= s`` as ``x[..., d:] = x[..., d:] * s``)
        self.in_place = in_place
        # ``modules``: the caller's ``dict(model.named_modules())`` (profile walks a large model's tree once)
        self.modules = Tree(model).named if modules is None else modules
        self.record = Recorder(model, training, self.modules)
        self._specs = {}  # id(module) -> (spec, why not), what its reader made of it
        self._dtypes = {}  # id(module) -> the dtypes of its floating parameters
        # the call being read, run on the tensors computed alongside (a reading with values sets it): the output
        # shape of a call without a rule that cannot run on meta tensors (data-dependent sizes)
        self.computed = None
        # a forward repeats its calls (every layer of a transformer makes the calls of the first): an inference
        # reading on concrete shapes answers a call it has read before from what the first one did (see
        # :meth:`remembered`); a training reading follows storages and gradients, which differ at every call
        self._memo = {} if not training and not symbolic else None

    def input_tensor(self, given) -> Tensor:
        """A model input: its shape, and in a training reading its storage and whether it needs a gradient
        (a tensor given with ``requires_grad=True``; data given as a shape needs none) and its layout (a
        channels-last tensor is read as one)."""
        grad = bool(getattr(given.tensor, "requires_grad", False))
        storage = self.record.new_storage(given.shape, given.dtype) if self.training else None
        real = given.tensor
        layout = layouts.meta_of(Tensor(given.shape, real)) if self.training and isinstance(real, torch.Tensor) \
            and not real.is_contiguous() else None
        return Tensor(given.shape, dtype=given.dtype, grad=grad, storage=storage, layout=layout)

    def is_layer(self) -> bool:
        """Whether the model itself is one layer called on its inputs (read as that module, as every tool sees it)."""
        return type(self.model) in LEAF_TYPES and not self.inputs.keywords and not self.computes_weights(self.model) \
            and _inputs_of(self.model, [Tensor(g.shape) for g in self.inputs.positional], {}) is not None

    def computes_weights(self, module) -> bool:
        """Whether a training step must read ``module`` by what it calls: a forward pre-hook (the old
        ``torch.nn.utils.weight_norm``) computes its weight from parameters, and autograd keeps that weight
        and the norm; read as one row, the hook would not run at all."""
        return self.training and bool(module._forward_pre_hooks)

    def bare_layer(self):
        """A model that is one layer reads as that module (as every tool sees it), not as its calls."""
        args = tuple(self.input_tensor(g) for g in self.inputs.positional)
        out = self.call(Event(MODULE, self.model, args, {}, ""))
        if isinstance(out, Unknown):
            raise ConvcostError(f"profile: {type(self.model).__name__} cannot be read as one layer")
        return self.record

    def one_row(self, module, args, kwargs) -> bool:
        """Whether a call of ``module`` on these arguments reads as one row (else it is read by what it calls)."""
        if type(module) not in LEAF_TYPES or _inputs_of(module, args, kwargs) is None or self.computes_weights(module):
            return False
        return self.spec_of(module)[0] is not None

    def spec_of(self, module) -> tuple:
        """``(spec, None)``: what ``module``'s reader makes of it, or ``(None, why)`` where it refuses; read once
        per reading."""
        found = self._specs.get(id(module))
        if found is None:
            try:
                found = (REGISTRY.read(module), None)
            except ConvcostError as why:
                found = (None, why)
            self._specs[id(module)] = found
        return found

    def parameter_dtypes(self, module) -> frozenset:
        """The dtypes of ``module``'s own floating parameters, read once per reading (each read of a tensor's
        attribute passes the reading's mode)."""
        found = self._dtypes.get(id(module))
        if found is None:
            found = self._dtypes[id(module)] = frozenset(t.dtype for t in own_parameters(module)
                                                         if t.is_floating_point())
        return found

    # -- one call -------------------------------------------------------------------------------
    def call(self, event: Event):
        """The value a call returns (a :class:`Tensor`, a tuple of them, a plain value, or :class:`Unknown`),
        its row recorded."""
        if self._memo is not None and self.computed is None:
            return self.remembered(event)
        return self._each(event)

    def remembered(self, event: Event):
        """:meth:`call` of an inference reading, from a call read before with the same signature (its function, its
        tensors' shapes, dtypes and names, its other arguments' types and values) where there is one: what the first
        did to the recorder (a row, a call listed) is done again at this call's path, its row claiming this call's
        parameters (a module's own, or those passed: ``F.linear(x, self.weight)``), and its result made afresh (an
        argument returned as it is: this call's own). A call whose arguments hold another real tensor (a constant, a
        value the rule may read), or whose reading touches anything else, is read every time.

        >>> import operator, torch.nn as nn
        >>> from convcost.torch.inputs import model_inputs
        >>> net = nn.Linear(4, 4)
        >>> walk = Walk(net, model_inputs(net, (2, 4)), symbolic=False)
        >>> x = Tensor((2, 4))
        >>> a = walk.call(Event("function", operator.add, (x, x), {}, "a"))
        >>> b = walk.call(Event("function", operator.add, (x, x), {}, "a"))
        >>> [(row.path, row.macs) for row in walk.record.rows], a is b, a.shape == b.shape, len(walk._memo)
        ([('a.add', 0), ('a.add#2', 0)], False, True, 1)
        """
        try:
            target = event.target if event.kind != MODULE else self.module_key(event.target, event.args, event.kwargs)
            key = (event.kind, target, _signature(event.args), _signature(event.kwargs))
            found = self._memo.get(key)
        except (_Unkeyed, TypeError):  # (TypeError: an unhashable target or value)
            return self._each(event)
        if found is not None:
            return self.again(found, event)
        record = self.record
        record.tape = []
        try:
            result = self._each(event)
            tape = record.tape
        finally:
            record.tape = None
        if tape is None:
            return result
        flat = _flat(event.args, event.kwargs)
        steps = _replayable(tape, event.path, own_parameters(event.target) if event.kind == MODULE else None, flat)
        made = _template(result, flat) if steps is not None else _UNKEYED
        if made is not _UNKEYED:
            self._memo[key] = (steps, made, _uses_arguments(made))
        return result

    def module_key(self, module, args, kwargs) -> tuple:
        """What a leaf module's row depends on beyond its arguments' signature: its spec (what its reader made of
        it), its type (its binding), the dtype of its result (its parameters'), its options the walker reads. A
        module whose binding picks its inputs itself (several tensors) is not keyed."""
        binding = module_binding(module)
        if binding is None or binding.module_inputs is not None or len(args) != 1 or kwargs or \
                type(args[0]) is not Tensor:
            raise _Unkeyed  # (called otherwise than on one tensor: read as what it calls, or listed)
        spec = self.spec_of(module)[0]
        if spec is None or self.computes_weights(module):
            raise _Unkeyed
        dtype = _module_dtype(module, args, self.parameter_dtypes(module))
        return (type(module), spec, dtype, getattr(module, "return_indices", False),
                getattr(module, "inplace", False) is True)

    def again(self, found, event):
        """What :meth:`remembered` found, done again for ``event``."""
        tape, made, uses = found
        record, path, name = self.record, event.path, None
        for step in tape:
            if step[0] == "unique":
                name = record.unique(path)
            elif step[0] == "row":
                row, params, tied, first = step[1], 0, "", {}
                # the parameters it reads (a module's own, or those among the call's arguments), claimed by this row
                # where no row read them before
                if step[2] is None:
                    reads = own_parameters(event.target)
                else:
                    flat = _flat(event.args, event.kwargs)
                    reads = [flat[i].tensor for i in step[2]]
                if reads:
                    params, tied, first = record.claims(name, reads)
                record.rows.append(Row.made(name, row.op, row.spec, row.input_shapes, row.output_shape,
                                            {**row.counts, "params": params}, row.source, tied))
                record.seen.update(first)
            elif step[0] == "skip":
                record.skip(step[1], path, step[3], macs=step[4])
            else:
                record.forget(step[1], step[2])
        return _rebuilt(made, _flat(event.args, event.kwargs) if uses else None)

    def _each(self, event: Event):
        """:meth:`call`, read afresh."""
        if event.target in (operator.getitem, "__getitem__") and len(event.args) == 2 and holds(event.args[1],
                                                                                              _integer_0d):
            # x[i] with i a 0-d integer tensor is x[int(i)], a view (autograd keeps no index): its value, where known
            event = Event(event.kind, event.target, (event.args[0], _as_ints(event.args[1])), event.kwargs,
                          event.where)
        if self.training and not torch.is_grad_enabled() and _in_custom_function():
            # autograd.Function's forward runs without grad: its own backward and saves are not read, said so
            self.record.untrack(event.label, event.path, "inside a custom autograd.Function: its backward is its own")
        elif self.training and not torch.is_grad_enabled():  # under torch.no_grad(): no backward, nothing kept
            if event.kind != MODULE and (_in_place(event) or event.target in (operator.setitem, "__setitem__")):
                self.saved_written(event)  # ... but a write bumps the tensor's version all the same
            mark = self.record.mark()
            self.record.read_without_grad.update(
                id(p) for p in (own_parameters(event.target) if event.kind == MODULE else (
                    t.tensor for t in _flat(event.args, event.kwargs) if isinstance(t, Tensor)))
                if isinstance(p, torch.nn.Parameter))
            result = self._call(event)
            self.record.rewind(mark)
            if _in_place(event) or event.target in (operator.setitem, "__setitem__") or event.name in _SAME_TENSOR:
                return result  # the tensor itself (written, or returned as it is): still in the graph
            viewed = {t.storage for t in (self.record.tracked(a) for a in _flat(event.args, event.kwargs)
                                           if isinstance(a, Tensor)) if t.grad}
            return _without_grad(result, viewed)
        if self.training and self.record.written:
            self.after_writes(event)
        if self.training and event.kind != MODULE and _in_place(event):
            self.saved_written(event)
        result = self._call(event)
        if self.training:
            self.flow(event, result)
            self.writes(event, result)
        return result

    def saved_written(self, event) -> None:
        """A write in place into the call's first tensor (``x.mul_(y)``, ``x *= y``; under ``torch.no_grad()``,
        ``x[i] = v`` too): listed where an earlier call kept its storage for the backward, which PyTorch then refuses
        to run (:meth:`~convcost.torch.record.Recorder.saved_then_written`)."""
        target = event.args[0] if event.args else None
        if event.kind == MODULE or not isinstance(target, Tensor) or event.name in _NOT_WRITES or (
                target.storage is None and target.tensor is None):
            return
        self.record.saved_then_written(self.record.tracked(target).storage, event.label, event.path)

    def after_writes(self, event) -> None:
        """Each tensor of the call that reads a storage written from a tensor needing a gradient needs one too
        (autograd rebases every view of a base written through one of them)."""
        for t in _flat(event.args, event.kwargs):
            if isinstance(t, Tensor) and not t.grad and self.record.tracked(t).grad:
                t.grad = True

    def writes(self, event, result) -> None:
        """A write in place (``x[i] = y``, ``x[..., :d].copy_(y)``, ``x.add_(y)``) from a tensor that needs a
        gradient: what it writes into needs one from now on, and so does the call's result."""
        args = event.args
        if event.kind == MODULE or not args or not isinstance(args[0], Tensor) or not (
                event.target in (operator.setitem, "__setitem__") or _in_place(event)):
            return
        if event.target in (operator.setitem, "__setitem__"):
            value = args[2] if len(args) > 2 else None
            # the call that made the value written kept a copy where it is an in-place product torch.fx spelled out
            # of place; in any other reading, and for a number written, no call did
            source = self.record.tracked(value).storage if isinstance(value, Tensor) and not self.in_place \
                else object()
            self.record.overwritten(self.record.tracked(args[0]).storage, source, event.label, event.path)
        if any(self.record.tracked(t).grad for t in _flat(args[1:], event.kwargs) if isinstance(t, Tensor)):
            self.written(args[0], event)
            for t in _flat((result,), {}):
                if isinstance(t, Tensor):
                    self.record.tracked(t)

    def custom_function(self, label, path, inputs, outputs, saved, backward):  # noqa: PLR0913
        """A custom ``torch.autograd.Function`` in a training step, its forward already read (under grad
        disabled, as torch runs it: its calls are forward work and keep nothing): ``inputs``, the tensors it was
        given; ``outputs``, those its forward returned (None for a non-differentiable one); ``saved``, what it gave
        ``ctx.save_for_backward``; ``backward()``, ``(MACs, why not)`` of its own backward (see
        :mod:`convcost.torch.custom_functions`). Returns the outputs as the step sees them: each needs a gradient
        when an input does (a floating one, not marked non-differentiable). Where no input needs one, torch builds
        no node: nothing is kept and no backward runs."""
        needs = any(self.record.tracked(t).grad for t in inputs)
        made = [t if t is None else Tensor(t.shape, t.tensor, t.name, t.dtype, grad=needs and not integral(t.dtype),
                                           storage=self.record.tracked(t).storage, layout=t.layout)
                for t in outputs]
        if not needs:
            return made
        node = ("function", len(self.record.storages))  # the Function's node: reached through its outputs alone
        self.record.storages[node] = 0
        self.record.flow(self.sources(inputs, {}), {node})
        self.record.flow({node}, {t.storage for t in made if t is not None and t.grad})
        macs, why = backward()
        if why is not None:
            self.record.untrack(label, path, why)
        kept = [self.record.tracked(t) for t in saved]
        cost = Cost(output_shape=(), backward_macs=macs, saved_elements=sum(_numel(t.shape) for t in kept),
                    saves_input=(True,) * len(kept))
        self.record.keeps(self.record.with_kept_indices(cost, kept), kept, node)
        return made

    def flow(self, event, result) -> None:
        """In a training reading, which storages a call's result comes from (the step's backward reaches a row
        only through them); a call whose result carries no gradient (``argmax``, a comparison) passes none."""
        if event.kind != MODULE and (key(event.kind, event.target) in _NO_GRADIENT or
                                     op_of(event.kind, event.target).creates):
            return
        sources = self.sources(event.args, event.kwargs)
        if event.kind == MODULE:
            sources.update(("tensor", id(p)) for p in own_parameters(event.target))
        # an integer result carries no gradient (topk's indices: a router read only through them gets none)
        results = {t.storage for t in _flat((result,), {}) if isinstance(t, Tensor) and t.storage is not None
                   and not integral(t.dtype)}
        first = event.args[0] if event.args else None
        if isinstance(first, Tensor) and (first.storage is not None or first.tensor is not None and sources) and (
                event.target in (operator.setitem, "__setitem__") or event.kind != MODULE and _in_place(event)):
            results.add(self.record.tracked(first).storage)  # written in place: x[i] = y, x.add_(y)
        self.record.flow(sources, results)

    def sources(self, args, kwargs) -> set:
        """The storages (a parameter: its own key) among a call's arguments the backward may reach through it."""
        sources = set()
        written = self.record.written
        for t in _flat(args, kwargs):
            if isinstance(t, Tensor) and (t.grad is LEAF or not t.grad and (isinstance(t.tensor, torch.nn.Parameter)
                                                                             or t.storage is not None)):
                # needing no gradient (a frozen parameter, x.data, x.detach() or a view of it), or a view taken under
                # no_grad (its graph starts at it): the backward reaches nothing through it, even where it shares
                # the storage of what needs one
                continue
            if isinstance(t, Tensor) and t.storage is not None:
                sources.add(t.storage)
            elif isinstance(t, Tensor) and isinstance(t.tensor, torch.nn.Parameter):
                sources.add(("tensor", id(t.tensor)))
            elif isinstance(t, Tensor) and written and t.tensor is not None and t.grad:
                sources.add(self.record.tracked(t).storage)  # a constant written from a tensor needing a gradient
        return sources

    def _call(self, event: Event):
        args, kwargs = event.args, event.kwargs
        flat = _flat(args, kwargs)
        if Unknown in map(type, flat):  # at C speed: nearly every call has none
            up = next(a for a in flat if type(a) is Unknown)
            self.record.skip(event.label, event.path, f"its input comes from unsupported {up.op}")
            return Unknown(event.label)
        if event.kind == MODULE:
            return self.call_module(event)
        op = op_of(event.kind, event.target)
        if op.floating:
            _floating_only(event)
        rule = self.rule(event)
        if Tensor not in map(type, flat):  # Python arithmetic on sizes (at C speed: a Tensor is never subclassed)
            if event.kind == FUNCTION and (rule is None or event.target in _PYTHON_ARITHMETIC):
                return event.target(*args, **kwargs)
        if rule is None:
            if event.kind == FUNCTION and event.target in (operator.getitem, getattr):
                return self.getitem(event)
            return self.unknown(event, (op.uncounted or _NOT_COUNTED) if op.no_macs
                                else "no convcost rule for this operation")
        try:
            result = rule(args, kwargs)
        except NoRule as why:
            return self.unknown(event, str(why))
        if isinstance(result, Emit) and hooks_of(result.spec).element_wise:
            # what PyTorch refuses (softmax of ids, ids *= 0.5, an in-place write that would grow), and the dtype it
            # gives where an operand is an integer tensor, asked of PyTorch where the call is not run on values
            dtype = refusals.check(event, flat, _in_place(event), probe=self.computed is None)
            if dtype is not None:
                result.dtype = dtype
        if isinstance(result, Emit):
            if not _holds_empty(flat):
                return self.emit(event, result, flat)
            try:  # a concatenation with an empty part costs as any; a layer on zero rows cannot be costed
                return self.emit(event, result, flat)
            except ConvcostError:
                return self.empty(event)
        source = args[0] if args else None
        if isinstance(source, Tensor) and source.dtype is not None and not op.casts:
            result = _with_dtype(result, source.dtype)  # a view keeps its dtype (an index, a mask)
        if self.training and isinstance(source, (tuple, list)) and isinstance(result, Tensor):
            # torch.stack: a new tensor (its backward keeps nothing), needing a gradient when a part does
            parts = [self.record.tracked(t) for t in source if isinstance(t, Tensor)]
            return Tensor(result.shape, dtype=result.dtype, grad=any(t.grad for t in parts),
                          storage=self.record.new_storage(result.shape))
        if self.training:
            result = self.dropout(result, source, event) if op.dropout else self.view_of(result, source, event)
        return result

    def read(self, event) -> None:
        """The row of a call whose output is known without the walker (it ran on tensors: a constant made in the
        forward, every call of the call-by-call reading): its rule's row, or the call listed with the reason."""
        if event.kind == MODULE:
            self.call_module(event)
            return
        rule = self.rule(event)
        op = op_of(event.kind, event.target)
        if op.floating:
            _floating_only(event)
        if rule is None or rule is op.shape:
            if not op.view and any(isinstance(a, Tensor) for a in _flat(event.args, event.kwargs)):
                self.record.skip(event.label, event.path, (op.uncounted or _NOT_COUNTED)
                                 if op.no_macs else "no convcost rule for this operation", macs=not op.no_macs)
            return
        try:
            result = rule(event.args, event.kwargs)
        except NoRule as why:
            self.record.skip(event.label, event.path, str(why), macs=not op.no_macs)
            return
        except Refused:  # PyTorch's own refusal, which a kernel on meta tensors does not say
            raise
        except ConvcostError as why:  # the rule's layer refuses what PyTorch accepted: listed, not guessed
            self.record.skip(event.label, event.path, f"convcost cannot cost it: {why}")
            return
        if isinstance(result, Emit) and hooks_of(result.spec).element_wise:  # (on meta tensors PyTorch refuses none)
            refusals.check(event, _flat(event.args, event.kwargs), _in_place(event))
        if isinstance(result, Emit):
            try:
                self.record.emit(self.record.unique(event.path), event.label, result, "function")
            except ConvcostError:
                if not _holds_empty(_flat(event.args, event.kwargs)):
                    raise  # (on an empty tensor: no work, no row)

    def rule(self, event):
        """The binding's rule of a function or method call, else the table's shape rule (None: neither)."""
        if event.kind == FUNCTION:
            found = FUNCTIONS.get(event.target)
        else:
            found = METHODS.get(event.target)
            if found is None and event.target in _OPERATORS:  # x.__add__(y), 1 - x: the operator's rule
                found = FUNCTIONS.get(_OPERATORS[event.target])
        return found or op_of(event.kind, event.target).shape

    def emit(self, event, result, flat):
        """The row of a function's or method's rule answer."""
        operands = weights = call = None
        options = {}
        if self.training:
            operands, weights = self.record.split(result, [t for t in flat if isinstance(t, Tensor)])
            if event.target is F.scaled_dot_product_attention:
                options = self.attention_options(event, result.spec, operands)
            call = (event.function, _tracked(event.args, self.record), _tracked(event.kwargs, self.record))
            divisor = _divisor_of_a_number(event)
            if divisor is not None and self.record.tracked(divisor).grad:
                # ``1 / x`` is ``x.reciprocal() * 1`` in PyTorch: the reciprocal keeps its own output, a tensor
                # apart from the one returned, which the product's row does not hold
                self.record.keeps_apart(_numel(divisor.shape))
        return self.record.emit(self.record.unique(event.path), event.label, result, "function", operands, weights,
                                self.training and _in_place(event), call=call, options=options)

    def attention_options(self, event, spec, operands) -> dict:
        """What ``F.scaled_dot_product_attention``'s options change in a training step on the CPU (PyTorch
        2.13): a causal mask nothing (the fused kernel runs and keeps the same tensors); an additive mask that
        needs no gradient is kept by the fused kernel (a boolean one as a float copy), the math path keeps
        nothing more; a mask that needs a gradient sends the step down the math path, and so does dropout
        (``Attention(dropout=True)``); grouped heads are the spec's ``kv_groups``."""
        a = bind_arguments(("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
                           {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None,
                            "enable_gqa": False}, event.args, event.kwargs)
        options = {}
        if a["dropout_p"]:  # the CPU's fused kernel takes no dropout: the math path, dropping the weights
            options["dropout"] = True
        mask = a["attn_mask"]
        if not isinstance(mask, Tensor):
            return options
        mask = self.record.tracked(mask)
        fused = self.record.step_spec(spec, operands, options).fused([t.shape for t in operands])
        if mask.grad:
            if not (operands[0].grad or operands[1].grad):  # the scores' gradient, for the mask's alone
                self.record.untrack(event.label, event.path, "a mask that needs a gradient when the query "
                                    "and key do not: not modelled")
            else:
                options["kernel"] = "math"
        elif fused and mask.dtype is torch.bool:  # converted to an additive float mask (the query's dtype), kept
            precision = self.record.precision
            self.record.keeps_apart(_numel(mask.shape), precision.computes(spec) or precision.of(operands[0]))
        elif fused and isinstance(mask.dtype, torch.dtype) or fused and mask.tensor is not None:
            self.record.keeps(Cost(output_shape=(), saved_elements=_numel(mask.shape), saves_input=(True,)), [mask])
        elif fused:
            self.record.untrack(event.label, event.path, "a mask of unknown dtype: whether it is kept as it is "
                                "or as a float copy is not known")
        return options

    def dropout(self, result, source, event):
        """Dropout in a training step: a new tensor, and autograd keeps the noise it was multiplied by when the
        input needs a gradient (PyTorch 2.13 on the CPU: one element per input element, or per channel for
        ``dropout1d/2d/3d`` and feature alpha dropout); at p = 0 or outside training, the input itself."""
        a = bind_arguments(("input", "p", "training", "inplace"), {"p": 0.5, "training": True, "inplace": False},
                           event.args, event.kwargs)
        if not isinstance(source, Tensor) or not a["training"] or not a["p"]:
            return result
        if source.grad:  # the noise it multiplied by: one per element, or one per channel (N, C, 1 ...)
            whole = event.name in ("dropout", "alpha_dropout")
            dtype = self.record.precision.of(source)  # the noise is in the input's dtype
            self.record.keeps_apart(_numel(source.shape if whole else source.shape[:2]), dtype)
        inplace = a["inplace"] and source.storage is not None
        storage = source.storage if inplace else self.record.new_storage(source.shape,
                                                                         self.record.precision.of(source))
        return Tensor(source.shape, dtype=source.dtype, grad=source.grad, storage=storage,
                      layout=layouts.like(source))

    def view_of(self, result, source, event):
        """In a training reading, what a shape-only call returns: a view of its input (same storage, same
        gradient flag, its own strides), or a fresh copy (``clone``; ``reshape`` or ``contiguous`` of a view
        they cannot express). The call itself runs on meta tensors to learn which (:mod:`.layouts`); where
        it cannot (symbolic sizes), only ``clone`` copies."""
        return self._view_of(result, source, event)[0]

    def _view_of(self, result, source, event):
        """:meth:`view_of`, and whether the call's size depends on values (it cannot run on meta tensors)."""
        if not isinstance(source, Tensor):
            return result, False
        if event.name == "requires_grad_":  # x.requires_grad_(), x.requires_grad = True: the tensor itself, flagged
            flag = bind_arguments(("self", "requires_grad"), {"requires_grad": True}, event.args, event.kwargs)
            if flag["requires_grad"]:
                self.written(source, event)
            else:
                source.grad = False
            return source, False
        if _nonzero_columns(event) and isinstance(result, (tuple, list)) and result:
            # the columns of one new (n, ndim) index: a column kept for a backward keeps all of it
            storage = self.record.new_storage((len(result), *result[0].shape), torch.int64)
            return type(result)(Tensor(t.shape, t.tensor, t.name, t.dtype, storage=storage) for t in result), False
        if event.name != "detach" and key(event.kind, event.target) in _NO_GRADIENT:
            # an index or a mask (argmax, x > 0): no gradient; yet autograd may keep its input (isfinite and isinf
            # take |x| through a differentiable abs, which keeps x), as the call on meta tensors says
            kept = self.simulated(result, event) if self.record.tracked(source).grad else None
            return (kept if kept is not None else _fresh(result, self.record, False)), False
        if result is source:  # contiguous(), clone(), to() ...: a view or a copy, as the call on meta says
            result = Tensor(source.shape, source.tensor, source.name, source.dtype)
        source = self.record.tracked(source)  # a view of a parameter is the parameter's storage
        args = event.args
        meta, base = layouts.run_view(event.function, args, event.kwargs) if args and args[0] is not None \
            else (None, None)
        if event.name == "detach":  # the same storage, outside autograd (x.data too)
            if isinstance(source.tensor, torch.nn.Parameter):  # a parameter read so gets no gradient through it
                self.record.read_without_grad.add(id(source.tensor))
            source = Tensor(source.shape, source.tensor, source.name, source.dtype, storage=source.storage,
                            layout=source.layout)
        # a call meta tensors cannot run at concrete sizes decides its size from values (masked_select): a copy
        # (a reading with values knows its size from the call run on them; a view's size never needs values)
        data_dependent = meta is None and self.computed is not None and sized_by_values(event)
        if meta is None and self.computed is not None and not data_dependent:
            # a size given as a tensor (LED's ``as_strided`` over ``chunks_count + 1``): the strides, and whether
            # it is a view, of the call on the tensors computed alongside
            meta, base = _laid_out_as(self._computed_output())
        viewed = self._viewed(result, source, meta, base, event.name == "clone" or data_dependent)
        if event.name in ("view_as_real", "real", "imag") and isinstance(viewed, Tensor) and \
                isinstance(source.dtype, torch.dtype) and source.dtype.is_complex:
            self.record.read_as_reals(viewed.storage, viewed.dtype)
        return viewed, data_dependent

    def _viewed(self, result, source, meta, base, clone):
        if isinstance(result, Tensor) and result is not source and result.storage is None:
            if meta is None or not isinstance(meta, torch.Tensor):
                copy, layout = clone, None
            else:
                copy, layout = not layouts.is_view(meta, base), layouts.layout_of(meta)
            # a cast to another floating dtype (.half(), .to(dtype); in mixed precision .float() too) is a copy in
            # that dtype, as the call on meta says (where the meta run had the source's own dtype)
            plain = self.record.precision.plain  # (float32 throughout: a tensor of no dtype is float32 on meta too)
            dtype = meta.dtype if isinstance(meta, torch.Tensor) and (isinstance(source.dtype, torch.dtype) or plain) \
                and meta.dtype != self.record.precision.of(source) and (not plain or (
                    meta.dtype.is_floating_point and meta.dtype != torch.float32)) else None
            # (a cast to or from an integer dtype: its rule's dtype; ``ids.float()`` is a float copy, no index)
            known = result.dtype if isinstance(result.dtype, torch.dtype) else None
            storage = self.record.new_storage(result.shape, dtype or known or self.record.precision.of(source)) \
                if copy else source.storage
            return Tensor(result.shape, result.tensor, result.name, dtype or result.dtype,
                          grad=False if integral(dtype or result.dtype) else source.grad,  # kthvalue's indices: none
                          storage=storage, layout=layout)
        # chunk, split; and torch.return_types (sort's indices read by two gathers: one storage, as autograd's)
        if (type(result) is tuple or type(result).__module__ == "torch.return_types") and result and \
                all(isinstance(t, Tensor) for t in result):
            metas = meta if isinstance(meta, (tuple, list)) and len(meta) == len(result) else (None,) * len(result)
            return type(result)([self._viewed(t, source, m, base, clone) for t, m in zip(result, metas)])
        return result

    def getitem(self, event):
        obj, key = event.args
        if event.target is getattr:
            if isinstance(obj, Tensor) and key == "shape":
                return obj.shape
            if isinstance(obj, Tensor) and not self.symbolic:  # dtype, device, T ...: from a meta tensor
                return self.unknown(event, "", listed=False)
            return self.unknown(event, f"attribute {key!r}")
        if isinstance(obj, (tuple, list)):
            return obj[key]
        if isinstance(obj, Tensor) and not self.symbolic:
            return self.unknown(event, "", listed=False)  # indexing: a view, its shape from meta
        return self.unknown(event, "indexing a tensor")

    def call_module(self, event):
        """The row of a leaf module."""
        module, path, args, kwargs = event.target, event.where, event.args, event.kwargs
        if self.training and is_dropout(module) and args:
            # not the identity in a training step: what F.dropout does
            function = _DROPOUT_OF.get(type(module), F.dropout2d)
            return self.dropout(args[0], args[0], Event(FUNCTION, function, (args[0], module.p, True, module.inplace),
                                                        {}, path))
        tensors = _inputs_of(module, args, kwargs)
        if tensors is None:
            return self.unknown(event, "called with several inputs")
        spec, why = self.spec_of(module)
        if spec is None:
            return self.unknown(event, str(why))
        binding = binding_of(spec) or module_binding(module)
        shapes = [t.shape for t in tensors]
        output = WITH_INDICES if getattr(module, "return_indices", False) else None
        if binding.module_output is not None:
            output = binding.module_output(spec, shapes[0])
        rank = binding.unbatched_rank(spec) if binding.unbatched_rank is not None else None
        if rank is not None and len(shapes) == 1 and len(shapes[0]) == rank - 1:
            emit = Emit(spec, [(1, *shapes[0])], own_parameters(module), "unbatched")
        else:
            emit = Emit(spec, shapes, own_parameters(module), output, dtype=_module_dtype(module, tensors,
                                                                                 self.parameter_dtypes(module)))
        operands = call = None
        if self.training:
            operands = [self.record.tracked(t) for t in tensors]
            if any(t.layout is not None for t in operands):  # what a strided input changes: the module, on meta
                reading = binding.input_reading(module) if binding.input_reading is not None else \
                    _on_meta(module, self.record.precision.computes(spec))
                call = (reading, tuple(operands), {})
        unique = self.record.unique(path)
        why = binding.step_untracked(module, spec) if self.training and binding.step_untracked is not None else None
        if why:
            self.record.untrack(event.label, unique, why)
        return self.record.emit(unique, event.label, emit, "module", operands,
                                inplace=getattr(module, "inplace", False) is True, call=call)

    def unknown(self, event, reason, listed=True):
        """List the call as unsupported; its output shape from the call on the tensors computed alongside (a
        reading with values), else from running it alone on meta tensors."""
        module = event.target if event.kind == MODULE else None
        label = event.label
        if module is None and op_of(event.kind, event.target).view:
            listed = False  # a view or a no-op at inference (stochastic depth): its shape from meta, no row
        if listed:
            params = self.record.hold(event.path, module.parameters()) if module is not None else 0
            self.record.skip(label, event.path, reason, params=params, macs=module is not None or _may_macs(event))
        if self.symbolic:
            return Unknown(label)
        out = self._computed_output()  # the call ran on real tensors anyway: no meta run (slow, and it may fail)
        if out is None and module is None and op_of(event.kind, event.target).unary:
            out = _unary_output(event)  # rsqrt, pow(x, 2) in every RMS norm: no meta run either
        if out is None and module is None:
            out = quick_output(event)  # x[..., :d], ids // n: no meta run either
        if out is None:
            try:
                out = _on_meta_alone(event)
            except Exception as exc:  # noqa: BLE001 - the model's own call fails on meta: its shape is unknown
                if not listed:
                    self.record.skip(label, event.path, "its output shape is unknown")
                self.record.forget(label, f"{reason}; its output shape is unknown ({first_line(exc)})")
                return Unknown(label)
        result = _from_meta(out)
        if self.training:
            result = self.unknown_output(result, event, listed)
        return result

    def empty(self, event):
        """A call on an empty tensor that convcost's layer cannot cost (an expert no token was routed to: a Linear
        on zero rows): it does no work and makes no row; its output from the call on the tensors computed alongside
        or on meta tensors, and in a training step what autograd keeps of it from the call run on meta tensors
        (nothing but the empty operands, unless one is a view of a larger storage). A module's parameters still
        get a gradient (of zeros), as PyTorch gives them."""
        module = event.target if event.kind == MODULE else None
        try:
            out = self._computed_output()
            result = _from_meta(out if out is not None else _on_meta_alone(event))
        except Exception:  # noqa: BLE001 - it cannot run alone: listed, as any call convcost cannot read
            return self.unknown(event, "a call on an empty tensor that cannot run on meta tensors")
        if not self.training:
            return result
        tensors = [self.record.tracked(t) for t in _flat(event.args, event.kwargs) if isinstance(t, Tensor)]
        params = own_parameters(module) if module is not None else ()
        for p in params:  # read: its gradient is a tensor of zeros, with its optimizer state
            self.record.storage_of(p)
        grad = any(t.grad for t in tensors) or any(p.requires_grad for p in params)
        result = _fresh(result, self.record, grad)
        if not grad:
            return result
        simulated = self.simulated(result, event, function=_on_meta(module) if module is not None else None)
        if simulated is None:
            self.record.untrack(event.label, event.path, "a call on an empty tensor that cannot run on meta "
                                "tensors: what autograd keeps of it is not known")
            return result
        return simulated

    def _computed_output(self):
        """The call's output on the tensors computed alongside, where the reading has them (None otherwise, or
        where PyTorch itself fails on them: the reading then reports that as it does for any call)."""
        if self.computed is None:
            return None
        try:
            return self.computed()
        except Exception:  # noqa: BLE001 - raised again, as PyTorch's, where the reading runs the call itself
            return None

    def unknown_output(self, result, event, listed):
        """In a training reading, what an operation without a rule returns: a view when it only reshapes or
        selects (``x[:, :3]``), else new tensors, and the step is marked as not fully counted when the
        operation takes part in the backward (what it saves is not known)."""
        module = event.target if event.kind == MODULE else None
        args = event.args
        tensors = [t for t in _flat(args, event.kwargs) if isinstance(t, Tensor)]
        source = tensors[0] if tensors else None
        if module is None and op_of(event.kind, event.target).creates:  # a new tensor, needing no gradient
            return _fresh(result, self.record, False)
        # advanced indexing (by a tensor, or by a list, which PyTorch makes an int64 tensor) keeps its index
        gather = module is None and event.name in ("getitem", "__getitem__") and len(args) > 1 \
            and holds(args[1], lambda v: isinstance(v, (Tensor, torch.Tensor, list)))
        picks = module is None and op_of(event.kind, event.target).picks and \
            any(self.record.tracked(t).grad for t in tensors)
        if module is None and event.target in (operator.setitem, "__setitem__") and len(args) > 2:
            if any(self.record.tracked(t).grad for t in _flat((args[2],), {}) if isinstance(t, Tensor)):
                self.written(args[0], event)
            if holds(args[1], lambda v: isinstance(v, (Tensor, torch.Tensor))) and \
                    any(self.record.tracked(t).grad for t in tensors):
                # x[mask] = y is index_put_, which keeps its index (a boolean mask too) for the backward
                self.simulated(args[0], event, function=_set_item)
                return result
        if not listed and source is not None and module is None and not gather and not picks:
            result, data_dependent = self._view_of(result, source, event)
            if data_dependent and any(self.record.tracked(t).grad for t in tensors):  # masked_select keeps its mask
                self.record.untrack(event.label, event.path, "no rule: what it saves for backward is not known")
            return result
        grad = any(t.grad for t in tensors) or module is not None and any(p.requires_grad for p in module.parameters())
        if grad and module is None and (gather or picks or not _may_macs(event)):
            simulated = self.simulated(result, event)
            if simulated is not None:
                if _in_place(event) and isinstance(source, Tensor):
                    self.written(source, event)
                return simulated
        if grad:
            self.record.untrack(event.label, event.path, "no rule: what it saves for backward is not known")
        return _fresh(result, self.record, grad)

    def written(self, target, event) -> None:
        """``target`` written in place from a tensor that needs a gradient: its storage needs one from now on,
        whichever tensor reads it (a constant the forward made, read again as a new real tensor, by its
        storage)."""
        tracked = self.record.tracked(target)
        if tracked.grad:
            return
        self.record.written.add(tracked.storage)
        target.grad = True

    def simulated(self, result, event, function=None):
        """A call convcost has no row for but knows holds no multiply-accumulates (``exp``, ``clamp``,
        ``F.normalize``, an in-place ``addcmul_``): what autograd keeps of it, from the call run on meta tensors
        laid out as the model's (:func:`convcost.torch.layouts.simulate`), its backward no MACs. None when
        it cannot run there."""
        function = function or event.function
        if function is None:
            return None
        run = layouts.simulate(function, *self.record.precision.cast_call(
            event.name, _tracked(event.args, self.record), _tracked(event.kwargs, self.record)))
        flat = [t for t in (result if isinstance(result, (tuple, list)) else (result,)) if isinstance(t, Tensor)]
        if run is None or not run.outputs or len(run.outputs) != len(flat):
            return None
        if run.fresh and self.symbolic:
            return None  # the sizes of what it keeps come from the meta run, at generic stand-ins
        outputs = []
        for t, (meta, owner) in zip(flat, run.outputs):
            storage = run.operands[owner].storage if owner is not None else self.record.new_storage(t.shape, meta.dtype)
            outputs.append(Tensor(t.shape, t.tensor, t.name, t.dtype, grad=bool(meta.requires_grad), storage=storage,
                                  layout=layouts.layout_of(meta)))
        first, view = outputs[0], run.outputs[0][1] is not None
        saved = run.saved_elements(first.shape, output_view=view)
        # another output it saves (topk's and kthvalue's indices) is a storage of its own, kept by the call as an
        # operand is: counted once, whichever later call keeps it again (a product by those indices)
        also = [outputs[i] for i in run.saved_outputs]
        kept = [*run.operands, *also]
        flags = (*run.kept, *(True,) * len(also))
        indices = run.fresh_indices - sum(_numel(t.shape) for t in also if t.dtype == torch.int64) + sum(
            # an index kept, once per storage, all of it (an expanded view: one row)
            self.record.storages.get(t.storage, _numel(t.shape)) for t, k in zip(kept, flags)
            if k and t.dtype == torch.int64 and not self.record.is_parameter(t.storage)
            and self.record.first_index(t.storage))
        if runtime.device_of(self.record.model) == "cpu":  # what the CPU kernel keeps that the meta run does not
            more = meta_gaps.gap(event.name, event.args, event.kwargs, first.shape)
            saved, indices = saved + more, indices + more
        cost = Cost(output_shape=first.shape, saved_elements=saved, saved_indices=indices,
                    saves_input=flags, saves_output=run.saves_output, output_view=view)
        self.record.keeps(cost, kept, first.storage)
        self.record.precision.simulated(event.label, event.path, event.name, run.outputs[0][0])
        if not isinstance(result, (tuple, list)):
            return first
        it = iter(outputs)
        return type(result)(next(it) if isinstance(t, Tensor) else t for t in result)


def _floating_only(event) -> None:
    """:class:`Refused` where a reduction PyTorch computes in floating point alone (``var``, ``std``) is given an
    integer or boolean tensor, as PyTorch refuses it (its meta kernel, which the readings may run, does not)."""
    first = event.args[0] if event.args else event.kwargs.get("input")
    dtype = first.dtype if isinstance(first, Tensor) and first.dtype is not None else getattr(
        getattr(first, "tensor", None), "dtype", None)
    if integral(dtype):
        raise Refused(f"PyTorch rejects {event.label} of a {str(dtype).removeprefix('torch.')} tensor: std and var "
                      "only support floating point and complex dtypes")


def _integer_0d(value) -> bool:
    """Whether ``value`` is a 0-d integer tensor whose value the reading has (a :class:`Tensor` holding it)."""
    real = value.tensor if isinstance(value, Tensor) else value
    return isinstance(real, torch.Tensor) and real.dim() == 0 and not real.is_meta and not (
        real.is_floating_point() or real.is_complex() or real.dtype is torch.bool)


def _as_ints(key):
    """An index with its 0-d integer tensors as the ints they hold."""
    if isinstance(key, tuple):
        return tuple(_as_ints(k) for k in key)
    return int(key.tensor if isinstance(key, Tensor) else key) if _integer_0d(key) else key


def _set_item(x, key, value):
    """``x[key] = value``, returning ``x`` (what :meth:`Walk.simulated` reads as the call's output)."""
    x[key] = value
    return x


def _inputs_of(module, args, kwargs):
    """The tensors a call of leaf ``module`` reads as one row (its binding's ``module_inputs``; by default its
    one positional tensor), or None."""
    binding = module_binding(module)
    if binding is not None and binding.module_inputs is not None:
        return binding.module_inputs(module, args, kwargs)
    if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
        return None
    return [args[0]]


def _module_dtype(module, tensors, dtypes):
    """The dtype of a leaf module's result where its input's is a floating dtype the reading knows and its own
    floating parameters (of ``dtypes``) share it (``nn.Softmax`` of a float64 copy is float64); None otherwise (the
    floating one the reading leaves open; under autocast, which casts a layer's operands, too)."""
    dtype = tensors[0].dtype if tensors else None
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or torch.is_autocast_enabled("cpu") or \
            torch.is_autocast_enabled("cuda"):
        return None
    return dtype if all(d == dtype for d in dtypes) else None


def own_parameters(module) -> tuple:
    """``tuple(module.parameters())``, without walking the module tree when the module has no children
    (nearly every leaf: a convolution, a norm), which is most of a large model's reading time otherwise."""
    if not module._modules:
        return tuple(p for p in module._parameters.values() if p is not None)
    return tuple(module.parameters())


#: what a dropout module calls in a training step (the feature dropouts: one noise value per channel)
_DROPOUT_OF = {torch.nn.Dropout: F.dropout, torch.nn.AlphaDropout: F.alpha_dropout}

#: a tensor's operator methods, read by the operator's rule (the reflected ones of operations whose rule does not
#: depend on the order of the operands)
_OPERATORS = {f"__{name}__": getattr(operator, name) for name in ("add", "sub", "mul", "truediv", "iadd", "imul")}
_OPERATORS.update({"__radd__": operator.add, "__rsub__": operator.sub, "__rmul__": operator.mul,
                   "__rtruediv__": operator.truediv, "__div__": operator.truediv, "__isub__": operator.sub,
                   "__itruediv__": operator.truediv})

_PYTHON_ARITHMETIC = frozenset({operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
                                operator.mod, operator.pow, operator.neg, operator.iadd, operator.imul, operator.isub,
                                operator.itruediv})


#: calls whose result carries no gradient: the backward does not reach what they read through them
_NO_GRADIENT = frozenset(key("function", f) for f in (
    torch.argmax, torch.argmin, torch.argsort, torch.eq, torch.ne, torch.lt, torch.le, torch.gt, torch.ge,
    torch.greater, torch.greater_equal, torch.less, torch.less_equal, torch.not_equal,
    torch.isnan, torch.isinf, torch.isfinite, torch.any, torch.all, torch.detach, torch.logical_not,
    torch.logical_and, torch.logical_or, torch.logical_xor, torch.bitwise_and, torch.bitwise_or, torch.bitwise_not,
    torch.bitwise_xor, torch.nonzero, torch.sign, torch.floor, torch.ceil, torch.round, torch.histc, torch.bincount,
    torch.bucketize, torch.searchsorted))

#: why a call of the table's no-MAC work is listed (work convcost deliberately does not count, never a flag)
_NOT_COUNTED = "element-wise or reduction work convcost does not count"


def _may_macs(event) -> bool:
    op = op_of(event.kind, event.target)
    return not op.no_macs and not op.view


_SIGNATURES: dict = {}



def _in_place(event) -> bool:
    """Whether a call writes its output into its first argument (``F.relu(x, inplace=True)``, ``x.relu_()``,
    ``x += y``)."""
    target, args, kwargs = event.target, event.args, event.kwargs
    if event.kind == METHOD:
        return target.endswith("_") and not target.endswith("__") or target in _IN_PLACE_OPERATORS
    if target in (operator.iadd, operator.imul, operator.isub, operator.itruediv):
        return True
    if getattr(target, "__name__", "").endswith("_") and not getattr(target, "__name__", "").endswith("__"):
        return True
    if "inplace" in kwargs:
        return kwargs["inplace"] is True
    signature = _SIGNATURES.get(target, False)
    if signature is False:
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            signature = None
        _SIGNATURES[target] = signature
    if signature is None or "inplace" not in signature.parameters:
        return False
    try:
        return signature.bind(*args, **kwargs).arguments.get("inplace") is True
    except TypeError:
        return False


#: a tensor's in-place operator methods (``x.__iadd__(y)``: ``x += y``)
_IN_PLACE_OPERATORS = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__"})

#: in-place methods that write no values (autograd's flags, the storage itself)
_NOT_WRITES = frozenset({"requires_grad_", "detach_", "retain_grad", "share_memory_", "resize_", "resize_as_", "set_"})


def _on_meta(module, cast=None):
    """``module``'s forward as a function of its inputs, run with meta copies of its parameters and buffers (its
    floating ones in dtype ``cast`` where given: autocast's copies)."""

    def call(*args, **kwargs):
        state = {name: torch.empty_like(t, device="meta", dtype=cast or t.dtype).requires_grad_(t.requires_grad)
                 if t.is_floating_point()
                 else torch.empty_like(t, device="meta")
                 for name, t in module.state_dict(keep_vars=True).items()}
        return torch.func.functional_call(module, state, args, kwargs)

    return call


def _divisor_of_a_number(event):
    """The tensor a number is divided by (``1 / x``, ``x.__rtruediv__(1)``), or None."""
    args = event.args
    if len(args) != 2 or event.kwargs:
        return None
    if event.kind == FUNCTION and event.target in (operator.truediv, torch.div) and not isinstance(args[0], Tensor):
        return args[1] if isinstance(args[1], Tensor) else None
    if event.kind == METHOD and event.target in ("__rtruediv__", "__rdiv__") and not isinstance(args[1], Tensor):
        return args[0] if isinstance(args[0], Tensor) else None
    return None


def _tracked(value, record):
    """``value`` with every :class:`Tensor` in it given its storage (see :meth:`Recorder.tracked`)."""
    if isinstance(value, Tensor):
        return record.tracked(value)
    if isinstance(value, torch.Tensor):  # a constant, parameter or buffer passed as it is (an index)
        return record.tracked(Tensor(tuple(value.shape), value, dtype=value.dtype))
    if isinstance(value, (tuple, list)):
        return type(value)(_tracked(v, record) for v in value)
    if isinstance(value, slice):
        return slice(_tracked(value.start, record), _tracked(value.stop, record), _tracked(value.step, record))
    if isinstance(value, dict):
        return {k: _tracked(v, record) for k, v in value.items()}
    return value


def _fresh(value, record, grad):
    if isinstance(value, Tensor):
        return Tensor(value.shape, value.tensor, value.name, value.dtype, grad=grad,
                      storage=record.new_storage(value.shape, value.dtype if isinstance(value.dtype, torch.dtype)
                                                 else None))
    if isinstance(value, (tuple, list)):
        return type(value)(_fresh(v, record, grad) for v in value) if type(value) in (tuple, list) else value
    return value


def _in_custom_function() -> bool:
    """Whether the call comes from the forward of a custom ``torch.autograd.Function`` (which PyTorch runs with
    grad disabled, its output needing a gradient all the same)."""
    frame = sys._getframe(2)
    while frame is not None:
        ctx = frame.f_locals.get("ctx") if frame.f_code.co_name == "forward" else None
        if isinstance(ctx, torch.autograd.function.FunctionCtx) and not isinstance(ctx, Context):
            return True
        frame = frame.f_back
    return False


def _without_grad(value, viewed=frozenset()):
    """``value`` as computed under ``torch.no_grad()``: every tensor in it needing no gradient, but a view of one
    that needs one (a storage in ``viewed``), which PyTorch gives ``requires_grad`` with no graph behind it
    (:data:`~convcost.torch.rules.LEAF`)."""
    if isinstance(value, Tensor):
        grad = LEAF if value.storage in viewed else False
        return Tensor(value.shape, value.tensor, value.name, value.dtype, grad=grad, storage=value.storage,
                      layout=value.layout) if value.grad else value
    if type(value) in (tuple, list):
        return type(value)(_without_grad(v, viewed) for v in value)
    return value


#: calls that may return the tensor itself (already contiguous, in that dtype, on that device): under no_grad it is
#: still the tensor in the graph, not a view of it
_SAME_TENSOR = frozenset({"contiguous", "to", "type", "type_as", "float", "double", "half", "bfloat16", "cpu", "cuda"})


def _with_dtype(value, dtype):
    if isinstance(value, Tensor) and value.dtype is None:
        return Tensor(value.shape, value.tensor, value.name, dtype)
    if type(value) is tuple and value and isinstance(value[0], Tensor):
        return tuple(_with_dtype(v, dtype) for v in value)
    return value


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


#: calls whose output size the values decide (each a copy, never a view)
_SIZED_BY_VALUES = frozenset({"masked_select", "nonzero", "argwhere", "unique", "unique_consecutive",
                              "repeat_interleave"})


def _laid_out_as(real) -> tuple:
    """``(meta, base)`` as :func:`~convcost.torch.layouts.run_view` gives them, for a call's real output: a meta
    tensor with its strides, and itself as the base where the output is a view (``(None, None)`` for another
    value)."""
    if not isinstance(real, torch.Tensor):
        return None, None
    meta = torch.empty_strided(real.shape, real.stride(), dtype=real.dtype, device="meta")
    return meta, (meta if real._is_view() else None)


def _nonzero_columns(event) -> bool:
    """Whether the call is ``torch.where(cond)`` or ``nonzero(as_tuple=True)``: a tuple of views of the columns
    of one new ``(n, ndim)`` index tensor."""
    if event.name == "where":
        return len(event.args) + len(event.kwargs) == 1
    return event.name == "nonzero" and event.kwargs.get("as_tuple", False) is True


def sized_by_values(event) -> bool:
    """Whether the call's output size depends on values: one of :data:`_SIZED_BY_VALUES`, or indexing by a
    boolean mask (``x[x > 0]``)."""
    if event.name in _SIZED_BY_VALUES:
        return True
    return event.name in ("getitem", "__getitem__") and len(event.args) > 1 and holds(
        event.args[1], lambda v: isinstance(v, Tensor) and v.dtype == torch.bool
        or isinstance(v, torch.Tensor) and v.dtype == torch.bool)


def _flat(args, kwargs):
    # most calls: tensors and numbers, a few options by name (a loop: any() over a generator costs more)
    for a in args:
        if isinstance(a, _NESTED):
            break
    else:
        if not kwargs:
            return list(args)
        for v in kwargs.values():
            if isinstance(v, _NESTED):
                break
        else:
            return [*args, *kwargs.values()]
    out = []

    def walk(v):
        if isinstance(v, (tuple, list)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        else:
            out.append(v)

    walk(args)
    walk(kwargs)
    return out


#: what :func:`_flat` looks into
_NESTED = (tuple, list, dict)


def _unary_output(event):
    """The output of an element-wise call on one floating tensor and numbers (its operand's shape and dtype, as the
    meta run's output would say), or None where another argument is a tensor or the operand is not floating."""
    args = event.args
    if not args or not isinstance(args[0], Tensor) or event.name.endswith("_") or \
            not all(a is None or type(a) in (int, float, bool) for a in (*args[1:], *event.kwargs.values())):
        return None
    operand = args[0]
    dtype = operand.tensor.dtype if operand.tensor is not None else operand.dtype or torch.get_default_dtype()
    if not dtype.is_floating_point:
        return None
    return Tensor(operand.shape, dtype=dtype)  # (what the meta run's output tells: no meta tensor made)


def _to_meta(value):
    if isinstance(value, Tensor):
        if value.tensor is not None:
            return torch.empty_like(value.tensor, device="meta")
        return torch.empty(value.shape, dtype=value.dtype, device="meta")
    if isinstance(value, tuple):
        return tuple(_to_meta(v) for v in value)
    if isinstance(value, list):
        return [_to_meta(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


def _on_meta_alone(event):
    """The call of ``event`` run alone on meta tensors (a module with meta copies of its parameters)."""
    meta_args, meta_kwargs = _to_meta(event.args), _to_meta(event.kwargs)
    with torch.no_grad():
        if event.kind == MODULE:
            return _on_meta(event.target)(*meta_args, **meta_kwargs)
        if event.kind == METHOD:
            return getattr(meta_args[0], event.target)(*meta_args[1:], **meta_kwargs)
        return event.target(*meta_args, **meta_kwargs)


def _holds_empty(tensors) -> bool:
    """Whether one of ``tensors`` has an axis of size 0."""
    for t in tensors:  # (a loop: any() over a generator costs more, at every call)
        if type(t) is Tensor and 0 in t.shape:
            return True
    return False


def _from_meta(value):
    if isinstance(value, torch.Tensor):
        return Tensor(tuple(int(x) for x in value.shape), dtype=value.dtype)
    if isinstance(value, torch.Size):
        return tuple(int(x) for x in value)
    if isinstance(value, (tuple, list)):
        return type(value)(_from_meta(v) for v in value) if isinstance(value, tuple) else [_from_meta(v) for v in value]
    return value


class _Unkeyed(Exception):
    """A call :meth:`Walk.remembered` does not key: read every time."""


#: values a call's signature holds as they are (immutable, compared by type and value)
_KEYED = frozenset({int, float, bool, str, type(None), type(Ellipsis), torch.dtype, torch.device, torch.Size})


def _signature(value):
    """A hashable stand-in of a call's arguments for :meth:`Walk.remembered`: a computed tensor by its shape, dtype,
    name and gradient flag (a parameter by these and its own); a number or string by its type and value;
    :class:`_Unkeyed` for anything else (another real tensor, whose values a rule may read; an :class:`Unknown`; a
    user's object)."""
    kind = type(value)
    if kind is tuple or kind is list:
        out = [kind]
        for v in value:  # (a loop, not a call per item: most items are computed tensors and numbers)
            k = type(v)
            if k is Tensor and v.tensor is None and v.storage is None and v.layout is None:
                out.append((v.shape, v.dtype, v.name, v.grad))
            elif k in _KEYED:
                out.append((k, v))
            else:
                out.append(_signature(v))
        return tuple(out)
    if kind is Tensor:
        real = value.tensor
        if value.storage is not None or value.layout is not None:
            raise _Unkeyed
        if real is None:
            return (value.shape, value.dtype, value.name, value.grad)
        if type(real) is not torch.nn.Parameter:  # (a constant or a 0-d value: a rule may read its values)
            raise _Unkeyed
        # a parameter by what a reading sees of it (a rule reads no parameter's values; its shape, dtype and flag as
        # the reading took them from it): its row claims the one given, as a module's row claims its own
        return (torch.nn.Parameter, value.shape, value.dtype or real.dtype, value.name, value.grad)
    if kind in _KEYED:
        return (kind, value)
    if kind is dict:
        return (dict, *((k, _signature(v)) for k, v in value.items())) if value else ()
    if kind is slice:
        return (slice, _signature(value.start), _signature(value.stop), _signature(value.step))
    raise _Unkeyed


def _replayable(tape, path, own, flat):
    """What a call did to the recorder (its tape, see :attr:`Recorder.tape`) as steps :meth:`Walk.again` can do at
    another call of the same signature, or None: its name and anything it listed at the call's own path, a row
    that reads a module's ``own`` parameters (``("row", row, None)``) or parameters among the call's arguments
    (``("row", row, their places in flat)``)."""
    steps, named = [], False
    for step in tape:
        if step[0] == "unique" and step[1] != path or step[0] == "skip" and (step[2] != path or step[5]):
            return None
        if step[0] not in ("unique", "row", "skip", "forget") or step[0] == "row" and not named:
            return None
        named = named or step[0] == "unique"
        if step[0] == "row":
            reads = step[2]
            if own is not None:
                if len(reads) != len(own) or any(a is not b for a, b in zip(reads, own)):
                    return None
                step = ("row", step[1], None)
            else:
                places = []
                for r in reads:
                    at = next((i for i, a in enumerate(flat) if type(a) is Tensor and a.tensor is r), None)
                    if at is None:
                        return None
                    places.append(at)
                step = ("row", step[1], tuple(places))
        steps.append(step)
    return tuple(steps)


_UNKEYED = object()


def _template(value, flat):
    """What a call returned, to be made again (:func:`_rebuilt`): an argument returned as it is by its place among
    the call's arguments, a new tensor by its fields (copied now: a reading may set a result's dtype later)."""
    kind = type(value)
    if kind is Tensor:
        for i, a in enumerate(flat):
            if a is value:
                return ("A", i)
        if value.tensor is not None or value.storage is not None or value.layout is not None:
            return _UNKEYED
        return ("T", value.shape, value.name, value.dtype, value.grad)
    if kind is Unknown:
        return ("U", value.op)
    if kind in _KEYED:
        return ("V", value)
    if kind is tuple or kind is list:
        items = tuple(_template(v, flat) for v in value)
        return _UNKEYED if _UNKEYED in items else ("S", kind, items)
    return _UNKEYED


def _uses_arguments(made) -> bool:
    return made[0] == "A" or made[0] == "S" and any(_uses_arguments(m) for m in made[2])


def _rebuilt(made, flat):
    what = made[0]
    if what == "T":
        return Tensor(made[1], None, made[2], made[3], grad=made[4])
    if what == "A":
        return flat[made[1]]
    if what == "V":
        return made[1]
    if what == "U":
        return Unknown(made[1])
    return made[1](_rebuilt(m, flat) for m in made[2])
