"""The README's shell commands run, as a newcomer would type them (its Python blocks run as doctests).

Every command of every ```bash block of README.md runs, in README order, in one temporary folder that
holds a copy of benchmarks/ and docs/; ``convcost``, ``python``, ``python3`` and ``.venv/bin/...`` there
are this test run's interpreter with this checkout's convcost. The set-up steps of a ``&&`` chain
(``python3 -m venv``, ``pip install``) are what the environment running these tests already did (CI does
them for real in .ci/run, with the README's own command); the rest of the chain runs. Slow commands (the
full benchmark and calibration) run only with CONVCOST_SLOW=1.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: the segments of a chain that set an environment up: the one running these tests did them
SETUP = re.compile(r"^(python3? -m venv \S+|\S*pip install .*)$")
#: a command that is this test suite itself (the second quick-start command)
THE_SUITE = re.compile(r"^\S*python3? -m pytest$")
#: minutes, not seconds: opt in with CONVCOST_SLOW=1
SLOW = (re.compile(r"bench_kernels\.py(?!.*--reanalyse)(?!.*--quick)"), re.compile(r"^convcost calibrate(?!.*--quick)"),
        re.compile(r"bench_kernels\.py --quick"), re.compile(r"bench_profile\.py"), re.compile(r"bench_region\.py"),
        re.compile(r"bench_latency\.py"))
NEEDS = {"profile": "torch", "calibrate": "torch", "--plot": "matplotlib", "plots.py": "matplotlib",
         "docs.py": "matplotlib", "bench_": "torch"}


def bash_commands(text: str) -> list:
    """Every command line of the ```bash blocks, in order (comments and blank lines dropped)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip())
    return out


def runnable(command: str) -> str | None:
    """The part of ``command`` to run here: the chain without its set-up steps (None: nothing is left)."""
    kept = [part.strip() for part in command.split(" && ") if not SETUP.match(_code(part).strip())]
    kept = [part for part in kept if not THE_SUITE.match(_code(part).strip())]
    return " && ".join(kept) or None


def _code(command: str) -> str:
    """The command without a trailing comment (``#`` after two spaces, as the README writes them)."""
    return re.split(r"\s{2,}#", command)[0]


COMMANDS = bash_commands(README.read_text())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder like a clone: benchmarks/ and docs/ copied, and a bin/ of stand-ins for this interpreter."""
    here = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "benchmarks", here / "benchmarks")
    shutil.copytree(ROOT / "docs", here / "docs")
    for bin_dir in (here / "bin", here / ".venv" / "bin"):
        bin_dir.mkdir(parents=True)
        for name, line in (("python", f'exec "{sys.executable}" "$@"'), ("python3", f'exec "{sys.executable}" "$@"'),
                           ("convcost", f'exec "{sys.executable}" -m convcost "$@"')):
            (bin_dir / name).write_text(f"#!/bin/sh\n{line}\n")
            (bin_dir / name).chmod(0o755)
    return here


def test_readme_has_the_two_quick_start_commands_and_ci_runs_the_second():
    quick = COMMANDS[:2]
    assert quick[0].endswith("convcost tour") and quick[1].endswith("python -m pytest")
    assert quick[1] in (ROOT / ".ci" / "run").read_text()  # CI runs what the README tells a newcomer
    assert runnable(quick[0]) == ".venv/bin/convcost tour" and runnable(quick[1]) is None


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, folder):
    code = runnable(command)
    if code is None:
        pytest.skip("set-up and the test suite itself: what is running now")
    if any(p.search(code) for p in SLOW) and os.environ.get("CONVCOST_SLOW") != "1":
        pytest.skip("slow (minutes): run with CONVCOST_SLOW=1")
    for word, module in NEEDS.items():
        if word in code:
            pytest.importorskip(module)
    env = dict(os.environ, PATH=f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(folder / "cache"), MPLBACKEND="Agg")
    run = subprocess.run(["bash", "-c", f"set -eo pipefail; {code}"], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=1800)
    assert run.returncode == 0, f"{command}\nstdout:\n{run.stdout[-2000:]}\nstderr:\n{run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr
