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

from convcost.arith import both, either, negate, where
from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import TRAINING, Layer
from convcost.primitives import Add, Concat, Identity, Mul
from convcost.shapes import numel
from convcost.validate import entry_point

MERGES = {"concat": Concat, "add": Add, "mul": Mul}


def _condition(owner: str, name: str, value):
    """A condition as a Python bool when decided, else a sympy boolean; text is refused (sympify of text is eval)."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, sympy.Basic) or not isinstance(value,
                                                            (sympy.logic.boolalg.Boolean,
                                                             sympy.core.relational.Relational)):
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

    def _cost(self, shape, grad=TRAINING):
        named, x = [], shape
        storage = _Storage(shape, grad.input)
        for name, part in self.parts:
            c = part.cost(x, input_grad=storage.grad, trainable=grad.trainable)
            storage.feed(c, x)
            named.append((name, c))
            x = c.output_shape
        return Cost.total(named, output_shape=x, input_shape=shape, **storage.result())

    def precision_rows(self, cost, inputs, graph):
        for _, c in cost.parts:  # each part's output feeds the next
            inputs = [c.spec.precision_rows(c, inputs, graph)]
        return inputs[0]

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

    def _cost(self, shape, grad=TRAINING):
        named = [(name, part.cost(shape, input_grad=grad.input, trainable=grad.trainable)) for name, part in self.parts]
        branches = [c for _, c in named]
        merged = MERGES[self.merge]().cost([c.output_shape for c in branches],
                                           input_grads=[c.output_grad for c in branches])
        named.append((self.merge, merged))
        flags = _branches_saved(shape, branches, merged, [True] * len(branches))
        return Cost.total(named, output_shape=merged.output_shape, input_shape=shape, **flags)

    def precision_rows(self, cost, inputs, graph):
        *branches, (_, merged) = cost.parts
        outs = [c.spec.precision_rows(c, inputs, graph) for _, c in branches]
        return merged.spec.precision_rows(merged, outs, graph)

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

    def _cost(self, shape, grad=TRAINING):
        body = self.body.cost(shape, input_grad=grad.input, trainable=grad.trainable)
        if self.when is False:
            return Cost.total([("body", body)], output_shape=body.output_shape, input_shape=shape, **_flags_of(body))
        shortcut = (self.shortcut or Identity()).cost(shape, input_grad=grad.input, trainable=grad.trainable)
        add = Add().cost([body.output_shape, shortcut.output_shape],
                         input_grads=[body.output_grad, shortcut.output_grad])
        flags = _branches_saved(shape, [body, shortcut], add, [True, self.when])
        named = [("body", body), ("shortcut", shortcut), ("add", add)]
        if self.when is not True:
            named = [("body", body), ("shortcut", shortcut.when(self.when)), ("add", add.when(self.when))]
            if add.output_grad != body.output_grad:
                raise ConvcostError(f"{self!r}: whether its output needs a gradient depends on {self.when}; bind it")
            # where the addition is left out, the output is the body's
            flags.update(saves_output=both(negate(self.when), body.saves_output),
                         output_view=both(negate(self.when), body.output_view), output_grad=body.output_grad)
        return Cost.total(named, output_shape=body.output_shape, input_shape=shape, **flags)

    def precision_rows(self, cost, inputs, graph):
        if self.when is not True and self.when is not False:
            raise ConvcostError(f"{self!r}: whether the addition happens depends on {self.when}; bind it to price "
                                "its storages")
        (_, body), *rest = cost.parts
        out = body.spec.precision_rows(body, inputs, graph)
        if not rest:
            return out
        (_, shortcut), (_, add) = rest
        return add.spec.precision_rows(add, [out, shortcut.spec.precision_rows(shortcut, inputs, graph)], graph)

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

    def _cost(self, shape, grad=TRAINING):
        if self.condition is False:
            return Cost(output_shape=shape, input_shape=shape, output_view=True, output_grad=grad.input)
        inner = self.layer.cost(shape, input_grad=grad.input, trainable=grad.trainable)
        flags = _flags_of(inner)
        if self.condition is not True:
            if inner.output_grad != grad.input:
                raise ConvcostError(f"{self!r}: whether its output needs a gradient depends on "
                                    f"{self.condition}; bind it")
            # where the layer is left out, the output is the input itself
            flags.update(output_view=either(negate(self.condition), inner.output_view))
            inner = inner.when(self.condition)
            flags.update(saves_input=inner.saves_input, saves_output=inner.saves_output,
                         saved_elements=inner.saved_elements)
        return Cost.total([("layer", inner)], output_shape=inner.output_shape, input_shape=shape, **flags)

    def precision_rows(self, cost, inputs, graph):
        if self.condition is False:
            return inputs[0]  # left out: the input passes through
        if self.condition is not True:
            raise ConvcostError(f"{self!r}: whether the layer is kept depends on {self.condition}; bind it to price "
                                "its storages")
        (_, inner), = cost.parts
        return inner.spec.precision_rows(inner, inputs, graph)

    def __repr__(self):
        return f"When({self.condition}, {self.layer!r})"


# -- what autograd saves, each storage once (see the conventions in convcost.costs) ----------------------------

def _flags_of(c: Cost) -> dict:
    return {"saves_input": c.saves_input, "saves_output": c.saves_output, "output_view": c.output_view,
            "output_grad": c.output_grad, "saved_elements": c.saved_elements}


def _beyond_input(c: Cost, shape):
    """What a part saves besides its input's storage."""
    return c.saved_elements - where(c.saves_input, numel(shape), 0)


class _Storage:
    """The storage a chain of layers passes along: its size, whether it is saved, whether it is the chain's input.

    Each part's saved count includes its input as ``numel(input)``; where the input is a view of a saved or
    larger storage (after a flatten, a narrow, a ReLU that saved its output) that is corrected here.
    """

    def __init__(self, shape, grad: bool):
        self.input_elements = numel(shape)
        self.elements = self.input_elements  # of the storage the current tensor lives in
        self.saved = False  # that storage is saved by an earlier part
        self.is_input = True  # that storage is the chain's input
        self.input_saved = False
        self.total = 0  # saved elements besides the chain's input storage
        self.grad = grad  # whether the current tensor needs a gradient

    def feed(self, c: Cost, x):
        si, so, view = c.saves_input, c.saves_output, c.output_view
        if type(si) is bool and type(so) is bool and type(view) is bool and type(self.saved) is bool \
                and type(self.is_input) is bool and type(self.input_saved) is bool:
            # every flag decided: plain Python, as fast as the counts
            own = c.saved_elements - numel(x) if si else c.saved_elements
            if si and not self.saved and not self.is_input:
                own = own + self.elements
            self.total = own if self.total == 0 else self.total + own
            self.input_saved = self.input_saved or (si and self.is_input)
            if view:
                self.saved = self.saved or si or so
            else:
                self.elements, self.saved, self.is_input = numel(c.output_shape), so, False
            self.grad = c.output_grad
            return
        fresh = both(c.saves_input, negate(self.saved), negate(self.is_input))
        self.total = self.total + _beyond_input(c, x) + where(fresh, self.elements, 0)
        self.input_saved = either(self.input_saved, both(c.saves_input, self.is_input))
        kept = either(self.saved, c.saves_input, c.saves_output)  # a view's storage is its input's
        view = c.output_view
        self.elements = where(view, self.elements, numel(c.output_shape))
        self.saved = either(both(view, kept), both(negate(view), c.saves_output))
        self.is_input = both(view, self.is_input)
        self.grad = c.output_grad

    def result(self) -> dict:
        return {
            "saved_elements": self.total + where(self.input_saved, self.input_elements, 0),
            "saves_input": self.input_saved,
            "saves_output": self.saved,
            "output_view": self.is_input,
            "output_grad": self.grad,
        }


def _branches_saved(shape, branches, merged: Cost, present) -> dict:
    """What branches on one input and the merge of their outputs save, each storage once.

    ``present[i]`` (a bool or a condition) says whether branch i and its operand of the merge exist.
    """
    input_saved, saved, operands = False, 0, 0
    for c, keep, used in zip(branches, present, merged.saves_input):
        out = numel(c.output_shape)
        used = both(keep, used)
        operands = operands + where(used, out, 0)
        saved = saved + where(keep, _beyond_input(c, shape), 0)
        # the merge saves this operand: the input itself when the branch is a view, else the branch's output
        input_saved = either(input_saved, both(keep, c.saves_input), both(used, c.output_view))
        saved = saved + where(both(used, negate(c.output_view), negate(c.saves_output)), out, 0)
    saved = saved + merged.saved_elements - operands + where(input_saved, numel(shape), 0)
    grads = [c.output_grad for c in branches]
    return {"saved_elements": saved, "saves_input": input_saved, "saves_output": False, "output_view": False,
            "output_grad": any(grads)}
