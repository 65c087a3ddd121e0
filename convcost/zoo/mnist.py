"""Seed 004's two MNIST nets: the conventional one and the one whose third 3x3 is split into 3x1 and 1x3.

The seed builds them in Keras (valid padding, ReLU after every convolution and
the hidden dense layer, softmax at the end); here they are channels-first, as
PyTorch runs them, and end in logits (the softmax belongs to the loss). The
parameter counts are the seed's ``summary()``: 93,322 and 81,098.

>>> mnist_net().cost().params, mnist_net(asymmetric=True).cost().params
(93322, 81098)
"""

from __future__ import annotations

from convcost.compose import Sequential
from convcost.primitives import Activation, Conv, Flatten, Linear, MaxPool
from convcost.zoo.model import ZooModel


def mnist_net(asymmetric: bool = False) -> ZooModel:
    """Seed 004's ``v0`` (``asymmetric=False``) or ``v1`` (third convolution as 3x1 then 1x3)."""
    relu = Activation("relu")
    if asymmetric:
        third = {"conv3_kx1": Conv(64, 64, (3, 1)), "relu3_kx1": relu, "conv3_1xk": Conv(64, 64, (1, 3)),
                 "relu3_1xk": relu}
    else:
        third = {"conv3": Conv(64, 64, 3), "relu3": relu}
    layer = Sequential(
        conv1=Conv(1, 32, 3), relu1=relu, pool1=MaxPool(2),
        conv2=Conv(32, 64, 3), relu2=relu, pool2=MaxPool(2),
        **third,
        flatten=Flatten(), dense1=Linear(576, 64), relu4=relu, dense2=Linear(64, 10),
    )
    name = "mnist_net(asymmetric=True)" if asymmetric else "mnist_net()"
    return ZooModel(name, layer, (1, 1, 28, 28), "seed 004, Efficient Filter Usage for CNNs (v0 and v1)")
