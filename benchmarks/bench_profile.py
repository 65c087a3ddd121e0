"""Speed of ``profile`` against torchinfo, fvcore, ptflops, thop and FlopCounterMode, in one run.

Models: the zoo's ResNet-50 and MobileNetV2 built with ``to_torch``, input 1x3x224x224.
Every tool runs in a fresh Python process of its own (so no tool inherits another's
imports, caches or garbage) and is timed twice, by the same rule for all
(``benchmarks/timing.py``: a full collection, then the call):

* **first call**: the tool's first analysis of the model after its import, what
  a one-shot script or a CI budget check pays;
* **repeated call**: the fastest of ``--repeats`` further calls on the same model.
  convcost keeps the fx trace of a model object, so its repeated call is cheaper
  than its first; it is also timed on a *fresh instance* of the same architecture
  in the warm process (a new trace, shipped formulas already loaded).

Each tool's headline number is recorded next to its time, with FlopCounterMode's
MACs (FLOPs / 2) as the reference, so that speed is never bought with exactness.
convcost is byte-compiled first, as ``pip install`` leaves a package.
The symbolic part times ``profile(model, (1, 3, H, W))`` and ``report.evaluate``
at 1,000 sizes. torch threads: ``--threads`` (default: torch's default on this
machine, as a user gets it). Writes benchmarks/results/profile.json.

Run: ``.venv/bin/python benchmarks/bench_profile.py`` (peers it cannot import are
reported as missing; ``pip install torchinfo fvcore ptflops thop`` with torch pinned).

``--versus`` (in a venv with ``pip install --no-deps torchvision``): convcost's first and repeated call
against FlopCounterMode's first and repeated forward on torchvision's resnet50, mobilenet_v2,
efficientnet_b0, densenet121 and a resnet18 behind Python control flow on the input's size (fx cannot trace it),
each tool in a fresh process; writes benchmarks/results/profile_vs_flopcounter.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from timing import best_of, once

MODELS = ("resnet50", "mobilenet_v2")
TOOLS = ("convcost", "torchinfo", "fvcore", "ptflops", "thop", "FlopCounterMode", "forward pass")
SHAPE = (1, 3, 224, 224)
RESULTS = Path(__file__).parent / "results" / "profile.json"


def analysis(tool: str, model):
    """A function that runs ``tool``'s ordinary analysis of ``model`` and returns its headline MACs."""
    import torch

    x = torch.zeros(SHAPE)
    if tool == "convcost":
        from convcost.torch import profile

        return lambda: profile(model, SHAPE).total["macs"]
    if tool == "torchinfo":
        from torchinfo import summary

        return lambda: summary(model, SHAPE, verbose=0).total_mult_adds
    if tool == "fvcore":
        from fvcore.nn import FlopCountAnalysis

        def fvcore_total():
            a = FlopCountAnalysis(model, x)
            a.unsupported_ops_warnings(False)
            a.uncalled_modules_warnings(False)
            return a.total()

        return fvcore_total
    if tool == "ptflops":
        from ptflops import get_model_complexity_info

        return lambda: get_model_complexity_info(model, SHAPE[1:], print_per_layer_stat=False, as_strings=False,
                                                 backend="pytorch")[0]
    if tool == "thop":
        import contextlib
        import io

        from thop import profile as thop_profile

        def thop_total():
            with contextlib.redirect_stdout(io.StringIO()):  # thop prints a line per unknown module
                macs, _ = thop_profile(model, inputs=(x,), verbose=False)
            for m in model.modules():  # thop leaves buffers behind; a second call would fail without this
                for name in ("total_ops", "total_params"):
                    m._buffers.pop(name, None)
            return macs

        return thop_total
    if tool == "FlopCounterMode":
        from torch.utils.flop_counter import FlopCounterMode

        def flop_counter():
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(x)
            return counter.get_total_flops() // 2

        return flop_counter
    if tool == "forward pass":
        def forward():
            with torch.no_grad():
                model(x)
            return None

        return forward
    raise ValueError(tool)


def run_one(tool: str, name: str, repeats: int, threads: int) -> dict:
    """Time one tool on one model in this (fresh) process."""
    import torch

    from convcost import zoo

    torch.set_num_threads(threads)
    factory = getattr(zoo, name)
    model = factory().to_torch().eval()
    try:
        fn = analysis(tool, model)
    except ImportError as exc:
        return {"missing": str(exc)}
    result = {}
    first = once(lambda: result.setdefault("macs", fn()))
    out = {"first_s": first, "repeated_s": best_of(repeats, fn), "macs": result["macs"]}
    if tool == "convcost":
        import numpy as np

        from convcost.symbols import H, W
        from convcost.torch import profile

        fresh = factory().to_torch().eval()
        out["fresh_instance_s"] = once(lambda: profile(fresh, SHAPE))
        sym = {}
        out["symbolic_profile_s"] = once(lambda: sym.setdefault("report", profile(model, (1, 3, H, W))))
        sizes = np.arange(32, 1032)
        out["sweep_1000_first_s"] = once(lambda: sym["report"].evaluate(H=sizes, W=sizes))
        out["sweep_1000_s"] = best_of(repeats, lambda: sym["report"].evaluate(H=sizes, W=sizes))
    return out


def machine(threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {threads} thread(s), "
            f"Python {platform.python_version()}; load average at start {os.getloadavg()[0]:.2f}")


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--one", nargs=2, metavar=("TOOL", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr (the table still goes to stdout)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.repeats, args.threads)))
        return
    # byte-compile convcost as installing a package does (pip writes .pyc for every module): a checkout
    # run with PYTHONDONTWRITEBYTECODE would otherwise compile its shipped forms in every process, a cost
    # no installed copy pays (the peers, installed by pip, are already compiled)
    import compileall

    import convcost

    compileall.compile_dir(os.path.dirname(convcost.__file__), quiet=1)
    results = {"machine": machine(args.threads), "shape": SHAPE, "repeats": args.repeats, "models": {}}
    for name in MODELS:
        tools = {}
        for tool in TOOLS:
            done = subprocess.run([sys.executable, __file__, "--one", tool, name, "--repeats", str(args.repeats),
                                   "--threads", str(args.threads)], capture_output=True, text=True)
            if done.returncode:
                tools[tool] = {"failed": done.stderr.strip().splitlines()[-1]}
            else:
                tools[tool] = json.loads(done.stdout.strip().splitlines()[-1])
            if not args.quiet:  # progress: stderr, so stdout is the table alone
                print(name, tool, tools[tool], file=sys.stderr, flush=True)
        results["models"][name] = summarise(tools)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def summarise(tools: dict) -> dict:
    """The tools' rows, the reference MACs, and convcost's speed-ups over the fastest peer."""
    reference = tools.get("FlopCounterMode", {}).get("macs")
    peers = {k: v for k, v in tools.items() if k not in ("convcost", "forward pass") and "first_s" in v}
    mine = tools["convcost"]
    out = {"reference_macs": reference, "tools": tools}
    for timing in ("first_s", "repeated_s"):
        fastest = min(peers, key=lambda k: peers[k][timing])
        out[f"fastest_peer_{timing}"] = fastest
        out[f"speedup_{timing}"] = peers[fastest][timing] / mine[timing]
    out["speedup_fresh_instance"] = peers[out["fastest_peer_repeated_s"]]["repeated_s"] / mine["fresh_instance_s"]
    fastest_first = peers[out["fastest_peer_first_s"]]["first_s"]
    out["sweep_faster_than_fastest_peer_first_call"] = mine["sweep_1000_s"] < fastest_first
    out["convcost_exact"] = mine["macs"] == reference
    return out


def tool_table(r: dict) -> list:
    """One model's Markdown table: each tool's times and headline MACs against the reference."""
    lines = ["| tool | first call (ms) | repeated call (ms) | headline MACs | vs reference |",
             "|---|---:|---:|---:|---:|"]
    for tool, v in r["tools"].items():
        if "first_s" not in v:
            lines.append(f"| {tool} | not run: {v.get('missing') or v.get('failed')} | | | |")
            continue
        macs = v["macs"]
        if macs is None:
            shown, delta = "", ""
        else:
            shown = f"{int(macs):,}"
            delta = "exact" if macs == r["reference_macs"] else f"{100 * (macs / r['reference_macs'] - 1):+.3g}%"
        lines.append(f"| {tool} | {1e3 * v['first_s']:.1f} | {1e3 * v['repeated_s']:.1f} | {shown} | {delta} |")
    return lines


def table(results: dict) -> str:
    """The results as the run prints them."""
    lines = []
    for name, r in results["models"].items():
        lines += [f"\n{name} ({', '.join(map(str, results['shape']))}); reference MACs {r['reference_macs']:,}",
                  *tool_table(r)]
        c = r["tools"]["convcost"]
        lines.append(f"\nconvcost: {r['speedup_first_s']:.1f}x the fastest peer's first call "
                     f"({r['fastest_peer_first_s']}), {r['speedup_repeated_s']:.1f}x its repeated call "
                     f"({r['fastest_peer_repeated_s']}), {r['speedup_fresh_instance']:.1f}x on a fresh instance "
                     f"({1e3 * c['fresh_instance_s']:.1f} ms); symbolic profile "
                     f"{1e3 * c['symbolic_profile_s']:.0f} ms, "
                     f"then 1,000 sizes in {1e3 * c['sweep_1000_s']:.1f} ms "
                     f"(first sweep {1e3 * c['sweep_1000_first_s']:.0f} ms)")
    return "\n".join(lines)


# -- convcost's first call against FlopCounterMode's first forward, on real public models ----------------

VERSUS = ("resnet50", "mobilenet_v2", "efficientnet_b0", "densenet121", "untraceable_resnet18")
VERSUS_RESULTS = Path(__file__).parent / "results" / "profile_vs_flopcounter.json"


def versus_model(name):
    """A torchvision model (imported as benchmarks/zoo_agreement.py does), or one fx cannot trace."""
    import torch
    from zoo_agreement import import_torchvision

    tv = import_torchvision()
    if name != "untraceable_resnet18":
        return tv.get_model(name, weights=None).eval()

    class Untraceable(torch.nn.Module):  # Python control flow on the input's shape: fx cannot trace it
        def __init__(self):
            super().__init__()
            self.net = tv.get_model("resnet18", weights=None)

        def forward(self, x):
            if x.shape[-1] % 32:
                x = torch.nn.functional.pad(x, (0, 32 - x.shape[-1] % 32))
            return self.net(x)

    return Untraceable().eval()


def versus_one(tool, name, repeats):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = versus_model(name)
    x = torch.zeros(SHAPE)
    reading = {}
    if tool == "convcost":
        from convcost.torch import profile

        def fn():
            report = profile(model, SHAPE)
            reading["traced_with"] = report.traced_with
            return report.total["macs"]
    else:
        def fn():
            with FlopCounterMode(display=False) as c, torch.no_grad():
                model(x)
            return c.get_total_flops() // 2
    result = {}
    first = once(lambda: result.setdefault("macs", fn()))
    return {"first_s": first, "repeated_s": best_of(repeats, fn), "macs": result["macs"], **reading}


def versus(repeats, threads):
    """Each tool in a fresh process per model; the first-call ratios the issue asks for."""
    rows = {}
    for name in VERSUS:
        rows[name] = {}
        for tool in ("convcost", "FlopCounterMode"):
            done = subprocess.run([sys.executable, __file__, "--versus-one", tool, name, "--repeats", str(repeats),
                                   "--threads", str(threads)], capture_output=True, text=True)
            rows[name][tool] = (json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0
                                else {"failed": (done.stderr.strip().splitlines() or ["?"])[-1]})
            print(name, tool, rows[name][tool], flush=True)
    out = {"machine": machine(threads), "shape": SHAPE, "repeats": repeats, "models": rows}
    VERSUS_RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(versus_table(out)))


def versus_table(out) -> list:
    import statistics

    lines = ["| model | convcost's reading | convcost first (ms) | FlopCounterMode first (ms) | first-call ratio "
             "| convcost repeated (ms) | FlopCounterMode repeated (ms) | MACs agree |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    ratios = []
    for name, r in out["models"].items():
        c, f = r["convcost"], r["FlopCounterMode"]
        if "first_s" not in c or "first_s" not in f:
            lines.append(f"| {name} | | {c.get('failed', '')} | {f.get('failed', '')} | | | | |")
            continue
        ratio = f["first_s"] / c["first_s"]
        ratios.append(ratio)
        lines.append(f"| {name} | {c.get('traced_with', '?')} | {1e3 * c['first_s']:.0f} | "
                     f"{1e3 * f['first_s']:.0f} | {ratio:.1f}x | "
                     f"{1e3 * c['repeated_s']:.0f} | {1e3 * f['repeated_s']:.0f} | "
                     f"{'yes' if c['macs'] == f['macs'] else 'NO'} |")
    if ratios:
        lines.append(f"\nFirst call: median {statistics.median(ratios):.1f}x, least {min(ratios):.1f}x faster than "
                     f"FlopCounterMode's first forward ({out['machine']}).")
    return lines


if __name__ == "__main__":
    if "--versus-one" in sys.argv or "--versus" in sys.argv:
        import torch

        parser = argparse.ArgumentParser()
        parser.add_argument("--versus", action="store_true")
        parser.add_argument("--versus-one", nargs=2)
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument("--threads", type=int, default=torch.get_num_threads())
        a = parser.parse_args()
        torch.set_num_threads(a.threads)
        if a.versus_one:
            print(json.dumps(versus_one(*a.versus_one, a.repeats)))
        else:
            versus(a.repeats, a.threads)
    else:
        main()
