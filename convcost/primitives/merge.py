"""Operations that combine several inputs: add, multiply, concatenate.

>>> Add().cost([(1, 8, 4, 4), (1, 8, 4, 4)]).elementwise_ops
128
>>> Concat().cost([(1, 8, 4, 4), (1, 4, 4, 4)]).output_shape
(1, 12, 4, 4)
"""

from __future__ import annotations

from convcost.arith import total
from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Merge
from convcost.primitives.base import fmt
from convcost.shapes import equal_sizes, numel
from convcost.spec import spec


def _combined(out, shapes, conditions, ops, grads, saved_operands=None, saved=0) -> Cost:
    return Cost(
        output_shape=out,
        elementwise_ops=ops,
        activation_elements=numel(out),
        memory_access=total(numel(s) for s in shapes) + numel(out),
        conditions=conditions,
        saved_elements=saved,
        saves_input=saved_operands or (False,) * len(shapes),
        output_grad=any(grads),
    )


@spec
class Add(Merge):
    """Element-wise sum of equal-shaped inputs: one ``elementwise_ops`` per element per extra input."""

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its inputs' dtype, promoted

    def kernel_kind(self) -> str:
        return "elementwise"

    def _cost(self, shapes, grads):
        conditions = ()
        for other in shapes[1:]:
            conditions += equal_sizes(shapes[0], other, self, "added tensors")
        out = shapes[0]
        return _combined(out, shapes, conditions, numel(out) * (len(shapes) - 1), grads)


@spec
class Mul(Merge):
    """Element-wise product with broadcasting (SE's channel scaling): one op per output element per extra input."""

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its inputs' dtype, promoted

    def kernel_kind(self) -> str:
        return "elementwise"

    def _cost(self, shapes, grads):
        out, conditions = list(shapes[0]), ()
        for other in shapes[1:]:
            if len(other) != len(out):
                raise ConvcostError(f"{self!r}: cannot broadcast shapes {fmt(shapes[0])} and {fmt(other)}")
            for i, (a, b) in enumerate(zip(out, other)):
                if a == 1:
                    out[i] = b
                elif b != 1:
                    conditions += equal_sizes((a,), (b,), self, "multiplied tensors")
        out = tuple(out)
        operands, saved = _saved_products(shapes, grads)
        return _combined(out, shapes, conditions, numel(out) * (len(shapes) - 1), grads, operands, saved)


@spec
class Concat(Merge):
    """Concatenation along an axis (``torch.cat``, channels by default): data movement only."""

    dim: int = 1

    def autocast_rule(self) -> str:
        return "promote"  # cat: its inputs are cast to the widest dtype among them

    @property
    def empty_axis(self):
        """A part may be empty along the concatenated axis (a rotary embedding over the whole head passes an
        empty rest through); the output may not.

        >>> Concat(dim=-1).cost([(2, 4, 8), (2, 4, 0)]).output_shape
        (2, 4, 8)
        """
        return self.dim if type(self.dim) is int else None

    def kernel_kind(self) -> str:
        return "data_movement"

    def _cost(self, shapes, grads):
        if type(self.dim) is not int or not -len(shapes[0]) <= self.dim < len(shapes[0]):
            raise ConvcostError(f"{self!r}: dim={self.dim!r} is not an axis of a {len(shapes[0])}-D input")
        axis = self.dim % len(shapes[0])
        conditions = ()
        for other in shapes[1:]:
            a = shapes[0][:axis] + shapes[0][axis + 1 :]
            b = other[:axis] + other[axis + 1 :] if len(other) == len(shapes[0]) else other
            conditions += equal_sizes(a, b, self, f"tensors concatenated along axis {axis}")
        out = (*shapes[0][:axis], total(s[axis] for s in shapes), *shapes[0][axis + 1 :])
        if out[axis] == 0:
            raise ConvcostError(f"{self!r}: every input is empty along axis {axis}; the output would hold nothing")
        return _combined(out, shapes, conditions, 0, grads)


def _saved_products(shapes, grads) -> tuple:
    """What ``((a * b) * c) * ...`` saves: each factor of a product when the other factor needs a gradient.

    Returns which operands are saved and the saved elements (operands and the intermediate products).
    """
    operands = [False] * len(shapes)
    operands[0] = len(shapes) > 1 and grads[1]
    saved = numel(shapes[0]) if operands[0] else 0
    left_shape, left_grad = shapes[0], grads[0]
    for i in range(1, len(shapes)):
        operands[i] = left_grad
        saved = saved + (numel(shapes[i]) if left_grad else 0)
        if i > 1 and grads[i]:  # the running product (a fresh tensor) is saved for this factor's gradient
            saved = saved + numel(left_shape)
        left_shape = tuple(b if a == 1 else a for a, b in zip(left_shape, shapes[i]))
        left_grad = left_grad or grads[i]
    return tuple(operands), saved
