"""How PyTorch 2.13 computes ``torch.einsum`` (without opt_einsum), step by step, on tensors that carry strides.

``torch.einsum`` is composite: autograd sees the views, sums, copies, products and batched matrix products it
is made of, and what a training step keeps depends on which of its reshapes are views and which are copies.
:func:`plan` replays ATen's algorithm (``einsum`` and ``sumproduct_pair`` in ``aten/src/ATen/native/Linear.cpp``)
on sizes and strides alone: each operand is permuted to one common order of indices (output indices first,
then the summed ones: ellipsis dimensions, then letters, capitals first), a repeated index is a diagonal
view, a missing one a unit axis; operands are contracted left to right, an index summed out as soon as no
later operand holds it; a pair that shares a summed index is permuted and reshaped to ``(batch, rows, summed)``
and ``(batch, summed, columns)`` and multiplied by ``bmm``, otherwise multiplied element-wise. A reshape is a
view when PyTorch's ``computeStride`` finds strides for it, else a contiguous copy; an element-wise product is
laid out as ``TensorIterator`` lays it out.

Sizes may be symbols: an index size is taken to differ from 1 unless it is the number 1, and strides compare
equal when their expressions do (``H W`` is never ``W``), as for any size a convolutional network uses.

>>> steps = plan("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], (True, False))
>>> steps.products, steps.kept    # one bmm (2 x 3 x 4 x 5); only the first operand needs a gradient: the second is kept
([120], {'operand 1': 40})
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost.arith import prod
from convcost.errors import ConvcostError
from convcost.shapes import numel

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # PyTorch's subscript order


@dataclasses.dataclass(frozen=True)
class Strided:
    """A tensor as the plan sees it: sizes, strides (in elements), its storage and whether it needs a gradient."""

    sizes: tuple
    strides: tuple
    storage: str
    grad: bool

    def permute(self, order) -> Strided:
        return dataclasses.replace(self, sizes=tuple(self.sizes[i] for i in order),
                                   strides=tuple(self.strides[i] for i in order))

    def unsqueeze(self, dim) -> Strided:
        # PyTorch's inferUnsqueezeGeometry: the new unit axis strides over the axis it is inserted before
        stride = 1 if dim >= len(self.sizes) else self.sizes[dim] * self.strides[dim]
        return dataclasses.replace(self, sizes=self.sizes[:dim] + (1,) + self.sizes[dim:],
                                   strides=self.strides[:dim] + (stride,) + self.strides[dim:])

    def diagonal(self, first, second) -> Strided:
        """``diagonal(0, first, second).movedim(-1, first)``: the diagonal axis takes ``first``'s place."""
        sizes = [n for d, n in enumerate(self.sizes) if d not in (first, second)]
        strides = [s for d, s in enumerate(self.strides) if d not in (first, second)]
        sizes.insert(first, self.sizes[first])
        strides.insert(first, self.strides[first] + self.strides[second])
        return dataclasses.replace(self, sizes=tuple(sizes), strides=tuple(strides))


@dataclasses.dataclass
class Plan:
    """What the einsum runs: the MACs of each ``bmm`` (``products``), the backward MACs, the storages autograd
    keeps (``kept``: name -> elements; an operand's storage is named ``operand i``) and the output's layout."""

    products: list
    backward_macs: object
    kept: dict
    output: Strided


def contiguous_strides(sizes) -> tuple:
    """The strides ``torch.empty(sizes)`` has."""
    strides, step = [], 1
    for n in reversed(sizes):
        strides.append(step)
        step = step * n
    return tuple(reversed(strides))


def _same(a, b) -> bool:
    if type(a) is int and type(b) is int:
        return a == b
    return sympy.expand(a - b) == 0


def _is_one(n) -> bool:
    return type(n) is int and n == 1 or n is sympy.S.One


def view_strides(sizes, strides, shape):
    """PyTorch's ``computeStride``: the strides of ``shape`` as a view of a tensor with ``sizes`` and ``strides``,
    or None when that reshape must copy.

    >>> view_strides((2, 3), (3, 1), (6,)), view_strides((3, 2), (1, 3), (6,))
    ((1,), None)
    """
    if not sizes:
        return tuple(1 for _ in shape)
    new = [0] * len(shape)
    view_d = len(shape) - 1
    chunk_base = strides[-1]
    tensor_numel, view_numel = 1, 1
    for tensor_d in range(len(sizes) - 1, -1, -1):
        tensor_numel = tensor_numel * sizes[tensor_d]
        if tensor_d == 0 or (not _is_one(sizes[tensor_d - 1])
                             and not _same(strides[tensor_d - 1], tensor_numel * chunk_base)):
            while view_d >= 0 and (_smaller(view_numel, tensor_numel) or _is_one(shape[view_d])):
                new[view_d] = view_numel * chunk_base
                view_numel = view_numel * shape[view_d]
                view_d -= 1
            if not _same(view_numel, tensor_numel):
                return None
            if tensor_d > 0:
                chunk_base = strides[tensor_d - 1]
                tensor_numel, view_numel = 1, 1
    return tuple(new) if view_d == -1 else None


def _smaller(a, b) -> bool:
    """``a < b`` for sizes and strides; symbolic sizes are taken to differ from 1, so ``W < H W``."""
    if type(a) is int and type(b) is int:
        return a < b
    if _same(a, b):
        return False
    numerator, denominator = sympy.cancel(sympy.sympify(b) / a).as_numer_denom()
    if denominator == 1 and numerator.is_integer and numerator.is_positive:
        return True  # b is a multiple of a, by sizes that are not all 1
    if numerator == 1 and denominator.is_integer and denominator.is_positive:
        return False
    difference = sympy.expand(b - a)
    if difference.is_nonpositive:
        return False
    if difference.is_nonnegative:
        return True
    raise ConvcostError(f"Einsum: whether {a} < {b} depends on the sizes; give them as numbers")


def _elementwise_strides(a: Strided, b: Strided, shape) -> tuple:
    """The strides ``TensorIterator`` gives the output of ``a * b`` (broadcast to ``shape``)."""
    if a.sizes == b.sizes:
        dense = contiguous_strides(shape)
        if all(_same(x, y) or _is_one(n) for t in (a, b) for x, y, n in zip(t.strides, dense, shape)):
            return dense  # TensorIterator's contiguous fast path (its other fast paths give what the sort below gives)
    operands = [tuple(0 if _is_one(n) and not _is_one(s) else st for n, s, st in zip(t.sizes, shape, t.strides))
                for t in (a, b)]

    def should_swap(d0, d1) -> int:
        for strides in operands:
            s0, s1 = strides[d0], strides[d1]
            if _same(s0, 0) or _same(s1, 0):
                continue
            if not _same(s0, s1):
                return -1 if _smaller(s0, s1) else 1
            if not _same(shape[d0], shape[d1]) and _smaller(shape[d1], shape[d0]):
                return 1
        return 0

    perm = list(range(len(shape) - 1, -1, -1))  # innermost first
    for i in range(1, len(shape)):
        dim1 = i
        for dim0 in range(i - 1, -1, -1):
            comparison = should_swap(perm[dim0], perm[dim1])
            if comparison > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif comparison < 0:
                break
    strides, step = [0] * len(shape), 1
    for d in perm:
        strides[d] = step
        step = step * shape[d]
    return tuple(strides)


def parse(equation: str, shapes, where) -> tuple:
    """``(labels of each operand, output labels, every label in PyTorch's order, output count)``: letters, and
    the ellipsis's axes as ``"...0"``, ``"...1"`` (right-aligned across operands)."""
    if not isinstance(equation, str):
        raise ConvcostError(f"{where!r}: equation={equation!r} must be a string")
    text = equation.replace(" ", "")
    lhs, arrow, rhs = text.partition("->")
    parts = lhs.split(",")
    if len(parts) != len(shapes):
        raise ConvcostError(f"{where!r}: the equation {equation!r} names {len(parts)} operands, got {len(shapes)}")
    spans = []
    for part, shape in zip(parts, shapes):
        head, dots, tail = part.partition("...")
        if "." in head + tail or not (head + tail).isalpha() and head + tail:
            raise ConvcostError(f"{where!r}: operand {part!r} of {equation!r} must be letters with at most one '...'")
        named = len(head) + len(tail)
        if (named > len(shape)) if dots else (named != len(shape)):
            raise ConvcostError(f"{where!r}: operand {part!r} does not match shape {tuple(shape)}")
        spans.append((head, len(shape) - named if dots else None, tail))
    ellipsis = max((n for _, n, _ in spans if n is not None), default=0)
    operands, counts = [], {}
    for head, n, tail in spans:
        labels = list(head) + ([f"...{j}" for j in range(ellipsis - n, ellipsis)] if n is not None else []) + list(tail)
        for x in head + tail:
            counts[x] = counts.get(x, 0) + 1
        operands.append(labels)
    dots = [f"...{j}" for j in range(ellipsis)]
    if not arrow:  # the implicit output: the ellipsis, then the letters used once, in order
        output = dots + [x for x in _LETTERS if counts.get(x) == 1]
    else:
        head, has_dots, tail = rhs.partition("...")
        if "." in head + tail or not (head + tail).isalpha() and head + tail:
            raise ConvcostError(f"{where!r}: the output {rhs!r} of {equation!r} must be letters with at most one '...'")
        letters = head + tail
        for x in letters:
            if x not in counts or letters.count(x) > 1:
                raise ConvcostError(f"{where!r}: output index {x!r} of {equation!r} must appear once in it and in an "
                                    "operand")
        output = list(head) + (dots if has_dots else []) + list(tail)
    summed = [d for d in dots if d not in output] + [x for x in _LETTERS if x in counts and x not in output]
    return operands, output, output + summed, len(output)


def plan(equation: str, shapes, grads, where="Einsum") -> Plan:
    """Replay ``torch.einsum(equation, *operands)`` on operands of ``shapes`` (contiguous), ``grads`` saying which
    need a gradient."""
    operands, _, order, out_dims = parse(equation, shapes, where)
    index = {label: i for i, label in enumerate(order)}
    sizes, counts, ops = {}, [0] * len(order), []
    for i, (labels, shape) in enumerate(zip(operands, shapes)):
        op = Strided(tuple(shape), contiguous_strides(shape), f"operand {i}", bool(grads[i]))
        permutation, dim = [-1] * len(order), 0
        for label in labels:
            at = index[label]
            if permutation[at] == -1:
                n = op.sizes[dim]
                if not _is_one(n):
                    if label in sizes and not _same(sizes[label], n):
                        raise ConvcostError(f"{where!r}: index {label!r} has sizes {sizes[label]} and {n}; an index's "
                                            "sizes must agree (or be 1, broadcast)")
                    sizes[label] = n
                    counts[at] += 1
                permutation[at] = dim
                dim += 1
            else:  # a repeated index: the diagonal
                if not _same(op.sizes[permutation[at]], op.sizes[dim]):
                    raise ConvcostError(f"{where!r}: index {label!r} is repeated in operand {i} with sizes "
                                        f"{op.sizes[permutation[at]]} and {op.sizes[dim]}")
                op = op.diagonal(permutation[at], dim)
        for at, value in enumerate(permutation):
            if value == -1:
                op = op.unsqueeze(dim)
                permutation[at] = dim
                dim += 1
        ops.append(op.permute(permutation))
    run = _Run(shapes)
    while len(ops) > 1:
        a, b = ops.pop(0), ops.pop(0)
        summed, a_only, b_only = [], [], []
        for dim in range(out_dims, len(order)):
            if not _is_one(a.sizes[dim]) and not _is_one(b.sizes[dim]):
                counts[dim] -= 1
                if counts[dim] == 1:
                    summed.append(dim)
                    counts[dim] = 0
            elif counts[dim] == 1:
                if not _is_one(a.sizes[dim]):
                    a_only.append(dim)
                    counts[dim] = 0
                elif not _is_one(b.sizes[dim]):
                    b_only.append(dim)
                    counts[dim] = 0
        a, b = run.sum(a, a_only), run.sum(b, b_only)
        ops.insert(0, run.pair(a, b, summed))
    result = ops[0]
    if len(order) > out_dims:  # the summed axes are 1 now: a view without them
        result = run.reshape(result, result.sizes[:out_dims])
    return Plan(run.products, run.backward, run.kept, result)


class _Run:
    """The operations of one einsum: what autograd keeps and the products' work."""

    def __init__(self, shapes):
        self.products, self.backward, self.kept = [], 0, {}
        self.elements = {f"operand {i}": numel(s) for i, s in enumerate(shapes)}  # of each storage

    def _new(self, sizes, strides, grad) -> Strided:
        name = f"tensor {len(self.elements)}"
        self.elements[name] = numel(sizes)
        return Strided(tuple(sizes), tuple(strides), name, grad)

    def _keep(self, t: Strided) -> None:
        self.kept[t.storage] = self.elements[t.storage]

    def sum(self, t: Strided, dims) -> Strided:
        if not dims:
            return t
        sizes = tuple(1 if d in dims else n for d, n in enumerate(t.sizes))
        return self._new(sizes, contiguous_strides(sizes), t.grad)  # a reduction writes a contiguous result

    def reshape(self, t: Strided, shape) -> Strided:
        strides = view_strides(t.sizes, t.strides, shape)
        if strides is not None:
            return dataclasses.replace(t, sizes=tuple(shape), strides=strides)
        return self._new(shape, contiguous_strides(shape), t.grad)  # a contiguous copy

    def pair(self, left: Strided, right: Strided, summed) -> Strided:
        """``sumproduct_pair(left, right, summed, keepdim=True)``."""
        if not summed:
            shape = tuple(y if _is_one(x) else x for x, y in zip(left.sizes, right.sizes))
            if left.grad:
                self._keep(right)
            if right.grad:
                self._keep(left)
            return self._new(shape, _elementwise_strides(left, right, shape), left.grad or right.grad)
        lro, lo, ro, total_sum = [], [], [], 1
        for i in range(len(left.sizes)):
            sl, sr = not _is_one(left.sizes[i]), not _is_one(right.sizes[i])
            if i in summed:
                if sl and sr:
                    total_sum = total_sum * left.sizes[i]
                elif sl:
                    left = self.sum(left, [i])
                elif sr:
                    right = self.sum(right, [i])
            elif sl and sr:
                lro.append(i)
            elif sl:
                lo.append(i)
            else:
                ro.append(i)
        if lo and ro and ro[-1] < lo[0]:  # the side whose axes all come first in the output goes left
            left, right, lo, ro = right, left, ro, lo
        batch, rows = prod(left.sizes[d] for d in lro), prod(left.sizes[d] for d in lo)
        columns = prod(right.sizes[d] for d in ro)
        out_size = [left.sizes[d] for d in lro] + [left.sizes[d] for d in lo] + [1] * len(summed) + \
            [right.sizes[d] for d in ro]
        lperm, rperm = lro + lo + list(summed) + ro, lro + list(summed) + ro + lo
        operm = [0] * len(out_size)
        for position, d in enumerate(lro + lo + list(summed) + ro):
            operm[d] = position
        left = self.reshape(left.permute(lperm), (batch, rows, total_sum))
        right = self.reshape(right.permute(rperm), (batch, total_sum, columns))
        work = batch * rows * total_sum * columns
        self.products.append(work)
        self.backward = self.backward + work * (int(left.grad) + int(right.grad))
        if left.grad:
            self._keep(right)
        if right.grad:
            self._keep(left)
        out = self._new((batch, rows, columns), contiguous_strides((batch, rows, columns)), left.grad or right.grad)
        return self.reshape(out, tuple(out_size)).permute(operm)  # a view of the contiguous product
