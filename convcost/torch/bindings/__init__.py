"""Every binding of convcost's layers to PyTorch, one module per family of primitives.

Importing this package registers them all (:mod:`convcost.torch.binding`).
"""

from convcost.torch.bindings import (  # noqa: F401
    activation,
    compose,
    conv,
    data_movement,
    efficient,
    linear,
    matmul,
    merge,
    norm,
    normalize,
    pad_upsample_reduce,
    pool,
    recurrent,
)
