"""The torch side of :mod:`convcost.primitives.linear`: ``nn.Linear`` and ``F.linear``.

Matrix products (``x @ y``, ``bmm``, ``einsum`` ...) are :mod:`convcost.torch.bindings.matmul`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.conventions import MACS, MACS_EVERYWHERE, batch, formula_params
from convcost.torch.rules import Emit, bind_arguments, reads


def _linear_call(args, kwargs):
    a = bind_arguments(("input", "weight", "bias"), {"bias": None}, args, kwargs)
    w, b = a["weight"], a["bias"]
    return Emit(p.Linear(C=int(w.shape[1]), O=int(w.shape[0]), bias=b is not None), [a["input"].shape], reads(w, b))


@binds(p.Linear, modules=(nn.Linear,))
class LinearBinding:
    def read(m):
        return p.Linear(C=m.in_features, O=m.out_features, bias=m.bias is not None)

    def build(layer, rank):
        return nn.Linear(as_int(layer.C), as_int(layer.O), bias=layer.bias)

    functions = {F.linear: _linear_call}
    passes_weights = True

    def autocast_op(spec):
        return "linear"

    def weight_copies(spec, reads, grads):
        # addmm and mm keep the weight for the input's gradient only
        return tuple(t for t in reads if t.dim() > 1) if grads[0] else ()
    conventions = {**MACS_EVERYWHERE, "torchinfo": lambda row: batch(row) * formula_params(row), "thop": MACS}
