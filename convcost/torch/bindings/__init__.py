"""Every binding of convcost's layers to PyTorch, one module per family of primitives.

Importing this package registers them all (:mod:`convcost.torch.binding`).
"""

from convcost.torch.bindings import (  # noqa: F401
    activation, compose, conv, efficient, linear, matmul, merge, norm, normalize, pool, rearrange, recurrent, resize,
)
