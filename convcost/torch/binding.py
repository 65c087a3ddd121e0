"""One home per primitive on the PyTorch side: everything torch-specific about a layer class, together.

A *binding* says, for one convcost layer class, which ``nn.Module`` types read
as it (``read``), which functional calls and tensor methods a traced model makes
that are it (``functions``, ``methods``), which module it builds (``build``),
and how each other tool's convention counts it (``conventions``, by tool name).
It is declared once, with :func:`binds`, beside the other bindings of its
family in :mod:`convcost.torch.bindings`; adding a primitive means its core class
and its binding, nothing else. Everything is keyed by class or by function
object, never by a class-name string, and a second registration of the same
module type, function, method or layer class is an error.

>>> import torch.nn as nn
>>> from convcost.primitives import Conv
>>> binding_of(Conv).modules
(<class 'torch.nn.modules.conv.Conv1d'>, <class 'torch.nn.modules.conv.Conv2d'>, <class 'torch.nn.modules.conv.Conv3d'>)
>>> sorted(binding_of(Conv).conventions)
['convcost', 'fvcore', 'ptflops', 'thop', 'torch', 'torchinfo']
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from convcost.errors import ConvcostError
from convcost.torch.registry import REGISTRY


@dataclasses.dataclass(frozen=True)
class Binding:
    """The PyTorch side of one convcost layer class (see the module docstring)."""

    layer: type
    modules: tuple = ()
    read: Callable | None = None
    build: Callable | None = None
    functions: dict = dataclasses.field(default_factory=dict)
    methods: dict = dataclasses.field(default_factory=dict)
    conventions: dict = dataclasses.field(default_factory=dict)
    # -- hooks of the walker (convcost.torch.walker), each None for the default --------------------------------
    #: ``(module, args, kwargs) -> [Tensor, ...] | None``: the tensors a module call reads as one row (default:
    #: its one positional tensor); None when the call cannot be one row
    module_inputs: Callable | None = None
    #: ``(spec, shape) -> Emit.output``: what a module call returns beside its row's output (an LSTM's states)
    module_output: Callable | None = None
    #: ``(spec) -> int``: the rank of an input without its batch axis, costed as a batch of one (a convolution)
    unbatched_rank: Callable | None = None
    #: ``(module) -> function``: what a training step runs on a strided input of the module, on meta tensors
    #: (default: the module's own forward with meta copies of its parameters)
    input_reading: Callable | None = None
    #: ``(module, spec) -> str | None``: why a module's training step is not fully counted, if it is not
    step_untracked: Callable | None = None


#: bindings by exact convcost layer class
BINDINGS: dict[type, Binding] = {}
#: functional rules by the function object a traced model calls (``F.conv2d``, ``operator.add`` ...)
FUNCTIONS: dict = {}
#: rules by tensor method name (``x.relu()``, ``x.add(y)`` ...)
METHODS: dict = {}


def binds(layer: type, *, modules: tuple = ()):
    """Class decorator: the decorated class's ``read``, ``build``, ``functions``, ``methods`` and
    ``conventions`` are the torch side of ``layer``.

    ``read(module) -> Layer`` is registered for each of ``modules`` in the one reader registry
    (:mod:`convcost.torch.registry`); ``build(layer, rank) -> nn.Module`` is what :func:`~convcost.torch.to_torch`
    makes; ``functions`` maps function objects and ``methods`` method names to functional rules
    (:mod:`convcost.torch.rules`); ``conventions`` maps a tool name to ``rule(row) -> count``.
    """

    def decorate(namespace):
        if layer in BINDINGS:
            raise ConvcostError(f"{layer.__name__} already has a torch binding; a layer class is bound once")
        found = {k: getattr(namespace, k) for k in ("read", "build", "functions", "methods", "conventions", *_HOOKS)
                 if k in vars(namespace)}
        read, build = found.get("read"), found.get("build")
        functions, methods = dict(found.get("functions", {})), dict(found.get("methods", {}))
        taken = [f for f in functions if f in FUNCTIONS] + [m for m in methods if m in METHODS]
        if taken:
            raise ConvcostError(f"{taken[0]!r} already has a functional rule; a function is read by one binding")
        if modules:
            if read is None:
                raise ConvcostError(f"the binding of {layer.__name__} names module types but no read()")
            REGISTRY.register(*modules)(read)
        FUNCTIONS.update(functions)
        METHODS.update(methods)
        BINDINGS[layer] = Binding(layer, tuple(modules), read, build, functions, methods,
                                  dict(found.get("conventions", {})), **{k: found[k] for k in _HOOKS if k in found})
        return namespace

    return decorate


#: the walker's hooks a binding may define
_HOOKS = ("module_inputs", "module_output", "unbatched_rank", "input_reading", "step_untracked")


def binding_of(layer) -> Binding | None:
    """The binding of a layer class (or of an instance's exact class), or ``None``."""
    cls = layer if isinstance(layer, type) else type(layer)
    return BINDINGS.get(cls)
