"""Element-wise activation functions.

>>> Activation("relu6").cost((1, 8, 4, 4)).act_ops
128
"""

from __future__ import annotations

from convcost.layers import TRAINING, Layer
from convcost.primitives.base import plain
from convcost.shapes import numel
from convcost.spec import choice, spec

#: the activation functions convcost names (each costs one ``act_ops`` per element)
#: the activations whose backward reads their output (PyTorch saves it); the others save their input
SAVE_OUTPUT = ("relu", "sigmoid", "tanh", "softmax", "log_softmax")

ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu", "gelu", "leaky_relu", "elu",
               "softmax",
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

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def _cost(self, shape, grad=TRAINING):
        output = self.kind in SAVE_OUTPUT
        return plain(shape, shape, act_ops=numel(shape), output_grad=grad.input,
                     saves_input=grad.input and not output, saves_output=grad.input and output)
