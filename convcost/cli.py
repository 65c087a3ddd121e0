"""The ``convcost`` command line.

Subcommands live beside the feature they expose: each module named in
``COMMANDS`` has a ``register(subparsers)`` that adds its parser and sets
``handler`` on it. Errors print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from convcost.errors import ConvcostError

#: modules that add subcommands (imported lazily, so ``convcost list`` stays quick)
COMMANDS = ("convcost.cli", "convcost.cli_derive", "convcost.cli_compare", "convcost.cli_profile")


def register(sub) -> None:
    """The core subcommands: list, cost, tour."""
    p = sub.add_parser("list", help="list every named variant")
    p.set_defaults(handler=_list)

    p = sub.add_parser("cost", help="exact cost of a variant: closed forms and numbers")
    p.add_argument("variant", help="a variant name, e.g. SeparableConv (see: convcost list)")
    p.add_argument("fields", nargs="*", metavar="NAME=VALUE", help="fields as integers or symbol names, e.g. C=64 K=3 H=56")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cost)

    p = sub.add_parser("tour", help="a tour of every variant's cost")
    p.set_defaults(handler=_tour)


def _list(args) -> int:
    from convcost.catalog import VARIANTS

    width = max(map(len, VARIANTS))
    for name, cls in VARIANTS.items():
        print(f"{name:<{width}}  {cls.__doc__.strip().splitlines()[0]}")
    return 0


def _cost(args) -> int:
    from convcost.arguments import parse_fields
    from convcost.catalog import variant
    from convcost.costs import METRICS
    from convcost.frontdoor import cost

    cls = variant(args.variant)
    c = cost(cls, **parse_fields(cls, args.fields))
    if args.json:
        data = {"spec": repr(c.spec), **{k: _jsonable(v) for k, v in c.as_dict().items()}}
        data["conditions"] = [str(x) for x in c.conditions]
        print(json.dumps(data, indent=2))
        return 0
    print(repr(c.spec))
    print(f"  output_shape        = ({', '.join(map(str, c.output_shape))})")
    for m in (*METRICS[:2], "flops", *METRICS[2:]):
        value = getattr(c, m)
        if value != 0 or m in ("params", "macs", "flops"):
            shown = f"{value:,}" if type(value) is int else str(value)
            print(f"  {m:<19} = {shown}")
    for cond in c.conditions:
        print(f"  valid when {cond}")
    return 0


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if type(value) is int:
        return value
    return int(value) if getattr(value, "is_Integer", False) else str(value)


def _tour(args) -> int:
    from convcost.tour import tour

    print(tour())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convcost", description="Exact, symbolic cost of convolution variants.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConvcostError as exc:
        print(f"convcost: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug of convcost's: one line, not a traceback, and say so
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"convcost: internal error: {type(exc).__name__}: {line} (a bug in convcost; please report it)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
