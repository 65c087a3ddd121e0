"""convcost's PyTorch backend: the only part of convcost that imports torch.

``to_torch(spec)`` builds the exact module of a layer; ``measure(module, shape)``
counts what PyTorch itself counts (the oracle); ``from_torch(module)`` reads a
module back into a spec through a registry filled by one decorator,
``register``. See :mod:`convcost.torch.registry` for the registry's rules.

>>> from convcost import StandardConv
>>> from convcost.torch import to_torch, measure, from_torch
>>> spec = StandardConv(C=3, O=32, K=3, P=1)
>>> module = to_torch(spec)
>>> measure(module, (1, 3, 32, 32)).macs == spec.cost((1, 3, 32, 32)).macs == 884736
True
>>> from_torch(module)
Sequential(conv=Conv(C=3, O=32, K=3, P=1))
"""

from convcost.extras import need as _need

_need("torch", "torch", "convcost.torch")

# the running torch, read once; each primitive's torch side, registered once
from convcost.torch import bindings as _bindings  # noqa: F401
from convcost.torch import runtime
from convcost.torch.build import free_symbols, to_torch

# the functions, as the README calls them: convcost.torch.profile(model, shape), convcost.torch.calibrate("cpu");
# their modules have other names (profiling, calibration), so ``import convcost.torch.profiling as m`` is the module
from convcost.torch.calibration import calibrate
from convcost.torch.fit import max_batch, step_memory
from convcost.torch.measure_forward import Measured, measure
from convcost.torch.profiling import profile
from convcost.torch.registry import (
    REGISTRY,
    Registry,
    from_torch,
    is_supported,
    reader_for,
    register,
    supported_types,
)
from convcost.torch.runtime import UnprovenReleaseWarning

runtime.warn_if_unproven()
runtime.install()

__all__ = [
    "to_torch",
    "measure",
    "Measured",
    "from_torch",
    "register",
    "reader_for",
    "is_supported",
    "supported_types",
    "Registry",
    "REGISTRY",
    "free_symbols",
    "profile",
    "calibrate",
    "max_batch",
    "step_memory",
    "runtime",
    "UnprovenReleaseWarning",
]
