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
* ``slow``: every test of the files that take most of the suite's time (training steps against PyTorch,
  LaTeX parsed back, the README's commands, the sdist). ``python -m pytest -m "not slow"`` is the quick
  selection for development; the whole suite (what CI runs) still runs them all.
"""

import importlib.util
import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("quick", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("CONVCOST_PROFILE", "quick"))

#: files whose tests are marked ``slow``, longest first (from a run with ``--durations``; each takes tens of
#: seconds, test_training.py minutes)
SLOW_FILES = ("test_training.py", "test_training_lstm.py", "test_profile_training.py", "test_derivation.py",
              "test_readme.py", "README.md", "test_profile_hard.py", "test_packaging.py")


def pytest_collection_modifyitems(config, items):
    # pytest-xdist hands out whole files (--dist loadfile: the README's commands build on each other in one
    # folder, in order); the longest files go first, so that no worker starts one of them last
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
    first = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: first.get(item.path.name, len(SLOW_FILES)))

def _import_torchvision() -> None:
    """Import torchvision once, where installed, with failing fake-op registrations skipped (the runtime's
    ``import_torchvision``)."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        return
    from convcost.torch.runtime.private import import_torchvision

    import_torchvision()


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
