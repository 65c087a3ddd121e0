"""Is every transformers-zoo model left as it was by ``profile``? Its state and its next real forward, checked.

Run in the transformers venv (as ``benchmarks/zoo_transformers.py``): ``python benchmarks/zoo_transformers_left.py
[--only TYPE ...] [--chunk N] [--timeout S] [--budget S] [--resume]``. For every configuration
``results/zoo_transformers.json`` ran (a model type and its attention, built as that zoo builds it), a copy of
the model is taken, then ``profile`` reads its forward and its training step, as the zoo does; then the model's
state dict must equal the copy's, and its next real forward, in eval mode and then in train mode (the same
random draws), must give exactly what the copy's gives (:func:`zoo_agreement.unchanged`). The zoo itself only
checks that the next forward runs; this checks that it is the same.

A few dozen types share a process (importing transformers is most of the time), each configuration under its
own alarm; a process that ends costs only the configuration under way, marked so, and the rest run in a fresh
one. Writes ``benchmarks/results/zoo_transformers_left.json``; ``benchmarks/zoo_transformers.py --doc`` then adds
the column to docs/zoo_transformers.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo_agreement import unchanged  # noqa: E402
from zoo_transformers import RESULTS as ZOO  # noqa: E402
from zoo_transformers import First, _transformers_version, _why, build  # noqa: E402
from zoo_transformers_inputs import inputs_for  # noqa: E402

from convcost.torch import profile  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "zoo_transformers_left.json"


def one(kind, attention) -> dict:
    """One configuration: profile's forward and step read, then the model against a copy taken before."""
    row = {"model": kind, "attention": attention}
    try:
        model = build(kind, attention)
        names, xs, fixed = inputs_for(model, kind)
        wrapped = First(model, names, fixed).eval()
        before = copy.deepcopy(wrapped)
    except Exception as exc:  # noqa: BLE001 - what the zoo skipped may not build here either
        row["skipped"] = _why(exc)
        return row
    read = []
    for training in (False, True):
        torch.manual_seed(0)
        try:
            profile(wrapped, xs, training=training)
            read.append("step" if training else "forward")
        except Exception:  # noqa: BLE001 - a reading that raised must leave the model as it was all the same
            pass
        wrapped.eval()
    row["read"] = read
    row["left_as_it_was"] = unchanged(wrapped, before, xs)
    return row


def _timed(run, kind, attention, seconds) -> dict:
    """``run(kind, attention)``, or a skipped row once ``seconds`` have passed (an alarm: Python code stops at its
    next line, a kernel when it returns)."""
    import signal

    def alarm(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(seconds))
    try:
        return run(kind, attention)
    except TimeoutError:
        return {"model": kind, "attention": attention, "skipped": f"over the {seconds:g} s timeout"}
    finally:
        signal.alarm(0)


def configurations(only) -> dict:
    """{model type: [attentions]} of the zoo's rows that ran (not skipped), in the zoo's order."""
    todo = {}
    for r in json.loads(ZOO.read_text())["rows"]:
        if r["class"] != "skipped" and (not only or r["model"] in only):
            todo.setdefault(r["model"], []).append(r["attention"])
    return todo


def main(argv=None):
    args = argparse.ArgumentParser()
    args.add_argument("--only", nargs="*", default=None, help="only these model types")
    args.add_argument("--chunk", type=int, default=40, help="model types per process")
    args.add_argument("--timeout", type=float, default=240, help="seconds for one configuration")
    args.add_argument("--budget", type=float, default=0, help="stop after this many seconds")
    args.add_argument("--resume", action="store_true", help="keep the rows results/zoo_transformers_left.json has")
    args.add_argument("--redo", action="store_true", help="with --resume and --only: run those types again (their "
                                                          "rows replaced)")
    args.add_argument("--one", nargs="+", metavar="TYPE:ATTENTION,...", help=argparse.SUPPRESS)
    opts = args.parse_args(argv)
    if opts.one:  # a chunk of model types in a process of their own: importing transformers is most of the time
        for item in opts.one:
            kind, attentions = item.split(":")
            for attention in attentions.split(","):
                print(json.dumps(_timed(one, kind, attention, opts.timeout)), flush=True)
        return
    rows = json.loads(RESULTS.read_text())["rows"] if opts.resume and RESULTS.exists() else []
    if opts.redo and opts.only:
        rows = [r for r in rows if r["model"] not in opts.only]
    done = {(r["model"], r["attention"]) for r in rows}
    pending = [(kind, a) for kind, attentions in configurations(opts.only).items() for a in attentions
               if (kind, a) not in done]
    began = time.time()
    while pending and not (opts.budget and time.time() - began > opts.budget):
        chunk, types = [], []
        for kind, attention in pending:
            if kind not in types:
                if len(types) == opts.chunk:
                    break
                types.append(kind)
            chunk.append((kind, attention))
        items = [f"{kind}:{','.join(a for k, a in chunk if k == kind)}" for kind in types]
        try:
            ran = subprocess.run([sys.executable, __file__, "--timeout", str(opts.timeout), "--one", *items],
                                 capture_output=True, text=True, timeout=opts.timeout * (len(chunk) + 1))
            out, ended = ran.stdout, None if ran.returncode == 0 else f"the process ended with {ran.returncode}"
        except subprocess.TimeoutExpired as exc:
            out, ended = (exc.stdout or b"").decode(), "the process hung past its alarms"
        got = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if len(got) < len(chunk):  # the configuration under way when the process ended: said so, the rest again
            got.append({"model": chunk[len(got)][0], "attention": chunk[len(got)][1], "skipped": ended or "no result"})
        rows += got
        pending = pending[len(got):]
        RESULTS.write_text(json.dumps({"torch": torch.__version__, "transformers": _transformers_version(),
                                       "rows": rows}, indent=1))
        for r in got:
            print(r["model"], r["attention"], r.get("left_as_it_was", r.get("skipped")), flush=True)
    checked = [r for r in rows if "left_as_it_was" in r]
    print(f"{len(checked)} configurations checked, left as it was: "
          f"{sum(r['left_as_it_was'].startswith('yes') for r in checked)}")


if __name__ == "__main__":
    main()
