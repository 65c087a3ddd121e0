"""Speed of ``profile`` against torchinfo, fvcore, ptflops and FlopCounterMode, in one run.

Models: the zoo's ResNet-50 and MobileNetV2 built with ``to_torch``, input 1x3x224x224.
Each tool is timed on its own ordinary call (best of ``REPEATS``); ``profile`` is timed
cold (first call: fx trace and formula compilation) and warm (trace and compiled
formulas cached). The symbolic sweep times ``report.evaluate`` at 1,000 sizes.
Writes benchmarks/results/profile.json. The machine is shared with other engineers
(2 cores, 4 other users), so absolute times are noisy; ratios come from one run.

Run: ``.venv/bin/python benchmarks/bench_profile.py``
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from convcost.symbols import H, W
from convcost.torch.profile import profile
from convcost.zoo import mobilenet_v2, resnet50

REPEATS = 5
SHAPE = (1, 3, 224, 224)


def best(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peers(model):
    out = {}
    x = torch.zeros(SHAPE)
    model.eval()
    try:
        from torchinfo import summary

        out["torchinfo"] = best(lambda: summary(model, SHAPE, verbose=0))
    except ImportError:
        pass
    try:
        from fvcore.nn import FlopCountAnalysis

        def fv():
            a = FlopCountAnalysis(model, x)
            a.unsupported_ops_warnings(False)
            a.uncalled_modules_warnings(False)
            return a.total()

        out["fvcore"] = best(fv)
    except ImportError:
        pass
    try:
        from ptflops import get_model_complexity_info

        out["ptflops"] = best(lambda: get_model_complexity_info(model, SHAPE[1:], print_per_layer_stat=False,
                                                                as_strings=False))
    except ImportError:
        pass

    def fcm():
        with FlopCounterMode(display=False) as c, torch.no_grad():
            model(x)
        return c.get_total_flops()

    out["FlopCounterMode"] = best(fcm)
    with torch.no_grad():
        out["forward pass"] = best(lambda: model(x))
    return out


def main():
    torch.set_num_threads(1)
    results = {"machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread; "
               "shared with 4 other engineers at the time of the run (noisy)", "models": {}}
    for name, factory in (("resnet50", resnet50), ("mobilenet_v2", mobilenet_v2)):
        model = factory().to_torch()
        t = time.perf_counter()
        report = profile(model, SHAPE)
        cold = time.perf_counter() - t
        warm = best(lambda: profile(model, SHAPE).total)
        peer = peers(model)
        fastest = min(v for k, v in peer.items() if k != "forward pass")
        t = time.perf_counter()
        sym = profile(model, (1, 3, H, W))
        symbolic_build = time.perf_counter() - t
        sizes = np.arange(32, 1032)
        t = time.perf_counter()
        sym.evaluate(H=sizes, W=sizes)
        first_sweep = time.perf_counter() - t
        sweep = best(lambda: sym.evaluate(H=sizes, W=sizes))
        results["models"][name] = {
            "params": report.total["params"], "macs": report.total["macs"], "complete": report.complete,
            "profile_cold_s": cold, "profile_warm_s": warm, "peers_s": peer,
            "fastest_peer": min((v, k) for k, v in peer.items() if k != "forward pass")[1],
            "speedup_warm_vs_fastest_peer": fastest / warm, "speedup_cold_vs_fastest_peer": fastest / cold,
            "symbolic_profile_s": symbolic_build, "sweep_1000_first_s": first_sweep, "sweep_1000_s": sweep,
            "sweep_faster_than_fastest_peer": sweep < fastest,
        }
        print(name, json.dumps(results["models"][name], indent=1, default=str))
    out = Path(__file__).parent / "results" / "profile.json"
    out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
