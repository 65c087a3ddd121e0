"""``profile``'s first call against one FlopCounterMode forward, on transformers zoo models.

Run in the transformers venv (as ``benchmarks/zoo_transformers.py``): ``python benchmarks/bench_first_call.py
[--only TYPE ...] [--attention eager sdpa] [--repeats N]``, then ``.venv/bin/python benchmarks/docs.py >
docs/benchmarks.md`` (its section is :func:`section`). Each configuration (a model type and an
attention) runs in fresh processes: the model is built as the zoo builds it (:func:`zoo_transformers.build`,
:func:`zoo_transformers.inputs_for`, :class:`zoo_transformers.First`), convcost is imported, then
``profile(model, inputs)`` and one ``FlopCounterMode`` forward on the same inputs (``zoo_transformers.forward_macs``)
are timed once each, after a full garbage collection (as ``benchmarks/timing.py`` does), in two processes: one runs
profile first, the other FlopCounterMode first. Whichever goes first pays what the two share and what the model's own
code costs the first time it runs (transformers' mask code, the interpreter specialising it, torch's first calls of
each operator, the allocator), so the ratio is taken on each tool's first call in a process of its own (its "cold"
time: profile's from the first process, FlopCounterMode's from the second); the ratio of the first process alone
(profile first, FlopCounterMode after it, which leans against convcost) is kept beside it. Each is timed twice: the
CPU time of the process (``time.process_time``), which the ratios are taken on, and the wall clock. On a machine
shared with other work the wall clock is mostly other processes' time slices (the CPU time is not), so torch runs on
``--threads`` threads (default 1: both tools on one core, so that CPU time and a quiet machine's wall clock agree).
``--repeats N`` runs N such pairs of processes per configuration and keeps the median ratio.
Writes benchmarks/results/first_call.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "first_call.json"
#: the models of issue 26's slow list (their mask code reads values, or did), and a spread of the zoo's kinds
MODELS = ("fast_vlm", "qwen3_omni_moe_thinker", "openai_privacy_filter", "llama4", "llama4_text", "rembert", "bert",
          "layoutlm", "ibert", "convbert", "deberta", "xlm", "flaubert", "gpt2", "llama", "mixtral", "qwen2", "phi3",
          "t5", "bart", "whisper", "vit", "swin", "wav2vec2", "mllama", "llava_onevision", "smolvlm")
ATTENTION = ("eager", "sdpa")
SECTION = "## `profile`'s first call against one FlopCounterMode forward: the transformers zoo"


def timed(fn) -> tuple:
    """(CPU seconds of this process, wall seconds) of one call of ``fn``, after a full garbage collection."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def child(kind: str, attention: str, threads: int, first: str = "profile") -> dict:
    """One configuration in this (fresh) process: the model built, then profile's first call and one
    FlopCounterMode forward, timed, ``first`` (``"profile"`` or ``"flopcounter"``) first."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import torch
    from zoo_transformers import First, build, count_grouped_mm, forward_macs, inputs_for

    torch.set_num_threads(threads)

    row = {"model": kind, "attention": attention}
    count_grouped_mm()
    try:
        model = build(kind, attention)
        names, xs, fixed = inputs_for(model)
        wrapped = First(model, names, fixed).eval()
    except Exception as exc:  # noqa: BLE001 - what transformers cannot build here: said so
        row["skipped"] = f"{type(exc).__name__}: {str(exc)[:150]}"
        return row
    from convcost.torch import profile

    got = {}
    for side in (("profile", "flopcounter") if first == "profile" else ("flopcounter", "profile")):
        if side == "flopcounter":
            row["flopcounter_s"], row["flopcounter_wall_s"] = timed(
                lambda: got.setdefault("macs", forward_macs(wrapped, xs)))
            continue
        try:
            row["profile_s"], row["profile_wall_s"] = timed(lambda: got.setdefault("report", profile(wrapped, xs)))
        except Exception as exc:  # noqa: BLE001
            row["skipped"] = f"profile: {type(exc).__name__}: {str(exc)[:150]}"
            return row
    report = got["report"]
    row.update(first=first, reading=report.traced_with, ratio=row["profile_s"] / row["flopcounter_s"],
               wall_ratio=row["profile_wall_s"] / row["flopcounter_wall_s"])
    return row


def paired(profile_first: dict, flopcounter_first: dict) -> dict:
    """One repeat of a configuration from its two processes: the ratio of each tool's first call in a process of its
    own (``ratio``), and the first process's own (profile first, ``same_process_ratio``)."""
    if "ratio" not in profile_first:
        return profile_first
    if "ratio" not in flopcounter_first:
        return flopcounter_first
    row = dict(profile_first)
    row.update(flopcounter_s=flopcounter_first["flopcounter_s"],
               flopcounter_wall_s=flopcounter_first["flopcounter_wall_s"],
               ratio=profile_first["profile_s"] / flopcounter_first["flopcounter_s"],
               wall_ratio=profile_first["profile_wall_s"] / flopcounter_first["flopcounter_wall_s"],
               same_process_ratio=profile_first["ratio"], same_process_flopcounter_s=profile_first["flopcounter_s"])
    row.pop("first", None)
    return row


def run(kind: str, attention: str, threads: int, timeout: float, first: str = "profile") -> dict:
    try:
        ran = subprocess.run([sys.executable, __file__, "--child", kind, attention, str(threads), first],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"model": kind, "attention": attention, "skipped": f"over the {timeout:g} s timeout"}
    lines = [line for line in ran.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (ran.stderr.strip().splitlines() or ["?"])[-1][:150]
        return {"model": kind, "attention": attention, "skipped": f"the process ended with {ran.returncode} ({tail})"}
    return json.loads(lines[-1])


def summary(rows) -> dict:
    timed = [r for r in rows if "ratio" in r]
    ratios = [r["ratio"] for r in timed]
    worst = max(timed, key=lambda r: r["ratio"]) if timed else None
    return {"configurations": len(timed), "median_ratio": statistics.median(ratios) if ratios else None,
            "worst": worst and {k: worst[k] for k in ("model", "attention", "ratio", "reading")},
            "slower": [f"{r['model']} ({r['attention']})" for r in timed if r["ratio"] >= 1]}


def section(results) -> list:
    """The lines of docs/benchmarks.md's section (``benchmarks/docs.py``) from the results."""
    rows = [r for r in results["rows"] if "ratio" in r]
    s, before = results["summary"], results.get("before")
    paired_run = results.get("method") == "paired"  # (an earlier run timed both in one process, profile first)
    threads = results.get("threads", 1)
    if paired_run:
        method = ("runs in two fresh processes: one times `profile(model, inputs)`, then one `FlopCounterMode` forward "
                  "on the same inputs; the other the same two the other way round. Whichever runs first pays what the "
                  "two share and what the model's own code costs the first time it runs (its mask code, the "
                  "interpreter specialising it, torch's first call of each operator), so the ratio is profile's first "
                  "call over FlopCounterMode's first forward, each the first in its process. The ratio of the first "
                  "process alone (profile first, FlopCounterMode after it: leaning against convcost) is kept beside "
                  f"it. Times are the CPU time of the process, torch on {threads} thread(s); the wall-clock ratio is "
                  f"kept beside it. Each ratio is the median of {results['repeats']} such pair(s) of processes.")
    else:
        method = ("runs in a fresh process: `profile(model, inputs)` is timed once, the process's first reading, then "
                  "one `FlopCounterMode` forward on the same inputs. profile goes first, so it pays what the two "
                  "share (imports, the allocator, the first kernels): the ratio (profile's time over "
                  "FlopCounterMode's) leans against convcost. Times are the CPU time of the process, torch on "
                  f"{threads} thread(s); the wall-clock ratio is kept beside it. Each ratio is the median of "
                  f"{results['repeats']} fresh process(es).")
    lines = [SECTION, "",
             "`python benchmarks/bench_first_call.py` in the transformers venv; results in "
             "`benchmarks/results/first_call.json`. Each configuration (a model type of the transformers zoo, built "
             f"as `benchmarks/zoo_transformers.py` builds it, with eager or sdpa attention) {method}", "",
             "| model | attention | convcost's reading | profile first, CPU (ms) | FlopCounterMode "
             + ("first" if paired_run else "forward") + ", CPU (ms) | ratio | wall-clock ratio |"
             + (" same process, profile first |" if paired_run else "")
             + (f" ratio {before['label']} | reading {before['label']} |" if before else ""),
             "|---|---|---|---:|---:|---:|---:|" + ("---:|" if paired_run else "") + ("---:|---|" if before else "")]
    for r in sorted(rows, key=lambda r: -r["ratio"]):
        was = before and before["ratios"].get(f"{r['model']} ({r['attention']})")
        same = r.get("same_process_ratio")
        lines.append(f"| {r['model']} | {r['attention']} | {r['reading']} | {1000 * r['profile_s']:.1f} | "
                     f"{1000 * r['flopcounter_s']:.1f} | {r['ratio']:.2f} | {r['wall_ratio']:.2f} |"
                     + (f" {'' if same is None else f'{same:.2f}'} |" if paired_run else "")
                     + ((f" {was[0]:.2f} | {was[1]} |" if was else " | |") if before else ""))
    skipped = [r for r in results["rows"] if "ratio" not in r]
    for update in results.get("updated", []):
        lines += ["", f"Timed again after the run, each in {update['repeats']} pairs of processes (their rows above "
                  f"are these): {', '.join(sorted(update['configurations']))}. {update['note']} {update['machine']}"
                  .rstrip()]
    lines += ["", f"{s['configurations']} configurations: median ratio **{s['median_ratio']:.2f}**, worst "
              f"{s['worst']['ratio']:.2f} ({s['worst']['model']}, {s['worst']['attention']}); slower than "
              f"FlopCounterMode (ratio 1 or more): {', '.join(s['slower']) or 'none'}."
              + (f" {before['label'].capitalize()}: median {before['summary']['median_ratio']:.2f}, worst "
                 f"{before['summary']['worst']['ratio']:.2f} ({before['summary']['worst']['model']}, "
                 f"{before['summary']['worst']['attention']}), slower: "
                 f"{', '.join(before['summary']['slower']) or 'none'}." if before else "")
              + (f" Not timed (transformers builds no such configuration here): "
                 f"{', '.join(r['model'] + ' (' + r['attention'] + ')' for r in skipped)}." if skipped else ""), "",
              (results["machine"] + " " + results["note"]).strip(), ""]
    return lines


def main(argv=None):
    args = argparse.ArgumentParser()
    args.add_argument("--only", nargs="*", default=None, help="only these model types")
    args.add_argument("--attention", nargs="*", default=list(ATTENTION))
    args.add_argument("--repeats", type=int, default=1, help="fresh processes per configuration (median kept)")
    args.add_argument("--timeout", type=float, default=300)
    args.add_argument("--note", default="", help="a sentence on the run, kept in the results and the doc")
    args.add_argument("--before", help="a results file of an earlier run (same method): its ratios kept beside")
    args.add_argument("--before-label", default="before", help="what the earlier run ran (a commit)")
    args.add_argument("--threads", type=int, default=1, help="torch threads in each process")
    args.add_argument("--update", action="store_true",
                      help="run only the configurations asked (--only, --attention) and put their rows, with this "
                           "run's repeats, in place of theirs in the results file; the rest kept as they were")
    args.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    opts = args.parse_args(argv)
    if opts.child:
        kind, attention, threads, first = opts.child
        print(json.dumps(child(kind, attention, int(threads), first)), flush=True)
        return
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for kind in opts.only or MODELS:
        for attention in opts.attention:
            runs = [paired(run(kind, attention, opts.threads, opts.timeout, "profile"),
                           run(kind, attention, opts.threads, opts.timeout, "flopcounter"))
                    for _ in range(opts.repeats)]
            timed = sorted((r for r in runs if "ratio" in r), key=lambda r: r["ratio"])
            row = timed[len(timed) // 2] if timed else runs[0]
            if timed:
                row["ratios"] = [round(r["ratio"], 3) for r in runs if "ratio" in r]
                row["repeats"] = opts.repeats
            rows.append(row)
            print(kind, attention, f"{row['ratio']:.2f} {row['reading']}" if "ratio" in row else row["skipped"],
                  flush=True)
    end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
               f"with {opts.threads} thread(s), Python {platform.python_version()}; load average {load:.2f} at the "
               f"start, {end:.2f} at the end.")
    results = {"torch": torch.__version__, "machine": machine, "repeats": opts.repeats, "threads": opts.threads,
               "method": "paired", "note": opts.note, "rows": rows}
    if opts.update:  # the earlier run's results, these configurations' rows in place of theirs
        earlier = json.loads(RESULTS.read_text())
        if earlier.get("method") != "paired" or earlier.get("threads", 1) != opts.threads:
            raise SystemExit(f"--update: {RESULTS} was not timed the way this run times (pairs of processes, "
                             f"{opts.threads} thread(s))")
        again = {(r["model"], r["attention"]): r for r in rows}
        kept = [again.pop((r["model"], r["attention"]), r) for r in earlier["rows"]]
        results = {**earlier, "rows": kept + list(again.values()),
                   "updated": earlier.get("updated", []) + [{"configurations": [f"{k} ({a})" for k, a in
                                                                                 {(r["model"], r["attention"])
                                                                                  for r in rows}],
                                                             "repeats": opts.repeats, "machine": machine,
                                                             "note": opts.note}]}
    results["summary"] = summary(results["rows"])
    if opts.before and not opts.update:
        earlier = json.loads(Path(opts.before).read_text())
        results["before"] = {"label": opts.before_label, "summary": earlier["summary"],
                             "ratios": {f"{r['model']} ({r['attention']})": [r["ratio"], r["reading"]]
                                        for r in earlier["rows"] if "ratio" in r}}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(json.dumps(results["summary"]))


if __name__ == "__main__":
    main()
