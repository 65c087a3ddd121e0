"""Each efficient block against the layer its paper replaces: the paper's headline ratio, derived exactly.

A :class:`Claim` costs the block and its baseline with convcost, takes the ratio with
:func:`convcost.compare`, and states the closed form the paper gives; a test checks that they are the
same expression. Where the paper's form assumes its splits are exact (alpha C an integer, O a
multiple of s ...), the sizes are written so that they are (``O = s m``), and the assumption is said.
:func:`page` is docs/variants.md (``python -m convcost.efficient > docs/variants.md``).

>>> claim = CLAIMS["OctaveConv"]
>>> claim.derived(), claim.stated
(3*alpha**2/4 - 3*alpha/2 + 1, -3*alpha*(2 - alpha)/4 + 1)
>>> claim.holds()
True
>>> baseline(PartialConv(C=64, H=56, W=56))
StandardConv(C=64, O=64, K=3, P=1, bias=False, H=56, W=56)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sympy

from convcost.comparison import compare
from convcost.efficient.cheap import BSConvU, GhostModule, MixConv, PartialConv, ShiftConv
from convcost.efficient.convnext import ConvNeXtBlock
from convcost.efficient.dynamic import CondConv, DeformableConv, Involution
from convcost.efficient.octave import OctaveConv
from convcost.efficient.repvgg import RepVGGBlock
from convcost.errors import ConvcostError
from convcost.symbols import C, H, K, O, W, alpha, r, s
from convcost.variants import DepthwiseConv, StandardConv

_SIZE = {"integer": True, "positive": True}
#: sizes the claims write others with: O = s m, K = 2k + 1, d = 2j + 1, C = 4c, H = 2h ...
m, k, j, c, h, w, d, E, n, g = sympy.symbols("m k j c h w d E n g", **_SIZE)

_INPUT = ("N", "H", "W")


def baseline(block):
    """The layer ``block``'s paper replaces, on the same input (a variant instance).

    >>> baseline(GhostModule(C=16, O=32, K=1))
    StandardConv(C=16, O=32, K=1, bias=False)
    """
    size = {name: getattr(block, name) for name in _INPUT}
    if isinstance(block, GhostModule):
        return StandardConv(C=block.C, O=block.O, K=block.K, S=block.S, P=_half(block.K), bias=False, **size)
    if isinstance(block, MixConv):
        widest = max(block.kernels) if all(type(x) is int for x in block.kernels) else block.kernels[-1]
        return DepthwiseConv(C=block.C, K=widest, S=block.S, P=_half(widest), bias=False, **size)
    if isinstance(block, OctaveConv):
        return StandardConv(C=block.C, O=block.O, K=block.K, S=block.S, P=_half(block.K - 1), bias=False, **size)
    if isinstance(block, DeformableConv):
        return StandardConv(C=block.C, O=block.O, K=block.K, S=block.S, P=block.P, D=block.D, G=block.G, **size)
    if isinstance(block, CondConv):
        return StandardConv(C=block.C, O=block.O, K=block.K, S=block.S, P=block.P, G=block.G, bias=False, **size)
    if isinstance(block, Involution):
        return StandardConv(C=block.C, O=block.C, K=block.K, S=block.S, P=_half(block.K - 1), bias=False, **size)
    if isinstance(block, RepVGGBlock):
        return block.fused()
    if isinstance(block, ShiftConv):
        return StandardConv(C=block.C, O=block.O, K=3, S=block.S, P=1, bias=False, **size)
    if isinstance(block, BSConvU):
        return StandardConv(C=block.C, O=block.O, K=block.K, S=block.S, P=block.P, **size)
    if isinstance(block, PartialConv):
        return StandardConv(C=block.C, O=block.C, K=block.K, P=_half(block.K), bias=False, **size)
    if isinstance(block, ConvNeXtBlock):
        return DepthwiseConv(C=block.C, K=block.K, P=_half(block.K), **size)
    raise ConvcostError(f"baseline: {block!r} is not one of the efficient blocks")


def _half(x):
    return x // 2 if type(x) is int else sympy.floor(x / 2)


def against_baseline(block, metric: str = "macs"):
    """``compare(baseline, block)``: the block's ``metric`` as a share of its baseline's (``.ratio``)."""
    return compare(baseline(block).cost(), block.cost(), metric=metric)


@dataclasses.dataclass(frozen=True)
class Claim:
    """A paper's headline ratio for one block: ``derive()`` computes it from convcost's costs,
    ``stated`` is the paper's closed form, under ``assumption``."""

    block: str
    paper: str
    headline: str
    assumption: str
    derive: Callable
    stated: sympy.Expr
    example: dict = dataclasses.field(default_factory=dict)

    def derived(self):
        return sympy.factor_terms(sympy.simplify(self.derive()))

    def holds(self) -> bool:
        return sympy.simplify(self.derive() - self.stated) == 0


def _ratio(block, metric="macs", flip=False):
    found = against_baseline(block, metric).ratio
    return 1 / found if flip else found


def _unfloored(expr):
    """The paper's reading: alpha C and alpha O are integers, so floor(alpha x) is alpha x."""
    return expr.replace(sympy.floor, lambda x: x)


def _octave():
    block = OctaveConv(C=C, O=O, K=3, alpha=alpha, H=2 * h, W=2 * w)
    octave, plain = block.cost(), baseline(block).cost()
    return sympy.simplify(_unfloored(octave.macs) / plain.macs)


def _repvgg_training(metric):
    block = RepVGGBlock(C=C, O=C, K=2 * k + 1, H=H, W=W)
    return _ratio(block, metric)


CLAIMS = {claim.block: claim for claim in (
    Claim("GhostModule", "GhostNet (Han et al., CVPR 2020), eq. 4",
          "speed-up over a plain conv: c k^2 s / (c k^2 + (s-1) d^2), about s",
          "O = s m (the primary maps split exactly), K = 2k+1 and d = 2j+1 odd; stride 1",
          lambda: _ratio(GhostModule(C=C, O=s * m, K=2 * k + 1, s=s, d=2 * j + 1, H=H, W=W), flip=True),
          C * (2 * k + 1) ** 2 * s / (C * (2 * k + 1) ** 2 + (s - 1) * (2 * j + 1) ** 2),
          dict(C=64, O=128, K=1, H=56, W=56)),
    Claim("MixConv", "MixNet (Tan and Le, BMVC 2019)",
          "MACs against a depthwise conv with the widest kernel: sum k_i^2 / (n k_max^2), 83/147 for (3, 5, 7)",
          "C = 3c (equal groups)",
          lambda: _ratio(MixConv(C=3 * c, H=H, W=W)),
          sympy.Rational(9 + 25 + 49, 3 * 49),
          dict(C=96, H=56, W=56)),
    Claim("OctaveConv", "Octave convolution (Chen et al., ICCV 2019), table 1",
          "MACs against a plain conv: 1 - (3/4) alpha (2 - alpha), 7/16 at alpha = 1/2",
          "alpha C and alpha O integers, H and W even; K = 3, stride 1",
          _octave,
          1 - sympy.Rational(3, 4) * alpha * (2 - alpha),
          dict(C=256, O=256, H=56, W=56)),
    Claim("DeformableConv", "Deformable ConvNets v2 (Zhu et al., CVPR 2019)",
          "MACs against the conv it replaces: 1 + 3 K^2 G offset_groups / O (the offset conv), plus the sampling",
          "modulated, offset_groups = 1, G = 1; sampling (5 C K^2 per output pixel) is in elementwise_ops",
          lambda: _ratio(DeformableConv(C=C, O=O, K=K, H=H, W=W)),
          1 + 3 * K**2 / O,
          dict(C=256, O=256, H=28, W=28)),
    Claim("CondConv", "CondConv (Yang et al., NeurIPS 2019)",
          "params against the conv it replaces: E experts, plus E (C + 1) / (O C K^2) for the router",
          "G = 1, no bias",
          lambda: _ratio(CondConv(C=C, O=O, K=K, experts=E, H=H, W=W), "params"),
          E + E * (C + 1) / (O * C * K**2),
          dict(C=80, O=80, H=28, W=28)),
    Claim("Involution", "Involution (Li et al., CVPR 2021)",
          "MACs against a KxK conv C -> C: (C/r + C K^2 / (r group_channels) + K^2) / (C K^2)",
          "stride 1, K = 2k+1 odd, C = r group_channels n",
          lambda: _ratio(Involution(C=r * g * n, K=2 * k + 1, r=r, group_channels=g, H=H, W=W)),
          (r * g * n / r + r * g * n * (2 * k + 1) ** 2 / (r * g) + (2 * k + 1) ** 2) / (r * g * n * (2 * k + 1) ** 2),
          dict(C=64, K=7, H=56, W=56)),
    Claim("RepVGGBlock", "RepVGG (Ding et al., CVPR 2021)",
          "what re-parameterisation saves at inference: training-form MACs over deploy-form MACs = 1 + 1/K^2",
          "C = O, stride 1 (all three branches), K = 2k+1",
          lambda: _repvgg_training("macs"),
          1 + 1 / (2 * k + 1) ** 2,
          dict(C=64, O=64, H=56, W=56)),
    Claim("ShiftConv", "Shift (Wu et al., CVPR 2018)",
          "MACs and params against the 3x3 conv it replaces: 1/9 (the shift is free)",
          "stride 1",
          lambda: _ratio(ShiftConv(C=C, O=O, H=H, W=W)),
          sympy.Rational(1, 9),
          dict(C=64, O=64, H=56, W=56)),
    Claim("BSConvU", "Blueprint separable convolutions (Haase and Amthor, CVPR 2020)",
          "MACs against a standard conv: 1/K^2 + 1/C, as depthwise separable",
          "stride 1, padding (K-1)/2, K = 2k+1",
          lambda: _ratio(BSConvU(C=C, O=O, K=2 * k + 1, P=k, H=H, W=W)),
          1 / (2 * k + 1) ** 2 + 1 / C,
          dict(C=64, O=128, H=56, W=56)),
    Claim("PartialConv", "FasterNet (Chen et al., CVPR 2023)",
          "MACs against a full KxK conv: 1/n_div^2, 1/16 at n_div = 4",
          "C = 4c",
          lambda: _ratio(PartialConv(C=4 * c, H=H, W=W)),
          sympy.Rational(1, 16),
          dict(C=64, H=56, W=56)),
    Claim("ConvNeXtBlock", "ConvNeXt (Liu et al., CVPR 2022)",
          "the block's MACs against its depthwise KxK alone: 1 + 2 expansion C / K^2 (the MLP dominates)",
          "K = 2k+1, expansion 4",
          lambda: _ratio(ConvNeXtBlock(C=C, K=2 * k + 1, H=H, W=W)),
          1 + 8 * C / (2 * k + 1) ** 2,
          dict(C=96, H=56, W=56)),
)}


def page() -> str:
    """docs/variants.md: every block's claim, derived, checked and at one size."""
    from convcost.catalog import VARIANTS

    lines = [
        "# The efficient blocks against their papers",
        "",
        "Written by `python -m convcost.efficient > docs/variants.md`; a test checks it is current.",
        "Each ratio is derived from convcost's exact costs of the block and of its baseline",
        "(`convcost.efficient.papers.baseline`), then compared with the paper's closed form.",
        "",
    ]
    for name, claim in CLAIMS.items():
        block = VARIANTS[name](**claim.example)
        base = baseline(block)
        ours, theirs = block.cost(), base.cost()
        lines += [
            f"## {name}",
            "",
            f"{claim.paper}: {claim.headline}.",
            "",
            f"- baseline: `{base!r}`",
            f"- assuming: {claim.assumption}",
            f"- derived: $${sympy.latex(claim.derived())}$$",
            f"- the paper's form: $${sympy.latex(claim.stated)}$$ ({'the same' if claim.holds() else 'DIFFERENT'})",
            f"- at `{block!r}`: {int(ours.params):,} params and {int(ours.macs):,} MACs against "
            f"{int(theirs.params):,} and {int(theirs.macs):,}; MACs ratio {sympy.Rational(ours.macs, theirs.macs)}; "
            f"activation elements {int(ours.activation_elements):,} against {int(theirs.activation_elements):,}",
            "",
        ]
    return "\n".join(lines)
