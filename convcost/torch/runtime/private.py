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
import functools
import operator

import torch
import torch.nn.functional as F
from torch._prims_common import suggest_memory_format as _suggest_memory_format

#: what ``torch.no_grad()`` and ``torch.enable_grad()`` call (a reading passes the forward's own through)
SET_GRAD_ENABLED = torch._C._set_grad_enabled
#: the experts' grouped matrix product (mixture-of-experts layers), where the release has it
GROUPED_MM = getattr(torch, "_grouped_mm", None)
#: a complex tensor's parts as a TorchFunctionMode sees them read: ``x.real`` reaches the mode as the property's
#: ``__get__`` (a method-wrapper), by the function that does the same
PROPERTY_READS = {torch.Tensor.real.__get__: torch.real, torch.Tensor.imag.__get__: torch.imag}
METHOD_WRAPPER = type(torch.Tensor.real.__get__)


def nonzero_on_meta():
    """A context in which meta tensors run ``nonzero`` (a boolean index) as if every element were set: torch's
    own switch, ``torch.fx.experimental._config.meta_nonzero_assume_all_nonzero``."""
    from torch.fx.experimental import _config

    return _config.patch(meta_nonzero_assume_all_nonzero=True)


def batched(value) -> bool:
    """Whether ``value`` is a tensor ``torch.vmap`` batches (functorch's ``BatchedTensor``, which has no storage):
    what a function run under ``vmap`` computes on (transformers' attention-mask functions).

    >>> torch.vmap(lambda x: torch.tensor(batched(x)))(torch.ones(2, 3)).tolist(), batched(torch.ones(2))
    ([True, True], False)
    """
    return isinstance(value, torch.Tensor) and torch._C._functorch.is_batchedtensor(value)


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


def module_body(module, *args, **kwargs):
    """``module(*args, **kwargs)`` as torch runs it (hooks, then ``forward``: ``Module._call_impl``), past the
    swap :func:`module_calls` puts on the module."""
    return type(module)._call_impl(module, *args, **kwargs)


class _Reading(dict):
    """A module's ``_parameters`` or ``_buffers`` while a reading runs: ``module.weight`` (which
    ``nn.Module.__getattr__`` answers from these dicts) goes through the reading's ``seen``; iterating, writing
    and ``module.parameters()`` see the tensors themselves."""

    __slots__ = ("seen",)

    def __getitem__(self, name):
        return self.seen(dict.__getitem__(self, name), name)


@contextlib.contextmanager
def module_calls(modules, call, seen):
    """While the context lasts, each module of ``modules`` (a model's own) hands its calls to ``call(module,
    args, kwargs)`` (its ``_call_impl``, the body of ``nn.Module.__call__``, set on the instance; a compiled
    module's ``_compiled_call_impl`` is put aside, so that its Python forward is what is read) and reads its
    parameters and buffers by attribute through ``seen(tensor, name)``; everything put back whatever happens, and
    what the forward wrote into those dicts kept. Nothing process-wide changes: assigning
    ``nn.Module.__call__`` or ``__getattr__`` rebuilds that slot on every subclass torch and transformers
    define (thousands, milliseconds at each assignment), and would route other threads' modules too."""
    swapped = []
    try:
        for module in modules:
            own = vars(module)
            views = []
            for name in ("_parameters", "_buffers"):
                found = own.get(name)
                if type(found) is dict and found:  # an empty one has nothing to read (most modules' _parameters)
                    view = _Reading(found)
                    view.seen = seen
                    views.append((name, found, view))
                    own[name] = view
            compiled = own.pop("_compiled_call_impl", None)
            own["_call_impl"] = functools.partial(call, module)
            swapped.append((own, views, compiled))
        yield
    finally:
        for own, views, compiled in swapped:
            own.pop("_call_impl", None)
            if compiled is not None:
                own["_compiled_call_impl"] = compiled
            for name, original, view in views:
                own[name] = original
                if original.keys() != view.keys() or not all(map(operator.is_, original.values(), dict.values(view))):
                    original.clear()  # what the forward wrote (self.cache = ...), in the module's own dict
                    original.update(dict.items(view))


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
