"""Every named variant, by name: the one lookup the command line uses (no eval)."""

from __future__ import annotations

from convcost import blocks, efficient, variants
from convcost.errors import ConvcostError

VARIANTS = {
    cls.__name__: cls
    for cls in (
        variants.StandardConv,
        variants.PointwiseConv,
        variants.DepthwiseConv,
        variants.SeparableConv,
        variants.GroupedConv,
        variants.ShuffleGroupedConv,
        variants.DilatedConv,
        variants.AsymmetricConv,
        variants.FactorizedConv,
        variants.TransposedConv,
        variants.Conv3d,
        variants.SpaceToDepth,
        variants.DepthToSpace,
        blocks.FireModule,
        blocks.SqueezeExcitation,
        blocks.MobileNetV1Block,
        blocks.InvertedResidual,
        blocks.InceptionBlock,
        *efficient.EFFICIENT,
    )
}


def variant(name: str):
    """The variant class called ``name``.

    >>> variant("SeparableConv").__name__
    'SeparableConv'
    >>> variant("Separable")
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: unknown variant 'Separable'; did you mean SeparableConv?
    """
    if name in VARIANTS:
        return VARIANTS[name]
    import difflib

    close = difflib.get_close_matches(name, VARIANTS, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(VARIANTS)}"
    raise ConvcostError(f"unknown variant {name!r}{hint}")
