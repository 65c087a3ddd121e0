"""Every binding of convcost's layers to PyTorch, one module per family of primitives.

Importing this package registers them all (:mod:`convcost.torch.binding`).
"""

from convcost.torch.bindings import activation, compose, conv, linear, merge, norm, pool, rearrange  # noqa: F401
from convcost.torch.bindings import efficient  # noqa: F401
