"""Storages, each counted once: what autograd keeps when several operations save the same tensor, or views of it.

A layer's cost counts what it saves as if each operand and its output were a fresh tensor
(``saved_elements``, with ``saves_input`` and ``saves_output`` saying which it keeps). A graph of layers keeps
a storage once however many of its rows save it or views of it, and keeps all of a storage when a row saves
a view of part of it: :func:`distinct_saved` adds a graph up that way. The profile's training reading and
composite primitives (``MultiheadAttention``: projections packed in one tensor, read by the attention as views)
both count with it.
"""

from __future__ import annotations

from convcost.arith import total
from convcost.errors import ConvcostError
from convcost.shapes import numel


def distinct_saved(rows, storage_elements: dict):
    """Saved elements of a traced graph of layers, each storage once: the profile's total.

    ``rows`` holds ``(cost, inputs, output_storage)``: a layer's cost (its own ``saved_elements`` counts its
    inputs and output as fresh tensors), ``inputs`` as ``(storage key, shape)`` per operand, and the key of
    its output's storage (the input's key when ``cost.output_view``). A row's private saves (batch norm's
    statistics, pooling indices, products inside a merge) count as they are; every storage some row saves
    counts once, with ``storage_elements[key]`` elements.

    >>> from convcost.primitives import Activation, Conv
    >>> relu = Activation("relu").cost((1, 8, 4, 4))
    >>> conv = Conv(C=8, O=8, K=1).cost((1, 8, 4, 4))
    >>> rows = [(relu, [("x", (1, 8, 4, 4))], "r"), (conv, [("r", (1, 8, 4, 4))], "y")]
    >>> relu.saved_elements + conv.saved_elements, distinct_saved(rows, {"x": 128, "r": 128, "y": 128})
    (256, 128)
    """

    private, saved = saved_storages(rows)
    return private + total(storage_elements[k] for k in saved)


def saved_storages(rows) -> tuple:
    """``(private, keys)``: the elements ``rows`` (as :func:`distinct_saved` takes them) save apart from
    their operands and outputs, and the keys of the storages they save.

    >>> from convcost.primitives import Activation
    >>> relu = Activation("relu").cost((2, 3))                   # keeps its output, not its input
    >>> saved_storages([(relu, [("x", (2, 3))], "r")])
    (0, {'r'})
    """
    private, saved = 0, set()
    for c, inputs, output in rows:
        flags = c.saves_input if isinstance(c.saves_input, tuple) else (c.saves_input,) + (False,) * (len(inputs) - 1)
        own = c.saved_elements
        for (key, shape), flag in zip(inputs, flags):
            if flag is True:
                saved.add(key)
                own = own - numel(shape)
            elif flag is not False:
                raise ConvcostError(f"distinct_saved: whether {c.spec!r} saves its input is undecided ({flag}); "
                                    "bind it")
        if c.saves_output is True:
            saved.add(output)
            own = own - (0 if c.output_view else numel(c.output_shape))
        elif c.saves_output is not False:
            raise ConvcostError(f"distinct_saved: whether {c.spec!r} saves its output is undecided; bind it")
        private = private + own
    return private, saved
