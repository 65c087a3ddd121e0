"""The running torch, read once: its release, the releases convcost proves, and what its FlopCounterMode counts.

What autograd keeps and which kernel runs are facts of one torch release on one device; convcost proves
them release by release (:data:`PROVEN`, each with the build the oracle suites ran on) and lists every one
in :data:`convcost.torch.runtime.facts.FACTS`. This package is the one place that reads
``torch.__version__``; the rest of convcost asks it.

- :func:`release`: the running release as ``(major, minor)``, and :func:`is_proven` of it.
- :func:`warn_if_unproven`: on a release outside :data:`PROVEN`, one :class:`UnprovenReleaseWarning`, the
  first time ``convcost.torch`` is imported. Forward counts do not depend on the release and stay exact.
- :func:`unproven_step`: why a training step's saved tensors and kernels are unproven for a model (its
  release, or its device: only the CPU's facts are proven), ``()`` where they are proven.
- :func:`flop_counter`: what this release's ``FlopCounterMode`` counts, probed once on tiny tensors.
- :func:`install`: the release facts the core's training counts read, set for the running torch (called by
  ``import convcost.torch``): which shapes the CPU's fused attention kernel takes.

>>> release() in PROVEN or not is_proven()
True
>>> flop_counter().grouped_overcount   # every proven release counts a grouped weight gradient G times
True
"""

from __future__ import annotations

import functools
import re
import warnings

import torch

from convcost.torch.runtime.probe import FlopCounter, probe_flop_counter

#: each proven release (major, minor) and the build its oracle suites passed on (the README's test
#: command on 2.13.0; torch properties, training and the profile zoo sample on the others)
PROVEN = {(2, 13): "2.13.0", (2, 14): "2.14.1", (2, 15): "2.15.0"}

#: each proven release and the torchvision built against it (the ``vision`` extra's pairing)
TORCHVISION = {(2, 13): "0.28.0", (2, 14): "0.29.1", (2, 15): "0.29.2"}

#: devices whose saved tensors and kernels are proven (CUDA's cuDNN, attention kernels and allocator are not yet)
PROVEN_DEVICES = ("cpu", "meta")


class UnprovenReleaseWarning(UserWarning):
    """convcost runs on a torch release whose saved tensors and kernels it has not proven."""


def parse(version: str) -> tuple:
    """``(major, minor)`` of a torch version string.

    >>> parse("2.13.0+cpu"), parse("2.15.0a0+git1234"), parse("3.0")
    ((2, 13), (2, 15), (3, 0))
    """
    found = re.match(r"(\d+)\.(\d+)", str(version))
    if found is None:
        from convcost.errors import ConvcostError

        raise ConvcostError(f"torch version {version!r} does not start with major.minor")
    return int(found[1]), int(found[2])


@functools.cache
def version() -> str:
    """The running torch's version string, read once."""
    return str(torch.__version__)


@functools.cache
def release() -> tuple:
    """The running release, ``(major, minor)``."""
    return parse(version())


def is_proven() -> bool:
    """Whether the running release is one convcost proves."""
    return release() in PROVEN


def install() -> None:
    """Set the release facts the core's training counts read (``convcost.primitives.matmul.FLASH_RULE``) for
    the running torch: a release newer than the proven ones takes the newest proven one's."""
    from convcost.primitives import matmul

    matmul.FLASH_RULE = "2.13" if release() < (2, 14) else "2.14"


def _named(releases) -> str:
    return ", ".join(f"{a}.{b}" for a, b in releases)


_WARNED = []


def warn_if_unproven() -> None:
    """Warn once per process when the running release is not proven (called by ``import convcost.torch``)."""
    if is_proven() or _WARNED:
        return
    _WARNED.append(True)
    warnings.warn(f"convcost: torch {version()} is not a release convcost proves ({_named(PROVEN)}); forward "
                  "counts stay exact, but a training step's saved tensors and kernels are unproven on it",
                  UnprovenReleaseWarning, stacklevel=3)


def device_of(model) -> str:
    """The device type a model's parameters (else buffers) are on; ``"cpu"`` when it holds no tensor."""
    t = next(iter(model.parameters()), None)
    if t is None:
        t = next(iter(model.buffers()), None)
    return "cpu" if t is None else t.device.type


def unproven_step(device: str = "cpu") -> tuple:
    """Why a training step's saved tensors and kernel choices are unproven on ``device`` here, or ``()``.

    >>> unproven_step("cpu") == () if is_proven() else True
    True
    >>> unproven_step("cuda")[-1]
    "device cuda: its saved tensors and kernels are not proven (only the CPU's are); the CPU's are given"
    """
    why = []
    if not is_proven():
        why.append(f"torch {version()}: not a proven release ({_named(PROVEN)})")
    if device not in PROVEN_DEVICES:
        why.append(f"device {device}: its saved tensors and kernels are not proven (only the CPU's are); "
                   "the CPU's are given")
    return tuple(why)


@functools.cache
def flop_counter() -> FlopCounter:
    """Probe the running release's ``FlopCounterMode`` once, on tiny CPU tensors (microseconds)."""
    return probe_flop_counter()
