"""convcost: the exact, symbolic cost model for convolutional networks.

>>> from convcost import cost, SeparableConv
>>> c = cost(SeparableConv, C=64, O=128, K=3)
>>> c.params
8960
>>> c.subs(H=56, W=56).macs
25567488
"""

from convcost.catalog import VARIANTS
from convcost.compose import Parallel, Residual, Sequential, When
from convcost.costs import METRICS, Cost
from convcost.derivation import derive
from convcost.errors import ConvcostError
from convcost.frontdoor import break_even, compare, cost, predict_latency
from convcost.layers import Layer
from convcost.training import max_batch

# every named variant by its name: the list is written once, in convcost.catalog
globals().update(VARIANTS)


def _version() -> str:
    """The installed version, as pyproject.toml gives it (the one place it is written)."""
    from importlib import metadata

    try:
        return metadata.version("convcost")
    except metadata.PackageNotFoundError:  # a source tree run without installing it
        return "0+unknown"


__version__ = _version()

__all__ = [
    "cost",
    "derive",
    "compare",
    "predict_latency",
    "break_even",
    "max_batch",
    "Cost",
    "ConvcostError",
    "Layer",
    "METRICS",
    "VARIANTS",
    "Sequential",
    "Parallel",
    "Residual",
    "When",
    *sorted(VARIANTS),
]
