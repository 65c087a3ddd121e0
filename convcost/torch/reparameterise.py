"""RepVGG's structural re-parameterisation in PyTorch: the training form folded into one convolution.

``fuse_repvgg(module)`` takes the module ``to_torch`` builds for a training-form
:class:`~convcost.efficient.RepVGGBlock` and returns the module of its ``.fused()`` form with the
folded weights, so the deploy form's cost is the cost of a module that computes the same function.

>>> import torch
>>> from convcost.efficient import RepVGGBlock
>>> from convcost.torch import to_torch
>>> block = RepVGGBlock(C=4, O=4)
>>> training = to_torch(block).eval()
>>> deploy = fuse_repvgg(training)
>>> x = torch.randn(2, 4, 5, 5)
>>> bool(torch.allclose(training(x), deploy(x), atol=1e-5))
True
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from convcost.errors import ConvcostError


def _folded(conv: nn.Conv2d | None, bn: nn.BatchNorm2d, kernel: torch.Tensor | None = None) -> tuple:
    """``(weight, bias)`` of ``bn(conv(x))`` as one convolution (``kernel`` stands in for a missing conv)."""
    weight = conv.weight if conv is not None else kernel
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return weight * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


def fuse_repvgg(module: nn.Module) -> nn.Sequential:
    """The deploy module (one KxK conv with bias, then ReLU) of a training-form RepVGG module."""
    try:
        residual = module.branches
        dense, pointwise = residual.body.dense, residual.body.pointwise
    except AttributeError:
        raise ConvcostError("fuse_repvgg: give the module to_torch builds for a training-form RepVGGBlock") from None
    k = dense.conv.kernel_size[0]
    with torch.no_grad():
        weight, bias = _folded(dense.conv, dense.bn)
        w1, b1 = _folded(pointwise.conv, pointwise.bn)
        weight = weight + nn.functional.pad(w1, [k // 2] * 4)
        bias = bias + b1
        if residual.add:
            per_group = dense.conv.in_channels // dense.conv.groups
            identity = torch.zeros_like(weight)
            for i in range(weight.shape[0]):
                identity[i, i % per_group, k // 2, k // 2] = 1
            wi, bi = _folded(None, residual.shortcut, identity)
            weight, bias = weight + wi, bias + bi
        conv = nn.Conv2d(dense.conv.in_channels, dense.conv.out_channels, k, stride=dense.conv.stride,
                         padding=k // 2, groups=dense.conv.groups, bias=True)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return nn.Sequential(OrderedDict(conv=conv, act=nn.ReLU()))
