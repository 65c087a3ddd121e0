"""Will it fit? The largest batch of a PyTorch model whose training step fits in a memory budget.

A step's memory (:class:`convcost.training.StepTotals`) is the parameters, their gradients and the
optimizer's state, which do not depend on the batch, plus the activations autograd keeps, which grow
with it. :func:`max_batch` reads the step at batch 1 and 2 (on shapes alone, so a batch of thousands
costs what a batch of one does), takes the line through them as the first guess, and then proves the
answer by reading the step at N and at N + 1: ``memory(N) <= budget < memory(N + 1)``. Where the line
is not exact (a model whose saved tensors do not grow linearly with the batch), it bisects on readings.

>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
...                     nn.Flatten(), nn.Linear(16, 10))
>>> n = max_batch(net, (1, 3, 32, 32), memory="64MiB", optimizer="adam")
>>> n, step_memory(net, (n, 3, 32, 32), "adam") <= 64 * 2**20 < step_memory(net, (n + 1, 3, 32, 32), "adam")
(467, True)
"""

from __future__ import annotations

import sympy

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.training import max_batch as solved_max_batch
from convcost.training import parse_memory
from convcost.validate import kind_of
from convcost.zoo.model import ZooModel


def step_memory(model, input_shape, optimizer: str = "adam", dtype: str | None = None) -> int:
    """Bytes of one training step of ``model`` on an input of ``input_shape`` (a shape, or a list of them), as
    :meth:`convcost.training.StepTotals.memory` gives them."""
    from convcost.torch.profiling import profile

    report = profile(model, input_shape, training=True)
    return report.training.memory(optimizer, dtype)


def max_batch(model, input_shape, memory="80GiB", optimizer: str = "adam", dtype: str | None = None, *,
              precision=None) -> int:
    """The largest batch size N whose training step fits in ``memory`` (bytes, or text such as ``"24GiB"``).

    ``input_shape`` is one input's shape, or a list of shapes (one per input), each with the batch as its
    first size (its value does not matter). 0 when not even a batch of one fits. Anything else
    :func:`convcost.max_batch` takes (a layer, a zoo model, a cost in N) is solved by it, with the same arguments.

    A PyTorch model's step is read as it runs where this is called: under ``torch.autocast`` its saved tensors
    in their own dtypes, its parameters and optimizer state in theirs (``dtype`` None, the default:
    :meth:`convcost.training.StepTotals.memory`); a ``dtype`` name prices every element in that dtype.
    ``precision`` (a recipe of :mod:`convcost.precision`) is for what is solved in closed form.
    """
    if isinstance(model, (Layer, Cost, ZooModel, sympy.Expr)):  # what convcost.max_batch solves in closed form
        return solved_max_batch(model, input_shape, memory, optimizer, dtype or "float32", precision=precision)
    if precision is not None:
        raise ConvcostError(f"max_batch: precision={precision!r} prices a convcost layer; a PyTorch model's step is "
                            "read in the precision it runs in: call max_batch under torch.autocast, or on the model "
                            "cast with model.to(torch.bfloat16)")
    budget = parse_memory(memory)
    shapes = _shapes(input_shape)

    readings = {}

    def at(n):
        if n not in readings:
            batch = [(n, *s[1:]) for s in shapes]
            readings[n] = step_memory(model, batch[0] if len(batch) == 1 else batch, optimizer, dtype)
        return readings[n]

    one, two = at(1), at(2)
    if one > budget:
        return 0
    slope = two - one
    if slope <= 0:
        raise ConvcostError(f"max_batch: the step's memory does not grow with the batch ({one} bytes at 1, {two} at "
                            "2), so no largest batch exists")
    low, high = (2, None) if two <= budget else (1, 2)  # memory(low) <= budget; memory(high) > budget
    guess = max(low + 1, (budget - (one - slope)) // slope)
    while high is None:  # the line's answer, and past it until a reading is over the budget
        if at(guess) > budget:
            high = guess
        else:
            below = max(n for n in readings if n < guess)
            low, guess = guess, max(guess + 1, _on_the_line(readings, budget, below, guess, 2 * guess))
    tries = 0
    while high - low > 1:
        if tries < 1:
            # between two readings memory is all but a line (attention's views at a batch of one bend it): the
            # line's answer and its neighbour settle it in one or two readings; else bisection bounds the rest
            guess = min(max(_on_the_line(readings, budget, low, high, low + 1), low + 1), high - 1)
            tries += 1
            for n in (guess, guess + 1) if at(guess) <= budget else (guess, guess - 1):
                if low < n < high:
                    low, high = (n, high) if at(n) <= budget else (low, n)
        else:  # far from a line: bisect on readings (memory grows with the batch)
            mid = (low + high) // 2
            low, high = (mid, high) if at(mid) <= budget else (low, mid)
    return low


def _on_the_line(readings, budget, a, b, fallback) -> int:
    """The batch where the line through the readings at batches ``a < b`` reaches ``budget``; ``fallback``
    where they do not rise."""
    rise = readings[b] - readings[a]
    if rise <= 0:
        return fallback
    return a + (budget - readings[a]) * (b - a) // rise


def _shapes(input_shape) -> list:
    if kind_of(input_shape) == "sequence" and input_shape and all(kind_of(s) == "sequence" for s in input_shape):
        shapes = [tuple(s) for s in input_shape]
    elif kind_of(input_shape) == "sequence":
        shapes = [tuple(input_shape)]
    else:
        raise ConvcostError(f"max_batch: input_shape={input_shape!r} must be a shape such as (1, 3, 224, 224), "
                            "or a list of them")
    for s in shapes:
        if not s or not all(type(x) is int and x > 0 for x in s):
            raise ConvcostError(f"max_batch: the input shape {s!r} must be positive integer sizes, the batch first")
    return shapes
