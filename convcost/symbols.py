"""The glossary: every canonical symbol of convcost, declared once.

Sizes are positive integers and padding is a non-negative integer, so sympy
can decide facts such as ``sqrt(K**2) == K`` or ``Mod(C*M, C) == 0`` on its
own. Multipliers of MobileNet (``alpha``, ``rho``) are positive reals.

=========  ====================================================
symbol     meaning
=========  ====================================================
``N``      batch size
``C``      input channels
``O``      output channels
``H W``    input height and width (``T`` depth for 3-D, ``L`` length for 1-D)
``K``      kernel size
``S``      stride
``P``      padding
``D``      dilation
``G``      groups
``M``      depth multiplier of a depthwise convolution
``t``      expansion factor of an inverted residual
``r``      reduction ratio (squeeze-and-excitation) or pixel-shuffle factor
``s e``    squeeze and expand widths of a SqueezeNet Fire module
``alpha``  width multiplier
``rho``    resolution multiplier
=========  ====================================================

The seeds' letters map onto it: seed 004's ``n, m, c`` are ``K, O, C``;
seed 003's ``h, N, D`` are ``K, O, C``; seed 001 already uses ``C, O, K, H, W``.

>>> from convcost.symbols import C, K
>>> C.is_integer and C.is_positive
True
>>> import sympy
>>> sympy.sqrt(K**2)
K
"""

from __future__ import annotations

import sympy

_SIZE = {"integer": True, "positive": True}

N, C, O, H, W, T, L, K, S, D, G, M, t, r, s, e = sympy.symbols(
    "N C O H W T L K S D G M t r s e", **_SIZE
)
P = sympy.Symbol("P", integer=True, nonnegative=True)
alpha, rho = sympy.symbols("alpha rho", positive=True)

#: every canonical symbol by its name, the one place user text is mapped to symbols
GLOSSARY: dict[str, sympy.Symbol] = {
    sym.name: sym for sym in (N, C, O, H, W, T, L, K, S, P, D, G, M, t, r, s, e, alpha, rho)
}

#: spatial input symbols of a tensor with 1, 2 or 3 spatial axes
SPATIAL: dict[int, tuple[sympy.Symbol, ...]] = {1: (L,), 2: (H, W), 3: (T, H, W)}


#: names that read as non-finite numbers, refused as symbol names
_NON_FINITE_NAMES = frozenset({"nan", "inf", "infinity", "oo", "zoo"})


def symbol(name: str) -> sympy.Symbol:
    """The canonical symbol called ``name``, or a new positive-integer symbol.

    Never evaluates ``name``: only a plain identifier is accepted, and not one that
    reads as a non-finite number (``nan``, ``inf``, ``oo`` ...), which would print as one.

    >>> symbol("C") is C
    True
    >>> symbol("width").is_integer
    True
    >>> symbol("nan")
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: 'nan' reads as a non-finite number, not a size; give a number or another symbol name
    """
    from convcost.errors import ConvcostError

    if not isinstance(name, str) or not name.isidentifier():
        raise ConvcostError(f"{name!r} is not a valid symbol name (letters, digits and _ only)")
    if name.lower() in _NON_FINITE_NAMES:
        raise ConvcostError(f"{name!r} reads as a non-finite number, not a size; give a number or another symbol name")
    return GLOSSARY.get(name) or sympy.Symbol(name, **_SIZE)
