"""The torch side of :mod:`convcost.primitives.recurrent`: ``nn.LSTM``, read as one row.

>>> import torch.nn as nn
>>> from convcost.torch import from_torch
>>> from_torch(nn.LSTM(8, 16, num_layers=2, batch_first=True, bidirectional=True))
LSTM(I=8, H=16, layers=2, batch_first=True, bidirectional=True)
"""

from __future__ import annotations

from torch import nn

from convcost import primitives as p
from convcost.torch.binding import binds
from convcost.torch.build import as_int


@binds(p.LSTM, modules=(nn.LSTM,))
class LSTMBinding:
    def read(module):
        return p.LSTM(I=module.input_size, H=module.hidden_size, layers=module.num_layers, bias=module.bias,
                      batch_first=module.batch_first, bidirectional=module.bidirectional, P=module.proj_size)

    def build(layer, rank):
        return nn.LSTM(as_int(layer.I), as_int(layer.H), num_layers=as_int(layer.layers), bias=layer.bias,
                       batch_first=layer.batch_first, bidirectional=layer.bidirectional, proj_size=as_int(layer.P))
