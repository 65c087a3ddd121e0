"""A reference architecture: a convcost layer and the input its paper feeds it.

>>> from convcost.primitives import Conv
>>> m = ZooModel("tiny", Conv(3, 8, 3), (1, 3, 32, 32), "a one-layer example")
>>> m.cost().macs
194400
>>> m.cost((1, 3, 16, 16)).output_shape
(1, 8, 14, 14)
"""

from __future__ import annotations

import dataclasses
import numbers
from fractions import Fraction

import sympy

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.shapes import as_shape


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """A named architecture: ``layer`` (a convcost composition) and its canonical ``input_shape``.

    ``source`` says where its layout comes from (the paper, or torchvision's build of it).
    """

    name: str
    layer: Layer
    input_shape: tuple
    source: str

    def __post_init__(self):
        if not isinstance(self.layer, Layer):
            raise ConvcostError(f"ZooModel {self.name!r}: layer={self.layer!r} is not a convcost layer")
        object.__setattr__(self, "input_shape", as_shape(self.input_shape, f"ZooModel {self.name!r}"))

    def cost(self, input_shape=None) -> Cost:
        """The exact cost on the canonical input, or on ``input_shape`` (which may hold symbols)."""
        return self.layer.cost(self.input_shape if input_shape is None else input_shape)

    def to_torch(self, *, device=None):
        """The ``nn.Module`` of this model (imports :mod:`convcost.torch`, hence torch, only when called).

        >>> from convcost.zoo import mnist_net
        >>> mnist_net().to_torch(device="meta").dense2
        Linear(in_features=64, out_features=10, bias=True)
        """
        # the builder, not the package: convcost.torch imports convcost.training, which reads zoo models
        from convcost.torch.build import to_torch

        return to_torch(self.layer, self.input_shape, device=device)


def multiplier(where: str, name: str, value) -> sympy.Expr:
    """A width or resolution multiplier as an exact sympy value (``0.75`` is ``3/4``); symbols pass.

    >>> multiplier("mobilenet_v1", "alpha", 0.75)
    3/4
    >>> multiplier("mobilenet_v1", "alpha", -1)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: mobilenet_v1: alpha=-1 must be a positive number
    """
    if isinstance(value, bool) or isinstance(value, str):
        raise ConvcostError(f"{where}: {name}={value!r} must be a positive number or a sympy expression")
    if isinstance(value, numbers.Integral):
        value = sympy.Integer(int(value))
    elif isinstance(value, float):
        value = sympy.Rational(Fraction(repr(value)))  # the decimal the user wrote, not the binary float
    elif isinstance(value, Fraction):
        value = sympy.Rational(value.numerator, value.denominator)
    elif not isinstance(value, sympy.Expr):
        raise ConvcostError(f"{where}: {name}={value!r} must be a positive number or a sympy expression")
    if value.is_positive is False or (value.is_number and not value.is_positive):
        raise ConvcostError(f"{where}: {name}={value} must be a positive number")
    return value


def whole(where: str, what: str, value) -> None:
    """Raise unless ``value`` (a size derived from a multiplier) is a whole number or still symbolic."""
    value = sympy.sympify(value)
    if value.is_number and not value.is_integer:
        raise ConvcostError(f"{where}: {what} is {value}, not a whole number")
