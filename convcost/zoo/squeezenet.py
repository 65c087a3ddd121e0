"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016), laid out as torchvision builds them.

Fire modules are :class:`convcost.blocks.FireModule` (squeeze 1x1, expand 1x1
and 3x3, ReLU after each, concatenated); max pools use ``ceil_mode=True``; the
classifier is a 1x1 convolution to the classes, ReLU and global average pooling
(dropout is the identity at inference).

>>> squeezenet1_0().cost().params, squeezenet1_1().cost().params
(1248424, 1235496)
>>> squeezenet1_1().cost().macs
349151936
"""

from __future__ import annotations

from convcost.blocks import FireModule
from convcost.compose import Sequential
from convcost.primitives import Activation, AdaptiveAvgPool, Conv, Flatten, Identity, MaxPool
from convcost.zoo.mobilenet import _classes
from convcost.zoo.model import ZooModel

SOURCE = "Iandola et al., SqueezeNet (arXiv:1602.07360), Table 1; torchvision.models.squeezenet1_0/1_1"


def _pool():
    return MaxPool(3, 2, ceil_mode=True)


def _squeezenet(name: str, stem: Conv, layout, num_classes: int) -> ZooModel:
    """``layout``: a sequence of ``"pool"`` and Fire ``(C, s, e)`` triples after the stem."""
    features = {"conv1": stem, "relu1": Activation("relu")}
    fire = pool = 0
    for item in layout:
        if item == "pool":
            pool += 1
            features[f"pool{pool}"] = _pool()
        else:
            fire += 1
            c, s, e = item
            features[f"fire{fire + 1}"] = FireModule(C=c, s=s, e=e)  # the paper numbers fires from 2
    classifier = Sequential(
        dropout=Identity(),
        conv=Conv(512, _classes(name, num_classes), 1),
        relu=Activation("relu"),
        pool=AdaptiveAvgPool(1),
    )
    layer = Sequential(features=Sequential(**features), classifier=classifier, flatten=Flatten())
    return ZooModel(name, layer, (1, 3, 224, 224), SOURCE)


def squeezenet1_0(num_classes: int = 1000) -> ZooModel:
    """SqueezeNet 1.0: 7x7/2 stem with 96 channels, pools after fire4 and fire8."""
    layout = (
        "pool", (96, 16, 64), (128, 16, 64), (128, 32, 128),
        "pool", (256, 32, 128), (256, 48, 192), (384, 48, 192), (384, 64, 256),
        "pool", (512, 64, 256),
    )
    return _squeezenet("squeezenet1_0", Conv(3, 96, 7, 2), layout, num_classes)


def squeezenet1_1(num_classes: int = 1000) -> ZooModel:
    """SqueezeNet 1.1: 3x3/2 stem with 64 channels, pools moved earlier (2.4x less computation)."""
    layout = (
        "pool", (64, 16, 64), (128, 16, 64),
        "pool", (128, 32, 128), (256, 32, 128),
        "pool", (256, 48, 192), (384, 48, 192), (384, 64, 256), (512, 64, 256),
    )
    return _squeezenet("squeezenet1_1", Conv(3, 64, 3, 2), layout, num_classes)
