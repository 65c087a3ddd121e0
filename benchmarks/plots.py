"""Plots and the Markdown table of a bench_kernels run.

    .venv/bin/python benchmarks/plots.py benchmarks/results/kernels-cpu.json

writes next to the JSON: ``<stem>-roofline.png`` (every measured row at its arithmetic
intensity and achieved GFLOP/s, under the calibrated roofs), ``<stem>-macs.png``
(MACs vs measured latency: equal MACs, very different times), ``<stem>-predicted.png``
(predicted vs measured latency on held-out rows, model and MACs-only) and
``<stem>-table.md`` (scores and every row), which docs/benchmarks.md includes.
"""

from __future__ import annotations

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

CLASS_COLOURS = {
    "dense_conv": "tab:blue",
    "pointwise_conv": "tab:cyan",
    "depthwise_conv": "tab:red",
    "grouped_conv": "tab:orange",
    "transposed_conv": "tab:purple",
    "conv3d": "tab:brown",
    "linear": "tab:pink",
    "elementwise": "tab:green",
    "data_movement": "tab:gray",
}
MARKERS = "os^vD<>ph*PX8dH"


def _ok(data):
    return [r for r in data["rows"] if r["status"] == "ok"]


def _variant_markers(rows):
    names = sorted({r["variant"] for r in rows})
    return {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(names)}


def roofline(data, path):
    rows = _ok(data)
    machine = data["calibrated_machine"]
    peak, bw = machine["peak_flops"] / 1e9, machine["bandwidth"] / 1e9
    fig, ax = plt.subplots(figsize=(9, 6))
    xs = np.logspace(-2, 3, 200)
    ax.plot(xs, np.minimum(peak, bw * xs), "k-", lw=2, label=f"roofline: {peak:.0f} GFLOP/s, {bw:.1f} GB/s")
    markers = _variant_markers(rows)
    for name, marker in markers.items():
        mine = [r for r in rows if r["variant"] == name and r["intensity"] > 0]
        if mine:
            ax.scatter([r["intensity"] for r in mine], [r["achieved_gflops"] for r in mine], marker=marker, s=28,
                       c=[CLASS_COLOURS[r["class"]] for r in mine], label=name, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved, convcost's memory_access)")
    ax.set_ylabel("achieved GFLOP/s (measured)")
    ax.set_title("Every variant on the roofline (colour: kernel class; pixel (un)shuffle moves 0 FLOPs, not shown)")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def macs_vs_latency(data, path):
    rows = [r for r in _ok(data) if r["macs"] > 0]
    fig, ax = plt.subplots(figsize=(9, 6))
    for cls, colour in CLASS_COLOURS.items():
        mine = [r for r in rows if r["class"] == cls]
        if mine:
            ax.scatter([r["macs"] for r in mine], [r["measured_s"] * 1e3 for r in mine], c=colour, s=20, label=cls,
                       alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs (convcost, exact)")
    ax.set_ylabel("measured latency (ms)")
    ax.set_title("MACs vs measured latency: depthwise and grouped layers sit far above the dense trend")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def predicted_vs_measured(data, path):
    rows = [r for r in _ok(data) if r["split"] == "test" and "predicted_fit_s" in r]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharex=True, sharey=True)
    scores = data.get("analysis", {}).get("scores", {}).get("held_out", {})
    for ax, key, label in ((axes[0], "predicted_fit_s", "model (refit on train)"),
                           (axes[1], "predicted_macs_only_s", "MACs only (refit on train)")):
        for cls, colour in CLASS_COLOURS.items():
            mine = [r for r in rows if r["class"] == cls]
            if mine:
                ax.scatter([r["measured_s"] * 1e3 for r in mine], [r[key] * 1e3 for r in mine], c=colour, s=18,
                           label=cls, alpha=0.8)
        values = [r["measured_s"] * 1e3 for r in rows] + [r[key] * 1e3 for r in rows]
        lo, hi = min(values) / 1.5, max(values) * 1.5
        ax.plot([lo, hi], [lo, hi], "k-", lw=1)
        ax.plot([lo, hi], [lo * 1.25, hi * 1.25], "k:", lw=0.8)
        ax.plot([lo, hi], [lo / 1.25, hi / 1.25], "k:", lw=0.8)
        s = scores.get(label, {})
        title = label if not s else f"{label}\nSpearman {s['spearman']:.3f}, MdAPE {s['mdape_percent']:.1f}% (held out)"
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("measured latency (ms)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("predicted latency (ms)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(data) -> str:
    lines = []
    analysis = data.get("analysis", {})
    if "scores" in analysis:
        lines += ["| predictor | rows | Spearman | MdAPE |", "|---|---:|---:|---:|"]
        for part in ("held_out", "train"):
            for label, s in analysis["scores"][part].items():
                lines.append(f"| {label}, {part.replace('_', '-')} | {s['rows']} | {s['spearman']:.3f} | "
                             f"{s['mdape_percent']:.1f}% |")
        lines += ["", "Held-out MdAPE per class:", "",
                  "| class | rows | model (refit) | model (calibrate only) | MACs only |",
                  "|---|---:|---:|---:|---:|"]
        per = analysis["scores"]["per_class_held_out"]
        for cls, s in per["model (refit on train)"].items():
            if s["mdape_percent"] is None:
                continue
            cal, macs = per["model (calibrate only)"][cls], per["MACs only (refit on train)"][cls]
            lines.append(f"| {cls} | {s['rows']} | {s['mdape_percent']:.1f}% | {cal['mdape_percent']:.1f}% | "
                         f"{macs['mdape_percent']:.1f}% |")
        fitted = analysis["fitted_machine"]
        lines += ["", "Efficiency factors refit on the train rows (fraction of the roofline reached; overhead "
                  f"{fitted['overhead'] * 1e6:.1f} us per kernel):", "",
                  "| " + " | ".join(fitted["efficiency"]) + " |", "|" + "---:|" * len(fitted["efficiency"]),
                  "| " + " | ".join(f"{v:.2f}" for v in fitted["efficiency"].values()) + " |", ""]
    lines += ["| variant | N | C | H | split | class | bound | FLOP/byte | MFLOP | measured ms | GFLOP/s | "
              "predicted ms | MACs-only ms |", "|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in data["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['variant']} | {r['N']} | {r['C']} | {r['H']} | {r['split']} | | | | | skipped: "
                         f"{r['reason']} | | | |")
            continue
        lines.append(
            f"| {r['variant']} | {r['N']} | {r['C']} | {r['H']} | {r['split']} | {r['class']} | {r['bound']} | "
            f"{r['intensity']:.1f} | {r['flops'] / 1e6:.1f} | {r['measured_s'] * 1e3:.3f} | "
            f"{r['achieved_gflops']:.1f} | "
            f"{r.get('predicted_fit_s', float('nan')) * 1e3:.3f} | "
            f"{r.get('predicted_macs_only_s', float('nan')) * 1e3:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: plots.py RESULTS.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        data = json.load(f)
    stem = os.path.splitext(argv[0])[0]
    roofline(data, stem + "-roofline.png")
    macs_vs_latency(data, stem + "-macs.png")
    predicted_vs_measured(data, stem + "-predicted.png")
    with open(stem + "-table.md", "w", encoding="utf-8") as f:
        f.write(table(data))
    print(f"wrote {stem}-roofline.png, {stem}-macs.png, {stem}-predicted.png, {stem}-table.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
