"""A custom ``torch.autograd.Function`` in a training step: its forward, what it saves, its own backward.

PyTorch runs a custom Function's ``forward`` with grad disabled: its calls are the step's forward work and keep
nothing for autograd; what the backward has is what ``ctx.save_for_backward`` was given (autograd's saved-tensor
hooks see exactly those), and its backward is the user's ``backward``, run once when the loss reaches the
Function's output. A reading runs the forward itself, with a :class:`Context` standing in for torch's, and
:func:`backward_cost` reads the user's backward as a forward of its own, on meta tensors, call by call: its MACs
are the step's backward MACs for the Function, or the Function is listed, with why, where the backward cannot be
read (it reads values, calls an extension kernel, or makes a call convcost cannot count).

>>> import torch
>>> class Square(torch.autograd.Function):
...     @staticmethod
...     def forward(ctx, x, w):
...         ctx.save_for_backward(x, w)
...         return x @ w
...     @staticmethod
...     def backward(ctx, grad):
...         x, w = ctx.saved_tensors
...         return grad @ w.T, x.T @ grad
>>> ctx = Context((True, True))
>>> out = run_forward(Square, ctx, (torch.ones(2, 3), torch.ones(3, 4)), {})
>>> [tuple(t.shape) for t in ctx.saved_tensors], tuple(out.shape)
([(2, 3), (3, 4)], (2, 4))
>>> to_meta = lambda t: t.to("meta") if isinstance(t, torch.Tensor) else None
>>> from convcost.torch.trace_calls import Session   # the call-by-call reading, which sits above this module
>>> backward_cost(Square, ctx, [torch.empty(2, 4, device="meta")], to_meta, Session)
(48, None)
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx

from convcost.torch.runtime.private import defines_setup_context


class Context(FunctionCtx):
    """What a custom Function's ``forward`` and ``backward`` are given as ``ctx`` in a reading: torch's own
    methods (``save_for_backward``, ``mark_non_differentiable`` ...), ``needs_input_grad`` as torch sets it, and
    ``saved_tensors``."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = tuple(needs_input_grad)
        self.to_save = ()
        self.materialize_grads = True

    @property
    def saved_tensors(self):
        return tuple(self.to_save)

    saved_variables = saved_tensors


def run_forward(cls, ctx, args, kwargs):
    """``cls``'s forward on ``args`` with grad disabled, as torch runs it (``setup_context`` after it, where the
    Function defines one)."""
    with torch.no_grad():
        if defines_setup_context(cls):
            out = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, out)
            return out
        return cls.forward(ctx, *args, **kwargs)


def non_differentiable(ctx) -> set:
    """id() of the outputs the forward marked non-differentiable."""
    return {id(t) for t in getattr(ctx, "non_differentiable", ())}


def backward_cost(cls, ctx, grads, to_meta, reading) -> tuple:
    """``(MACs, None)`` of ``cls``'s backward given ``grads`` (meta tensors, one per output), read call by call on
    meta tensors (``to_meta``: a tensor the forward saved or set on ``ctx``, as a meta tensor; ``reading``: the
    call-by-call reading's session class, passed in because that reading sits above this module), or ``(0, why)``
    where it cannot be read."""
    from convcost.errors import ConvcostError, InternalError

    ctx.to_save = tuple(_meta(t, to_meta) for t in ctx.to_save)
    for name, value in list(vars(ctx).items()):
        if name not in ("to_save", "needs_input_grad", "materialize_grads"):
            setattr(ctx, name, _meta(value, to_meta))
    session = reading(torch.nn.Module(), None, meta=True)
    try:
        with session, torch.no_grad():
            cls.backward(ctx, *grads)
    except InternalError:
        raise
    except ConvcostError as why:
        return 0, f"its own backward, which convcost cannot read: {why}"
    except Exception as exc:  # noqa: BLE001 - the user's backward fails on meta tensors: listed with why
        return 0, f"its own backward, which cannot run on meta tensors ({type(exc).__name__}: {exc})"
    listed = [op for op, e in session.record.unsupported.items() if e["macs"]]
    if listed:
        return 0, f"its own backward calls what convcost cannot count: {', '.join(listed)}"
    return sum(row.counts["macs"] for row in session.record.rows), None


def _meta(value, to_meta):
    if type(value) in (tuple, list):
        return type(value)(_meta(v, to_meta) for v in value)
    if type(value) is dict:
        return {k: _meta(v, to_meta) for k, v in value.items()}
    converted = to_meta(value)
    return value if converted is None else converted
