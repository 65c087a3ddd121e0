"""The ``convcost`` command line (also ``python -m convcost``).

Each module named in ``COMMANDS`` has a ``register(subparsers)`` that adds its
subcommands and sets ``handler`` on each. Options and ``NAME=VALUE`` arguments
may come in any order (``convcost cost SeparableConv --json C=64``): a
subcommand's arguments are read with argparse's ``parse_intermixed_args``.
Errors print as one line and exit with status 2.

>>> main(["cost", "SeparableConv", "--json", "C=64", "O=128", "K=3", "H=56", "W=56"])  # doctest: +ELLIPSIS
{
  "spec": "SeparableConv(C=64, O=128, K=3, H=56, W=56)",
  "params": 8960,
  "macs": 25567488,
...
0
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from convcost.errors import ConvcostError, InternalError

#: modules that add subcommands, in the order ``--help`` lists them
COMMANDS = ("convcost.cli.cost", "convcost.cli.derive", "convcost.cli.compare", "convcost.cli.profile",
            "convcost.cli.calibrate")


def version() -> str:
    from convcost import __version__

    return __version__


def parser() -> tuple[argparse.ArgumentParser, dict]:
    """The top-level parser, and each subcommand's parser by name."""
    top = argparse.ArgumentParser(
        prog="convcost",
        description="Exact, symbolic cost of convolution variants: params, MACs, memory, break-even conditions.",
        epilog="Run 'convcost COMMAND --help' for a command's arguments.",
    )
    top.add_argument("--version", action="version", version=f"convcost {version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return top, dict(sub.choices)


def parse(argv: list[str]) -> argparse.Namespace:
    """Top-level options, then the subcommand's arguments with options anywhere among them."""
    top, commands = parser()
    at = next((i for i, arg in enumerate(argv) if arg in commands), None)
    if at is None:
        return top.parse_args(argv)  # --help, --version, or argparse's own error for a missing or unknown command
    head = argv[:at]
    if any(arg in ("-h", "--help", "--version") for arg in head):  # the top level's own options: they exit
        top.parse_args(head)
    command = commands[argv[at]]
    # options before the command are its own (convcost --json cost ...), as options anywhere after it are
    args = command.parse_intermixed_args(head + argv[at + 1:])
    for action in command._actions:  # argparse leaves [] for a one-value positional swallowed by "--"
        if not action.option_strings and action.nargs is None and isinstance(getattr(args, action.dest, None), list):
            command.error(f"the argument {action.dest} is missing")
    args.command = argv[at]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    args = parse(sys.argv[1:] if argv is None else list(argv))
    try:
        check = getattr(args, "check", None)
        if check is not None:  # every option before any work (convcost.cli.options)
            check(args)
        return args.handler(args)
    except ConvcostError as exc:
        print(f"convcost: error: {exc}", file=sys.stderr)
        return 2
    except InternalError as exc:  # already worded as convcost's bug
        print(f"convcost: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left early (convcost tour | head): stop quietly, as Python's docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug of convcost's: one line, not a traceback, and say so
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"convcost: internal error: {type(exc).__name__}: {line} (a bug in convcost; please report it)",
              file=sys.stderr)
        return 2
