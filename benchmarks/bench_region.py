"""Region evaluation speed: vectorised BreakEven.region against a plain Python loop, in one run.

Both evaluate the same expression (seed 004's exact condition, StandardConv against
AsymmetricConv, params): the loop calls the same condition lambdified for the
``math`` module once per configuration. Target: >= 10 million configurations per
second for region(). Prints both rates and their ratio; writes benchmarks/results/region.json.

    .venv/bin/python benchmarks/bench_region.py
"""

from __future__ import annotations

import json
import pathlib
import platform

import numpy as np
import sympy
from timing import best_of

from convcost import AsymmetricConv, StandardConv, break_even

TARGET = 10_000_000


def main() -> dict:
    be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
    names = [s.name for s in be.variables]  # C, K, O
    ks = np.arange(1, 17, dtype=np.int64)
    cs = np.arange(1, 1025, dtype=np.int64)
    os_ = np.arange(1, 1025, dtype=np.int64)
    grids = {"K": ks[:, None, None], "C": cs[None, :, None], "O": os_[None, None, :]}
    n_vector = len(ks) * len(cs) * len(os_)
    region = be.region(**grids)  # warm up (lambdify happens once)
    vector_s = best_of(3, lambda: be.region(**grids))

    scalar = sympy.lambdify(be.variables, be.expression >= 0, modules="math")
    rng = np.random.default_rng(0)
    axes = {"K": ks, "C": cs, "O": os_}
    sample = [tuple(int(rng.choice(axes[n])) for n in names) for _ in range(200_000)]

    def loop():
        return [scalar(*point) for point in sample]

    loop_results = loop()
    loop_s = best_of(3, loop)
    # the two agree on the sampled points
    for point, got in zip(sample[:2000], loop_results[:2000]):
        at = dict(zip(names, point))
        assert bool(region[at["K"] - 1, at["C"] - 1, at["O"] - 1]) == bool(got)
    vector_rate = n_vector / vector_s
    loop_rate = len(sample) / loop_s
    result = {
        "expression": str(be.condition),
        "configurations_vectorised": n_vector,
        "configurations_loop": len(sample),
        "vectorised_per_s": round(vector_rate),
        "python_loop_per_s": round(loop_rate),
        "ratio": round(vector_rate / loop_rate, 1),
        "target_per_s": TARGET,
        "meets_target": vector_rate >= TARGET,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(f"region (numpy):      {vector_rate:,.0f} configurations/s  ({n_vector:,} in {vector_s:.3f} s)")
    print(f"plain Python loop:   {loop_rate:,.0f} configurations/s  ({len(sample):,} in {loop_s:.3f} s)")
    print(f"ratio:               {vector_rate / loop_rate:.1f}x   target {TARGET:,}/s: "
          f"{'met' if vector_rate >= TARGET else 'NOT met'}")
    out = pathlib.Path(__file__).parent / "results" / "region.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
