"""The torch side of :mod:`convcost.primitives.norm`: ``nn.BatchNorm1d/2d/3d`` and ``F.batch_norm``.

Its ``eps`` and ``momentum`` change no count and are not kept.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from convcost import primitives as p
from convcost.errors import ConvcostError
from convcost.torch.binding import binds
from convcost.torch.build import as_int
from convcost.torch.conventions import batch, formula_params, per_element
from convcost.torch.layouts import keeps_channels_last
from convcost.torch.rules import Emit, NoRule, Refused, Tensor, bind_arguments, reads, tensor_arg


def _batch_norm_call(args, kwargs):
    a = bind_arguments(("input", "running_mean", "running_var", "weight", "bias", "training"),
                       {"running_mean": None, "running_var": None, "weight": None, "bias": None, "training": False},
                       args, kwargs)
    x = tensor_arg(a["input"], "the input")
    if len(x.shape) < 2:
        raise NoRule("batch norm of an input without a channel axis")
    # the channels are the statistics' and parameters' (PyTorch refuses an input that disagrees)
    given = next((t for t in (a["running_mean"], a["weight"]) if isinstance(t, Tensor) and len(t.shape) == 1), None)
    channels = given.shape[0] if given is not None else x.shape[1]
    if given is not None and type(channels) is int and type(x.shape[1]) is int and channels != x.shape[1]:
        what = "running_mean" if given is a["running_mean"] else "weight"
        raise Refused(f"PyTorch rejects batch norm of input {tuple(x.shape)}: {what} should contain "
                            f"{x.shape[1]} elements not {channels}")
    if a["training"] is True or a["running_mean"] is None:
        _one_value_per_channel(x.shape)
    return Emit(p.BatchNorm(C=channels, affine=a["weight"] is not None, running_stats=a["running_mean"] is not None),
                [x.shape], reads(a["weight"], a["bias"]))


def _one_value_per_channel(shape) -> None:
    """PyTorch's own refusal of batch statistics over one value per channel (``_verify_batch_size``)."""
    if all(type(n) is int for n in shape) and shape[0] * math.prod(shape[2:]) == 1:
        raise Refused("PyTorch rejects batch norm on batch statistics: Expected more than 1 value per "
                            f"channel when training, got input size torch.Size({list(shape)})")


def _module_inputs(m, args, kwargs):
    """The one tensor of a batch norm module's call; on batch statistics, PyTorch's refusal of one value per
    channel (which its forward says before any kernel runs)."""
    if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
        return None
    shape = args[0].shape
    if m.running_mean is not None and len(shape) > 1 and type(shape[1]) is int and shape[1] != m.num_features:
        raise Refused(f"PyTorch rejects batch norm of input {tuple(shape)}: running_mean should contain "
                      f"{shape[1]} elements not {m.num_features}")
    if m.training or not m.track_running_stats:
        _one_value_per_channel(shape)
    return [args[0]]


BATCH_NORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}  # by input rank


@binds(p.BatchNorm, modules=(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))
class BatchNormBinding:
    def read(m):
        if m.affine and m.bias is None:  # torch 2.13's bias=False: a scale without a shift
            raise ConvcostError(f"cannot read {m!r}: batch norm with a scale but no shift (bias=False) "
                                "has no convcost spec")
        # (running statistics: the buffers, which track_running_stats=False leaves None)
        return p.BatchNorm(C=m.num_features, affine=m.affine, running_stats=m.running_mean is not None)

    def build(layer, rank):
        if rank is not None and rank not in BATCH_NORM:
            raise ConvcostError(f"{layer!r}: batch norm takes inputs of rank 2 to 5, got rank {rank}")
        return BATCH_NORM[rank or 4](as_int(layer.C), affine=layer.affine, track_running_stats=layer.running_stats)

    functions = {F.batch_norm: _batch_norm_call}
    module_inputs = _module_inputs

    def private_dtype(spec, shapes, operand, weight, buffers):
        # mean and invstd take the dtype of the weights and running statistics where they differ from the
        # input's (autocast); without affine weights the running statistics decide where there are any (the
        # model's buffers: float32 under autocast, unless the model itself was cast), else the input's dtype
        if weight is None and operand in (torch.bfloat16, torch.float16):
            return buffers if spec.running_stats else operand
        return weight or operand
    passes_weights = True
    output_layout = keeps_channels_last
    conventions = {
        "fvcore": per_element(2, 1),
        "torchinfo": lambda row: batch(row) * formula_params(row),
        "ptflops": per_element(2, 1),
        "thop": per_element(4, 2),
    }
