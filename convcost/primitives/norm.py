"""Batch normalisation.

>>> BatchNorm(C=16).cost((2, 16, 8, 8)).norm_ops
2048
"""

from __future__ import annotations

from convcost.layers import TRAINING, Layer
from convcost.primitives.base import channels_first, plain
from convcost.shapes import numel
from convcost.spec import flag, size, spec
from convcost.symbols import SPATIAL, C


@spec
class BatchNorm(Layer):
    """Batch normalisation over channel axis 1 (``nn.BatchNorm1d/2d/3d``), eval mode.

    params = 2C when affine; one fused multiply-add per element (``norm_ops``). ``running_stats``: whether it
    keeps running statistics (``track_running_stats``); no count depends on it, but a training step under
    mixed precision keeps the batch mean and inverse std in the statistics' dtype where they exist.

    >>> BatchNorm(C=16, affine=False).private_dtype("bfloat16", "float32")
    'float32'
    >>> BatchNorm(C=16, affine=False, running_stats=False).private_dtype("bfloat16", "float32")
    'bfloat16'
    """

    C: object = size(C)
    affine: bool = flag(True)
    running_stats: bool = flag(True)

    count_free_fields = ("running_stats",)

    def default_input(self):
        return (1, self.C, *SPATIAL[2])

    def kernel_kind(self) -> str:
        return "elementwise"

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def private_dtype(self, operand, params):
        # the batch mean and inverse std take the dtype of the running statistics and weights (float32 under
        # autocast, even without affine weights); with neither, the input's
        return params if self.affine or self.running_stats else operand

    def _cost(self, shape, grad=TRAINING):
        conditions = channels_first(self, shape, None, self.C)
        recorded = grad.input or (grad.trainable and self.affine)
        return plain(
            shape, shape, conditions, params=2 * self.C if self.affine else 0, norm_ops=numel(shape),
            # training mode: the input, and the batch mean and inverse std of each channel
            saves_input=recorded, extra_saved=2 * self.C if recorded else 0, output_grad=recorded,
            param_tensors=2 if self.affine else 0,
        )
