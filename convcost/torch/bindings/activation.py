"""The torch side of :mod:`convcost.primitives.activation`: ten ``nn`` activations and their functions.

``LeakyReLU``'s slope, ``ELU``'s alpha and ``GELU``'s approximation change no count and are not kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.torch.binding import binds
from convcost.torch.conventions import out_numel
from convcost.torch.layouts import like_input
from convcost.torch.rules import Emit, NoRule, bind_arguments, promoted

MODULES = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "softmax": nn.Softmax,
    "log_softmax": nn.LogSoftmax,
}
_KIND = {cls: kind for kind, cls in MODULES.items()}


def _call(kind):
    def rule(args, kwargs):
        return Emit(p.Activation(kind=kind), [args[0].shape], dtype=activated_dtype(args, kwargs))
    return rule


def activated_dtype(args, kwargs):
    """The dtype of an activation's result, as PyTorch gives it: softmax's ``dtype=`` where asked (the input is cast
    to it first), else the input's own where the reading knows it (``x.double().softmax(-1)`` is float64); None
    where it is the floating one the reading leaves open.

    >>> from convcost.torch.rules import Tensor
    >>> x = Tensor((2, 4), dtype=torch.float64)
    >>> activated_dtype((x, -1), {}), activated_dtype((Tensor((2, 4)), -1), {"dtype": torch.float64})
    (torch.float64, torch.float64)
    >>> activated_dtype((Tensor((2, 4)),), {}) is None
    True
    """
    asked = kwargs.get("dtype")
    asked = asked if isinstance(asked, torch.dtype) else next((a for a in args[1:] if isinstance(a, torch.dtype)), None)
    return asked if asked is not None else promoted(args[:1])


def _hardtanh(args, kwargs):
    """``F.hardtanh``: ReLU6 when clamped to [0, 6] (``nn.ReLU6`` calls it so), no rule otherwise."""
    a = bind_arguments(("input", "min_val", "max_val", "inplace"), {"min_val": -1.0, "max_val": 1.0}, args, kwargs)
    if (float(a["min_val"]), float(a["max_val"])) != (0.0, 6.0):
        raise NoRule(f"hardtanh to [{a['min_val']}, {a['max_val']}] "
                     "(only [0, 6], ReLU6, is an activation convcost counts)")
    return Emit(p.Activation(kind="relu6"), [a["input"].shape])


#: activations whose backward reads their input: in place, autograd saves a copy of it (silu_, hardswish_,
#: relu6_ and hardtanh_ ...); the others (relu_, leaky_relu_, elu_, sigmoid_, tanh_) read their result, which
#: in place is the input's own storage. Measured in PyTorch 2.13 by the saved tensor's data pointer.
_CLONED = frozenset({"silu", "hardswish", "hardsigmoid", "gelu", "relu6"})


def _output_layout(spec, operands, output_shape):
    """Made like its input (element-wise); softmax's CPU kernel works on a contiguous copy and writes a
    contiguous result."""
    if spec.kind in ("softmax", "log_softmax"):
        return None, False
    return like_input(spec, operands, output_shape)


def _ptflops(kinds):
    return lambda row: out_numel(row) if row.spec.kind in kinds else 0


@binds(p.Activation, modules=tuple(MODULES.values()))
class ActivationBinding:
    def read(m):
        return p.Activation(kind=_KIND[type(m)])

    def build(layer, rank):
        if layer.kind in ("softmax", "log_softmax"):
            return MODULES[layer.kind](dim=1)
        return MODULES[layer.kind]()

    functions = {
        F.relu: _call("relu"), torch.relu: _call("relu"), F.relu6: _call("relu6"),
        torch.sigmoid: _call("sigmoid"), F.sigmoid: _call("sigmoid"), torch.tanh: _call("tanh"), F.tanh: _call("tanh"),
        F.hardswish: _call("hardswish"), F.hardsigmoid: _call("hardsigmoid"), F.silu: _call("silu"),
        F.gelu: _call("gelu"), F.leaky_relu: _call("leaky_relu"), F.elu: _call("elu"), F.hardtanh: _hardtanh,
        F.softmax: _call("softmax"), torch.softmax: _call("softmax"), F.log_softmax: _call("log_softmax"),
        torch.log_softmax: _call("log_softmax"),
    }
    methods = {"relu": _call("relu"), "relu_": _call("relu"), "sigmoid": _call("sigmoid"),
               "sigmoid_": _call("sigmoid"), "tanh": _call("tanh"), "softmax": _call("softmax"),
               "log_softmax": _call("log_softmax"), "relu6": _call("relu6"), "tanh_": _call("tanh")}
    output_layout = _output_layout
    element_wise = True  # (softmax or GELU of token ids: PyTorch refuses; sigmoid of them: float32)

    def inplace_clone(spec):
        return spec.kind in _CLONED

    conventions = {
        "ptflops": _ptflops(("relu", "relu6", "elu", "leaky_relu", "gelu")),
        # ptflops patches F.relu, F.elu, F.gelu and F.silu: a module that calls one is counted again
        "ptflops/patched": _ptflops(("relu", "elu", "gelu", "silu")),
    }
