"""Time the real kernels of every named variant and test convcost's latency model against them.

    .venv/bin/python benchmarks/bench_kernels.py --out benchmarks/results  # full grid, CPU (+ CUDA when present)
    .venv/bin/python benchmarks/bench_kernels.py --quick    # CI smoke run, under a minute

For every variant in ``convcost.VARIANTS`` and every shape of the grid (channels
16-512 paired with spatial sizes 224-7 as in a CNN's stages, batch 1 and 32), the
module ``convcost.torch.to_torch`` builds is timed with ``torch.utils.benchmark``
(two warm-up calls, ``blocked_autorange``, a fixed thread count, eval mode,
``inference_mode``), in two passes over the whole grid (``--passes``): a row's
latency is its fastest pass, and the passes' median difference is reported as
the measurement's noise floor. Each row records the measured latency, achieved GFLOP/s,
bytes moved, arithmetic intensity, roofline bound and the latency predicted by
``convcost.latency`` from the machine ``convcost.torch.calibrate`` measured.

Rows are appended to ``<--out>/kernels-<device>[-quick].csv`` (``--out``: a new temporary folder unless
given; ``--out benchmarks/results`` for the committed run) as they are
measured, so a failure loses nothing already measured; a row that cannot run
(over the FLOP budget, too large for memory, out of memory) is written as
``status=skipped`` with its reason. At the end the efficiency factors are refit on
the *train* half of the grid (stages 0, 2, 4: 224/16, 56/64, 14/256 for batch 1 and 32)
and the model and a MACs-only predictor (``seconds = a * FLOPs + b``, fitted the same
way) are scored on the *held-out* half (stages 1, 3, 5): Spearman rank correlation
and median absolute percentage error, overall and per layer class. The CSV is then
rewritten with those predictions, and ``kernels-<device>[-quick].json`` holds rows,
machine description and scores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

import torch

from convcost import VARIANTS
from convcost.errors import ConvcostError
from convcost.latency import Machine, fit, nnls, predict_latency
from convcost.torch.calibration import calibrate, check_device, describe, time_layer

#: (channels, spatial size) of the stages of a typical ImageNet CNN
STAGES = ((16, 224), (32, 112), (64, 56), (128, 28), (256, 14), (512, 7))
QUICK_STAGES = ((16, 28), (64, 14))
BATCHES = (1, 32)
QUICK_BATCHES = (1,)
TRAIN_STAGES = {0, 2, 4}  # held out: 1, 3, 5 (quick: train 0; held out 1)


#: the layer fields of the variants whose defaults leave more than C (and O) to give, at a stage of c channels
_FIELDS = {
    "StandardConv": lambda c: dict(C=c, O=c, K=3, P=1),
    "DepthwiseConv": lambda c: dict(C=c, K=3, P=1),
    "SeparableConv": lambda c: dict(C=c, O=c, K=3, P=1),
    "GroupedConv": lambda c: dict(C=c, O=c, K=3, P=1, G=8),
    "ShuffleGroupedConv": lambda c: dict(C=c, O=c, K=1, G=8),
    "DilatedConv": lambda c: dict(C=c, O=c, K=3, D=2, P=2),
    "AsymmetricConv": lambda c: dict(C=c, O=c, K=3, P=1),
    "FactorizedConv": lambda c: dict(C=c, O=c, K=5, P="same"),
    "TransposedConv": lambda c: dict(C=c, O=c // 2, K=2, S=2),
    "Conv3d": lambda c: dict(C=c, O=c, K=3, P=1),
    "SpaceToDepth": lambda c: dict(C=c, r=2),
    "DepthToSpace": lambda c: dict(C=c, r=2),
    "FireModule": lambda c: dict(C=c, s=c // 8, e=c // 2),
    "SqueezeExcitation": lambda c: dict(C=c, r=16),
    "InvertedResidual": lambda c: dict(C=c, O=c, t=6),
    "InceptionBlock": lambda c: dict(C=c, O=c // 4),
    "Involution": lambda c: dict(C=c, K=7, r=4, group_channels=16),
}


def variant_fields(name: str, c: int) -> dict:
    """The layer fields of variant ``name`` at a stage of ``c`` channels: O = C where it has an O, and each
    variant's own defaults for the rest (a variant added later needs no entry to run)."""
    if name in _FIELDS:
        return _FIELDS[name](c)
    names = {f.name for f in dataclasses.fields(VARIANTS[name])}
    return {"C": c, **({"O": c} if "O" in names else {})}


def grid(quick: bool) -> list:
    """``(stage index, variant name, layer fields, input fields)`` of every row, in the order they run."""
    rows = []
    for batch in QUICK_BATCHES if quick else BATCHES:
        for index, (c, h) in enumerate(QUICK_STAGES if quick else STAGES):
            for name in VARIANTS:
                size = dict(N=batch, H=h, W=h)
                if name == "Conv3d":  # 4 frames of a quarter-size image keep 3-D rows comparable
                    size.update(T=4, H=max(h // 2, 4), W=max(h // 2, 4))
                rows.append((index, name, variant_fields(name, c), size))
    return rows


def row_class(kernels) -> str:
    """The class a row is scored in: depthwise or grouped if any kernel is, else its slowest kernel's kind."""
    kinds = {k.kind for k in kernels}
    for special in ("depthwise_conv", "grouped_conv"):
        if special in kinds:
            return special
    return max(kernels, key=lambda k: max(k.compute_seconds, k.memory_seconds)).kind


COLUMNS = (
    "device", "variant", "class", "split", "stage", "N", "C", "H", "W", "T", "fields", "status", "reason",
    "macs", "flops", "bytes", "intensity", "kernels", "bound", "roofline_s", "predicted_calibrated_s",
    "measured_s", "achieved_gflops", "pass_spread", "predicted_fit_s", "predicted_macs_only_s",
)


class Results:
    """Rows written to CSV as they come (flushed), and to JSON with the machine at every step."""

    def __init__(self, stem: str, header: dict):
        self.csv_path, self.json_path = stem + ".csv", stem + ".json"
        self.header, self.rows = header, []
        os.makedirs(os.path.dirname(stem), exist_ok=True)
        self._csv = open(self.csv_path, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, COLUMNS, extrasaction="ignore")
        self._writer.writeheader()
        self._csv.flush()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self._writer.writerow(row)
        self._csv.flush()
        self.write_json()

    def write_json(self, extra: dict | None = None) -> None:
        if extra:
            self.header.update(extra)
        _atomic_write(self.json_path,
                      json.dumps({**self.header, "rows": self.rows}, indent=1, default=_jsonable) + "\n")

    def rewrite_csv(self) -> None:
        self._csv.close()
        tmp = self.csv_path + ".tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.csv_path)


def _atomic_write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _memory_available() -> int:
    """Bytes of memory still available (Linux /proc/meminfo; 8 GiB when unknown)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def measure_row(device, machine, threads, min_run_time, max_gflop, stage, name, fields, size, split) -> dict:
    """One row of results; a row that cannot be measured comes back with status 'skipped' and the reason."""
    row = {"device": device, "variant": name, "split": split, "stage": stage, "C": fields["C"], "T": size.get("T", ""),
           "N": size["N"], "H": size["H"], "W": size["W"], "fields": json.dumps(fields), "status": "ok", "reason": ""}
    try:
        spec = VARIANTS[name](**fields, **size)
        c = spec.cost()
        est = predict_latency(c, machine)
        row.update(
            macs=int(c.macs), flops=est.flops, bytes=est.bytes, intensity=est.intensity, kernels=est.kernel_count,
            bound=est.bound, roofline_s=est.roofline_seconds, predicted_calibrated_s=est.seconds,
            **{"class": row_class(est.kernels)},
        )
        if est.flops > max_gflop * 1e9:
            return {**row, "status": "skipped",
                    "reason": f"{est.flops / 1e9:.1f} GFLOP is over the per-row budget --max-gflop={max_gflop}"}
        # every output is kept alive by a forward pass at worst: activation elements + input + weights
        needed = 4 * int(c.activation_elements + c.params + math.prod(int(s) for s in c.input_shape))
        if device == "cpu" and needed > 0.5 * _memory_available():
            return {**row, "status": "skipped",
                    "reason": f"needs ~{needed / 2**30:.1f} GiB, over half the available memory"}
        seconds = time_layer(spec, c.input_shape, device=device, threads=threads, min_run_time=min_run_time)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        return {**row, "status": "skipped", "reason": f"out of memory: {str(exc).splitlines()[0][:160]}"}
    except RuntimeError as exc:  # torch reports a failed allocation as a RuntimeError
        return {**row, "status": "skipped", "reason": f"torch error: {str(exc).splitlines()[0][:160]}"}
    except ConvcostError as exc:
        return {**row, "status": "skipped", "reason": f"invalid configuration: {exc}"}
    except Exception as exc:  # noqa: BLE001 - a module torch cannot build or run here: listed, never dropped
        return {**row, "status": "skipped", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
    return {**row, "measured_s": seconds, "achieved_gflops": row["flops"] / seconds / 1e9, "passes_s": [seconds]}


def remeasure(row: dict, device: str, threads: int, min_run_time: float) -> None:
    """Time a measured row once more; its latency becomes the fastest pass (interference only adds time)."""
    spec = VARIANTS[row["variant"]](**json.loads(row["fields"]), **_size(row))
    row["passes_s"].append(time_layer(spec, spec.cost().input_shape, device=device, threads=threads,
                                      min_run_time=min_run_time))
    row["measured_s"] = min(row["passes_s"])
    row["achieved_gflops"] = row["flops"] / row["measured_s"] / 1e9
    row["pass_spread"] = max(row["passes_s"]) / min(row["passes_s"]) - 1


def repeatability(rows) -> float | None:
    """Median relative difference between the first two passes of a row, in percent: the noise floor."""
    spreads = [abs(r["passes_s"][1] / r["passes_s"][0] - 1) for r in rows if len(r.get("passes_s", ())) > 1]
    return float(np.median(spreads) * 100) if spreads else None


# -- scoring -------------------------------------------------------------------------------------
def spearman(a, b) -> float | None:
    """Spearman rank correlation (average ranks for ties); None where one side is constant (no ranking)."""
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(values) -> np.ndarray:
    values = np.asarray(values, float)
    order = values.argsort()
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for v in np.unique(values):  # ties share their mean rank
        tie = values == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def mdape(predicted, measured) -> float:
    """Median absolute percentage error, in percent."""
    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    return float(np.median(np.abs(predicted - measured) / measured) * 100)


def fit_macs_only(rows) -> tuple:
    """``(seconds per FLOP, seconds per call)`` fitted like the model: NNLS on relative errors."""
    y = np.array([r["measured_s"] for r in rows])
    design = np.array([[r["flops"], 1.0] for r in rows]) / y[:, None]
    a, b = nnls(design, np.ones_like(y))
    return float(a), float(b)


def score(rows, key: str) -> dict:
    measured = [r["measured_s"] for r in rows]
    predicted = [r[key] for r in rows]
    if len(rows) < 2:
        return {"rows": len(rows), "spearman": None, "mdape_percent": None}
    return {"rows": len(rows), "spearman": spearman(predicted, measured), "mdape_percent": mdape(predicted, measured)}


def analyse(results: Results, machine: Machine) -> dict:
    ok = [r for r in results.rows if r["status"] == "ok"]
    train = [r for r in ok if r["split"] == "train"]
    test = [r for r in ok if r["split"] == "test"]
    if not train or not test:
        return {"error": "not enough measured rows to fit and score"}
    specs = {id(r): VARIANTS[r["variant"]](**json.loads(r["fields"]), **_size(r)) for r in ok}
    fitted = fit(machine, [(specs[id(r)], r["measured_s"]) for r in train],
                 fitted_from=f"{machine.fitted_from}; refit on {len(train)} train rows of bench_kernels")
    a, b = fit_macs_only(train)
    for r in ok:
        r["predicted_fit_s"] = predict_latency(specs[id(r)], fitted).seconds
        r["predicted_macs_only_s"] = a * r["flops"] + b
    # ablation: the same refit without the fresh-memory term, to show what that term is worth here
    plain = machine.replace(alloc_threshold=0.0, alloc_bandwidth=0.0)
    plain_fit = fit(plain, [(specs[id(r)], r["measured_s"]) for r in train])
    plain_held = [predict_latency(specs[id(r)], plain_fit).seconds for r in test]
    ablation = {"model without the fresh-memory term (refit on train)": {
        "rows": len(test), "spearman": spearman(plain_held, [r["measured_s"] for r in test]),
        "mdape_percent": mdape(plain_held, [r["measured_s"] for r in test])}}
    models = {"model (refit on train)": "predicted_fit_s", "model (calibrate only)": "predicted_calibrated_s",
              "MACs only (refit on train)": "predicted_macs_only_s"}
    scores = {"held_out": {}, "train": {}, "per_class_held_out": {}}
    for label, key in models.items():
        scores["held_out"][label] = score(test, key)
        scores["train"][label] = score(train, key)
        scores["per_class_held_out"][label] = {
            cls: score([r for r in test if r["class"] == cls], key) for cls in sorted({r["class"] for r in test})
        }
    return {"fitted_machine": fitted.as_dict(), "macs_only": {"seconds_per_flop": a, "seconds_per_call": b},
            "repeatability_percent": repeatability(ok), "ablation_held_out": ablation,
            "split": "train: stages %s, held out: the others (every variant and batch in both)" % sorted(TRAIN_STAGES),
            "scores": scores,
            "targets": {"spearman_min": 0.9, "mdape_max_percent": 25.0}}


def _size(r) -> dict:
    size = {"N": r["N"], "H": r["H"], "W": r["W"]}
    if r["T"] != "":
        size["T"] = r["T"]
    return size


def report(analysis: dict) -> str:
    if "error" in analysis:
        return analysis["error"]
    lines = []
    for part in ("held_out", "train"):
        lines.append(f"{part.replace('_', '-')} rows:")
        for label, s in analysis["scores"][part].items():
            lines.append(f"  {label:28s} n={s['rows']:3d}  Spearman {s['spearman']:.3f}  MdAPE "
                         f"{s['mdape_percent']:6.1f}%")
    for label, s in analysis.get("ablation_held_out", {}).items():
        lines.append(f"ablation, held-out: {label}: Spearman {s['spearman']:.3f}  MdAPE {s['mdape_percent']:.1f}%")
    if analysis.get("repeatability_percent") is not None:
        lines.append(f"measurement repeatability: the two passes of a row differ by "
                     f"{analysis['repeatability_percent']:.1f}% "
                     "(median); each row's latency is its fastest pass")
    lines.append("held-out MdAPE per class (model refit | MACs only):")
    per = analysis["scores"]["per_class_held_out"]
    for cls, s in per["model (refit on train)"].items():
        m = per["MACs only (refit on train)"][cls]
        if s["mdape_percent"] is not None:
            lines.append(f"  {cls:16s} n={s['rows']:3d}  {s['mdape_percent']:6.1f}% | {m['mdape_percent']:6.1f}%")
    held = analysis["scores"]["held_out"]["model (refit on train)"]
    t = analysis["targets"]
    lines.append(f"targets: Spearman >= {t['spearman_min']} -> "
                 f"{'met' if held['spearman'] >= t['spearman_min'] else 'MISSED'}; "
                 f"MdAPE <= {t['mdape_max_percent']}% -> "
                 f"{'met' if held['mdape_percent'] <= t['mdape_max_percent'] else 'MISSED'}")
    return "\n".join(lines)


def run_device(device: str, args) -> None:
    check_device(device)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    machine = calibrate(device, threads=args.threads, cache=not args.recalibrate, quiet=args.quiet, quick=args.quick,
                        **({"passes": 1, "min_run_time": 0.002} if args.quick else {}))
    progress = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    stem = os.path.join(args.out, f"kernels-{device.replace(':', '')}{'-quick' if args.quick else ''}")
    results = Results(stem, {"machine": describe(device, args.threads), "calibrated_machine": machine.as_dict(),
                             "quick": args.quick, "min_run_time": args.min_run_time, "max_gflop": args.max_gflop,
                             "shared_machine": args.shared, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"{device}: {machine.name}: peak {machine.peak_flops / 1e9:.1f} GFLOP/s, bandwidth "
          f"{machine.bandwidth / 1e9:.1f} GB/s")
    rows = grid(args.quick)
    for i, (stage, name, fields, size) in enumerate(rows):
        split = "train" if stage in TRAIN_STAGES else "test"
        row = measure_row(device, machine, args.threads, args.min_run_time, args.max_gflop, stage, name, fields, size,
                          split)
        results.add(row)
        shown = f"{row['measured_s'] * 1e3:9.3f} ms" if row["status"] == "ok" else f"skipped: {row['reason']}"
        progress(f"[{i + 1:3d}/{len(rows)}] {name:18s} N={size['N']:<2d} C={fields['C']:<3d} H={size['H']:<3d} {shown}")
    measured = [r for r in results.rows if r["status"] == "ok"]
    for n in range(2, args.passes + 1):  # later passes, in the same order: a slow moment hits one pass only
        for i, row in enumerate(measured):
            try:
                remeasure(row, device, args.threads, args.min_run_time)
            except (MemoryError, RuntimeError) as exc:  # keep the earlier passes
                row["reason"] = f"pass {n} failed: {str(exc).splitlines()[0][:160]}"
            progress(f"pass {n} [{i + 1:3d}/{len(measured)}] {row['variant']:18s} N={row['N']:<2d} C={row['C']:<3d} "
                     f"H={row['H']:<3d} {row['passes_s'][-1] * 1e3:9.3f} ms")
            results.write_json()
    analysis = analyse(results, machine)
    results.write_json({"analysis": analysis, "seconds": time.perf_counter() - started})
    results.rewrite_csv()
    print(report(analysis))
    print(f"wrote {results.csv_path} and {results.json_path} in {time.perf_counter() - started:.0f} s")


def reanalyse(path: str) -> int:
    """Score a results JSON again (after a change to the model), rewriting it and its CSV; nothing is timed."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    results = Results.__new__(Results)
    results.csv_path, results.json_path = os.path.splitext(path)[0] + ".csv", path
    results.rows = data.pop("rows")
    results.header = data
    machine = Machine.from_dict(data["calibrated_machine"])
    for r in results.rows:
        if r["status"] == "ok":
            r["predicted_calibrated_s"] = predict_latency(VARIANTS[r["variant"]](**json.loads(r["fields"]), **_size(r)),
                                                          machine).seconds
    analysis = analyse(results, machine)
    results.write_json({"analysis": analysis})
    results._csv = open(os.devnull, "w")  # rewrite_csv closes the stream a live run writes to
    results.rewrite_csv()
    print(report(analysis))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid, short timings: a CI smoke run under a minute")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cpu, and cuda when present)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed for every timing)")
    parser.add_argument("--out", default=None, help="folder for the CSV and JSON (default: a new temporary folder; "
                        "benchmarks/results holds the committed run)")
    parser.add_argument("--min-run-time", type=float, default=None, help="seconds per blocked_autorange")
    parser.add_argument("--max-gflop", type=float, default=10.0, help="rows over this many GFLOP are skipped")
    parser.add_argument("--recalibrate", action="store_true", help="ignore the cached calibration")
    parser.add_argument("--reanalyse", metavar="RESULTS_JSON", help="score an earlier run's rows again, timing nothing")
    parser.add_argument("--passes", type=int, default=None,
                        help="times each row is measured, the grid over again each time; the fastest counts "
                             "(default 2, --quick 1)")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the machine")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr (the report still goes to stdout)")
    args = parser.parse_args(argv)
    if args.reanalyse:
        return reanalyse(args.reanalyse)
    if args.out is None:  # nothing is left in the checkout unless asked
        args.out = tempfile.mkdtemp(prefix="convcost-kernels-")
    if args.min_run_time is None:
        args.min_run_time = 0.02 if args.quick else 0.1
    if args.passes is None:
        args.passes = 1 if args.quick else 2
    if args.passes < 1:
        parser.error(f"--passes {args.passes}: must be at least 1")
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    try:
        for device in devices:
            run_device(device, args)
    except ConvcostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
