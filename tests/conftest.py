"""Shared test set-up.

* Hypothesis profiles: a quick default; ``CONVCOST_PROFILE=thorough`` for thousands of examples.
* Golden files (recorded output, under tests/golden and docs/): the ``golden`` fixture compares;
  ``CONVCOST_UPDATE_GOLDEN=1 python -m pytest`` rewrites them (the only flag that does).
* torchvision, where installed (the ``vision`` extra), is imported once here, before any test, with the fake-op
  registrations its C++ ops make skipped where this torch refuses them: torchvision 0.28.0 beside torch
  2.13.0's CPU build (constraints/torch-2.13-cpu.txt) registers ops this build lacks. Its models need none of
  them; timm imports torchvision, so the zoo tests of both libraries read models on any proven pairing.
* The fuzz tests (tests/test_fuzz*.py) set their own example counts per entry point from the same
  variable (tests/fuzzing.py ``examples``): a few hundred each when quick, over 100,000 calls in all
  when thorough.
"""

import importlib.util
import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("quick", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("CONVCOST_PROFILE", "quick"))



def _import_torchvision() -> None:
    """Import torchvision with every failing ``torch.library.register_fake`` made a no-op (a matching torch's
    registrations succeed, and nothing changes)."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        return
    import torch

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
        import torchvision  # noqa: F401
    finally:
        torch.library.register_fake = real


_import_torchvision()

#: the one flag that rewrites recorded output instead of comparing with it
UPDATE_FLAG = "CONVCOST_UPDATE_GOLDEN"


def check_golden(path, text: str) -> None:
    """``text`` must equal the file at ``path``; with CONVCOST_UPDATE_GOLDEN=1 the file is rewritten first."""
    path = pathlib.Path(path)
    how = f"if the change is intended, regenerate with {UPDATE_FLAG}=1 python -m pytest"
    if os.environ.get(UPDATE_FLAG) == "1":
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; {how}"
    assert text == path.read_text(), f"{path.name} differs from the recorded output; {how}"


@pytest.fixture
def golden():
    """``golden(path, text)``: compare ``text`` with a recorded file (see :func:`check_golden`)."""
    return check_golden
