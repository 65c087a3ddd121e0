"""What every primitive shares: the memory rule of a plain operation and the input checks.

A primitive's cost is written once, with :mod:`convcost.arith`, so that it runs
on Python ints and on sympy symbols alike. Each primitive class also names its
``kernel_kind``, the class of kernel the latency model fits it with.
"""

from __future__ import annotations

from convcost.arith import divides, eq, where
from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.shapes import numel

#: the kernel kinds of the latency model (what a primitive's ``kernel_kind()`` names), in report order
KINDS = ("dense_conv", "pointwise_conv", "depthwise_conv", "grouped_conv", "transposed_conv", "conv3d",
         "linear", "elementwise", "pooling", "data_movement")


def plain(out_shape, in_shape, conditions=(), *, saves_input=False, saves_output=False, extra_saved=0,
          saved_indices=0, output_grad=True, **counts) -> Cost:
    """A cost whose memory traffic is its input, output and parameters.

    The training side: autograd saves the input's storage (``saves_input``, a bool or a condition), the
    output's (``saves_output``), ``extra_saved`` private elements (batch norm's mean and invstd) and
    ``saved_indices`` int64 indices; ``output_grad`` says whether the output needs a gradient.
    """
    params = counts.get("params", 0)
    out_elements = numel(out_shape)
    saved = extra_saved + saved_indices
    if saves_input is not False:
        saved = saved + where(saves_input, numel(in_shape), 0)
    if saves_output is not False:
        saved = saved + where(saves_output, out_elements, 0)
    return Cost(
        output_shape=out_shape,
        activation_elements=out_elements,
        memory_access=numel(in_shape) + out_elements + params,
        conditions=conditions,
        saved_elements=saved,
        saved_indices=saved_indices,
        saves_input=saves_input,
        saves_output=saves_output,
        output_grad=output_grad,
        **counts,
    )


def backward(macs, grad) -> object:
    """Backward MACs of a convolution or linear layer: the input gradient (as many MACs as the forward) when
    the input needs one, the weight gradient (as many again) when the parameters are trained."""
    return (macs if grad.input else 0) + (macs if grad.trainable else 0)


def channels_first(layer, shape, rank: int | None, channels) -> tuple:
    """Check rank and channel count of a channels-first input; returns carried conditions."""
    if rank is not None and len(shape) != rank:
        raise ConvcostError(f"{layer!r}: expects a {rank}-D input (N, C, ...), got shape {fmt(shape)}")
    if len(shape) < 2:
        raise ConvcostError(f"{layer!r}: expects an input (N, C, ...), got shape {fmt(shape)}")
    return require(eq(shape[1], channels), layer, lambda: f"input has {shape[1]} channels, expected C={channels}")


def divisible(layer, what: str, value, divisor: str, by) -> tuple:
    """``value`` divisible by ``by``; ``what``/``divisor`` name them in the message (``C=6 ... G=4``)."""
    ok = divides(by, value)
    if ok is True:
        return ()
    shown = f"{what}={value}" if what.isidentifier() else f"{what} {value}"
    return require(ok, layer, lambda: f"{shown} is not divisible by {divisor}={by}")


def rank(layer, shape, expected: int) -> None:
    """Refuse an input whose rank is not ``expected``."""
    if len(shape) != expected:
        raise ConvcostError(f"{layer!r}: expects a {expected}-D input (N, C, ...), got shape {fmt(shape)}")


def fmt(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"
