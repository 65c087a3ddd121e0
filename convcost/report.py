"""A whole-model report: one row per leaf operation, totals derived from the rows.

Counting conventions are convcost's (see :mod:`convcost.costs`): ``macs`` are the
multiply-accumulates of convolutions, transposed convolutions, linear layers and
matrix products, bias excluded; bias, normalisation, activation, pooling and
element-wise work are reported apart. A row's ``params`` are the parameter
tensors it consumes, each tensor counted once in the whole report (a tied
weight is counted by the first row that uses it; later rows name it in
``tied_to``). Other tools' headline numbers come from :mod:`convcost.torch.conventions`.

Operations convcost cannot cost are never counted as zero silently: they are
listed in ``unsupported`` with how often they occur, and ``complete`` is false.

>>> from convcost.primitives import Conv, Activation
>>> rows = [Row.of("conv", "Conv2d", Conv(C=3, O=8, K=3), ((1, 3, 8, 8),)),
...         Row.of("act", "ReLU", Activation("relu"), ((1, 8, 6, 6),))]
>>> r = Report(rows)
>>> r.total["params"], r.total["macs"], r.total["act_ops"]
(224, 7776, 288)
>>> r.complete
True
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json

import sympy

from convcost.costs import METRICS
from convcost.errors import ConvcostError
from convcost.general_form import formula as general_formula
from convcost.layers import Merge
from convcost.vectorise import compile_exprs

#: the columns of every output format, in order
COLUMNS = ("path", "op", "spec", "output_shape", *METRICS, "formula", "tied_to")


@dataclasses.dataclass(frozen=True)
class Row:
    """One leaf operation: where it is, what it is, its exact counts and the formula of its MACs."""

    path: str
    op: str
    spec: object
    input_shapes: tuple
    output_shape: tuple
    counts: dict
    source: str = "module"  # "module" (a called nn.Module) or "function" (F.conv2d, x + y ...)
    tied_to: str = ""

    @classmethod
    def of(cls, path, op, spec, input_shapes, *, source="module", params=None, tied_to="") -> Row:
        """The row of ``spec`` on ``input_shapes`` with exact (possibly symbolic) counts."""
        shapes = tuple(tuple(s) for s in input_shapes)
        c = spec.cost(list(shapes) if isinstance(spec, Merge) else shapes[0])
        counts = {m: getattr(c, m) for m in METRICS}
        if params is not None:
            counts["params"] = params
        return cls(path, op, spec, shapes, c.output_shape, counts, source, tied_to)

    @functools.cached_property
    def formula(self) -> str:
        """The main count of the row's layer over symbols (:mod:`convcost.general_form`), built on first use."""
        return general_formula(self.spec, list(self.input_shapes) if isinstance(self.spec, Merge) else self.input_shapes[0])

    def __getattr__(self, name):
        if name in METRICS:
            return self.counts[name]
        raise AttributeError(name)

    def as_dict(self) -> dict:
        """Plain values (ints, or strings for symbolic counts) for JSON and CSV."""
        out = {"path": self.path, "op": self.op, "spec": repr(self.spec), "source": self.source,
               "input_shapes": [[_plain(x) for x in s] for s in self.input_shapes],
               "output_shape": [_plain(x) for x in self.output_shape]}
        out.update({m: _plain(self.counts[m]) for m in METRICS})
        out["formula"] = self.formula
        out["tied_to"] = self.tied_to
        return out


@dataclasses.dataclass(frozen=True)
class Unsupported:
    """An operation convcost could not cost: its name, how often it ran, where, and why."""

    op: str
    count: int
    paths: tuple
    reason: str
    params: int = 0  # learnable parameters it holds (still counted in the totals, by numel)


def _plain(x):
    x = sympy.sympify(x)
    if x.is_Integer:
        return int(x)
    return str(x)


def _fmt_int(x) -> str:
    x = sympy.sympify(x)
    return f"{int(x):,}" if x.is_Integer else str(x)


def _shape(shape) -> str:
    return "[" + ", ".join(str(x) for x in shape) + "]"


class Report:
    """Rows of a model's leaf operations, with derived totals (see the module docstring)."""

    def __init__(self, rows, *, unsupported=(), input_shape=(), model="model", traced_with="torch.fx",
                 notes=(), unused_params=0, unused_names=()):
        self.rows = tuple(rows)
        self.unsupported = tuple(unsupported)
        self.input_shape = tuple(input_shape)
        self.model = model
        self.traced_with = traced_with
        self.notes = tuple(notes)
        self.unused_params = unused_params
        self.unused_names = tuple(unused_names)
        self._compiled = None
        self.convention = "convcost"  # the tool whose headline ``headline()`` gives by default
        self._headline = None  # how the tools count: given by the backend that read the model

    def with_convention(self, convention: str, headline) -> Report:
        """This report, with the tool ``convention`` as the default of :meth:`headline` and the function
        that knows each tool's rules (:func:`convcost.torch.conventions.headline`)."""
        self.convention, self._headline = convention, headline
        return self

    # -- totals ----------------------------------------------------------------
    @property
    def total(self) -> dict:
        """Every metric summed over the rows; ``params`` also holds parameters no row reads."""
        sums = {m: sum(r.counts[m] for r in self.rows) for m in METRICS}  # ints stay ints: fast
        sums["params"] += self.unused_params + sum(u.params for u in self.unsupported)
        return {m: _int_if_number(v) for m, v in sums.items()}

    @property
    def flops(self):
        """``2 * macs`` (PyTorch's convention)."""
        return 2 * self.total["macs"]

    @property
    def complete(self) -> bool:
        """True when every operation of the model was costed."""
        return not self.unsupported

    @property
    def free_symbols(self) -> set:
        return set().union(*(sympy.sympify(v).free_symbols for v in self.total.values()))

    def headline(self, convention: str | None = None):
        """The number the tool named by ``convention`` reports for this model (see :mod:`convcost.torch.conventions`)."""
        if self._headline is None:
            raise ConvcostError("headline: the tools' conventions come with the PyTorch backend; "
                                "make the report with convcost.torch.profile")
        return self._headline(self, convention)

    # -- symbolic input sizes ------------------------------------------------------
    def subs(self, **values) -> dict:
        """Totals with symbols bound (exact sympy numbers)."""
        bound = {}
        for m, v in self.total.items():
            v = sympy.sympify(v)
            names = {s.name: s for s in v.free_symbols}
            bound[m] = _int_if_number(v.subs({names[k]: x for k, x in values.items() if k in names}))
        return bound

    def evaluate(self, metrics=("params", "macs"), **arrays) -> dict:
        """Totals at many input sizes at once: ``evaluate(H=np.arange(32, 1032), W=...)``.

        Returns exact integer numpy arrays (one per metric), from one compiled call.
        """
        import numpy as np

        symbols = sorted(self.free_symbols, key=lambda s: s.name)
        names = [s.name for s in symbols]
        missing = [n for n in names if n not in arrays]
        extra = [n for n in arrays if n not in names]
        if missing or extra:
            raise ConvcostError(f"evaluate: the report's symbols are {', '.join(names) or 'none'}; "
                                f"got {', '.join(arrays) or 'none'}")
        for m in metrics:
            if m not in METRICS:
                raise ConvcostError(f"evaluate: unknown metric {m!r}; known: {', '.join(METRICS)}")
        key = tuple(metrics)
        if self._compiled is None or self._compiled[0] != key:
            total = self.total
            self._compiled = (key, compile_exprs([total[m] for m in metrics], symbols))
        args = [np.asarray(arrays[n], dtype=np.int64) for n in names]
        if any((a <= 0).any() for a in args):
            raise ConvcostError("evaluate: input sizes must be positive integers")
        values = self._compiled[1](*args)
        size = np.broadcast(*args).shape if args else ()
        return {m: np.broadcast_to(np.asarray(v), size).astype(np.int64) for m, v in zip(metrics, values)}

    # -- output formats -------------------------------------------------------------
    def as_dict(self) -> dict:
        """Everything in plain values: rows, totals, unsupported operations."""
        return {
            "model": self.model,
            "input_shape": [_plain(x) for x in self.input_shape],
            "traced_with": self.traced_with,
            "complete": self.complete,
            "rows": [r.as_dict() for r in self.rows],
            "total": {m: _plain(v) for m, v in self.total.items()} | {"flops": _plain(self.flops)},
            "unsupported": [dataclasses.asdict(u) | {"paths": list(u.paths)} for u in self.unsupported],
            "unused_params": self.unused_params,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int = 2) -> str:
        """The report as JSON."""
        return json.dumps(self.as_dict(), indent=indent)

    def to_csv(self) -> str:
        """One CSV line per row (columns :data:`COLUMNS`), then a ``total`` line."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.rows:
            d = r.as_dict()
            writer.writerow([d["path"], d["op"], d["spec"], _shape(r.output_shape), *[d[m] for m in METRICS],
                             d["formula"], d["tied_to"]])
        total = self.total
        writer.writerow(["total", "", "", _shape(self.rows[-1].output_shape) if self.rows else "",
                         *[_plain(total[m]) for m in METRICS], "", ""])
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A Markdown table of the rows and totals, then the unsupported operations."""
        head = ["path", "op", "output shape", "params", "MACs", "other ops", "formula"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            lines.append("| " + " | ".join([f"`{r.path}`", r.op, _shape(r.output_shape), _fmt_int(r.counts["params"]),
                                            _fmt_int(r.counts["macs"]), _fmt_int(_other(r.counts)),
                                            r.formula]) + " |")
        t = self.total
        lines.append("| **total** | | | " + " | ".join(f"**{_fmt_int(x)}**" for x in (t["params"], t["macs"], _other(t)))
                     + " | |")
        lines += [""] + self._footer(markdown=True)
        return "\n".join(lines).rstrip() + "\n"

    def table(self) -> str:
        """A torchinfo-like table: layer (path), output shape, params, MACs; totals and what is missing."""
        head = ("Layer (type)", "Output Shape", "Param #", "Mult-Adds")
        body = []
        for r in self.rows:
            depth = r.path.count(".")
            label = "  " * depth + f"{r.path.rsplit('.', 1)[-1]} ({r.op})"
            params = _fmt_int(r.counts["params"]) + (" (tied)" if r.tied_to else "")
            body.append((label, _shape(r.output_shape), params, _fmt_int(r.counts["macs"])))
        widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i]) for i in range(4)]
        rule = "=" * (sum(widths) + 6)
        fmt = lambda cols: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))  # noqa: E731
        t = self.total
        lines = [rule, fmt(head), rule, *(fmt(b) for b in body), rule,
                 f"Total params: {_fmt_int(t['params'])}",
                 f"Total mult-adds (MACs): {_fmt_int(t['macs'])}",
                 f"Other ops: bias {_fmt_int(t['bias_ops'])}, norm {_fmt_int(t['norm_ops'])}, "
                 f"activation {_fmt_int(t['act_ops'])}, pool {_fmt_int(t['pool_ops'])}, "
                 f"element-wise {_fmt_int(t['elementwise_ops'])}",
                 f"Activation elements: {_fmt_int(t['activation_elements'])}; "
                 f"memory access (elements): {_fmt_int(t['memory_access'])}",
                 f"Input shape: {_shape(self.input_shape)}; traced with {self.traced_with}",
                 rule]
        footer = self._footer(markdown=False)
        return "\n".join(lines + footer) + "\n"

    def _footer(self, *, markdown: bool) -> list:
        out = []
        if self.unsupported:
            out.append("NOT COUNTED (unsupported, listed, never counted as zero silently):")
            for u in self.unsupported:
                extra = f"; {u.params:,} params counted by numel" if u.params else ""
                out.append(f"{'- ' if markdown else '  '}{u.op} x{u.count} at {', '.join(u.paths[:3])}"
                           f"{' ...' if len(u.paths) > 3 else ''}: {u.reason}{extra}")
        if self.unused_params:
            out.append(f"Parameters read by no operation (counted in params): {self.unused_params:,} "
                       f"({', '.join(self.unused_names[:5])})")
        out += list(self.notes)
        return out

    def __repr__(self):
        t = self.total
        return (f"<Report of {self.model} on {_shape(self.input_shape)}: {len(self.rows)} rows, "
                f"params={t['params']}, macs={t['macs']}{'' if self.complete else ', INCOMPLETE'}>")


def _other(counts) -> object:
    return sympy.Add(*(counts[m] for m in ("bias_ops", "norm_ops", "act_ops", "pool_ops", "elementwise_ops")))


def _int_if_number(v):
    v = sympy.sympify(v)
    return int(v) if v.is_Integer else v
