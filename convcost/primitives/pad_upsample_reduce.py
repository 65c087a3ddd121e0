"""Work without multiply-accumulates: padding, interpolation and reductions (sum, mean, max ...).

>>> Pad(P=(1, 1, 2, 2)).cost((1, 3, 8, 8)).output_shape
(1, 3, 12, 10)
>>> Interpolate(size=(16, 16), mode="bilinear").cost((1, 3, 8, 8)).elementwise_ops
768
>>> Reduce(dims=(2, 3), keepdim=True).cost((1, 3, 8, 8)).output_shape
(1, 3, 1, 1)
"""

from __future__ import annotations

from convcost.arith import both, eq, le, lt, negate
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import fmt, plain
from convcost.shapes import numel
from convcost.spec import choice, count, flag, size, spec

PAD_MODES = ("constant", "reflect", "replicate", "circular")
MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
REDUCTIONS = ("sum", "mean", "amax", "amin", "max", "min", "prod", "var", "std", "norm", "logsumexp", "any", "all")


@spec
class Pad(Layer):
    """Constant, reflect, replicate or circular padding (``F.pad``): ``P`` lists (before, after) pairs from the
    last axis backwards, as PyTorch takes them. Data movement only.

    A training step (PyTorch 2.13) saves the input of a reflect or replicate padding when it needs a gradient
    (their backward kernels read it); constant and circular padding save nothing.

    >>> Pad(P=(1, 1), mode="reflect").cost((2, 3, 8)).saved_elements
    48
    >>> Pad(P=(4, 4), mode="reflect").cost((2, 3, 4))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: Pad(P=(4, 4), mode='reflect'): reflect padding 4 must be smaller than the axis it
    pads (4)
    """

    P: object = count(0, per_axis=True)
    mode: str = choice("constant", PAD_MODES)

    count_free_fields = ("mode",)

    def kernel_kind(self) -> str:
        return "data_movement"

    def autocast_rule(self) -> str:
        # reflection_pad1d/2d and replication_pad1d/2d/3d are float32 operators; constant and circular padding
        # and reflection_pad3d are not on the CPU lists
        axes = len(self.P) // 2 if isinstance(self.P, tuple) else 1
        fp32 = self.mode == "replicate" and axes <= 3 or self.mode == "reflect" and axes <= 2
        return "fp32" if fp32 else "keep"

    def _cost(self, shape, grad=TRAINING):
        pads = self.P if isinstance(self.P, tuple) else (self.P, self.P)
        if len(pads) % 2 or len(pads) // 2 > len(shape):
            raise ConvcostError(f"{self!r}: {len(pads)} padding values do not pair up with the axes of {fmt(shape)}")
        conditions = ()
        if self.mode != "constant":
            if not len(shape) - 1 <= len(pads) // 2 + 1 <= len(shape) or len(pads) > 6:
                raise ConvcostError(f"{self!r}: PyTorch pads in {self.mode} mode the last 1-3 axes of an input with "
                                    f"one or two more axes (batch, channels), got {len(pads)} values for {fmt(shape)}")
            for i, pad in enumerate(pads):
                length = shape[len(shape) - 1 - i // 2]
                if self.mode == "reflect":
                    conditions += require(lt(pad, length), self, lambda: f"reflect padding {pad} must be smaller "
                                          f"than the axis it pads ({length})")
                elif self.mode == "circular":
                    conditions += require(le(pad, length), self, lambda: f"circular padding {pad} must be at most "
                                          f"the axis it pads ({length})")
        out = list(shape)
        for i in range(len(pads) // 2):
            out[len(shape) - 1 - i] = shape[len(shape) - 1 - i] + pads[2 * i] + pads[2 * i + 1]
        saves = grad.input and self.mode in ("reflect", "replicate")
        return plain(tuple(out), shape, conditions, output_grad=grad.input, saves_input=saves)


@spec
class Interpolate(Layer):
    """Resampling (``F.interpolate``, ``nn.Upsample``) to spatial ``size``, or by an integer ``scale`` on every
    spatial axis (OctaveConv's 2x nearest upsampling): no MACs; one element-wise operation per output element
    for an interpolating mode, none for nearest (a copy). convcost's one resampling primitive.

    >>> Interpolate(scale=2).cost((1, 8, 4, 4)).output_shape
    (1, 8, 8, 8)
    >>> Interpolate(size=(5, 7), mode="bilinear").cost((1, 8, 4, 4)).elementwise_ops
    280
    """

    size: object = size(1, per_axis=True)
    mode: str = choice("nearest", MODES)
    #: an integer factor on every spatial axis; 0 resamples to ``size`` instead
    scale: object = count(0)

    def kernel_kind(self) -> str:
        return "elementwise" if not self.mode.startswith("nearest") else "data_movement"

    def _cost(self, shape, grad=TRAINING):
        """A training step (PyTorch 2.13): the interpolating and nearest modes save nothing (their backward needs
        only sizes); ``"area"`` is adaptive average pooling, which saves its input unless every output size is 1
        (a mean)."""
        if len(shape) < 3:
            raise ConvcostError(f"{self!r}: expects an input (N, C, ...spatial), got shape {fmt(shape)}")
        if self.scale != 0:
            sizes = tuple(self.scale * x for x in shape[2:])
        else:
            sizes = self.size if isinstance(self.size, tuple) else (self.size,) * (len(shape) - 2)
        if len(sizes) != len(shape) - 2:
            raise ConvcostError(f"{self!r}: {len(sizes)} output sizes for the {len(shape) - 2} "
                                f"spatial axes of {fmt(shape)}")
        out = (*shape[:2], *sizes)
        saves = both(grad.input, negate(both(*(eq(n, 1) for n in sizes)))) if self.mode == "area" else False
        return plain(out, shape, elementwise_ops=0 if self.mode.startswith("nearest") else numel(out),
                     output_grad=grad.input, saves_input=saves)


@spec
class Reduce(Layer):
    """A reduction (``sum``, ``mean``, ``amax`` ...) over ``dims`` (all axes when empty): one element-wise
    operation per input element, no MACs.

    In a training step (PyTorch 2.13's autograd, when the input needs a gradient): ``sum`` and ``mean`` save
    nothing; ``var`` saves its input; ``amax``, ``amin``, ``prod``, ``std``, ``norm``, ``logsumexp`` and
    ``max``/``min`` over every axis save input and output; ``max``/``min`` over given axes save the indices
    of their extremes (int64, one per output element); ``any``/``all`` have no gradient.

    >>> Reduce(dims=(2, 3), kind="mean").cost((2, 8, 4, 4)).saved_elements
    0
    >>> Reduce(dims=(1,), kind="max").cost((2, 8, 4, 4)).saved_indices
    32
    """

    dims: tuple = ()
    keepdim: bool = flag(False)
    kind: str = choice("sum", REDUCTIONS)

    count_free_fields = ("kind",)

    def kernel_kind(self) -> str:
        return "elementwise"

    def _cost(self, shape, grad=TRAINING):
        rank = len(shape)
        if any(type(d) is not int or not -max(rank, 1) <= d < max(rank, 1) for d in self.dims):
            raise ConvcostError(f"{self!r}: dims {self.dims} are not axes of {fmt(shape)}")
        axes = {d % rank for d in self.dims} if self.dims and rank else set(range(rank))
        out = tuple((1 if i in axes else n) for i, n in enumerate(shape) if self.keepdim or i not in axes)
        differentiable = grad.input and self.kind not in ("any", "all")
        indices = differentiable and self.kind in ("max", "min") and bool(self.dims)
        both = differentiable and not indices and self.kind not in ("sum", "mean", "var")
        return plain(out, shape, elementwise_ops=numel(shape), output_grad=differentiable,
                     saves_input=both or differentiable and self.kind == "var", saves_output=both,
                     saved_indices=numel(out) if indices else 0)


@spec
class MaxUnpool(Layer):
    """The inverse of a max pool (``nn.MaxUnpool1d/2d/3d``): scatters each input to the output of ``size``
    per spatial axis. Data movement only."""

    size: object = size(1, per_axis=True)

    def kernel_kind(self) -> str:
        return "data_movement"

    def _cost(self, shape, grad=TRAINING):
        """A training step (PyTorch 2.13) saves the pooling indices it scatters by (int64, one per input element)
        when the input needs a gradient: the backward gathers the gradient back through them. They are the
        indices the max pool returned, which that pool saves too, one storage (a pool and its unpool together
        count them twice here)."""
        sizes = self.size if isinstance(self.size, tuple) else (self.size,) * (len(shape) - 2)
        return plain((*shape[: len(shape) - len(sizes)], *sizes), shape, output_grad=grad.input,
                     saved_indices=numel(shape) if grad.input else 0)
