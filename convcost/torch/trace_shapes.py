"""The fastest reading, for concrete input sizes: the model's own forward run on shapes alone.

The forward runs once with every input replaced by a :class:`Shaped` value: an object that knows
its shape and nothing else. Each call the forward makes on one (``F.conv2d``, ``x.view``, ``x + y``,
a module) reaches convcost's rules, which say what the call costs and what shape it returns; no
kernel runs, no meta tensor is made and no graph is built. Each call becomes a call event
(:class:`~convcost.torch.events.Event`) for the walker (:class:`convcost.torch.walker.Walk`), as each node of
the ``torch.fx`` reading (:mod:`convcost.torch.trace_fx`) does: the rows are the same, call for call. Python
code on sizes simply runs, so ``if x.shape[-1] % 32:`` (which fx cannot trace) reads here. To the forward's Python
a :class:`Shaped` value is a tensor (``isinstance(x, torch.Tensor)``, ``torch.is_tensor(x)``; see
:mod:`convcost.torch.tensor_checks`), so a forward that branches on it takes PyTorch's branch.

The integer tensors given (token ids, masks) and the model's integer buffers keep their values, and so does
what is computed from them alone, run alongside (mask code: ``pad_id in ids``, ``lengths.max().item()``):
those values answer the forward in this reading, until a call that is not run (one of its operands comes from
the weights) may have written into one of them. Any other value cannot be read on shapes: ``if x.sum() > 0``,
``int(x)``, a call whose output shape is unknown. Where the forward reads such a value (or makes a call whose output
size is its operands' values: ``nonzero``, ``x[mask]``), an inference reading catches up (:meth:`_Session.catch_up`):
the calls read so far run on tensors, in their order, and the reading goes on with the tensors computed alongside
(``with_values``) from there, the forward run once. Where it cannot (a training step; a write into a tensor that is
no stand-in; any other call a shape cannot answer), :class:`NeedsTensors` is raised, and the forward is read again
with the tensors computed alongside from its start: every call also runs on tensors, so the forward may read values,
and the rows are still the walker's (this is the reading of a forward that reads values, a training step's
included; the call-by-call reading, :mod:`convcost.torch.trace_calls`, is left for a forward that cannot run on
shapes at all). Module calls are intercepted on the model's own modules alone, for
the forward's duration (:func:`convcost.torch.runtime.private.module_calls`: nothing process-wide), under the
exclusive side of :data:`convcost.torch.locks.TRACING`; another thread's module calls go through untouched.

>>> import torch.nn as nn
>>> from convcost.torch.inputs import model_inputs
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
>>> record = read_shapes(net, model_inputs(net, (1, 3, 32, 32)))
>>> [(row.path, row.op, row.output_shape) for row in record.rows]
[('0', 'Conv2d', (1, 8, 30, 30)), ('1', 'ReLU', (1, 8, 30, 30)), ('2', 'Flatten', (1, 7200)), ('3', 'Linear', (1, 10))]
"""

from __future__ import annotations

import contextlib
import operator
import sys
import threading

import torch
from torch.fx.graph import magic_methods, reflectable_magic_methods
from torch.overrides import TorchFunctionMode

from convcost.errors import ConvcostError, InternalError
from convcost.torch import custom_functions
from convcost.torch.events import FUNCTION, METHOD, MODULE, Event
from convcost.torch.leftovers import Attributes, holds
from convcost.torch.locks import TRACING
from convcost.torch.ops import CAST_DTYPES, op_of
from convcost.torch.rules import Tensor
from convcost.torch.runtime.private import (
    SET_GRAD_ENABLED,
    apply_function,
    descend,
    module_body,
    module_calls,
    torch_functions_off,
)
from convcost.torch.runtime.private import custom_functions as functions_read
from convcost.torch.tensor_checks import Watch
from convcost.torch.trace_calls import Session, event_of, no_autograd, seen
from convcost.torch.tree import Tree
from convcost.torch.walker import LEAF_TYPES, Unknown, Walk, first_line, own_code, sized_by_values


class NeedsTensors(Exception):
    """The forward needs something a shape cannot give (a value, an unknown output shape)."""


class _Local(threading.local):
    session = None  # this thread's reading under way (None in any other thread: a plain attribute read, no getattr)


_LOCAL = _Local()


def _session():
    session = _LOCAL.session
    if session is None:  # a Shaped value that escaped its forward (kept by the model, used later)
        raise NeedsTensors("a shape-only value used outside its profile")
    return session


class Shaped:
    """A tensor known by its shape alone, standing in for an input or an intermediate result; in a reading
    with values (:func:`read_shapes` ``with_values=True``) it also carries the tensor itself (``real``),
    computed alongside, so that a forward may read values."""

    __slots__ = ("value", "alongside")  # not ``real``: a complex tensor's real part is ``x.real``

    def __init__(self, value: Tensor, real=None):
        self.value, self.alongside = value, real

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.value.shape)

    @property
    def ndim(self) -> int:
        return len(self.value.shape)

    @property
    def dtype(self):
        return self.value.dtype or _session().dtype

    @property
    def device(self):
        return _session().device

    @property
    def is_cuda(self) -> bool:
        return _session().device.type == "cuda"

    @property
    def requires_grad(self) -> bool:
        return bool(self.value.grad) and _session().walk.training

    @requires_grad.setter
    def requires_grad(self, flag) -> None:  # wav2vec2's `hidden_states.requires_grad = True` on its input's view
        self.value.grad = bool(flag)

    def requires_grad_(self, flag=True):
        self.value.grad = bool(flag)
        return self

    @property
    def is_meta(self) -> bool:
        return False

    @property
    def __class__(self):
        # ``isinstance(x, torch.Tensor)`` and ``torch.is_tensor(x)`` in the forward's own Python say what PyTorch
        # says (a parameter's stand-in is an ``nn.Parameter``); ``type(x)`` is still Shaped, and so is the answer
        # to torch's C++ and to convcost's own code (:mod:`convcost.torch.tensor_checks`)
        session = _LOCAL.session
        if session is None or session.busy or not session.checks.tensor():
            return Shaped
        return torch.nn.Parameter if type(self.value.tensor) is torch.nn.Parameter else torch.Tensor

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in _VALUES and _session().values_for(self, f"the values of Tensor.{name}"):  # a value the forward
            return getattr(self.alongside, name)  # reads: the tensor computed alongside
        found = getattr(torch.Tensor, name, None)
        if found is None:
            raise AttributeError(f"'Tensor' object has no attribute {name!r}")
        if name == "data":  # the same storage, outside autograd: what detach() gives
            return _session().call(METHOD, "detach", (self,), {})
        if name in ("mT", "mH"):  # the views a property gives: the calls that make them
            return _session().call(METHOD, "transpose", (self, -2, -1), {})
        if name in ("T", "H"):
            return _session().call(METHOD, "permute", (self, *reversed(range(len(self.value.shape)))), {})
        if name in ("real", "imag"):  # a complex tensor's parts: views, as torch.real and torch.imag give them
            return _session().call(FUNCTION, getattr(torch, name), (self,), {})
        if not callable(found):  # a property: as a meta tensor of this shape has it, unless it is a tensor
            value = getattr(torch.empty(self.value.shape, dtype=self.dtype, device="meta"), name)
            if isinstance(value, torch.Tensor):  # T, data, grad ...: a shape cannot give them
                raise NeedsTensors(f"the tensor attribute {name!r}")
            return value
        return lambda *args, **kwargs: _session().call(METHOD, name, (self, *args), kwargs)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        qual = getattr(func, "__qualname__", "") or ""
        if qual.startswith(("TensorBase.", "Tensor.", "_TensorBase.")):  # a real tensor's method given a Shaped
            return _session().call(METHOD, func.__name__, args, kwargs)
        return _session().call(FUNCTION, func, args, kwargs)

    def __setitem__(self, key, value):
        _session().call(FUNCTION, operator.setitem, (self, key, value), {})

    def __len__(self):
        if not self.value.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.value.shape[0]

    def __iter__(self):
        return iter(_session().call(METHOD, "unbind", (self,), {}))

    def _value(self, read, what):
        """A value the forward reads: from the tensor computed alongside, else this reading cannot go on."""
        if not _session().values_for(self, what):
            raise NeedsTensors(what)
        return read(self.alongside)

    def __bool__(self):
        return self._value(bool, "the truth value of a tensor")

    def __int__(self):
        return self._value(int, "the value of a tensor")

    def __float__(self):
        return self._value(float, "the value of a tensor")

    def __index__(self):
        return self._value(operator.index, "the value of a tensor")

    def __contains__(self, element):
        # `pad_token_id in input_ids[:, [-1, 0]]` (BERT-style mask code): torch.Tensor.__contains__'s answer, from
        # the values; without it Python would iterate the rows and ask the truth of each comparison, which no
        # tensor of more than one element has
        return self._value(lambda real: _reals(element) in real, "whether a tensor holds a value")

    __hash__ = object.__hash__

    def __repr__(self):
        return f"Shaped{self.value.shape}"


#: the tensor methods whose answer only the values give (a number, a list, an array, indices whose count the
#: values decide): read from the tensor computed alongside; every other call goes through the rules
_VALUES = frozenset({"item", "tolist", "numpy", "nonzero", "unique"})


def _unwatched(kind, target, args, kwargs):
    """``_session().call(...)`` for a call the forward's own code makes (an operator, a tensor method), with the
    tensor-check :class:`~convcost.torch.tensor_checks.Watch` paused here, first: under a profile function (the
    Watch that is not lazy) each Python call and each builtin call costs a call of it, and this is the most
    frequent way into convcost."""
    session = _LOCAL.session
    checks = (session or _session()).checks
    if not checks.active or checks.depth:
        return session.call(kind, target, args, kwargs)
    if not checks.lazy:  # Watch.pause(), inline
        _setprofile(None)
    checks.active = False
    try:
        return session.call(kind, target, args, kwargs)
    finally:
        if not checks.lazy:  # Watch.resume(True)
            _setprofile(checks.hook)
        checks.active = True


_setprofile = sys.setprofile


def _magic(method):
    target = getattr(operator, method)

    def impl(*args):
        return _unwatched(FUNCTION, target, args, {})

    return impl


def _reflected(method):
    target = getattr(operator, method)

    def impl(self, other):
        session = _LOCAL.session
        return (session or _session()).call(FUNCTION, target, (other, self), {})

    return impl


for _method in magic_methods:  # the operators fx records, recorded the same way
    if hasattr(operator, _method):  # fx also lists Python 2's div
        setattr(Shaped, f"__{_method.strip('_')}__", _magic(_method))
for _method in reflectable_magic_methods:
    if hasattr(operator, _method):
        setattr(Shaped, f"__r{_method.strip('_')}__", _reflected(_method))


def _in_place(method):
    """``x += y`` (``x *= y`` ...) as PyTorch runs it: a write into ``x``'s own storage (``x.add_(y)``), not the new
    tensor Python's fallback to ``x + y`` would make; ``x`` is the written tensor from then on (its gradient flag, its
    dtype kept: an in-place result is cast to it)."""
    target = getattr(operator, method)

    def impl(self, other):
        result = _session().call(FUNCTION, target, (self, other), {})
        if isinstance(result, Shaped) and result is not self:
            result.value.dtype = self.value.dtype
            self.value, self.alongside = result.value, result.alongside
        return self

    return impl


#: the in-place operators with a rule (the others fall back to their operator, a new tensor, as before)
for _method in ("iadd", "isub", "imul", "itruediv"):
    setattr(Shaped, f"__{_method}__", _in_place(_method))


def _tensor_method(name):
    def method(self, *args, **kwargs):
        return _unwatched(METHOD, name, (self, *args), kwargs)

    method.__name__ = method.__qualname__ = name
    return method


#: the floating casts (of :data:`~convcost.torch.ops.CAST_DTYPES`), which return the tensor itself where it has
#: that dtype already (``x.float() is x`` for a float32 ``x``, and ``x.to(torch.float32)``): a mixture of experts
#: makes one per expert and per step
_CASTS = {name: dtype for name, dtype in CAST_DTYPES.items() if dtype.is_floating_point}


def _cast_method(name):
    """``x.float()`` (``double``, ``half``, ``bfloat16``, ``to(dtype)``): the stand-in itself where its dtype is
    already the one asked, as PyTorch returns the tensor itself, and no call read (it makes no row, no copy, no
    node of autograd's); any other spelling or dtype goes through the rules."""
    general = _tensor_method(name)

    def method(self, *args, **kwargs):
        if name == "to":
            dtype = args[0] if len(args) == 1 and not kwargs else kwargs.get("dtype") if len(kwargs) == 1 and \
                not args else None
        else:
            dtype = _CASTS[name] if not args and not kwargs else None
        real = self.alongside
        if dtype is not None and self.value.dtype is dtype and (real is None or real.dtype is dtype):
            return self
        return general(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


#: every tensor method is one of Shaped's own, made once here rather than by ``__getattr__`` at every call (a
#: forward calls ``x.view``, ``x.transpose`` ... hundreds of times); those whose answer may come from the values
#: (:data:`_VALUES`) stay with ``__getattr__``, and so does a method added to ``torch.Tensor`` after this import
for _name in dir(torch.Tensor):
    if not _name.startswith("__") and _name not in _VALUES and _name not in vars(Shaped) and callable(
            getattr(torch.Tensor, _name, None)):
        setattr(Shaped, _name, _cast_method(_name) if _name in _CASTS or _name == "to" else _tensor_method(_name))


class _Session(TorchFunctionMode):
    """One forward on shapes: the walk that makes the rows, the module stack, the model's tensors.

    It is also a ``TorchFunctionMode``, so that it sees the calls no :class:`Shaped` value takes part in
    (work on a constant made in the forward, such as a positional encoding built with ``torch.arange``):
    those run for real and are read by the rules of the call-by-call reading.
    """

    def __init__(self, model, inputs, device, training=False, with_values=False, tree=None, lazy=True):
        super().__init__()
        tree = Tree(model) if tree is None else tree
        self.walk = Walk(model, inputs, symbolic=False, training=training, modules=tree.named)
        self.with_values = with_values
        # without values, the integer tensors given (token ids, masks) and the integer buffers still carry their
        # values, and so does what is computed from them alone (mask code): True while those values are what
        # the forward's tensors hold, False from the first call that may write into one and is not computed
        self.current = True
        # without values: the storages of tensors of the forward's own (constants, not stand-ins) that a call not run
        # on tensors wrote into (``scale[0] = x.mean()``): their values are not what PyTorch's would be, so a call
        # that reads one cannot be run as it is made
        self.stale = set()
        self.paths = tree.paths
        # the model's parameters and buffers, read in a forward as shapes too (as fx reads them as graph
        # inputs), so that work done on them (a position-bias MLP on a coordinate table) is counted: id -> the
        # one Shaped of each, made when the forward first reads it
        self.attributes = {}
        # id -> (buffer, a copy): the buffers of the modules the forward reached, as they were (the tensors
        # computed alongside may write into them: a step counter, batch norm's running statistics)
        self.buffers = {}
        self.stack = []
        self.busy = 0  # inside convcost's own machinery (a rule, a reader, a meta run): calls pass through
        # whether the forward's Python is asking isinstance (a stand-in is a tensor to it); lazy: told by the frame
        # asking, else by a profile function over the forward's own code (where the frame cannot tell)
        self.checks = Watch(lazy=lazy)
        # the dtype of a computed value whose dtype the rules leave open: the floating one (token ids are
        # int64, but what is computed from them through an embedding is not)
        given = [i.dtype for i in (*inputs.positional, *inputs.keywords.values())]
        self.dtype = next((d for d in given if d is not None and d.is_floating_point), None) or next(
            (t.dtype for t in model.parameters() if t.is_floating_point()), torch.get_default_dtype())
        self.device = torch.device(device)
        # without values (inference): the calls read so far, in order, with their results, so that the first value
        # the forward reads that a shape cannot give is computed then (:meth:`catch_up`), the reading going on with
        # values from there, rather than the forward being read again from its start with values; None once the
        # reading has values, or where it cannot catch up (a write into a tensor that is not a stand-in)
        self.tape = [] if not (with_values or training) else None
        self.inputs, self.given = inputs, ()  # the inputs, and their stand-ins (set by the reading)
        self.sources = []  # (stand-in, tensor) of the model's floating parameters and buffers read without values
        self.modules_reached = []  # whose buffers a catch-up copies too (a reading with values writes into them)
        self.values_from = None  # why the reading went on with values (:meth:`catch_up`), where it did

    def reached(self, module) -> None:
        """A module the forward can now reach: the buffers a reading may write into copied, to be put back."""
        if self.tape is not None:
            self.modules_reached.append(module)
        for buffer in vars(module)["_buffers"].values():
            if buffer is not None and id(buffer) not in self.buffers and (self.with_values or _integral(buffer)):
                self.buffers[id(buffer)] = (buffer, buffer.detach().clone())

    def call(self, kind, target, args, kwargs):
        context = self.stack[-1] if self.stack else ""
        if self.walk.training and kind == FUNCTION and op_of(kind, target).by_parts:
            watching = self.checks.watch()  # its Python body is the forward's own code
            try:
                return descend(target, args, kwargs)
            finally:
                if watching:
                    self.checks.pause()
        self.busy += 1
        paused = self.checks.pause()  # convcost's own code from here: no isinstance of the forward to watch
        try:
            # busy, the session's mode would only pass each torch call the walker and the tensors computed alongside
            # make straight through (a meta tensor made, a shape read: a few microseconds each through the mode), so
            # none reaches it
            with torch_functions_off():
                return self.read(kind, target, args, kwargs, context)
        finally:
            self.walk.computed = None
            self.checks.resume(paused)
            self.busy -= 1

    def read(self, kind, target, args, kwargs, context):
        """The call read by the walker (busy, unwatched): its result as the forward gets it."""
        known = self.with_values or self.current and _all_known_in(args, kwargs) and not (
            self.stale and holds((args, kwargs), self.is_stale))
        event = Event(kind, target, _unwrap(args), _unwrap(kwargs) if kwargs else {}, context)
        if not known and self.tape is not None and sized_by_values(event):  # (nonzero, x[mask]): on values from here
            self.catch_up(f"the output shape of {event.label}")
            known, event = True, Event(kind, target, _unwrap(args), _unwrap(kwargs) if kwargs else {}, context)
        computed = self.walk.computed = _Once(self, kind, target, args, kwargs) if known else None
        try:  # own_code("the shape reading"), spelled out: it wraps every call of the forward
            result = self.walk.call(event)
        except (ConvcostError, InternalError):
            raise
        except Exception as exc:
            raise InternalError("the shape reading", exc) from exc
        if self.with_values:
            real = computed()
            return _with_reals(_wrap(result), real)  # (its size checks: busy too)
        real = self.known_result(computed, kind, target, args, kwargs) if computed is not None or self.current \
            else None
        out = _wrap(result)
        if real is not None:
            _with_reals(out, real, strict=False)
        elif _may_write(kind, target, args, kwargs):
            written = kwargs["out"] if kwargs and "out" in kwargs else args[0] if args else None
            if _is_plain_tensor(written):
                self.stale.add(_storage(written))
        if self.tape is not None:
            self.taped(kind, target, args, kwargs, computed, out)
        return out

    def taped(self, kind, target, args, kwargs, computed, out) -> None:
        """The call kept for :meth:`catch_up`, its arguments' lists and dicts copied (a forward may append to a list
        it passed). A call that may write into a tensor that is no stand-in (a constant of the forward), or make a
        view of one, ends the tape: calls run since on that tensor's values would not see a write made at catch-up."""
        if holds((args, kwargs), _is_plain_tensor) and (
                _inplace(target) if kind == MODULE else _may_write(kind, target, args, kwargs) or
                op_of(kind, target).view):
            self.tape = None
            return
        if computed is not None and args and _may_write(kind, target, args, kwargs) and self.read_before(args[0]):
            # a write run now (on values known: ids, masks) into a tensor that a call kept, not run, reads: at
            # catch-up that call would read the values written after it
            self.tape = None
            return
        self.tape.append((kind, target, _kept(args), _kept(kwargs) if kwargs else kwargs, computed, out))

    def read_before(self, written) -> bool:
        """Whether a call on the tape that has not run reads the storage of ``written`` (a stand-in's tensor, or a
        tensor of the forward's own)."""
        storage = _storage_of(written)
        if storage is None:
            return False
        for _, _, args, kwargs, computed, _ in self.tape:
            if computed is None and holds((args, kwargs), lambda v: _storage_of(v) == storage):
                return True
        return False

    def is_stale(self, value) -> bool:
        """Whether ``value`` is a tensor of the forward's own that a call not run wrote into (:attr:`stale`)."""
        return _is_plain_tensor(value) and _storage(value) in self.stale

    def values_for(self, shaped, why) -> bool:
        """Whether the forward can read ``shaped``'s values now: computed alongside (and current), or computed here
        by catching up (:meth:`catch_up`, ``why``: what the forward reads)."""
        if shaped.alongside is not None and self.current:
            return True
        if self.tape is None:
            return False
        self.busy += 1
        paused = self.checks.pause()  # convcost's own code
        try:
            with torch_functions_off():  # (busy: as in call)
                self.catch_up(why)
        finally:
            self.checks.resume(paused)
            self.busy -= 1
        return shaped.alongside is not None

    def catch_up(self, why) -> None:
        """From here the reading has values, as if it had been one with values from the start: the inputs, the model's
        parameters and buffers read so far get their tensors, the calls read so far (:attr:`tape`) run on tensors in
        their order (what the forward wrote in place written again, in place, into the same tensors; a result
        computed already taken as it is), each result given its tensor, and every call after this runs on tensors
        too. ``why``: the value the forward reads, which a shape cannot give (the report's note). Busy, unwatched.
        Where a call's result on tensors differs from its result on shapes, :class:`NeedsTensors` (as in a reading
        with values)."""
        tape, self.tape = self.tape, None
        self.with_values, self.current, self.values_from = True, True, why
        positional, keywords = _fresh(self.inputs.real(self.device))
        for shaped, real in zip(self.given, (*positional, *keywords.values())):
            if shaped.alongside is None:
                shaped.alongside = real
        for shaped, tensor in self.sources:
            if shaped.alongside is None:
                shaped.alongside = tensor
        for module in self.modules_reached:  # their floating buffers copied too, before a call writes into them
            self.reached(module)
        for kind, target, args, kwargs, computed, out in tape:
            if kind == MODULE:
                with no_autograd():
                    real = _ORIGINAL_CALL(target, *_reals(args), **_reals(kwargs))
            else:
                real = (computed or _Once(self, kind, target, args, kwargs))()
            _with_reals(out, real)

    def known_result(self, computed, kind, target, args, kwargs):
        """Without values: the call's result on the values known (None where an operand has none); a call that
        may write into a tensor whose values are known, and is not computed, leaves no value current. Where PyTorch
        fails on the values known (``softmax`` of token ids, ``ids *= 0.5``), :class:`NeedsTensors`: the reading
        with values runs the forward as PyTorch does, and says what PyTorch says."""
        if computed is not None:
            try:
                return computed()
            except NeedsTensors:  # an operand without values
                pass
            except Exception as exc:  # noqa: BLE001 - PyTorch's own refusal of the call
                raise NeedsTensors(f"PyTorch fails on the values known ({first_line(exc)})") from None
        if self.current and _may_write(kind, target, args, kwargs) and holds((args, kwargs), _has_real):
            self.current = False
        return None

    def real_call(self, kind, target, args, kwargs):
        """The call on the tensors computed alongside (the forward may read its values), without autograd."""
        args, kwargs = _reals(args), _reals(kwargs) if kwargs else kwargs
        if torch.is_grad_enabled():  # (no_autograd(), without a null context for an inference reading's calls)
            with torch.no_grad():
                return getattr(args[0], target)(*args[1:], **kwargs) if kind == METHOD else target(*args, **kwargs)
        return getattr(args[0], target)(*args[1:], **kwargs) if kind == METHOD else target(*args, **kwargs)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.busy:
            return func(*args, **kwargs)
        paused = self.checks.pause()  # convcost's code, or a constant's call (no stand-in in it): nothing to watch
        try:
            if _any_shaped(args, kwargs):  # (Shaped.__torch_function__, without the lookups: this thread's session)
                if (getattr(func, "__qualname__", "") or "").startswith(("TensorBase.", "Tensor.", "_TensorBase.")):
                    return self.call(METHOD, func.__name__, args, kwargs)
                return self.call(FUNCTION, func, args, kwargs)
            if self.stale and holds((args, kwargs), self.is_stale):
                raise NeedsTensors("a value written into a tensor of the forward's own by a call a shape cannot run")
            if func is SET_GRAD_ENABLED or not torch.is_grad_enabled():  # the forward's own torch.no_grad(),
                out = func(*args, **kwargs)  # which the walker reads; or an inference reading's constant
            else:
                with torch.no_grad():  # a constant of the forward: no autograd graph (a step's reading: grad on)
                    out = func(*args, **kwargs)
            self.busy += 1
            try:
                if seen(func):
                    with own_code("the shape reading"), torch_functions_off():  # (busy: as in call)
                        self.walk.read(event_of(func, args, kwargs, self.stack[-1] if self.stack else "",
                                                sys._getframe(1)))
            finally:
                self.busy -= 1
            return out
        finally:
            self.checks.resume(paused)

    def function(self, cls, args, kwargs):
        """``cls.apply(*args, **kwargs)`` of a custom ``torch.autograd.Function``: its forward run here, grad
        disabled (each call read as forward work); in a training step, then the Function itself, what it saves and
        its own backward (:meth:`convcost.torch.walker.Walk.custom_function`). An inference reading takes it too:
        torch's own ``apply`` hands what ``isinstance`` calls a tensor to C++ functions, which refuse a stand-in
        (:mod:`convcost.torch.tensor_checks`)."""
        if self.busy:
            return apply_function(cls, args, kwargs)
        if not (self.walk.training and torch.is_grad_enabled()):  # inference, or within no_grad (or another
            # Function's forward): forward work, no node
            return custom_functions.run_forward(cls, custom_functions.Context(False for _ in args), args, kwargs)
        inputs = [t for t in _unwrap((*args, *kwargs.values())) if isinstance(t, Tensor)]
        ctx = custom_functions.Context(isinstance(t, Tensor) and bool(self.walk.record.tracked(t).grad)
                                       for t in _unwrap(args))
        out = custom_functions.run_forward(cls, ctx, args, kwargs)
        shaped = _flat_shaped(out)
        quiet = custom_functions.non_differentiable(ctx)
        self.busy += 1
        try:
            with own_code("the shape reading"):
                made = self.walk.custom_function(
                    cls.__name__, f"{self.stack[-1]}.{cls.__name__}" if self.stack else cls.__name__, inputs,
                    [None if id(s) in quiet else s.value for s in shaped],
                    [t for t in _unwrap(ctx.to_save) if isinstance(t, Tensor)],
                    lambda: custom_functions.backward_cost(
                        cls, ctx, [_meta_of(s) for s in shaped], _meta_of, Session))
        finally:
            self.busy -= 1
        for s, t in zip(shaped, made):
            if t is not None:
                s.value = t
        return out

    def module(self, module, args, kwargs):
        path = self.paths.get(id(module))
        if path is None or self.busy:  # made during the forward (its calls are its caller's), or a meta run
            return _ORIGINAL_CALL(module, *args, **kwargs)
        paused = self.checks.pause()  # convcost's code, but for the module's own forward
        try:
            if type(module) in LEAF_TYPES:
                self.busy += 1  # the reader reads the module's own tensors, not their shaped stand-ins
                try:
                    with torch_functions_off():  # (busy: as in call)
                        plain = _unwrap(args), _unwrap(kwargs)
                        one = self.walk.one_row(module, *plain)
                finally:
                    self.busy -= 1
                if one:
                    read = self.read_module(path, module, args, kwargs, plain)
                    if read is not None:
                        return read
            self.walk.record.entered(path, module, [a.value.shape if isinstance(a, Shaped) else a.shape
                                                    for a in args if isinstance(a, (Shaped, torch.Tensor))])
            self.stack.append(path)
            watching = self.checks.watch()
            try:
                out = _ORIGINAL_CALL(module, *args, **kwargs)
            finally:
                if watching:
                    self.checks.pause()
                self.stack.pop()
            self.walk.record.called(path, module, out)
            return out
        finally:
            self.checks.resume(paused)

    def read_module(self, path, module, args, kwargs, plain):
        """The module as one row, as every reading reads it (``plain``: its arguments as the walker takes them);
        None where its reader cannot (then it is read by what it calls, as every reading does)."""
        self.busy += 1
        paused = self.checks.pause()
        try:
            try:  # own_code("the shape reading"), spelled out (as in read)
                with torch_functions_off():  # (busy: as in call)
                    out = self.walk.call(Event(MODULE, module, *plain, path))
            except (ConvcostError, InternalError):
                raise
            except Exception as exc:
                raise InternalError("the shape reading", exc) from exc
            real = None
            if self.with_values:
                with no_autograd():
                    real = _ORIGINAL_CALL(module, *_reals(args), **_reals(kwargs))
            elif _inplace(module) and holds((args, kwargs), _has_real):
                self.current = False  # it may write into a tensor whose values are known
            out = _with_reals(_wrap(out), real, strict=self.with_values)
            if self.tape is not None:
                self.taped(MODULE, module, args, kwargs, None, out)
            return out
        except ConvcostError:
            return None
        finally:
            self.checks.resume(paused)
            self.busy -= 1


def _inplace(module) -> bool:
    """``getattr(module, "inplace", False) is True`` without ``nn.Module.__getattr__`` (and the AttributeError it
    raises for the many modules that have no such flag): torch's modules keep it in their own ``__dict__``."""
    own = vars(module)
    return (own["inplace"] if "inplace" in own else getattr(type(module), "inplace", False)) is True


class _Once:
    """A call on the tensors computed alongside (:meth:`_Session.real_call`) run at most once: its result, or its
    exception raised again, at every ask."""

    __slots__ = ("session", "call", "done")

    def __init__(self, session, *call):
        self.session, self.call, self.done = session, call, None

    def __call__(self):
        if self.done is None:
            try:
                self.done = (True, self.session.real_call(*self.call))
            except Exception as exc:  # noqa: BLE001 - kept, and raised to whoever asks
                self.done = (False, exc)
        ok, value = self.done
        if not ok:
            raise value
        return value


def _reals(value):
    """The tensors computed alongside, in place of the :class:`Shaped` values."""
    if isinstance(value, Shaped):
        if value.alongside is None:
            raise NeedsTensors("a value computed without its tensor")
        return value.alongside
    if type(value) is tuple:  # a call's arguments (as _unwrap: a list comprehension, the common items inline)
        return tuple([v.alongside if type(v) is Shaped and v.alongside is not None else v if type(v) in _ATOMS else
                      _reals(v) for v in value])
    if type(value) is list:
        return [_reals(v) for v in value]
    if type(value) is dict:
        return {k: _reals(v) for k, v in value.items()}
    return value


def _with_reals(shaped, real, strict=True):
    """``shaped`` (a call's result on shapes) with the tensors of ``real`` (the same call's on tensors);
    ``strict``: a disagreement ends the reading (else the result is left without values)."""
    if real is None:
        return shaped
    if isinstance(shaped, Shaped):
        if not isinstance(real, torch.Tensor) or tuple(real.shape) != tuple(shaped.value.shape):
            if strict:
                raise NeedsTensors("a call whose result on tensors differs from its result on shapes")
            return shaped
        shaped.alongside = real
    elif isinstance(shaped, (tuple, list)) and isinstance(real, (tuple, list)) and len(shaped) == len(real):
        for s_item, r_item in zip(shaped, real):
            _with_reals(s_item, r_item, strict)
    return shaped


def _all_known(value) -> bool:
    """Whether every :class:`Shaped` value in ``value`` carries its tensor."""
    if isinstance(value, Shaped):
        return value.alongside is not None
    if type(value) in (tuple, list):
        return all(map(_all_known, value))
    if type(value) is dict:
        return all(map(_all_known, value.values()))
    return True


def _all_known_in(args, kwargs) -> bool:
    """``_all_known((args, kwargs))``, a call's operands looked at in one loop (asked at every call of the forward)."""
    for value in args:
        if isinstance(value, Shaped):
            if value.alongside is None:
                return False
        elif type(value) in _NESTED and not _all_known(value):
            return False
    return not kwargs or _all_known(kwargs)


def _any_shaped(args, kwargs) -> bool:
    """``holds((args, kwargs), _is_shaped)``, in one loop over the operands (asked at every torch call the forward
    makes)."""
    for value in args:
        if isinstance(value, Shaped) or type(value) in _NESTED and holds(value, _is_shaped):
            return True
    return bool(kwargs) and holds(kwargs, _is_shaped)


#: the containers a call's operands are looked into (as :func:`~convcost.torch.leftovers.holds` does)
_NESTED = frozenset({tuple, list, dict})


def _has_real(value) -> bool:
    return isinstance(value, Shaped) and value.alongside is not None


def _is_plain_tensor(value) -> bool:
    """A tensor that is no stand-in (a constant the forward made, a tensor it was handed outside its inputs)."""
    return type(value) is not Shaped and isinstance(value, torch.Tensor)


def _storage(tensor) -> int:
    """The address of ``tensor``'s storage: the same for every view of it."""
    return tensor.untyped_storage().data_ptr()


def _storage_of(value):
    """:func:`_storage` of a stand-in's tensor or of a tensor of the forward's own; None for anything else."""
    real = value.alongside if isinstance(value, Shaped) else value
    return _storage(real) if isinstance(real, torch.Tensor) else None


def _kept(value):
    """``value`` with the lists and dicts in it copied (the stand-ins in them the same), for a call kept to run
    later (:meth:`_Session.catch_up`): the forward may change a list after passing it."""
    if type(value) is tuple:
        for item in value:
            if type(item) in _NESTED:
                return tuple(_kept(v) for v in value)
        return value
    if type(value) is list:
        return [_kept(v) for v in value]
    if type(value) is dict:
        return {k: _kept(v) for k, v in value.items()}
    return value


#: the operators that write into their left operand
_WRITES = frozenset({operator.setitem, operator.iadd, operator.isub, operator.imul, operator.itruediv,
                     operator.ifloordiv, operator.imod, operator.ipow, operator.iand, operator.ior, operator.ixor,
                     operator.ilshift, operator.irshift, operator.imatmul})


#: the tensor methods that write into the tensor they are called on (``x[i] = v`` on a tensor of the forward's own)
_WRITING_METHODS = frozenset(f"__{name.__name__}__" for name in _WRITES)


def _may_write(kind, target, args, kwargs) -> bool:
    """Whether a call may write into a tensor it is given (``x.masked_fill_``, ``x[i] = v``, ``out=``,
    ``inplace=True``; a positional ``True`` is taken for an ``inplace``: erring towards yes only costs speed)."""
    name = target if kind == METHOD else getattr(target, "__name__", "") or ""
    if name.endswith("_") and not name.endswith("__") or target in _WRITES or name in _WRITING_METHODS:
        return True
    if kwargs and ("out" in kwargs or kwargs.get("inplace") is True):
        return True
    for a in args:
        if a is True:
            return True
    return False


def _flat_shaped(value) -> list:
    """The :class:`Shaped` values in what a forward returned (a tensor, tuples, lists, dicts, a named tuple)."""
    if isinstance(value, Shaped):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _flat_shaped(v)]
    return []


def _meta_of(value):
    """A :class:`Shaped` value or a tensor as a meta tensor of its shape and dtype (None for anything else)."""
    if isinstance(value, Shaped):
        return torch.empty(value.value.shape, dtype=value.dtype, device="meta")
    if isinstance(value, torch.Tensor):
        return torch.empty_like(value, device="meta")
    return None


def _is_shaped(value) -> bool:
    return isinstance(value, Shaped)


def _unwrap(value):
    if type(value) in _ATOMS:  # a size, a dim, a flag: most arguments that are not tensors
        return value
    if isinstance(value, Shaped):
        real, t = value.alongside, value.value
        if isinstance(real, torch.Tensor) and not t.shape and t.tensor is None and not (
                real.is_floating_point() or real.is_complex() or real.dtype is torch.bool):
            # a 0-d integer computed in the forward (a padding, an index): its value, for a rule that reads it
            return Tensor(t.shape, real, t.name, t.dtype, grad=t.grad, storage=t.storage, layout=t.layout)
        return t
    if isinstance(value, torch.Tensor):  # a parameter, buffer or constant: its shape, and itself
        return Tensor(tuple(int(x) for x in value.shape), value, dtype=value.dtype, grad=value.requires_grad)
    if type(value) is tuple:  # a call's arguments: a list made at C speed, not a generator (and the two most
        # common arguments, a stand-in that is no 0-d value and a number, without a call each)
        return tuple([v.value if type(v) is Shaped and (v.alongside is None or v.value.shape) else
                      v if type(v) in _ATOMS else _unwrap(v) for v in value])
    if type(value) is list:
        return [_unwrap(v) for v in value]
    if type(value) is dict:
        return {k: _unwrap(v) for k, v in value.items()} if value else {}
    return value


_ATOMS = frozenset({int, float, bool, str, type(None)})
_NOTHING = contextlib.nullcontext()


def _wrap(value):
    if isinstance(value, Tensor):
        return Shaped(value)
    if isinstance(value, Unknown):
        raise NeedsTensors(f"the output shape of {value.op}")
    if type(value) is tuple and value and all(type(x) is int for x in value):
        return value
    if type(value) in (tuple, list):
        return type(value)(_wrap(v) for v in value)
    if isinstance(value, tuple):  # torch.return_types (x.max(1)) or a named tuple: the same type, wrapped
        items = [_wrap(v) for v in value]
        return type(value)(items) if type(value).__module__ == "torch.return_types" else type(value)(*items)
    return value


_ORIGINAL_CALL = module_body


def _module_tensor(value, name):
    """What ``module.weight`` gives the forward: the one :class:`Shaped` of a parameter or buffer of the model
    (a reader, busy inside convcost, gets the tensor itself)."""
    session = _LOCAL.session
    if session is None or session.busy:  # another thread, or a reader that wants the tensor
        return value
    key = id(value)
    shaped = session.attributes.get(key)
    if shaped is None:  # one Shaped per tensor, so that `self.weight is self.weight` still holds
        # busy, and no mode: the tensor's own attribute reads (shape, dtype ...) pass straight through
        session.busy += 1
        try:
            with torch_functions_off():
                shaped = session.attributes[key] = Shaped(Tensor(tuple(value.shape), value, name, value.dtype,
                                                                 grad=value.requires_grad),
                                                          value if session.with_values or _integral(value) else None)
                if shaped.alongside is None and session.tape is not None:
                    session.sources.append((shaped, value))  # its values, should the reading catch up
        finally:
            session.busy -= 1
    return shaped


def _module_call(module, *args, **kwargs):
    session = _LOCAL.session
    if session is None:  # another thread's module, or one called outside the forward
        return _ORIGINAL_CALL(module, *args, **kwargs)
    return session.module(module, args, kwargs)


def read_shapes(model, inputs, device="cpu", training=False, with_values=False, kept=None):
    """Run ``model``'s forward on shapes (:class:`Shaped` inputs); the :class:`Recorder` of its rows.

    ``with_values``: every call also runs on tensors (the inputs given, or zeros), alongside and without a
    graph, so that a forward may read values (``if x.sum() > 0``, ``int(n)``); the rows are still the rules'.
    Raises :class:`NeedsTensors` when the forward needs values (and ``with_values`` is off, or a call's
    result on tensors disagrees with its result on shapes), and :class:`ConvcostError` when a rule refuses an
    input (a channel mismatch, a wrong rank). ``kept``: the :class:`~convcost.torch.leftovers.Attributes` the
    caller took of the model before (profile's own), so that a large model is not snapshotted twice; the caller
    then puts the model back after a reading that succeeds (one that fails is put back here, before the next).
    """
    try:
        return _read(model, inputs, device, training, with_values, kept, lazy=True)
    except _Unsure:  # a stand-in asked its class where the asking frame cannot say who asks: read again, watched
        return _read(model, inputs, device, training, with_values, kept, lazy=False)


class _Unsure(Exception):
    """A stand-in was asked its class by a call its frame does not name (:attr:`Watch.unsure`)."""


def _read(model, inputs, device, training, with_values, kept, lazy):
    if inputs.symbolic:
        raise NeedsTensors("symbolic sizes (read by torch.fx)")
    if any(isinstance(i.tensor, list) for i in inputs.all):
        raise NeedsTensors("a list of tensors as one input")
    restored_here, kept = kept is None, kept or Attributes(model, lazy=True)  # a caller's: the caller restores
    kept.touch(model)  # (its training flag, where the caller sets one, before it is read as one layer)
    session = _Session(model, inputs, device, training, with_values, kept.tree, lazy)
    with own_code("the shape reading"):
        if session.walk.is_layer():
            return session.walk.bare_layer()
    real_args, real_kwargs = _fresh(inputs.real(device)) if with_values else _integral_given(inputs)
    args = tuple(Shaped(session.walk.input_tensor(i), r) for i, r in zip(inputs.positional, real_args))
    kwargs = {k: Shaped(session.walk.input_tensor(i), real_kwargs.get(k)) for k, i in inputs.keywords.items()}
    session.given = (*args, *kwargs.values())

    def reached(module):  # before the forward can reach it: remembered, its buffers copied
        kept.touch(module)
        session.reached(module)

    with TRACING.exclusive(), torch.random.fork_rng(devices=[]):
        _LOCAL.session = session
        failed = True
        try:
            # a training reading runs with grad enabled, so that a forward's own torch.no_grad() is seen (every
            # real computation inside is run without autograd)
            with module_calls(model, session.paths, _module_call, _module_tensor, reached, session.checks), \
                    functions_read(session.function), torch.set_grad_enabled(training), session, session.checks:
                out = _ORIGINAL_CALL(model, *args, **kwargs)
            if session.checks.unanswered:
                raise NeedsTensors("a value's class asked under another profiler (sys.setprofile), which hides "
                                   "whether isinstance asked it")
            if training:
                session.walk.record.returned(s.value.storage for s in _flat_shaped(out) if s.value.storage is not None)
            session.walk.record.values_from = session.values_from
            if session.checks.unsure:
                raise _Unsure
            failed = False
        except (NeedsTensors, ConvcostError, InternalError):
            if session.checks.unsure:  # (the forward may have failed on that answer)
                raise _Unsure from None
            raise
        except Exception as exc:  # noqa: BLE001 - code a shape cannot run (type(x) is torch.Tensor, numpy ...)
            if session.checks.unsure:
                raise _Unsure from None
            raise NeedsTensors(f"{type(exc).__name__}: {exc}") from None
        finally:
            _LOCAL.session = None
            if restored_here or failed:  # before another reading runs the forward again
                kept.restore(_is_shaped)
            # the tensors computed alongside update what a forward updates (batch norm's running statistics, the
            # RNG): both are put back, so that reading a model never changes it
            with torch.no_grad():
                for buffer, value in session.buffers.values():
                    buffer.copy_(value)
    return session.walk.record


def _integral(tensor) -> bool:
    """A tensor whose values a reading without values keeps: integers or booleans (ids, masks, positions)."""
    return not (tensor.is_floating_point() or tensor.is_complex())


def _integral_given(inputs):
    """For a reading without values: copies of the integer tensors given (token ids, masks), None for the rest."""
    take = lambda i: i.tensor.detach().clone() if i.tensor is not None and _integral(i.tensor) else None  # noqa: E731
    return tuple(take(i) for i in inputs.positional), {k: take(i) for k, i in inputs.keywords.items()}


def _fresh(given):
    """Copies of the tensors given (a forward may write into its input), and zeros for shapes."""
    args, kwargs = given
    copy = lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else t  # noqa: E731
    return tuple(copy(t) for t in args), {k: copy(t) for k, t in kwargs.items()}

