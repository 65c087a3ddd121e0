"""Optional packages: each comes with one extra of convcost, and a missing one says which to install.

Core convcost needs only sympy, numpy and platformdirs. The rest comes with extras
(``pip install 'convcost[NAME]'``):

======== ===================================== =============================================
extra    brings                                needed by
======== ===================================== =============================================
torch    torch (2.13 to 2.15)                  ``convcost.torch``, ``convcost profile``
testing  hypothesis, torch                     ``convcost.testing``
plot     matplotlib                            ``convcost.plot``, ``convcost breakeven --plot``
peers    torchinfo, fvcore, ptflops, thop      the live checks of docs/conventions.md
vision   torchvision, timm                     the model zoos' tests (tests/test_profile_zoo.py)
dev      all of the above, pytest              the test suite
======== ===================================== =============================================

>>> need("math", "torch", "a test").__name__
'math'
>>> need("no_such_package_xyz", "plot", "convcost.plot")
Traceback (most recent call last):
...
convcost.extras.MissingExtra: convcost.plot needs no_such_package_xyz, which is not installed: pip install
'convcost[plot]'
"""

from __future__ import annotations

import importlib

from convcost.errors import ConvcostError

#: extra -> the packages it brings (what pyproject.toml's optional-dependencies list)
EXTRAS = {
    "torch": ("torch",),
    "testing": ("hypothesis", "torch"),
    "plot": ("matplotlib",),
    "peers": ("torchinfo", "fvcore", "ptflops", "thop"),
    "vision": ("torchvision", "timm"),
}


class MissingExtra(ConvcostError, ImportError):
    """An optional package is not installed; the message names the extra that brings it.

    It is an ImportError too, so ``except ImportError`` and ``pytest.importorskip`` treat it as one.
    """


def need(module: str, extra: str, what: str):
    """Import ``module`` for ``what``, or raise :class:`MissingExtra` naming ``extra``."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}")  # a bug in convcost, not in the user's input
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module
        if missing.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but is itself broken: its own error says more
        raise MissingExtra(
            f"{what} needs {module}, which is not installed: pip install 'convcost[{extra}]'"
        ) from None
