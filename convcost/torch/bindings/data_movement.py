"""The torch side of :mod:`convcost.primitives.data_movement`: shuffles, flatten, narrow, identity and dropout.

Dropout reads as the identity (it is one at inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.torch import modules
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.layouts import as_input, view_layout
from convcost.torch.rules import Emit, Tensor, bind_arguments


def _shuffle_call(cls, factor, field):
    """``F.pixel_shuffle``, ``F.pixel_unshuffle``, ``F.channel_shuffle``: one integer argument each."""
    def rule(args, kwargs):
        a = bind_arguments(("input", factor), {}, args, kwargs)
        return Emit(cls(**{field: int(a[factor])}), [a["input"].shape])
    return rule


def _flatten_call(args, kwargs):
    a = bind_arguments(("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1}, args, kwargs)
    return Emit(p.Flatten(start_dim=int(a["start_dim"]), end_dim=int(a["end_dim"])), [a["input"].shape])


def _narrow_call(args, kwargs):
    a = bind_arguments(("input", "dim", "start", "length"), {}, args, kwargs)
    out = p.Narrow(dim=int(a["dim"]), start=a["start"], length=a["length"]).cost(a["input"].shape).output_shape
    return Tensor(out)


@binds(p.PixelShuffle, modules=(nn.PixelShuffle,))
class PixelShuffleBinding:
    def read(m):
        return p.PixelShuffle(r=m.upscale_factor)

    def build(layer, rank):
        return nn.PixelShuffle(as_int(layer.r))

    functions = {F.pixel_shuffle: _shuffle_call(p.PixelShuffle, "upscale_factor", "r")}


@binds(p.PixelUnshuffle, modules=(nn.PixelUnshuffle,))
class PixelUnshuffleBinding:
    def read(m):
        return p.PixelUnshuffle(r=m.downscale_factor)

    def build(layer, rank):
        return nn.PixelUnshuffle(as_int(layer.r))

    functions = {F.pixel_unshuffle: _shuffle_call(p.PixelUnshuffle, "downscale_factor", "r")}


@binds(p.ChannelShuffle, modules=(nn.ChannelShuffle,))
class ChannelShuffleBinding:
    def read(m):
        return p.ChannelShuffle(G=m.groups)

    def build(layer, rank):
        return nn.ChannelShuffle(as_int(layer.G))

    functions = {torch.channel_shuffle: _shuffle_call(p.ChannelShuffle, "groups", "G")}


@binds(p.Flatten, modules=(nn.Flatten,))
class FlattenBinding:
    def read(m):
        return p.Flatten(start_dim=m.start_dim, end_dim=m.end_dim)

    def build(layer, rank):
        return nn.Flatten(layer.start_dim, layer.end_dim)

    functions = {torch.flatten: _flatten_call}
    methods = {"flatten": _flatten_call}
    output_layout = view_layout(torch.flatten, lambda layer: (layer.start_dim, layer.end_dim))

    def rank_after(layer, rank):
        return len(layer.reshape((1,) * rank))


@binds(p.Narrow, modules=(modules.Narrow,))
class NarrowBinding:
    def read(m):
        return p.Narrow(dim=m.dim, start=m.start, length=m.length)

    def build(layer, rank):
        return modules.Narrow(layer.dim, as_int(layer.start), as_int(layer.length))

    functions = {torch.narrow: _narrow_call}
    methods = {"narrow": _narrow_call}
    output_layout = view_layout(torch.narrow, lambda layer: (layer.dim, layer.start, layer.length))


@binds(p.Identity, modules=(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout))
class IdentityBinding:
    def read(m):
        return p.Identity()

    def build(layer, rank):
        return nn.Identity()

    output_layout = as_input
