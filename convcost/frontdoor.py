"""The front doors: ``cost(Variant, **fields)``, and ``compare``, ``break_even`` and ``predict_latency``,
which answer for a machine's latency (:mod:`convcost.latency_analysis`, :mod:`convcost.model_latency`) as well
as for the exact counts (:mod:`convcost.comparison`, :mod:`convcost.breakeven`, :mod:`convcost.latency`).

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

from convcost import breakeven, comparison, latency, latency_analysis, model_latency
from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.report import Report
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


@entry_point
def compare(A, B, /, metric: str = "macs", **shared):
    """B against A for ``metric`` (:func:`convcost.comparison.compare`), or ``metric="latency"`` with ``machine=``:
    predicted seconds on that machine's latency model (:func:`convcost.latency_analysis.compare_latency`).

    >>> from convcost import StandardConv, SeparableConv
    >>> compare(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3).value_b
    8960
    """
    if isinstance(metric, str) and metric == "latency" or "machine" in shared:
        return latency_analysis.compare_latency(A, B, latency_analysis.machine_of(metric, shared), shared)
    return comparison.compare(A, B, metric=metric, **shared)


@entry_point
def break_even(A, B, /, metric: str = "macs", solve_for=None, **shared):
    """Where B costs no more than A (:func:`convcost.breakeven.break_even`), or with ``metric="latency"`` and
    ``machine=``, where B is no slower on that machine (:func:`convcost.latency_analysis.break_even_latency`:
    the roofline's Max terms as cases).

    >>> from convcost import StandardConv, SeparableConv
    >>> break_even(StandardConv, SeparableConv, metric="params", C=64, O=128).solution
    K >= sqrt(16383)/127
    """
    if isinstance(metric, str) and metric == "latency" or "machine" in shared:
        machine = latency_analysis.machine_of(metric, shared)
        return latency_analysis.break_even_latency(A, B, machine, solve_for, shared)
    return breakeven.break_even(A, B, metric=metric, solve_for=solve_for, **shared)


@entry_point
def predict_latency(x, machine, dtype: str = "float32", *, optimizer: str = "sgd"):
    """The latency model's prediction on ``machine``: of a fully bound layer or its Cost
    (:func:`convcost.latency.predict_latency`), or of a whole profiled model, a
    :class:`convcost.report.Report` (:func:`convcost.model_latency.predict_model`: every row, per module and in
    total; for ``profile(..., training=True)`` a training step, with the ``optimizer``'s update).
    """
    if isinstance(x, Report):
        return model_latency.predict_model(x, machine, dtype, optimizer=optimizer)
    return latency.predict_latency(x, machine, dtype)
