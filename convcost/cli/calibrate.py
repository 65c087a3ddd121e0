"""``convcost calibrate``: measure this machine for the latency model (needs the torch extra).

A full calibration repeats its passes until stable (minutes) and is cached; progress goes to stderr
(``--quiet`` silences it), the fitted machine to stdout.
"""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure this machine for the latency model (minutes, cached)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:<index>")
    p.add_argument("--threads", type=int, default=1, help="threads to time with (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="a subset of the kernels, fewer passes: a first estimate, not a calibration to trust")
    p.add_argument("--no-cache", action="store_true", help="measure afresh and do not write the cache")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print the machine as JSON")
    p.set_defaults(handler=_calibrate)


def _calibrate(args) -> int:
    from convcost import display, latency_network
    from convcost.extras import need

    need("torch", "torch", "convcost calibrate")
    from convcost.torch.calibration import calibrate

    machine = calibrate(args.device, threads=args.threads, quick=args.quick, cache=not args.no_cache,
                        quiet=args.quiet)
    if args.json:
        print(json.dumps(machine.as_dict(), indent=2, sort_keys=True))
        return 0
    print(machine.name)
    print(f"  peak          = {machine.peak_flops / 1e9:,.1f} GFLOP/s")
    print(f"  bandwidth     = {machine.bandwidth / 1e9:,.1f} GB/s")
    print(f"  overhead      = {display.seconds(machine.overhead)} per kernel call")
    for kind, factor in machine.efficiency.items():
        # a convolution's efficiency on a call of P output positions: 1 / (1 / factor + pixel_slowdown / P)
        small = machine.pixel_slowdown.get(kind)
        print(f"  efficiency    {kind:<16} = {factor:.3f}"
              + (f" (on P output positions per call: 1 / ({1 / factor:.3f} + {small:,.4g} / P))" if small else ""))
    for phase in latency_network.PHASES:
        if phase not in machine.network and phase not in machine.network_call:
            continue  # no synthetic network of this phase was timed
        # each row of a whole network's profile pays it, on top of its kernels (0: the fit without it predicted the
        # synthetic networks left out as well or better)
        seconds = machine.network_call.get(phase, 0.0)
        print(f"  in-network    {'call, ' + phase:<16} = "
              + (f"{display.seconds(seconds)} per row of a network" if seconds else "0 (none kept)"))
    return 0
