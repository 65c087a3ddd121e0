"""Data movement without arithmetic: spatial shift, axis permutation (upsampling is
:class:`convcost.primitives.Interpolate`).

None of them has parameters or multiply-accumulates; each writes its output once.

>>> Shift().cost((1, 9, 4, 4)).macs
0
>>> Permute(dims=(0, 2, 3, 1)).cost((1, 8, 4, 5)).output_shape
(1, 4, 5, 8)
"""

from __future__ import annotations

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import plain, rank
from convcost.spec import size, spec


@spec
class Shift(Layer):
    """The Shift operation (Wu et al., 2018): channels split into ``K**2`` equal groups, each moved
    one step of a KxK neighbourhood (zeros fill the edge; the remainder stays put). No parameters,
    no multiply-accumulates: only data movement."""

    K: object = size(3)

    def kernel_kind(self) -> str:
        return "data_movement"

    def _cost(self, shape, grad=TRAINING):  # its backward moves the gradient back: nothing is saved
        rank(self, shape, 4)
        return plain(shape, shape, output_grad=grad.input)


@spec
class Permute(Layer):
    """A reordering of axes (``x.permute(dims)``, torchvision's ``Permute``): a view, no work counted.

    ConvNeXt moves channels last around its LayerNorm and linear layers with it.
    """

    dims: tuple = (0, 2, 3, 1)

    def validate(self):
        if not isinstance(self.dims, tuple) or sorted(self.dims) != list(range(len(self.dims))) \
                or not all(type(d) is int for d in self.dims):
            raise ConvcostError(f"{self!r}: dims={self.dims!r} must be a permutation of 0..n-1")

    def kernel_kind(self) -> None:
        return None

    def _cost(self, shape, grad=TRAINING):  # a view of its input's storage
        if len(shape) != len(self.dims):
            raise ConvcostError(f"{self!r}: permutes {len(self.dims)} axes, got a {len(shape)}-D input")
        return Cost(output_shape=tuple(shape[d] for d in self.dims), output_view=True, output_grad=grad.input)


