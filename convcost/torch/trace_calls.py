"""The reading that sees every call: the model's own forward, run on meta tensors under a
``TorchFunctionMode``, with the module path of each call from global module hooks.

Everything the model calls reaches the mode with concrete shapes: ``F.conv2d`` from a ``Conv2d``
subclass that pads in its forward, ``torch.bmm`` in attention, tensor methods and operators. Each call
goes through the same rules as the fx reading (:mod:`convcost.torch.bindings`) and makes the same rows.
A module whose exact type reads as a primitive is one row, and the calls inside it are its own; every
other module is read by what it calls. A call convcost cannot count is listed with its count and call
sites, marked as possibly holding MACs unless it is known element-wise or reduction work.

Parameters and buffers are swapped for meta tensors call by call (the model is never modified), so a
large model costs microseconds per call. A forward whose Python reads tensor values (``if x.sum() > 0``)
cannot run on meta; it is run again on real tensors (zeros, or the tensors given).
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch.nn.modules import module as module_hooks
from torch.overrides import TorchFunctionMode

from convcost.errors import ConvcostError
from convcost.torch.binding import FUNCTIONS, METHODS
from convcost.torch.leftovers import Attributes
from convcost.torch.record import NO_MACS, SHAPE_ONLY, Recorder
from convcost.torch.registry import REGISTRY
from convcost.torch.rules import WITH_INDICES, Emit, NoRule, Tensor
from convcost.torch.trace_fx import LEAF_TYPES

#: operator spellings of tensor methods, read by the method's rule
_DUNDER = {"__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub", "__rsub__": "sub",
           "__isub__": "sub", "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul_", "__truediv__": "div",
           "__rtruediv__": "div", "__itruediv__": "div", "__div__": "div"}


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


class Session(TorchFunctionMode):
    """One forward of one model: the module stack, the meta copies of its tensors, and the recorder."""

    def __init__(self, model, meta: bool):
        super().__init__()
        self.model, self.meta = model, meta
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.types = {name: type(m).__name__ for name, m in model.named_modules()}
        self.stack = []  # (path, inside a module read as one row)
        self.copies = {}  # id(tensor) -> (tensor, its meta copy)
        self.record = Recorder(model)

    # -- modules ------------------------------------------------------------------------------
    def enter(self, module, args):
        parent, inside = self.stack[-1] if self.stack else ("", False)
        path = self.paths.get(id(module))
        if path is None:  # a module made during the forward: its calls belong to the caller
            path = parent
        if inside:
            self.stack.append((path, True))
            return
        read = False
        if type(module) in LEAF_TYPES and len(args) == 1 and isinstance(args[0], torch.Tensor):
            read = self.read_module(path, module, tuple(args[0].shape))
        elif path in self.types:
            self.record.entered(path, module, [a.shape for a in args if isinstance(a, torch.Tensor)])
        self.stack.append((path, read))

    def leave(self, module, output=None):
        if self.stack:
            path, read = self.stack.pop()
            if not read and (not self.stack or not self.stack[-1][1]) and id(module) in self.paths:
                self.record.called(path, module, output)

    def read_module(self, path, module, shape) -> bool:
        """One row for a module read through its reader; False (read by its calls) when it cannot be."""
        try:
            spec = REGISTRY.read(module)
            output = WITH_INDICES if getattr(module, "return_indices", False) else None
            self.record.emit(self.record.unique(path), type(module).__name__,
                             Emit(spec, [shape], tuple(module.parameters()), output), "module")
        except ConvcostError:  # the reader disagrees with PyTorch on this input: read what it calls
            return False
        return True

    # -- calls --------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = self.run(func, args, kwargs)
        if self.stack and self.stack[-1][1]:
            return out  # part of a module counted as one row
        read_call(self.record, func, args, kwargs, self.stack[-1][0] if self.stack else "")
        return out

    def run(self, func, args, kwargs):
        if self.meta:
            args, kwargs = self.to_meta(args), self.to_meta(kwargs)
            if func in _SAME_SHAPE and args and isinstance(args[0], torch.Tensor):
                return torch.empty_like(args[0])  # meta runs these through slow Python decompositions
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


#: functions whose output has their first argument's shape and dtype (normalisations, activations)
_SAME_SHAPE = frozenset({
    F.batch_norm, torch.batch_norm, F.layer_norm, torch.layer_norm, F.group_norm, torch.group_norm,
    F.instance_norm, torch.instance_norm, F.rms_norm, F.relu, torch.relu, F.relu6, F.silu, F.gelu, F.hardswish,
    F.hardsigmoid, F.sigmoid, torch.sigmoid, F.hardtanh, F.leaky_relu, F.elu, F.mish, torch.tanh,
})


def read_call(record, func, args, kwargs, context: str) -> None:
    """Record one call made in module ``context`` through its rule: a row, or an unsupported entry with the
    reason (never a silent zero)."""
    name = getattr(func, "__name__", "")
    rule, label = _rule(func, name)
    short = label.rpartition(".")[2]
    here = f"{context}.{short}" if context else short
    if rule is None:
        if name not in SHAPE_ONLY and _has_tensor(args, kwargs):
            macs = name not in NO_MACS
            record.skip(label, here, "no convcost rule for this operation"
                        if macs else "element-wise or reduction work convcost does not count", macs=macs)
        return
    try:
        result = rule(_wrap(args), _wrap(kwargs))
        if isinstance(result, Emit):
            record.emit(record.unique(here), label, result, "function")
    except NoRule as why:
        record.skip(label, here, str(why), macs=name not in NO_MACS)
    except ConvcostError as why:  # the rule's layer refuses what PyTorch accepted: listed, not guessed
        record.skip(label, here, f"convcost cannot cost it: {why}")
    except Exception as exc:  # noqa: BLE001 - a call the rule did not foresee (an unusual signature): listed
        record.skip(label, here, f"its rule cannot read this call ({type(exc).__name__}: {exc})")


def _meta_copy(t):
    copy = torch.empty_like(t, device="meta")
    if isinstance(t, torch.nn.Parameter):
        copy = torch.nn.Parameter(copy, requires_grad=t.requires_grad)  # rules see parameters as parameters
    return copy


def _rule(func, name):
    """The rule and label of one call: a function by object, a tensor method by name."""
    rule = FUNCTIONS.get(func)
    qual = getattr(func, "__qualname__", "") or ""
    if rule is not None:
        return rule, _function_label(func, name)
    if qual.startswith(("TensorBase.", "Tensor.")):
        return METHODS.get(_DUNDER.get(name, name)), f"Tensor.{name}"
    return None, _function_label(func, name)


def _function_label(func, name) -> str:
    if getattr(F, name, None) is func:
        return f"F.{name}"
    if getattr(torch, name, None) is func:
        return f"torch.{name}"
    return name or repr(func)


def _has_tensor(args, kwargs) -> bool:
    return any(isinstance(a, torch.Tensor) or type(a) in (tuple, list) and any(isinstance(x, torch.Tensor) for x in a)
               for a in (*args, *kwargs.values()))


def _wrap(value):
    """Arguments as the rules take them: every tensor as a :class:`Tensor` (a parameter kept as itself)."""
    if isinstance(value, torch.Tensor):
        return Tensor(tuple(int(x) for x in value.shape), value if isinstance(value, torch.nn.Parameter) else None)
    if type(value) in (tuple, list):
        return type(value)(_wrap(v) for v in value)
    if type(value) is dict:
        return {k: _wrap(v) for k, v in value.items()}
    return value


def read_calls(model, inputs, device="cpu"):
    """Run ``model`` once on ``inputs`` under a :class:`Session`: on meta tensors, and again on real ones
    (zeros, or the tensors given) when the meta run fails (a forward that reads values, an op without a
    meta kernel, or an input PyTorch rejects: then PyTorch's own message is the real run's).
    Returns the recorder, the module types by path, and the device the forward ran on."""
    _install_hooks()
    try:
        try:
            return _once(model, inputs, True, device)
        except Exception:  # noqa: BLE001 - decided by the real run below
            if device == "meta":
                raise
        return _once(model, inputs, False, device)
    finally:
        _remove_hooks()


def _once(model, inputs, meta, device):
    session = Session(model, meta)
    args, kwargs = inputs.meta() if meta else inputs.real(device)
    kept = Attributes(model)
    _LOCAL.session = session
    try:
        with torch.no_grad(), session:
            model(*args, **kwargs)
    finally:
        _LOCAL.session = None
        if meta:  # a meta tensor the forward kept on a module (a cache) would break its next real run
            kept.restore(lambda value: isinstance(value, torch.Tensor) and value.is_meta and not value.__class__
                         is torch.nn.Parameter)
    return session.record, session.types, "meta" if meta else str(device)
