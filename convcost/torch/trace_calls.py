"""The reading that sees every call: the model's own forward, run on meta tensors under a
``TorchFunctionMode``, with the module path of each call from global module hooks.

Everything the model calls reaches the mode with concrete shapes: ``F.conv2d`` from a ``Conv2d``
subclass that pads in its forward, ``torch.bmm`` in attention, tensor methods and operators. Each call
becomes a call event for the walker (:class:`convcost.torch.walker.Walk`, :meth:`~convcost.torch.walker.Walk.read`),
so it goes through the same rules as every other reading and makes the same rows; its output is the
tensor the call returned.
A module whose exact type reads as a primitive is one row, and the calls inside it are its own; every
other module is read by what it calls. A call convcost cannot count is listed with its count and call
sites, marked as possibly holding MACs unless it is known element-wise or reduction work.

Parameters and buffers are swapped for meta tensors call by call (the model is never modified), so a
large model costs microseconds per call. A forward whose Python reads tensor values (``if x.sum() > 0``)
cannot run on meta; it is run again on real tensors (zeros, or the tensors given).

This reading stays, as the last resort, for a forward that cannot run on shapes even with the tensors computed
alongside (a ``type(x) is torch.Tensor`` test, numpy on a tensor): it is the only one that hands the
forward real ``torch.Tensor`` objects. Its events are those of the other readings: ``x + y``, which reaches a
TorchFunctionMode as ``x.add(y)``, is told apart by the frame that made the call. In a training step
(``training=True``) each call is walked as the shape reading walks it, the walker's tensor for each tensor the
forward holds kept beside it (its storage, its gradient flag), so the step's counts are the walker's too.
"""

from __future__ import annotations

import contextlib
import dis
import operator
import sys
import threading

import torch
from torch.nn.modules import module as module_hooks
from torch.overrides import TorchFunctionMode

from convcost.errors import ConvcostError, InternalError
from convcost.torch import custom_functions
from convcost.torch.binding import FUNCTIONS, METHODS
from convcost.torch.events import FUNCTION, METHOD, MODULE, Event
from convcost.torch.leftovers import Attributes, values_kept
from convcost.torch.ops import op_of
from convcost.torch.rules import Tensor
from convcost.torch.runtime.private import (
    METHOD_WRAPPER,
    OPERATOR_FRAMES,
    PROPERTY_READS,
    SET_GRAD_ENABLED,
    apply_function,
    batched,
    descend,
)
from convcost.torch.runtime.private import custom_functions as functions_read
from convcost.torch.walker import LEAF_TYPES, Unknown, Walk, own_code

# -- module context: global hooks, active only in a thread that is profiling ---------------------------

_LOCAL = threading.local()
_HOOKS_LOCK = threading.Lock()
_HOOKS = {"count": 0, "handles": ()}


def _pre_hook(module, args):
    session = getattr(_LOCAL, "session", None)
    if session is not None:
        session.enter(module, args)


def _post_hook(module, args, output):
    session = getattr(_LOCAL, "session", None)
    if session is not None:
        session.leave(module, output)


def _install_hooks():
    with _HOOKS_LOCK:
        if _HOOKS["count"] == 0:
            _HOOKS["handles"] = (module_hooks.register_module_forward_pre_hook(_pre_hook),
                                 module_hooks.register_module_forward_hook(_post_hook, always_call=True))
        _HOOKS["count"] += 1


def _remove_hooks():
    with _HOOKS_LOCK:
        _HOOKS["count"] -= 1
        if _HOOKS["count"] == 0:
            for h in _HOOKS["handles"]:
                h.remove()
            _HOOKS["handles"] = ()


# -- one forward -----------------------------------------------------------------------------------------


def no_autograd():
    """``torch.no_grad()`` where grad is on (a training step's reading), else nothing: an inference reading runs
    with grad off already, and making a no_grad context for each of a forward's calls is not free."""
    return torch.no_grad() if torch.is_grad_enabled() else _NOTHING


_NOTHING = contextlib.nullcontext()


class Session(TorchFunctionMode):
    """One forward of one model: the module stack, the meta copies of its tensors, and the recorder."""

    def __init__(self, model, inputs, meta: bool, training=False):
        super().__init__()
        self.model, self.meta, self.training = model, meta, training
        self.walk = Walk(model, inputs, symbolic=False, training=training)
        #: in a training reading, id(a tensor the forward holds) -> (the tensor, the walker's Tensor for it), so
        #: that each call's operands carry their storages and gradient flags
        self.values = {}
        self.busy = 0  # inside the walker (its meta runs call functions and modules): nothing is read
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.types = {name: type(m).__name__ for name, m in model.named_modules()}
        self.stack = []  # (path, inside a module read as one row)
        self.copies = {}  # id(tensor) -> (tensor, its meta copy)
        self.record = self.walk.record

    # -- modules ------------------------------------------------------------------------------
    def enter(self, module, args):
        if self.busy:
            self.stack.append(None)
            return
        parent, inside = (self.context(), self.stack[-1] is not None and self.stack[-1][1]) if self.stack \
            else ("", False)
        path = self.paths.get(id(module))
        if path is None:  # a module made during the forward: its calls belong to the caller
            path = parent
        if inside:
            self.stack.append((path, True, None))
            return
        if _under_vmap(args, {}):  # a module run under torch.vmap: not read, said so
            params = self.record.hold(path, module.parameters())
            self.record.skip(type(module).__name__, path, UNDER_VMAP, params=params)
            if self.training:
                self.record.untrack(type(module).__name__, path, UNDER_VMAP)
            self.stack.append((path, True, None))
            return
        read, one, result = False, False, None
        if type(module) in LEAF_TYPES:
            wrapped = self.tracked(tuple(args)) if self.training else _wrap(tuple(args))
            with own_code("the call-by-call reading"):
                one = self.walk.one_row(module, wrapped, {})
        if one:
            read, result = self.read_module(path, module, wrapped)
        elif path in self.types:
            self.record.entered(path, module, [a.shape for a in args if isinstance(a, torch.Tensor)])
        self.stack.append((path, read, result))

    def leave(self, module, output=None):
        if self.stack and self.stack[-1] is None:
            self.stack.pop()
        elif self.stack:
            path, read, result = self.stack.pop()
            if read and self.training:
                self.pair(result, output)
            if not read and (not self.stack or self.stack[-1] is None or not self.stack[-1][1]) \
                    and id(module) in self.paths:
                self.record.called(path, module, output)

    def read_module(self, path, module, args) -> tuple:
        """``(True, what the walker returns)``: one row for a module read through its reader; ``(False, None)``
        (read by its calls) when it cannot be."""
        self.busy += 1
        try:
            with own_code("the call-by-call reading"):
                event = Event(MODULE, module, args, {}, path)
                if not self.training:
                    self.walk.read(event)
                    return True, None
                return True, self.walk.call(event)
        except ConvcostError:  # the reader disagrees with PyTorch on this input: read what it calls
            return False, None
        finally:
            self.busy -= 1

    def context(self) -> str:
        """The path of the module making the current call."""
        for entry in reversed(self.stack):
            if entry is not None:
                return entry[0]
        return ""

    # -- a training reading: the walker's tensors beside the forward's --------------------------------
    def tracked(self, value):
        """``value`` as the walker takes it in a training reading: a tensor the forward computed is the walker's
        Tensor for it (its storage, its gradient flag); a parameter, buffer or constant is itself."""
        if isinstance(value, torch.Tensor):
            found = self.values.get(id(value))
            if found is not None and found[0] is value:
                t = found[1]
                if value.requires_grad and not t.grad and t.storage is not None:
                    t.grad = True  # the forward set it (wav2vec2's feature encoder: ``x.requires_grad = True``)
                if t.tensor is None and value.dim() == 0 and not value.is_floating_point():
                    # a size computed as a 0-d tensor (torch.div of two sizes): its value, for a view that reads it
                    return Tensor(t.shape, value, t.name, t.dtype, grad=t.grad, storage=t.storage, layout=t.layout)
                return t
            return Tensor(tuple(int(x) for x in value.shape), value, dtype=value.dtype,
                          grad=bool(value.requires_grad))
        if type(value) in (tuple, list):
            return type(value)(self.tracked(v) for v in value)
        if type(value) is dict:
            return {k: self.tracked(v) for k, v in value.items()}
        return value

    def unknown(self, event, out):
        """The walker's tensors for what a call it could not read returned (the call is listed already): new
        storages, needing a gradient when an operand does; the step is marked as not fully counted."""
        grad = any(t.grad for t in _tensors(event.args) + _tensors(event.kwargs))
        if grad:
            self.record.untrack(event.label, event.path, "no rule: what it saves for backward is not known")
        return _fresh(out, self.record, grad)

    def vmapped(self, func, args, kwargs, out):
        """A call inside ``torch.vmap`` is not read (it sees one example, on tensors with no storage of their
        own): one that may multiply-accumulate is listed, and in a training reading one on a tensor needing a
        gradient leaves the step incomplete. What the vmapped function returns is read after as a tensor the
        forward made: exact where nothing in it needs a gradient (transformers' attention masks)."""
        event = event_of(func, args, kwargs, self.context(), sys._getframe(2))
        op = op_of(event.kind, event.target)
        if not op.no_macs and not op.view:
            self.record.skip(event.label, event.path, UNDER_VMAP)
        if self.training and any(t.requires_grad for t in _tensors((args, kwargs), torch.Tensor)):
            self.record.untrack(event.label, event.path, UNDER_VMAP)
        return out

    def pair(self, result, out) -> None:
        """Remember the walker's Tensor for each tensor a call returned."""
        if isinstance(out, torch.Tensor):
            if isinstance(result, Tensor):
                if result.dtype is None and out.is_complex():  # view_as_real on meta needs the complex dtype
                    result.dtype = out.dtype
                if result.grad and not out.requires_grad and out.is_leaf and (out.is_floating_point()
                                                                             or out.is_complex()):
                    # the flag PyTorch gives it, for a forward that reads it (computed without autograd, it has none)
                    out.requires_grad_(True)
                self.values[id(out)] = (out, result)
        elif isinstance(out, (tuple, list)) and isinstance(result, (tuple, list)) and len(out) == len(result):
            for o, r in zip(out, result):
                self.pair(r, o)

    def function(self, cls, args, kwargs):
        """``cls.apply(*args, **kwargs)`` of a custom ``torch.autograd.Function`` in a training step: its forward
        run here, grad disabled (each call read as forward work), then the Function itself, what it saves and
        its own backward (:meth:`convcost.torch.walker.Walk.custom_function`)."""
        inside = self.stack and self.stack[-1] is not None and self.stack[-1][1]
        if self.busy or inside:
            return apply_function(cls, args, kwargs)
        if not torch.is_grad_enabled():  # within no_grad (or another Function's forward): forward work, no node
            return custom_functions.run_forward(cls, custom_functions.Context(False for _ in args), args, kwargs)
        given = self.tracked(args)
        ctx = custom_functions.Context(isinstance(t, Tensor) and bool(t.grad) for t in given)
        out = custom_functions.run_forward(cls, ctx, args, kwargs)
        outs = _returned_tensors(out)
        quiet = custom_functions.non_differentiable(ctx)
        path = f"{self.context()}.{cls.__name__}" if self.context() else cls.__name__
        self.busy += 1
        try:
            with own_code("the call-by-call reading"):
                mine = [self.walk.record.tracked(t) for t in (*given, *self.tracked(tuple(kwargs.values())))
                        if isinstance(t, Tensor)]
                made = self.walk.custom_function(
                    cls.__name__, path, mine, [None if id(o) in quiet else self.tracked(o) for o in outs],
                    [t for t in self.tracked(tuple(ctx.to_save)) if isinstance(t, Tensor)],
                    lambda: custom_functions.backward_cost(cls, ctx, [torch.empty_like(o, device="meta") for o in outs],
                                                           _meta_of, Session))
        finally:
            self.busy -= 1
        for o, t in zip(outs, made):
            if t is not None:
                self.values[id(o)] = (o, t)
        return out

    # -- calls --------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.busy:
            return func(*args, **kwargs)
        inside = self.stack and self.stack[-1] is not None and self.stack[-1][1]
        if self.training and not inside and op_of(FUNCTION, func).by_parts:
            with self:  # its parts, each read as a call of its own
                return descend(func, args, kwargs)
        out = self.run(func, args, kwargs)
        if inside:
            return out  # part of a module counted as one row
        if self.training and getattr(func, "__name__", "") in VALUE_READS:
            return out  # a value read into Python: no work, nothing autograd keeps
        if _under_vmap(args, kwargs):
            return self.vmapped(func, args, kwargs, out)
        if self.training:
            event = event_of(func, args, kwargs, self.context(), sys._getframe(1), self.tracked)
            self.busy += 1
            try:
                with own_code("the call-by-call reading"):
                    result = self.walk.call(event)
                    if isinstance(result, Unknown):  # listed; what follows is read on the tensor it returned
                        result = self.unknown(event, out)
                    self.pair(result, out)
            finally:
                self.busy -= 1
            return out
        if seen(func):
            with own_code("the call-by-call reading"):
                self.walk.read(event_of(func, args, kwargs, self.context(), sys._getframe(1)))
        return out

    def run(self, func, args, kwargs):
        if func is SET_GRAD_ENABLED:  # the forward's own torch.no_grad(), which the walker reads
            return func(*args, **kwargs)
        if self.meta:
            args, kwargs = self.to_meta(args), self.to_meta(kwargs)
            if op_of(FUNCTION, func).same_shape and args and isinstance(args[0], torch.Tensor) and \
                    args[0].is_floating_point():  # (an integer input may not keep its dtype: sigmoid of ids is float)
                return torch.empty_like(args[0])  # meta runs these through slow Python decompositions
        with no_autograd():  # no autograd graph: a training reading runs with grad enabled
            return func(*args, **kwargs)

    def to_meta(self, value):
        if isinstance(value, torch.Tensor):
            if value.is_meta:
                return value
            found = self.copies.get(id(value))
            if found is None:
                found = self.copies[id(value)] = (value, _meta_copy(value))
            return found[1]
        if type(value) in (tuple, list):
            return type(value)(self.to_meta(v) for v in value)
        if type(value) is dict:
            return {k: self.to_meta(v) for k, v in value.items()}
        return value


def seen(func) -> bool:
    """Whether a call of ``func`` on tensors can make a row or a listing (a view without a rule makes neither,
    so its arguments are not even wrapped: a forward calls ``Tensor.shape``'s getter hundreds of times)."""
    found = _SEEN.get(func)
    if found is None:
        qual = getattr(func, "__qualname__", "") or ""
        method = qual.startswith(("TensorBase.", "Tensor.", "_TensorBase."))
        kind, target = (METHOD, func.__name__) if method else (FUNCTION, func)
        rule = METHODS.get(target) if method else FUNCTIONS.get(target)
        found = rule is not None or not op_of(kind, target).view or method and target in _OPERATOR_OF
        try:
            _SEEN[func] = found
        except TypeError:  # an unhashable callable: decided at each call
            pass
    return found


_SEEN: dict = {}


def event_of(func, args, kwargs, context: str, caller=None, tracked=None) -> Event:
    """The call event of a call a TorchFunctionMode sees: a tensor method by name, a function by object.

    ``x + y`` reaches the mode as ``Tensor.add``, as ``x.add(y)`` does; ``caller``, the frame that made the call,
    tells them apart (it runs a binary operator), so that the event is spelled as the forward wrote it, as the
    other readings see it; ``1 - x`` reaches it as ``Tensor.__rsub__(x, 1)``, and is ``sub(1, x)`` as written.
    ``tracked``: what each tensor is to the walker (a training reading's), else a :class:`Tensor` of its shape."""
    func = PROPERTY_READS.get(func, func) if type(func) is METHOD_WRAPPER else func
    qual = getattr(func, "__qualname__", "") or ""
    if tracked is not None:
        args, kwargs = tracked(args), tracked(kwargs)
    else:
        seen = {}
        args, kwargs = _wrap(args, seen), _wrap(kwargs, seen)
    owner = getattr(getattr(func, "__self__", None), "__name__", "")  # the attribute a descriptor's method is of
    attribute = _ATTRIBUTES.get((getattr(func, "__name__", ""), owner))
    if attribute is not None and qual.startswith("getset_descriptor."):  # x.data, x.requires_grad = True
        return Event(METHOD, attribute, args, kwargs, context)
    if qual.startswith(("TensorBase.", "Tensor.", "_TensorBase.")):
        name = func.__name__
        if name in _OPERATOR_OF and caller is not None and _runs_operator(caller):
            return Event(FUNCTION, _OPERATOR_OF[name], args, kwargs, context)
        if name in _DUNDER_OF and len(args) == 2 and not kwargs:  # x // 2, 1 - x: the operator, as written
            target, reflected = _DUNDER_OF[name]
            return Event(FUNCTION, target, args[::-1] if reflected else args, kwargs, context)
        return Event(METHOD, name, args, kwargs, context)
    return Event(FUNCTION, func, args, kwargs, context)


#: a tensor's values read into Python (the forward's own decisions: a loop over boxes, a count)
VALUE_READS = frozenset({"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy"})

#: a tensor attribute read or set (its descriptor's ``__get__`` or ``__set__`` reaches the mode), as the method that
#: does the same to autograd: ``x.data`` is ``x.detach()`` (the same storage, no gradient), ``x.requires_grad = f``
#: is ``x.requires_grad_(f)`` (wav2vec2's feature encoder)
_ATTRIBUTES = {("__get__", "data"): "detach", ("__set__", "requires_grad"): "requires_grad_"}

#: tensor methods a Python operator runs, by the operator; ``x += y`` is the in-place operator (a write into ``x``),
#: as the shape reading's values read it too (fx's proxies, which have no in-place operators, spell it ``x + y``)
_OPERATOR_OF = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
                "matmul": operator.matmul, "add_": operator.iadd, "sub_": operator.isub, "mul_": operator.imul,
                "div_": operator.itruediv, "pow": operator.pow, "remainder": operator.mod}

#: a tensor's operator methods that reach a TorchFunctionMode as themselves: the operator, and whether its operands
#: are reflected (``1 - x`` is ``x.__rsub__(1)``)
_DUNDER_OF = {"__floordiv__": (operator.floordiv, False), "__mod__": (operator.mod, False),
              "__pow__": (operator.pow, False), "__radd__": (operator.add, True), "__rsub__": (operator.sub, True),
              "__rmul__": (operator.mul, True), "__rdiv__": (operator.truediv, True),
              "__rtruediv__": (operator.truediv, True), "__rfloordiv__": (operator.floordiv, True),
              "__rmod__": (operator.mod, True), "__rpow__": (operator.pow, True),
              "__rmatmul__": (operator.matmul, True)}


def _runs_operator(frame) -> bool:
    """Whether ``frame`` is running a binary operator (``x + y``, ``x += y``) rather than a call; ``x ** y``
    reaches the mode through ``Tensor.__pow__``'s Python body (two frames up: torch's wrapper, its handler)."""
    for _ in range(3):
        if frame is None:
            return False
        code, at = frame.f_code.co_code, frame.f_lasti
        if frame.f_code.co_filename not in OPERATOR_FRAMES:
            return 0 <= at < len(code) and dis.opname[code[at]].startswith(("BINARY_", "INPLACE_"))
        frame = frame.f_back
    return False


def _tensors(value, kind=Tensor) -> list:
    """The ``kind`` values (the reading's :class:`Tensor` stand-ins, or real ``torch.Tensor``) in ``value``'s
    tuples, lists and dicts."""
    if isinstance(value, kind):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v, kind)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v, kind)]
    return []


#: why a call under ``torch.vmap`` is listed
UNDER_VMAP = "inside torch.vmap: read per example, not counted"


def _under_vmap(args, kwargs) -> bool:
    """Whether a call reads a tensor ``torch.vmap`` batches: it runs inside a vmapped function."""
    return any(batched(t) for t in _tensors((args, kwargs), torch.Tensor))


def _returned_tensors(value) -> list:
    """The tensors in what a forward returned (a tensor, tuples, lists, dicts: a ``ModelOutput`` too)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _returned_tensors(v)]
    return []


def _fresh(out, record, grad):
    if isinstance(out, torch.Tensor):
        return record.tensor(tuple(int(x) for x in out.shape), grad)
    if isinstance(out, (tuple, list)):
        return tuple(_fresh(o, record, grad) for o in out)
    return out


def _meta_of(value):
    """A tensor as a meta tensor of its shape and dtype (None for anything else)."""
    return torch.empty_like(value, device="meta") if isinstance(value, torch.Tensor) else None


def _meta_copy(t):
    copy = torch.empty_like(t, device="meta")
    if isinstance(t, torch.nn.Parameter):
        copy = torch.nn.Parameter(copy, requires_grad=t.requires_grad)  # rules see parameters as parameters
    return copy


def _wrap(value, seen=None):
    """Arguments as the rules take them: every tensor as a :class:`Tensor` (a parameter kept as itself), one per
    tensor object (``seen``), so that a rule sees ``f(x, x, x)`` as the other readings do."""
    if isinstance(value, torch.Tensor):
        found = seen.get(id(value)) if seen is not None else None
        if found is None:
            # an integer, boolean or complex tensor's dtype, as the other readings give it (a floating one is left open)
            found = Tensor(tuple(int(x) for x in value.shape), value if isinstance(value, torch.nn.Parameter) else None,
                           dtype=None if value.is_floating_point() else value.dtype)
            if seen is not None:
                seen[id(value)] = found
        return found
    if type(value) in (tuple, list):
        return type(value)(_wrap(v, seen) for v in value)
    if type(value) is dict:
        return {k: _wrap(v, seen) for k, v in value.items()}
    return value


class hooked:
    """The module hooks that tell ``session`` each module's path, installed for this thread while it runs."""

    def __init__(self, session):
        self.session = session

    def __enter__(self):
        _install_hooks()
        _LOCAL.session = self.session
        return self.session

    def __exit__(self, *exc):
        _LOCAL.session = None
        _remove_hooks()
        return False


def read_calls(model, inputs, device="cpu", training=False):
    """Run ``model`` once on ``inputs`` under a :class:`Session`: on meta tensors, and again on real ones
    (zeros, or the tensors given) when the meta run fails (a forward that reads values, an op without a
    meta kernel, or an input PyTorch rejects: then PyTorch's own message is the real run's).
    ``training``: read one training step (the model in training mode, as profile sets it).
    Returns the recorder, the module types by path, and the device the forward ran on."""
    _install_hooks()
    try:
        try:
            return _once(model, inputs, True, device, training)
        except InternalError:
            raise
        except Exception:  # noqa: BLE001 - decided by the real run below
            if device == "meta":
                raise
        return _once(model, inputs, False, device, training)
    finally:
        _remove_hooks()


def _once(model, inputs, meta, device, training=False):
    session = Session(model, inputs, meta, training)
    args, kwargs = inputs.meta() if meta else inputs.real(device)
    if training:  # the inputs as the walker takes them: their storages, and a gradient where one is asked for
        for given, arg in (*zip(inputs.positional, args), *((inputs.keywords[k], v) for k, v in kwargs.items())):
            if isinstance(arg, torch.Tensor):  # (a list of images: each read as a constant, needing no gradient)
                session.values[id(arg)] = (arg, session.walk.input_tensor(given))
    kept = Attributes(model)
    try:
        # in training, grad stays on so that a forward's own torch.no_grad() is seen
        # on real tensors, the forward writes into the model's buffers (batch norm's statistics in training) and
        # draws from the random state: both put back, so that reading a model never changes it
        with contextlib.nullcontext() if meta else values_kept(model), hooked(session), \
                functions_read(session.function) if training else contextlib.nullcontext(), \
                torch.set_grad_enabled(training), session:
            out = model(*args, **kwargs)
        if training:  # the loss is computed from what the forward returned alone (a pooler it drops: no backward)
            returned = [session.tracked(t) for t in _returned_tensors(out)]
            if all(t.storage is not None for t in returned):  # else every row counts as reached, as before
                session.record.returned(t.storage for t in returned)
    finally:
        if meta:  # a meta tensor the forward kept on a module (a cache) would break its next real run
            kept.restore(lambda value: isinstance(value, torch.Tensor) and value.is_meta
                         and value.__class__ is not torch.nn.Parameter)
    return session.record, session.types, "meta" if meta else str(device)
