"""Probes of what the running release's ``FlopCounterMode`` counts, each on a few elements.

>>> from convcost.torch.runtime.probe import grouped_overcount
>>> grouped_overcount()   # true of 2.13, 2.14 and 2.15
True
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def _backward_flops(out) -> int:
    with FlopCounterMode(display=False) as counter:
        out.sum().backward()
    return counter.get_total_flops()


def grouped_overcount() -> bool:
    """A depthwise weight gradient of 2 channels, one pixel, a 1x1 kernel: 2 MACs, counted 4 when G times over."""
    x = torch.ones(1, 2, 1, 1)
    w = torch.ones(2, 1, 1, 1, requires_grad=True)
    flops = _backward_flops(F.conv2d(x, w, groups=2))
    if flops not in (2 * 2, 2 * 2 * 2):
        raise RuntimeError(f"FlopCounterMode counts {flops} FLOPs for a 2-MAC grouped weight gradient")
    return flops == 2 * 2 * 2


def fused_attention() -> bool:
    """Attention of 1x2x8x4 on the CPU's fused kernel: its forward is 2 048 FLOPs where it is counted."""
    q, k, v = (torch.ones(1, 2, 8, 4, requires_grad=True) for _ in range(3))
    with FlopCounterMode(display=False) as counter:
        out = F.scaled_dot_product_attention(q, k, v)
    forward = counter.get_total_flops()
    backward = _backward_flops(out)
    if (forward == 0) != (backward == 0):
        raise RuntimeError(f"FlopCounterMode counts the fused attention's forward ({forward} FLOPs) and its "
                           f"backward ({backward}) differently: convcost has no convention for that")
    return forward != 0


@dataclasses.dataclass(frozen=True)
class FlopCounter:
    """What the running release's ``FlopCounterMode`` counts, where releases differ.

    ``grouped_overcount``: a grouped convolution's weight gradient counted ``G`` times over (the fix is
    upstream PR 183405, not in any proven release). ``fused_attention``: the CPU's fused attention kernel
    (``_scaled_dot_product_flash_attention_for_cpu``) counted, forward and backward (from 2.15; 2.13 and
    2.14 count nothing for it).
    """

    grouped_overcount: bool
    fused_attention: bool


def probe_flop_counter() -> FlopCounter:
    """What the running release's ``FlopCounterMode`` counts, probed on tiny CPU tensors."""
    return FlopCounter(grouped_overcount=grouped_overcount(), fused_attention=fused_attention())
