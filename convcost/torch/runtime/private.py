"""torch's private API and process-wide patches, in one place.

Each is a fact of the releases convcost proves (:data:`convcost.torch.runtime.facts.FACTS` names its upstream
source and the test that proves it): a new release is checked here, and nothing else in convcost reads a
private torch name or patches torch (``tests/test_runtime.py`` enforces it).

>>> import torch
>>> is_dropout(torch.nn.Dropout2d()), is_dropout(torch.nn.ReLU())
(True, False)
>>> q = torch.ones(1, 1, 2, 4)
>>> attention_math(q, q, q).shape
torch.Size([1, 1, 2, 4])
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch._prims_common import suggest_memory_format as _suggest_memory_format

#: ``nn.Module``'s own call and attribute lookup, as torch defines them (what a patch puts back)
MODULE_CALL = torch.nn.Module.__call__
MODULE_GETATTR = torch.nn.Module.__getattr__
#: what ``torch.no_grad()`` and ``torch.enable_grad()`` call (a reading passes the forward's own through)
SET_GRAD_ENABLED = torch._C._set_grad_enabled
#: the experts' grouped matrix product (mixture-of-experts layers), where the release has it
GROUPED_MM = getattr(torch, "_grouped_mm", None)


def nonzero_on_meta():
    """A context in which meta tensors run ``nonzero`` (a boolean index) as if every element were set: torch's
    own switch, ``torch.fx.experimental._config.meta_nonzero_assume_all_nonzero``."""
    from torch.fx.experimental import _config

    return _config.patch(meta_nonzero_assume_all_nonzero=True)


def torch_functions_off():
    """A context in which no ``__torch_function__`` mode or subclass sees torch's calls (``DisableTorchFunction``)."""
    return torch._C.DisableTorchFunction()


def suggest_memory_format(tensor):
    """The memory format PyTorch gives a new tensor laid out like ``tensor`` (``torch._prims_common``)."""
    return _suggest_memory_format(tensor)


def attention_math(q, k, v):
    """PyTorch's math path of scaled dot-product attention (what the CPU runs when the fused kernel cannot)."""
    return torch.ops.aten._scaled_dot_product_attention_math(q, k, v)[0]


def is_dropout(module) -> bool:
    """Whether ``module`` is one of torch's dropout modules (they share the private base ``_DropoutNd``)."""
    return isinstance(module, torch.nn.modules.dropout._DropoutNd)


@contextlib.contextmanager
def module_calls(call, getattr_):
    """Every ``nn.Module``'s call and attribute lookup replaced while the context lasts (process-wide: the
    caller holds the tracing lock), then put back whatever happens."""
    torch.nn.Module.__call__ = call
    torch.nn.Module.__getattr__ = getattr_
    try:
        yield
    finally:
        torch.nn.Module.__call__ = MODULE_CALL
        torch.nn.Module.__getattr__ = MODULE_GETATTR


def descend(function, args, kwargs):
    """``function``'s own Python body: its entry check for ``__torch_function__`` answered no once, so that it
    runs instead of handing itself back; every call inside it is read as usual."""
    original = F.has_torch_function

    def once(operands):
        F.has_torch_function = original
        return False

    F.has_torch_function = once
    try:
        return function(*args, **kwargs)
    finally:
        F.has_torch_function = original


def import_torchvision():
    """``torchvision.models``, imported with every failing ``torch.library.register_fake`` made a no-op.

    torchvision 0.28.0 beside torch 2.13.0's CPU build (the default pairing, constraints/torch-2.13-cpu.txt)
    registers fake kernels for C++ ops this build lacks; its models need none of them. Beside a matching torch
    every registration succeeds and nothing changes.
    """
    real = torch.library.register_fake

    def tolerant(*args, **kwargs):
        try:
            decorate = real(*args, **kwargs)
        except Exception:  # noqa: BLE001 - an op this torch cannot fake: its registration skipped
            return lambda fn: fn

        def apply(fn):
            try:
                return decorate(fn)
            except Exception:  # noqa: BLE001 - the registration itself fails: skipped
                return fn

        return apply

    torch.library.register_fake = tolerant
    try:
        import torchvision.models as models
    finally:
        torch.library.register_fake = real
    return models
