"""``convcost profile MODEL:factory --input 1,3,224,224``: a whole model's exact report.

The model is named as ``module:factory`` or ``package.module:factory`` (imported by name, never
evaluated), or as a file, ``path/to/models.py:factory``; the factory is called with no arguments. As with
``python -m``, the current folder is searched first, so a ``mymodels.py`` beside you is found as
``mymodels:factory`` without setting ``PYTHONPATH``. ``--input`` is repeated for a model of several
inputs. Every option is checked before the model is read; ``--format json`` and ``csv`` print only the
data (every number the table shows), nothing else. Needs the torch extra.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pathlib
import sys

from convcost import display
from convcost.cli import options
from convcost.errors import ConvcostError

FORMATS = ("table", "json", "csv", "md")
#: how a model is named, for messages
FORMS = "module:factory, package.module:factory or path/to/file.py:factory"


def register(sub) -> None:
    p = sub.add_parser("profile", help="exact per-operation report of a PyTorch model")
    p.add_argument("factory", help=f"the model: {FORMS} (a callable returning an nn.Module)")
    p.add_argument("--input", required=True, action="append",
                   help="input shape, e.g. 1,3,224,224 (symbol names allowed: 1,3,H,W); repeat for several inputs")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--convention", default="convcost", help="also give this tool's headline number")
    p.add_argument("--depth", type=int, default=None, help="table: module tree levels shown (default: all)")
    p.add_argument("--training", action="store_true",
                   help="read one training step: backward MACs and saved activations per row, the step's memory")
    p.add_argument("--optimizer", default=None, help="with --training: sgd, momentum, adam (default) or adamw")
    p.add_argument("--dtype", default=None,
                   help="with --training: the parameters' dtype, float32 (default), float16, bfloat16, float64")
    p.add_argument("--autocast", default=None, choices=("bf16", "bfloat16", "fp16", "float16"),
                   help="with --training: read the step under torch.autocast on the CPU in this dtype (saved "
                        "tensors in their own dtypes, float32 parameters and optimizer state)")
    p.add_argument("--memory", default=None,
                   help="with --training: a budget such as 24GiB, 24GB or 24G (=GiB); prints the largest batch")
    p.add_argument("--latency", action="store_true", help="also predict its latency on this machine (a training "
                   "step's with --training; the cached calibration, or --machine FILE)")
    p.add_argument("--machine", metavar="FILE", help="with --latency: a machine saved as JSON")
    p.set_defaults(handler=_profile, check=_check)


def _check(args) -> None:
    """Every option, before the model is imported or read."""
    from convcost.arguments import parse_value
    from convcost.extras import need

    need("torch", "torch", "convcost profile")
    from convcost.torch.conventions import CONVENTIONS

    if args.convention not in CONVENTIONS:
        raise ConvcostError(f"--convention {args.convention!r} is not known"
                            f"{options.suggestion(args.convention, CONVENTIONS)}; known: {', '.join(CONVENTIONS)}")
    options.depth(args.depth)
    if args.depth is not None and args.format != "table":
        raise ConvcostError(f"--depth shapes the table; --format {args.format} carries every row")
    if args.autocast is not None and not args.training:
        raise ConvcostError(f"--autocast {args.autocast} applies to a training step: add --training (or leave it out)")
    as_read = args.dtype is None  # no --dtype: the step's memory as read, each tensor in its own dtype
    options.training(args)
    if as_read:
        args.dtype = None
    if args.machine is not None and not args.latency:
        raise ConvcostError("--machine names the machine of --latency; add --latency")
    if args.latency and args.format == "csv":
        raise ConvcostError("--latency gives a table of its own: use --format table, md or json")
    if args.machine is not None and not os.path.isfile(args.machine):
        raise ConvcostError(f"--machine {args.machine!r}: no such file (save one with `convcost calibrate`)")
    args.budget = options.memory(args.memory) if args.memory is not None else None
    shapes = []
    for text in args.input:
        shape = parse_value("--input", text, None)
        shapes.append(shape if isinstance(shape, tuple) else (shape,))
    args.shapes = shapes
    _split(args.factory)


def _split(factory: str) -> tuple[str, str]:
    """``(module or file, attribute)`` of a model's name, or one line saying how to write it."""
    where, sep, attr = factory.rpartition(":")
    if len(where) == 1 and where.isalpha():  # a Windows drive (C:models.py) has no factory after it
        where, sep, attr = factory, "", ""
    if not sep or not where or not attr.isidentifier():
        raise ConvcostError(f"{factory!r}: name the model as {FORMS}")
    return where, attr


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where


@contextlib.contextmanager
def _folder_first(folder: str):
    """``folder`` first on the import path while the model is loaded and profiled (the current folder, as
    ``python -m`` has it; the console script's path starts with its own folder instead), so that the model's
    own imports of its neighbours work; restored afterwards."""
    if folder in sys.path or (folder == os.getcwd() and "" in sys.path):
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def _module(where: str):
    """The module named ``where``: a dotted name, or a Python file given by its path."""
    if not _is_file(where):
        try:
            return importlib.import_module(where)
        except ImportError as exc:
            hint = f"; a file is named by its path: {where}.py:factory" if os.path.exists(where + ".py") else ""
            raise ConvcostError(f"cannot import {where!r}: {exc} (looked in the current folder {os.getcwd()} and on "
                                f"the Python path; name the model as {FORMS}){hint}") from None
    path = pathlib.Path(where)
    if not path.suffix:
        path = path.with_suffix(".py")
    if not path.is_file():
        raise ConvcostError(f"no file {str(path)!r} (from the current folder {os.getcwd()}); name the model as {FORMS}")
    if path.suffix != ".py":
        raise ConvcostError(f"{str(path)!r} is not a Python file; name the model as {FORMS}")
    name = path.stem if path.stem.isidentifier() else "convcost_model"
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file failed to run: say so in one line
        raise ConvcostError(f"{str(path)!r} raised {type(exc).__name__} while loading: {exc}") from None
    return module


def _load(factory: str):
    where, attr = _split(factory)
    module = _module(where)
    if not hasattr(module, attr):
        raise ConvcostError(f"{where} has no attribute {attr!r}{options.suggestion(attr, dir(module))}")
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
    from convcost.frontdoor import predict_latency

    chosen = args.optimizer or "adam"
    optimizer = {"momentum": "sgd", "adamw": "adam"}.get(chosen, chosen)
    return predict_latency(report, machine_of(args), optimizer=optimizer)


def _profile(args) -> int:
    from convcost.torch.profiling import profile

    where, _ = _split(args.factory)
    folder = str(pathlib.Path(where).resolve().parent) if _is_file(where) else os.getcwd()
    inputs = args.shapes[0] if len(args.shapes) == 1 else list(args.shapes)
    with _folder_first(folder), _autocast(args.autocast):
        model = _load(args.factory)
        report = profile(model, inputs, convention=args.convention, training=args.training)
        facts = _facts(args, model, report)
    latency = _latency(args, report) if args.latency else None
    print(_render(args, report, facts, latency), end="")
    return 0


def _autocast(name):
    """``torch.autocast`` on the CPU in the dtype ``--autocast`` names, or nothing."""
    if name is None:
        return contextlib.nullcontext()
    from convcost.torch.precision import cpu_autocast

    return cpu_autocast(name)


def _facts(args, model, report) -> dict:
    """What the command adds to the report: the chosen tool's headline, the step's memory with the chosen
    optimizer and dtype, the largest batch; each as data, for every format."""
    facts = {}
    # the dtype shown: the one --dtype named, else the step's as read (float32, or mixed under --autocast)
    shown = args.dtype or ("float32" if args.autocast is None and (report.training is None
                                                                   or report.training.param_itemsize == 4)
                           else "mixed")
    if args.convention != "convcost":
        facts["headline"] = {"convention": args.convention, "value": report.headline(args.convention)}
    if args.training and report.training.complete:
        facts["step_memory"] = {"optimizer": args.optimizer, "dtype": shown,
                                "bytes": report.training.memory(args.optimizer, args.dtype)}
    if args.budget is not None:
        from convcost.torch.fit import max_batch, step_memory

        largest = max_batch(model, args.shapes[0] if len(args.shapes) == 1 else args.shapes, args.budget,
                            args.optimizer, args.dtype)
        facts["max_batch"] = {"memory": args.memory, "memory_bytes": args.budget, "optimizer": args.optimizer,
                              "dtype": shown, "batch": largest}
        if largest == 0:  # say what one sample needs, not only that it does not fit
            ones = [(1, *s[1:]) for s in args.shapes]
            facts["max_batch"]["batch_1_bytes"] = step_memory(model, ones[0] if len(ones) == 1 else ones,
                                                              args.optimizer, args.dtype)
    return facts


def _render(args, report, facts, latency=None) -> str:
    if args.format == "json":
        import json

        data = report.as_dict()
        for key, value in facts.items():
            data[key] = {k: display.json_value(v) if not isinstance(v, str) else v for k, v in value.items()}
        if latency is not None:
            data["latency"] = latency.as_dict()
        return json.dumps(data, indent=2) + "\n"
    if args.format == "csv":
        return report.to_csv(extra=_fact_rows(facts))
    text = report.table(depth=args.depth) if args.format == "table" else report.to_markdown()
    text += "".join(f"{line}\n" for line in _fact_lines(facts))
    return text + (latency.table(depth=args.depth) if latency is not None else "")


def _fact_lines(facts) -> list:
    out = []
    if "headline" in facts:
        h = facts["headline"]
        out.append(f"{h['convention']} headline: {display.number(h['value'])}")
    if "step_memory" in facts and (facts["step_memory"]["optimizer"], facts["step_memory"]["dtype"]) != ("adam",
                                                                                                      "float32"):
        m = facts["step_memory"]  # adam with float32 is already in the report's own lines
        weights = "each tensor in its dtype as read" if m["dtype"] == "mixed" else f"{m['dtype']} parameters"
        out.append(f"Step memory with {m['optimizer']}, {weights}: {display.size(m['bytes'])}")
    if "max_batch" in facts:
        b = facts["max_batch"]
        line = (f"Largest batch whose training step fits in {b['memory']} = {display.size(b['memory_bytes'])} "
                f"({b['optimizer']}, {b['dtype']}): {b['batch']:,}")
        if "batch_1_bytes" in b:
            line += f"; a batch of 1 needs {display.size(b['batch_1_bytes'])}"
        out.append(line)
    return out


def _fact_rows(facts) -> list:
    """``(name, value)`` of every fact, for the CSV's closing lines."""
    rows = []
    if "headline" in facts:
        rows.append((f"headline[{facts['headline']['convention']}]", facts["headline"]["value"]))
    if "step_memory" in facts:
        m = facts["step_memory"]
        rows.append((f"step_memory_bytes[{m['optimizer']}, {m['dtype']}]", m["bytes"]))
    if "max_batch" in facts:
        b = facts["max_batch"]
        rows.append((f"max_batch[{b['memory']}, {b['optimizer']}, {b['dtype']}]", b["batch"]))
        if "batch_1_bytes" in b:
            rows.append((f"step_memory_bytes[batch 1, {b['optimizer']}, {b['dtype']}]", b["batch_1_bytes"]))
    return rows
