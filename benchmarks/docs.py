"""docs/benchmarks.md, written from the results the benchmarks left in benchmarks/results/.

    .venv/bin/python benchmarks/docs.py > docs/benchmarks.md

Every number in the page comes from a results file (kernels-cpu.json,
profile.json, training-cpu.json, region.json, latency-cpu.json), so the page cannot drift from the runs it reports;
tests/test_benchmark_docs.py checks that the committed page is current.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)

from bench_first_call import section as first_call_section
from bench_profile import tool_table, versus_table
from bench_training import table as training_table
from plots import table as kernel_table


def _load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _met(value, target, at_most=False) -> str:
    ok = value <= target if at_most else value >= target
    return "met" if ok else f"missed by {abs(value - target):.3g}"


def kernels_section(data) -> list:
    a = data["analysis"]
    held, train = a["scores"]["held_out"], a["scores"]["train"]
    model, calibrated, macs = (held[k] for k in ("model (refit on train)", "model (calibrate only)",
                                                 "MACs only (refit on train)"))
    t = a["targets"]
    m, cal = data["machine"], data["calibrated_machine"]
    fitted = a["fitted_machine"]
    ok = [r for r in data["rows"] if r["status"] == "ok"]
    skipped = [r for r in data["rows"] if r["status"] != "ok"]
    per = a["scores"]["per_class_held_out"]
    refit, macs_only = per["model (refit on train)"], per.get("MACs only (refit on train)", {})
    worse = [c for c in ("depthwise_conv", "grouped_conv") if c in refit
             and macs_only[c]["mdape_percent"] > refit[c]["mdape_percent"]]
    lines = [
        "## Real kernels and the calibrated roofline model",
        "",
        "`.venv/bin/python benchmarks/bench_kernels.py` (then `benchmarks/plots.py "
        "benchmarks/results/kernels-cpu.json` for the plots and table); raw rows in "
        "`benchmarks/results/kernels-cpu.csv` / `.json`. The numbers are a model's error, measured.",
        "",
        "### The machine",
        f"- {m['processor']}, {m['cores']} cores, torch {m['torch']}, Python {m['python']}; "
        f"**torch threads: {m['threads']}** for every timing.",
        f"- Calibrated by `convcost.torch.calibrate(\"cpu\")` ({cal['fitted_from']}): matmul peak "
        f"{cal['peak_flops'] / 1e9:.1f} GFLOP/s, copy bandwidth {cal['bandwidth'] / 1e9:.2f} GB/s "
        f"(ridge {cal['peak_flops'] / cal['bandwidth']:.1f} FLOP/byte); fresh memory: outputs of "
        + (f"{cal['alloc_threshold'] / 2**20:.0f} MiB and more pay page faults at "
           f"{cal['alloc_bandwidth'] / 1e9:.2f} GB/s" if cal.get("alloc_bandwidth") else "any size are free")
        + ".",
        f"- Run started {data['started']}; it took {data['seconds']:.0f} s"
        + (" on a machine shared with other work." if data.get("shared_machine") else
           " with no other work of ours on the machine (other tenants of the host may still interfere)."),
        "- No GPU was available to this run: the CUDA path (same script, `--device cuda`, and "
        "`calibrate(\"cuda\")`) is written but unmeasured; without a GPU it gives a ConvcostError (tested) "
        "and `--device auto` runs the CPU only." if m["device"] == "cpu" else f"- Device: {m['device']}.",
        "",
        "### Grid and method",
        "Every variant of `convcost.VARIANTS` at the six stages of an ImageNet CNN, channels x spatial size "
        "16x224, 32x112, 64x56, 128x28, 256x14, 512x7 (O = C where a variant has O; GroupedConv G=8 3x3, "
        "ShuffleGroupedConv G=8 1x1, DilatedConv D=2, FactorizedConv 5x5 as two 3x3, TransposedConv K=2 S=2, "
        "InvertedResidual t=6, Fire s=C/8 e=C/2, SE r=16, Inception O=C/4, Conv3d 4 frames at half the size), "
        f"batch 1 and 32: {len(data['rows'])} rows, {len(ok)} measured, {len(skipped)} skipped with their "
        "reason in the table. Each module is built by `convcost.torch.to_torch`, put in eval mode, and timed "
        "under `inference_mode` by `torch.utils.benchmark` (two warm-up calls, "
        "`blocked_autorange`, the fastest block).",
    ]
    if a.get("repeatability_percent") is not None:
        lines += ["", f"**Noise floor.** The whole grid is measured twice; a row's latency is its faster pass. "
                  f"The two passes of a row differ by {a['repeatability_percent']:.1f}% (median): no model can "
                  "be scored more finely than that."]
    lines += [
        "",
        "**Split.** The efficiency factors and per-kernel overhead are refit (non-negative least squares on "
        "relative errors) on stages 0, 2, 4 (224, 56, 14) and scored on the held-out stages 1, 3, 5 "
        "(112, 28, 7), both batches: every variant is in both halves, no held-out shape was seen. The MACs-only "
        "predictor `seconds = a x FLOPs + b` is fitted on the same rows the same way. \"model (calibrate only)\" "
        "uses the factors `calibrate()` fitted on its own kernels, no grid data.",
        "",
        "### Targets (held-out rows)",
        "| target | model (refit) | model (calibrate only) | MACs only |",
        "|---|---:|---:|---:|",
        f"| Spearman >= {t['spearman_min']} | **{model['spearman']:.3f}** "
        f"({_met(model['spearman'], t['spearman_min'])}) "
        f"| {calibrated['spearman']:.3f} | {macs['spearman']:.3f} |",
        f"| MdAPE <= {t['mdape_max_percent']:.0f}% | **{model['mdape_percent']:.1f}%** "
        f"({_met(model['mdape_percent'], t['mdape_max_percent'], at_most=True)}) | "
        f"{calibrated['mdape_percent']:.1f}% | {macs['mdape_percent']:.1f}% |",
        "",
        "Per class, held out (model refit / MACs only): "
        + "; ".join(f"{c} {per['model (refit on train)'][c]['mdape_percent']:.1f}% / "
                    f"{per['MACs only (refit on train)'][c]['mdape_percent']:.1f}%"
                    for c in per["model (refit on train)"]
                    if per["model (refit on train)"][c]["mdape_percent"] is not None)
        + ". MACs only is worst where work is not multiply-adds (data movement, elementwise: MACs 0 or tiny)"
        + (" and on " + " and ".join(worse) + " layers" if worse else "") + ".",
        "",
        *[f"Without the fresh-memory term (same refit): Spearman {s['spearman']:.3f}, MdAPE {s['mdape_percent']:.1f}%."
          for s in a.get("ablation_held_out", {}).values()],
        "",
        f"Train rows: model {train['model (refit on train)']['mdape_percent']:.1f}%, MACs only "
        f"{train['MACs only (refit on train)']['mdape_percent']:.1f}%. Refit factors (fraction of the roofline "
        f"reached; overhead {fitted['overhead'] * 1e6:.1f} us per kernel): "
        + ", ".join(f"{k} {v:.2f}" for k, v in fitted["efficiency"].items()) + ".",
        "",
        "### What the model is, and what it is not",
        "- A kernel's time is `overhead + max(FLOPs / peak, bytes / bandwidth) / efficiency[kind] + "
        "fresh-memory time`. The last term matters on CPU: PyTorch allocates every output anew, and glibc "
        "serves blocks of 32 MiB and more straight from the kernel, so each call page-faults them in (a 64 MiB "
        "ReLU is 3x slower into a new tensor than into an existing one). `calibrate` finds the threshold by "
        "counting page faults and measures their cost.",
        "- A convolution's compute efficiency takes the size of its call, `P` output positions (batch x output "
        "height x width): `1 / (1 / efficiency[kind] + pixel_slowdown[kind] / P)` (`Machine.pixel_slowdown`), as "
        "convolutions run further from the roof on small calls (one thread: a 3x3 convolution of 512 channels at "
        "7x7 reached 63 GFLOP/s on one image and 99 on eight; on one image, 0.2 to 0.6 of the roof at 4x4 and 7x7 "
        "outputs, 0.8 to 1 from 28x28 on). Calibration fits the term per convolution kind, on its grid's "
        "convolutions timed at batches 1, 2, 4 and 8 across a CNN's stages.",
        "- One efficiency per kernel kind (and batch) is still coarse: the same kind reaches different fractions "
        "of the roofline at different shapes (small GEMMs at 7x7, grouped convolutions with few channels per "
        "group).",
        "- Earlier runs on another host (an Intel Xeon shared with four other engineers' builds) scored 35% "
        "and 57% held-out MdAPE with the model of that day (no fresh-memory term, one calibration pass): "
        "timing noise on a busy machine, not only the model, set those numbers.",
        "",
        "### Plots",
        "![roofline](../benchmarks/results/kernels-cpu-roofline.png)",
        "",
        "![MACs vs measured latency](../benchmarks/results/kernels-cpu-macs.png)",
        "",
        "![predicted vs measured](../benchmarks/results/kernels-cpu-predicted.png)",
        "",
    ]
    return lines


def profile_section(data) -> list:
    lines = [
        "## `profile` against torchinfo, fvcore, ptflops, thop and FlopCounterMode",
        "",
        "`.venv/bin/python benchmarks/bench_profile.py` (peers installed by hand: `pip install torchinfo fvcore "
        "ptflops thop` with torch pinned); results in `benchmarks/results/profile.json`. Every tool runs in a "
        "fresh process of its own and is timed by one rule (`benchmarks/timing.py`: a full garbage collection, "
        "then the call): its **first call** after import (what a script or a CI budget check pays) and its "
        f"**repeated call** (fastest of {data['repeats']} more on the same model). convcost "
        "is also timed on a **fresh instance** of the architecture in the warm process (a model "
        "object it has not read). "
        "Each tool's headline MACs stand next to its time, against FlopCounterMode's (FLOPs / 2), which counts "
        "what the kernels do.",
        "",
        f"Machine: {data['machine']}.",
    ]
    for name, r in data["models"].items():
        lines += ["", f"**{name}**, input {'x'.join(map(str, data['shape']))}, reference MACs {r['reference_macs']:,}",
                  "", *tool_table(r)]
        c = r["tools"]["convcost"]
        lines += ["", f"convcost is **{r['speedup_first_s']:.1f}x** faster than the fastest peer's first call "
                  f"({r['fastest_peer_first_s']}), **{r['speedup_repeated_s']:.1f}x** than its repeated call "
                  f"({r['fastest_peer_repeated_s']}), and {r['speedup_fresh_instance']:.1f}x on a fresh instance "
                  f"({1e3 * c['fresh_instance_s']:.1f} ms); exact: {'yes' if r['convcost_exact'] else 'NO'}. "
                  f"The symbolic profile `(1, 3, H, W)` takes {1e3 * c['symbolic_profile_s']:.0f} ms once; it then "
                  f"evaluates at 1,000 sizes in {1e3 * c['sweep_1000_s']:.1f} ms (first sweep, compiling, "
                  f"{1e3 * c['sweep_1000_first_s']:.0f} ms)."]
    lines += ["", "The 3x target: " + "; ".join(
        f"{name}: first call {r['speedup_first_s']:.1f}x ({_met(r['speedup_first_s'], 3)}), repeated call "
        f"{r['speedup_repeated_s']:.1f}x ({_met(r['speedup_repeated_s'], 3)})" for name, r in data["models"].items())
        + ". The peers' own times move by up to 1.5x between runs of this script (an earlier run had ptflops at "
        "150 ms for MobileNetV2's first call, 2.8x); the ratios above are from one run. convcost's first "
        "call runs the model's forward on shapes alone (no kernels, no graph, no torch.fx); "
        "the counting itself runs each primitive's formula on Python ints (see the `cost()` section), so a model "
        "no one has profiled before pays no sympy time.", ""]
    return lines


def cost_section(data) -> list:
    """The speed of ``cost()``: bound costs against plain Python, general forms (benchmarks/bench_cost.py)."""
    lines = [
        "## `cost()`: bound costs against plain Python, and general forms",
        "",
        "`.venv/bin/python benchmarks/bench_cost.py`; results in `benchmarks/results/cost.json`. For every named "
        "variant on the tour's configuration, `cost(Variant, **fields)` with every field a number is timed against "
        "the same counts written by hand in plain Python (`benchmarks/plain_formulas.py`, which "
        "tests/test_plain_formulas.py proves equal on every metric), each the fastest of "
        f"{data['rounds']} rounds of {data['calls']} calls. The general form, `cost(Variant, general=True)`, is "
        "timed as the median of repeated calls in one process, and as the first call of a fresh process (which "
        "also pays sympy's first deductions about the symbols).",
        "",
        f"Machine: {data['machine']}.",
        "",
        "| variant | `cost()` bound | plain Python | ratio | general form | general form, first call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in data["variants"].items():
        first = f"{1e3 * r['general_first_s']:.0f} ms" if r["general_first_s"] is not None else "-"
        lines.append(f"| {name} | {1e6 * r['bound_s']:.0f} us | {1e6 * r['plain_s']:.1f} us | {r['ratio']:.1f}x | "
                     f"{1e3 * r['general_repeated_s']:.2f} ms | {first} |")
    lines += ["", f"Worst ratio {data['worst_ratio']:.1f}x (median {data['median_ratio']:.1f}x) against the target of "
              f"{data['bound_target']}x: {'met' if data['meets_bound_target'] else 'missed'}. Slowest general form "
              f"{1e3 * data['worst_general_s']:.2f} ms against the target of {1e3 * data['general_target_s']:.0f} ms: "
              f"{'met' if data['meets_general_target'] else 'missed'}. Before the formulas ran on Python ints, a bound "
              "`cost()` built every number in sympy (about 5,000x plain Python) and the general form of "
              "StandardConv took about 30 ms.", ""]
    return lines


def versus_section(data) -> list:
    import statistics

    ratios = {name: r["FlopCounterMode"]["first_s"] / r["convcost"]["first_s"] for name, r in data["models"].items()
              if "first_s" in r["convcost"] and "first_s" in r["FlopCounterMode"]}
    met = ratios and min(ratios.values()) >= 2 and statistics.median(ratios.values()) >= 3
    return [
        "## `profile`'s first call against FlopCounterMode's first forward",
        "",
        "`python benchmarks/bench_profile.py --versus` in a venv that also holds torchvision (`pip install --no-deps "
        "torchvision`, imported as `benchmarks/zoo_agreement.py` does); results in "
        "`benchmarks/results/profile_vs_flopcounter.json`. Each tool runs in a fresh process per model, input "
        f"{'x'.join(map(str, data['shape']))}: convcost's `profile(model, shape)` against `with FlopCounterMode(): "
        f"model(x)` on a real input, first call and fastest of {data['repeats']} repeated calls, in the same run. "
        "`untraceable_resnet18` is a resnet18 behind Python control flow on the input's size, which torch.fx "
        "cannot trace. The reading column says how convcost read each model. Both tools' MACs are compared.",
        "",
        *versus_table(data),
        "",
        f"The issue's target (every first call at least 2x FlopCounterMode's first forward, median 3x): "
        f"{'met' if met else 'missed'}. convcost runs the model's forward on shapes alone: each call is answered by "
        "its formulas on Python ints, so no kernel runs and no graph is built (torch.fx, which the first call used "
        "before, paid 30-40 ms of one-time setup in a fresh process plus its tracing). A forward that reads "
        "tensor values is read on shapes with the real tensors computed alongside, and, where even that cannot run, "
        "call by call on real ones: then a first call costs about a real forward plus the reading.",
        "",
    ]


def training_section(data) -> list:
    """A training step read on shapes against running it (benchmarks/bench_training.py)."""
    ran = {name: r for name, r in data["models"].items() if "convcost" in r}
    m = data["medians"]
    slowest = max(ran, key=lambda name: ran[name]["convcost"]["median_s"])
    dynamo = [name for name, r in ran.items() if r["convcost"].get("first_call_imported_dynamo")]
    agree = [name for name, r in ran.items() if not r["disagree"]]
    bisected = {name: r["reading"]["max_batch_readings"] for name, r in ran.items()
                if r["reading"]["max_batch_readings"] > 4}
    shape = f"{data['batch']}x3x{data['size']}x{data['size']}"
    return [
        "## A training step read, against running it",
        "",
        "`PYTHONPATH=. python benchmarks/bench_training.py` in a venv that also holds torchvision, timm and "
        "torchinfo (`pip install --no-deps torchvision timm pyyaml torchinfo`, torchvision imported as "
        "`benchmarks/zoo_agreement.py` does; without them the convcost zoo's models and the hand-written "
        "transformer still run); results in `benchmarks/results/training-cpu.json`. Each model runs in a fresh "
        f"process of its own, at input {shape}, with random weights in train mode, and each tool is timed by one "
        "rule (`benchmarks/timing.py`: a full garbage collection, then the call), in this order:",
        "",
        "- **profile**: `profile(model, shape, training=True)` and `report.training.memory(\"adam\")`, what "
        "convcost answers from shapes alone (backward MACs, saved elements, the step's bytes);",
        f"- **max_batch**: `convcost.torch.max_batch(model, shape, memory=\"{data['memory']}\")`. It does not "
        "solve a symbolic batch: it reads the step at batch 1 and 2, guesses N from the line through them and "
        "proves it by reading N and N + 1, so it costs at least four readings (the second table counts them; "
        "where the first guess misses, as on Swin-T, whose batch of one is off the line, the line through the "
        "readings around the budget and its neighbour settle it);",
        "- **torchinfo**: `summary(model, shape, mode=\"train\", verbose=0)`, the nearest peer that prints a "
        "memory estimate (its \"Forward/backward pass size\"): a real forward under `no_grad` "
        "with a hook on every module;",
        "- **training step**: `model(x).sum().backward()` on a random input of the same shape, what one runs to "
        "see the step (gradients set to None before each, outside the timing);",
        "- **measure_training**: `convcost.torch.measure_training.measure_training(model, x)`, "
        "the measurement convcost's "
        "tests hold the reading to (saved-tensor hooks, FlopCounterMode over the backward, one real Adam step): "
        "several real steps, timed " + ("once" if data["oracle_repeats"] == 1 else f"{data['oracle_repeats']} times")
        + " after the steps above have warmed the process.",
        "",
        f"A **warm** time is the median of {data['repeats']} calls after the first (measure_training: of its "
        "calls after the real steps); every sample is in the results file. The **first call** of "
        "profile is the process's first "
        "reading of any model, after `import convcost.torch`; a training step's first call pays its own one-time "
        "costs (oneDNN's kernels, the allocator). A ratio is profile's time over the other tool's: below 1, the "
        "reading is faster. \"numbers agree\" compares convcost's backward MACs, saved elements and step bytes "
        "with Adam against measure_training's (the CPU's fused attention kernel, whose backward FlopCounterMode "
        "cannot see, taken out first, as in docs/zoo_training.md).",
        "",
        f"Machine: {data['machine']}. Run started {data['started']}; it took {data['seconds']:.0f} s.",
        "",
        *training_table(data),
        "",
        f"Medians over {len(ran)} models: a warm reading takes **{m['training_step']:.3f}** of a real training "
        f"step's time ({1 / m['training_step']:.0f}x faster), **{m['measure_training']:.3f}** of "
        f"measure_training's ({1 / m['measure_training']:.0f}x) and **{m['torchinfo']:.3f}** of torchinfo's "
        f"summary ({1 / m['torchinfo']:.1f}x); first calls, {m['training_step_first']:.3f} of a first step and "
        f"{m['torchinfo_first']:.3f} of a first summary. The numbers agree on {len(agree)} of {len(ran)} models.",
        "",
        "Caveats:",
        "",
        "- The machine is shared (two cores; other engineers' tests ran during the run), and the ratios come from "
        "one run of a few repeats each: read them to within a factor of about 1.5, not to the digit (two earlier "
        "full runs of the script on the same day had medians 0.072, 0.014, 0.169 and 0.106, 0.018, 0.183; "
        "ViT-B/16's warm reading took 248-384 ms in them). torch ran "
        "with one thread: with two threads on two busy cores a real step loses its OpenMP barriers to the other "
        "work (in a check before this run, the hand-written transformer's step at 2x3x64x64 took 1-2.5 s on two "
        "threads and 0.06-0.1 s on one), which would have flattered the reading.",
        "- First against warm: a warm reading is a further call on the same model object; the reading on shapes "
        "keeps no cache per model, so what a first call pays above it is the process's one-time costs. "
        + (f"The first call of {', '.join(dynamo)} imported `torch._dynamo` (about a second: the reading runs "
           "torch's reference decompositions, which load it); for the torchvision and timm models, torchvision "
           "had imported it already when the model was built. " if dynamo else "")
        + "A one-off script pays the first-call column.",
        f"- The reading's cost follows the model's calls, not its size: {slowest} is the slowest to read "
        f"({1e3 * ran[slowest]['convcost']['median_s']:.0f} ms warm). ConvNeXt-T, Swin-T, MaxViT-T, ViT-B/16 and "
        "the hand-written transformer (a LayerNorm in every block, nn.MultiheadAttention in the last two) read "
        "about ten times slower than the convolutional networks: in a check before this run, cProfile put 55-72% of a "
        "warm reading of ConvNeXt-T and ViT-B/16 "
        "in the stride simulation of what autograd keeps (`record.folded`, `layouts.simulate`), which runs "
        "torch's Python reference decompositions (layer_norm's among them) on meta tensors. A reading runs on "
        "shapes, so its time does not grow with the batch; a real step's does: at larger batches the ratios "
        "shrink, at batch 1 they grow.",
        *([f"- max_batch read more steps than four on {', '.join(f'{n} ({k})' for n, k in bisected.items())}: "
           "there the step's bytes are not on the line through batch 1 and 2, so the first guess misses; the line "
           "through the readings on either side of the budget, and bisection where that misses too, settle it."]
          if bisected else []),
        "- torchinfo's \"estimated total size\" (input, every module's output counted twice, parameters) is not "
        "a step's memory: it has no gradients or optimizer state and does not follow what autograd keeps; it is "
        "shown only as the peer's number. convcost's step bytes are exact against measure_training's.",
        "",
    ]


def region_section(data) -> list:
    return [
        "## Break-even regions",
        "",
        "`.venv/bin/python benchmarks/bench_region.py`; results in `benchmarks/results/region.json`. "
        f"`BreakEven.region` evaluates `{data['expression']}` at {data['configurations_vectorised']:,} "
        f"configurations: {data['vectorised_per_s'] / 1e6:.0f} million per second, against "
        f"{data['python_loop_per_s'] / 1e6:.1f} million per second for a Python loop over the same expression "
        f"({data['ratio']:.0f}x); target {data['target_per_s'] / 1e6:.0f} million per second: "
        f"{'met' if data['meets_target'] else 'missed'}.",
        "",
    ]


def _load_said(data) -> str:
    """Whether the machine was the benchmark's alone, read from the load averages it recorded: before the run
    at most about one process, and after each thread count's part at most that many threads' own."""
    quiet = data["load_before"][0] <= 1.5 and all(
        data.get(f"load_after_{run['threads']}", [99])[0] <= run["threads"] + 0.75 for run in data["runs"])
    if quiet:
        return ("nothing else of this project ran while it did (the load average is the benchmark's own), so what "
                "moves a model's timings between rounds is the host under this two-core virtual machine, as the "
                "noise floor below shows.")
    return "the machine was shared with other work while it ran."


def _pct(x) -> str:
    return f"{100 * x:.1f}%"



def _fresh_gradients(data) -> bool:
    """Whether the run's model is the one whose calibration reads fresh memory by the page-fault counter, charges a
    backward's weight gradients as fresh memory and adds the per-row time on kernel rows only (the synthetic
    networks' ``calls`` kept: calibration version 11 on)."""
    return any("calls" in n for run in data["runs"] for n in run.get("synthetic_networks", []))


def _has_call(data) -> bool:
    """Whether the run's calibrations fitted the in-network time per row (``Machine.network_call``)."""
    return any("network_call" in run["machine"] for run in data["runs"])


def _has_network(data) -> bool:
    machine = data["runs"][0]["machine"] if data["runs"] else {}
    return bool(machine.get("network")) or bool(machine.get("network_call"))


def _network_kinds(data) -> list:
    kinds = []
    for run in data["runs"]:
        for factors in run["machine"].get("network", {}).values():
            kinds += [k for k in factors if k not in kinds]
    return kinds


def latency_section(data) -> list:
    """Whole-model latency on the zoo (benchmarks/bench_latency.py): predicted against timed, one run."""
    noise = data["noise"]
    lines = ["## Whole-model latency on a zoo, predicted from the profile", "",
             f"Written from `benchmarks/results/latency-cpu.json`, one run of `benchmarks/bench_latency.py --out "
             f"benchmarks/results{' --clock ' + data['clock'] if data['clock'] != 'wall' else ''}"
             f"{' --repeats ' + str(data['repeats']) if data['repeats'] != 5 else ''}"
             f"{' --threads 1' if [r['threads'] for r in data['runs']] == [1] else ''}` "
             f"started {data['started']} on {data['cpu']} ({data['cores']} cores), torch "
             f"{data['torch']}, torchvision and timm installed with `--no-deps`; {data['seconds'] / 60:.0f} minutes in "
             f"one process. Clock for one thread: {data['clock']} time"
             + (" (the process's CPU time: on a busy machine a whole model's wall time also holds the time other "
                "processes had the core; caches they disturbed still count)" if data["clock"] == "cpu" else "")
             + "; for several threads: wall time. Load average (1, 5, 15 min) before the run "
             f"{data['load_before']}, after it {data.get('load_after_' + str(data['runs'][-1]['threads']))}: "
             + _load_said(data), "",
             f"**Noise floor** (the same model, resnet18 at batch 1 on one thread, timed {30} times in a row): "
             f"fastest {noise['min'] * 1e3:.1f} ms, median {_pct(noise['median_over_min'])} above it, slowest "
             f"{_pct(noise['max'] / noise['min'] - 1)} above it; the fastest of five calls varied by "
             f"{_pct(noise['best_of_5_spread'])} between groups of five. A timing below is the fastest of "
             f"{data['repeats']} calls, the models interleaved"
             + (f" (oneDNN's cache of compiled kernels set to {int(data['onednn_primitive_cache']):,} entries: a round "
                "holds some 2,100 distinct convolutions, past the default 1,024, and interleaved models would "
                "otherwise recompile every one at every call, which a model run on its own never does)."
                if data.get("onednn_primitive_cache") else ".")
             + (" The noise floor is wider than the 10% target: no score below can be read more finely than it."
                if noise["median_over_min"] > 0.10 else ""), "",
             ("Each thread count calibrates afresh (`convcost.torch.calibration.measure`: single kernels, and a few "
              "small synthetic networks built from ordinary layers by `convcost.torch.networks`, never a zoo model), "
              "then profiles, predicts and times every model. "
              if _has_network(data) else
              "Each thread count calibrates afresh (`convcost.torch.calibration.measure`: single kernels only, no zoo "
              "model), then profiles, predicts and times every model. ")
             + "Beside convcost's model: **MACs only** "
             "(seconds per MAC fitted on the same calibration kernels) and the **plain roofline** (every kernel at "
             "`max(FLOPs / peak, bytes / bandwidth)`, the measured peak and bandwidth, no fitted factor). "
             + ("A convolution's compute efficiency takes the size of its call (`Machine.pixel_slowdown`: `1 / (1 / "
                "efficiency + pixel_slowdown / P)`, `P` its output positions, batch x height x width; fitted on the "
                "calibration's convolutions timed at batches 1, 2, 4 and 8), in every phase. "
                if data["runs"] and data["runs"][0]["machine"].get("pixel_slowdown") else "")
             + ("At inference, convcost's model adds to each kernel the call's extra time inside a network (its code "
                "and state evicted by the layers before it), measured by the calibration on call-sized kernels after "
                "streaming twice the core's cache (`Machine.cold_overheads`). "
                if data["runs"] and data["runs"][0]["machine"].get("cold_overheads") else "")
             + ("Then every kernel's time (a view's call too) is multiplied by its kind's in-network factor "
                "(`Machine.network`, `convcost.latency_network`): the calibration times the synthetic networks end "
                "to end, at inference (batch 1 at 224x224, batch 8 at 160x160) and as a training step (batch 2 at "
                "224x224), and fits per phase one factor per kind so that the sum of each network's row predictions "
                "matches its time: ridge least squares on relative error toward one factor shared by every kind "
                "(itself held toward 1), so a kind the networks barely use stays near the shared factor and one "
                "noisy timing moves no factor far. "
                if _has_network(data) and not _has_call(data) else "")
             + ("A tensor written into memory the allocator maps afresh (`Machine.alloc_threshold`: the smallest size "
                "from which every page of every call faults, read by the page-fault counter in a process of its own, "
                "32 MiB under glibc) pays its page faults (`Machine.alloc_bandwidth`); in a training step a weight "
                "gradient is such fresh memory too (gradients set to None between steps), and a backward kernel reads "
                "what the forward saved at no more than the copy bandwidth (the forward's tensors were evicted long "
                "before). "
                if _fresh_gradients(data) else "")
             + ("Then every kernel's time (a view's call too) is corrected inside a network (`Machine.network`, "
                "`Machine.network_call`, `convcost.latency_network`): the calibration times the synthetic networks end "
                "to end, at inference (batch 1 at 224x224, batch 8 at 160x160) and as a training step (batch 2 at "
                "224x224), and fits per phase six corrections so that the sum of each network's row predictions "
                "matches its time (ridge least squares on relative error, factors held toward 1 and the per-row term "
                "toward 0): one factor shared by every kind, one factor per kind (held toward the shared one; a kind "
                "no network runs takes the shared factor), or none, each with or without a time per row of the "
                "network (seconds added to every row"
                + (" that runs a kernel; a view's row pays none" if _fresh_gradients(data) else ", views included")
                + "). Each is scored on the networks it was not "
                "fitted on; one is kept only where its error there is at most 0.8 of no correction's, the lowest "
                "kept (the simpler on a tie), else the rows are as the single kernels predict them. "
                if _has_call(data) else "")
             + "Error is predicted / measured - 1. Targets: median error <= 10%, >= 80% within +-20%, every model "
             "within "
             "+-40%, Spearman >= 0.95; a training step: every model within +-30%.", "",
             "| threads | setting | predictor | models | median error | within 10% | within 20% | within 40% | worst "
             "| Spearman |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"predicted": "**convcost**", "macs_only": "MACs only", "roofline": "plain roofline"}
    for run in data["runs"]:
        for label, by in run["scores"].items():
            for p, sc in by.items():
                lines.append(f"| {run['threads']} | {label} | {names[p]} | {sc['count']} | "
                             f"{_pct(sc['median_error'])} | "
                             f"{_pct(sc['within_10'])} | {_pct(sc['within_20'])} | {_pct(sc['within_40'])} | "
                             f"{100 * sc['worst']:+.1f}% | {sc['spearman']:.3f} |")
    if len(data["runs"]) == 1:
        lines += ["", "Only one thread is reported: this run timed one thread alone (`--threads 1`), so no "
                  "all-cores figure is shown, and none from an earlier run (of another calibration) is carried "
                  "over."]
    lines += ["", "Against the targets (convcost's model):", ""]
    for run in data["runs"]:
        for label, by in run["scores"].items():
            sc = by["predicted"]
            if "training" in label:
                verdict = f"every model within +-30%: {'met' if sc['within_30'] == 1 else 'MISSED'} " \
                          f"({_pct(sc['within_30'])} within)"
            else:
                checks = [("median <= 10%", sc["median_error"] <= 0.10), (">= 80% within 20%", sc["within_20"] >= 0.8),
                          ("all within 40%", sc["within_40"] == 1), ("Spearman >= 0.95", sc["spearman"] >= 0.95)]
                verdict = "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in checks)
            lines.append(f"- {run['threads']} thread(s), {label}: {verdict}")
    lines += ["", "![predicted against measured](../benchmarks/results/latency-cpu.png)", ""]
    first = data["runs"][0]
    if first.get("quick_against_full"):
        lines += ["### The quick calibration against the full one",
                  "", f"On the full calibration's kernels ({first['threads']} thread(s)), the quick calibration's "
                  "prediction over the full one's, per kind (median, lowest, highest); the aim is within 1.5x "
                  "(0.67 to 1.5) on every kind."
                  + (f" The full calibration was made before the run, on the same machine and load, with the same "
                     f"clock ({first['quick_against_full']['full_machine']}); the run's own calibration is the quick "
                     "one." if "full_machine" in first["quick_against_full"] else ""), "",
                  "| phase | kind | median | lowest | highest |", "|---|---|---:|---:|---:|"]
        for phase, kinds in first["quick_against_full"].items():
            if phase == "full_machine":
                continue
            for kind, r in kinds.items():
                lines.append(f"| {phase} | {kind} | {r['median']:.2f} | {r['low']:.2f} | {r['high']:.2f} |")
        lines.append("")
    if _has_network(data):
        call = _has_call(data)
        lines += ["### The in-network factors", "",
                  "Fitted by each thread count's calibration on the synthetic networks (1 = the single-kernel "
                  "prediction as it is; "
                  + ("a kind no network runs takes the shared factor; the time per row is added to every row of a "
                     "network, 0 where no fit with it was kept)." if call else "a kind absent from the networks "
                     "keeps 1)."), "",
                  "| threads | phase | " + " | ".join(_network_kinds(data)) + " |"
                  + (" per row (us) |" if call else ""),
                  "|---|---|" + "---:|" * len(_network_kinds(data)) + ("---:|" if call else "")]
        for run in data["runs"]:
            phases = dict.fromkeys([*run["machine"].get("network", {}), *run["machine"].get("network_call", {})])
            for phase in phases:
                factors = run["machine"].get("network", {}).get(phase, {})
                lines.append(f"| {run['threads']} | {phase} | "
                             + " | ".join(f"{factors[k]:.2f}" if k in factors else "" for k in _network_kinds(data))
                             + " |" + (f" {1e6 * run['machine'].get('network_call', {}).get(phase, 0.0):.1f} |"
                                       if call else ""))
        lines.append("")
    spread = first["machine"]["spread"]
    lines += [f"Calibration spread ({first['threads']} thread(s), {spread['passes']} passes): peak "
              f"{_pct(spread['peak'])}, bandwidth {_pct(spread['bandwidth'])}, kernels' median "
              f"{_pct(spread['kernels_median'])}, worst {_pct(spread['kernels_worst'])} (median reading above the "
              f"fastest); {first['calibration_seconds']:.0f} s.", ""]
    lines += ["### Where the MACs break-even and the latency break-even disagree", "",
              f"On the calibrated machine ({first['threads']} thread(s)), `break_even(A, B, metric=\"macs\")` against "
              "`break_even(A, B, metric=\"latency\", machine=m)` over a range of one symbol (other symbols as listed, "
              "N = 1): the values where B wins by each, and where they disagree.", "",
              "| A | B | fields | symbol | B has fewer MACs | B is faster (model) | disagree |",
              "|---|---|---|---|---|---|---|"]
    runs = lambda rs: ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in rs) or "none"  # noqa: E731
    for r in first["break_even"]:
        fields = ", ".join(f"{k}={v}" for k, v in r["fields"].items())
        if "error" in r:
            lines.append(f"| {r['A']} | {r['B']} | {fields} | {r['solve_for']} | {r['error']} | | |")
            continue
        lines.append(f"| {r['A']} | {r['B']} | {fields} | {r['solve_for']} in {r['range'][0]}..{r['range'][1]} | "
                     f"{runs(r['macs_wins'])} | {runs(r['latency_wins'])} | {runs(r['disagree'])} |")
    lines += ["", "### Per model", "", "| threads | setting | model | MACs | measured | predicted | error | MACs only "
              "| roofline |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for run in data["runs"]:
        for e in run["entries"]:
            if "measured" not in e:
                continue
            lines.append(f"| {run['threads']} | {e['setting']} | {e['model']} | {e['macs'] / 1e6:,.0f}M | "
                         f"{e['measured'] * 1e3:.1f} ms | {e['predicted'] * 1e3:.1f} ms | "
                         f"{100 * (e['predicted'] / e['measured'] - 1):+.1f}% | "
                         f"{100 * (e['macs_only'] / e['measured'] - 1):+.1f}% | "
                         f"{100 * (e['roofline'] / e['measured'] - 1):+.1f}% |")
    skipped = [e for run in data["runs"] for e in run["entries"] if "skipped" in e]
    if skipped:
        lines += ["", "Not run:", ""] + [f"- {e['model']} {e.get('setting', '')}: {e['skipped']}" for e in skipped]
    return lines + [""]


def main() -> int:
    kernels, profile, region = _load("kernels-cpu.json"), _load("profile.json"), _load("region.json")
    costs = _load("cost.json")
    lines = ["# Benchmarks", "", "Written by `benchmarks/docs.py` from `benchmarks/results/`: rerun a benchmark, "
             "then `.venv/bin/python benchmarks/docs.py > docs/benchmarks.md`.", ""]
    if costs:
        lines += cost_section(costs)
    versus = _load("profile_vs_flopcounter.json")
    if versus:
        lines += versus_section(versus)
    first_call = _load("first_call.json")
    if first_call:
        lines += first_call_section(first_call)
    if profile:
        lines += profile_section(profile)
    training = _load("training-cpu.json")
    if training:
        lines += training_section(training)
    if region:
        lines += region_section(region)
    latency = _load("latency-cpu.json")
    if latency:
        lines += latency_section(latency)
    if kernels:
        lines += kernels_section(kernels)
        lines += ["### Table",
                  "Classes: a row is `depthwise_conv` or `grouped_conv` if any of its kernels is, else the kind of "
                  "its slowest kernel on the roofline. Bound and FLOP/byte use convcost's `memory_access` x 4 bytes.",
                  "", kernel_table(kernels)]
    sys.stdout.write("\n".join(lines).rstrip("\n") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
