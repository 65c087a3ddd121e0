"""Every option of a command checked before any work starts.

A subcommand names its check with ``set_defaults(check=...)``; :func:`convcost.cli.main` runs it before
the handler, so that a misspelt last option is reported at once, not after minutes of analysis, and an
option that would be ignored (``--dtype`` without ``--training``) is refused rather than dropped.

>>> import argparse
>>> args = argparse.Namespace(training=True, optimizer="adm", dtype=None)
>>> training(args)
Traceback (most recent call last):
...
convcost.errors.ConvcostError: unknown optimizer 'adm' for --optimizer (did you mean 'adam'?); known: sgd,
momentum, adam, adamw
>>> args = argparse.Namespace(training=True, optimizer=None, dtype="fp16")
>>> training(args); args.optimizer, args.dtype
('adam', 'float16')
>>> memory("24gb"), memory("24G")
(24000000000, 25769803776)
>>> memory("24")
Traceback (most recent call last):
...
convcost.errors.ConvcostError: --memory '24': give a unit, e.g. 24GiB or 24GB (24B if you mean bytes); units:
B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (any case; 24G is 24GiB)
"""

from __future__ import annotations

import pathlib

from convcost.arguments import suggestion
from convcost.errors import ConvcostError

#: the usual short names of the parameters' dtypes
DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16",
                 "bf16": "bfloat16", "fp64": "float64", "double": "float64"}


__all__ = ["suggestion", "training", "memory", "plot_path", "depth", "symbol_option"]


def symbol_option(p) -> None:
    """``--symbol NAME`` (repeatable): a name to read as a new symbol rather than refuse as a typo."""
    p.add_argument("--symbol", action="append", default=[], metavar="NAME",
                   help="read NAME as a new symbol (names outside the glossary are refused as typos otherwise)")


def training(args) -> None:
    """``--optimizer`` and ``--dtype`` (and ``--memory``, ``--first``, ``--frozen`` where the command has
    them): known values, and only with ``--training``; fills in the defaults (adam, float32)."""
    from convcost.costs import ITEMSIZE, OPTIMIZERS

    for name, known in (("optimizer", OPTIMIZERS), ("dtype", ITEMSIZE)):
        given = getattr(args, name)
        if given is None:
            continue
        if not args.training:
            raise ConvcostError(f"--{name} {given} applies to a training step: add --training (or leave it out)")
        if name == "dtype":
            given = args.dtype = DTYPE_ALIASES.get(given.lower(), given.lower())
        if given not in known:
            raise ConvcostError(f"unknown {name} {given!r} for --{name}{suggestion(given, known)}; "
                                f"known: {', '.join(known)}")
    for flag in ("first", "frozen"):
        if getattr(args, flag, False) and not args.training:
            raise ConvcostError(f"--{flag} applies to a training step: add --training (or leave it out)")
    if getattr(args, "memory", None) is not None and not args.training:
        raise ConvcostError("--memory needs --training: the budget is for a training step")
    args.optimizer = args.optimizer or "adam"
    args.dtype = args.dtype or "float32"


def memory(text: str) -> int:
    """``--memory``: a size with its unit, in bytes; a bare number is refused (``24`` would be 24 bytes)."""
    from convcost.training import UNIT_NAMES, has_unit, parse_memory

    if not has_unit(text):
        raise ConvcostError(f"--memory {text!r}: give a unit, e.g. {text.strip() or 24}GiB or {text.strip() or 24}GB "
                            f"({text.strip() or 24}B if you mean bytes); units: {UNIT_NAMES}")
    return parse_memory(text)


def plot_path(path: str) -> None:
    """``--plot FILE``: a file type the figure can be saved as."""
    from convcost.plot import FORMATS

    if pathlib.Path(path).suffix.lower() not in FORMATS:
        raise ConvcostError(f"--plot {path!r}: give a file ending in {', '.join(FORMATS)}")


def depth(value) -> None:
    """``--depth``: a positive number of tree levels."""
    if value is not None and value < 1:
        raise ConvcostError(f"--depth {value}: give a positive number of module tree levels (1 is the top level), "
                            "or leave it out for all")
