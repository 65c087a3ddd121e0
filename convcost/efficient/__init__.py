"""The blocks efficient CNNs are built from, each a composition of primitives with its paper's baseline.

``convcost.efficient.papers`` holds each block's headline ratio against the layer it replaces, derived
exactly; ``python -m convcost.efficient`` writes docs/variants.md from it.
"""

from convcost.efficient.cheap import BSConvU, GhostModule, MixConv, PartialConv, ShiftConv
from convcost.efficient.convnext import ConvNeXtBlock
from convcost.efficient.dynamic import CondConv, DeformableConv, Dynamic, Involution
from convcost.efficient.octave import Octave, OctaveConv
from convcost.efficient.repvgg import RepVGGBlock

#: every efficient block, in the order of the issue that asked for them
EFFICIENT = (GhostModule, MixConv, OctaveConv, DeformableConv, CondConv, Involution, RepVGGBlock, ShiftConv, BSConvU,
             PartialConv, ConvNeXtBlock)

__all__ = ["EFFICIENT", "Dynamic", "Octave", *(cls.__name__ for cls in EFFICIENT)]
