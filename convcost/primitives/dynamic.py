"""Convolutions whose kernels arrive as a second input, computed from the feature map itself.

Each takes ``[x, w]``: the feature map and what a small network made from it
(CondConv's routing weights, involution's per-pixel kernels, a deformable
convolution's offsets and mask). The network that makes ``w`` is costed on its
own (:class:`convcost.efficient.dynamic.Dynamic`); these count what uses it.

>>> ExpertConv(C=8, O=16, K=3, P=1, experts=4).cost([(2, 8, 5, 5), (2, 4)]).macs
66816
>>> InvolutionAggregate(C=32, K=7, group_channels=16).cost([(1, 32, 8, 8), (1, 98, 8, 8)]).macs
100352
>>> DeformConv(C=8, O=8, K=3, P=1).cost([(1, 8, 6, 6), (1, 27, 6, 6)]).elementwise_ops
12960
"""

from __future__ import annotations

from convcost.arith import both, div, either, eq, floordiv, ge, maximum, ne, negate, where
from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.layers import Merge
from convcost.primitives.base import channels_first, divisible, fmt
from convcost.shapes import conv_size, equal_sizes, numel
from convcost.spec import count, flag, size, spec
from convcost.symbols import C, K, O


def _two_inputs(layer, shapes) -> tuple:
    if len(shapes) != 2:
        raise ConvcostError(f"{layer!r}: takes two inputs [x, w], got {len(shapes)}")
    return shapes


def _costed(out, shapes, conditions, **counts) -> Cost:
    return Cost(
        output_shape=out,
        activation_elements=numel(out),
        memory_access=numel(shapes[0]) + numel(shapes[1]) + numel(out) + counts.get("params", 0),
        conditions=conditions,
        **counts,
    )



def _spatial(layer, shape, k, s, p, d) -> tuple:
    conditions, out = (), []
    for length in shape[2:]:
        conditions += require(ge(length + 2 * p, d * (k - 1) + 1), layer,
                              f"the kernel K={k} is wider than the padded input {length} + 2*{p}")
        out.append(conv_size(length, k, s, p, d))
    return tuple(out), conditions


@spec
class ExpertConv(Merge):
    """CondConv's convolution: per sample, ``experts`` kernels mixed by routing weights, then convolved.

    Inputs ``[x (N, C, H, W), routing (N, E)]``. params = E O (C/G) K^2 (the experts' kernels);
    MACs = N E O (C/G) K^2 (the per-sample mix, a matrix product) + N O H' W' (C/G) K^2 (the convolution).
    """

    has_parameters = True

    C: object = size(C)
    O: object = size(O)
    K: object = size(K)
    S: object = size(1)
    P: object = count(0)
    G: object = size(1)
    experts: object = size(4)

    def kernel_kind(self) -> str:
        return "grouped_conv" if self.G != 1 else "dense_conv"

    def _cost(self, shapes, grads=(True, True), trainable=True):
        """A training step (PyTorch 2.13, timm's ``CondConv2d``: ``routing @ weight``, then one convolution of
        the batch folded into the channels, ``G N`` groups). The product keeps the routing weights for the
        experts' gradient; the convolution keeps the input and the mixed kernels (N O (C/G) K^2, a fresh
        tensor) whenever it is recorded, as convolutions do. Backward MACs, as ``FlopCounterMode`` counts them
        (grouped weight gradient once): the product's two gradients (N E O (C/G) K^2 each: the routing's, the
        experts'), the convolution's input gradient and its kernels' gradient (the forward's MACs each)."""
        x, routing = _two_inputs(self, shapes)
        conditions = channels_first(self, x, 4, self.C)
        conditions += divisible(self, "C", self.C, "G", self.G) + divisible(self, "O", self.O, "G", self.G)
        if len(routing) != 2:
            raise ConvcostError(f"{self!r}: routing weights must be (N, experts), got {fmt(routing)}")
        conditions += equal_sizes(routing, (x[0], self.experts), self, "routing weights and (N, experts)")
        spatial, more = _spatial(self, x, self.K, self.S, self.P, 1)
        out = (x[0], self.O, *spatial)
        kernel = self.O * div(self.C, self.G) * self.K**2
        mix, conv = x[0] * self.experts * kernel, numel(out) * div(self.C, self.G) * self.K**2
        x_grad, routing_grad = grads
        kernels_grad = routing_grad or trainable
        recorded = x_grad or kernels_grad
        backward = (mix if routing_grad else 0) + (mix if trainable else 0) + (conv if x_grad else 0) \
            + (conv if kernels_grad else 0)
        return _costed(out, shapes, conditions + more, params=self.experts * kernel, macs=mix + conv,
                       backward_macs=backward, output_grad=recorded, param_tensors=1,
                       saves_input=(recorded, trainable),
                       saved_elements=(numel(x) + x[0] * kernel if recorded else 0)
                       + (numel(routing) if trainable else 0))


@spec
class InvolutionAggregate(Merge):
    """Involution's multiply-sum: each output pixel of each channel is the K x K neighbourhood of the
    input weighted by that pixel's own kernel, shared by ``group_channels`` channels.

    Inputs ``[x (N, C, H, W), kernels (N, K^2 C/group_channels, H', W')]`` with padding (K-1)/2 and
    stride S; no parameters; MACs = N C H' W' K^2 (``FlopCounterMode`` does not see it: unfold,
    multiply and sum are not matrix products).
    """

    C: object = size(C)
    K: object = size(7)
    S: object = size(1)
    group_channels: object = size(16)

    def kernel_kind(self) -> str:
        return "depthwise_conv"

    def _cost(self, shapes, grads=(True, True)):
        """A training step runs convcost's module (PyTorch 2.13): ``unfold``, then the multiply-sum as one batched
        matrix product per pixel and group, ``(group_channels, K^2) @ (K^2, 1)``, which ``FlopCounterMode``
        counts (the reference's ``(w * cols).sum`` it would not). The product keeps each operand for the other's
        gradient: the unfolded input (N C K^2 H' W', a fresh tensor) for the kernels', the kernels for the
        input's, as a copy (pixels first) unless that is a view of them (K = 1, H' W' = 1, or one sample and one
        group); the unfolded input likewise (a view of ``unfold``'s output where group_channels K^2 = 1, H' W' = 1,
        or one sample and one group; ``unfold`` allocates max(N C H W, N C K^2 H' W') elements, its storage
        resized from the input's size). Backward MACs: N C H' W' K^2 for each of the two gradients."""
        x, kernels = _two_inputs(self, shapes)
        conditions = channels_first(self, x, 4, self.C)
        conditions += divisible(self, "C", self.C, "group_channels", self.group_channels)
        spatial, more = _spatial(self, x, self.K, self.S, floordiv(self.K - 1, 2), 1)
        groups = div(self.C, self.group_channels)
        expected = (x[0], self.K**2 * groups, *spatial)
        if len(kernels) != 4:
            raise ConvcostError(f"{self!r}: kernels must be (N, K^2 C/group_channels, H', W'), got {fmt(kernels)}")
        conditions += more + equal_sizes(kernels, expected, self, "the kernel map and the unfolded input")
        out = (x[0], self.C, *spatial)
        macs = numel(out) * self.K**2
        x_grad, kernels_grad = grads
        # both operands are read pixels first: a view only where the merged (sample, group, pixel) axes stay
        # contiguous, else a copy of the operand's size
        few = either(eq(numel(spatial), 1), eq(x[0] * groups, 1))
        kernels_viewed = either(eq(self.K, 1), few)
        columns_viewed = either(eq(self.group_channels * self.K**2, 1), few)
        kept = both(x_grad, kernels_viewed)
        saved = where(kept, numel(expected), 0) + (where(negate(kernels_viewed), numel(expected), 0) if x_grad else 0)
        if kernels_grad:
            # a view keeps unfold's storage, allocated as the input (resized, never shrunk) when that is larger
            saved = saved + where(columns_viewed, maximum(numel(x), macs), macs)
        return _costed(out, shapes, conditions, macs=macs, backward_macs=macs * (x_grad + kernels_grad),
                       output_grad=x_grad or kernels_grad, saves_input=(False, kept), saved_elements=saved)


@spec
class DeformConv(Merge):
    """A deformable convolution (DCN v1, and v2 when ``modulated``), as ``torchvision.ops.deform_conv2d``.

    Inputs ``[x (N, C, H, W), offsets (N, offset_groups (3 if modulated else 2) K^2, H', W')]``: two
    offsets per tap (and a mask logit, through a sigmoid, when modulated). The convolution counts as a
    convolution: params = O (C/G) K^2 + O [bias]; MACs = N O H' W' (C/G) K^2. The bilinear sampling is
    reported apart, in ``elementwise_ops``: every sampled value (N C K^2 H' W' of them) reads four
    neighbours, 4 multiply-adds, and a modulated one is multiplied by its mask, one more.
    """

    has_parameters = True

    C: object = size(C)
    O: object = size(O)
    K: object = size(3)
    S: object = size(1)
    P: object = count(1)
    D: object = size(1)
    G: object = size(1)
    offset_groups: object = size(1)
    modulated: bool = flag(True)
    bias: bool = flag(True)

    def kernel_kind(self) -> str:
        return "grouped_conv" if self.G != 1 else "dense_conv"

    def offset_channels(self):
        """Channels of the offset (and mask) input: offset_groups x (3 or 2) x K^2."""
        return self.offset_groups * (3 if self.modulated else 2) * self.K**2

    def _cost(self, shapes, grads=(True, True), trainable=True):
        """A training step runs convcost's module (plain PyTorch 2.13: ``grid_sample`` of the input at every
        tap, the sampled columns times the mask's sigmoid when modulated, one ``matmul`` with the weight;
        torchvision's fused operator keeps other tensors). Where the input or the offsets need a gradient,
        ``grid_sample`` keeps the input and its grid (2 N offset_groups K^2 H' W'), the sigmoid its output
        (N offset_groups K^2 H' W', modulated), the product with the mask the sampled columns
        (N C K^2 H' W') when the offsets need a gradient, and ``matmul`` the weight expanded to the batch,
        a copy when N > 1 and G > 1 (N O (C/G) K^2); the weight's gradient keeps the columns (N C K^2 H' W').

        Backward MACs, counted as ``FlopCounterMode`` counts the decomposition (the columns' gradient, of the
        forward's size, when the input or the offsets need one; the weight's when trained); the bilinear
        sampling's own gradient is no multiply-accumulate in convcost's convention, as in the forward."""
        x, offsets = _two_inputs(self, shapes)
        conditions = channels_first(self, x, 4, self.C)
        conditions += divisible(self, "C", self.C, "G", self.G) + divisible(self, "O", self.O, "G", self.G)
        conditions += divisible(self, "C", self.C, "offset_groups", self.offset_groups)
        spatial, more = _spatial(self, x, self.K, self.S, self.P, self.D)
        if len(offsets) != 4:
            raise ConvcostError(f"{self!r}: offsets must be (N, {self.offset_channels()}, H', W'), got {fmt(offsets)}")
        conditions += more + equal_sizes(offsets, (x[0], self.offset_channels(), *spatial), self,
                                         "the offsets and the sampling grid")
        out = (x[0], self.O, *spatial)
        taps = div(self.C, self.G) * self.K**2
        samples = x[0] * self.C * self.K**2 * numel(spatial)
        masks = x[0] * self.offset_groups * self.K**2 * numel(spatial) if self.modulated else 0
        x_grad, offsets_grad = grads
        sampled = x_grad or offsets_grad  # the sampled columns need a gradient
        saved = 0
        if sampled:
            # matmul expands the weight (1, G, O/G, (C/G) K^2) to the batch: a copy unless N = 1 or G = 1
            copy = where(both(ne(x[0], 1), ne(self.G, 1)), x[0] * self.O * taps, 0)
            saved = numel(x) + 2 * x[0] * self.offset_groups * self.K**2 * numel(spatial) + masks + copy
            saved = saved + (samples if self.modulated and offsets_grad else 0)
        if trainable:
            saved = saved + samples
        macs = numel(out) * taps
        return _costed(
            out, shapes, conditions,
            params=self.O * taps + (self.O if self.bias else 0),
            macs=macs,
            bias_ops=numel(out) if self.bias else 0,
            act_ops=masks,
            elementwise_ops=samples * (5 if self.modulated else 4),
            backward_macs=(macs if sampled else 0) + (macs if trainable else 0),
            output_grad=sampled or trainable, param_tensors=2 if self.bias else 1,
            saves_input=(sampled, False), saved_elements=saved,
        )
