"""Whole-model latency, predicted from the profile and timed, on a zoo of torchvision and timm models, in one run.

    python benchmarks/bench_latency.py                    # the zoo, every setting; writes --out (a temp dir)
    python benchmarks/bench_latency.py --out benchmarks/results --models resnet18,mobilenet_v2
    python benchmarks/bench_latency.py --noise resnet18   # the machine's noise floor: one model timed again and again

Run in a venv holding torch, and torchvision and timm installed with ``--no-deps`` (torchvision 0.28 imports
against torch 2.13 through ``zoo_agreement.import_torchvision``). In one process, for each thread count (one, and
every core): the machine is calibrated afresh (``convcost.torch.calibration.measure``: micro-benchmarks of single
kernels and a few small synthetic networks of ordinary layers, ``convcost.torch.networks``, never a zoo model),
then every model is profiled, predicted and timed at batch 1 and a larger batch at
224x224 (inference: eval mode, ``torch.inference_mode``), and one training step (forward, backward, SGD with
momentum) at a small batch. A timing is the fastest of ``--repeats`` calls after a warm-up call, the models
interleaved (each round times every model once), so a busy moment of the machine spoils one call of each; oneDNN's
cache of compiled convolutions holds the whole zoo's (``PRIMITIVE_CACHE``), so that interleaving recompiles none.

Beside the model, two predictors fitted on the same calibration kernels: MACs only (``seconds = a x MACs``,
least squares on relative error) and the plain roofline (every kernel ``max(FLOPs / peak, bytes / bandwidth)``
at the measured peak and bandwidth, no fitted factor). Scores per setting: median absolute error, share within
10% and 20%, worst, Spearman's rank correlation. Writes ``latency-cpu.json`` (with each calibration's timings of
its synthetic networks and their rows, so that the in-network factors and per-call term can be fitted again from
it alone) and a plot into ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

#: oneDNN's cache of compiled convolution kernels (its primitives), set before torch loads it. A timing round
#: visits every model and setting in turn: about 1,400 distinct convolutions at inference and 700 more in the
#: training steps (each with its backward's kernels too), far past oneDNN's default 1,024, so with the default every
#: convolution of every timed call compiled its kernel afresh, which no model called again and again ever does
#: (measured, one thread: mobilenet_v3_small 10.4 ms warm, 17.8 ms with the cache off, 15.9 ms in the zoo run;
#: ghostnet_100 28.8, 59.5 and 41 ms). Large enough for the whole zoo, so each timed call is a steady-state one.
PRIMITIVE_CACHE = 16384
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(PRIMITIVE_CACHE))

import torch  # noqa: E402

from convcost.frontdoor import predict_latency  # noqa: E402
from convcost.latency import BackwardCost, Machine, kernel_times, nnls  # noqa: E402
from convcost.layers import Merge  # noqa: E402
from convcost.model_latency import network_parts  # noqa: E402
from convcost.torch import networks, profile  # noqa: E402
from convcost.torch.calibration import CLOCKS, clock, describe, fit_readings, measure, read_all  # noqa: E402

#: (source, name): torchvision's and timm's ImageNet CNNs, small and large, plain, depthwise, grouped, dense
ZOO = (
    ("torchvision", "resnet18"), ("torchvision", "resnet34"), ("torchvision", "resnet50"),
    ("torchvision", "resnext50_32x4d"), ("torchvision", "alexnet"),
    ("torchvision", "vgg11"), ("torchvision", "squeezenet1_0"), ("torchvision", "squeezenet1_1"),
    ("torchvision", "densenet121"), ("torchvision", "googlenet"), ("torchvision", "mobilenet_v2"),
    ("torchvision", "mobilenet_v3_small"), ("torchvision", "mobilenet_v3_large"),
    ("torchvision", "shufflenet_v2_x0_5"), ("torchvision", "shufflenet_v2_x1_0"), ("torchvision", "mnasnet0_5"),
    ("torchvision", "mnasnet1_0"), ("torchvision", "efficientnet_b0"), ("torchvision", "efficientnet_b1"),
    ("torchvision", "regnet_x_400mf"), ("torchvision", "regnet_y_400mf"), ("torchvision", "regnet_x_800mf"),
    ("timm", "resnet26"), ("timm", "resnet18d"), ("timm", "mobilenetv3_large_100"), ("timm", "efficientnet_lite0"),
    ("timm", "mixnet_s"), ("timm", "ghostnet_100"), ("timm", "rexnet_100"), ("timm", "lcnet_100"),
    ("timm", "tinynet_a"), ("timm", "fbnetc_100"), ("timm", "spnasnet_100"), ("timm", "dla34"),
    ("timm", "regnetx_016"), ("timm", "hardcorenas_a"), ("timm", "semnasnet_100"),
)

#: (label, batch, training)
SETTINGS = (("batch 1", 1, False), ("batch 8", 8, False), ("training step, batch 2", 2, True))


def build(source: str, name: str):
    if source == "torchvision":
        from zoo_agreement import import_torchvision

        return getattr(import_torchvision(), name)(weights=None)
    import_torchvision_first()
    import timm

    return timm.create_model(name, pretrained=False)


def import_torchvision_first():
    """timm imports torchvision; its failing fake-op registrations are skipped the same way."""
    from zoo_agreement import import_torchvision

    import_torchvision()


CLOCK = [time.perf_counter]


def time_inference(model, x) -> float:
    with torch.inference_mode():
        start = CLOCK[0]()
        model(x)
        return CLOCK[0]() - start


def time_step(model, x, opt) -> float:
    start = CLOCK[0]()
    opt.zero_grad(set_to_none=True)
    out = model(x)
    (out if torch.is_tensor(out) else out[0]).float().mean().backward()
    opt.step()
    return CLOCK[0]() - start


def macs_only(samples) -> float:
    """Seconds per MAC, least squares on relative error over the calibration kernels that do MACs."""
    xs = np.array([float(c.macs) for c, _ in samples if c.macs])
    ys = np.array([t for c, t in samples if c.macs])
    return float(nnls((xs / ys)[:, None], np.ones(len(ys)))[0])


def plain_roofline(report, machine: Machine) -> float:
    """Every kernel of every row at ``max(FLOPs / peak, bytes / bandwidth)``: no factor, no overhead (a training
    step: its backward's kernels too, as the model counts their work)."""
    total = 0.0
    for r in report.rows:
        c = r.spec.cost(list(r.input_shapes) if isinstance(r.spec, Merge) else r.input_shapes[0])
        parts = [c] + ([BackwardCost(c, int(r.counts.get("backward_macs", 0)))] if report.training else [])
        total += sum(max(k[2] / machine.peak_flops, k[3] / machine.bandwidth)
                     for part in parts for k in kernel_times(part, machine))
    return total


#: (A, B, the solved symbol, its range, the other fields): seed variants where a MACs answer is tempting
PAIRS = (
    ("StandardConv", "SeparableConv", "C", (1, 512), dict(O=128, K=3, P=1, H=56, W=56)),
    ("StandardConv", "SeparableConv", "H", (1, 224), dict(C=64, O=64, K=3, P=1)),
    ("StandardConv", "SeparableConv", "H", (1, 224), dict(C=512, O=512, K=3, P=1)),
    ("StandardConv", "SeparableConv", "O", (1, 512), dict(C=32, K=3, P=1, H=112, W=112)),
    ("StandardConv", "AsymmetricConv", "K", (1, 15), dict(C=64, O=64, H=28, W=28)),
    ("PointwiseConv", "ShuffleGroupedConv", "C", (8, 512), dict(O=128, G=4, H=28, W=28)),
    ("StandardConv", "MobileNetV1Block", "C", (1, 512), dict(O=128, K=3, H=28, W=28)),
    ("StandardConv", "FactorizedConv", "K", (1, 15), dict(C=64, O=64, P="same", H=28, W=28)),
)


def disagreements(machine: Machine) -> list:
    """Per pair of :data:`PAIRS`: where B is no costlier by MACs, where no slower by the calibrated latency
    model, and the values of the solved symbol where the two answers differ (as runs ``low..high``)."""
    from convcost import VARIANTS, break_even

    out = []
    for a, b, x, (low, high), fields in PAIRS:
        xs = np.arange(low, high + 1)
        try:
            A, B = VARIANTS[a], VARIANTS[b]
            by_macs = break_even(A, B, metric="macs", solve_for=x, **fields)
            by_latency = break_even(A, B, metric="latency", machine=machine, solve_for=x, **fields)
            others = {s.name: 1 for s in by_latency.variables if s.name != x}  # N=1 where left free
            macs_wins = np.broadcast_to(by_macs.region(**{x: xs}, **{k: v for k, v in others.items()
                                                                     if k in {s.name for s in by_macs.variables}}),
                                        xs.shape)
            fast_wins = np.broadcast_to(by_latency.region(**{x: xs}, **others), xs.shape)
        except Exception as exc:  # noqa: BLE001 - listed in the results, never dropped
            out.append({"A": a, "B": b, "solve_for": x, "fields": fields, "error": f"{type(exc).__name__}: {exc}"})
            continue
        out.append({"A": a, "B": b, "solve_for": x, "range": [low, high], "fields": fields,
                    "macs_solution": str(by_macs.solution if by_macs.solution is not None else by_macs.condition),
                    "macs_wins": _runs(xs, macs_wins), "latency_wins": _runs(xs, fast_wins),
                    "disagree": _runs(xs, macs_wins != fast_wins)})
    return out


def _runs(xs, mask) -> list:
    """``[[low, high], ...]``: the runs of consecutive values where ``mask`` holds."""
    runs = []
    for v, on in zip(xs, mask):
        if on and runs and runs[-1][1] == v - 1:
            runs[-1][1] = int(v)
        elif on:
            runs.append([int(v), int(v)])
    return runs


def quick_against_full(quick: Machine, full: Machine, costs) -> dict:
    """Per phase and kernel kind, the quick calibration's predictions over the full one's, on the full grid's
    kernels: the median and the extremes of the ratio."""
    out = {}
    for phase in ("inference", "forward", "backward"):
        ratios = {}
        for c in costs:
            part = BackwardCost(c) if phase == "backward" else c
            for (_, kind, _, _, compute, memory, fresh), (*_, qc, qm, qf) in zip(kernel_times(part, full),
                                                                                 kernel_times(part, quick)):
                f = full.roof(phase).seconds(kind, compute, memory) + fresh
                q = quick.roof(phase).seconds(kind, qc, qm) + qf
                ratios.setdefault(kind, []).append(q / f)
        out[phase] = {k: {"median": float(np.median(v)), "low": float(min(v)), "high": float(max(v))}
                      for k, v in ratios.items()}
    # a call's extra time inside a network, per kind (one number each: median, lowest and highest are the same)
    cold = {k: quick.cold_overheads[k] / full.cold_overheads[k] for k in full.cold_overheads
            if "/" not in k and full.cold_overheads[k] > 0 and k in quick.cold_overheads}
    if cold:
        out["cold call"] = {k: {"median": r, "low": r, "high": r} for k, r in cold.items()}
    # the in-network factors (one number per kind and phase)
    for phase, factors in full.network.items():
        ratios = {k: quick.network.get(phase, {}).get(k, 1.0) / f for k, f in factors.items()}
        out[f"in-network {phase}"] = {k: {"median": r, "low": r, "high": r} for k, r in ratios.items()}
    return out


def scores(predicted, measured) -> dict:
    p, m = np.asarray(predicted), np.asarray(measured)
    err = p / m - 1
    return {"count": len(m), "median_error": float(np.median(np.abs(err))),
            "within_10": float(np.mean(np.abs(err) <= 0.10)), "within_20": float(np.mean(np.abs(err) <= 0.20)),
            "within_30": float(np.mean(np.abs(err) <= 0.30)), "within_40": float(np.mean(np.abs(err) <= 0.40)),
            "worst": float(err[np.argmax(np.abs(err))]), "spearman": spearman(p, m)}


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def read_zoo(zoo, args, say) -> list:
    """Every model built and profiled once per setting: ``(source, name, model, {label: report})``, or a
    skipped entry with its reason."""
    read = []
    for source, name in zoo:
        try:
            model = build(source, name)
        except Exception as exc:  # noqa: BLE001 - a model this torchvision/timm cannot build: listed
            read.append({"source": source, "model": name, "skipped": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        reports = {}
        for label, batch, training in SETTINGS:
            if training and args.no_training:
                continue
            try:
                reports[label] = profile(model, (batch, 3, 224, 224), training=training)
            except Exception as exc:  # noqa: BLE001 - listed, never dropped silently
                read.append({"source": source, "model": name, "setting": label,
                             "skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
        read.append((source, name, model, reports))
        say(f"  profiled {name}")
    return read


def run_threads(threads: int, read, args, say) -> dict:
    torch.set_num_threads(threads)
    use = args.clock if threads == 1 else "wall"  # the cpu clock times one thread only
    CLOCK[0] = CLOCKS[use]
    say(f"{threads} thread(s): calibrating ({use} clock)")
    started = time.perf_counter()
    with clock(use):  # measure's two steps, so that the synthetic networks' timings are kept in the results
        calibrated = read_all("cpu", threads=threads, quick=args.quick_calibration, passes=args.passes,
                              say=lambda m: say(f"  calibrate: {m}"))
        machine, samples = fit_readings(calibrated, "cpu", threads=threads, quick=args.quick_calibration,
                                        say=lambda m: say(f"  calibrate: {m}"))
    # each synthetic network's kept (fastest) timing, its rows, and its calls (the rows that run a kernel, which the
    # in-network per-call term counts): the in-network factors and term can be fitted again from the results alone
    # (a new rule scored on this run's zoo timings, without timing anything again)
    synthetic = []
    for name, phase, batch, size, training in calibrated["nets"]:
        report = profile(networks.build(name), (batch, 3, size, size), training=training)
        synthetic.append({"network": name, "phase": phase, "batch": batch, "size": size, "training": training,
                          "seconds": min(calibrated["readings"][("network", (name, phase, batch, size, training))]),
                          "rows": len(report.rows), "calls": network_parts(report, machine)[2]})
    per_mac = macs_only(samples)
    calibration_seconds = time.perf_counter() - started
    quick = None
    if args.full_machine and threads == 1:  # the quick calibration just made, against a full one made before
        from convcost.torch.calibration import calibration_kernels

        full = Machine.load(args.full_machine)
        quick = quick_against_full(machine, full, [layer.cost(shape) for layer, shape in calibration_kernels()])
        quick["full_machine"] = full.fitted_from
    elif not args.no_quick_check and threads == 1:
        say(f"{threads} thread(s): the quick calibration, to compare with the full one")
        with clock(use):
            quick_machine, _ = measure("cpu", threads=threads, quick=True, say=lambda m: say(f"  quick: {m}"))
        quick = quick_against_full(quick_machine, machine, [c for c, _ in samples])
    say(f"{threads} thread(s): calibrated in {calibration_seconds:.0f} s; predicting")
    entries = []
    for item in read:
        if isinstance(item, dict):
            entries.append(dict(item))
            continue
        source, name, model, reports = item
        for label, batch, training in SETTINGS:
            if label not in reports:
                continue
            report = reports[label]
            lat = predict_latency(report, machine)
            entries.append({"source": source, "model": name, "setting": label, "batch": batch, "training": training,
                            "macs": int(report.total["macs"]), "rows": len(report.rows),
                            "predicted": lat.seconds, "forward": lat.forward_seconds,
                            "backward": lat.backward_seconds, "optimizer": lat.optimizer_seconds,
                            "macs_only": (int(report.total["macs"]) + (int(report.training.backward_macs)
                                                                        if training else 0)) * per_mac,
                            "roofline": plain_roofline(report, machine),
                            "times": [], "_model": model})
    say(f"{threads} thread(s): timing, {args.repeats} rounds over every model and setting")
    live = [e for e in entries if "skipped" not in e]
    inputs, opts = {}, {}
    for e in live:
        key = (e["model"], e["setting"])
        inputs[key] = torch.randn(e["batch"], 3, 224, 224)
        if e["training"]:
            opts[key] = torch.optim.SGD(e["_model"].parameters(), lr=1e-6, momentum=0.9)
    for round_ in range(args.repeats + 1):  # the first round warms up
        for e in live:
            key, model = (e["model"], e["setting"]), e["_model"]
            gc.collect()
            if e["training"]:
                model.train()
                t = time_step(model, inputs[key], opts[key])
            else:
                model.eval()
                t = time_inference(model, inputs[key])
            if round_:
                e["times"].append(t)
        say(f"  round {round_ + 1}/{args.repeats + 1} done")
    for e in live:
        e.pop("_model")
        e["measured"] = min(e["times"])
        e["spread"] = float(np.median(e["times"]) / e["measured"] - 1)
    for e in entries:
        e.pop("_model", None)
    result = {"threads": threads, "clock": use, "machine": machine.as_dict(),
              "calibration_seconds": calibration_seconds, "synthetic_networks": synthetic,
              "quick_against_full": quick, "break_even": disagreements(machine),
              "seconds_per_mac": per_mac, "entries": entries, "scores": {}}
    for label, _, _training in SETTINGS:
        rows = [e for e in live if e["setting"] == label]
        if rows:
            result["scores"][label] = {p: scores([e[p] for e in rows], [e["measured"] for e in rows])
                                       for p in ("predicted", "macs_only", "roofline")}
    return result


def noise(name: str, repeats: int, say) -> dict:
    """One model timed ``repeats`` times in a row at batch 1, one thread: the spread of fastest-of-k readings."""
    torch.set_num_threads(1)
    model = build(*next(z for z in ZOO if z[1] == name)).eval()
    x = torch.randn(1, 3, 224, 224)
    time_inference(model, x)
    times = [time_inference(model, x) for _ in range(repeats)]
    best_of_5 = [min(times[i:i + 5]) for i in range(0, len(times) - 4, 5)]
    return {"model": name, "times": times, "min": min(times), "median": float(np.median(times)),
            "max": max(times), "median_over_min": float(np.median(times) / min(times) - 1),
            "best_of_5_spread": float(max(best_of_5) / min(best_of_5) - 1)}


def load_average() -> list:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for latency-cpu.json and the plot (default: a temp dir)")
    parser.add_argument("--models", default="", help="comma-separated names (default: the whole zoo)")
    parser.add_argument("--threads", default="", help="comma-separated thread counts (default: 1 and every core)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (the fastest is kept; default 5)")
    parser.add_argument("--quick-calibration", action="store_true", help="calibrate with the quick grid")
    parser.add_argument("--full-machine", metavar="FILE", help="with --quick-calibration: compare it with this full "
                        "calibration (a Machine saved as JSON) instead of measuring one in the run")
    parser.add_argument("--passes", type=int, default=None, help="the calibration's most passes (default: its own)")
    parser.add_argument("--no-training", action="store_true", help="skip the training step")
    parser.add_argument("--no-quick-check", action="store_true", help="skip comparing the quick calibration")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS),
                        help="wall time (default), or the process's CPU time (one thread: a busy machine's own work)")
    parser.add_argument("--noise", default="", help="only time this model again and again (the noise floor)")
    args = parser.parse_args(argv)
    CLOCK[0] = CLOCKS[args.clock]  # the noise floor's (one thread)
    out = args.out or tempfile.mkdtemp(prefix="convcost-latency-")
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()

    def say(message):
        print(f"[{time.perf_counter() - started:6.0f} s, load {load_average()}] {message}", file=sys.stderr, flush=True)

    if args.noise:
        result = noise(args.noise, 40, say)
        print(json.dumps({k: v for k, v in result.items() if k != "times"}, indent=2))
        return 0
    names = [n for n in args.models.split(",") if n]
    zoo = [z for z in ZOO if not names or z[1] in names]
    threads = [int(t) for t in args.threads.split(",") if t] or sorted({1, os.cpu_count() or 1})
    data = {"torch": torch.__version__, "python": platform.python_version(), "cpu": describe("cpu", 1)["processor"],
            "cores": os.cpu_count(), "load_before": load_average(), "started": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                              time.gmtime()),
            "repeats": args.repeats, "clock": args.clock,
            "onednn_primitive_cache": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"), "runs": []}
    say("the noise floor: resnet18, batch 1, one thread, timed 30 times")
    data["noise"] = {k: v for k, v in noise("resnet18", 30, say).items() if k != "times"}
    say(f"profiling {len(zoo)} models in {len(SETTINGS)} settings")
    read = read_zoo(zoo, args, say)
    path = os.path.join(out, "latency-cpu.json")
    for n in threads:
        data["runs"].append(run_threads(n, read, args, say))
        data["load_after_" + str(n)] = load_average()
        data["seconds"] = time.perf_counter() - started
        with open(path, "w", encoding="utf-8") as f:  # after each thread count: a cut run keeps what it measured
            json.dump(data, f, indent=1)
    try:
        plot(data, os.path.join(out, "latency-cpu.png"))
    except ImportError:
        pass
    print(summary(data))
    print(f"wrote {path}")
    return 0


def summary(data) -> str:
    lines = []
    for run in data["runs"]:
        for label, by in run["scores"].items():
            for p, s in by.items():
                lines.append(f"{run['threads']} thread(s), {label:<24} {p:<10} median {100 * s['median_error']:5.1f}%  "
                             f"<=10% {100 * s['within_10']:5.1f}%  <=20% {100 * s['within_20']:5.1f}%  worst "
                             f"{100 * s['worst']:+6.1f}%  Spearman {s['spearman']:.3f}  (n={s['count']})")
    return "\n".join(lines)


def plot(data, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 6))
    marks = {"batch 1": "o", "batch 8": "s", "training step, batch 2": "^"}
    for run in data["runs"]:
        for label, mark in marks.items():
            rows = [e for e in run["entries"] if e.get("setting") == label and "measured" in e]
            if rows:
                ax.scatter([e["measured"] for e in rows], [e["predicted"] for e in rows], marker=mark, s=14,
                           label=f"{label}, {run['threads']} thread(s)", alpha=0.75)
    lo = min(e["measured"] for r in data["runs"] for e in r["entries"] if "measured" in e) / 1.5
    hi = max(e["measured"] for r in data["runs"] for e in r["entries"] if "measured" in e) * 1.5
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    for f in (0.8, 1.2):
        ax.plot([lo, hi], [lo * f, hi * f], "k:", lw=0.6)
    ax.set(xscale="log", yscale="log", xlabel="measured seconds", ylabel="predicted seconds (convcost)",
           title="Whole-model latency: predicted against measured (dotted: +-20%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
