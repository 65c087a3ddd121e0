"""Element-wise activation functions.

>>> Activation("relu6").cost((1, 8, 4, 4)).act_ops
128
"""

from __future__ import annotations

from convcost.layers import Layer
from convcost.primitives.base import plain
from convcost.shapes import numel
from convcost.spec import choice, spec

#: the activation functions convcost names (each costs one ``act_ops`` per element)
ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu", "gelu", "leaky_relu", "elu", "softmax",
               "log_softmax")


@spec
class Activation(Layer):
    """An element-wise activation function: one ``act_ops`` per element, no parameters.

    Its ``kind`` does not change any count, so it is not part of the layer's structure.
    """

    kind: str = choice("relu", ACTIVATIONS)

    #: fields that change no count (the general form of every kind is one)
    count_free_fields = ("kind",)

    def kernel_kind(self) -> str:
        return "elementwise"

    def _cost(self, shape):
        return plain(shape, shape, act_ops=numel(shape))
