"""docs/benchmarks.md is written from the committed benchmark results, so its numbers are the runs' numbers."""

import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")  # benchmarks/plots.py, which docs.py takes its table from

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_benchmark_docs_are_current():
    written = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "docs.py")], capture_output=True, text=True,
                             check=True).stdout
    assert written == (ROOT / "docs" / "benchmarks.md").read_text(), (
        "regenerate: .venv/bin/python benchmarks/docs.py > docs/benchmarks.md")


def test_committed_kernel_scores_are_the_current_models(tmp_path):
    """The committed run, scored again by today's latency model, gives the scores the docs show."""
    import json
    import shutil

    committed = ROOT / "benchmarks" / "results" / "kernels-cpu.json"
    copy = tmp_path / "kernels-cpu.json"
    shutil.copy(committed, copy)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_kernels.py"), "--reanalyse", str(copy)],
                   capture_output=True, text=True, check=True)
    before = json.loads(committed.read_text())["analysis"]["scores"]
    after = json.loads(copy.read_text())["analysis"]["scores"]
    assert _close(after, before), (
        "rescore: .venv/bin/python benchmarks/bench_kernels.py --reanalyse benchmarks/results/kernels-cpu.json")


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return a == b
