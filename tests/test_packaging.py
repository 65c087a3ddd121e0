"""Packaging: the license, the typing marker, one version, the extras, an sdist whose tests pass, and a
project that cites nothing outside itself."""

import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the checks below read pyproject.toml
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_license_file_is_mit_and_matches_pyproject():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the convcost developers" in text
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]


def test_py_typed_ships_as_package_data():
    assert (ROOT / "convcost" / "py.typed").exists()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["convcost"]


def test_the_version_is_written_once():
    import convcost

    assert not re.search(r"__version__\s*=\s*['\"]", (ROOT / "convcost" / "__init__.py").read_text())
    try:
        installed = importlib.metadata.version("convcost")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("convcost is not installed (pip install -e .)")
    assert convcost.__version__ == installed == PROJECT["version"]


def test_extras_and_the_packages_convcost_names_in_its_messages():
    from convcost.extras import EXTRAS

    extras = PROJECT["optional-dependencies"]
    assert set(extras) == {*EXTRAS, "dev"}
    names = {extra: {re.split(r"[=<>\[ ;]", req)[0] for req in reqs} for extra, reqs in extras.items()}
    for extra, packages in EXTRAS.items():
        assert set(packages) <= names[extra], extra
    assert "convcost[torch,testing,plot,peers,vision]" in extras["dev"] and "pytest" in names["dev"]
    assert any(dep.startswith("platformdirs") for dep in PROJECT["dependencies"])


def test_every_extra_that_brings_torch_accepts_every_proven_release():
    """A range, never a pin: an environment that holds a proven torch keeps it (the constraints files pick a
    build for a fresh install)."""
    from packaging.requirements import Requirement

    from convcost.torch.runtime import PROVEN

    extras = PROJECT["optional-dependencies"]
    torches = {Requirement(r).specifier for reqs in extras.values() for r in reqs if Requirement(r).name == "torch"}
    assert len(torches) == 1, torches  # one range, written alike in every extra
    (spec,) = torches
    assert all(spec.contains(build) for build in PROVEN.values())
    assert not spec.contains("2.12.0") and not spec.contains(f"2.{max(PROVEN)[1] + 1}.0")


def test_each_proven_release_has_a_constraints_file_pairing_its_torchvision():
    from packaging.requirements import Requirement

    from convcost.torch.runtime import PROVEN, TORCHVISION

    files = {"2.13": "torch-2.13-cpu.txt", "2.14": "torch-2.14.txt", "2.15": "torch-2.15.txt"}
    vision = [Requirement(r) for r in PROJECT["optional-dependencies"]["vision"]]
    for (major, minor), build in PROVEN.items():
        lines = (ROOT / "constraints" / files[f"{major}.{minor}"]).read_text().splitlines()
        pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
        assert pins["torch"] == build and pins["torchvision"] == TORCHVISION[major, minor]
        for req in vision:  # every pin lies in the extra's range
            assert req.specifier.contains(pins[req.name]), (req, pins[req.name])
    readme = (ROOT / "README.md").read_text()
    assert all(f"torchvision {v}" in readme for v in TORCHVISION.values())


def test_ci_installs_the_dev_extra_through_the_constraints_so_the_peer_tools_run_live():
    run = (ROOT / ".ci" / "run").read_text()
    assert "'.[torch,dev]' -c constraints/torch-2.13-cpu.txt" in run
    assert "'.[torch,dev]' -c constraints/torch-2.13-cpu.txt" in (ROOT / "README.md").read_text()
    assert "constraints/torch-2.14.txt" in run  # the second release CI proves


def _project_text_files():
    skip = {".git", ".venv", "build", "dist", "__pycache__", ".hypothesis"}
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and not parts & skip and not any(p.endswith(".egg-info") for p in parts):
            if path.suffix in (".py", ".md", ".toml", ".in", ".cfg", ".txt", ".tex") or path.name == "run":
                yield path


def test_nothing_cites_a_path_outside_the_project():
    outside = re.compile("|".join(re.escape(p) for p in ("/" + "work/", "../" + "shared", "/" + "root/",
                                                          "PEERS" + ".md")))
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in _project_text_files()
             for m in [outside.search(p.read_text(errors="replace"))] if m]
    assert not found


def test_golden_files_have_one_update_flag():
    flags = set()
    for path in (ROOT / "tests").glob("*.py"):
        flags |= set(re.findall(r"CONVCOST_\w*GOLDEN\w*", path.read_text()))
    assert flags == {"CONVCOST_UPDATE_GOLDEN"}
    assert "CONVCOST_UPDATE_GOLDEN=1" in (ROOT / "README.md").read_text()


def test_sdist_carries_its_tests_golden_files_and_docs(tmp_path):
    pytest.importorskip("build", reason="the build package (in the dev extra) makes the sdist")
    try:
        if int(importlib.metadata.version("setuptools").split(".")[0]) < 77:
            pytest.skip("building needs setuptools >= 77 in this environment")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("building needs setuptools in this environment")
    if not (ROOT / "pyproject.toml").exists() or not (ROOT / "MANIFEST.in").exists():
        pytest.fail("MANIFEST.in is missing")
    run = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path),
                          str(ROOT)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    (sdist,) = tmp_path.glob("convcost-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = {"LICENSE", "README.md", "MANIFEST.in", ".ci/run", "convcost/py.typed", "tests/conftest.py"}
    needed |= {str(p.relative_to(ROOT)) for p in (ROOT / "constraints").glob("*.txt")}
    needed |= {str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "golden").iterdir()}
    needed |= {str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")}
    needed |= {str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")}
    needed |= {str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("*.py")}
    assert not needed - members, sorted(needed - members)
    assert not any(name.endswith((".pyc", ".tmp")) for name in members)
