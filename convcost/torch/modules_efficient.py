"""The ``nn.Module`` classes of convcost's efficient blocks that ``torch.nn`` does not have.

Plain PyTorch, one small class per operation: the Shift, a permutation, a layer scale, CondConv's
expert convolution, involution's multiply-sum, a deformable convolution (bilinear sampling with
``grid_sample``, then one matrix product: no torchvision needed), and the two compositions whose
parts see different tensors (:class:`Dynamic`, :class:`Octave`).

>>> import torch
>>> Shift(3)(torch.ones(1, 9, 3, 3))[0, 0]   # group 0 reads one step down and right: zeros enter there
tensor([[1., 1., 0.],
        [1., 1., 0.],
        [0., 0., 0.]])
>>> DeformConv(4, 6, 3, padding=1)(torch.zeros(2, 4, 5, 5), torch.zeros(2, 27, 5, 5)).shape
torch.Size([2, 6, 5, 5])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Shift(nn.Module):
    """Channels in ``k*k`` equal groups, group ``i`` moved by ``(i // k - k//2, i % k - k//2)`` pixels
    (zeros enter at the edge); the remainder channels stay put."""

    def __init__(self, k: int = 3):
        super().__init__()
        self.k = k

    def forward(self, x):
        k, r = self.k, self.k // 2
        n, h, w = x.shape[1] // (k * k), x.shape[2], x.shape[3]
        padded = F.pad(x, (r, r, r, r))
        parts = []
        for i in range(k * k):
            dy, dx = i // k - r, i % k - r
            parts.append(padded[:, i * n:(i + 1) * n, r - dy:r - dy + h, r - dx:r - dx + w])
        if x.shape[1] > k * k * n:  # the remainder stays put (no empty slice: readers refuse zero-sized tensors)
            parts.append(x[:, k * k * n:])
        return torch.cat(parts, dim=1)

    def extra_repr(self) -> str:
        return f"k={self.k}"


class Permute(nn.Module):
    """``x.permute(dims)`` as a module (torchvision's ``Permute``)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x):
        return x.permute(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class LayerScale(nn.Module):
    """A learned scale per channel of a channels-first tensor (``gamma`` of shape ``(C, 1, 1)``)."""

    def __init__(self, channels: int, init: float = 1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), init))

    def forward(self, x):
        return x * self.gamma


class ExpertConv(nn.Module):
    """CondConv's convolution, as timm's ``CondConv2d``: ``forward(x, routing)`` mixes the experts' kernels
    per sample (``routing @ weight``) and runs one grouped convolution over the batch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, experts=4):
        super().__init__()
        self.shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        self.stride, self.padding, self.groups = stride, padding, groups
        self.weight = nn.Parameter(torch.randn(experts, out_channels * (in_channels // groups) * kernel_size ** 2))

    def forward(self, x, routing):
        b, c, h, w = x.shape
        kernels = torch.matmul(routing, self.weight).view(b * self.shape[0], *self.shape[1:])
        out = F.conv2d(x.reshape(1, b * c, h, w), kernels, stride=self.stride, padding=self.padding,
                       groups=self.groups * b)
        return out.view(b, self.shape[0], *out.shape[2:])


class InvolutionAggregate(nn.Module):
    """Involution's multiply-sum, as the reference code: ``unfold`` the input, weight each K x K
    neighbourhood by the pixel's kernel (shared by ``group_channels`` channels), sum."""

    def __init__(self, channels, kernel_size, stride=1, group_channels=16):
        super().__init__()
        self.channels, self.k, self.stride, self.group_channels = channels, kernel_size, stride, group_channels

    def forward(self, x, kernels):
        b, _, h, w = kernels.shape
        groups = self.channels // self.group_channels
        weight = kernels.view(b, groups, 1, self.k ** 2, h, w)
        cols = F.unfold(x, self.k, padding=(self.k - 1) // 2, stride=self.stride)
        cols = cols.view(b, groups, self.group_channels, self.k ** 2, h, w)
        # the reference writes (weight * cols).sum(dim=3), which FlopCounterMode does not see; the same
        # contraction as a batched matrix product is counted (K^2 C per output pixel)
        pixels = cols.permute(0, 1, 4, 5, 2, 3) @ weight.permute(0, 1, 4, 5, 3, 2)  # (b, g, h, w, group_channels, 1)
        return pixels.squeeze(-1).permute(0, 1, 4, 2, 3).reshape(b, self.channels, h, w)


class DeformConv(nn.Module):
    """A deformable convolution as ``torchvision.ops.DeformConv2d`` computes it, in plain PyTorch.

    ``forward(x, offsets)``: ``offsets`` holds, per offset group and tap, a (dy, dx) pair, followed by the
    mask logits when ``modulated`` (passed through a sigmoid). Every tap samples the input bilinearly
    (zeros outside), then one matrix product applies the weights.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 offset_groups=1, modulated=True, bias=True):
        super().__init__()
        self.k, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.groups, self.offset_groups, self.modulated = groups, offset_groups, modulated
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels // groups, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x, offsets):
        n, c, h, w = x.shape
        ho, wo = offsets.shape[2:]
        taps, og = self.k ** 2, self.offset_groups
        shifts = offsets[:, :2 * og * taps].reshape(n, og, taps, 2, ho, wo)
        rows = torch.arange(ho, device=x.device, dtype=x.dtype) * self.stride - self.padding
        cols = torch.arange(wo, device=x.device, dtype=x.dtype) * self.stride - self.padding
        tap = torch.arange(self.k, device=x.device, dtype=x.dtype) * self.dilation
        base_y = (tap.view(-1, 1, 1, 1) + rows.view(1, 1, -1, 1)).expand(self.k, self.k, ho, wo).reshape(taps, ho, wo)
        base_x = (tap.view(1, -1, 1, 1) + cols.view(1, 1, 1, -1)).expand(self.k, self.k, ho, wo).reshape(taps, ho, wo)
        y = base_y + shifts[:, :, :, 0]
        x_pos = base_x + shifts[:, :, :, 1]
        grid = torch.stack(((2 * x_pos + 1) / w - 1, (2 * y + 1) / h - 1), dim=-1)  # pixel centres, align_corners=False
        sampled = F.grid_sample(x.reshape(n * og, c // og, h, w), grid.reshape(n * og, taps * ho, wo, 2),
                                mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled = sampled.view(n, og, c // og, taps, ho, wo)
        if self.modulated:
            mask = torch.sigmoid(offsets[:, 2 * og * taps:]).view(n, og, 1, taps, ho, wo)
            sampled = sampled * mask
        columns = sampled.reshape(n, self.groups, (c // self.groups) * taps, ho * wo)
        o = self.weight.shape[0]
        out = torch.matmul(self.weight.reshape(1, self.groups, o // self.groups, -1), columns).reshape(n, o, ho, wo)
        return out if self.bias is None else out + self.bias.view(1, o, 1, 1)


class Dynamic(nn.Module):
    """``op(x, generator(x))``, each held under its part name."""

    def __init__(self, generator: tuple, op: tuple):
        super().__init__()
        self.names = (generator[0], op[0])
        self.add_module(generator[0], generator[1])
        self.add_module(op[0], op[1])

    def forward(self, x):
        made, used = (getattr(self, name) for name in self.names)
        return used(x, made(x))


class Octave(nn.Module):
    """An octave layer's four paths and two sums.

    Called with a pair ``(high, low)`` it returns the pair. Called with one tensor, it takes it as
    convcost's nominal form of an octave map: the last ``low`` channels, read at every second pixel,
    are the low-frequency map, and the low output is written back repeated 2 x 2 (data movement only).
    """

    def __init__(self, paths: dict, low: int):
        super().__init__()
        self.low = low
        for name, module in paths.items():
            self.add_module(name, module)
        self.add_high, self.add_low = _Sum(), _Sum()

    def forward(self, x):
        if isinstance(x, tuple):
            return self.pair(*x)
        split = x.shape[1] - self.low
        high, low = self.pair(x[:, :split], x[:, split:, ::2, ::2])
        return torch.cat((high, low.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)), dim=1)

    def pair(self, high, low):
        return (self.add_high(self.high_to_high(high), self.low_to_high(low)),
                self.add_low(self.high_to_low(high), self.low_to_low(low)))


class _Sum(nn.Module):
    """``a + b``, a module so each sum of an octave layer has its part name (one input: passed through)."""

    def forward(self, a, b=None):
        return a if b is None else a + b
