"""Will it fit? The memory of one training step as a closed form in the batch size, and the largest batch.

``training_memory(x, optimizer, dtype)`` is :meth:`convcost.Cost.training_memory`
of a layer, a cost or a zoo model with the batch left as the symbol ``N``
(the first layer of a whole model is fed data, so it computes no input
gradient). Every part is linear in ``N`` (parameters, gradients and optimizer
state do not depend on it; saved activations grow with it), so
``memory(N) <= budget`` holds exactly up to one integer, which
:func:`max_batch` finds in exact rational arithmetic and checks on both sides.

>>> from convcost.zoo import mnist_net
>>> training_memory(mnist_net(), "sgd")
207296*N + 746576
>>> max_batch(mnist_net(), memory="1MiB", optimizer="sgd")
1

The counts are what PyTorch 2.13 keeps on the CPU; cuDNN on CUDA saves
other tensors (and needs workspace), so on a GPU read the answer as a lower
bound on what the step needs.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from fractions import Fraction

import sympy

from convcost.costs import Cost, training_bytes
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.symbols import N
from convcost.zoo.model import ZooModel

#: units by their lower-case spelling: decimal (KB, MB ...), binary (KiB, MiB ...), and a bare letter (24G) as
#: binary, as Slurm's --mem, Docker and free -h read it
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_MEMORY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
#: a dtype name for each parameter itemsize (what :func:`convcost.costs.training_bytes` prices elements by)
_ITEMSIZE_NAMES = {2: "float16", 4: "float32", 8: "float64"}
#: how the units are named in messages
UNIT_NAMES = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (any case; 24G is 24GiB)"


def parse_memory(memory) -> int:
    """A memory size in bytes: an int, or text such as ``"80GiB"``, ``"24GB"``, ``"512MiB"``, ``"1.5GiB"``.

    Units are read in any case (``24gb`` is ``24GB``); a bare letter is binary (``24G`` is ``24GiB``, as
    Slurm and Docker read it); a number without a unit is bytes.

    >>> parse_memory("80GiB"), parse_memory("24GB"), parse_memory("24gb"), parse_memory("24G"), parse_memory(4096)
    (85899345920, 24000000000, 24000000000, 25769803776, 4096)
    >>> parse_memory("-1GB")
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: memory='-1GB' is not a size: give bytes or a number with a unit B, KB, MB,
    GB, TB, KiB, MiB, GiB, TiB (any case; 24G is 24GiB)
    """
    if isinstance(memory, bool):
        raise ConvcostError(f"memory={memory!r} must be a positive number of bytes or a size such as '24GiB'")
    if isinstance(memory, numbers.Integral):
        value = Fraction(int(memory))
    elif isinstance(memory, float):
        if not math.isfinite(memory):
            raise ConvcostError(f"memory={memory!r} must be a finite number of bytes")
        value = Fraction(repr(memory))
    elif isinstance(memory, str):
        match = _MEMORY.fullmatch(memory)
        if not match or match.group(2).lower() not in _UNITS:
            raise ConvcostError(f"memory={memory!r} is not a size: give bytes or a number with a unit {UNIT_NAMES}")
        value = Fraction(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        raise ConvcostError(f"memory={memory!r} must be a positive number of bytes or a size such as '24GiB'")
    if value <= 0:
        raise ConvcostError(f"memory={memory!r} must be positive")
    return math.floor(value)


def has_unit(text: str) -> bool:
    """True when the size ``text`` names its unit (``24GiB``, ``24B``), not a bare number (``24``).

    >>> has_unit("24"), has_unit("24G"), has_unit("512 B")
    (False, True, True)
    """
    match = _MEMORY.fullmatch(text)
    return bool(match and match.group(2))


def batched_cost(x, input_shape=None) -> Cost:
    """The training cost of ``x`` (a layer, a zoo model or a cost) with the batch as the symbol ``N``.

    A layer or zoo model is costed as a whole network: its input needs no gradient. A cost is taken as
    it is; it must depend on ``N``.
    """
    if isinstance(x, Cost):
        return x
    if isinstance(x, ZooModel):
        shape = tuple(input_shape or x.input_shape)
        return x.layer.cost((N, *shape[1:]), input_grad=False)
    if isinstance(x, Layer):
        shape = tuple(input_shape or x.default_input())
        return x.cost((N, *shape[1:]), input_grad=False)
    raise ConvcostError(f"{x!r} is not a convcost layer, zoo model or cost (a PyTorch model's step is read by "
                        "convcost.torch.max_batch and convcost.torch.profile)")


def training_memory(x, optimizer: str = "adam", dtype: str = "float32", *, input_shape=None, precision=None):
    """Bytes of one training step of ``x`` as a closed form in the batch size ``N``.

    ``precision`` prices it under a mixed-precision recipe instead of one ``dtype`` (:mod:`convcost.precision`:
    ``"bf16-autocast"``, ``"fp16-autocast"``, a model cast to ``"bf16"`` or ``"fp16"``, or ``"fp32"``).

    >>> from convcost import StandardConv
    >>> training_memory(StandardConv(C=3, O=8, K=3, H=6, W=6), "adam")
    432*N + 3592
    >>> training_memory(StandardConv(C=3, O=8, K=3, H=6, W=6), "adam", precision="bf16-autocast")
    216*N + 4024
    """
    memory = batched_cost(x, input_shape).training_memory(optimizer, dtype, precision=precision)
    return sympy.expand(sympy.sympify(memory))


def max_batch(x, input_shape=None, memory="80GiB", optimizer: str = "adam", dtype: str = "float32", *,
              precision=None) -> int:
    """The largest batch size N whose training step fits in ``memory`` (0 when not even one sample fits).

    ``x`` is a layer (its default input, batch replaced by N), a zoo model (its paper's input), a cost
    that depends on the symbol ``N``, or the bytes themselves as a sympy expression in ``N`` (a profile's
    total); ``input_shape`` overrides the input (its batch is ignored). :func:`convcost.torch.max_batch`
    takes the same arguments and a PyTorch model as well (it reads the model's step instead of solving).
    ``precision`` names a mixed-precision recipe (:func:`training_memory`).

    >>> from convcost import StandardConv
    >>> max_batch(StandardConv(C=3, O=8, K=3, H=6, W=6), memory=4456, optimizer="adam")
    2
    >>> max_batch(StandardConv(C=3, O=8, K=3, H=6, W=6), memory=-5)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: memory=-5 must be positive
    """
    budget = parse_memory(memory)
    if isinstance(x, sympy.Expr):
        if precision is not None:  # the bytes given are priced already: a recipe would be dropped silently
            raise ConvcostError(f"max_batch: precision={precision!r} prices a layer, zoo model or cost; the bytes "
                                f"{x} are given already")
        expr = sympy.expand(x)
    else:
        expr = training_memory(x, optimizer, dtype, input_shape=input_shape, precision=precision)
    others = expr.free_symbols - {N}
    if others:
        names = ", ".join(sorted(map(str, others)))
        raise ConvcostError(f"the training memory {expr} still depends on {names}: bind them (e.g. H=224, W=224)")
    if N not in expr.free_symbols:
        raise ConvcostError(f"the training memory {expr} does not depend on the batch size N: give a cost in N")
    poly = sympy.Poly(expr, N)
    if poly.degree() != 1:
        raise ConvcostError(f"the training memory {expr} is not linear in N; no exact largest batch is solved")
    slope, fixed = (sympy.Rational(c) for c in poly.all_coeffs())
    if slope <= 0:
        raise ConvcostError(f"the training memory {expr} does not grow with N")
    largest = max(int(sympy.floor((budget - fixed) / slope)), 0)
    # exact on both sides: batch `largest` fits, one more does not
    if largest and expr.subs(N, largest) > budget or expr.subs(N, largest + 1) <= budget:
        raise ConvcostError(f"max_batch: the solution N={largest} of {expr} <= {budget} does not check")
    return largest


@dataclasses.dataclass(frozen=True)
class StepTotals:
    """One training step of a profiled model, as autograd runs it (``profile(model, x, training=True)``).

    ``backward_macs`` (and ``backward_macs_torch``, FlopCounterMode's number: its grouped weight-gradient
    overcount included where the running release has it, 2.13 to 2.15, and the CPU's fused attention kernel
    counted, as 2.15 counts it), ``saved_elements`` (each storage once over the whole model) and
    ``saved_indices``, the parameters and the trainable ones. ``untracked`` lists the calls whose backward
    convcost cannot count yet, ``(op, count, paths, why)``: then ``complete`` is False and :meth:`memory`
    refuses, never a silent zero.

    >>> t = StepTotals(backward_macs=6912, backward_macs_torch=6912, saved_elements=216, saved_indices=0,
    ...                params=224, trainable_params=224, trainable_tensors=2)
    >>> t.memory("adam")   # 4 bytes x (224 + 224 + 2 x 224 + 216) + 4 x 2 step scalars
    4456
    """

    backward_macs: object
    backward_macs_torch: object
    saved_elements: object
    saved_indices: object
    params: int
    trainable_params: int
    trainable_tensors: int
    untracked: tuple = ()
    #: trainable parameters the forward never reads: no gradient, no optimizer state
    unread_params: int = 0
    unread_tensors: int = 0
    #: why the saved tensors and kernel choices are unproven where the step was read (a torch release or a
    #: device convcost does not prove: :func:`convcost.torch.runtime.unproven_step`), ``()`` where proven
    unproven: tuple = ()
    #: the bytes of the saved tensors, each storage once in its own dtype (``untyped_storage().nbytes()``):
    #: under ``torch.autocast`` low-precision activations and weight copies beside float32 ones; None where
    #: not read (a step built by hand)
    saved_bytes: object = None
    #: ``saved_bytes`` by dtype name, ``(("bfloat16", 1296), ("float32", 896))``
    saved_by_dtype: tuple = ()
    #: bytes per element of the parameters, their gradients and the optimizer's state (the recipe keeps them
    #: in the parameters' dtype: float32 master weights under autocast)
    param_itemsize: int = 4

    @property
    def proven(self) -> bool:
        """True when the step's saved tensors and kernels are facts proven for the running torch and device."""
        return not self.unproven

    @property
    def complete(self) -> bool:
        """True when every call of the step that takes part in the backward was counted."""
        return not self.untracked

    def memory(self, optimizer: str = "adam", dtype: str | None = None):
        """Bytes the step holds: parameters, their gradients, the optimizer's state and the saved activations.

        With ``dtype`` None (the default), as the step was read: parameters, gradients and state in the
        parameters' dtype (float32 master weights under autocast, Adam's step scalars float32) plus
        ``saved_bytes``, each saved tensor in its own dtype. A ``dtype`` name prices every element in it
        instead, indices int64 (:func:`convcost.costs.training_bytes`): what a step of the same model
        would hold with everything cast to that dtype.
        """
        if self.untracked:
            raise ConvcostError("training memory: convcost cannot count the backward of "
                                + ", ".join(f"{op} ({why})" for op, _, _, why in self.untracked))
        if dtype is None and self.saved_bytes is not None:
            weights = training_bytes(params=self.params, trainable_params=self.trainable_params - self.unread_params,
                                     trainable_tensors=self.trainable_tensors - self.unread_tensors,
                                     saved_elements=0, optimizer=optimizer, dtype=_ITEMSIZE_NAMES[self.param_itemsize])
            return weights + self.saved_bytes
        return training_bytes(params=self.params, trainable_params=self.trainable_params - self.unread_params,
                              trainable_tensors=self.trainable_tensors - self.unread_tensors,
                              saved_elements=self.saved_elements, saved_indices=self.saved_indices,
                              optimizer=optimizer, dtype=dtype or "float32")
