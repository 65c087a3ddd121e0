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

from convcost.torch import runtime  # noqa: E402  (the running torch: read once, here)

runtime.warn_if_unproven()
runtime.install()

from convcost.torch.build import free_symbols, to_torch  # noqa: E402
from convcost.torch.measure import Measured, measure  # noqa: E402
from convcost.torch.registry import REGISTRY, Registry, from_torch, is_supported, reader_for, register, supported_types  # noqa: E402
from convcost.torch import bindings as _bindings  # noqa: F401, E402  (each primitive's torch side, registered once)
from convcost.torch.profile import profile  # noqa: E402  (the function; its module stays importable by its full name)
# the function, as the README calls it: convcost.torch.calibrate("cpu"); the module stays importable by its full name
from convcost.torch.calibrate import calibrate  # noqa: E402
from convcost.torch.fit import max_batch, step_memory  # noqa: E402
from convcost.torch.runtime import UnprovenReleaseWarning  # noqa: E402

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
