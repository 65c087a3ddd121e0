"""The base of everything that has a cost: primitives, compositions, variants.

A layer describes an operation; the input it is applied to is an argument of
its cost, so a composition can hand each part the shape the previous part
produced. ``layer.cost()`` without an input uses the layer's default input
(batch 1, symbolic spatial size) where it has one.
"""

from __future__ import annotations

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.shapes import as_shape
from convcost.spec import Spec
from convcost.validate import kind_of


class Layer(Spec):
    """Something with an exact cost on an input shape."""

    #: set in the body of a base class that describes no layer by itself (read from the class's own dict)
    abstract_base = True

    def cost(self, input_shape=None) -> Cost:
        """The exact cost of applying this layer to a tensor of ``input_shape``."""
        shape = self.default_input() if input_shape is None else as_shape(input_shape, self)
        return self._cost(shape).with_spec(self, shape)

    def output_shape(self, input_shape=None) -> tuple:
        """Shape of the output for ``input_shape``."""
        return self.cost(input_shape).output_shape

    def default_input(self) -> tuple:
        """The input shape ``cost()`` uses when none is given."""
        raise ConvcostError(f"{self!r}: give an input shape, e.g. {type(self).__name__}(...).cost((1, 3, 32, 32))")

    def _cost(self, shape: tuple) -> Cost:
        raise NotImplementedError


class Merge(Spec):
    """An operation that combines several inputs into one (add, multiply, concatenate)."""

    abstract_base = True

    def cost(self, input_shapes) -> Cost:
        """The exact cost of combining tensors of the given shapes."""
        if kind_of(input_shapes) != "sequence":
            raise ConvcostError(f"{self!r}: give a list of input shapes, got {input_shapes!r}")
        shapes = tuple(as_shape(s, self) for s in input_shapes)
        if len(shapes) < 2:
            raise ConvcostError(f"{self!r}: needs at least two inputs, got {len(shapes)}")
        return self._cost(shapes).with_spec(self, shapes[0])

    def _cost(self, shapes: tuple) -> Cost:
        raise NotImplementedError
