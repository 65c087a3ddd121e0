"""The reading for symbolic sizes: a ``torch.fx`` graph, each node handed to the walker as a call event.

Called modules whose exact type has a reader are leaves, read through the registry; every other module
(a ``Conv2d`` subclass, ``nn.LayerNorm`` ...) is traced through, so it is read by what it calls. Each
``call_function``, ``call_method`` and ``call_module`` node becomes one
:class:`~convcost.torch.events.Event`, its module path from fx's module stack, and
:class:`convcost.torch.walker.Walk` makes the rows; nothing is executed. Symbols in the input sizes give
closed forms.

Tracing patches ``nn.Module.__call__`` for the whole process while it runs, so it is done under the
exclusive side of :data:`convcost.torch.locks.TRACING` (no forward of a profile runs meanwhile).

>>> import sympy, torch.nn as nn
>>> from convcost.torch.inputs import model_inputs
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
>>> H = sympy.Symbol("H", positive=True, integer=True)
>>> record = read_graph(net, model_inputs(net, (1, 3, H, H)), trace(net))
>>> [(row.path, row.op, row.output_shape) for row in record.rows]
[('0', 'Conv2d', (1, 8, H - 2, H - 2)), ('1', 'ReLU', (1, 8, H - 2, H - 2))]
"""

from __future__ import annotations

import inspect
import threading
import weakref

import torch
import torch.fx

from convcost.errors import ConvcostError
from convcost.torch.events import FUNCTION, METHOD, MODULE, Event
from convcost.torch.locks import TRACING
from convcost.torch.rules import Tensor
from convcost.torch.walker import LEAF_TYPES, Walk, own_code

_KINDS = {"call_function": FUNCTION, "call_method": METHOD, "call_module": MODULE}


class LeafTracer(torch.fx.Tracer):
    """fx's tracer with convcost's leaves: a module is a leaf when its exact type reads as a primitive."""

    def is_leaf_module(self, m, qualname):
        return type(m) in LEAF_TYPES

    # fx looks a parameter up by scanning every parameter of the model at each use (quadratic: 50 s on
    # timm's densenet264d); the same first names, found once
    def _names(self, kind):
        maps = self.__dict__.setdefault("_convcost_names", {})
        key = (id(self.root), kind)
        if key not in maps:
            named = self.root.named_parameters() if kind == "params" else self.root.named_buffers()
            maps[key] = {}
            for n, t in named:
                maps[key].setdefault(id(t), n)
        return maps[key]

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        for kind, wanted in (("params", isinstance(attr_val, torch.nn.Parameter)),
                             ("buffers", self.proxy_buffer_attributes and isinstance(attr_val, torch.Tensor))):
            name = self._names(kind).get(id(attr_val)) if wanted else None
            if name is not None and not self.param_shapes_constant:
                if name not in parameter_proxy_cache:
                    parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
                return parameter_proxy_cache[name]
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_arg(self, a):
        if isinstance(a, torch.nn.Parameter):
            name = self._names("params").get(id(a))
            if name is not None:
                return self.create_node("get_attr", name, (), {})
        return super().create_arg(a)


_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TRACES_LOCK = threading.Lock()


def trace(model, inputs=None):
    """The fx graph of ``model`` (cached per model object while its submodules stay the same); given its
    ``inputs``, an optional input not given is traced as its default ``None`` (``if scale is None:`` takes the
    branch the forward takes, not the one a proxy takes)."""
    absent = _absent(model, inputs)
    fingerprint = (tuple((id(m), m.training) for m in model.modules()), absent)
    with _TRACES_LOCK:
        cached = _TRACES.get(model)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    with TRACING.exclusive():
        graph = LeafTracer().trace(model, concrete_args=dict.fromkeys(absent) or None)
    with _TRACES_LOCK:
        _TRACES[model] = (fingerprint, graph)
    return graph


def _absent(model, inputs) -> tuple:
    """The names of the optional inputs of ``model.forward`` that ``inputs`` leave at their default ``None``."""
    if inputs is None:
        return ()
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return ()
    return tuple(p.name for p in parameters[len(inputs.positional):]
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is None
                 and p.name not in inputs.keywords)


def read_graph(model, inputs, graph, training=False):
    """The :class:`~convcost.torch.record.Recorder` of ``model``'s rows, read from its fx ``graph``."""
    walk = Walk(model, inputs, inputs.symbolic, training, in_place=False)
    with own_code("the fx reading"):
        if walk.is_layer():
            return walk.bare_layer()
    env = {}
    positional = list(inputs.positional)
    modules = walk.modules
    for node in graph.nodes:
        if node.op == "placeholder":
            env[node] = _placeholder(walk, node, positional)
        elif node.op == "get_attr":
            tensor = _attr(model, node.target)
            env[node] = Tensor(tensor.shape, tensor, node.target, tensor.dtype, grad=tensor.requires_grad) \
                if isinstance(tensor, torch.Tensor) else tensor
        elif node.op != "output":
            args = torch.fx.node.map_arg(node.args, env.__getitem__)
            kwargs = torch.fx.node.map_arg(node.kwargs, env.__getitem__)
            with own_code("the fx reading"):
                env[node] = walk.call(_event(node, args, kwargs, modules))
    if positional:
        raise ConvcostError(f"profile: {type(model).__name__}.forward takes fewer inputs than the "
                            f"{len(inputs.positional)} given")
    return walk.record


def _event(node, args, kwargs, modules) -> Event:
    if node.op == "call_module":
        return Event(MODULE, modules[node.target], args, kwargs, node.target)
    stack = node.meta.get("nn_module_stack") or {}
    return Event(_KINDS[node.op], node.target, args, kwargs, next(reversed(stack.values()))[0] if stack else "")


def _placeholder(walk, node, positional):
    name = node.target.lstrip("*")
    if name in walk.inputs.keywords:
        return walk.input_tensor(walk.inputs.keywords[name])
    if positional and not node.target.startswith("**"):
        return walk.input_tensor(positional.pop(0))
    if node.args:
        return node.args[0]  # the argument's default
    raise ConvcostError(f"profile: {type(walk.model).__name__}.forward needs an input {name!r} that was not given")


def _attr(model, target):
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
