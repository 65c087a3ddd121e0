"""Multi-head attention as ``nn.MultiheadAttention`` runs it (``F.multi_head_attention_forward``).

The inputs are the *distinct* tensors the module is called with, which is what decides how PyTorch
projects them: one tensor (``attn(x, x, x)``, self-attention) is projected by one product with the packed
``3E x E`` weight, two (``attn(q, kv, kv)``) by a query product and a packed key-value one, three by three
products. The forward counts are the same either way; a training step's are not (the packed projections are
copied into one contiguous tensor that the attention reads as views).

>>> self_attention = MultiheadAttention(E=8, H=2)
>>> self_attention.cost([(5, 2, 8)]).macs == self_attention.cost([(5, 2, 8)] * 3).macs == 3360
True
>>> self_attention.cost([(5, 2, 8)]).saved_elements, self_attention.cost([(5, 2, 8)] * 3).saved_elements
(580, 660)

Called as ``attn(x, x, x)`` it keeps ``x`` (80 elements), the packed projection (240, read as the keys and the
values), the scaled query (80), the softmax (2 x 2 heads x 5 x 5 = 100) and the heads' output copied for the
output projection (80); called on three tensors, each of them (240) and the key and value projections apart
(160) instead of ``x`` and the packed projection.
"""

from __future__ import annotations

from convcost.arith import div, total
from convcost.errors import ConvcostError
from convcost.layers import Merge
from convcost.primitives.activation import Activation
from convcost.primitives.base import fmt
from convcost.primitives.linear import Linear
from convcost.primitives.matmul import Attention, MatMul, _product
from convcost.shapes import equal_sizes, numel
from convcost.spec import flag, size, spec
from convcost.storages import saved_storages

#: which input each of query, key and value is, by how many distinct tensors the module is called with
ROLES = {1: (0, 0, 0), 2: (0, 1, 1), 3: (0, 1, 2)}


@spec
class MultiheadAttention(Merge):
    """``nn.MultiheadAttention(E, H, bias, add_bias_kv, add_zero_attn, kdim, vdim, dropout)`` on query
    ``(L, N, E)``, key ``(S, N, kdim)`` and value ``(S, N, vdim)`` (or unbatched, without N), given as the
    distinct tensors it is called with: ``[x]`` for ``attn(x, x, x)``, ``[q, kv]`` for ``attn(q, kv, kv)``,
    ``[q, k, v]``. It counts the input projections, the two products of attention over ``S + extra`` keys
    (``add_bias_kv`` and ``add_zero_attn`` each add one) and the output projection:
    MACs = N (L E^2 + S kdim E + S vdim E) + 2 N L (S + extra) E + N L E^2.

    ``need_weights`` (the call's, True by default as in PyTorch) computes the attention weights explicitly
    so they can be returned; without it PyTorch calls ``F.scaled_dot_product_attention``. ``dropout`` is
    dropout on the attention weights (``dropout > 0``). Neither changes a forward count, only a training
    step's.

    >>> MultiheadAttention(E=8, H=2).cost([(5, 2, 8), (5, 2, 8), (5, 2, 8)]).macs
    3360
    >>> MultiheadAttention(E=8, H=2, add_bias_kv=True).cost([(5, 2, 8)]).params   # bias_k, bias_v: 2 E more
    304
    """

    has_parameters = True

    E: object = size()
    H: object = size(1)
    kdim: object = size(None)
    vdim: object = size(None)
    bias: bool = flag(True)
    add_bias_kv: bool = flag(False)
    add_zero_attn: bool = flag(False)
    need_weights: bool = flag(True)
    dropout: bool = flag(False)

    min_inputs = 1
    count_free_fields = ("need_weights", "dropout")

    def __post_init__(self):
        for name in ("kdim", "vdim"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.E)
        super().__post_init__()

    def kernel_kind(self) -> str:
        return "linear"

    def packed(self) -> bool:
        """Whether the query, key and value projections are one packed ``3E x E`` weight (``kdim`` and ``vdim``
        equal to ``E``), as PyTorch keeps them; else three separate weights."""
        return self.kdim == self.E and self.vdim == self.E

    def _roles(self, shapes) -> tuple:
        if len(shapes) not in ROLES or len({len(s) for s in shapes}) != 1 or len(shapes[0]) not in (2, 3):
            raise ConvcostError(f"{self!r}: takes the distinct tensors it is called with ([x], [query, key_value] or "
                                f"[query, key, value]), each of rank 2 or 3, got {', '.join(fmt(s) for s in shapes)}")
        return tuple(shapes[i] for i in ROLES[len(shapes)])

    def _cost(self, shapes, grads=None, trainable=True):
        """A training step on the CPU (PyTorch 2.13), as ``F.multi_head_attention_forward`` runs it: the input
        projections (``nn.Linear``'s counts; a tensor read by two of them kept once), the packed projections
        copied into one tensor that the attention reads as views, the extra keys concatenated (fresh key and
        value tensors), then with ``need_weights`` the scaled query (fresh), its product with the keys, softmax,
        dropout and the product with the values (``MatMul``'s counts), else ``Attention``'s counts on the heads
        ``(N, H, L, E/H)``; the heads' output read back as ``(L N, E)`` (a copy after the explicit products, a
        view of what the fused kernel keeps) and projected. Each storage counts once. The forward's MACs,
        parameters, bias additions and softmax are these parts' own."""
        grads = (True,) * len(shapes) if grads is None else tuple(grads)
        q, k, v = self._roles(shapes)
        n = q[1] if len(q) == 3 else 1
        if len(shapes) == 1 and not self.packed():
            raise ConvcostError(f"{self!r}: one tensor as query, key and value needs kdim == vdim == E")
        conditions = equal_sizes((q[-1], k[-1], v[-1]), (self.E, self.kdim, self.vdim), self,
                                 "features of query, key and value against (E, kdim, vdim)")
        conditions += equal_sizes(k[:-1], v[:-1], self, "key and value lengths and batch")
        attended = k[0] + int(self.add_bias_kv) + int(self.add_zero_attn)
        counts = self._step(shapes, (q, k, v), grads, trainable, n, attended)
        return _product(q, shapes, counts.pop("macs"), conditions, **counts)

    def _step(self, shapes, qkv, grads, trainable, n, attended) -> dict:
        """The step's parts as rows of their own costs: the forward's counts and the training step's."""
        q, k, v = qkv
        e, heads, roles = self.E, self.H, ROLES[len(shapes)]
        needs = tuple(grads[i] or trainable for i in roles)  # the query's, key's and value's projections
        rows, storages = [], {f"x{i}": numel(s) for i, s in enumerate(shapes)}

        def linear(i, shape, features, key):
            c = Linear(C=shape[-1], O=features, bias=self.bias).cost(shape, input_grad=grads[i], trainable=trainable)
            rows.append((c, [(f"x{i}", shape)], key))
            storages[key] = numel(c.output_shape)

        # unbatched inputs are each unsqueezed first: distinct tensors then, projected one by one
        batched = len(q) == 3
        if self.packed() and batched and len(shapes) == 1:  # one product with the packed weight, copied contiguous
            linear(0, q, 3 * e, "projected")
            storages["packed"] = 3 * numel(q)
            places = ("packed",) * 3
        elif self.packed() and batched and len(shapes) == 2:  # the query's product; the key and value's, copied
            linear(0, q, e, "query")
            linear(1, k, 2 * e, "projected key and value")
            storages["packed key and value"] = 2 * numel(k)
            places = ("query", "packed key and value", "packed key and value")
        else:
            for role, (i, shape) in enumerate(zip(roles, qkv)):
                linear(i, shape, e, ("query", "key", "value")[role])
            places = ("query", "key", "value")
        if attended != k[0]:  # extra keys and values concatenated: fresh tensors
            storages["key"] = storages["value"] = n * attended * e
            places = (places[0], "key", "value")
        if self.need_weights:
            private = self._weights(rows, storages, places, needs, n, q[0], attended)
        else:
            private, head = 0, div(e, heads)
            operands = [(n, heads, q[0], head), (n, heads, attended, head), (n, heads, attended, head)]
            att = Attention(dropout=self.dropout).cost(operands, input_grads=needs)
            rows.append((att, list(zip(places, operands)), "heads"))
            storages["heads"] = n * q[0] * e
        # the heads' output read as (L N, E): the fused kernel writes it laid out like the query, (L, N, H, E/H), so
        # that is a view of what the kernel keeps; the explicit products' output is copied (kept by no one else)
        out = Linear(C=e, O=e, bias=self.bias).cost((q[0] * n, e), input_grad=any(needs), trainable=trainable)
        rows.append((out, [("heads", (q[0] * n, e))], "out"))
        private_rows, kept = saved_storages(rows)
        # the forward's counts are its parts' (bias_k and bias_v: 2 E parameters more)
        forward = {m: total(getattr(c, m) for c, _, _ in rows) for m in ("macs", "params", "bias_ops", "act_ops")}
        forward["params"] = forward["params"] + (2 * e if self.add_bias_kv else 0)
        return dict(forward, backward_macs=total(c.backward_macs for c, _, _ in rows),
                    saved_elements=private_rows + total(storages[key] for key in kept) + private,
                    output_grad=any(needs), saves_input=tuple(f"x{i}" in kept for i in range(len(shapes))))

    def _weights(self, rows, storages, places, needs, n, length, attended):
        """The explicit attention weights (``need_weights``): returns the private elements dropout keeps."""
        e, heads = self.E, self.H
        head, batch = div(e, heads), n * heads
        scored = needs[0] or needs[1]
        storages["scaled query"] = n * length * e  # a product by a Python number keeps nothing
        first = MatMul().cost([(batch, length, head), (batch, head, attended)], input_grads=needs[:2])
        rows.append((first, [("scaled query", (batch, length, head)), (places[1], (batch, head, attended))], "scores"))
        scores = (batch, length, attended)
        softmax = Activation(kind="softmax").cost(scores, input_grad=scored)
        rows.append((softmax, [("scores", scores)], "weights"))
        storages["weights"] = storages["dropped"] = numel(scores)
        private = numel(scores) if self.dropout and scored else 0  # the noise, kept for the scores' gradient
        second = MatMul().cost([scores, (batch, attended, head)], input_grads=(scored, needs[2]))
        rows.append((second, [("dropped" if self.dropout else "weights", scores), (places[2], (batch, attended, head))],
                     "heads"))
        storages["heads"] = n * length * e
        return private
