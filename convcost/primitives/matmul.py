"""Matrix products: batched ``matmul``/``bmm``/``addmm``, ``einsum`` and scaled dot-product attention.

Counted as ``FlopCounterMode`` counts them (its total / 2): a product of an
``(n, k)`` by a ``(k, m)`` matrix is ``n k m`` MACs, once per broadcast batch
entry; attention is its two products, ``Q K^T`` and ``A V``.

>>> MatMul().cost([(8, 4, 16, 32), (32, 10)]).macs
163840
>>> MatMul().cost([(2, 1, 5, 3), (7, 3, 4)]).output_shape
(2, 7, 5, 4)
>>> Attention().cost([(2, 4, 16, 8), (2, 4, 20, 8), (2, 4, 20, 8)]).macs
40960
>>> Einsum(equation="bij,bjk->bik").cost([(2, 3, 4), (2, 4, 5)]).macs
120
"""

from __future__ import annotations

import dataclasses

from convcost.arith import total
from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Merge
from convcost.primitives.base import fmt
from convcost.shapes import equal_sizes, numel
from convcost.spec import count, flag, size, spec


def broadcast_batch(a, b, where) -> tuple:
    """The batch axes two operands broadcast to (PyTorch's rule: equal, or one of them 1)."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        else:
            raise ConvcostError(f"{where!r}: batch axes {fmt(a)} and {fmt(b)} do not broadcast")
    return tuple(out)


def _product(out, shapes, macs, conditions=(), **counts) -> Cost:
    return Cost(output_shape=out, macs=macs, activation_elements=numel(out),
                memory_access=total(numel(s) for s in shapes) + numel(out), conditions=conditions, **counts)


@spec
class MatMul(Merge):
    """``a @ b`` on ``(..., n, k)`` and ``(..., k, m)`` with broadcast batch axes (``torch.matmul``,
    ``bmm``, ``mm``; ``addmm``/``baddbmm`` with ``bias``: one addition per output element).

    MACs = batch x n x k x m.
    """

    bias: bool = flag(False)

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes):
        if len(shapes) != 2 or len(shapes[0]) < 2 or len(shapes[1]) < 2:
            raise ConvcostError(f"{self!r}: multiplies two operands of rank 2 or more, got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        a, b = shapes
        conditions = equal_sizes((a[-1],), (b[-2],), self, "inner sizes of the product")
        batch = broadcast_batch(a[:-2], b[:-2], self)
        out = (*batch, a[-2], b[-1])
        return _product(out, shapes, numel(out) * a[-1], conditions, bias_ops=numel(out) if self.bias else 0)


@spec
class Attention(Merge):
    """Scaled dot-product attention (``F.scaled_dot_product_attention``) on query ``(..., L, E)``, key
    ``(..., S, E)`` and value ``(..., S, Ev)``: MACs = batch x L x S x (E + Ev); the softmax is one
    ``act_ops`` per score."""

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes):
        if len(shapes) != 3 or any(len(s) < 2 for s in shapes):
            raise ConvcostError(f"{self!r}: takes query, key and value of rank 2 or more, got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        q, k, v = shapes
        conditions = equal_sizes((q[-1],), (k[-1],), self, "query and key features")
        conditions += equal_sizes((k[-2],), (v[-2],), self, "key and value lengths")
        batch = broadcast_batch(broadcast_batch(q[:-2], k[:-2], self), v[:-2], self)
        scores = numel(batch) * q[-2] * k[-2]
        out = (*batch, q[-2], v[-1])
        return _product(out, shapes, scores * (q[-1] + v[-1]), conditions, act_ops=scores)


@spec
class Einsum(Merge):
    """``torch.einsum(equation, *operands)`` of two or more operands, contracted left to right as PyTorch
    does (without opt_einsum): each pairwise product is a batched matrix product over the indices the
    pair still holds, after indices used by one operand only are summed out (additions, ``elementwise_ops``).
    A pair that shares no summed index is an element-wise product (no MACs, as ``FlopCounterMode`` counts it).
    """

    equation: str = dataclasses.field(default="ij,jk->ik")

    def validate(self):
        if not isinstance(self.equation, str) or "->" not in self.equation:
            raise ConvcostError(f"{self!r}: give an explicit equation 'inputs->output'")

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes):
        operands, output = parse_equation(self.equation, shapes, self)
        sizes = {}
        for labels, shape in zip(operands, shapes):
            for label, n in zip(labels, shape):
                if sizes.get(label, 1) == 1:
                    sizes[label] = n
        macs, adds, muls = 0, 0, 0
        left = operands[0]
        for j in range(1, len(operands)):
            right = operands[j]
            later = set(output).union(*operands[j + 1:])
            # an index neither in the other operand nor needed later is summed out first
            left, summed = _sum_out(left, set(right) | later, sizes)
            adds += summed
            right, summed = _sum_out(right, set(left) | later, sizes)
            adds += summed
            kept = [x for x in dict.fromkeys(left + right) if x in later]
            contracted = [x for x in dict.fromkeys(left) if x in right and x not in later]
            work = numel([sizes[x] for x in kept + contracted])
            if contracted:
                macs += work
            else:
                muls += work
            left = "".join(kept)
        left, summed = _sum_out(left, set(output), sizes)
        adds += summed
        out = tuple(sizes[x] for x in output)
        return _product(out, shapes, macs, elementwise_ops=adds + muls)


def _sum_out(labels, needed, sizes):
    """``labels`` without the ones not ``needed``, and the additions that summing them out costs."""
    kept = "".join(x for x in labels if x in needed)
    if len(kept) == len(labels):
        return labels, 0
    return kept, numel([sizes[x] for x in labels])


def parse_equation(equation, shapes, where) -> tuple:
    """The index letters of each operand and of the output, an ellipsis spelled out as capital letters."""
    text = equation.replace(" ", "")
    inputs, _, output = text.partition("->")
    parts = inputs.split(",")
    if len(parts) != len(shapes):
        raise ConvcostError(f"{where!r}: the equation names {len(parts)} operands, got {len(shapes)}")
    spare = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    ellipsis, operands = "", []
    for part, shape in zip(parts, shapes):
        if "..." in part:
            head, tail = part.split("...")
            n = len(shape) - len(head) - len(tail)
            while len(ellipsis) < n:
                ellipsis = next(spare) + ellipsis
            part = head + ellipsis[len(ellipsis) - n:] + tail
        if len(part) != len(shape) or not part.isalpha():
            raise ConvcostError(f"{where!r}: operand {part!r} does not match shape {fmt(shape)}")
        operands.append(part)
    output = output.replace("...", ellipsis)
    return operands, output


@spec
class MultiheadAttention(Merge):
    """``nn.MultiheadAttention`` (``F.multi_head_attention_forward``) on query ``(L, N, E)``, key ``(S, N, kdim)``
    and value ``(S, N, vdim)`` (or unbatched, without N): the input projections, the two products of
    attention over ``S + extra_keys`` keys (``add_bias_kv`` and ``add_zero_attn`` each add one), and the
    output projection. MACs = N (L E^2 + S kdim E + S vdim E) + 2 N L (S + extra_keys) E + N L E^2.

    >>> MultiheadAttention(E=8, H=2).cost([(5, 2, 8), (5, 2, 8), (5, 2, 8)]).macs
    3360
    """

    E: object = size()
    H: object = size(1)
    kdim: object = size(None)
    vdim: object = size(None)
    bias: bool = flag(True)
    extra_keys: object = count(0)

    def __post_init__(self):
        for name in ("kdim", "vdim"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.E)
        super().__post_init__()

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes):
        if len(shapes) != 3 or len({len(s) for s in shapes}) != 1 or len(shapes[0]) not in (2, 3):
            raise ConvcostError(f"{self!r}: takes query, key and value of rank 2 or 3, got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        q, k, v = shapes
        n = q[1] if len(q) == 3 else 1
        length, keys = q[0], k[0]
        e = self.E
        conditions = equal_sizes((q[-1], k[-1], v[-1]), (e, self.kdim, self.vdim), self, "features")
        attended = keys + self.extra_keys
        macs = n * (length * e * e + keys * self.kdim * e + keys * self.vdim * e) + 2 * n * length * attended * e \
            + n * length * e * e
        bias = n * (length + 2 * keys) * e + n * length * e if self.bias else 0
        out = q
        params = e * e + e * self.kdim + e * self.vdim + e * e + ((4 * e) if self.bias else 0)
        return _product(out, shapes, macs, conditions, params=params, bias_ops=bias,
                        act_ops=n * self.H * length * attended)
