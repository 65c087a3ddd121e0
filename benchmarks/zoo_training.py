"""profile(model, x, training=True) against the measured training step on public model zoos (torchvision, timm).

Run in the venv of ``benchmarks/zoo_agreement.py`` (torch pinned, ``pip install --no-deps torchvision timm
pyyaml``): ``python benchmarks/zoo_training.py [--limit N] [--size 64] [--batch 2]``. Each model is built
without pretrained weights and read in training mode at a small input; the oracle is
:func:`convcost.torch.measure_training.measure_training` on real CPU tensors (FlopCounterMode over the backward, with
torch 2.13's grouped weight-gradient overcount divided out for convcost's convention; saved-tensor hooks by
distinct storage; the optimizer's state after one real Adam step). Writes benchmarks/results/zoo_training.json
and docs/zoo_training.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo_agreement import build, candidates, import_torchvision, left_as_it_was

from convcost.torch import profile, runtime
from convcost.torch.measure_training import measure_training

RESULTS = Path(__file__).parent / "results" / "zoo_training.json"
DOC = Path(__file__).parents[1] / "docs" / "zoo_training.md"
FIELDS = ("backward_macs", "backward_macs_torch", "saved_elements", "saved_indices", "bytes")


def markdown(rows, size, batch) -> str:
    ran = [r for r in rows if "skipped" not in r]
    complete = [r for r in ran if r.get("complete")]
    exact = [r for r in complete if r.get("agree")]
    lines = ["# A training step on public model zoos", "",
             "Written by `benchmarks/zoo_training.py` (torch " + torch.__version__ + "; torchvision and timm "
             f"installed with `--no-deps` in a separate venv; no pretrained weights; input {batch}x3x{size}x{size} "
             "or the model's own size). convcost's `profile(model, shape, training=True)` against the step PyTorch "
             "runs: backward MACs (convcost's convention and FlopCounterMode's), saved elements and int64 indices "
             "(saved-tensor hooks, each storage once) and the bytes of parameters, gradients, Adam's "
             "state and saved tensors.", "",
             f"**{len(ran)} models read; {len(complete)} with every backward counted, of which {len(exact)} agree "
             f"exactly on all five numbers; left as it was on {sum(_left(r) for r in ran)}.** A step convcost "
             f"cannot count completely lists what it cannot count (`report.training.untracked`) and refuses its "
             f"memory, never a silent zero. FlopCounterMode counts "
             f"nothing for the CPU's fused attention kernel (forward or backward): there convcost's backward MACs "
             f"are compared after taking out that kernel's backward, B H L S (3 E + 2 Ev), which "
             f"tests/test_profile_training.py checks by hand; nor for the backward of oneDNN's fused LSTM: a model "
             f"with an LSTM has its backward MACs measured with oneDNN off, where PyTorch runs the cells in "
             "matmuls FlopCounterMode counts (tests/test_training_lstm.py). Each row is that "
             "model's latest run: `--retry` "
             f"reruns only the models an earlier run did not count completely and exactly.", "",
             "*Left as it was:* after `profile(..., training=True)`, the model's state dict (running statistics "
             "included) equals a copy taken just before it, and its next real forward, in eval mode and then in "
             "train mode (the same random draws), gives exactly what the copy's gives (a random batch of two; "
             "`torch.equal`).", "",
             "| source | model | complete | agrees | backward MACs | saved elements | bytes (Adam) | left as it was | "
             "not counted, or convcost's numbers |",
             "|---|---|---|---|---:|---:|---:|---|---|"]
    for r in ran:
        if "error" in r:
            lines.append(f"| {r['source']} | {r['model']} | error | | | | | {r.get('left_as_it_was', 'not checked')} "
                         f"| {r['error'][:100]} |")
            continue
        want = r["measured"]
        lines.append(f"| {r['source']} | {r['model']} | {'yes' if r['complete'] else 'no'} | "
                     f"{'yes' if r.get('agree') else ('NO' if r['complete'] else '')} | {want['backward_macs']:,} | "
                     f"{want['saved_elements']:,} | {want['bytes']:,} | {r.get('left_as_it_was', 'not checked')} | "
                     f"{', '.join(r.get('untracked', [])) or _ours(r)} |")
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        lines += ["", "Not run (PyTorch could not build or train them here):", ""]
        lines += [f"- {r['source']} {r['model']}: {r['skipped']}" for r in skipped]
    return "\n".join(lines) + "\n"


def _left(row) -> bool:
    return str(row.get("left_as_it_was", "")).startswith("yes")


def one(source, name, size, batch) -> dict:
    """One model's row: the measured step and convcost's reading of it."""
    row = {"source": source, "model": name}
    try:
        import_torchvision()  # timm imports torchvision: its failing fake-op registrations skipped first
        torch.manual_seed(0)
        model = build(source, name)
        size = size if "inception" not in name else max(size, 96)
        x = torch.randn(batch, 3, size, size)
        try:
            measured = measure_training(model, x, optimizer="adam")
        except Exception:  # noqa: BLE001 - a model made for one input size
            size = getattr(model, "default_cfg", {}).get("input_size", (3, 224, 224))[-1]
            x = torch.randn(batch, 3, size, size)
            measured = measure_training(model, x, optimizer="adam")
        if any(isinstance(m, torch.nn.LSTM) for m in model.modules()):
            measured.update(_without_onednn(model, x))
    except Exception as exc:  # noqa: BLE001 - a model PyTorch cannot build or train here: said so
        row["skipped"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        return row
    row.update(size=size, measured={k: measured[k] for k in FIELDS})
    before = copy.deepcopy(model)  # after the measured step (it moved the weights), before convcost's reading
    t = time.perf_counter()
    try:
        report = profile(model, tuple(x.shape), training=True)
        row.update(compare_step(report, row["measured"]))
    except Exception as exc:  # noqa: BLE001
        row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    row["seconds"] = round(time.perf_counter() - t, 3)
    row["left_as_it_was"] = left_as_it_was(model, before, x)
    return row


def fused_attention(report) -> list:
    """The rows of the CPU's fused attention kernel where the running release's FlopCounterMode does not count
    it (forward or backward: before torch 2.15); none from 2.15 on."""
    if runtime.flop_counter().fused_attention:
        return []
    return [r for r in report.rows if type(r.spec).__name__ == "Attention" and r.spec.fused(r.input_shapes)]


def compare_step(report, measured) -> dict:
    """convcost's step (``report.training``) against ``measured`` (:func:`measure_training`'s numbers): its
    own numbers, whether it is complete, what it lists, whether all five agree, whether the numbers it gave
    agree (the bytes left out where it refuses them), and which differ."""
    step = report.training
    # what FlopCounterMode does not count of the CPU's fused attention kernel: its backward, by convcost's formula
    fused = sum(r.backward_macs for r in fused_attention(report))
    ours = dict(backward_macs=step.backward_macs, backward_macs_torch=step.backward_macs_torch,
                saved_elements=step.saved_elements, saved_indices=step.saved_indices,
                bytes=step.memory("adam") if step.complete else None)
    seen = dict(ours, backward_macs=ours["backward_macs"] - fused,
                backward_macs_torch=ours["backward_macs_torch"] - fused)
    counted = [k for k in FIELDS if seen[k] is not None]
    differs = [f"{k} {seen[k]:,} against {measured[k]:,}" for k in counted if seen[k] != measured[k]]
    return dict(ours=ours, fused_attention_backward=fused, complete=step.complete,
                untracked=[f"{op} x{n}" for op, n, _, _ in step.untracked],
                agree=step.complete and seen == measured, counted_agree=not differs, differs=", ".join(differs))


def _without_onednn(model, x) -> dict:
    """Backward MACs with oneDNN off: FlopCounterMode cannot see the backward of oneDNN's fused LSTM, and
    without oneDNN PyTorch runs an LSTM cell by cell, in matmuls it counts (saved tensors stay measured on
    the path PyTorch takes)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        off = measure_training(model, x, optimizer="adam")
    finally:
        torch.backends.mkldnn.enabled = before
    return {"backward_macs": off["backward_macs"], "backward_macs_torch": off["backward_macs_torch"]}


def _ours(r) -> str:
    """convcost's numbers where a complete step disagrees with PyTorch's."""
    if not r.get("complete") or r.get("agree"):
        return ""
    o, fused = r["ours"], r.get("fused_attention_backward", 0)
    return (f"convcost: backward {o['backward_macs'] - fused:,}, saved {o['saved_elements']:,}, "
            f"bytes {o['bytes']:,}")


def main(argv=None):
    import subprocess

    args = argparse.ArgumentParser()
    args.add_argument("--limit", type=int, default=0)
    args.add_argument("--size", type=int, default=64)
    args.add_argument("--batch", type=int, default=2)
    args.add_argument("--budget", type=float, default=0, help="stop after this many seconds")
    args.add_argument("--retry", action="store_true", help="run again the models results/zoo_training.json did not "
                      "count completely and exactly (with the code as it is now), and the ones it did not reach")
    args.add_argument("--one", nargs=2, metavar=("SOURCE", "NAME"), help=argparse.SUPPRESS)
    opts = args.parse_args(argv)
    if opts.one:  # each model in a process of its own: a training step's memory is given back to the system
        print(json.dumps(one(*opts.one, opts.size, opts.batch)))
        return
    rows, began, todo = [], time.time(), candidates(opts.limit)
    if opts.retry:
        old = {(r["source"], r["model"]): r for r in json.loads(RESULTS.read_text())["rows"]}
        good = {k: r for k, r in old.items() if r.get("agree")
                or "skipped" in r and not any(w in r["skipped"] for w in ("process ended", "torchvision::"))}
        rows = [good[k] for k in todo if k in good]
        todo = [k for k in todo if k not in good]
    for source, name in todo:
        if opts.budget and time.time() - began > opts.budget:
            break
        done = subprocess.run([sys.executable, __file__, "--one", source, name, "--size", str(opts.size),
                               "--batch", str(opts.batch)], capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        row = json.loads(lines[-1]) if done.returncode == 0 and lines else {
            "source": source, "model": name, "skipped": f"the process ended with {done.returncode} "
            f"({(done.stderr.strip().splitlines() or ['?'])[-1][:120]})"}
        rows.append(row)
        RESULTS.write_text(json.dumps({"size": opts.size, "batch": opts.batch, "torch": torch.__version__,
                                       "rows": rows}, indent=1))
        print(name, row.get("complete"), row.get("agree"), row.get("untracked"),
              row.get("error", row.get("skipped", "")), "left as it was:", row.get("left_as_it_was"), flush=True)
    DOC.write_text(markdown(rows, opts.size, opts.batch))
    ran = [r for r in rows if "skipped" not in r]
    print(f"{len(ran)} models: complete {sum(bool(r.get('complete')) for r in ran)}, "
          f"agree {sum(bool(r.get('agree')) for r in ran)}")


if __name__ == "__main__":
    main()
