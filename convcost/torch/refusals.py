"""What PyTorch refuses in an element-wise call that a reading on shapes would otherwise count: an integer or boolean
operand an activation or a division does not take, an in-place write whose result does not fit its dtype or its
shape.

A rule reads shapes, and its dtype rules follow type promotion, so ``torch.softmax`` of token ids, ``ids *= 0.5`` or
``x[:, :1] += x`` would get rows where PyTorch raises. Where a reading has no values to run the call on (a tensor made
from a stand-in), :func:`check` asks PyTorch itself: the call on a one-element tensor of each operand's dtype and
rank, which PyTorch accepts or refuses as it does the whole tensors, and whose result has the dtype theirs would
have. The shape of an in-place write is checked against the broadcast shape, in PyTorch's words.

>>> import torch
>>> from convcost.torch.events import Event
>>> from convcost.torch.rules import Tensor
>>> ids = Tensor((2, 4), dtype=torch.int64)
>>> check(Event("function", torch.sigmoid, (ids,), {}, ""), [ids])
torch.float32
>>> check(Event("function", torch.softmax, (ids, -1), {}, ""), [ids, -1])
Traceback (most recent call last):
...
convcost.torch.rules.Refused: PyTorch rejects torch.softmax of an int64 tensor: "softmax_lastdim_kernel_impl" not ...
>>> y, x = Tensor((2, 1)), Tensor((2, 4))
>>> check(Event("method", "add_", (y, x), {}, ""), [y, x], in_place=True)
Traceback (most recent call last):
...
convcost.torch.rules.Refused: PyTorch rejects Tensor.add_: output with shape [2, 1] doesn't match the broadcast ...
"""

from __future__ import annotations

import torch

from convcost.torch.rules import Refused, Tensor, broadcast, dtype_of, first_line, integral


def check(event, flat, in_place: bool = False, probe: bool = True):
    """Refuse ``event`` (an element-wise call; ``flat``: its arguments, flat) as PyTorch would, else return the dtype
    PyTorch gives its result where an operand is an integer or boolean tensor (None where none is, or where not
    ``probe``: the rule's dtype stands); most element-wise calls have neither and pass at the cost of one loop.
    ``in_place``: it writes into its first operand, whose shape must be the broadcast one. ``probe``: ask PyTorch
    about the dtypes (False where the reading runs the call on its values anyway, which raises PyTorch's error)."""
    tensors = [a for a in flat if type(a) is Tensor]
    if in_place and tensors and tensors[0] is event.args[0]:
        out = broadcast([t.shape for t in tensors])
        if tuple(tensors[0].shape) != out:
            raise Refused(f"PyTorch rejects {event.label}: output with shape {list(tensors[0].shape)} doesn't match "
                          f"the broadcast shape {list(out)}")
    if not probe:
        return None
    dtypes = [dtype_of(t) for t in tensors]
    if not any(integral(d) for d in dtypes):
        return None
    try:
        out = event.function(*_small(event.args), **_small(event.kwargs))
    except Exception as exc:  # noqa: BLE001 - PyTorch's refusal, quoted
        refused = str(next(d for d in dtypes if integral(d))).removeprefix("torch.")
        article = "an" if refused[0] in "aeiou" else "a"
        raise Refused(f"PyTorch rejects {event.label} of {article} {refused} tensor: "
                      f"{first_line(exc)}") from None
    return out.dtype if isinstance(out, torch.Tensor) else None


def _small(value):
    """``value`` with each :class:`Tensor` a one-element tensor of its dtype and rank (ones: no division by zero)."""
    if isinstance(value, Tensor):
        return torch.ones((1,) * len(value.shape), dtype=dtype_of(value))
    if type(value) in (tuple, list):
        return type(value)(_small(v) for v in value)
    if type(value) is dict:
        return {k: _small(v) for k, v in value.items()}
    return value
