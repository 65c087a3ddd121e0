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
import itertools
import json
import operator
import re
import textwrap
import typing

import sympy

from convcost import costs, display
from convcost.errors import ConvcostError
from convcost.general_form import formula as general_formula
from convcost.vectorise import compile_exprs

#: the counts a report carries: the forward pass. A training step per row needs the model's data flow (which
#: tensors need a gradient, which storages rows share), which the readers do not follow yet; a sum of the
#: rows' own backward_macs and saved_elements would be wrong, so the report leaves them out.
METRICS = tuple(m for m in costs.METRICS if m not in costs.TRAINING_METRICS)

_COUNTS, _STEP_COUNTS = operator.attrgetter(*METRICS), operator.attrgetter(*costs.METRICS)

#: the columns of every output format, in order
COLUMNS = ("path", "op", "spec", "output_shape", *METRICS, "formula", "tied_to")
#: the columns a training step adds: each row's own backward MACs and the elements it saves for backward
STEP_COLUMNS = ("backward_macs", "saved_elements")


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
    def of(cls, path, op, spec, input_shapes, *, source="module", params=None, tied_to="", cost=None) -> Row:
        """The row of ``spec`` on ``input_shapes`` with exact (possibly symbolic) counts (``cost``: the layer's
        cost when the caller made it, with the training flags of its step)."""
        shapes = tuple(map(tuple, input_shapes))
        c = cost if cost is not None else forward_cost(spec, shapes)
        # a step: its counts too (attrgetter: every row of a reading is made here)
        counts = dict(zip(costs.METRICS, _STEP_COUNTS(c))) if cost is not None else dict(zip(METRICS, _COUNTS(c)))
        if params is not None:
            counts["params"] = params
        return cls.made(path, op, spec, shapes, c.output_shape, counts, source, tied_to)

    @classmethod
    def made(cls, path, op, spec, input_shapes, output_shape, counts, source="module", tied_to="") -> Row:  # noqa: PLR0913
        """``Row(...)`` of fields already checked (a reading makes one a call): its fields set at once, not one frozen
        ``__setattr__`` each.

        >>> Row.made("fc", "Linear", None, ((1, 4),), (1, 2), {"macs": 8}) == Row("fc", "Linear", None, ((1, 4),),
        ...                                                                      (1, 2), {"macs": 8})
        True
        """
        row = object.__new__(cls)
        row.__dict__.update(path=path, op=op, spec=spec, input_shapes=input_shapes, output_shape=output_shape,
                            counts=counts, source=source, tied_to=tied_to)
        return row

    def with_params(self, params, tied_to="") -> Row:
        """The same row with its parameter count (and the row it shares a tied tensor with) set."""
        return dataclasses.replace(self, counts={**self.counts, "params": params}, tied_to=tied_to)

    @property
    def node(self) -> str:
        """The row's place in the module tree: its path without the ``#n`` of repeated calls."""
        return _node(self.path)

    @functools.cached_property
    def formula(self) -> str:
        """The main count of the row's layer over symbols (:mod:`convcost.general_form`), built on first use."""
        return general_formula(self.spec, self.input_shapes)

    def __getattr__(self, name):
        if name in costs.METRICS and name in self.counts:
            return self.counts[name]
        raise AttributeError(name)

    def as_dict(self) -> dict:
        """Plain values (ints, or strings for symbolic counts) for JSON and CSV."""
        out = {"path": self.path, "op": self.op, "spec": repr(self.spec), "source": self.source,
               "input_shapes": [[_plain(x) for x in s] for s in self.input_shapes],
               "output_shape": [_plain(x) for x in self.output_shape]}
        out.update({m: _plain(self.counts[m]) for m in METRICS})
        out.update({m: _plain(self.counts[m]) for m in STEP_COLUMNS if m in self.counts})
        out["formula"] = self.formula
        out["tied_to"] = self.tied_to
        return out


def forward_cost(spec, shapes):
    """``spec.cost_of_inputs(shapes)`` (``shapes``: a tuple of tuples), remembered for plain integer shapes: a
    model repeats its layers (every block of a ResNet stage), a rule that needs a call's output shape asks for
    the cost its row then takes (a matrix product), and a profile is often taken again; a spec is a frozen value
    whose cost on a shape never changes. The key holds the class's formula too, so that a formula replaced at run
    time (a test's stand-in) is not answered from before.

    >>> from convcost.primitives import MatMul
    >>> forward_cost(MatMul(), ((2, 3, 4), (4, 5))) is forward_cost(MatMul(), ((2, 3, 4), (4, 5)))
    True
    """
    if _int_shapes(shapes):
        kind = type(spec)
        try:
            return _remembered_cost(spec, shapes, kind.cost_of_inputs, getattr(kind, "_cost", None))
        except TypeError:  # a spec holding something unhashable (a user's own layer): computed every time
            pass
    return spec.cost_of_inputs(shapes)


_PLAIN = frozenset({int})


def _int_shapes(shapes) -> bool:
    """Whether every size in ``shapes`` is a plain int (a loop: a row's two shapes are the common case; a concat's 60
    shapes at C speed)."""
    if len(shapes) > 4:
        return set(map(type, itertools.chain.from_iterable(shapes))) <= _PLAIN
    for shape in shapes:
        for x in shape:
            if type(x) is not int:
                return False
    return True


@functools.lru_cache(maxsize=4096)
def _remembered_cost(spec, shapes, *formula):
    return spec.cost_of_inputs(shapes)


class ModuleCall(typing.NamedTuple):
    """A childless module that was read by the calls it makes, not as one row: what tools that hook modules
    see of it (its type name, output shape and own parameters as ``(name, numel)``)."""

    path: str
    type_name: str
    output_shape: tuple
    params: tuple


@dataclasses.dataclass(frozen=True)
class Unsupported:
    """An operation convcost could not cost: its name, how often it ran, where, and why."""

    op: str
    count: int
    paths: tuple
    reason: str
    params: int = 0  # learnable parameters it holds (still counted in the totals, by numel)
    held: tuple = ()  # (path, params) where it holds them
    macs: bool = True  # whether it may hold multiply-accumulates (False: element-wise or reduction work only)


def _node(path: str) -> str:
    return _REPEAT.sub("", path) if "#" in path else path


_REPEAT = re.compile(r"#\d+")


def _plain(x):
    x = sympy.sympify(x)
    if x.is_Integer:
        return int(x)
    return display.formula(x)


def _fmt_int(x) -> str:
    x = sympy.sympify(x)
    return f"{int(x):,}" if x.is_Integer else display.formula(x)


def _shape(shape) -> str:
    return "[" + ", ".join(_plain(x) if not isinstance(x, int) else str(x) for x in shape) + "]"


class Report:
    """Rows of a model's leaf operations, with derived totals (see the module docstring)."""

    def __init__(self, rows, *, unsupported=(), input_shape=(), input_shapes=None, model="model",
                 traced_with="torch.fx", notes=(), unused=(), modules=None,
                 convention="convcost", headline=None, module_calls=(), training=None, blocks=None):
        set_ = object.__setattr__
        set_(self, "rows", tuple(rows))
        set_(self, "unsupported", tuple(unsupported))
        set_(self, "input_shape", tuple(input_shape))
        set_(self, "input_shapes", tuple(input_shapes) if input_shapes is not None else (self.input_shape,))
        set_(self, "model", model)
        set_(self, "traced_with", traced_with)
        set_(self, "notes", tuple(notes))
        set_(self, "unused", tuple(unused))  # (parameter name, numel) of parameters no operation read
        set_(self, "modules", dict(modules or {}))  # module path -> type name
        set_(self, "module_calls", tuple(module_calls))  # childless modules read by their calls (ModuleCall)
        #: the training step's totals (:class:`convcost.training.StepTotals`) of ``profile(..., training=True)``
        set_(self, "training", training)
        #: module path -> the convcost variant a block of the zoos is (timm's GhostModule, torchvision's CNBlock ...)
        set_(self, "blocks", dict(blocks or {}))
        set_(self, "convention", convention)  # the tool whose headline ``headline()`` gives by default
        set_(self, "_headline", headline)  # how the tools count: given by the backend that read the model
        set_(self, "_compiled", None)

    def __setattr__(self, name, value):
        raise AttributeError(f"a Report is complete when built; {name!r} cannot be set (profile again instead)")

    @property
    def unused_params(self) -> int:
        """Parameters read by no operation (still counted in ``total['params']``)."""
        return sum(n for _, n in self.unused)

    @property
    def unused_names(self) -> tuple:
        return tuple(name for name, _ in self.unused if name)

    # -- totals ----------------------------------------------------------------
    @functools.cached_property
    def _total(self) -> dict:
        sums = {m: sum(r.counts[m] for r in self.rows) for m in METRICS}  # ints stay ints: fast
        sums["params"] += self.unused_params + sum(u.params for u in self.unsupported)
        if self.training is not None:  # the step's own totals: each saved storage once, not the rows' sum
            sums.update(backward_macs=self.training.backward_macs, saved_elements=self.training.saved_elements,
                        saved_indices=self.training.saved_indices)
        return {m: _int_if_number(v) for m, v in sums.items()}

    @property
    def total(self) -> dict:
        """Every metric summed over the rows; ``params`` also holds parameters no row reads."""
        return dict(self._total)

    @property
    def flops(self):
        """``2 * macs`` (PyTorch's convention)."""
        return 2 * self.total["macs"]

    @property
    def complete(self) -> bool:
        """True when every operation of the model was costed."""
        return not self.unsupported

    @property
    def exact(self) -> bool:
        """True when every call that may do multiply-accumulates was counted (element-wise or reduction
        work left uncounted, listed in ``unsupported``, does not make it False)."""
        return not any(u.macs for u in self.unsupported)

    # -- the module tree -------------------------------------------------------------
    def _contributions(self):
        """``(tree path, counts)`` of everything in the totals: rows, held and unused parameters."""
        for r in self.rows:
            yield r.node, r.counts
        for u in self.unsupported:
            for path, params in u.held:
                yield _node(path), {"params": params}
        for name, params in self.unused:
            if params:
                yield name, {"params": params}

    def by_module(self, depth: int | None = None) -> dict:
        """Totals per module path, parents before their children, down to ``depth`` levels (all when None).

        Each node sums every row below it (its module's own calls and its submodules'), so children sum
        to their parent and the top level sums to :attr:`total`.
        """
        if depth is not None and (type(depth) is not int or depth < 1):
            raise ConvcostError(f"by_module: depth={depth!r} must be a positive integer or None")
        sums, children = {}, {"": []}
        for path, counts in self._contributions():
            parts = path.split(".") if path else ["(model)"]
            parent = ""
            for k in range(1, (len(parts) if depth is None else min(depth, len(parts))) + 1):
                key = ".".join(parts[:k])
                if key not in sums:
                    sums[key] = dict.fromkeys(METRICS, 0)
                    children.setdefault(parent, []).append(key)
                    children[key] = []
                node = sums[key]
                for m, v in counts.items():
                    node[m] = node.get(m, 0) + v
                parent = key
        ordered = {}

        def visit(key):
            for child in children.get(key, ()):
                ordered[child] = {m: _int_if_number(v) for m, v in sums[child].items()}
                visit(child)

        visit("")
        return ordered

    @property
    def free_symbols(self) -> set:
        return set().union(*(sympy.sympify(v).free_symbols for v in self.total.values()))

    def headline(self, convention: str | None = None):
        """The number the tool named by ``convention`` reports for this model (:mod:`convcost.torch.conventions`)."""
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
            object.__setattr__(self, "_compiled", (key, compile_exprs([total[m] for m in metrics], symbols)))
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
            "unsupported": [dataclasses.asdict(u) | {"paths": list(u.paths), "held": [list(h) for h in u.held]}
                            for u in self.unsupported],
            "unused_params": self.unused_params,
            "exact": self.exact,
            "by_module": {path: {m: _plain(v) for m, v in counts.items()} for path, counts in self.by_module().items()},
            "input_shapes": [[_plain(x) for x in s] for s in self.input_shapes],
            "notes": list(self.notes),
        } | ({"blocks": {path: display.spec(spec) for path, spec in self.blocks.items()}} if self.blocks else {}) | (
            {"training": self._step_dict()} if self.training is not None else {})

    def _step_dict(self) -> dict:
        step = self.training
        out = {k: (_plain(v) if k != "untracked" else [list(u[:2]) + [list(u[2]), u[3]] for u in v])
               for k, v in dataclasses.asdict(step).items()}
        out["saved_by_dtype"] = {name: _plain(n) for name, n in step.saved_by_dtype}
        if step.complete:  # the bytes the text shows: float32 parameters with sgd and adam
            out["memory_bytes_float32"] = {opt: _plain(step.memory(opt)) for opt in ("sgd", "adam")}
        return out

    def to_json(self, indent: int = 2) -> str:
        """The report as JSON."""
        return json.dumps(self.as_dict(), indent=indent)

    def to_csv(self, extra=()) -> str:
        """One CSV line per row (columns :data:`COLUMNS`, then :data:`STEP_COLUMNS` for a training step), then a
        ``total`` line; ``extra`` pairs ``(name, value)`` (a headline, a step's memory) follow as lines of their
        own, their value in a last column ``value``."""
        step = STEP_COLUMNS if self.training is not None else ()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*COLUMNS, *step, *(("value",) if extra else ())])
        for r in self.rows:
            d = r.as_dict()
            writer.writerow([d["path"], d["op"], d["spec"], _shape(r.output_shape), *[d[m] for m in METRICS],
                             d["formula"], d["tied_to"], *[_plain(r.counts.get(m, 0)) for m in step]])
        total = self.total
        writer.writerow(["total", "", "", _shape(self.rows[-1].output_shape) if self.rows else "",
                         *[_plain(total[m]) for m in METRICS], "", "", *[_plain(total[m]) for m in step]])
        for name, value in extra:
            writer.writerow([name, *[""] * (len(COLUMNS) + len(step) - 1), _plain(value)])
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A Markdown table of the rows and totals, then the unsupported operations."""
        step = STEP_COLUMNS if self.training is not None else ()
        head = ["path", "op", "output shape", "params", "MACs", "other ops",
                *(("backward MACs", "saved") if step else ()), "formula"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|---|---|" + "--:|" * (len(head) - 4) + "---|"]
        for r in self.rows:
            counts = [r.counts["params"], r.counts["macs"], _other(r.counts), *(r.counts.get(m, 0) for m in step)]
            lines.append("| " + " | ".join([f"`{r.path}`", r.op, _shape(r.output_shape),
                                            *(_md(_fmt_int(x)) for x in counts), _md(r.formula)]) + " |")
        t = self.total
        totals = (t["params"], t["macs"], _other(t), *(t[m] for m in step))
        lines.append("| **total** | | | " + " | ".join(f"**{_md(_fmt_int(x))}**" for x in totals) + " | |")
        lines += [""] + self._footer(markdown=True)
        return "\n".join(lines).rstrip() + "\n"

    def table(self, depth: int | None = None, *, width: int = 120, formulas: bool = False) -> str:
        """The module tree as text: one line per module path down to ``depth`` (all when None), indented,
        with its type, output shape (for a single call), params, MACs in K/M/G and percent of the total,
        then the totals and what was not counted. ``formulas=True`` adds each call's formula on its own
        wrapped line; ``width`` limits every line."""
        nodes = self.by_module(depth)
        leaves = {}
        for r in self.rows:
            leaves.setdefault(r.node, []).append(r)
        t = self.total
        step = self.training is not None
        head = ("Module", "Type", "Output shape", "Params", "MACs", "% MACs", "Other ops",
                *(("Backward MACs", "Saved") if step else ()))
        body, notes = [], {}
        for path, counts in nodes.items():
            level = path.count(".")
            rows = leaves.get(path, [])
            kind = self.modules.get(path) or (rows[0].op if rows else "")
            shape = _shape(rows[-1].output_shape) if len(rows) == 1 else (f"x{len(rows)} calls" if rows else "")
            body.append(("  " * level + path, kind, shape, _human(counts["params"]), _human(counts["macs"]),
                         _percent(counts["macs"], t["macs"]), _human(_other(counts)),
                         *((_human(counts.get("backward_macs", 0)), _human(counts.get("saved_elements", 0)))
                           if step else ())))
            if formulas and len(rows) >= 1 and path not in notes:
                notes[len(body) - 1] = rows[0].formula
        below = {}  # row -> its symbolic counts too long for a column, each written out on a line under it
        if _width(head, body) > width:
            for k, b in enumerate(body):
                cells = list(b)
                for i in range(3, len(head)):
                    if len(cells[i]) > _CELL and not _is_number(cells[i]):
                        below.setdefault(k, []).append(f"{head[i]} = {cells[i]}")
                        cells[i] = "↓"
                body[k] = tuple(cells)
        widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i]) for i in range(len(head))]
        spare = sum(widths) + 2 * (len(widths) - 1) - width
        for i, least in ((1, 12), (0, 24), (2, 24), (1, 0), (0, 0), (2, 0)):
            # shorten the type (its start kept), the path (its end kept), the shape; then each to its heading
            if spare > 0:
                cut = max(0, min(spare, widths[i] - max(len(head[i]), least)))
                widths[i] -= cut
                spare -= cut

        def fit(text, w, column):
            if len(text) > w:
                text = ("…" + text[len(text) - w + 1:]) if column == 0 else text[: w - 1] + "…"
            return text.ljust(w) if column < 3 else text.rjust(w)

        def line(cols):
            return "  ".join(fit(c, w, i) for i, (c, w) in enumerate(zip(cols, widths))).rstrip()

        rule = "=" * min(width, sum(widths) + 2 * (len(widths) - 1))
        lines = [rule, line(head), rule]
        for i, b in enumerate(body):
            lines.append(line(b))
            indent = "    " + "  " * b[0].count(".")
            for text in below.get(i, ()):
                lines += textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ")
            if i in notes and notes[i]:
                lines += textwrap.wrap(notes[i], width=width, initial_indent=indent, subsequent_indent=indent + "  ")
        summary = [f"Total params: {_with_human(t['params'])}",
                   f"Total mult-adds (MACs): {_with_human(t['macs'])}"
                   + ("" if self.exact else "  NOT EXACT: calls that may multiply-accumulate were not counted"),
                   f"Other ops: bias {_fmt_int(t['bias_ops'])}, norm {_fmt_int(t['norm_ops'])}, "
                   f"activation {_fmt_int(t['act_ops'])}, pool {_fmt_int(t['pool_ops'])}, "
                   f"element-wise {_fmt_int(t['elementwise_ops'])}",
                   f"Activation elements: {_fmt_int(t['activation_elements'])}; "
                   f"memory access: {_fmt_int(t['memory_access'])} elements",
                   f"Input shape: {', '.join(_shape(s) for s in self.input_shapes)}; traced with {self.traced_with}"]
        lines.append(rule)
        for text in summary:  # a symbolic total is long: wrapped within the width, as every line
            lines += textwrap.wrap(text, width=width, subsequent_indent="    ", break_on_hyphens=False)
        lines.append(rule)
        for line in self._footer(markdown=False):  # every line within the width, as the table's
            lead = " " * (len(line) - len(line.lstrip()))
            lines += textwrap.wrap(line, width=width, subsequent_indent=lead + "    ", break_on_hyphens=False) or [""]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        """The module tree (every level) as an HTML table, for Jupyter: the table's columns, numbers right-aligned,
        symbolic counts as code."""
        import html

        t = self.total
        step = self.training is not None
        leaves = {}
        for r in self.rows:
            leaves.setdefault(r.node, []).append(r)
        head = ["Module", "Type", "Output shape", "Params", "MACs", "% MACs", "Other ops",
                *(("Backward MACs", "Saved") if step else ())]
        right = "style='text-align:right'"

        def cell(text, tag="td"):
            shown = html.escape(text)
            if text and not _is_number(text):
                shown = f"<code>{shown}</code>"  # a formula
            return f"<{tag} {right}>{shown}</{tag}>"

        cells = ["<tr>" + "".join(f"<th{' ' + right if i > 2 else ''}>{h}</th>" for i, h in enumerate(head)) + "</tr>"]
        for path, counts in self.by_module().items():
            pad = 1.2 * path.count(".")
            rows = leaves.get(path, [])
            shape = _shape(rows[-1].output_shape) if len(rows) == 1 else (f"x{len(rows)} calls" if rows else "")
            numbers = [_human(counts["params"]), _human(counts["macs"]), _percent(counts["macs"], t["macs"]),
                       _human(_other(counts)),
                       *((_human(counts.get("backward_macs", 0)), _human(counts.get("saved_elements", 0)))
                         if step else ())]
            cells.append(f"<tr><td style='text-align:left;padding-left:{pad}em'><code>{html.escape(path)}</code></td>"
                         f"<td style='text-align:left'>{html.escape(self.modules.get(path, ''))}</td>"
                         f"<td style='text-align:left'>{html.escape(shape)}</td>{''.join(map(cell, numbers))}</tr>")
        totals = [_fmt_int(t["params"]), _fmt_int(t["macs"]), "100%", _fmt_int(_other(t)),
                  *((_fmt_int(t["backward_macs"]), _fmt_int(t["saved_elements"])) if step else ())]
        cells.append("<tr><th style='text-align:left'>total</th><th></th><th></th>"
                     + "".join(cell(x, "th") for x in totals) + "</tr>")
        foot = "".join(f"<p>{html.escape(line)}</p>" for line in self._footer(markdown=False))
        return f"<table>{''.join(cells)}</table>{foot}"

    def _footer(self, *, markdown: bool) -> list:
        out = []
        if self.unsupported:
            out.append("NOT COUNTED (unsupported, listed, never counted as zero silently):")
            for u in self.unsupported:
                extra = f"; {u.params:,} params counted by numel" if u.params else ""
                extra += "" if u.macs else "; no MACs"
                out.append(f"{'- ' if markdown else '  '}{u.op} x{u.count} at {', '.join(u.paths[:3])}"
                           f"{' ...' if len(u.paths) > 3 else ''}: {u.reason}{extra}")
        if self.unused_params:
            out.append(f"Parameters read by no operation (counted in params): {self.unused_params:,} "
                       f"({', '.join(self.unused_names[:5])})")
        out += list(self.notes)
        if self.blocks:
            out.append("Blocks named by convcost's variants (their exact counts equal their rows'):")
            out += [f"{'- ' if markdown else '  '}{path}: {display.spec(spec)}" for path, spec in self.blocks.items()]
        if self.training is not None:
            out += self._step_lines(markdown)
        return out

    def _step_lines(self, markdown) -> list:
        step = self.training
        bullet = "- " if markdown else "  "
        out = [f"Training step: backward MACs {display.number(step.backward_macs)}; FlopCounterMode's convention "
               f"{display.number(step.backward_macs_torch)}{_torch_gap(step)}",
               f"{bullet}saved for backward: {display.number(step.saved_elements)} elements "
               f"({display.number(step.saved_indices)} int64 indices), each storage once (a row: its call's own)",
               f"{bullet}trainable parameters: {display.number(step.trainable_params)} of "
               f"{display.number(step.params)}"]
        if set(dict(step.saved_by_dtype)) - {"float32", "int64"}:  # mixed precision: the bytes by dtype
            out.insert(2, f"{bullet}saved bytes: {display.size(step.saved_bytes)} ("
                       + ", ".join(f"{name} {display.size(n)}" for name, n in step.saved_by_dtype) + ")")
        if step.complete:
            weights = "float32" if step.param_itemsize == 4 else f"{step.param_itemsize}-byte"
            out.append(f"{bullet}step memory with {weights} parameters: " + "; ".join(
                f"{display.size(step.memory(opt))} with {opt}" for opt in ("sgd", "adam")))
        else:
            out.append("TRAINING STEP NOT COMPLETE (its backward is not counted for):")
            out += [f"{bullet}{op} x{n} at {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}: {why}"
                    for op, n, paths, why in step.untracked]
        return out

    def __repr__(self):
        t = self.total
        return (f"<Report of {self.model} on {_shape(self.input_shape)}: {len(self.rows)} rows, "
                f"params={_fmt_int(t['params'])}, macs={_fmt_int(t['macs'])}{'' if self.complete else ', INCOMPLETE'}>")


#: the widest symbolic count a table column holds; a longer one is written out under its row
_CELL = 24


def _width(head, body) -> int:
    return sum(max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i])
               for i in range(len(head))) + 2 * (len(head) - 1)


def _with_human(x) -> str:
    """An exact count, and in brackets its K/M/G form where that says something shorter."""
    exact, short = _fmt_int(x), _human(x)
    return exact if short == exact or short == str(sympy.sympify(x)) or not sympy.sympify(x).is_Integer \
        else f"{exact} ({short})"


def _is_number(text: str) -> bool:
    """Whether a cell holds a number (``8,960``, ``1.07K``, ``12.5%``) rather than a formula."""
    return text.replace(",", "").replace(".", "").replace("%", "").rstrip("KMGT").lstrip("-").isdigit()


def _md(text: str) -> str:
    """A cell of a Markdown table: a formula as code (its ``*`` not read as emphasis), a plain number as it is."""
    return text if not text or _is_number(text) else f"`{text}`"


def _torch_gap(step) -> str:
    """Why FlopCounterMode's backward number differs from convcost's, where it does."""
    ours, theirs = sympy.sympify(step.backward_macs), sympy.sympify(step.backward_macs_torch)
    if ours == theirs:
        return " (the same)"
    ratio = f"{float(theirs / ours):.3g}x; " if ours.is_Integer and theirs.is_Integer and ours else ""
    return (f" ({ratio}FlopCounterMode counts each grouped convolution's weight gradient as a dense one: "
            "G times the products autograd runs, so depthwise layers dominate its number)")


def _human(x) -> str:
    """A count in K/M/G/T (powers of 1000), three significant digits; symbolic counts as they are."""
    x = sympy.sympify(x)
    if not x.is_Integer:
        return display.formula(x)
    n = int(x)
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}" if abs(n) < 1000 * size else f"{n / size:,.0f}{unit}"
    return str(n)


def _percent(part, whole) -> str:
    part, whole = sympy.sympify(part), sympy.sympify(whole)
    if not (part.is_Integer and whole.is_Integer) or whole == 0:
        return ""
    return f"{100 * int(part) / int(whole):.1f}%"


def _other(counts) -> object:
    return sympy.Add(*(counts[m] for m in ("bias_ops", "norm_ops", "act_ops", "pool_ops", "elementwise_ops")))


def _int_if_number(v):
    v = sympy.sympify(v)
    return int(v) if v.is_Integer else v
