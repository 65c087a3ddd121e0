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

import collections
import contextlib
import functools
import operator
import threading

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
#: the files of torch's ``handle_torch_function`` and of the Python bodies of a tensor's operators (``__pow__``):
#: frames that stand between an operator the forward runs (``x ** y``) and a TorchFunctionMode
OPERATOR_FRAMES = frozenset({torch.overrides.handle_torch_function.__code__.co_filename,
                             torch.Tensor.__pow__.__code__.co_filename})


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
    ``nn.Module.__getattr__`` answers from these dicts) goes through the reading's ``seen`` when it is one of the
    module's own tensors (``original``: the dict as the forward found it); iterating, writing and
    ``module.parameters()`` see the tensors themselves."""

    __slots__ = ("seen", "original")

    def __getitem__(self, name):
        value = dict.__getitem__(self, name)
        if value is None or dict.get(self.original, name) is not value:  # None, or written by the forward
            return value
        return self.seen(value, name)


class _Children(dict):
    """A module's ``_modules`` while a reading runs: each child is handed to ``reach`` before anyone gets it
    (``self.block`` through ``nn.Module.__getattr__``, ``layers[i]``, ``for layer in self.layers``, a copy), so
    that only the modules a forward reaches are swapped and remembered."""

    __slots__ = ("reach",)

    def __getitem__(self, name):
        child = dict.__getitem__(self, name)
        self.reach(child)
        return child

    def get(self, name, default=None):
        child = dict.get(self, name, default)
        self.reach(child)
        return child

    def pop(self, name, *default):
        self.reach(dict.get(self, name))
        return dict.pop(self, name, *default)

    def _all(self):
        for child in dict.values(self):
            self.reach(child)

    def values(self):
        self._all()
        return dict.values(self)

    def items(self):
        self._all()
        return dict.items(self)

    def __iter__(self):  # also how dict(view) and {**view} read it
        self._all()
        return dict.__iter__(self)

    def __reversed__(self):
        self._all()
        return dict.__reversed__(self)

    def copy(self):
        self._all()
        return dict.copy(self)

    def popitem(self):
        self._all()
        return dict.popitem(self)

    def setdefault(self, name, default=None):
        self.reach(dict.get(self, name))
        return dict.setdefault(self, name, default)


#: attribute values that hold no module (most of a module's attributes): no isinstance needed; and those never
#: looked into (a module's hook dicts are OrderedDicts, its non-persistent buffer names a set, and the views
#: :func:`module_calls` puts on ``_parameters``, ``_buffers`` and ``_modules`` are handled by it)
_PLAIN = frozenset({bool, int, float, str, type(None), torch.dtype, torch.device, functools.partial,
                    collections.OrderedDict, set, _Reading, _Children})


@contextlib.contextmanager
def module_calls(root, known, call, seen, reached=None, quiet=None):
    """While the context lasts, the model's modules (``known``: their ids) hand their calls to ``call(module,
    args, kwargs)`` (its ``_call_impl``, the body of ``nn.Module.__call__``, set on the instance; a compiled
    module's ``_compiled_call_impl`` is put aside, so that its Python forward is what is read) and read their
    parameters and buffers by attribute through ``seen(tensor, name)``; everything put back whatever happens, and
    what the forward wrote into those dicts kept. Nothing process-wide changes: assigning
    ``nn.Module.__call__`` or ``__getattr__`` rebuilds that slot on every subclass torch and transformers
    define (thousands, milliseconds at each assignment), and would route other threads' modules too.

    Only the modules the forward reaches are swapped, each before anyone can hold it: ``root`` at the start, a
    child when its parent's ``_modules`` hands it out (:class:`_Children`), a module that another one keeps in a
    plain attribute (a list of blocks beside ``_modules``) with the module that keeps it; ``reached(module)`` is
    told first (:meth:`convcost.torch.leftovers.Attributes.touch`). A forward that reaches 31 of a model's 823
    modules swaps 31 (a vision tower it does not run costs nothing). ``quiet``: an object whose ``pause()`` and
    ``resume(paused)`` bracket the swap of each module (the shape reading's
    :class:`~convcost.torch.tensor_checks.Watch`: no profile function over convcost's own code)."""
    swapped = {}

    def reach(module):
        key = id(module)
        if key in swapped or key not in known:
            return
        paused = quiet.pause() if quiet is not None else False
        try:
            _swap(module, key)
        finally:
            if paused:
                quiet.resume(paused)

    def _swap(module, key):
        if reached is not None:
            reached(module)
        own = vars(module)
        views = []
        for name in ("_parameters", "_buffers"):
            found = own.get(name)
            if type(found) is dict and found:  # an empty one has nothing to read (most modules' _parameters)
                view = _Reading(found)
                view.seen, view.original = seen, found
                views.append((name, found, view))
                own[name] = view
        found = own.get("_modules")
        if type(found) is dict and found:
            view = _Children(found)
            view.reach = reach
            views.append(("_modules", found, view))
            own["_modules"] = view
        compiled = own.pop("_compiled_call_impl", None)
        own["_call_impl"] = functools.partial(call, module)
        swapped[key] = (own, views, compiled)
        # modules kept beside _modules: reachable from here too (the attributes that cannot hold one left out in a
        # comprehension: most of them)
        for value in [value for value in own.values() if type(value) not in _PLAIN]:
            kind = type(value)
            if kind is dict:
                value = list(value.values())
                kind = list
            if kind in (list, tuple):
                if value and isinstance(value[0], torch.nn.Module):  # (not a long list of numbers, item by item)
                    for item in value:
                        reach(item)
            elif isinstance(value, torch.nn.Module):
                reach(value)

    try:
        reach(root)
        yield
    finally:
        for own, views, compiled in swapped.values():
            own.pop("_call_impl", None)
            if compiled is not None:
                own["_compiled_call_impl"] = compiled
            for name, original, view in views:
                own[name] = original
                if original.keys() != view.keys() or not all(map(operator.is_, original.values(), dict.values(view))):
                    original.clear()  # what the forward wrote (self.cache = ...), in the module's own dict
                    original.update(dict.items(view))


#: ``torch.autograd.Function.apply`` as torch defines it (a classmethod every custom Function inherits)
_APPLY = torch.autograd.Function.__dict__["apply"]
_FUNCTIONS = threading.local()
_FUNCTIONS_USERS = {"count": 0}
_FUNCTIONS_LOCK = threading.Lock()


def _apply(cls, *args, **kwargs):
    call = getattr(_FUNCTIONS, "call", None)
    if call is None:  # another thread, or outside a reading
        return _APPLY.__func__(cls, *args, **kwargs)
    return call(cls, args, kwargs)


def apply_function(cls, args, kwargs):
    """``cls.apply(*args, **kwargs)`` as torch runs it, past :func:`custom_functions`."""
    return _APPLY.__func__(cls, *args, **kwargs)


@contextlib.contextmanager
def custom_functions(call):
    """While the context lasts, in this thread, ``Cls.apply(*args, **kwargs)`` of a custom
    ``torch.autograd.Function`` (one that does not define its own ``apply``) is ``call(Cls, args, kwargs)``. torch
    runs a custom Function's forward in C++ and makes its output need a gradient there, past every
    ``__torch_function__`` mode: a reading sees neither the call nor what it returns without this. The classmethod
    is swapped on ``torch.autograd.Function`` while any thread reads; other threads go through to torch's own."""
    with _FUNCTIONS_LOCK:
        if _FUNCTIONS_USERS["count"] == 0:
            torch.autograd.Function.apply = classmethod(_apply)
        _FUNCTIONS_USERS["count"] += 1
    outer = getattr(_FUNCTIONS, "call", None)
    _FUNCTIONS.call = call
    try:
        yield
    finally:
        _FUNCTIONS.call = outer
        with _FUNCTIONS_LOCK:
            _FUNCTIONS_USERS["count"] -= 1
            if _FUNCTIONS_USERS["count"] == 0:
                torch.autograd.Function.apply = _APPLY


def defines_setup_context(cls) -> bool:
    """Whether custom Function ``cls`` splits its forward from ``setup_context`` (torch's own test)."""
    return torch.autograd.function._is_setup_context_defined(cls.setup_context)


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
