"""What a functional rule works with: tensors known by their shapes, and the answer it gives.

A rule reads one call a traced model makes (``F.conv2d(x, w, b, 2)``, ``x + y``):
``rule(args, kwargs)`` gets the call's arguments, with every tensor as a
:class:`Tensor` (its shape, and for a parameter the tensor itself), and returns an
:class:`Emit` (cost this convcost layer on these input shapes, reading these
parameters), a plain value (a shape query), or raises :class:`NoRule` so the
call is listed as unsupported with the reason.

>>> x = Tensor((1, 8, 4, 4))
>>> broadcast([(1, 8, 4, 4), (1, 8, 1, 1)])
(1, 8, 4, 4)
>>> bind_arguments(("input", "dim"), {"dim": 0}, (x,), {})["dim"]
0
"""

from __future__ import annotations

import torch

from convcost.errors import ConvcostError


class Tensor:
    """A tensor known by its shape (and, for a parameter or buffer, the tensor itself; its dtype where it
    is known and matters: a mask, indices)."""

    __slots__ = ("shape", "tensor", "name", "dtype", "grad", "storage", "layout")

    def __init__(self, shape, tensor=None, name="", dtype=None, *, grad=False, storage=None, layout=None):
        self.shape, self.tensor, self.name, self.dtype = tuple(shape), tensor, name, dtype
        #: in a training reading: whether autograd needs this tensor's gradient, the key of the storage it
        #: lives in (a view shares its base's), and how it lies in that storage: None when contiguous, else a
        #: meta tensor with its strides (:mod:`convcost.torch.layouts`)
        self.grad, self.storage, self.layout = grad, storage, layout


class _Leaf:
    """The gradient flag of a view taken under ``torch.no_grad()`` of a tensor that needs a gradient: PyTorch gives
    the view ``requires_grad`` (a view of what needs one), yet no graph behind it, so its gradient accumulates in it
    and reaches nothing before (truthy, as a flag that needs a gradient is)."""

    __slots__ = ()

    def __bool__(self):
        return True

    def __repr__(self):
        return "LEAF"


LEAF = _Leaf()


def size_value(x) -> int:
    """A size a rule reads (a padding, an output size): an int, or the value of a 0-d integer tensor the forward
    computed it as (EnCodec's and Mimi's paddings, made with ``torch.ceil``), as the reading knows it; where the
    reading has no value for it, :class:`NoRule`.

    >>> size_value(3), size_value(Tensor((), torch.tensor(4)))
    (3, 4)
    """
    if isinstance(x, Tensor):
        if x.tensor is None:
            raise NoRule("a size given as a tensor whose value the reading does not have")
        x = x.tensor
    if isinstance(x, torch.Tensor):
        if x.dim() != 0 or x.is_floating_point() or x.is_complex() or x.is_meta:
            raise NoRule("a size given as a tensor that is not one integer")
        return int(x)
    return int(x)


class Emit:
    """A rule's answer: cost ``spec`` on ``inputs`` (shapes), reading parameter tensors ``reads``.

    ``output`` is what the call returns when it is not the spec's output tensor: a shape (a vector
    product drops the axis it added) or a tuple of :class:`Tensor` (a pool that returns indices).
    """

    __slots__ = ("spec", "inputs", "reads", "output", "dtype", "operands")

    def __init__(self, spec, inputs, reads=(), output=None, dtype=None, operands=None):
        self.spec, self.inputs, self.reads, self.output = spec, inputs, reads, output
        #: the output's dtype where it is not the floating one the reading leaves open (an integer sum of token
        #: ids, a complex product): see :func:`promoted`
        self.dtype = dtype
        #: the :class:`Tensor` arguments ``inputs`` are, in order, where matching the call's tensors by shape could
        #: pick the wrong one (``baddbmm(z, q, k)`` with all three of one shape); None: matched by shape
        self.operands = operands


#: an ``Emit.output`` saying the call's input had no batch axis: the row is costed on a batch of one,
#: and the call returns the spec's output without that axis (``nn.Conv2d`` accepts ``(C, H, W)``)
UNBATCHED = "unbatched"


#: an ``Emit.output`` for a pool that also returns the indices of its maxima (same shape)
WITH_INDICES = "with indices"


def batched(shape, rank: int) -> tuple:
    """``(shape, output)`` for a layer that takes inputs of ``rank``: an input one axis short gets a batch of one."""
    shape = tuple(shape)
    if len(shape) == rank - 1:
        return (1, *shape), UNBATCHED
    return shape, None


class Refused(ConvcostError):
    """PyTorch itself refuses this call (its message quoted): whichever reading sees it, the profile is refused,
    never counted or listed."""


def dtype_of(t: Tensor):
    """The dtype PyTorch runs ``t`` in: its real tensor's (a parameter, a buffer, a constant), else the one the
    reading knows, else the default floating one (which the reading leaves open)."""
    return t.tensor.dtype if t.tensor is not None else t.dtype or torch.get_default_dtype()


def integral(dtype) -> bool:
    """Whether ``dtype`` is a torch dtype no gradient flows through (integers, booleans)."""
    return isinstance(dtype, torch.dtype) and not dtype.is_floating_point and not dtype.is_complex


def first_line(exc) -> str:
    """The first line of an exception's message (its type's name where it has none): PyTorch's reason, quoted."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class NoRule(Exception):
    """This call has no convcost rule: it is listed as unsupported, with this reason."""


def bind_arguments(names, defaults, args, kwargs) -> dict:
    """A call's arguments by name, PyTorch's defaults filled in."""
    values = dict(zip(names, args))
    values.update(kwargs)
    for k, v in defaults.items():
        values.setdefault(k, v)
    return values


def axes(value):
    """A per-axis argument as one int when every axis agrees, else a tuple (a padding string as is)."""
    if isinstance(value, (tuple, list)):
        value = tuple(int(v) for v in value)
        return value[0] if len(set(value)) == 1 else value
    return value if isinstance(value, str) else int(value)


def reads(*values) -> tuple:
    """The parameters among a call's arguments (what its row counts as params)."""
    # (``v.tensor is not None`` first: most operands are computed, and ``isinstance`` against ``Parameter`` runs
    # its metaclass's Python check)
    return tuple(v.tensor for v in values if isinstance(v, Tensor) and v.tensor is not None
                 and isinstance(v.tensor, torch.nn.Parameter))


def tensor_arg(value, what: str) -> Tensor:
    """``value`` as a :class:`Tensor`, or :class:`NoRule` naming ``what`` it should have been."""
    if not isinstance(value, Tensor):
        raise NoRule(f"{what} is not a tensor")
    return value


def broadcast(shapes) -> tuple:
    """The shape PyTorch broadcasts ``shapes`` to."""
    first = tuple(shapes[0])
    if all(tuple(s) == first for s in shapes[1:]) and all(type(x) is int for x in first):
        return first  # most calls: operands of one concrete shape
    rank = max(map(len, shapes))
    out = [1] * rank
    for s in shapes:  # each axis: its first size other than 1 (a loop: every element-wise call of two shapes)
        for i, x in enumerate(s, rank - len(s)):
            if x != 1 and out[i] == 1:
                out[i] = x
    return tuple(out)


def broadcasts(shape, to) -> bool:
    """Whether a tensor of ``shape`` broadcasts to ``to`` (each size equal, or 1, right-aligned).

    >>> broadcasts((4, 1), (2, 4, 3)), broadcasts((3,), (2, 4))
    (True, False)
    """
    shape, to = tuple(shape), tuple(to)
    return len(shape) <= len(to) and all(a == 1 or a == b for a, b in zip(shape, to[len(to) - len(shape):]))


def promoted(operands, divides=False):
    """The dtype PyTorch's type promotion gives an element-wise call on one or two ``operands`` (:class:`Tensor`
    values and Python numbers), where it is not floating: an integer, boolean or complex dtype, or the floating
    dtype every tensor operand was cast to; None for another floating result (the dtype the reading leaves open).
    ``divides``: a true division, whose result is floating even for integers.

    >>> ids = Tensor((2, 4), dtype=torch.int64)
    >>> promoted([ids, 1]), promoted([ids, Tensor((2, 4))]), promoted([ids, 2], divides=True)
    (torch.int64, None, None)
    >>> promoted([Tensor((4,), dtype=torch.complex64), Tensor((2, 4))])
    torch.complex64
    """
    dtypes, floating = [], True
    for v in operands:  # (a loop, not generators: every element-wise call asks)
        if type(v) is Tensor:
            dtypes.append(v.dtype)
            floating = floating and (v.dtype is None or v.dtype.is_floating_point)
        elif type(v) is complex:
            floating = False
    if floating:
        # nearly every call: floating tensors (the fast path); in one floating dtype cast to (``x.float() * 2``)
        # the result is in it, else in the one the reading leaves open
        return dtypes[0] if dtypes and None not in dtypes and len(set(dtypes)) == 1 else None
    # meta stand-ins of each operand's rank (a 0-d tensor promotes as a number does) and dtype (open: floating)
    stand_ins = [torch.empty((1,) * len(v.shape), dtype=v.dtype or torch.float32, device="meta")
                 if isinstance(v, Tensor) else v for v in operands[:2]]
    if not all(isinstance(v, (torch.Tensor, bool, int, float, complex)) for v in stand_ins) or \
            not any(isinstance(v, torch.Tensor) for v in stand_ins):
        return None
    found = torch.result_type(*stand_ins) if len(stand_ins) == 2 else stand_ins[0].dtype
    if found.is_floating_point or divides and not found.is_complex:
        return None
    return found
