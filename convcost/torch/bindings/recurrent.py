"""The torch side of :mod:`convcost.primitives.recurrent`: ``nn.LSTM``, read as one row.

>>> import torch.nn as nn
>>> from convcost.torch import from_torch
>>> from_torch(nn.LSTM(8, 16, num_layers=2, batch_first=True, bidirectional=True))
LSTM(I=8, H=16, layers=2, batch_first=True, bidirectional=True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.rules import Tensor


@binds(p.LSTM, modules=(nn.LSTM,))
class LSTMBinding:
    def read(module):
        return p.LSTM(I=module.input_size, H=module.hidden_size, layers=module.num_layers, bias=module.bias,
                      batch_first=module.batch_first, bidirectional=module.bidirectional, P=module.proj_size)

    def build(layer, rank):
        return nn.LSTM(as_int(layer.I), as_int(layer.H), num_layers=as_int(layer.layers), bias=layer.bias,
                       batch_first=layer.batch_first, bidirectional=layer.bidirectional, proj_size=as_int(layer.P))

    def module_output(spec, shape):  # (output, (h_n, c_n))
        h, c = spec.states(shape)
        return (Tensor(spec.cost(shape).output_shape), (Tensor(h), Tensor(c)))

    def input_reading(module):  # what the CPU does with a strided input: a meta run takes neither of its paths
        return input_reading(module)

    def step_untracked(module, spec):
        if spec.layers > 1 and module.dropout:
            return "dropout between an LSTM's layers: its noise and the dropped copies it keeps are not modelled"
        return None


def input_reading(module):
    """What PyTorch 2.13's CPU LSTM does with a strided input before autograd keeps it, as a function to run on
    meta tensors (:func:`convcost.torch.layouts.simulate`; a meta run of ``nn.LSTM`` takes neither CPU path).
    The input is read time-major, ``(T, N, I)``. oneDNN's path (no projection) makes that contiguous, a copy
    unless it already is, and keeps it whenever anything needs a gradient; the cell path's input projection
    (one per direction) folds it to ``T N`` rows, a copy unless they are a view, and keeps them when trained.

    >>> from convcost.torch.layouts import simulate
    >>> from convcost.torch.rules import Tensor
    >>> x = torch.empty(4, 3, 2, device="meta").transpose(0, 1)     # (3, 4, 2) strided
    >>> run = simulate(input_reading(nn.LSTM(2, 5)), (Tensor((3, 4, 2), layout=x),), {})
    >>> run.kept, run.fresh      # oneDNN keeps a contiguous copy, not the input
    ([False], 24)
    """
    trainable = any(t.requires_grad for t in module.parameters())
    gates = 4 * module.hidden_size

    def read(x):
        v = x.unsqueeze(0 if module.batch_first else 1) if x.dim() == 2 else x
        v = v.transpose(0, 1) if module.batch_first else v
        if module.proj_size == 0:  # a product with a factor that needs a gradient keeps the other: the copy
            return v.contiguous() * torch.ones((), device="meta", requires_grad=True)
        weight = torch.empty(gates, module.input_size, device="meta", requires_grad=trainable)
        bias = torch.empty(gates, device="meta", requires_grad=trainable) if module.bias else None
        return [F.linear(v, weight, bias) for _ in range(2 if module.bidirectional else 1)]

    return read
