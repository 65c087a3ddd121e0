"""The torch side of :mod:`convcost.primitives.linear`: ``nn.Linear``, ``F.linear`` and matrix products.

A matrix product ``x @ y`` is read as a bias-free Linear on ``x``: (..., n, k) @ (k, m), or batched.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.conventions import MACS, MACS_EVERYWHERE, batch, formula_params
from convcost.torch.rules import Emit, NoRule, Tensor, bind_arguments, reads


def _linear_call(args, kwargs):
    a = bind_arguments(("input", "weight", "bias"), {"bias": None}, args, kwargs)
    w, b = a["weight"], a["bias"]
    return Emit(p.Linear(C=int(w.shape[1]), O=int(w.shape[0]), bias=b is not None), [a["input"].shape], reads(w, b))


def _matmul(args, kwargs):
    x, y = args[0], args[1]
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or len(x.shape) < 2 or len(y.shape) < 2:
        raise NoRule("matmul of vectors or non-tensors")
    batch_x, batch_y = x.shape[:-2], y.shape[:-2]
    if len(batch_y) > len(batch_x) or any(by != 1 and by != bx for bx, by in zip(batch_x[::-1], batch_y[::-1])):
        raise NoRule("matmul whose second operand has more batch entries than the first")
    return Emit(p.Linear(C=y.shape[-2], O=y.shape[-1], bias=False), [x.shape], reads(x, y))


@binds(p.Linear, modules=(nn.Linear,))
class LinearBinding:
    def read(m):
        return p.Linear(C=m.in_features, O=m.out_features, bias=m.bias is not None)

    def build(layer, rank):
        return nn.Linear(as_int(layer.C), as_int(layer.O), bias=layer.bias)

    functions = {F.linear: _linear_call, torch.matmul: _matmul, operator.matmul: _matmul, torch.mm: _matmul,
                 torch.bmm: _matmul}
    methods = {"matmul": _matmul, "mm": _matmul, "bmm": _matmul}
    conventions = {**MACS_EVERYWHERE, "torchinfo": lambda row: batch(row) * formula_params(row), "thop": MACS}
