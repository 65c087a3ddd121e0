"""``convcost list``, ``convcost cost`` and ``convcost tour``: the variants and their exact costs.

>>> from convcost.cli import main
>>> main(["cost", "StandardConv", "G=G"])  # doctest: +ELLIPSIS
StandardConv(symbolic: G)
  output_shape        = (1, O, H - K + 1, ...)
  params              = C*K**2*O/G + O
...
  valid when C mod G = 0
  valid when O mod G = 0
...
0
"""

from __future__ import annotations

import json

from convcost import display
from convcost.cli import options
from convcost.errors import ConvcostError


def register(sub) -> None:
    """The core subcommands: list, cost, tour."""
    p = sub.add_parser("list", help="list every named variant")
    p.set_defaults(handler=_list)

    p = sub.add_parser("cost", help="exact cost of a variant: closed forms and numbers",
                       description="The exact cost of a variant. Fields left out are symbols (C, O, K, H, W ...) "
                                   "or PyTorch's defaults (bias on, stride 1, padding 0, groups 1, batch 1).")
    p.add_argument("variant", help="a variant name, e.g. SeparableConv (see: convcost list)")
    p.add_argument("fields", nargs="*", metavar="NAME=VALUE",
                   help="fields as integers or symbol names, e.g. C=64 K=3 H=56")
    p.add_argument("--json", action="store_true", help="print JSON (integers as numbers, formulas as text)")
    options.symbol_option(p)
    p.add_argument("--general", action="store_true",
                   help="start from the general form: fields left out are symbols (S, P, D, G ...), not defaults")
    p.add_argument("--training", action="store_true",
                   help="also the training step: backward MACs, saved elements, training memory in bytes")
    p.add_argument("--optimizer", default=None, help="with --training: sgd, momentum, adam (default) or adamw")
    p.add_argument("--dtype", default=None,
                   help="with --training: the parameters' dtype, float32 (default), float16, bfloat16, float64")
    p.add_argument("--first", action="store_true",
                   help="with --training: the layer is fed data, so its input needs no gradient")
    p.add_argument("--frozen", action="store_true", help="with --training: the parameters are not trained")
    p.add_argument("--precision", default=None, choices=("fp32", "bf16-autocast", "fp16-autocast", "bf16", "fp16"),
                   help="with --training: price the step under this mixed-precision recipe instead of --dtype "
                        "(float32 master weights and state under autocast, each saved tensor in autocast's dtype)")
    p.set_defaults(handler=_cost, check=_check)

    p = sub.add_parser("tour", help="a tour of every variant's cost")
    p.set_defaults(handler=_tour)


#: what a count counts, where it is not operations: said beside the number
_UNITS = {"activation_elements": " elements", "memory_access": " elements", "saved_elements": " elements",
          "saved_indices": " indices"}


def _check(args) -> None:
    if args.precision is not None and (not args.training or args.dtype is not None):
        raise ConvcostError(f"--precision {args.precision} prices a training step in place of --dtype: add "
                            "--training and leave --dtype out")
    options.training(args)


def _list(args) -> int:
    import shutil
    import textwrap

    from convcost.catalog import VARIANTS

    width = max(map(len, VARIANTS))
    columns = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    for name, cls in VARIANTS.items():  # each description whole, wrapped under itself
        print(textwrap.fill(summary(cls.__doc__), width=columns, initial_indent=f"{name:<{width}}  ",
                            subsequent_indent=" " * (width + 2), break_on_hyphens=False))
    return 0


def summary(doc: str) -> str:
    """The first sentence of a docstring, whole (joined over the lines it spans), its markup dropped.

    >>> summary("A KxK convolution\\n    from C to O channels (``nn.Conv2d``). More here.")
    'A KxK convolution from C to O channels (nn.Conv2d).'
    """
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    end = next((i + 1 for i, ch in enumerate(paragraph)
                if ch == "." and (i + 1 == len(paragraph) or paragraph[i + 1] == " ")), len(paragraph))
    return paragraph[:end].replace("``", "")


def _cost(args) -> int:
    from convcost.arguments import parse_fields
    from convcost.catalog import variant
    from convcost.costs import METRICS, TRAINING_METRICS
    from convcost.frontdoor import cost

    cls = variant(args.variant)
    c = cost(cls, general=args.general, **parse_fields(cls, args.fields, args.symbol))
    shown = [m for m in METRICS if m not in TRAINING_METRICS]
    extra = {}
    if args.training:
        c = c.spec.cost(c.input_shape, input_grad=not args.first, trainable=not args.frozen)
        shown += list(TRAINING_METRICS)
        if args.precision is None:
            extra[f"training_memory[{args.optimizer}, {args.dtype}]"] = c.training_memory(args.optimizer, args.dtype)
        else:
            extra[f"training_memory[{args.optimizer}, {args.precision}]"] = c.training_memory(
                args.optimizer, precision=args.precision)
    if args.json:
        data = {"spec": display.spec(c.spec)}
        for key, value in c.as_dict().items():
            if key in shown or key in ("flops", "output_shape"):
                data.update(display.json_fields(key, value))
        for key, value in extra.items():
            data.update(display.json_fields(key, value))
        data["conditions"] = [display.condition(x) for x in c.conditions]
        print(json.dumps(data, indent=2))
        return 0
    print(display.spec(c.spec))
    print(f"  output_shape        = ({', '.join(map(display.formula, c.output_shape))})")
    for m in (*shown[:2], "flops", *shown[2:], *extra):
        value = extra[m] if m in extra else getattr(c, m)
        if value != 0 or m in ("params", "macs", "flops", *extra):
            shown = display.size(value) if m in extra else display.number(value) + _UNITS.get(m, "")
            print(f"  {m:<19} = {shown}")
    for cond in c.conditions:
        print(f"  valid when {display.condition(cond)}")
    return 0


def _tour(args) -> int:
    from convcost.tour import tour

    print(tour())
    return 0
