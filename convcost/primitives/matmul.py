"""Matrix products: batched ``matmul``/``bmm``/``addmm``, the experts' grouped product and scaled dot-product
attention (``einsum`` is :mod:`convcost.primitives.einsum`).

Counted as ``FlopCounterMode`` counts them (its total / 2): a product of an
``(n, k)`` by a ``(k, m)`` matrix is ``n k m`` MACs, once per broadcast batch
entry; attention is its two products, ``Q K^T`` and ``A V``.

>>> MatMul().cost([(8, 4, 16, 32), (32, 10)]).macs
163840
>>> MatMul().cost([(2, 1, 5, 3), (7, 3, 4)]).output_shape
(2, 7, 5, 4)
>>> Attention().cost([(2, 4, 16, 8), (2, 4, 20, 8), (2, 4, 20, 8)]).macs
40960
"""

from __future__ import annotations

from convcost.arith import total
from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Merge
from convcost.primitives.base import fmt
from convcost.shapes import equal_sizes, numel
from convcost.spec import choice, flag, size, spec


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

    def _cost(self, shapes, grads=(True, True)):
        """A training step: each operand's gradient is a product as large as the forward (``macs`` each);
        autograd keeps each operand for the other's gradient, as it is, or as the copy ``torch.matmul``
        makes of it: expanded to the full batch when its batch axes broadcast, or transposed when a matrix
        multiplies a batch (PyTorch 2.13)."""
        if len(shapes) != 2 or len(shapes[0]) < 2 or len(shapes[1]) < 2:
            raise ConvcostError(f"{self!r}: multiplies two operands of rank 2 or more, got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        a, b = shapes
        conditions = equal_sizes((a[-1],), (b[-2],), self, "inner sizes of the product")
        batch = broadcast_batch(a[:-2], b[:-2], self)
        out = (*batch, a[-2], b[-1])
        macs = numel(out) * a[-1]
        own, private = [], 0
        for i, (shape, other) in enumerate(((a, b), (b, a))):
            kept = grads[1 - i]  # saved for the other operand's gradient
            copied = _matmul_copy(shape, other, batch, first=i == 0)
            own.append(kept and copied is None)
            private = private + (copied if kept and copied is not None else 0)
        return _product(out, shapes, macs, conditions, bias_ops=numel(out) if self.bias else 0,
                        backward_macs=macs * sum(bool(g) for g in grads), saves_input=tuple(own),
                        saved_elements=private + total(numel(s) for s, kept in zip(shapes, own) if kept),
                        output_grad=any(grads))


#: How the CPU's fused attention kernel is chosen, a fact of the torch release that
#: ``convcost.torch.runtime`` sets for the running torch (``runtime.facts``, "fused attention choice"):
#: ``"2.13"``, 4-D query, key and value of one batch and one head count; ``"2.14"`` (2.14 and 2.15), 3-D ones
#: too (one batch entry of heads), and key and value of one head serving every query head.
FLASH_RULE = "2.13"


def _flash(q, k, v) -> bool:
    """Whether PyTorch runs attention on these shapes with its fused CPU kernel (else the math path)."""
    if not (len(q) == len(k) == len(v) and q[-1] == k[-1] == v[-1]):
        return False
    if FLASH_RULE == "2.13":
        return len(q) == 4 and tuple(q[:2]) == tuple(k[:2]) == tuple(v[:2])
    if len(q) not in (3, 4):
        return False
    q, k, v = ((1,) * (4 - len(s)) + tuple(s) for s in (q, k, v))
    return q[0] == k[0] == v[0] and k[1] == v[1] and (k[1] == q[1] or _is_one(k[1]))


def _is_one(n) -> bool:
    return isinstance(n, int) and n == 1


def _matmul_copy(shape, other, batch, first):
    """Elements of the copy ``torch.matmul`` saves of an operand, or None when it saves the operand itself
    (PyTorch 2.13's ``_matmul_impl``): batched operands are expanded to the full batch and flattened to
    one batch axis, a copy only where the expanded axes cannot be merged as a view; a batch times a
    matrix is computed transposed, flattening the batch with its columns, a copy unless that is a view."""
    if len(shape) >= 3 and len(other) >= 3:
        own = (1,) * (len(batch) - (len(shape) - 2)) + tuple(shape[:-2])
        if own == tuple(batch):
            return None
        stride, strides = shape[-2] * shape[-1], []
        for n in reversed(own):
            strides.append(stride)
            stride = stride * n
        expanded = [(b, 0 if o == 1 else s) for o, b, s in zip(own, batch, reversed(strides)) if b != 1]
        merged = all(expanded[i][1] == expanded[i + 1][1] * expanded[i + 1][0] for i in range(len(expanded) - 1))
        return None if merged else numel(batch) * shape[-2] * shape[-1]
    if len(shape) >= 3 and len(other) == 2 and not first:  # the batch of ``matrix @ batch``, transposed
        k, m = shape[-2], shape[-1]
        return None if k == 1 or m == 1 or numel(shape[:-2]) == 1 else numel(shape)
    return None


@spec
class Attention(Merge):
    """Scaled dot-product attention (``F.scaled_dot_product_attention``) on query ``(..., L, E)``, key
    ``(..., S, E)`` and value ``(..., S, Ev)``: MACs = batch x L x S x (E + Ev); the softmax is one
    ``act_ops`` per score.

    ``kernel`` is the CPU kernel a training step runs: ``"auto"`` chooses as PyTorch does for inputs whose
    last axis has unit stride, ``"math"`` is the math path PyTorch takes when one does not (a query made by
    a transpose that moves its last axis); ``dropout`` (on the attention weights, ``dropout_p > 0``) takes
    the math path too. Only the training counts differ. ``kv_groups`` > 1 is grouped-query attention
    (``enable_gqa=True``): each key and value head serves that many query heads (axis -3); a pair
    ``(key, value)`` where key and value heads differ (PyTorch repeats each to the query's heads).

    >>> shapes = [(2, 4, 16, 8)] * 3
    >>> Attention().cost(shapes).backward_macs, Attention(kernel="math").cost(shapes).backward_macs
    (81920, 65536)
    >>> Attention(kv_groups=2).cost([(2, 4, 16, 8), (2, 2, 16, 8), (2, 2, 16, 8)]).macs
    32768
    >>> Attention(kv_groups=(2, 1)).cost([(2, 4, 16, 8), (2, 2, 16, 8), (2, 4, 16, 8)]).macs
    32768
    """

    kernel: str = choice("auto", ("auto", "math"))
    dropout: bool = flag(False)
    kv_groups: object = size(1, per_axis=True)

    count_free_fields = ("kernel", "dropout")

    def kernel_kind(self) -> str:
        return "linear"

    def fused(self, shapes) -> bool:
        """Whether a training step on the CPU runs the fused flash kernel on ``shapes`` (else the math path).

        >>> Attention().fused([(2, 4, 16, 8)] * 3), Attention().fused([(16, 8)] * 3)
        (True, False)
        """
        key, value = self.groups()
        # (key and value heads that differ take the math path: the fused kernel takes one count of both)
        return self.kernel == "auto" and not self.dropout and key == value and _flash(*self._grouped(shapes)[0])

    def groups(self) -> tuple:
        """How many query heads each key head and each value head serves.

        >>> Attention(kv_groups=2).groups(), Attention(kv_groups=(2, 1)).groups()
        ((2, 2), (2, 1))
        """
        if not isinstance(self.kv_groups, tuple):
            return self.kv_groups, self.kv_groups
        if len(self.kv_groups) != 2:
            raise ConvcostError(f"{self!r}: kv_groups takes one count or a pair (key, value), got {self.kv_groups}")
        return self.kv_groups

    def _grouped(self, shapes):
        """Query, key and value with the key and value heads repeated ``kv_groups`` times (what is computed),
        and the conditions on the heads."""
        q, k, v = shapes
        key, value = self.groups()
        if key == value == 1:
            return (q, k, v), ()
        if len(q) < 3 or len(k) < 3 or len(v) < 3:
            raise ConvcostError(f"{self!r}: grouped heads need query, key and value with a head axis (-3), got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        conditions = equal_sizes((q[-3],), (k[-3] * key,), self, "query heads and key heads x kv_groups")
        conditions += equal_sizes((q[-3],), (v[-3] * value,), self, "query heads and value heads x kv_groups")
        grouped = (q, (*k[:-3], k[-3] * key, *k[-2:]), (*v[:-3], v[-3] * value, *v[-2:]))
        return grouped, conditions

    def _cost(self, shapes, grads=(True, True, True)):
        """A training step on the CPU runs one of two kernels.

        4-D query, key and value of one head size and one batch, each with unit stride on its last axis
        (``kernel="auto"``; from PyTorch 2.14 3-D ones too, and one key and value head for all query heads:
        :data:`FLASH_RULE`): the fused flash kernel, which keeps the
        three inputs, its output and one log-sum-exp per query row; its backward recomputes the scores
        and computes every gradient, L S (3 E + 2 Ev) MACs per batch entry, as ``FlopCounterMode`` counts
        the fused kernels (on the CPU it counts none). Otherwise the math path (scaled query and key,
        their product, softmax, product with the value): it keeps the scaled key for the query's gradient
        and the scaled query for the key's (fresh tensors), the softmax's output for the value's gradient
        or its own (with dropout: the softmax's output and the noise for the scores' gradient, the dropped
        weights for the value's), and the value itself for the scores' gradient; backward MACs: the scores' gradient
        (L S Ev) when the query or key needs one, L S E for each of them, L S Ev for the value."""
        if len(shapes) != 3 or any(len(s) < 2 for s in shapes):
            raise ConvcostError(f"{self!r}: takes query, key and value of rank 2 or more, got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        # grouped heads: computed repeated, kept by the fused kernel as given
        (q, k, v), conditions = self._grouped(shapes)
        conditions += equal_sizes((q[-1],), (k[-1],), self, "query and key features")
        conditions += equal_sizes((k[-2],), (v[-2],), self, "key and value lengths")
        batch = broadcast_batch(broadcast_batch(q[:-2], k[:-2], self), v[:-2], self)
        scores = numel(batch) * q[-2] * k[-2]
        out = (*batch, q[-2], v[-1])
        gq, gk, gv = (bool(g) for g in grads)
        if self.fused(shapes):
            any_grad = gq or gk or gv
            return _product(out, shapes, scores * (q[-1] + v[-1]), conditions, act_ops=scores,
                            backward_macs=scores * (3 * q[-1] + 2 * v[-1]) if any_grad else 0,
                            saves_input=(any_grad,) * 3, saves_output=any_grad, output_grad=any_grad,
                            saved_elements=(total(numel(s) for s in shapes) + numel(out) + numel(batch) * q[-2])
                            if any_grad else 0)
        scored = gq or gk  # the scores need a gradient
        backward = scores * ((v[-1] if scored else 0) + q[-1] * (gq + gk) + (v[-1] if gv else 0))
        # what the products keep is broadcast to the whole batch: a key or value with fewer heads (one, for
        # every query head) is expanded and copied to all of them
        k_kept, q_kept, v_kept = (numel(batch) * s[-2] * s[-1] for s in (k, q, v))
        private = (k_kept if gq else 0) + (q_kept if gk else 0)
        if self.dropout:  # softmax's output and dropout's noise for the scores, the dropped weights for the value
            private = private + (2 * scores if scored else 0) + (scores if gv else 0)
        else:  # softmax's output serves both
            private = private + (scores if scored or gv else 0)
        # the math path repeats grouped key and value heads, each by its own count (1 too), and expands a value
        # of a smaller batch: it keeps the copy
        copied = self.groups() != (1, 1) or tuple(v[:-2]) != tuple(batch)
        return _product(out, shapes, scores * (q[-1] + v[-1]), conditions, act_ops=scores, backward_macs=backward,
                        saves_input=(False, False, scored and not copied),
                        saved_elements=private + (v_kept if scored else 0), output_grad=scored or gv)


@spec
class LinearAttention(Merge):
    """Linear attention, ``phi(Q) (phi(K)^T V)``, on query ``(..., L, E)``, key ``(..., S, E)`` and value
    ``(..., S, Ev)`` sharing their batch axes, with the feature map ``phi(x) = elu(x) + 1`` of Katharopoulos
    et al., "Transformers are RNNs" (ICML 2020), without that paper's normaliser. The key-value product comes
    first, so the cost is linear in the lengths: MACs = batch x E x Ev x (S + L) (``phi(K)^T V`` then
    ``phi(Q)`` times it); ``phi`` is one ``act_ops`` (the elu) and one ``elementwise_ops`` (the added one) per
    element of the query and of the key.

    >>> LinearAttention().cost([(2, 4, 16, 8), (2, 4, 20, 8), (2, 4, 20, 6)]).macs
    13824
    >>> 2 * 4 * 8 * 6 * (20 + 16)
    13824
    """

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes, grads=(True, True, True)):
        """A training step (PyTorch 2.13): ``elu`` keeps its input (the query, the key) for its gradient; the
        product ``phi(K)^T V`` keeps ``phi(K)`` for the value's gradient and the value for the key's, the product
        with ``phi(Q)`` keeps ``phi(Q)`` for the key-value product's gradient and that product (batch x E x Ev)
        for the query's. Backward MACs: batch x E x Ev per row of each gradient product: L for the query's, L
        for the key-value product's (when the key or value needs one), S each for the key's and the value's."""
        if len(shapes) != 3 or any(len(s) < 2 for s in shapes):
            raise ConvcostError(f"{self!r}: takes query, key and value of rank 2 or more, got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        q, k, v = shapes
        if not len(q) == len(k) == len(v):
            raise ConvcostError(f"{self!r}: query, key and value must have the same rank, got "
                                f"{', '.join(fmt(s) for s in shapes)}")
        conditions = equal_sizes(q[:-2], k[:-2], self, "query and key batch axes")
        conditions += equal_sizes(k[:-2], v[:-2], self, "key and value batch axes")
        conditions += equal_sizes((q[-1],), (k[-1],), self, "query and key features")
        conditions += equal_sizes((k[-2],), (v[-2],), self, "key and value lengths")
        batch, length, keys, e, ev = numel(q[:-2]), q[-2], k[-2], q[-1], v[-1]
        gq, gk, gv = (bool(g) for g in grads)
        product = batch * e * ev  # phi(K)^T V, kept for the query's gradient
        backward = product * ((length if gq else 0) + (length if gk or gv else 0) + (keys if gk else 0)
                              + (keys if gv else 0))
        private = (numel(k) if gv else 0) + (numel(q) if gk or gv else 0) + (product if gq else 0)
        kept = (gq, gk, gk)  # the query and key by elu, the value by the key-value product
        return _product((*q[:-1], ev), shapes, product * (keys + length), conditions,
                        act_ops=numel(q) + numel(k), elementwise_ops=numel(q) + numel(k), backward_macs=backward,
                        saves_input=kept, output_grad=gq or gk or gv,
                        saved_elements=private + total(numel(s) for s, f in zip(shapes, kept) if f))


@spec
class GroupedMatMul(Merge):
    """A grouped matrix product (``torch._grouped_mm``, the experts of a mixture-of-experts layer): tokens
    ``(T, K)`` sorted by group, times one ``(K, N)`` matrix per group ``(G, K, N)``, each token by its own
    group's matrix, with ``offs`` ``(G,)`` where each group's tokens end (a third input, of indices); or a
    batch ``(G, M, K)`` times ``(G, K, N)``, entry by entry, without ``offs``.

    MACs = T x K x N (each token once, whichever group it is in), or G x M x K x N.

    >>> GroupedMatMul().cost([(8, 8), (4, 8, 16), (4,)]).macs
    1024
    >>> GroupedMatMul().cost([(4, 3, 8), (4, 8, 16)]).output_shape
    (4, 3, 16)
    """

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes, grads=None):
        """A training step (PyTorch 2.13): each operand's gradient is a grouped product as large as the
        forward (T K N MACs each); autograd keeps each operand for the other's gradient, and ``offs`` for
        either."""
        grads = tuple(grads) if grads is not None else (True,) * len(shapes)
        shapes = [tuple(s) for s in shapes]
        grouped = len(shapes) == 3 and len(shapes[0]) == 2 and len(shapes[1]) == 3 and len(shapes[2]) == 1
        batched = len(shapes) == 2 and len(shapes[0]) == 3 and len(shapes[1]) == 3
        if not grouped and not batched:
            raise ConvcostError(f"{self!r}: multiplies tokens (T, K) by (G, K, N) with offs (G,), or (G, M, K) by "
                                f"(G, K, N), got {', '.join(fmt(s) for s in shapes)}")
        a, b = shapes[:2]
        conditions = equal_sizes((a[-1],), (b[-2],), self, "inner sizes of the product")
        conditions += equal_sizes((shapes[2][0] if grouped else a[0],), (b[0],), self, "groups")
        out = (a[0], b[-1]) if grouped else (a[0], a[1], b[-1])
        macs = numel(out) * a[-1]
        ga, gb = bool(grads[0]), bool(grads[1])
        kept = (gb, ga, ga or gb) if grouped else (gb, ga)
        return _product(out, shapes, macs, conditions, backward_macs=macs * (ga + gb), saves_input=kept,
                        saved_elements=total(numel(s) for s, k in zip(shapes, kept) if k), output_grad=ga or gb)


@spec
class TriangularSolve(Merge):
    """``torch.linalg.solve_triangular(A, B)``: ``X`` with ``A X = B`` (``left``; else ``X A = B``), ``A``
    ``(..., n, n)`` triangular, ``B`` ``(..., n, k)`` (``(..., k, n)`` when not ``left``), batch axes broadcast.

    MACs = batch x k x n (n + 1) / 2: each entry of the triangle is used once per right-hand column (forward
    substitution; the diagonal's as a multiplication by its reciprocal), n (n - 1) / 2 when ``unitriangular``
    (a diagonal of ones, never read). FlopCounterMode (torch 2.13) counts a triangular solve as nothing.

    >>> TriangularSolve().cost([(3, 5, 5), (3, 5, 2)]).macs
    90
    >>> TriangularSolve(unitriangular=True).cost([(5, 5), (5, 2)]).macs
    20
    """

    left: bool = flag(True)
    unitriangular: bool = flag(False)

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes, grads=(True, True)):
        """A training step (PyTorch 2.13): the right-hand side's gradient is a solve with ``A``'s transpose (the
        forward's MACs), needed for ``A``'s too, which is the product of that gradient and ``X``'s transpose
        (batch x n x k x n MACs); autograd keeps ``A`` and the output ``X``."""
        if len(shapes) != 2 or len(shapes[0]) < 2 or len(shapes[1]) < 2:
            raise ConvcostError(f"{self!r}: solves with a matrix (..., n, n) and a right-hand side of rank 2 or "
                                f"more, got {', '.join(fmt(s) for s in shapes)}")
        a, b = shapes
        n = a[-1]
        conditions = equal_sizes((a[-2],), (n,), self, "a square matrix")
        conditions += equal_sizes((b[-2] if self.left else b[-1],), (n,), self, "the right-hand side's rows")
        batch = broadcast_batch(a[:-2], b[:-2], self)
        out = (*batch, *b[-2:])
        triangle = n * (n - 1) // 2 if self.unitriangular else n * (n + 1) // 2
        macs = numel(out) // n * triangle
        ga, gb = bool(grads[0]), bool(grads[1])
        backward = (macs if ga or gb else 0) + (numel(out) * n if ga else 0)
        return _product(out, shapes, macs, conditions, backward_macs=backward, saves_input=(ga or gb, False),
                        saves_output=ga or gb, saved_elements=numel(a) + numel(out) if ga or gb else 0,
                        output_grad=ga or gb)
