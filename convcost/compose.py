"""Compositions: costs of layers put together, derived from their parts.

``Sequential`` threads each part's output shape into the next; ``Parallel``
applies branches to the same input and merges them (concatenate, add or
multiply); ``Residual`` adds a body to its input; ``When`` keeps a layer only
under a condition. Their costs are sums of part costs, so no formula is
written twice.

>>> from convcost.primitives import Conv, BatchNorm, Activation
>>> block = Sequential(conv=Conv(C=64, O=128, K=3, S=2, P=1, bias=False), bn=BatchNorm(C=128), act=Activation("relu"))
>>> c = block.cost((3, 64, 224, 224))
>>> c.params, c.macs
(73984, 2774532096)
>>> [name for name, _ in c.parts]
['conv', 'bn', 'act']
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.primitives import Add, Concat, Identity, Mul
from convcost.validate import entry_point

MERGES = {"concat": Concat, "add": Add, "mul": Mul}


def _condition(owner: str, name: str, value):
    """A condition as a Python bool when decided, else a sympy boolean; text is refused (sympify of text is eval)."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, sympy.Basic) or not isinstance(value, (sympy.logic.boolalg.Boolean, sympy.core.relational.Relational)):
        raise ConvcostError(f"{owner}: {name}={value!r} must be True, False or a sympy condition such as Eq(S, 1)")
    if value is sympy.true:
        return True
    if value is sympy.false:
        return False
    return value


def _named_parts(owner: str, positional, named) -> tuple:
    parts = []
    for i, item in enumerate(positional):
        name, part = item if isinstance(item, tuple) else (str(i), item)
        parts.append((name, part))
    parts += list(named.items())
    names = [n for n, _ in parts]
    for name, part in parts:
        if not isinstance(part, Layer):
            raise ConvcostError(f"{owner}: part {name!r} is {part!r}, not a convcost layer")
        if not isinstance(name, str) or "." in name or not name:
            raise ConvcostError(f"{owner}: part name {name!r} must be a non-empty string without dots")
    if len(set(names)) != len(names):
        raise ConvcostError(f"{owner}: part names must be unique, got {names}")
    if not parts:
        raise ConvcostError(f"{owner}: needs at least one part")
    return tuple(parts)


def _show_parts(parts) -> str:
    return ", ".join(f"{n}={p!r}" if not n.isdigit() else repr(p) for n, p in parts)


@dataclasses.dataclass(frozen=True, repr=False, init=False)
class Sequential(Layer):
    """Layers applied one after the other; parts may be named by keyword.

    >>> from convcost.primitives import Conv
    >>> Sequential(Conv(C=3, O=8, K=3), Conv(C=8, O=8, K=3)).cost((1, 3, 9, 9)).output_shape
    (1, 8, 5, 5)
    """

    parts: tuple

    @entry_point
    def __init__(self, /, *layers, **named):
        object.__setattr__(self, "parts", _named_parts("Sequential", layers, named))

    def default_input(self):
        return self.parts[0][1].default_input()

    def _cost(self, shape):
        named, x = [], shape
        for name, part in self.parts:
            c = part.cost(x)
            named.append((name, c))
            x = c.output_shape
        return Cost.total(named, output_shape=x, input_shape=shape)

    def __repr__(self):
        return f"Sequential({_show_parts(self.parts)})"


@dataclasses.dataclass(frozen=True, repr=False, init=False)
class Parallel(Layer):
    """Branches applied to the same input, merged by ``"concat"`` (channels), ``"add"`` or ``"mul"``.

    >>> from convcost.primitives import Conv
    >>> Parallel(Conv(C=4, O=2, K=1), Conv(C=4, O=3, K=3, P=1)).cost((1, 4, 8, 8)).output_shape
    (1, 5, 8, 8)
    """

    parts: tuple
    merge: str

    @entry_point
    def __init__(self, /, *branches, merge: str = "concat", **named):
        if merge not in MERGES:
            raise ConvcostError(f"Parallel: merge={merge!r} must be one of {', '.join(map(repr, MERGES))}")
        parts = _named_parts("Parallel", branches, named)
        if len(parts) < 2:
            raise ConvcostError("Parallel: needs at least two branches")
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "merge", merge)

    def default_input(self):
        return self.parts[0][1].default_input()

    def _cost(self, shape):
        named = [(name, part.cost(shape)) for name, part in self.parts]
        merged = MERGES[self.merge]().cost([c.output_shape for _, c in named])
        named.append((self.merge, merged))
        return Cost.total(named, output_shape=merged.output_shape, input_shape=shape)

    def __repr__(self):
        return f"Parallel({_show_parts(self.parts)}, merge={self.merge!r})"


@dataclasses.dataclass(frozen=True, repr=False, init=False)
class Residual(Layer):
    """``body(x) + shortcut(x)``; the shortcut is the identity unless given.

    ``when`` (a bool or a sympy condition such as ``Eq(S, 1)``) says whether the
    addition happens; when it depends on free symbols the shortcut's and the
    addition's counts become ``Piecewise`` expressions, exact either way.
    """

    body: Layer
    shortcut: Layer | None
    when: object

    @entry_point
    def __init__(self, /, body: Layer, shortcut: Layer | None = None, when=True):
        for name, part in (("body", body), ("shortcut", shortcut)):
            if part is not None and not isinstance(part, Layer):
                raise ConvcostError(f"Residual: {name}={part!r} is not a convcost layer")
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "shortcut", shortcut)
        object.__setattr__(self, "when", _condition("Residual", "when", when))

    def default_input(self):
        return self.body.default_input()

    def _cost(self, shape):
        body = self.body.cost(shape)
        if self.when is False:
            return Cost.total([("body", body)], output_shape=body.output_shape, input_shape=shape)
        shortcut = (self.shortcut or Identity()).cost(shape)
        add = Add().cost([body.output_shape, shortcut.output_shape])
        named = [("body", body), ("shortcut", shortcut), ("add", add)]
        if self.when is not True:
            named = [("body", body), ("shortcut", shortcut.when(self.when)), ("add", add.when(self.when))]
        return Cost.total(named, output_shape=body.output_shape, input_shape=shape)

    def __repr__(self):
        extra = "" if self.shortcut is None else f", shortcut={self.shortcut!r}"
        extra += "" if self.when is True else f", when={self.when}"
        return f"Residual({self.body!r}{extra})"


@dataclasses.dataclass(frozen=True, repr=False, init=False)
class When(Layer):
    """A layer kept only where ``condition`` holds (MobileNet V2 drops its expansion when t = 1).

    Where the condition is false the input passes through unchanged, so the
    layer must then map the input's shape to itself (as a 1x1 expansion by
    ``t = 1`` does). Undecided conditions give ``Piecewise`` counts.
    """

    condition: object
    layer: Layer

    @entry_point
    def __init__(self, /, condition, layer: Layer):
        if not isinstance(layer, Layer):
            raise ConvcostError(f"When: {layer!r} is not a convcost layer")
        object.__setattr__(self, "condition", _condition("When", "condition", condition))
        object.__setattr__(self, "layer", layer)

    def default_input(self):
        return self.layer.default_input()

    def _cost(self, shape):
        if self.condition is False:
            return Cost(output_shape=shape, input_shape=shape)
        inner = self.layer.cost(shape)
        if self.condition is not True:
            inner = inner.when(self.condition)
        return Cost.total([("layer", inner)], output_shape=inner.output_shape, input_shape=shape)

    def __repr__(self):
        return f"When({self.condition}, {self.layer!r})"
