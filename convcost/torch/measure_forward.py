"""``measure``: what PyTorch itself counts for a module. The oracle of convcost's proofs.

Conventions (those of :mod:`convcost.costs`, measured independently here):

``params``
    ``numel`` summed over ``module.parameters()`` (a shared parameter once).
``macs``
    ``torch.utils.flop_counter.FlopCounterMode`` total // 2 (PyTorch counts a
    multiply-accumulate as two FLOPs; convolutions, transposed convolutions and
    matrix products are counted, element-wise work is not).
``output_shape``
    the shape of the tensor the module returns.

The forward pass runs on meta tensors (shapes only, no arithmetic), so even a
large input costs microseconds; a module that cannot run on meta is run on
zero-filled real tensors instead. Nothing here calls convcost's formulas.

>>> import torch.nn as nn
>>> m = measure(nn.ConvTranspose2d(32, 16, 3, stride=2), (1, 32, 128, 128))
>>> m.params, m.macs, m.output_shape
(4624, 75497472, (1, 16, 257, 257))
>>> measure(nn.Conv2d(3, 8, 5), (1, 3, 4, 4))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: PyTorch rejects input (1, 3, 4, 4) for Conv2d(3, 8, kernel_size=(5, 5), stride=(1, 1)):
Calculated padded input size per channel: (4 x 4). Kernel size: (5 x 5). Kernel size can't be greater than actual
input size
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from convcost.errors import ConvcostError
from convcost.torch.locks import TRACING, model_lock
from convcost.validate import entry_point, is_integral, refuse

#: the most input elements measure allocates when an operation has no meta kernel and runs on the CPU
MAX_CPU_INPUT = 2**26


@dataclasses.dataclass(frozen=True)
class Measured:
    """What PyTorch counted: learnable parameters, multiply-accumulates, FLOPs and the output shape."""

    params: int
    macs: int
    flops: int
    output_shape: tuple
    device: str = "meta"


@entry_point
def measure(module: torch.nn.Module, input_shape) -> Measured:
    """Count ``module`` on an input of ``input_shape`` (a list of shapes for a module with several inputs)."""
    if not isinstance(module, torch.nn.Module):
        raise ConvcostError(f"measure: {module!r} is not a torch.nn.Module")
    shapes = _shapes(input_shape)
    params = sum(p.numel() for p in module.parameters())  # parameters() yields a shared one once
    with model_lock(module), TRACING.shared():
        try:
            flops, out = _run(module, shapes, "meta")
            device = "meta"
        except (NotImplementedError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "meta" not in str(exc):
                raise _rejected(module, input_shape, exc) from None
            # an op without a meta kernel, or a forward that reads values: run it for real
            if any(t.is_meta for t in _tensors(module)):
                raise ConvcostError(f"{_short(module)} cannot run on meta tensors and its weights are on "
                                    "meta") from None
            elements = sum(math.prod(s) for s in shapes)
            if elements > MAX_CPU_INPUT:
                raise ConvcostError(f"{_short(module)} has no meta kernel and an input of {elements:,} elements is "
                                    f"over the {MAX_CPU_INPUT:,} measure runs on the CPU") from None
            flops, out = _run_checked(module, shapes, "cpu")
            device = "cpu"
        except (ValueError, IndexError, TypeError, AssertionError, KeyError) as exc:
            raise _rejected(module, input_shape, exc) from None
    if not isinstance(out, torch.Tensor):
        raise ConvcostError(f"{_short(module)} returned {type(out).__name__}, not one tensor; measure "
                            "a module with one output")
    return Measured(params=params, macs=flops // 2, flops=flops, output_shape=tuple(out.shape), device=device)


def _shapes(input_shape) -> list:
    several = isinstance(input_shape, list) and input_shape and all(isinstance(s, (tuple, list)) for s in input_shape)
    shapes = input_shape if several else [input_shape]
    out = []
    for shape in shapes:
        if not isinstance(shape, (tuple, list, torch.Size)) or not all(is_integral(x) for x in shape):
            raise refuse("measure", "input_shape", shape, "a tuple of integers (or a list of such tuples)")
        sizes = tuple(int(x) for x in shape)
        if any(x < 0 for x in sizes):
            raise ConvcostError(f"measure: input shape {shape!r} must hold non-negative integers")
        if math.prod(sizes) >= 2**62:  # PyTorch counts elements in int64
            raise ConvcostError(f"measure: input shape {shape!r} has more elements than PyTorch can index")
        out.append(sizes)
    return out


def _tensors(module):
    return [*module.parameters(), *module.buffers()]


def _run(module, shapes, device):
    dtype = next((t.dtype for t in module.parameters() if t.is_floating_point()), torch.float32)
    inputs = tuple(torch.zeros(s, dtype=dtype, device=device) for s in shapes)
    # the module's own tensors, moved (not copied in place) so the caller's module is untouched
    state = {name: _moved(t, device) for name, t in module.named_parameters()}
    state.update({name: _moved(t, device) for name, t in module.named_buffers()})
    flags = [(m, m.training) for m in module.modules()]
    for m, _ in flags:  # eval mode: batch norm uses running statistics, as the cost model counts it
        m.training = False
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using padding='same'")  # a note on speed, not on counts
            out = torch.func.functional_call(module, state, inputs)
    finally:
        for m, flag in flags:  # each module's own flag back, not the root's for all
            m.training = flag
    return counter.get_total_flops(), out


def _moved(t, device):
    if device == "meta":
        return torch.empty_like(t, device="meta")
    return t if t.device.type == device else t.to(device)


def _run_checked(module, shapes, device):
    try:
        return _run(module, shapes, device)
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError, AssertionError, KeyError) as exc:
        raise _rejected(module, shapes if len(shapes) > 1 else shapes[0], exc) from None


def _rejected(module, shape, exc) -> ConvcostError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, AssertionError):
        message = f"AssertionError: {message}"
    return ConvcostError(f"PyTorch rejects input {tuple(shape)} for {_short(module)}: {message}")


def _short(module) -> str:
    text = repr(module)
    return text if "\n" not in text else type(module).__name__
