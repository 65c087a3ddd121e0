"""Small synthetic networks that calibration times end to end, built from ordinary layers.

Single kernels timed alone miss what a network's kernels pay together (the framework between calls, caches the
layers before evicted, a layout handed from one kernel to the next). The calibration times the networks here,
predicts each from its profile, and fits one in-network factor per kernel kind (:mod:`convcost.latency_network`).
They are built from the layers CNNs are made of (convolution, batch norm and activation stacks,
depthwise-separable blocks, strided depthwise convolutions, pointwise stacks, residual additions, squeeze-and-
excitation, concatenation and channel shuffle, pooling (after a stem, and stride-1 max pools in branches), linear
heads), never from a model of a zoo that predictions are checked against.

>>> sorted(NETWORKS)[:3]
['bottleneck_grouped', 'classifier', 'concat_shuffle']
>>> import torch
>>> build("separable")(torch.zeros(1, 3, 32, 32)).shape
torch.Size([1, 100])
"""

from __future__ import annotations

import torch
from torch import nn

from convcost.errors import ConvcostError

#: the classes of every network's linear head
CLASSES = 100


class Residual(nn.Module):
    """``body(x) + shortcut(x)`` (the identity when ``shortcut`` is None)."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


class Branches(nn.Module):
    """Every branch on the same input, concatenated along the channels."""

    def __init__(self, *branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


class Dense(nn.Module):
    """The input, and ``body`` of it, concatenated (a dense layer)."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class Excite(nn.Module):
    """Squeeze-and-excitation: the input scaled per channel by a gate read from its mean."""

    def __init__(self, c, r=4):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // r, 1), nn.ReLU(), nn.Conv2d(c // r, c, 1),
                                  nn.Hardsigmoid())

    def forward(self, x):
        return x * self.gate(x)


def conv(c, o, k=3, s=1, g=1, act=nn.ReLU):
    """Convolution, batch norm and (unless ``act`` is None) an activation."""
    layers = [nn.Conv2d(c, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o)]
    return nn.Sequential(*layers, *([act()] if act else []))


def head(c, hidden=0):
    """Global average pooling, flatten and a linear classifier (through a hidden layer when ``hidden``)."""
    mlp = [nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, CLASSES)] if hidden else [nn.Linear(c, CLASSES)]
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *mlp)


def separable(c, o, s=1, k=3, act=nn.ReLU):
    return nn.Sequential(conv(c, c, k, s, g=c, act=act), conv(c, o, 1, act=act))


def inverted(c, o, s=1, t=6, k=3, act=nn.ReLU6, excite=False):
    body = nn.Sequential(conv(c, c * t, 1, act=act), conv(c * t, c * t, k, s, g=c * t, act=act),
                         *([Excite(c * t)] if excite else []), conv(c * t, o, 1, act=None))
    return Residual(body) if s == 1 and c == o else body


def basic(c, o, s=1):
    body = nn.Sequential(conv(c, o, 3, s), conv(o, o, 3, act=None))
    return nn.Sequential(Residual(body, None if s == 1 and c == o else conv(c, o, 1, s, act=None)), nn.ReLU())


def bottleneck(c, o, s=1, g=8):
    mid = o // 2
    body = nn.Sequential(conv(c, mid, 1), conv(mid, mid, 3, s, g=g), conv(mid, o, 1, act=None))
    return nn.Sequential(Residual(body, None if s == 1 and c == o else conv(c, o, 1, s, act=None)), nn.ReLU())


def fire(c, squeeze, expand):
    return nn.Sequential(nn.Conv2d(c, squeeze, 1), nn.ReLU(),
                         Branches(nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU()),
                                  nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())))


def shuffle_unit(c):
    half = c // 2
    return nn.Sequential(Branches(separable(c, half, act=nn.ReLU), conv(c, half, 1)), nn.ChannelShuffle(2))


def pooled_branch(c, one, reduce, three, pooled):
    """Branches on one input: a 1x1 convolution, a 1x1 then a 3x3 one, and a stride-1 max pool then a 1x1 one."""
    return Branches(conv(c, one, 1), nn.Sequential(conv(c, reduce, 1), conv(reduce, three)),
                    nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(c, pooled, 1)))


def _plain():
    return nn.Sequential(conv(3, 32, 3, 2), conv(32, 32), nn.MaxPool2d(3, 2, 1), conv(32, 64), conv(64, 64),
                         nn.MaxPool2d(2), conv(64, 128), head(128))


def _separable():
    return nn.Sequential(conv(3, 32, 3, 2), separable(32, 64), separable(64, 128, 2), separable(128, 128),
                         separable(128, 256, 2), separable(256, 256), head(256))


def _inverted():
    return nn.Sequential(conv(3, 16, 3, 2, act=nn.ReLU6), inverted(16, 24, 2), inverted(24, 24), inverted(24, 40, 2),
                         inverted(40, 40), inverted(40, 80, 2), inverted(80, 80), conv(80, 320, 1, act=nn.ReLU6),
                         head(320))


def _excite():
    return nn.Sequential(conv(3, 16, 3, 2, act=nn.Hardswish), inverted(16, 24, 2, t=4, act=nn.ReLU),
                         inverted(24, 40, 2, t=3, k=5, act=nn.Hardswish, excite=True),
                         inverted(40, 40, 1, t=3, k=5, act=nn.Hardswish, excite=True),
                         inverted(40, 96, 2, t=4, act=nn.SiLU, excite=True), conv(96, 384, 1, act=nn.Hardswish),
                         head(384, hidden=512))


def _strided_depthwise():
    return nn.Sequential(conv(3, 64, 3, 2), conv(64, 64, 3, 2, g=64), conv(64, 128, 1), conv(128, 128, 5, 2, g=128),
                         conv(128, 256, 1), conv(256, 256, 3, 2, g=256), conv(256, 256, 1), head(256))


def _pointwise():
    return nn.Sequential(conv(3, 64, 3, 2), nn.MaxPool2d(2), conv(64, 256, 1), conv(256, 64, 1), conv(64, 256, 1),
                         nn.AvgPool2d(2), conv(256, 512, 1), conv(512, 128, 1), head(128))


def _residual():
    return nn.Sequential(conv(3, 32, 7, 2), nn.MaxPool2d(3, 2, 1), basic(32, 32), basic(32, 32), basic(32, 64, 2),
                         basic(64, 128, 2), head(128))


def _bottleneck_grouped():
    return nn.Sequential(conv(3, 32, 3, 2), nn.MaxPool2d(3, 2, 1), bottleneck(32, 128), bottleneck(128, 128),
                         bottleneck(128, 256, 2), head(256))


def _concat_shuffle():
    return nn.Sequential(conv(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1), shuffle_unit(24), shuffle_unit(24),
                         conv(24, 96, 3, 2), shuffle_unit(96), shuffle_unit(96), conv(96, 256, 1), head(256))


def _dense_concat():
    return nn.Sequential(conv(3, 32, 3, 2), nn.MaxPool2d(3, 2, 1),
                         *(Dense(nn.Sequential(nn.BatchNorm2d(32 + 16 * i), nn.ReLU(), nn.Conv2d(32 + 16 * i, 16, 3,
                                                                                                  padding=1)))
                           for i in range(4)),
                         nn.AvgPool2d(2), conv(96, 128, 1), head(128))


def _squeeze_fire():
    return nn.Sequential(nn.Conv2d(3, 64, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), fire(64, 16, 64),
                         fire(128, 16, 64), nn.MaxPool2d(3, 2, ceil_mode=True), fire(128, 32, 128),
                         nn.Conv2d(256, CLASSES, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _pooled_branches():
    # max pools inside the network, not only after its stem: a pool's in-network factor is not read off a network
    # whose first layers (a stem on the image, its large outputs) are all that pools sit beside
    return nn.Sequential(conv(3, 32, 3, 2), nn.MaxPool2d(3, 2, 1), conv(32, 64, 1), pooled_branch(64, 32, 48, 64, 32),
                         pooled_branch(128, 64, 64, 96, 32), nn.MaxPool2d(3, 2, 1), pooled_branch(192, 96, 64, 128, 32),
                         head(256))


def _classifier():
    return nn.Sequential(conv(3, 48, 5, 4), nn.MaxPool2d(3, 2), conv(48, 96), nn.MaxPool2d(3, 2),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(96 * 16, 1024), nn.ReLU(),
                         nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, CLASSES))


#: name -> builder of every synthetic network
NETWORKS = {
    "plain": _plain, "separable": _separable, "inverted": _inverted, "excite": _excite,
    "strided_depthwise": _strided_depthwise, "pointwise": _pointwise, "residual": _residual,
    "bottleneck_grouped": _bottleneck_grouped, "concat_shuffle": _concat_shuffle, "dense_concat": _dense_concat,
    "squeeze_fire": _squeeze_fire, "pooled_branches": _pooled_branches, "classifier": _classifier,
}
#: the quick calibration's networks: one of each family of kinds
QUICK_NETWORKS = ("plain", "inverted", "excite", "strided_depthwise", "residual", "bottleneck_grouped",
                  "concat_shuffle", "pooled_branches", "classifier")
#: ``(label, batch, image size, training)`` of every timing of a network
SETTINGS = (("inference", 1, 224, False), ("inference", 8, 160, False), ("training", 2, 224, True))


def build(name: str, seed: int = 0) -> nn.Module:
    """The network ``name`` of :data:`NETWORKS`, its weights drawn from ``seed``."""
    if name not in NETWORKS:
        raise ConvcostError(f"unknown synthetic network {name!r}; known: {', '.join(NETWORKS)}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return NETWORKS[name]()
