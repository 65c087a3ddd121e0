"""A layer whose weights depend on its input: a small network reads the feature map, and an
operation uses both (CondConv's routing, involution's kernels, deformable convolution's offsets).

>>> from convcost.primitives import Conv, DeformConv
>>> layer = Dynamic(("offset", Conv(C=8, O=27, K=3, P=1)), ("deform", DeformConv(C=8, O=8, K=3, P=1)))
>>> c = layer.cost((1, 8, 6, 6))
>>> [name for name, _ in c.parts], c.output_shape
(['offset', 'deform'], (1, 8, 6, 6))
>>> from convcost import cost
>>> cost(CondConv, C=16, O=32, H=8, W=8).params          # 4 experts of 32x16x3x3, the 16->4 router
18500
>>> cost(Involution, C=32, K=7, H=8, W=8).macs           # kernel nets 32*8 + 8*98, then 32*49 per pixel
166912
>>> cost(DeformableConv, C=8, O=8, H=6, W=6).params      # offset conv 8->27 3x3 (1971), deformable 8->8 3x3 (584)
2555
"""

from __future__ import annotations

import dataclasses

from convcost.arith import both, div, divides, either, negate, where
from convcost.compose import Sequential
from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer, Merge
from convcost.primitives import (
    Activation,
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Conv,
    DeformConv,
    ExpertConv,
    Flatten,
    InvolutionAggregate,
    Linear,
)
from convcost.shapes import numel
from convcost.spec import count, flag, size, spec
from convcost.symbols import C, O
from convcost.validate import entry_point
from convcost.variants import Variant


@dataclasses.dataclass(frozen=True, repr=False, init=False)
class Dynamic(Layer):
    """``op(x, generator(x))``: ``generator`` and ``op`` are ``(name, layer)`` pairs; ``op`` is a
    two-input operation (a :class:`~convcost.layers.Merge`) taking ``[x, generator(x)]``.

    The blocks below hold it as the one part of a ``Sequential``, so the block's top-level part is a
    module with one input, measurable on its own."""

    generator: tuple
    op: tuple

    @entry_point
    def __init__(self, /, generator: tuple, op: tuple):
        for role, pair, kind in (("generator", generator, Layer), ("op", op, Merge)):
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and pair[0].isidentifier()
                    and isinstance(pair[1], kind)):
                raise ConvcostError(f"Dynamic: {role}={pair!r} must be a (name, {kind.__name__}) pair")
        if generator[0] == op[0]:
            raise ConvcostError(f"Dynamic: the two parts need different names, got {generator[0]!r} twice")
        object.__setattr__(self, "generator", generator)
        object.__setattr__(self, "op", op)

    @property
    def parts(self) -> tuple:
        return (self.generator, self.op)

    def default_input(self):
        return self.generator[1].default_input()

    def _cost(self, shape, grad=TRAINING):
        made = self.generator[1].cost(shape, input_grad=grad.input, trainable=grad.trainable)
        used = self.op[1].cost([shape, made.output_shape], input_grads=[grad.input, made.output_grad],
                               trainable=grad.trainable)
        return Cost.total([(self.generator[0], made), (self.op[0], used)], output_shape=used.output_shape,
                          input_shape=shape, **_saved_once(shape, made, used))

    def __repr__(self):
        return f"Dynamic({self.generator[0]}={self.generator[1]!r}, {self.op[0]}={self.op[1]!r})"


def _saved_once(shape, made: Cost, used: Cost) -> dict:
    """What ``op(x, generator(x))`` saves, each storage once: the input ``x`` may be saved by both parts, the
    generator's output by the generator (as its output) and by the op (as its second operand)."""
    x, w = numel(shape), numel(made.output_shape)
    saves_x, saves_w = used.saves_input
    own = made.saved_elements - where(made.saves_input, x,
                                      0) - where(both(made.saves_output, negate(made.output_view)), w, 0)
    own = own + used.saved_elements - where(saves_x, x, 0) - where(saves_w, w, 0)
    x_saved = either(made.saves_input, saves_x, both(made.output_view, either(saves_w, made.saves_output)))
    w_saved = both(negate(made.output_view), either(made.saves_output, saves_w))
    return {"saved_elements": own + where(x_saved, x, 0) + where(w_saved, w, 0), "saves_input": x_saved,
            "saves_output": used.saves_output, "output_view": False, "output_grad": used.output_grad}


@spec
class CondConv(Variant):
    """CondConv (Yang et al., 2019; timm ``CondConv2d`` with EfficientNet's routing): global average pool,
    Linear(C, experts), sigmoid; the experts' KxK kernels mixed per sample by those weights (a matrix
    product, counted in MACs), then the convolution. No bias, as in timm."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(3)
    S: object = size(1)
    P: object = count(1)
    G: object = size(1)
    experts: object = size(4)

    def layers(self):
        routing = Sequential(pool=AdaptiveAvgPool(output_size=1), flatten=Flatten(),
                             fc=Linear(C=self.C, O=self.experts), sigmoid=Activation(kind="sigmoid"))
        conv = ExpertConv(C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, G=self.G, experts=self.experts)
        return Sequential(condconv=Dynamic(("routing", routing), ("conv", conv)))


@spec
class Involution(Variant):
    """Involution (Li et al., 2021): per-pixel kernels made from the input, shared across channel groups.

    Kernel generation: (a stride-S 2-D average pool when S > 1), a 1x1 conv to C/r channels with BN and
    ReLU, a 1x1 conv (with bias) to K^2 C/group_channels; then the unfold and multiply-sum, K^2 C
    multiply-accumulates per output pixel, counted in MACs.
    """

    C: object = size(C)
    K: object = size(7)
    S: object = size(1)
    r: object = size(4)
    group_channels: object = size(16)

    _kept_in_general = ("S",)

    def validate(self):
        require(divides(self.r, self.C), self, f"C={self.C} is not divisible by the reduction r={self.r}")
        require(divides(self.group_channels, self.C), self,
                f"C={self.C} is not divisible by group_channels={self.group_channels}")

    def layers(self):
        reduced, groups = div(self.C, self.r), div(self.C, self.group_channels)
        parts = {"pool": AvgPool(K=self.S, S=self.S)} if self.S != 1 else {}
        parts.update(
            reduce=Conv(C=self.C, O=reduced, K=1, bias=False), bn=BatchNorm(C=reduced), relu=Activation(kind="relu"),
            span=Conv(C=reduced, O=self.K**2 * groups, K=1),
        )
        aggregate = InvolutionAggregate(C=self.C, K=self.K, S=self.S, group_channels=self.group_channels)
        return Sequential(involution=Dynamic(("kernel", Sequential(**parts)), ("aggregate", aggregate)))


@spec
class DeformableConv(Variant):
    """A deformable convolution with its offset conv (DCN v1; v2 when ``modulated``): a KxK conv with bias,
    C -> offset_groups (3 if modulated else 2) K^2 channels (offsets, and mask logits), then the deformable
    convolution with bias (``torchvision.ops.DeformConv2d``). Its MACs follow the conv convention; the
    bilinear sampling is reported in ``elementwise_ops`` (see :class:`~convcost.primitives.DeformConv`)."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(3)
    S: object = size(1)
    P: object = count(1)
    D: object = size(1)
    G: object = size(1)
    offset_groups: object = size(1)
    modulated: bool = flag(True)

    def layers(self):
        deform = DeformConv(C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, D=self.D, G=self.G,
                            offset_groups=self.offset_groups, modulated=self.modulated)
        offset = Conv(C=self.C, O=deform.offset_channels(), K=self.K, S=self.S, P=self.P, D=self.D)
        return Sequential(deformable=Dynamic(("offset", offset), ("deform", deform)))
