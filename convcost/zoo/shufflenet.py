"""ShuffleNet V2 (Ma et al. 2018), laid out as torchvision builds it.

A unit of stride 1 splits its channels in halves (:class:`~convcost.primitives.Narrow`),
keeps one and passes the other through 1x1, depthwise 3x3, 1x1; a unit of
stride 2 feeds the whole input to two branches. Both concatenate and shuffle
the channels in 2 groups. The classifier is a global mean and one linear layer.

>>> m = shufflenet_v2()
>>> m.cost().params, m.cost().macs
(2278604, 144907992)
"""

from __future__ import annotations

from convcost.compose import Parallel, Sequential
from convcost.errors import ConvcostError
from convcost.primitives import (
    Activation,
    AdaptiveAvgPool,
    BatchNorm,
    ChannelShuffle,
    Conv,
    Flatten,
    Linear,
    MaxPool,
    Narrow,
)
from convcost.zoo.mobilenet import _classes
from convcost.zoo.model import ZooModel

#: output channels of the stem, stages 2-4 and conv5, by width (torchvision's table, the paper's Table 5)
WIDTHS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
REPEATS = (4, 8, 4)


def _conv_bn(c_in, c_out, kernel, stride=1, groups=1, relu=True):
    parts = {"conv": Conv(c_in, c_out, kernel, stride, kernel // 2, 1, groups, bias=False), "bn": BatchNorm(c_out)}
    if relu:
        parts["relu"] = Activation("relu")
    return Sequential(**parts)


def _branch(c_in, c_out, stride):
    """1x1 + BN + ReLU, depthwise 3x3 + BN, 1x1 + BN + ReLU."""
    return Sequential(
        pw1=_conv_bn(c_in, c_out, 1),
        dw=_conv_bn(c_out, c_out, 3, stride, groups=c_out, relu=False),
        pw2=_conv_bn(c_out, c_out, 1),
    )


def shuffle_unit(c_in: int, c_out: int, stride: int) -> Sequential:
    """One ShuffleNet V2 unit: split (stride 1) or two branches (stride 2), concat, shuffle in 2 groups."""
    half = c_out // 2
    if stride == 1:
        branches = Parallel(
            keep=Narrow(1, 0, half),
            branch2=Sequential(split=Narrow(1, half, half), body=_branch(half, half, 1)),
        )
    else:
        branch1 = Sequential(dw=_conv_bn(c_in, c_in, 3, stride, groups=c_in, relu=False), pw=_conv_bn(c_in, half, 1))
        branches = Parallel(branch1=branch1, branch2=_branch(c_in, half, stride))
    return Sequential(branches=branches, shuffle=ChannelShuffle(2))


def shufflenet_v2(width: float = 1.0, num_classes: int = 1000) -> ZooModel:
    """ShuffleNet V2 at ``width`` 0.5, 1.0, 1.5 or 2.0 (torchvision's ``shufflenet_v2_x1_0`` ...)."""
    if width not in WIDTHS or isinstance(width, bool):
        raise ConvcostError(f"shufflenet_v2: width={width!r} must be one of {', '.join(map(str, WIDTHS))}")
    channels = WIDTHS[width]
    name = f"shufflenet_v2(width={float(width)})"
    parts = {"conv1": _conv_bn(3, channels[0], 3, 2), "maxpool": MaxPool(3, 2, 1)}
    c_in = channels[0]
    for stage, (c_out, n) in enumerate(zip(channels[1:4], REPEATS), start=2):
        units = {str(i): shuffle_unit(c_in if i == 0 else c_out, c_out, 2 if i == 0 else 1) for i in range(n)}
        parts[f"stage{stage}"] = Sequential(**units)
        c_in = c_out
    parts.update(
        conv5=_conv_bn(c_in, channels[4], 1),
        pool=AdaptiveAvgPool(1),  # torchvision: x.mean([2, 3])
        flatten=Flatten(),
        fc=Linear(channels[4], _classes(name, num_classes)),
    )
    return ZooModel(
        name,
        Sequential(**parts),
        (1, 3, 224, 224),
        "Ma et al., ShuffleNet V2 (arXiv:1807.11164), Table 5; torchvision.models.shufflenet_v2_x1_0",
    )
