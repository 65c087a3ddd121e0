"""The torch side of :mod:`convcost.primitives.matmul`: ``matmul``/``@``, ``mm``, ``bmm``, ``addmm``,
``baddbmm``, ``einsum``, ``F.scaled_dot_product_attention`` and the experts' ``torch._grouped_mm``.

A vector operand of ``matmul`` is a matrix of one row (first operand) or one column (second), as PyTorch
defines it; the returned shape drops that axis again.
"""

from __future__ import annotations

import dataclasses
import operator

import torch
import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.report import forward_cost
from convcost.torch import layouts
from convcost.torch.binding import binds
from convcost.torch.conventions import FLOPS, MACS
from convcost.torch.rules import Emit, NoRule, Tensor, bind_arguments, reads, tensor_arg
from convcost.torch.runtime.private import GROUPED_MM, attention_math


def _product(x, y, bias=False, extra=()):
    x, y = tensor_arg(x, "the first operand"), tensor_arg(y, "the second operand")
    a, b = tuple(x.shape), tuple(y.shape)
    if not a or not b:
        raise NoRule("a product with a 0-D operand is a multiplication")
    drop_row, drop_col = len(a) == 1, len(b) == 1
    a = (1, *a) if drop_row else a
    b = (*b, 1) if drop_col else b
    spec = p.MatMul(bias=bias)
    out = forward_cost(spec, (a, b)).output_shape  # (the row's own cost, remembered for it)
    output = None
    if drop_row or drop_col:
        output = out[:-2] + (() if drop_row else out[-2:-1]) + (() if drop_col else out[-1:])
    # with an added input (addmm, baddbmm), the operands by name: all three may have one shape
    return Emit(spec, [a, b], reads(x, y, *extra), output, operands=(x, y) if extra else None)


def _matmul(args, kwargs):
    a = bind_arguments(("input", "other"), {}, args, kwargs)
    return _product(a["input"], a["other"])


def _rmatmul(args, kwargs):  # ``w @ x`` seen as ``x.__rmatmul__(w)``
    return _product(args[1], args[0])


def _addmm(args, kwargs):
    a = bind_arguments(("input", "mat1", "mat2"), {}, args, kwargs)
    return _product(a["mat1"], a["mat2"], bias=True, extra=(a["input"],))


def _baddbmm(args, kwargs):
    a = bind_arguments(("input", "batch1", "batch2"), {}, args, kwargs)
    return _product(a["batch1"], a["batch2"], bias=True, extra=(a["input"],))


def _einsum(args, kwargs):
    equation, operands = args[0], list(args[1:])
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = list(operands[0])
    if not isinstance(equation, str) or not all(isinstance(t, Tensor) for t in operands):
        raise NoRule("einsum in the sublist form")
    if len(operands) < 2:
        raise NoRule("einsum of one operand (a transpose, diagonal or sum: no MACs)")
    if "->" not in equation:  # the implicit output: every index used once, in alphabetical order
        letters = equation.replace("...", "").replace(",", "").replace(" ", "")
        once = sorted(x for x in set(letters) if letters.count(x) == 1)
        equation += "->" + ("..." if "..." in equation else "") + "".join(once)
    if torch.backends.opt_einsum.is_available() and torch.backends.opt_einsum.enabled and len(operands) > 2:
        raise NoRule("einsum of 3+ operands under opt_einsum (its contraction order is opt_einsum's choice)")
    return Emit(p.Einsum(equation=equation), [t.shape for t in operands], reads(*operands))


def _attention(args, kwargs):
    a = bind_arguments(("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
                       {"attn_mask": None, "enable_gqa": False}, args, kwargs)
    q, k, v = (tensor_arg(a[n], n) for n in ("query", "key", "value"))
    groups = 1
    if a["enable_gqa"] and min(len(q.shape), len(k.shape), len(v.shape)) >= 3 and not \
            q.shape[-3] == k.shape[-3] == v.shape[-3]:
        for t, name in ((k, "key"), (v, "value")):
            if q.shape[-3] % t.shape[-3]:
                raise NoRule(f"{q.shape[-3]} query heads over {t.shape[-3]} {name} heads")
        # each key head and each value head serves this many query heads (one count where they agree)
        key, value = q.shape[-3] // k.shape[-3], q.shape[-3] // v.shape[-3]
        groups = key if key == value else (key, value)
    return Emit(p.Attention(kv_groups=groups), [q.shape, k.shape, v.shape], reads(q, k, v))


_MHA_ARGS = ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias", "bias_k",
             "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias", "training", "key_padding_mask",
             "need_weights", "attn_mask", "use_separate_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight",
             "static_k", "static_v", "average_attn_weights", "is_causal")


def _multi_head_attention(args, kwargs):
    a = bind_arguments(_MHA_ARGS, {"use_separate_proj_weight": False, "q_proj_weight": None, "k_proj_weight": None,
                                   "v_proj_weight": None, "static_k": None, "static_v": None, "bias_k": None,
                                   "bias_v": None, "add_zero_attn": False, "need_weights": True,
                                   "average_attn_weights": True, "is_causal": False}, args, kwargs)
    if a["static_k"] is not None or a["static_v"] is not None:
        raise NoRule("multi-head attention with static keys or values")
    q, k, v = (tensor_arg(a[n], n) for n in ("query", "key", "value"))
    e = int(a["embed_dim_to_check"])
    # the distinct tensors it is called with decide how PyTorch projects them (one packed product for x, x, x)
    distinct = [q] if q is k and k is v else [q, k] if k is v else [q, k, v]
    spec = p.MultiheadAttention(E=e, H=int(a["num_heads"]), kdim=k.shape[-1], vdim=v.shape[-1],
                                bias=a["in_proj_bias"] is not None, add_bias_kv=a["bias_k"] is not None,
                                add_zero_attn=bool(a["add_zero_attn"]), need_weights=bool(a["need_weights"]),
                                dropout=bool(a["training"]) and float(a["dropout_p"]) > 0)
    weights = [a[n] for n in ("in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj_weight", "out_proj_bias",
                              "q_proj_weight", "k_proj_weight", "v_proj_weight")]
    heads = int(a["num_heads"])
    shapes = [t.shape for t in distinct]
    out = Tensor((*q.shape[:-1], e))  # (L, N, E), or (L, E) unbatched
    if not a["need_weights"]:
        return Emit(spec, shapes, reads(*distinct, *weights), (out, None))
    batch = (q.shape[1],) if len(q.shape) == 3 else ()
    per_head = () if a["average_attn_weights"] else (heads,)
    extra = (a["bias_k"] is not None) + bool(a["add_zero_attn"])
    scores = Tensor((*batch, *per_head, q.shape[0], k.shape[0] + extra))
    return Emit(spec, shapes, reads(*distinct, *weights), (out, scores))


class BatchedProduct(nn.Module):
    """``a @ b`` as a module of two inputs (what :func:`convcost.torch.to_torch` builds for a MatMul)."""

    def forward(self, a, b):
        return torch.matmul(a, b)


class EinsumProduct(nn.Module):
    def __init__(self, equation: str):
        super().__init__()
        self.equation = equation

    def forward(self, *operands):
        return torch.einsum(self.equation, *operands)


class MultiheadAttentionCall(nn.Module):
    """``nn.MultiheadAttention`` called on the distinct tensors a ``MultiheadAttention`` spec takes (``x`` as
    query, key and value; ``q`` and ``kv``; or ``q, k, v``), returning its output alone (what
    :func:`convcost.torch.to_torch` builds)."""

    def __init__(self, layer):
        super().__init__()
        self.attention = nn.MultiheadAttention(layer.E, layer.H, dropout=0.1 if layer.dropout else 0.0,
                                               bias=layer.bias, add_bias_kv=layer.add_bias_kv,
                                               add_zero_attn=layer.add_zero_attn, kdim=layer.kdim, vdim=layer.vdim)
        self.need_weights = layer.need_weights

    def forward(self, *inputs):
        q, k, v = (inputs[i] for i in p.multihead.ROLES[len(inputs)])
        return self.attention(q, k, v, need_weights=self.need_weights)[0]


class DotProductAttention(nn.Module):
    """``F.scaled_dot_product_attention`` as a module: on PyTorch's math path when ``math`` (what an
    ``Attention(kernel="math")`` is), with dropout on the weights when ``dropout`` is above 0."""

    def __init__(self, math: bool = False, dropout: float = 0.0, grouped: bool = False):
        super().__init__()
        self.math, self.dropout, self.grouped = math, dropout, grouped

    def forward(self, q, k, v):
        p = self.dropout if self.training else 0.0
        if not self.math:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, enable_gqa=self.grouped)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, enable_gqa=self.grouped)


_TOOLS = {"convcost": MACS, "torch": FLOPS, "fvcore": MACS, "ptflops": MACS}


def _einsum_step(spec, shapes, grads, operands, call):
    """An einsum in a training step: its backward MACs from its own cost, what autograd keeps of its pairwise
    products (operands as they are, or the copies their folding makes) from the call run on meta tensors
    laid out as the model's (the cost's plan assumes contiguous operands). None when that cannot run."""
    if call is None or not any(grads):
        return None
    run = layouts.simulate(*call)
    if run is None or len(run.operands) != len(operands):
        return None
    if run.fresh and not all(type(n) is int for s in shapes for n in s):
        return None  # its copies' sizes come from the meta run, at generic stand-ins for the symbols
    c = spec.cost(shapes, input_grads=grads)
    return dataclasses.replace(c, saved_elements=run.saved_elements(c.output_shape),
                               saved_indices=run.fresh_indices, saves_input=tuple(run.kept),
                               saves_output=run.saves_output, input_grads=grads)


def _einsum_layout(spec, operands, output_shape):
    """An einsum's output as PyTorch lays it out: its pairwise product (a ``bmm``) permuted into the equation's
    output order, often a strided view (Mamba 2's chunked scan slices one and folds it into the next einsum
    without a copy), from the call run on meta tensors."""
    out, _ = layouts.run_view(torch.einsum, (spec.equation, *operands), {})
    return (layouts.layout_of(out) if isinstance(out, torch.Tensor) else None), False


def _attention_kernel(spec, operands):
    """The fused CPU kernel needs unit strides on the last axis of query, key and value: else the math path."""
    if not all(map(layouts.last_stride_one, operands)):
        return dataclasses.replace(spec, kernel="math")
    return spec


def _attention_step_call(spec, operands, call):
    """The math path itself (the CPU's kernel choice is not meta's); the fused kernel keeps its inputs as
    they are, whatever their strides."""
    if spec.fused([t.shape for t in operands]):
        return None
    return attention_math, tuple(operands), {}


def _attention_layout(spec, operands, output_shape):
    """The fused kernel allocates its output like the query, the math path anew."""
    meta = layouts.meta_of(operands[0]) if spec.fused([t.shape for t in operands]) else None
    return (layouts.layout_of(torch.empty_like(meta)) if meta is not None else None), False


@binds(p.MatMul)
class MatMulBinding:
    def build(layer, rank):
        return BatchedProduct()

    functions = {torch.matmul: _matmul, operator.matmul: _matmul, torch.mm: _matmul, torch.bmm: _matmul,
                 torch.addmm: _addmm, torch.baddbmm: _baddbmm}
    methods = {"matmul": _matmul, "mm": _matmul, "bmm": _matmul, "__matmul__": _matmul, "__rmatmul__": _rmatmul,
               "addmm": _addmm, "baddbmm": _baddbmm}
    conventions = _TOOLS

    def autocast_op(spec):
        return "matmul"  # mm, bmm, addmm and baddbmm are lower-precision operators too


@binds(p.Einsum)
class EinsumBinding:
    def build(layer, rank):
        return EinsumProduct(layer.equation)

    functions = {torch.einsum: _einsum}
    conventions = _TOOLS
    step_cost = _einsum_step
    output_layout = _einsum_layout
    strided_output = True


@binds(p.MultiheadAttention)
class MultiheadAttentionBinding:
    def build(layer, rank):
        return MultiheadAttentionCall(layer)

    functions = {F.multi_head_attention_forward: _multi_head_attention}
    conventions = _TOOLS


@binds(p.Attention)
class AttentionBinding:
    def build(layer, rank):
        return DotProductAttention(math=layer.kernel == "math", dropout=0.1 if layer.dropout else 0.0,
                                   grouped=layer.groups() != (1, 1))

    functions = {F.scaled_dot_product_attention: _attention}
    conventions = _TOOLS
    kernel = _attention_kernel
    step_call = _attention_step_call
    output_layout = _attention_layout

    def autocast_op(spec):
        return "scaled_dot_product_attention"

    def private_dtype(spec, shapes, operand, weight, buffers):
        # the fused kernel's log-sum-exp is float32 whatever the operands; the math path keeps its products in
        # the dtype it computes in (float32 for a half-precision call on the CPU: computes_in)
        return torch.float32 if spec.fused(shapes) else operand

    def computes_in(spec, shapes, dtype):
        # the CPU's math path upcasts half-precision operands and keeps the float32 copies
        half = dtype in (torch.bfloat16, torch.float16)
        return torch.float32 if half and not spec.fused(shapes) else None


def linear_attention(q, k, v):
    """``phi(q) @ (phi(k)^T @ v)`` with ``phi(x) = elu(x) + 1``: what a ``LinearAttention`` computes."""
    return (F.elu(q) + 1) @ ((F.elu(k) + 1).transpose(-2, -1) @ v)


class LinearAttentionCall(nn.Module):
    """Linear attention as a module of query, key and value (what :func:`convcost.torch.to_torch` builds for a
    ``LinearAttention``, and what reads as one)."""

    def forward(self, q, k, v):
        return linear_attention(q, k, v)


@binds(p.LinearAttention, modules=(LinearAttentionCall,))
class LinearAttentionBinding:
    def read(module):
        return p.LinearAttention()

    def build(layer, rank):
        return LinearAttentionCall()

    def module_inputs(module, args, kwargs):  # query, key and value: one row of three inputs
        return list(args) if len(args) == 3 and not kwargs and all(isinstance(a, Tensor) for a in args) else None

    def step_call(spec, operands, call):
        # on strided operands the products fold them (copies kept instead): the computation itself, on meta
        return linear_attention, tuple(operands), {}

    conventions = {"convcost": MACS, "torch": FLOPS}


def _grouped_mm(args, kwargs):
    a = bind_arguments(("mat_a", "mat_b", "offs", "bias", "out_dtype"), {"offs": None, "bias": None,
                                                                          "out_dtype": None}, args, kwargs)
    x, w = tensor_arg(a["mat_a"], "mat_a"), tensor_arg(a["mat_b"], "mat_b")
    if a["bias"] is not None:
        raise NoRule("a grouped product with a bias")
    if a["out_dtype"] is not None and x.dtype is not None and a["out_dtype"] != x.dtype:
        raise NoRule(f"a grouped product into {a['out_dtype']}")
    operands = [x, w] + ([tensor_arg(a["offs"], "offs")] if a["offs"] is not None else [])
    return Emit(p.GroupedMatMul(), [t.shape for t in operands], reads(*operands))


class GroupedProduct(nn.Module):
    """``torch._grouped_mm`` as a module of its inputs (what :func:`convcost.torch.to_torch` builds for a
    ``GroupedMatMul``): tokens, one matrix per group and where each group ends, or two batches."""

    def forward(self, a, b, offs=None):
        return GROUPED_MM(a, b, offs=offs)


@binds(p.GroupedMatMul)
class GroupedMatMulBinding:
    def build(layer, rank):
        return GroupedProduct()

    functions = {GROUPED_MM: _grouped_mm} if GROUPED_MM is not None else {}
    conventions = _TOOLS


def _solve_triangular(args, kwargs):
    a = bind_arguments(("input", "other"), {"left": True, "unitriangular": False}, args, kwargs)
    if "out" in kwargs:
        raise NoRule("a triangular solve into out=")
    matrix, rhs = tensor_arg(a["input"], "the triangular matrix"), tensor_arg(a["other"], "the right-hand side")
    return Emit(p.TriangularSolve(left=bool(a["left"]), unitriangular=bool(a["unitriangular"])),
                [matrix.shape, rhs.shape], reads(matrix, rhs))


class TriangularSolveCall(nn.Module):
    """``torch.linalg.solve_triangular`` as a module of its two inputs (what :func:`convcost.torch.to_torch` builds
    for a ``TriangularSolve``); lower triangular (the triangle read is the same size either way)."""

    def __init__(self, left=True, unitriangular=False):
        super().__init__()
        self.left, self.unitriangular = left, unitriangular

    def forward(self, a, b):
        return torch.linalg.solve_triangular(a, b, upper=False, left=self.left, unitriangular=self.unitriangular)


@binds(p.TriangularSolve)
class TriangularSolveBinding:
    def build(layer, rank):
        return TriangularSolveCall(layer.left, layer.unitriangular)

    functions = {torch.linalg.solve_triangular: _solve_triangular}
    conventions = _TOOLS
