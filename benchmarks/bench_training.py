"""Speed of reading a training step from shapes against running it, per model, in one run.

For each model, in a fresh Python process of its own (so a first call is a first call), in this order:

* **convcost**: ``profile(model, shape, training=True)``, then ``report.training.memory("adam")``. Its
  **first call** is the process's first reading of any model, after ``import convcost.torch``: it pays
  what a process pays once (lazy imports; where a reading runs one of torch's reference decompositions and
  nothing imported ``torch._dynamo`` before, that import, about a second: torchvision imports it when the
  model is built, so only the models without it pay it, and the row records whether its first call did);
  its **warm call** is the median of ``--repeats`` further calls on the same model object;
* **max_batch**: ``convcost.torch.max_batch(model, shape, memory="24GiB")``, which reads the step at batch
  1 and 2, guesses N from the line through them and proves it by reading N and N + 1 (at least four
  readings: it does not solve a symbolic batch), first call and warm median;
* **torchinfo**: ``summary(model, shape, mode="train", verbose=0)``, the nearest peer that prints a memory
  estimate ("Forward/backward pass size"): a real forward under ``no_grad`` with a hook on every module;
* **training step**: what a user runs to see a step's numbers, ``model(x).sum().backward()`` in train
  mode on a random input of the same shape (gradients set to None, outside the timing, before each);
* **measure_training**: ``convcost.torch.measure_training.measure_training(model, x)``, the oracle convcost's tests
  hold the reading to (saved-tensor hooks, FlopCounterMode over the backward, one Adam step): several real
  steps, so it is timed ``--oracle-repeats`` times (default once, after the steps above have warmed the
  process) and its median reported.

Every call is timed by ``benchmarks/timing.py``'s rule (a full garbage collection, then the call); a
warm time is the median of its calls (every sample is kept in the results). The numbers are recorded next
to the times, so speed is never bought with exactness: convcost's backward MACs, saved elements and step
bytes with Adam against measure_training's (FlopCounterMode counts nothing for the CPU's fused attention
kernel, so that kernel's backward is taken out first, as benchmarks/zoo_training.py does), and torchinfo's
estimate beside them. torch threads: ``--threads``, default 1 (see
``main``: on a shared machine more threads slow the real step by far more than they speed it). Writes
benchmarks/results/training-cpu.json.

Run with the repository on the path: ``PYTHONPATH=. python benchmarks/bench_training.py``. The
torchvision and timm models need a venv holding them (``pip install --no-deps torchvision timm pyyaml``,
imported as ``benchmarks/zoo_agreement.py`` does) and torchinfo (``pip install --no-deps torchinfo``);
a model or tool that cannot be imported is reported as not run, so the convcost zoo's models and the
hand-written transformer also run with convcost's own dependencies and torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import once

#: (source, name): torchvision's and timm's built without weights, convcost's zoo by ``to_torch``, and a
#: hand-written transformer encoder (nn.MultiheadAttention) that needs nothing but torch
MODELS = (
    ("torchvision", "resnet50"),
    ("torchvision", "convnext_tiny"),
    ("torchvision", "swin_t"),
    ("torchvision", "vit_b_16"),
    ("torchvision", "maxvit_t"),
    ("torchvision", "mobilenet_v3_large"),
    ("torchvision", "efficientnet_b0"),
    ("timm", "vit_small_patch16_224"),
    ("zoo", "mobilenet_v2"),
    ("zoo", "resnet18"),
    ("hand", "transformer_encoder"),
)
BATCH, SIZE, MEMORY = 4, 224, "24GiB"
RESULTS = Path(__file__).parent / "results" / "training-cpu.json"


def build(source: str, name: str):
    """The model in train mode (random weights), or ImportError when its library is not installed."""
    import torch

    if source == "zoo":
        from convcost import zoo

        return getattr(zoo, name)().to_torch().train()
    if source == "hand":
        return transformer_encoder().train()
    from zoo_agreement import build as build_public
    from zoo_agreement import import_torchvision

    import_torchvision()  # timm imports torchvision: its failing fake-op registrations skipped first
    torch.manual_seed(0)
    return build_public(source, name).train()


def transformer_encoder():
    """A ViT-S-like classifier from torch.nn alone: 16x16 patches, 6 encoder layers of width 384."""
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self, width=384, layers=6, heads=6, classes=1000):
            super().__init__()
            self.patches = nn.Conv2d(3, width, 16, stride=16)
            layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.1, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, classes)

        def forward(self, x):
            tokens = self.patches(x).flatten(2).transpose(1, 2)
            return self.head(self.norm(self.encoder(tokens)).mean(1))

    return Classifier()


def _warm(fn, repeats: int) -> dict:
    """The median of ``repeats`` calls, each timed alone (every sample kept)."""
    samples = [once(fn) for _ in range(repeats)]
    return {"median_s": statistics.median(samples), "best_s": min(samples), "samples_s": samples}


def run_one(source: str, name: str, batch: int, size: int, repeats: int, oracle_repeats: int) -> dict:
    """Every tool on one model, in this (fresh) process, convcost first so its first call is the process's."""
    import torch

    from convcost.torch import max_batch, profile
    from convcost.torch.measure_training import measure_training

    try:
        model = build(source, name)
    except ImportError as exc:
        return {"missing": str(exc)}
    shape = (batch, 3, size, size)
    out = {"source": source, "shape": shape, "params": sum(p.numel() for p in model.parameters())}

    def read():
        report = profile(model, shape, training=True)
        step = report.training
        return report, step.memory("adam") if step.complete else None

    reading = {}
    dynamo = "torch._dynamo" in sys.modules  # torchvision imports it; a first reading may have to (about 1 s)
    out["convcost"] = {"first_s": once(lambda: reading.setdefault("step", read()))}
    out["convcost"]["first_call_imported_dynamo"] = not dynamo and "torch._dynamo" in sys.modules
    out["convcost"].update(_warm(read, repeats))
    report, memory = reading["step"]
    step = report.training
    # FlopCounterMode counts nothing for the CPU's fused attention kernel: its backward, by convcost's formula,
    # is taken out before comparing (as benchmarks/zoo_training.py does)
    fused = sum(r.backward_macs for r in report.rows if type(r.spec).__name__ == "Attention"
                and r.spec.fused(r.input_shapes))
    out["reading"] = {"backward_macs": int(step.backward_macs), "fused_attention_backward": int(fused),
                      "saved_elements": int(step.saved_elements), "complete": step.complete, "bytes_adam": memory}
    fits = {}
    out["max_batch"] = {"first_s": once(lambda: fits.setdefault("n", max_batch(model, shape, memory=MEMORY))),
                        **_warm(lambda: max_batch(model, shape, memory=MEMORY), repeats)}
    out["reading"]["max_batch"] = fits["n"]
    out["reading"]["max_batch_readings"] = _readings(lambda: max_batch(model, shape, memory=MEMORY))

    try:
        from torchinfo import summary
    except ImportError as exc:
        out["torchinfo"] = {"missing": str(exc)}
    else:
        stats = {}
        try:
            out["torchinfo"] = {
                "first_s": once(lambda: stats.setdefault("s", summary(model, shape, mode="train", verbose=0))),
                **_warm(lambda: summary(model, shape, mode="train", verbose=0), repeats)}
        except Exception as exc:  # noqa: BLE001 - the peer's own failure, said in its column
            out["torchinfo"] = {"failed": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
        else:
            s = stats["s"]
            out["torchinfo"].update(forward_backward_bytes=int(s.total_output_bytes),
                                    total_bytes=int(s.total_input + s.total_output_bytes + s.total_param_bytes))

    torch.manual_seed(0)
    x = torch.randn(shape)

    def train_step():
        model(x).sum().backward()

    def fresh_step():  # every step allocates its gradients, as the first one does
        model.zero_grad(set_to_none=True)
        return once(train_step)

    first = fresh_step()
    samples = [fresh_step() for _ in range(repeats)]
    out["training_step"] = {"first_s": first, "median_s": statistics.median(samples), "best_s": min(samples),
                            "samples_s": samples}
    model.zero_grad(set_to_none=True)

    measured = {}
    out["measure_training"] = _warm(lambda: measured.update(measure_training(model, x)), oracle_repeats)
    out["measured"] = {k: measured[k] for k in ("backward_macs", "saved_elements", "bytes")}
    ours = {"backward_macs": int(step.backward_macs) - int(fused), "saved_elements": int(step.saved_elements),
            "bytes": memory}
    out["disagree"] = [k for k in ours if ours[k] != measured[k]]
    return out


def _readings(fn) -> int:
    """How many steps ``fn`` (a max_batch call, untimed) reads: its calls of fit.step_memory, counted."""
    from convcost.torch import fit

    calls, real = [], fit.step_memory

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    fit.step_memory = counted
    try:
        fn()
    finally:
        fit.step_memory = real
    return len(calls)


def ratios(row: dict) -> dict:
    """convcost's warm reading over each peer's warm time (below 1: the reading is faster), and first over first."""
    mine = row["convcost"]
    out = {}
    for peer in ("training_step", "measure_training", "torchinfo"):
        if "median_s" in row.get(peer, {}):
            out[peer] = mine["median_s"] / row[peer]["median_s"]
            if "first_s" in row[peer]:
                out[f"{peer}_first"] = mine["first_s"] / row[peer]["first_s"]
    return out


def machine(threads: int) -> str:
    from bench_profile import machine as described

    return described(threads)


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--oracle-repeats", type=int, default=1)
    # one thread by default: on a machine shared with other work, torch's default (a thread per core) loses
    # every OpenMP barrier to the other tenants, and a real step ran 10-30x slower than on one thread, which
    # would flatter the reading; a reading is single-threaded Python either way
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="*", help="names to run (default: all of MODELS)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--one", nargs=2, metavar=("SOURCE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(run_one(*args.one, args.batch, args.size, args.repeats, args.oracle_repeats)))
        return
    # byte-compiled, as pip install leaves a package (see bench_profile.py)
    import compileall

    import convcost

    compileall.compile_dir(os.path.dirname(convcost.__file__), quiet=1)
    began = time.time()
    results = {"machine": machine(args.threads), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "batch": args.batch, "size": args.size, "memory": MEMORY, "repeats": args.repeats,
               "oracle_repeats": args.oracle_repeats, "models": {}}
    for source, name in MODELS:
        if args.models and name not in args.models:
            continue
        done = subprocess.run([sys.executable, __file__, "--one", source, name, "--batch", str(args.batch),
                               "--size", str(args.size), "--repeats", str(args.repeats), "--oracle-repeats",
                               str(args.oracle_repeats), "--threads", str(args.threads)], capture_output=True,
                               text=True)
        lines = done.stdout.strip().splitlines()
        row = json.loads(lines[-1]) if done.returncode == 0 and lines else {
            "failed": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:200]}
        if "convcost" in row:
            row["ratios"] = ratios(row)
        results["models"][name] = row
        print(name, json.dumps(row.get("ratios", row)), file=sys.stderr, flush=True)
    results["seconds"] = time.time() - began
    results["medians"] = medians(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(table(results)))


def medians(results: dict) -> dict:
    """The median of each ratio over the models that have it."""
    keys = {k for r in results["models"].values() for k in r.get("ratios", {})}
    return {k: statistics.median(r["ratios"][k] for r in results["models"].values() if k in r.get("ratios", {}))
            for k in sorted(keys)}


def _ms(tool: dict, key: str = "median_s") -> str:
    return f"{1e3 * tool[key]:,.0f}" if key in tool else "-"


def _mib(n) -> str:
    return f"{n / 2**20:,.0f}" if n is not None else "-"


def _ratio(r: dict, key: str) -> str:
    return f"{r[key]:.3f}" if key in r else "-"


def table(results: dict) -> list:
    """The Markdown tables of a run: warm times and ratios, then first calls (no torch needed)."""
    lines = ["| model | input | profile warm (ms) | max_batch warm (ms) | training step (ms) | measure_training (ms) "
             "| torchinfo (ms) | profile / step | profile / measure_training | profile / torchinfo | numbers agree |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    rows = results["models"]
    for name, r in rows.items():
        if "convcost" not in r:
            lines.append(f"| {name} | not run: {r.get('missing') or r.get('failed')} |||||||||")
            continue
        q = r["ratios"]
        lines.append(f"| {r['source']} {name} | {'x'.join(map(str, r['shape']))} | {_ms(r['convcost'])} | "
                     f"{_ms(r['max_batch'])} | {_ms(r['training_step'])} | {_ms(r['measure_training'])} | "
                     f"{_ms(r['torchinfo'])} | {_ratio(q, 'training_step')} | {_ratio(q, 'measure_training')} | "
                     f"{_ratio(q, 'torchinfo')} | {'NO: ' + ', '.join(r['disagree']) if r['disagree'] else 'yes'} |")
    m = results["medians"]
    lines.append(f"| **median** | | | | | | | **{_ratio(m, 'training_step')}** | **{_ratio(m, 'measure_training')}** "
                 f"| **{_ratio(m, 'torchinfo')}** | |")
    lines += ["",
              "| model | profile first (ms) | max_batch first (ms) | training step first (ms) | torchinfo first (ms) "
              "| profile / step, first calls | profile / torchinfo, first calls | max_batch's N (readings) "
              "| step bytes, Adam (MiB) | torchinfo's estimate (MiB) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        if "convcost" not in r:
            continue
        q = r["ratios"]
        lines.append(f"| {r['source']} {name} | {_ms(r['convcost'], 'first_s')} | {_ms(r['max_batch'], 'first_s')} | "
                     f"{_ms(r['training_step'], 'first_s')} | {_ms(r['torchinfo'], 'first_s')} | "
                     f"{_ratio(q, 'training_step_first')} | {_ratio(q, 'torchinfo_first')} | "
                     f"{r['reading']['max_batch']:,} ({r['reading']['max_batch_readings']}) | "
                     f"{_mib(r['reading']['bytes_adam'])} | "
                     f"{_mib(r['torchinfo'].get('total_bytes'))} |")
    lines.append(f"| **median** | | | | | **{_ratio(m, 'training_step_first')}** | **{_ratio(m, 'torchinfo_first')}** "
                 "| | | |")
    return lines


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
