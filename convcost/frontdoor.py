"""The front door: ``cost(Variant, **fields)``.

One rule decides what a field left out becomes, everywhere: a field with a
PyTorch default takes it (bias on, stride 1, padding 0, dilation 1, groups 1,
batch 1), and a field without one is its canonical symbol (``C, O, K`` and the
input size ``H, W``). A field is symbolic only when you pass a symbol or ask
for the general form, ``general=True``, which makes every field a symbol.

>>> from convcost import cost, SeparableConv, StandardConv
>>> cost(SeparableConv, C=64, O=128, K=3).params
8960
>>> cost(StandardConv).params                  # G is its default, 1
C*K**2*O + O
>>> cost(StandardConv, general=True).params    # every field a symbol
C*K**2*O/G + O
>>> cost(StandardConv, general=True, G=4).params
C*K**2*O/4 + O
"""

from __future__ import annotations

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.validate import entry_point, field_values


@entry_point
def cost(spec, /, general: bool = False, **fields) -> Cost:
    """The exact cost of a variant, primitive or composition (a class or an instance).

    ``cost(Variant, **fields)`` is ``Variant(**fields).cost()``: fields left out take
    their PyTorch default or, where there is none, their canonical symbol.
    ``general=True`` starts from :meth:`~convcost.spec.Spec.general` instead, every
    field a symbol, and binds the fields given.

    >>> from convcost import SeparableConv
    >>> cost(SeparableConv, C=64, O=128, K=3).macs
    8768*(H - 2)*(W - 2)
    >>> cost(SeparableConv, C=64, O=128, K=3, H=56, W=56).macs
    25567488
    """
    if not isinstance(general, bool):
        raise ConvcostError(f"cost: general={general!r} must be True or False")
    field_values("cost", fields)
    if isinstance(spec, type) and issubclass(spec, Layer):
        if spec.__dict__.get("abstract_base", False):
            raise ConvcostError(
                f"cost: {spec.__name__} is an abstract base class; give a primitive, variant or composition "
                "(e.g. cost(StandardConv, C=64))"
            )
        layer = spec.general().replace(**fields) if general else spec(**fields)
        return layer.cost()
    if isinstance(spec, Layer):
        layer = spec.general() if general else spec
        return (layer.replace(**fields) if fields else layer).cost()
    raise ConvcostError(f"cost() needs a convcost layer or layer class (e.g. cost(StandardConv, C=64)), got {spec!r}")
