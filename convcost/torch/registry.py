"""The one registry from PyTorch module types to convcost specs.

A *reader* is a function ``module -> Layer`` that returns the convcost spec of
one ``nn.Module``. Readers are registered by one decorator, :func:`register`,
keyed by the exact module type (never by class name), and a type can be
registered only once: a second registration is an error, not a silent
override. A module whose exact type has no reader is unsupported, and
:func:`from_torch` says so instead of counting it as zero. Subclasses are not
matched through their parents on purpose: a subclass may override
``forward`` and cost something else, so it must be registered itself.

This is the public entry point for code that reads whole models (a
``torch.fx`` profiler looks up each leaf module with :func:`reader_for` or
:func:`from_torch`, and lists the modules :func:`is_supported` rejects).

>>> import torch.nn as nn
>>> from_torch(nn.Conv2d(3, 8, 3, padding=1))
Conv(C=3, O=8, K=3, P=1)
>>> is_supported(nn.ReLU()), is_supported(nn.GRU(4, 4))
(True, False)
>>> from_torch(nn.GRU(4, 4))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: cannot read torch.nn.modules.rnn.GRU: no convcost spec is registered for this module type
(register a reader with @convcost.torch.register(GRU))
"""

from __future__ import annotations

from collections.abc import Callable

from convcost.errors import ConvcostError
from convcost.layers import Layer, Merge
from convcost.validate import entry_point


class Registry:
    """Readers by exact ``nn.Module`` type; each type at most once.

    >>> import torch.nn as nn
    >>> mine = Registry()
    >>> @mine.register(nn.ReLU)
    ... def read_relu(module):
    ...     from convcost.primitives import Activation
    ...     return Activation("relu")
    >>> mine.read(nn.ReLU())
    Activation()
    >>> mine.register(nn.ReLU)(read_relu)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: torch.nn.modules.activation.ReLU already has a reader (read_relu); a module type is
    registered once
    """

    def __init__(self):
        self._readers: dict[type, Callable] = {}

    def register(self, *module_types: type) -> Callable:
        """Decorator: ``fn(module) -> Layer`` reads modules of exactly these types."""
        if not module_types:
            raise ConvcostError("register: name at least one module type")
        for t in module_types:
            if not isinstance(t, type):
                raise ConvcostError(f"register: {t!r} is not a module type")

        def decorate(fn: Callable) -> Callable:
            taken = [t for t in module_types if t in self._readers]
            if taken:
                owner = self._readers[taken[0]]
                raise ConvcostError(
                    f"{_type_name(taken[0])} already has a reader ({getattr(owner, '__name__', owner)}); "
                    "a module type is registered once"
                )
            for t in module_types:
                self._readers[t] = fn
            return fn

        return decorate

    def reader_for(self, module_type: type) -> Callable | None:
        """The reader registered for exactly this type, or ``None``."""
        return self._readers.get(module_type)

    def types(self) -> tuple:
        """Every registered module type, in registration order."""
        return tuple(self._readers)

    def read(self, module) -> Layer:
        """The convcost spec of ``module``; ``ConvcostError`` naming its type when unsupported."""
        reader = self._readers.get(type(module))
        if reader is None:
            raise ConvcostError(
                f"cannot read {_type_name(type(module))}: no convcost spec is registered for this module type "
                f"(register a reader with @convcost.torch.register({type(module).__name__}))"
            )
        spec = reader(module)
        if not isinstance(spec, (Layer, Merge)):  # a module of several inputs reads as a merge
            raise ConvcostError(f"the reader of {_type_name(type(module))} returned {spec!r}, not a convcost layer")
        return spec


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


#: the registry convcost's own readers live in (filled once, at import of convcost.torch)
REGISTRY = Registry()

register = REGISTRY.register
reader_for = REGISTRY.reader_for


@entry_point
def from_torch(module) -> Layer:
    """The convcost spec of one module (see :class:`Registry`)."""
    return REGISTRY.read(module)


def is_supported(module) -> bool:
    """Whether :func:`from_torch` can read ``module`` (its exact type has a reader)."""
    return type(module) in REGISTRY._readers


def supported_types() -> tuple:
    """Every module type :func:`from_torch` reads."""
    return REGISTRY.types()
