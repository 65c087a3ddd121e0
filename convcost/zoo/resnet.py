"""ResNet-18 and ResNet-50 (He et al. 2016), laid out as torchvision builds them.

Batch norm follows every convolution (none has a bias); the shortcut is a 1x1
convolution with batch norm wherever the shape changes; ResNet-50's bottleneck
strides in its 3x3 convolution ("ResNet v1.5", torchvision's layout).

>>> resnet18().cost().params, resnet50().cost().params
(11689512, 25557032)
>>> resnet50().cost().macs
4089184256
"""

from __future__ import annotations

from convcost.compose import Residual, Sequential
from convcost.primitives import Activation, AdaptiveAvgPool, BatchNorm, Conv, Flatten, Linear, MaxPool
from convcost.zoo.mobilenet import _classes
from convcost.zoo.model import ZooModel

SOURCE = "He et al., Deep Residual Learning (arXiv:1512.03385), Table 1; torchvision.models.resnet18/50"


def _conv_bn(c_in, c_out, kernel, stride=1, act=True):
    parts = {"conv": Conv(c_in, c_out, kernel, stride, kernel // 2, bias=False), "bn": BatchNorm(c_out)}
    if act:
        parts["relu"] = Activation("relu")
    return Sequential(**parts)


def _block(body: Sequential, c_in: int, c_out: int, stride: int) -> Sequential:
    """``relu(body(x) + shortcut(x))``; the shortcut projects only where the shape changes."""
    shortcut = _conv_bn(c_in, c_out, 1, stride, act=False) if stride != 1 or c_in != c_out else None
    return Sequential(residual=Residual(body, shortcut), relu=Activation("relu"))


def basic_block(c_in: int, planes: int, stride: int = 1) -> Sequential:
    """Two 3x3 convolutions (ResNet-18/34)."""
    body = Sequential(conv1=_conv_bn(c_in, planes, 3, stride), conv2=_conv_bn(planes, planes, 3, act=False))
    return _block(body, c_in, planes, stride)


def bottleneck(c_in: int, planes: int, stride: int = 1) -> Sequential:
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4 (ResNet-50/101/152)."""
    body = Sequential(
        conv1=_conv_bn(c_in, planes, 1),
        conv2=_conv_bn(planes, planes, 3, stride),
        conv3=_conv_bn(planes, 4 * planes, 1, act=False),
    )
    return _block(body, c_in, 4 * planes, stride)


def _resnet(name: str, block, expansion: int, repeats, num_classes: int) -> ZooModel:
    parts = {"stem": _conv_bn(3, 64, 7, 2), "maxpool": MaxPool(3, 2, 1)}
    c_in = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), repeats), start=1):
        blocks = {}
        for i in range(n):
            blocks[str(i)] = block(c_in, planes, 2 if i == 0 and stage > 1 else 1)
            c_in = planes * expansion
        parts[f"layer{stage}"] = Sequential(**blocks)
    parts.update(avgpool=AdaptiveAvgPool(1), flatten=Flatten(), fc=Linear(c_in, _classes(name, num_classes)))
    return ZooModel(name, Sequential(**parts), (1, 3, 224, 224), SOURCE)


def resnet18(num_classes: int = 1000) -> ZooModel:
    """ResNet-18: basic blocks, 2-2-2-2."""
    return _resnet("resnet18", basic_block, 1, (2, 2, 2, 2), num_classes)


def resnet50(num_classes: int = 1000) -> ZooModel:
    """ResNet-50: bottleneck blocks, 3-4-6-3."""
    return _resnet("resnet50", bottleneck, 4, (3, 4, 6, 3), num_classes)
