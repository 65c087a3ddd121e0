"""``torch.einsum`` of two or more operands: its MACs, additions and products, and a training step.

>>> Einsum(equation="bij,bjk->bik").cost([(2, 3, 4), (2, 4, 5)]).macs
120
>>> step = Einsum(equation="bhqd,bhkd->bhqk").cost([(2, 4, 16, 8), (2, 4, 20, 8)], input_grads=(True, False))
>>> step.backward_macs, step.saved_elements, step.saves_input     # the key, kept for the query's gradient
(20480, 1280, (False, True))
"""

from __future__ import annotations

import dataclasses

from convcost.arith import total
from convcost.errors import ConvcostError
from convcost.layers import Merge
from convcost.primitives.einsum_plan import _is_one, parse, plan
from convcost.primitives.matmul import _product
from convcost.shapes import numel
from convcost.spec import spec


@spec
class Einsum(Merge):
    """``torch.einsum(equation, *operands)`` of two or more operands, contracted left to right as PyTorch
    does (without opt_einsum): each pairwise product is a batched matrix product over the indices the
    pair still holds, after indices used by one operand only are summed out (additions, ``elementwise_ops``).
    A pair that shares no summed index is an element-wise product (no MACs, as ``FlopCounterMode`` counts it);
    an index of size 1 is no summed index (PyTorch squeezes it first).

    >>> Einsum(equation="bxd,byd->bxy").cost([(2, 3, 1), (2, 4, 1)]).macs   # an outer product: no MACs
    0
    """

    equation: str = dataclasses.field(default="ij,jk->ik")

    def validate(self):
        if not isinstance(self.equation, str) or "->" not in self.equation:
            raise ConvcostError(f"{self!r}: give an explicit equation 'inputs->output'")

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shapes, grads=None):
        """A training step (PyTorch 2.13 on the CPU, contiguous operands), as :func:`~convcost.primitives.
        einsum_plan.plan` replays it: each pairwise ``bmm`` keeps each side, as the operand's storage when
        its reshape is a view and as a copy when not, for the other side's gradient; an element-wise pair
        keeps its two factors the same way; sums and views keep nothing. Backward MACs: one product of a
        ``bmm``'s size for each of its sides that needs a gradient."""
        grads = (True,) * len(shapes) if grads is None else tuple(grads)
        out, macs, adds, muls = self._contract(shapes)
        steps = plan(self.equation, shapes, grads, self)
        kept = tuple(f"operand {i}" in steps.kept for i in range(len(shapes)))
        return _product(out, shapes, macs, elementwise_ops=adds + muls, backward_macs=steps.backward_macs,
                        saved_elements=total(steps.kept.values()), saves_input=kept, output_grad=any(grads))

    def backward_macs(self, shapes, grads) -> object:
        """The MACs of the backward pass when the operands flagged in ``grads`` need a gradient: each pairwise
        product is a batched matrix product, whose backward computes one product of its size for each of its
        two sides that needs a gradient (the running result needs one when an operand before it does).

        >>> Einsum("bij,bjk->bik").backward_macs([(2, 3, 4), (2, 4, 5)], (True, False))
        120
        >>> Einsum("ij,jk,kl->il").backward_macs([(2, 3), (3, 4), (4, 5)], (False, True, False))
        64
        """
        if len(grads) != len(shapes):
            raise ConvcostError(f"{self!r}: {len(grads)} gradient flags for {len(shapes)} operands")
        return plan(self.equation, shapes, grads, self).backward_macs

    def _contract(self, shapes):
        """``(output shape, macs, additions, multiplications)``."""
        labels, output, _, _ = parse(self.equation, shapes, self)
        # one character per index (an ellipsis's axes too), so that index sets are strings
        code = {x: chr(0x100 + i) for i, x in enumerate(dict.fromkeys([*output, *(x for ls in labels for x in ls)]))}
        # an axis of size 1 is squeezed out (or its index summed out of the other side) before any product:
        # an index of size 1 is never contracted, and a pair left with none is element-wise (LED's windowed
        # mask: "bcxd,bcyd->bcxy" with d = 1 is a broadcast product, no matrix product)
        operands = ["".join(code[x] for x, n in zip(ls, shape) if not _is_one(n)) for ls, shape in zip(labels, shapes)]
        output = "".join(code[x] for x in output)
        sizes = dict.fromkeys(output, 1)  # an output index of size 1 everywhere, squeezed from every operand
        for ls, shape in zip(labels, shapes):
            for label, n in zip(ls, shape):
                if sizes.get(code[label], 1) == 1:
                    sizes[code[label]] = n
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
        return tuple(sizes[x] for x in output), macs, adds, muls


def _sum_out(labels, needed, sizes):
    """``labels`` without the ones not ``needed``, and the additions that summing them out costs."""
    kept = "".join(x for x in labels if x in needed)
    if len(kept) == len(labels):
        return labels, 0
    return kept, numel([sizes[x] for x in labels])
