"""The layers whose general forms convcost ships, collected by profiling real PyTorch models.

:mod:`convcost.forms` turns (layer, input shapes) pairs into the source of
:mod:`convcost._shipped_forms`; this module supplies the pairs: every leaf operation
of every zoo model and of :func:`coverage_models`, at batch 1 and batch 8, as
``profile`` reads them. Regenerate after changing a primitive's formula::

    python -m convcost.torch.shipping > convcost/_shipped_forms.py
"""

from __future__ import annotations

import torch.nn as nn

from convcost.forms import source
from convcost.layers import Merge
from convcost.torch.build import ACTIVATIONS
from convcost.torch.profile import profile


def zoo_layers():
    """(layer, input shapes) of every leaf operation of every zoo model at batch 1 and batch 8, as profiled."""
    from convcost.zoo import MODELS

    for name in sorted(MODELS):
        model = MODELS[name]()
        yield from _profiled(model.to_torch(), model.input_shape[1:])


def coverage_models():
    """``(torch module, input shape without batch)`` of the ordinary layers models are made of.

    One module each: convolutions and transposed convolutions of every rank, with and
    without bias, unpadded, padded, ``"same"`` and ``"valid"``; batch norms; every
    activation convcost reads, on feature maps, on pooled ``C x 1 x 1`` maps and on
    vectors; max, average and adaptive pools; linear layers on vectors and on
    channels-last maps; pixel shuffles, channel shuffle and flatten.
    """
    sizes = {1: (32,), 2: (16, 16), 3: (4, 8, 8)}
    out = []
    for dims, size in sizes.items():
        conv, transposed = getattr(nn, f"Conv{dims}d"), getattr(nn, f"ConvTranspose{dims}d")
        image = (8, *size)
        for bias in (True, False):
            out += [(conv(8, 16, 3, bias=bias), image), (conv(8, 16, 3, padding=1, bias=bias), image),
                    (conv(8, 8, 3, padding="same", bias=bias), image), (conv(8, 16, 3, padding="valid", bias=bias), image),
                    (conv(8, 16, 3, stride=2, padding=1, dilation=2, groups=4, bias=bias), image),
                    (transposed(8, 4, 2, stride=2, bias=bias), image),
                    (transposed(8, 4, 3, stride=2, padding=1, output_padding=1, groups=2, bias=bias), image)]
        out += [(getattr(nn, f"BatchNorm{dims}d")(8), image),
                (getattr(nn, f"MaxPool{dims}d")(2), image), (getattr(nn, f"MaxPool{dims}d")(3, 2, 1), image),
                (getattr(nn, f"MaxPool{dims}d")(3, 2, ceil_mode=True), image),
                (getattr(nn, f"AvgPool{dims}d")(2), image), (getattr(nn, f"AvgPool{dims}d")(3, 1, 1), image),
                (getattr(nn, f"AdaptiveAvgPool{dims}d")(1), image), (getattr(nn, f"AdaptiveAvgPool{dims}d")(2), image),
                (getattr(nn, f"AdaptiveMaxPool{dims}d")(1), image)]
    for make in ACTIVATIONS.values():
        out += [(make(), (8, 16, 16)), (make(), (8, 1, 1)), (make(), (8,)), (make(), (8, 32))]
    for bias in (True, False):
        out += [(nn.Linear(8, 16, bias=bias), (8,)), (nn.Linear(8, 16, bias=bias), (16, 16, 8))]
    out += [(nn.PixelShuffle(2), (8, 16, 16)), (nn.PixelUnshuffle(2), (8, 16, 16)), (nn.ChannelShuffle(2), (8, 16, 16)),
            (nn.Flatten(), (8, 4, 4)), (nn.BatchNorm1d(8), (8, 32))]
    return out


def coverage_layers():
    """(layer, input shapes) of every :func:`coverage_models` module at batch 1 and batch 8, as profiled."""
    for module, shape in coverage_models():
        yield from _profiled(module, shape)


def _profiled(module, shape):
    for batch in (1, 8):
        report = profile(module, (batch, *shape))
        for row in report.rows:
            yield row.spec, list(row.input_shapes) if isinstance(row.spec, Merge) else [row.input_shapes[0]]


def shipped_layers():
    """Every (layer, input shapes) whose structure is shipped: the zoo's, then the coverage set's."""
    yield from zoo_layers()
    yield from coverage_layers()


if __name__ == "__main__":
    print(source(shipped_layers()), end="")
