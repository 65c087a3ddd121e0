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
        found = {k: getattr(namespace, k) for k in ("read", "build", "functions", "methods", "conventions")
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
                                  dict(found.get("conventions", {})))
        return namespace

    return decorate


def binding_of(layer) -> Binding | None:
    """The binding of a layer class (or of an instance's exact class), or ``None``."""
    cls = layer if isinstance(layer, type) else type(layer)
    return BINDINGS.get(cls)
