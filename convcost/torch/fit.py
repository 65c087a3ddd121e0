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

from convcost.errors import ConvcostError
from convcost.training import parse_memory
from convcost.validate import kind_of


def step_memory(model, input_shape, optimizer: str = "adam", dtype: str = "float32") -> int:
    """Bytes of one training step of ``model`` on an input of ``input_shape`` (a shape, or a list of them)."""
    from convcost.torch.profile import profile

    report = profile(model, input_shape, training=True)
    return report.training.memory(optimizer, dtype)


def max_batch(model, input_shape, memory="80GiB", optimizer: str = "adam", dtype: str = "float32") -> int:
    """The largest batch size N whose training step fits in ``memory`` (bytes, or text such as ``"24GiB"``).

    ``input_shape`` is one input's shape, or a list of shapes (one per input), each with the batch as its
    first size (its value does not matter). 0 when not even a batch of one fits.
    """
    budget = parse_memory(memory)
    shapes = _shapes(input_shape)

    def at(n):
        batch = [(n, *s[1:]) for s in shapes]
        return step_memory(model, batch[0] if len(batch) == 1 else batch, optimizer, dtype)

    one, two = at(1), at(2)
    if one > budget:
        return 0
    slope = two - one
    if slope <= 0:
        raise ConvcostError(f"max_batch: the step's memory does not grow with the batch ({one} bytes at 1, {two} at "
                            "2), so no largest batch exists")
    guess = max(1, (budget - (one - slope)) // slope)
    low, high = 1, None  # memory(low) <= budget; memory(high) > budget
    if at(guess) <= budget:
        low = guess
        if at(guess + 1) > budget:
            return guess
        high = 2 * guess + 2
        while at(high) <= budget:  # the line was short: double until over
            low, high = high, 2 * high
    else:
        high = guess
    while high - low > 1:  # bisect on readings (memory grows with the batch)
        mid = (low + high) // 2
        low, high = (mid, high) if at(mid) <= budget else (low, mid)
    return low


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
