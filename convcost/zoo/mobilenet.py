"""MobileNet V1 (Howard et al. 2017, Table 1) and MobileNet V2 (Sandler et al. 2018, as torchvision builds it).

MobileNet V1 takes the paper's width multiplier ``alpha`` (every layer's
channels times alpha) and resolution multiplier ``rho`` (input 224 rho), either
as numbers or as the symbols :data:`convcost.symbols.alpha` and
:data:`convcost.symbols.rho`, so one symbolic cost covers the whole family of
the paper's Tables 6 and 7:

>>> from convcost.symbols import alpha, rho
>>> family = mobilenet_v1(alpha, rho).cost()
>>> family.subs(alpha=1, rho=1).macs            # Table 6/7: 569 M mult-adds
568740352
>>> mobilenet_v1(0.5).cost().params              # Table 6: 1.3 M parameters
1331592
>>> mobilenet_v2().cost().macs                   # MobileNetV2 paper: 300 M mult-adds
300774272
"""

from __future__ import annotations

from fractions import Fraction

from convcost.blocks import InvertedResidual, MobileNetV1Block
from convcost.compose import Sequential
from convcost.errors import ConvcostError
from convcost.primitives import Activation, AdaptiveAvgPool, BatchNorm, Conv, Flatten, Identity, Linear
from convcost.zoo.model import ZooModel, multiplier, whole

#: MobileNet V1, Table 1: (output channels, stride) of the 13 depthwise separable blocks.
#: The table prints the last depthwise layer as "s2" on a 7x7 input that stays 7x7; that is a
#: known typo (the text, every release and torchvision-style builds use stride 1).
V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)


def _conv_bn(c_in, c_out, kernel, stride, pad, act):
    return Sequential(conv=Conv(c_in, c_out, kernel, stride, pad, bias=False), bn=BatchNorm(c_out), act=Activation(act))


def mobilenet_v1(alpha=1, rho=1, num_classes: int = 1000) -> ZooModel:
    """MobileNet V1 exactly as Table 1 of the paper, with width multiplier ``alpha`` and resolution ``224 rho``.

    Every convolution is followed by batch norm and ReLU and has no bias; the
    classifier is global average pooling and one fully connected layer (the
    softmax is left to the loss, as in PyTorch). ``alpha`` and ``rho`` may be
    numbers or sympy symbols; a number must give whole channel counts (32 alpha)
    and a whole input size (224 rho). A float that has no exact binary value
    (``rho=6/7``) is read as the nearest whole size over 224 (or channel count
    over 32); pass ``Fraction(6, 7)`` to say it exactly.

    >>> m = mobilenet_v1(alpha=0.25, rho=4/7)
    >>> m.input_shape
    (1, 3, 128, 128)
    >>> mobilenet_v1(alpha=0.3)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: mobilenet_v1(alpha=3/10, rho=1): the first layer's channels 32*alpha is 48/5, not a
    whole number
    """
    a = multiplier("mobilenet_v1", "alpha", _snap(alpha, 32))
    p = multiplier("mobilenet_v1", "rho", _snap(rho, 224))
    where = f"mobilenet_v1(alpha={a}, rho={p})"
    whole(where, "the first layer's channels 32*alpha", 32 * a)  # every width is a multiple of 32
    whole(where, "the input size 224*rho", 224 * p)
    parts = {"conv1": _conv_bn(3, 32 * a, 3, 2, 1, "relu")}
    c_in = 32 * a
    for i, (c_out, stride) in enumerate(V1_BLOCKS, start=1):
        parts[f"block{i}"] = MobileNetV1Block(C=c_in, O=c_out * a, S=stride)
        c_in = c_out * a
    parts.update(pool=AdaptiveAvgPool(1), flatten=Flatten(), fc=Linear(c_in, _classes(where, num_classes)))
    size = 224 * p
    return ZooModel(
        f"mobilenet_v1(alpha={a}, rho={p})",
        Sequential(**parts),
        (1, 3, size, size),
        "Howard et al., MobileNets (arXiv:1704.04861), Table 1",
    )


def _snap(value, base: int):
    """A float multiplier read as the nearest ``whole / base`` when it is one to float precision.

    6/7 has no exact float; ``rho=6/7`` means input 192, so it is read as ``Rational(192, 224)``.
    """
    if isinstance(value, float) and value > 0 and abs(value * base - round(value * base)) < 1e-9 * base:
        return Fraction(round(value * base), base)
    return value


def make_divisible(value, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to the nearest multiple of ``divisor``, never below 90%.

    >>> make_divisible(32 * 0.75), make_divisible(16 * 0.5), make_divisible(24 * 1.4)
    (24, 8, 32)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


#: MobileNetV2, Table 2: expansion t, output channels c, repeats n, first stride s
V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))


def mobilenet_v2(width: float = 1.0, num_classes: int = 1000) -> ZooModel:
    """MobileNetV2 as torchvision builds it (channels rounded to multiples of 8, dropout then a linear classifier).

    The rounding needs a number: ``width`` cannot be a symbol here. Dropout is
    the identity at inference.

    >>> m = mobilenet_v2()
    >>> m.cost().params, m.cost().output_shape
    (3504872, (1, 1000))
    >>> mobilenet_v2(0.5).cost().params
    1968680
    """
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ConvcostError(f"mobilenet_v2: width={width!r} must be a positive number (channel rounding needs a value)")
    where = f"mobilenet_v2(width={width})"
    c_in = make_divisible(32 * width)
    parts = {"conv1": _conv_bn(3, c_in, 3, 2, 1, "relu6")}
    block = 0
    for t, c, n, s in V2_SETTINGS:
        c_out = make_divisible(c * width)
        for i in range(n):
            block += 1
            parts[f"block{block}"] = InvertedResidual(C=c_in, O=c_out, t=t, S=s if i == 0 else 1)
            c_in = c_out
    last = make_divisible(1280 * max(1.0, width))
    parts.update(
        conv_last=_conv_bn(c_in, last, 1, 1, 0, "relu6"),
        pool=AdaptiveAvgPool(1),
        flatten=Flatten(),
        dropout=Identity(),
        fc=Linear(last, _classes(where, num_classes)),
    )
    return ZooModel(
        where,
        Sequential(**parts),
        (1, 3, 224, 224),
        "Sandler et al., MobileNetV2 (arXiv:1801.04381), Table 2; torchvision.models.mobilenet_v2",
    )


def _classes(where: str, num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConvcostError(f"{where}: num_classes={num_classes!r} must be a positive integer")
    return num_classes
