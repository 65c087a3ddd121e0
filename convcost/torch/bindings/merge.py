"""The torch side of :mod:`convcost.primitives.merge`: ``x + y``, ``x * w``, ``torch.cat`` and the merge module.

A subtraction reads as an addition and a division as a multiplication (one operation per element each).
A number operand broadcasts like a tensor of ones.
"""

from __future__ import annotations

import operator

import torch

from convcost import primitives as p
from convcost.torch import modules
from convcost.torch.binding import binds
from convcost.torch.layouts import broadcast_layout
from convcost.torch.rules import Emit, NoRule, Tensor, bind_arguments, broadcast, promoted, reads


def _elementwise(merge, divides=False):
    merge = merge()  # one frozen spec for every call (an element-wise merge has no fields)

    def rule(args, kwargs):
        tensors = [a for a in args[:2] if isinstance(a, Tensor)]
        if not tensors:
            raise NoRule("not a tensor operation")
        out = broadcast([t.shape for t in tensors])
        shapes = [t.shape if len(t.shape) == len(out) else (1,) * (len(out) - len(t.shape)) + t.shape for t in tensors]
        if len(shapes) == 1 or type(merge) is p.Add:
            shapes = [out, out]  # Add needs equal shapes: a broadcast operand is read as expanded
        # token ids plus one stay integers, a complex product complex; a division is floating unless it rounds
        true_division = divides and kwargs.get("rounding_mode") is None
        return Emit(merge, shapes, reads(*args[:2]), dtype=promoted(args[:2], divides=true_division))
    return rule


def _cat(args, kwargs):
    a = bind_arguments(("tensors", "dim"), {"dim": 0}, args, kwargs)
    tensors = list(a["tensors"])
    if any(len(t.shape) != 1 for t in tensors):  # PyTorch skips a 1-D empty part beside parts of another rank
        tensors = [t for t in tensors if tuple(t.shape) != (0,)] or tensors
    if len(tensors) == 1:
        return tensors[0]
    return Emit(p.Concat(dim=int(a["dim"])), [t.shape for t in tensors], reads(*tensors))


_ADD, _MUL, _DIV = _elementwise(p.Add), _elementwise(p.Mul), _elementwise(p.Mul, divides=True)


def _read_merge(m):
    return p.Concat(dim=m.dim) if m.kind == "concat" else {"add": p.Add, "mul": p.Mul}[m.kind]()


@binds(p.Add, modules=(modules.Merge,))
class AddBinding:
    read = _read_merge  # the merge module reads as whichever merge it holds

    def build(layer, rank):
        return modules.Merge("add")

    functions = {operator.add: _ADD, operator.iadd: _ADD, torch.add: _ADD, operator.sub: _ADD, operator.isub: _ADD,
                 torch.sub: _ADD, torch.subtract: _ADD}
    methods = {"add": _ADD, "add_": _ADD, "sub": _ADD, "sub_": _ADD, "subtract": _ADD, "subtract_": _ADD}
    output_layout = broadcast_layout
    element_wise = True  # (ids *= 0.5, x[:, :1] += x: PyTorch refuses)


@binds(p.Mul)
class MulBinding:
    def build(layer, rank):
        return modules.Merge("mul")

    functions = {operator.mul: _MUL, operator.imul: _MUL, torch.mul: _MUL, operator.truediv: _DIV,
                 operator.itruediv: _DIV, torch.div: _DIV, torch.multiply: _MUL, torch.divide: _DIV,
                 torch.true_divide: _DIV}
    methods = {"mul": _MUL, "mul_": _MUL, "div": _DIV, "div_": _DIV, "multiply": _MUL, "multiply_": _MUL,
               "divide": _DIV, "divide_": _DIV, "true_divide": _DIV, "true_divide_": _DIV}
    output_layout = broadcast_layout
    element_wise = True  # (ids *= 0.5, x[:, :1] += x: PyTorch refuses)


@binds(p.Concat)
class ConcatBinding:
    def build(layer, rank):
        return modules.Merge("concat", layer.dim)

    functions = {torch.cat: _cat, torch.concat: _cat}

    def autocast_op(spec):
        return "cat"


