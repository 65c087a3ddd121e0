"""The torch side of :mod:`convcost.primitives.norm`: ``nn.BatchNorm1d/2d/3d`` and ``F.batch_norm``.

Its ``eps`` and ``momentum`` change no count and are not kept.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.errors import ConvcostError
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.conventions import batch, formula_params, per_element
from convcost.torch.layouts import keeps_channels_last
from convcost.torch.rules import Emit, NoRule, bind_arguments, reads, tensor_arg


def _batch_norm_call(args, kwargs):
    a = bind_arguments(("input", "running_mean", "running_var", "weight", "bias"), {"weight": None, "bias": None},
                       args, kwargs)
    x = tensor_arg(a["input"], "the input")
    if len(x.shape) < 2:
        raise NoRule("batch norm of an input without a channel axis")
    return Emit(p.BatchNorm(C=x.shape[1], affine=a["weight"] is not None), [x.shape], reads(a["weight"], a["bias"]))


BATCH_NORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}  # by input rank


@binds(p.BatchNorm, modules=(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))
class BatchNormBinding:
    def read(m):
        if m.affine and m.bias is None:  # torch 2.13's bias=False: a scale without a shift
            raise ConvcostError(f"cannot read {m!r}: batch norm with a scale but no shift (bias=False) "
                                "has no convcost spec")
        return p.BatchNorm(C=m.num_features, affine=m.affine)

    def build(layer, rank):
        if rank is not None and rank not in BATCH_NORM:
            raise ConvcostError(f"{layer!r}: batch norm takes inputs of rank 2 to 5, got rank {rank}")
        return BATCH_NORM[rank or 4](as_int(layer.C), affine=layer.affine)

    functions = {F.batch_norm: _batch_norm_call}
    passes_weights = True
    output_layout = keeps_channels_last
    conventions = {
        "fvcore": per_element(2, 1),
        "torchinfo": lambda row: batch(row) * formula_params(row),
        "ptflops": per_element(2, 1),
        "thop": per_element(4, 2),
    }
