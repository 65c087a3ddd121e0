"""Shape arithmetic: the output-size rules of PyTorch, written once, on ints and symbols alike.

>>> from convcost.symbols import H, K, S, P, D
>>> conv_size(H, K, S, P, D)
floor((-D*(K - 1) + H + 2*P - 1)/S) + 1
>>> conv_size(32, 3, 1, 1, 1)
32
>>> transposed_size(128, 3, 2, 0, 1, 0)
257
"""

from __future__ import annotations

import math

import sympy

from convcost.arith import ceildiv, divides, eq, floordiv, ge, integer, known_nonpositive, prod, where
from convcost.errors import ConvcostError, require
from convcost.validate import kind_of


def as_shape(shape, where: object = "input", empty_axis=None) -> tuple:
    """A shape as a tuple of Python ints or sympy expressions, each checked positive; ``empty_axis``, an axis
    where a size of 0 is allowed too (a part of a concatenation: PyTorch concatenates an empty part).

    >>> as_shape((2, 4, 0), empty_axis=-1)
    (2, 4, 0)
    """
    if type(shape) is tuple and all(type(x) is int and x > 0 for x in shape):
        return shape  # the common case: nothing to convert
    if kind_of(shape) not in ("sequence", "array") or getattr(shape, "ndim", 1) != 1:
        raise ConvcostError(f"{where}: an input shape must be a tuple of sizes, got {shape!r}")
    shape = tuple(shape)
    empty = empty_axis % len(shape) if type(empty_axis) is int and -len(shape) <= empty_axis < len(shape) else None
    out = []
    for i, x in enumerate(shape):
        if i == empty and type(x) is int and x == 0:
            out.append(0)
            continue
        if kind_of(x) not in ("int", "numpy integer", "symbol", "expression", "sympy number"):
            raise ConvcostError(f"{where}: input shape {shape!r} holds {x!r}, which is not a size")
        if not isinstance(x, sympy.Expr):
            x = int(x)
        elif x.is_number:
            if x.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or not x.is_integer:
                raise ConvcostError(f"{where}: input shape {shape!r} holds {x}; sizes must be positive integers")
            x = int(x)
        elif x.is_positive is False:
            raise ConvcostError(f"{where}: input shape {shape!r} holds {x}; sizes must be positive integers")
        if type(x) is int and x <= 0:
            raise ConvcostError(f"{where}: input shape {shape!r} holds {x}; sizes must be positive integers")
        out.append(x)
    return tuple(out)


def numel(shape):
    """Number of elements of a tensor of this shape (an int when every size is one)."""
    if all(type(x) is int for x in shape):
        return math.prod(shape)
    return prod(shape)


def per_axis(value, axes: int, where: object, name: str) -> tuple:
    """A scalar or per-axis tuple field as one value per spatial axis."""
    if isinstance(value, tuple):
        if len(value) != axes:
            raise ConvcostError(f"{where}: {name}={value} has {len(value)} entries for {axes} spatial axes")
        return value
    return (value,) * axes


def conv_size(size, kernel, stride, padding, dilation):
    """Output length of a convolution or pooling window along one axis."""
    return floordiv(size + 2 * padding - dilation * (kernel - 1) - 1, stride) + 1


def same_padding(kernel, dilation):
    """Total padding PyTorch adds for ``padding="same"`` (split left/right, the extra on the right)."""
    return dilation * (kernel - 1)


def transposed_size(size, kernel, stride, padding, dilation, output_padding):
    """Output length of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def ceil_pool_size(size, kernel, stride, padding, dilation):
    """Output length of a pooling window with ``ceil_mode=True``.

    PyTorch rounds up, then drops a last window that would start in the right padding.

    >>> ceil_pool_size(55, 3, 2, 0, 1)
    27
    >>> ceil_pool_size(6, 3, 2, 0, 1)
    3
    """
    rounded_up = ceildiv(size + 2 * padding - dilation * (kernel - 1) - 1, stride) + 1
    # Rounding up adds at most stride - 1, so the last window starts at or before
    # size + 2P - D(K-1) - 2 + S: it can reach the right padding only if P + S >= D(K-1) + 2.
    # Deciding that here keeps a symbolic size free of a Piecewise whose construction
    # sympy makes exponentially slow when pools are stacked (SqueezeNet: 21 s -> 0.1 s).
    if known_nonpositive(padding + stride - dilation * (kernel - 1) - 1):
        return rounded_up
    return where(ge((rounded_up - 1) * stride, size + padding), rounded_up - 1, rounded_up)


def adaptive_window_reads(size, out, where: object) -> tuple:
    """Elements read along one axis by adaptive pooling to ``out`` bins, and conditions.

    Bin ``i`` covers ``[floor(i*size/out), ceil((i+1)*size/out))``; bins overlap
    when ``out`` does not divide ``size``. Summed over the bins that is
    ``size + out - gcd(size, out)`` (the ceilings exceed the floors of the next bin
    except at the ``gcd`` bin edges that fall on whole elements), a closed form, so
    no loop runs over ``out`` bins (a size of 10**30 answers at once).

    >>> adaptive_window_reads(10**30, 3 * 10**29, "pool")
    (1200000000000000000000000000000, ())

    >>> adaptive_window_reads(7, 1, "pool")
    (7, ())
    >>> adaptive_window_reads(5, 3, "pool")
    (7, ())
    """
    size, out = integer(size), integer(out)
    if out == 1:
        return size, ()
    if type(size) is int and type(out) is int:
        return size + out - math.gcd(size, out), ()
    # symbolic: exact when the bins tile the axis, which becomes a carried condition
    return size, require(divides(out, size), where, f"{out} must divide {size}")


def equal_sizes(a: tuple, b: tuple, where: object, what: str) -> tuple:
    """Conditions that two shapes are equal; raises if they definitely differ."""
    if len(a) != len(b):
        raise ConvcostError(f"{where}: {what}: shapes {_fmt(a)} and {_fmt(b)} have different ranks")
    conditions = []
    for x, y in zip(a, b):
        if type(x) is int and type(y) is int:
            if x != y:
                raise ConvcostError(f"{where}: {what}: shapes {_fmt(a)} and {_fmt(b)} differ")
            continue
        if x == y:
            continue
        # expand decides the common cases; what it leaves is a condition to carry (simplify would take
        # a tenth of a second on a symbolic residual, and cannot decide more without the values)
        difference = sympy.expand(x - y)
        conditions += require(eq(difference, 0), where, lambda: f"{what}: shapes {_fmt(a)} and {_fmt(b)} differ")
    return tuple(conditions)


def _fmt(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"
