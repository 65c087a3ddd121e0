"""convcost: the exact, symbolic cost model for convolutional networks.

>>> from convcost import cost, SeparableConv
>>> c = cost(SeparableConv, C=64, O=128, K=3)
>>> c.params
8960
>>> c.subs(H=56, W=56).macs
25567488
"""

from convcost.blocks import FireModule, InceptionBlock, InvertedResidual, MobileNetV1Block, SqueezeExcitation
from convcost.breakeven import break_even
from convcost.catalog import VARIANTS
from convcost.compare import compare
from convcost.compose import Parallel, Residual, Sequential, When
from convcost.costs import METRICS, Cost
from convcost.efficient import (
    BSConvU,
    CondConv,
    ConvNeXtBlock,
    DeformableConv,
    GhostModule,
    Involution,
    MixConv,
    OctaveConv,
    PartialConv,
    RepVGGBlock,
    ShiftConv,
)
from convcost.derivation import derive
from convcost.errors import ConvcostError
from convcost.frontdoor import cost
from convcost.layers import Layer
from convcost.variants import (
    AsymmetricConv,
    Conv3d,
    DepthToSpace,
    DepthwiseConv,
    DilatedConv,
    FactorizedConv,
    GroupedConv,
    PointwiseConv,
    SeparableConv,
    ShuffleGroupedConv,
    SpaceToDepth,
    StandardConv,
    TransposedConv,
)


def _version() -> str:
    """The installed version, as pyproject.toml gives it (the one place it is written)."""
    from importlib import metadata

    try:
        return metadata.version("convcost")
    except metadata.PackageNotFoundError:  # a source tree run without installing it
        return "0+unknown"


__version__ = _version()

__all__ = [
    "cost",
    "derive",
    "compare",
    "break_even",
    "Cost",
    "ConvcostError",
    "Layer",
    "METRICS",
    "VARIANTS",
    "Sequential",
    "Parallel",
    "Residual",
    "When",
    *sorted(VARIANTS),
]
