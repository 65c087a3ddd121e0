"""The kernel benchmark's quick run: every variant has a row (timed, or skipped with its reason), and nothing is
written into the checkout."""

import json
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_quick_kernel_benchmark_runs_for_every_variant(tmp_path):
    from convcost import VARIANTS

    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                            text=True).stdout
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_kernels.py"), "--quick", "--quiet",
                          "--out", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads((tmp_path / "kernels-cpu-quick.json").read_text())
    rows = data["rows"]
    assert {r["variant"] for r in rows} == set(VARIANTS)
    assert all(r["status"] == "ok" or r["reason"] for r in rows)
    assert sum(r["status"] == "ok" for r in rows) >= len(rows) * 0.9
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                           text=True).stdout
    assert after == before  # no results, caches or plots left in the checkout
