"""Operations that only move or view data: pixel and channel shuffles, flatten, narrow, identity.

>>> PixelShuffle(2).cost((1, 32, 8, 8)).output_shape
(1, 8, 16, 16)
>>> Narrow(dim=1, start=58, length=58).cost((1, 116, 28, 28)).output_shape
(1, 58, 28, 28)
>>> Narrow(dim=1, start=64, length=58).cost((1, 116, 28, 28))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: Narrow(dim=1, start=64, length=58): start=64 + length=58 goes past the 116 elements of axis 1
"""

from __future__ import annotations

import dataclasses

from convcost.arith import div, le
from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.layers import Layer
from convcost.primitives.base import divisible, plain, rank
from convcost.shapes import numel
from convcost.spec import count, size, spec
from convcost.symbols import G, r


class _Rearrangement(Layer):
    """A layer that only moves data: no parameters, no arithmetic; subclasses give ``reshape``."""

    abstract_base = True

    def kernel_kind(self) -> str:
        return "data_movement"

    def reshape(self, shape) -> tuple:
        raise NotImplementedError

    def moved(self, shape, conditions=()) -> Cost:
        return plain(self.reshape(shape), shape, conditions)


@spec
class PixelShuffle(_Rearrangement):
    """Depth to space (``nn.PixelShuffle``): (N, C r^2, H, W) -> (N, C, rH, rW); no parameters."""

    r: object = size(r)

    def reshape(self, shape):
        n, c, h, w = shape
        return (n, div(c, self.r**2), self.r * h, self.r * w)

    def _cost(self, shape):
        rank(self, shape, 4)
        return self.moved(shape, divisible(self, "the channel count", shape[1], "r**2", self.r**2))


@spec
class PixelUnshuffle(_Rearrangement):
    """Space to depth (``nn.PixelUnshuffle``): (N, C, rH, rW) -> (N, C r^2, H, W); no parameters."""

    r: object = size(r)

    def reshape(self, shape):
        n, c, h, w = shape
        return (n, c * self.r**2, div(h, self.r), div(w, self.r))

    def _cost(self, shape):
        rank(self, shape, 4)
        conditions = divisible(self, "the height", shape[2], "r", self.r) + divisible(self, "the width", shape[3], "r", self.r)
        return self.moved(shape, conditions)


@spec
class ChannelShuffle(_Rearrangement):
    """ShuffleNet's channel shuffle (``nn.ChannelShuffle``): a permutation of channels in G groups."""

    G: object = size(G)

    def reshape(self, shape):
        return shape

    def _cost(self, shape):
        if len(shape) < 2:
            raise ConvcostError(f"{self!r}: expects an input (N, C, ...), got shape {tuple(shape)}")
        return self.moved(shape, divisible(self, "the channel count", shape[1], "G", self.G))


@spec
class Flatten(Layer):
    """Flatten axes ``start_dim..end_dim`` into one (``nn.Flatten``; a view, no work counted)."""

    start_dim: int = 1
    end_dim: int = -1

    def validate(self):
        for name in ("start_dim", "end_dim"):
            value = getattr(self, name)
            if type(value) is not int:
                raise ConvcostError(f"{self!r}: {name}={value!r} must be an integer axis")

    def kernel_kind(self) -> None:
        return None

    def reshape(self, shape):
        if not (-len(shape) <= self.start_dim < len(shape) and -len(shape) <= self.end_dim < len(shape)):
            raise ConvcostError(f"{self!r}: axes {self.start_dim}..{self.end_dim} do not exist in a {len(shape)}-D input")
        start = self.start_dim % len(shape)
        end = self.end_dim % len(shape)
        if start > end:
            raise ConvcostError(f"{self!r}: start_dim comes after end_dim for a {len(shape)}-D input")
        return (*shape[:start], numel(shape[start : end + 1]), *shape[end + 1 :])

    def _cost(self, shape):
        return Cost(output_shape=self.reshape(shape))


@spec
class Narrow(Layer):
    """The slice ``start .. start+length-1`` of axis ``dim`` (``torch.narrow``; a view, no work counted).

    ShuffleNet V2 splits its channels in two halves with it (``x.chunk(2, dim=1)``).
    """

    dim: int
    start: object = count(dataclasses.MISSING)
    length: object = size()

    def validate(self):
        if type(self.dim) is not int:
            raise ConvcostError(f"{self!r}: dim={self.dim!r} must be an integer axis")

    def kernel_kind(self) -> None:
        return None

    def axis(self, shape) -> int:
        """The sliced axis of an input of ``shape``, counted from 0."""
        if not -len(shape) <= self.dim < len(shape):
            raise ConvcostError(f"{self!r}: dim={self.dim!r} is not an axis of a {len(shape)}-D input")
        return self.dim % len(shape)

    def reshape(self, shape):
        axis = self.axis(shape)
        return (*shape[:axis], self.length, *shape[axis + 1 :])

    def _cost(self, shape):
        out, axis = self.reshape(shape), self.axis(shape)
        conditions = require(
            le(self.start + self.length, shape[axis]),
            self,
            lambda: f"start={self.start} + length={self.length} goes past the {shape[axis]} elements of axis {axis}",
        )
        return Cost(output_shape=out, conditions=conditions)


@spec
class Identity(Layer):
    """Pass the input through (``nn.Identity``, and dropout at inference); costs nothing."""

    def kernel_kind(self) -> None:
        return None

    def _cost(self, shape):
        return Cost(output_shape=shape)
