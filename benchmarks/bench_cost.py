"""Speed of ``cost()``: bound costs against the same formulas in plain Python, and general forms.

For every named variant, on the tour's configuration (``convcost.tour.EXAMPLES``):

* **bound**: ``cost(Variant, **fields)`` with every field a number, against the
  hand-written plain-Python formula of ``benchmarks/plain_formulas.py`` (the same
  counts with bare ints and no checks; tests/test_plain_formulas.py proves they
  agree). Each is the fastest of several rounds of many calls (``timing.py``'s rule:
  interference only adds time). Target: within 100x.
* **general form**: ``cost(Variant, general=True)``, every field a symbol: the
  median of repeated calls in one process (target: 5 ms or less), and the first
  call in a fresh process, which also pays sympy's first deductions about the
  symbols (reported, no target).

Writes benchmarks/results/cost.json. Run: ``.venv/bin/python benchmarks/bench_cost.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from plain_formulas import PLAIN
from timing import best_of

RESULTS = Path(__file__).parent / "results" / "cost.json"
BOUND_TARGET, GENERAL_TARGET_S = 100, 0.005


def per_call(fn, calls: int, rounds: int) -> float:
    """Seconds per call: the fastest of ``rounds`` rounds of ``calls`` calls."""
    def round_():
        for _ in range(calls):
            fn()
    return best_of(rounds, round_) / calls


def first_general_call(name: str) -> float:
    """Seconds of ``cost(Variant, general=True)``, the first call of a fresh process (after the imports)."""
    code = ("import time, convcost; from convcost import cost, VARIANTS; cls = VARIANTS[%r]; "
            "t = time.perf_counter(); cost(cls, general=True); print(time.perf_counter() - t)" % name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per timing round")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (the fastest is kept)")
    parser.add_argument("--quick", action="store_true", help="few calls, no fresh processes (a smoke run)")
    args = parser.parse_args()
    calls, rounds = (20, 2) if args.quick else (args.calls, args.rounds)

    from convcost import VARIANTS, cost
    from convcost.tour import EXAMPLES

    rows = {}
    for name, cls in VARIANTS.items():
        if name not in PLAIN:
            print(f"{name}: no plain-Python formula to compare with", file=sys.stderr)
            continue
        fields = EXAMPLES[name]
        plain = PLAIN[name]
        bound = per_call(lambda: cost(cls, **fields), calls, rounds)
        baseline = per_call(lambda: plain(**fields), calls * 10, rounds)
        cost(cls, general=True)
        general = []
        for _ in range(rounds):
            start = time.perf_counter()
            cost(cls, general=True)
            general.append(time.perf_counter() - start)
        rows[name] = {
            "bound_s": bound, "plain_s": baseline, "ratio": bound / baseline,
            "general_repeated_s": statistics.median(general),
            "general_first_s": None if args.quick else first_general_call(name),
        }
        print(f"{name:20s} bound {1e6 * bound:7.1f} us  plain {1e6 * baseline:6.2f} us  "
              f"x{bound / baseline:5.1f}  general {1e3 * rows[name]['general_repeated_s']:6.2f} ms", file=sys.stderr)
    ratios = [r["ratio"] for r in rows.values()]
    generals = [r["general_repeated_s"] for r in rows.values()]
    data = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.2f}",
        "calls": calls, "rounds": rounds, "variants": rows,
        "worst_ratio": max(ratios), "median_ratio": statistics.median(ratios),
        "worst_general_s": max(generals),
        "bound_target": BOUND_TARGET, "general_target_s": GENERAL_TARGET_S,
        "meets_bound_target": max(ratios) <= BOUND_TARGET, "meets_general_target": max(generals) <= GENERAL_TARGET_S,
    }
    if not args.quick:
        RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(f"worst bound ratio {data['worst_ratio']:.1f}x (target {BOUND_TARGET}x), worst general form "
          f"{1e3 * data['worst_general_s']:.2f} ms (target {1e3 * GENERAL_TARGET_S:.0f} ms)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
