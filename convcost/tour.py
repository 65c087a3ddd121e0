"""The tour: every named variant on a configuration from the seeds, closed form and numbers."""

from __future__ import annotations

from convcost import display
from convcost.catalog import VARIANTS
from convcost.frontdoor import cost

#: one worked configuration per variant; the numbers reproduce the seeds
EXAMPLES = {
    "StandardConv": dict(C=10, O=32, K=3, H=128, W=128),
    "PointwiseConv": dict(C=16, O=32, H=512, W=512),
    "DepthwiseConv": dict(C=10, K=3, H=128, W=128),
    "SeparableConv": dict(C=10, O=32, K=3, H=128, W=128),
    "GroupedConv": dict(C=64, O=128, K=3, G=4, P=1, H=56, W=56),
    "ShuffleGroupedConv": dict(C=240, O=240, K=1, G=3, H=28, W=28),
    "DilatedConv": dict(C=3, O=32, K=3, D=2, H=512, W=512),
    "AsymmetricConv": dict(C=64, O=64, K=3, H=5, W=5),
    "FactorizedConv": dict(C=32, O=32, K=5, P="same", H=32, W=32),
    "TransposedConv": dict(C=32, O=16, K=3, S=2, H=128, W=128),
    "Conv3d": dict(C=16, O=32, K=3, S=2, P=1, T=3, H=512, W=512),
    "SpaceToDepth": dict(C=3, r=2, H=64, W=64),
    "DepthToSpace": dict(C=32, r=2, H=128, W=128),
    "FireModule": dict(C=256, s=48, e=192, bn=True, H=64, W=64),
    "SqueezeExcitation": dict(C=64, r=16, H=56, W=56),
    "MobileNetV1Block": dict(C=64, O=128, S=2, N=3, H=224, W=224),
    "InvertedResidual": dict(C=64, O=128, t=2, S=2, N=3, H=224, W=224),
    "InceptionBlock": dict(C=3, O=32, form="3x3", H=32, W=32),
    # the efficient blocks, at sizes from their papers' networks
    "GhostModule": dict(C=64, O=128, H=56, W=56),
    "MixConv": dict(C=96, H=56, W=56),
    "OctaveConv": dict(C=256, O=256, H=56, W=56),
    "DeformableConv": dict(C=256, O=256, H=28, W=28),
    "CondConv": dict(C=80, O=80, H=28, W=28),
    "Involution": dict(C=64, K=7, H=56, W=56),
    "RepVGGBlock": dict(C=64, O=64, H=56, W=56),
    "ShiftConv": dict(C=64, O=64, H=56, W=56),
    "BSConvU": dict(C=64, O=128, H=56, W=56),
    "PartialConv": dict(C=64, H=56, W=56),
    "ConvNeXtBlock": dict(C=96, H=56, W=56),
}

_INPUT = ("N", "T", "H", "W")


def tour() -> str:
    """The tour as text: per variant, its closed forms in the input size, then the numbers.

    >>> "SeparableConv" in tour()
    True
    """
    lines = ["convcost tour: every variant's exact cost (MACs exclude bias; flops = 2 x MACs)", ""]
    for name, cls in VARIANTS.items():
        example = EXAMPLES[name]
        layer_fields = {k: v for k, v in example.items() if k not in _INPUT}
        batch = {k: v for k, v in example.items() if k == "N"}
        symbolic = cost(cls, **layer_fields, **batch)
        numeric = cost(cls, **example)
        args = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in example.items())
        lines.append(f"{name}({args})")
        lines.append(f"    params       = {display.number(symbolic.params)}")
        lines.append(f"    MACs         = {display.number(symbolic.macs)}")
        lines.append(f"    output shape = ({', '.join(map(display.formula, numeric.output_shape))})")
        lines.append(f"    at this size : {int(numeric.params):,} params, {int(numeric.macs):,} MACs, "
                     f"{int(numeric.memory_access):,} elements of memory access")
        lines.append("")
    return "\n".join(lines)
