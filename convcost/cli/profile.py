"""``convcost profile package.module:factory --input 1,3,224,224``: a whole model's exact report.

The factory is imported by name (never evaluated) and called with no arguments.
As with ``python -m``, the current folder is searched first, so a ``mymodels.py``
beside you is found as ``mymodels:factory`` without setting ``PYTHONPATH``.
Needs the torch extra.
"""

from __future__ import annotations

import json

import contextlib
import importlib
import os
import sys

from convcost.errors import ConvcostError

FORMATS = ("table", "json", "csv", "md")


def register(sub) -> None:
    p = sub.add_parser("profile", help="exact per-operation report of a PyTorch model")
    p.add_argument("factory", help="package.module:callable returning an nn.Module")
    p.add_argument("--input", required=True, help="input shape, e.g. 1,3,224,224 (symbol names allowed: 1,3,H,W)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--convention", default="convcost", help="also print this tool's headline number")
    p.add_argument("--depth", type=int, default=None, help="table: module tree levels shown (default: all)")
    p.add_argument("--training", action="store_true",
                   help="read one training step: backward MACs, saved activations and the step's memory")
    p.add_argument("--optimizer", default="adam", help="with --training: sgd, momentum, adam (default) or adamw")
    p.add_argument("--dtype", default="float32", help="with --training: the parameters' dtype (default float32)")
    p.add_argument("--latency", action="store_true", help="also predict its latency on this machine (a training step's "
                   "with --training; the cached calibration, or --machine FILE)")
    p.add_argument("--machine", metavar="FILE", help="with --latency: a machine saved as JSON")
    p.add_argument("--memory", default=None, help="with --training: a budget such as 24GiB; prints the largest batch")
    p.set_defaults(handler=_profile)


@contextlib.contextmanager
def _current_folder_first():
    """The current folder first on the import path while the model is loaded and profiled, as ``python -m``
    has it (the console script's path starts with its own folder instead); restored afterwards."""
    here = os.getcwd()
    if here in sys.path or "" in sys.path:
        yield
        return
    sys.path.insert(0, here)
    try:
        yield
    finally:
        if here in sys.path:
            sys.path.remove(here)


def _load(factory: str):
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name or not attr.isidentifier():
        raise ConvcostError(f"{factory!r}: write the model factory as package.module:callable")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConvcostError(
            f"cannot import {module_name!r}: {exc} (looked in the current folder {os.getcwd()} and on the Python path)"
        ) from None
    if not hasattr(module, attr):
        raise ConvcostError(f"{module_name} has no attribute {attr!r}")
    factory_fn = getattr(module, attr)
    if not callable(factory_fn):
        raise ConvcostError(f"{factory!r} is not callable; name a function or class that builds the model")
    try:
        return factory_fn()
    except Exception as exc:  # noqa: BLE001 - the user's factory failed: say so in one line
        raise ConvcostError(f"{factory} raised {type(exc).__name__}: {exc}") from None


def _latency(args, report):
    """The report's predicted latency (``--latency``), the optimizer named as the calibration knows it."""
    from convcost.cli.compare import machine_of
    from convcost.latency import predict_latency

    optimizer = {"momentum": "sgd", "adamw": "adam"}.get(args.optimizer, args.optimizer)
    return predict_latency(report, machine_of(args), optimizer=optimizer)


def _profile(args) -> int:
    from convcost.arguments import parse_value
    from convcost.extras import need

    need("torch", "torch", "convcost profile")
    from convcost.torch.conventions import headline
    from convcost.torch.profile import profile

    shape = parse_value("--input", args.input, None)
    shape = shape if isinstance(shape, tuple) else (shape,)
    if args.memory is not None and not args.training:
        raise ConvcostError("--memory needs --training: the budget is for a training step")
    with _current_folder_first():
        model = _load(args.factory)
        report = profile(model, shape, convention=args.convention, training=args.training)
        if args.memory is not None:
            from convcost.torch.fit import max_batch

            largest = max_batch(model, shape, args.memory, args.optimizer, args.dtype)
    text = {"table": lambda: report.table(depth=args.depth), "json": report.to_json, "csv": report.to_csv,
            "md": report.to_markdown}
    latency = _latency(args, report) if args.latency else None
    if latency is not None and args.format == "json":
        text["json"] = lambda: json.dumps(json.loads(report.to_json()) | {"latency": latency.as_dict()}, indent=2)
    print(text[args.format](), end="" if args.format != "json" else "\n")
    if latency is not None and args.format != "json":
        print(latency.table(depth=args.depth), end="")
    if args.format == "table" and args.convention != "convcost":
        print(f"{args.convention} headline: {headline(report, args.convention)}")
    if args.training and report.training.complete and (args.optimizer, args.dtype) != ("adam", "float32"):
        print(f"Step memory with {args.optimizer}, {args.dtype}: "
              f"{report.training.memory(args.optimizer, args.dtype):,} bytes")
    if args.memory is not None:
        print(f"Largest batch whose training step fits in {args.memory} ({args.optimizer}, {args.dtype}): {largest:,}")
    return 0
