"""The ``compare`` and ``breakeven`` subcommands.

Shared values are ``NAME=VALUE`` (integers or symbol names, never evaluated),
read with the field kinds of either variant (``P=same``, ``bias=false``). A
field only one side has is bound on that side with ``A.NAME=VALUE`` or
``B.NAME=VALUE``; as a shared value it is refused, since the other side would
drop it. Options may come anywhere.

>>> from convcost.cli import main
>>> main(["breakeven", "StandardConv", "AsymmetricConv", "--metric", "params", "--solve-for", "K"])
params: A = StandardConv(), B = AsymmetricConv()
  B costs no more than A exactly when  C*K**2 - C*K - K*O - 1 >= 0
  (A - B = O*(C*K**2 - C*K - K*O - 1); cancelled positive factors: O)
  threshold (closed form):  K >= (C + O + sqrt(4*C + (C + O)**2))/(2*C)
  rule of thumb (leading order, other symbols large):  K > 1 + O/C
  method: closed form: exactly one positive root (one sign change); the leading coefficient is positive, so B wins for K
  >= it
0
>>> main(["compare", "StandardConv", "SeparableConv", "--metric", "params", "C=64", "O=128", "K=3"])
params: A = StandardConv(C=64, O=128, K=3), B = SeparableConv(C=64, O=128, K=3)
  A       = 73,856
  B       = 8,960
  B/A     = 0.1213 (exactly 70/577)
  A - B   = 64,896
  savings = 87.87%
  valid when H >= 3
  valid when W >= 3
0
>>> main(["compare", "StandardConv", "DepthwiseConv", "C=64", "A.O=128", "B.M=2", "K=3", "--metric", "params"])
params: A = StandardConv(C=64, O=128, K=3), B = DepthwiseConv(C=64, K=3, M=2)
  A       = 73,856
  B       = 1,280
  B/A     = 0.01733 (exactly 10/577)
  A - B   = 72,576
  savings = 98.27%
  valid when H >= 3
  valid when W >= 3
0
"""

from __future__ import annotations

import dataclasses
import json

from convcost.cli import options
from convcost.errors import ConvcostError


def register(sub) -> None:
    """Add ``compare`` and ``breakeven``."""
    from convcost.costs import METRIC_NAMES

    metrics = (*METRIC_NAMES, "latency")
    p = sub.add_parser("compare", help="exact ratio, difference and savings of B against A")
    _common(p, metrics)
    p.set_defaults(handler=_compare)

    p = sub.add_parser("breakeven", help="the exact condition under which B costs no more than A")
    _common(p, metrics)
    p.add_argument("--solve-for", default=None, metavar="SYMBOL",
                   help="the symbol to solve for (default: K, or the one symbol the costs depend on)")
    p.add_argument("--plot", metavar="FILE", help="save where each wins as FILE.png, FILE.svg or FILE.pdf")
    p.add_argument("--y", metavar="SYMBOL", help="the plot's y axis (default: the first other symbol)")
    p.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="an axis range of the plot, e.g. K=1:15 (repeatable)")
    p.set_defaults(handler=_breakeven, check=_check_breakeven)


def _common(p, metrics) -> None:
    p.add_argument("A", help="a variant name (see: convcost list)")
    p.add_argument("B", help="the variant that would replace A")
    p.add_argument("values", nargs="*", metavar="NAME=VALUE",
                   help="shared values, e.g. C=64 P=same H=56; A.NAME=VALUE or B.NAME=VALUE for one side only")
    p.add_argument("--metric", default="macs", choices=metrics, help="what to compare (default macs)")
    p.add_argument("--json", action="store_true", help="print JSON")
    options.symbol_option(p)
    p.add_argument("--machine", metavar="FILE", help="with --metric latency: a machine saved as JSON (default: this "
                   "machine's cached calibration, `convcost calibrate`)")


def machine_of(args):
    """The machine of ``--machine FILE``, or this machine's (cached) calibration."""
    from convcost.latency import Machine

    if args.machine:
        return Machine.load(args.machine)
    from convcost.extras import need

    need("torch", "torch", "--metric latency without --machine (it calibrates this machine)")
    from convcost.torch.calibration import calibrate

    return calibrate("cpu")


def _shared(args) -> tuple:
    from convcost.arguments import parse_fields, parse_value
    from convcost.catalog import variant

    a, b = variant(args.A), variant(args.B)
    kinds = {}
    for cls in (b, a):  # A's kind wins where both have the field
        kinds.update({f.name: f.metadata.get("kind") for f in dataclasses.fields(cls)})
    values, sides = {}, {"A": [], "B": []}
    for item in args.values:
        name, sep, text = item.partition("=")
        side, dot, field = name.partition(".")
        if sep and dot and side in sides:
            sides[side].append(f"{field}={text}")
            continue
        if not sep or not name.isidentifier():
            raise ConvcostError(f"{item!r}: write shared values as NAME=VALUE (e.g. C=64), "
                                "or A.NAME=VALUE / B.NAME=VALUE for one side")
        values[name] = parse_value(name, text, kinds.get(name), args.symbol)
    # a side with values of its own is an instance with those fields; the rest stay shared
    a = a(**parse_fields(a, sides["A"], args.symbol)) if sides["A"] else a
    b = b(**parse_fields(b, sides["B"], args.symbol)) if sides["B"] else b
    return a, b, values


def _compare(args) -> int:
    from convcost.frontdoor import compare

    a, b, values = _shared(args)
    if args.metric == "latency":
        values["machine"] = machine_of(args)
    c = compare(a, b, metric=args.metric, **values)
    if args.json:
        print(json.dumps(c.as_dict(), indent=2))
        return 0
    print(c)
    return 0


def _check_breakeven(args) -> None:
    """The plot's options, before the work (not after printing it)."""
    args.ranges = dict(_range(r) for r in args.range)
    if not args.plot:
        if args.y or args.range:
            raise ConvcostError(f"{'--y' if args.y else '--range'} shapes the plot: add --plot FILE (or leave it out)")
        return
    from convcost.extras import need

    need("matplotlib", "plot", "convcost breakeven --plot")
    options.plot_path(args.plot)


def _breakeven(args) -> int:
    from convcost.frontdoor import break_even

    a, b, values = _shared(args)
    if args.metric == "latency":
        values["machine"] = machine_of(args)
    be = break_even(a, b, metric=args.metric, solve_for=args.solve_for, **values)
    if args.json:
        print(json.dumps(be.as_dict(), indent=2))
    else:
        print(be)
    if args.plot:
        from convcost.plot import plot_break_even

        plot_break_even(be, args.plot, y=args.y, ranges=args.ranges)
        if not args.json:
            print(f"  plot: {args.plot}")
    return 0


def _range(text: str) -> tuple:
    name, sep, span = text.partition("=")
    low, colon, high = span.partition(":")
    try:
        if not (sep and colon):
            raise ValueError
        return name, (float(low), float(high))
    except ValueError:
        raise ConvcostError(f"--range {text!r}: write NAME=LOW:HIGH, e.g. K=1:15") from None
