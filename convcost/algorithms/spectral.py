"""Convolution by FFT at the padded power-of-two size, counted in complex arithmetic."""

from __future__ import annotations

import sympy

from convcost.algorithms.convolution import fields_of, layer_cost
from convcost.algorithms.result import AlgorithmCost
from convcost.errors import require
from convcost.shapes import per_axis, same_padding


def fft_size(length):
    """The FFT length along one axis: the next power of two at least ``length``.

    >>> fft_size(56), fft_size(64), fft_size(65)
    (64, 64, 128)
    """
    return 2 ** log2_ceiling(length)


def log2_ceiling(length):
    """``ceil(log2(length))``: exact integer arithmetic on a number, a sympy ceiling on a symbol.

    >>> log2_ceiling(64), log2_ceiling(65)
    (6, 7)
    """
    length = sympy.sympify(length)
    if length.is_Integer:
        return sympy.Integer((int(length) - 1).bit_length())
    return sympy.ceiling(sympy.log(length, 2))


def fft(spec, input_shape=None) -> AlgorithmCost:
    """Convolution by FFT: transform, multiply pointwise, transform back; counted in complex arithmetic.

    The model: along each axis the padded input ``H + 2P`` (``H + D(K-1)``
    for ``"same"``) is zero-filled to ``L = 2^ceil(log2(H + 2P))``; a circular
    correlation of that length gives every valid output exactly, since no
    product wraps around before position ``H + 2P - K``. With ``n = prod L``
    points and ``e = sum log2 L``:

    * pointwise complex multiplications: ``N (C O / G) n``; their sums over the
      ``C/G`` channels of a group: ``N O n (C/G - 1)`` complex additions;
    * transforms: ``N C`` forward of the inputs, ``O C/G`` of the filters,
      ``N O`` inverse of the outputs, each a radix-2 FFT of ``n e`` complex
      additions and ``(n/2) e`` complex multiplications by twiddle factors
      (every butterfly's, trivial ones included);
    * workspace: the spectra, ``n`` complex elements per input channel, filter and output channel.

    Full complex transforms of real data (a real-input FFT would roughly halve
    transforms and products; not modelled).

    >>> from convcost.primitives import Conv
    >>> c = fft(Conv(C=1, O=1, K=3), (1, 1, 6, 6))   # 8x8 points: e = 6
    >>> c.multiplications, dict(c.additions_by_stage)["input transform"], c.constant_multiplications
    (64, 384, 576)
    """
    conv, shape, layer = layer_cost(spec, input_shape)
    where = f"fft of {spec!r}"
    conditions = ()
    for _, s, d in conv.axes():
        conditions += require(sympy.Eq(s, 1), where, f"stride S={s} must be 1 (this model computes every position)")
        conditions += require(sympy.Eq(d, 1), where, f"dilation D={d} must be 1 (this model transforms a dense kernel)")
    if conv.P == "same":
        padded = [x + same_padding(k, d) for x, (k, _, d) in zip(shape[2:], conv.axes())]
    elif conv.P == "valid":
        padded = list(shape[2:])
    else:
        padded = [x + 2 * p for x, p in zip(shape[2:], per_axis(conv.P, conv.dims, conv, "P"))]
    exponents = [log2_ceiling(x) for x in padded]
    points = sympy.Mul(*(2**e for e in exponents))
    log_points = sympy.Add(*exponents)
    batch, C, O, G = shape[0], *fields_of(conv, "C", "O", "G")
    transforms = {"input transform": batch * C, "filter transform": O * C / G, "output transform": batch * O}
    sizes = " x ".join(f"2^{e}" if not sympy.sympify(e).is_Integer else str(2**e) for e in exponents)
    return AlgorithmCost(
        algorithm="fft",
        spec=spec,
        input_shape=shape,
        output_shape=tuple(layer.output_shape),
        multiplications=batch * C * O / G * points,
        additions_by_stage=tuple((k, v * points * log_points) for k, v in transforms.items())
        + (("accumulation", batch * O * points * (C / G - 1)),),
        constant_multiplications_by_stage=tuple((k, v * points * log_points / 2) for k, v in transforms.items()),
        workspace_by_buffer=(
            ("input spectra", batch * C * points),
            ("filter spectra", O * C / G * points),
            ("output spectra", batch * O * points),
        ),
        rule=(f"complex FFT of {sizes} points (per axis the next power of two >= the padded input); "
              f"radix-2: n log2 n complex additions and (n/2) log2 n complex multiplications per transform"),
        unit="complex",
        conditions=tuple(layer.conditions) + conditions,
    )
