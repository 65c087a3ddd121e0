"""A whole model's predicted latency, from its profile: every row's time, per module and in total.

Conventions (what is predicted, from what):

* every row of the report costs time. A row that does work is its kernels (:func:`convcost.latency.primitives`),
  each ``overhead + max(compute / e_c, memory / e_m)`` plus the fresh memory its output is written to
  (:class:`convcost.latency.Roof`; a convolution's ``e_c`` takes the size of its call: batch x output positions);
  a row that moves nothing (flatten, reshape, identity, a view) costs the machine's ``view_overhead``, the dispatch
  of a call that runs no kernel.
* inside a network, a kernel's call finds its code and small state evicted from the core's caches by the layers
  before it, which a kernel timed alone in a loop never does: at inference, each kernel adds the machine's
  ``cold_overhead`` of its operation (measured by calibration on calls made after streaming a buffer larger than
  the core's cache; 0 where none was measured). A training step's factors are fitted as before, without it.
* a training step (``profile(..., training=True)``) is its forward in training mode, its backward and the
  optimizer's update, each with its own calibrated factors (``machine.training``; the inference factors where
  calibration fitted none). A kernel's backward does ``2 x`` its row's ``backward_macs`` (shared among the
  row's kernels as their forward MACs are) plus the forward's other operations, and moves twice the
  forward's bytes (the gradient read, the saved tensors read, the input's gradient written). The update
  takes ``per_tensor x trainable tensors + per_parameter x trainable parameters`` (SGD with momentum, or Adam).
* a backward kernel reads what the forward saved long before, tensors a whole step's others have evicted from
  every cache, which a layer's step timed alone in a loop finds in cache: its memory side moves its bytes at no
  more than the machine's ``bandwidth`` (the copy of a tensor larger than any cache), so it takes at least
  ``overhead + bytes / bandwidth`` (:func:`backward_seconds`; a calibrated memory efficiency above 1, a backward
  that ran from cache, counts only up to it). Measured on the last zoo run's synthetic networks, one thread: the
  training step's networks predicted with no correction 10.8% off on a network left out, against 12.0% without the
  floor (the zoo, rescored: median error 19.9% to 15.9%).
* inside a network, each kernel's time (its cold call included) is multiplied by its kind's in-network factor
  of the phase (``machine.network``, :mod:`convcost.latency_network`; 1 where none was fitted), views by the
  factor of ``"view"``: what the machine does between and around kernels that no single-kernel timing sees.
* inside a network, each row that runs a kernel (one call of a module or function) adds the phase's seconds per call
  (``machine.network_call``; 0 where calibration kept none), the row's :attr:`RowTime.call`: the framework's work
  between calls, which does not grow with the kernel, so a network of many small calls pays it more often. The unit
  is the row, as the profile has them, that runs a kernel: what calibration counts on its synthetic networks
  (:func:`network_parts`), which hold one view each (the head's flatten), so nothing fitted there says what a view
  pays on top of its measured ``view_overhead``. A view pays none (the last zoo run rescored: timm's mobile nets
  carry 35 to 143 ``nn.Identity`` calls each, and with the term on every view they came out up to 1.24x their time
  at one thread and 1.62x at two, batch 1; on kernels' rows only, median error at batch 1 7.6% -> 4.7% at one thread
  and 30.4% -> 18.0% at two). A single layer's prediction (``predict_latency(spec, machine)``, ``compare`` and
  ``break_even`` with ``metric="latency"``) is a layer timed alone and takes neither this nor the factors.
* the prediction is a model fitted on micro-benchmarks of single kernels and of a few small synthetic networks
  (``convcost.torch.calibrate``), never on the models it is used on.

>>> from convcost.latency import Machine
>>> from convcost.primitives import Activation, Conv, Flatten
>>> from convcost.report import Report, Row
>>> rows = [Row.of("conv", "Conv2d", Conv(C=3, O=8, K=3), ((1, 3, 8, 8),)),
...         Row.of("act", "ReLU", Activation("relu"), ((1, 8, 6, 6),)),
...         Row.of("flat", "Flatten", Flatten(), ((1, 8, 6, 6),))]
>>> m = Machine("toy", peak_flops=1e9, bandwidth=1e9, overhead=1e-6, view_overhead=5e-7)
>>> lat = predict_model(Report(rows), m)   # conv: 1 us + 2 x 7776 MACs + 288 bias ops at 1 GFLOP/s
>>> lat
<ModelLatency 20.6 µs on toy: 3 rows, inference>
>>> [round(r.seconds * 1e6, 3) for r in lat.rows]
[16.84, 3.304, 0.5]
>>> round(lat.by_module()["conv"] * 1e6, 3)
16.84
>>> inside = predict_model(Report(rows), m.replace(network_call={"inference": 2e-6}))   # 2 us per kernel's row
>>> [round(r.seconds * 1e6, 3) for r in inside.rows], round(inside.seconds * 1e6, 3)
([18.84, 5.304, 0.5], 24.644)
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost import display, latency_network
from convcost.costs import ITEMSIZE
from convcost.errors import ConvcostError
from convcost.latency import BackwardCost, Machine, kernel_times
from convcost.layers import Merge
from convcost.report import Report

#: the optimizers whose update calibration measures
OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class RowTime:
    """One row's predicted time: its forward and (in a training step) backward seconds, and what limits it."""

    path: str
    op: str
    kinds: tuple
    forward: float
    backward: float
    bound: str  # "compute", "memory" or "call" (a view: dispatch only)
    #: the row's in-network seconds per call (``Machine.network_call`` of its phase; 0 for a view), on top of its
    #: kernels: a training step's, for its forward and backward together (the fit sees only the whole step)
    call: float = 0.0

    @property
    def seconds(self) -> float:
        return self.forward + self.backward + self.call

    @property
    def node(self) -> str:
        return _node(self.path)


@dataclasses.dataclass(frozen=True, repr=False)
class ModelLatency:
    """A model's predicted latency: per row (:class:`RowTime`), per module (:meth:`by_module`) and in total."""

    model: str
    machine: str
    rows: tuple
    training: bool
    optimizer: str | None = None
    optimizer_seconds: float = 0.0
    modules: dict = dataclasses.field(default_factory=dict)

    @property
    def forward_seconds(self) -> float:
        return sum(r.forward for r in self.rows)

    @property
    def backward_seconds(self) -> float:
        return sum(r.backward for r in self.rows)

    @property
    def call_seconds(self) -> float:
        """The rows' in-network seconds per call, together (:attr:`RowTime.call`)."""
        return sum(r.call for r in self.rows)

    @property
    def seconds(self) -> float:
        """The whole prediction: every row's forward, backward and in-network call, and the optimizer's update."""
        return self.forward_seconds + self.backward_seconds + self.call_seconds + self.optimizer_seconds

    def by_module(self, depth: int | None = None) -> dict:
        """Seconds per module path, parents before children, down to ``depth`` levels (all when None); the
        top level sums to :attr:`seconds` less the optimizer's update.

        >>> from convcost.latency import Machine
        >>> rows = (RowTime("a.b", "Conv2d", ("dense_conv",), 2.0, 0.0, "compute"),
        ...         RowTime("a.c", "ReLU", ("elementwise",), 1.0, 0.0, "memory"))
        >>> ModelLatency("m", "toy", rows, False).by_module()
        {'a': 3.0, 'a.b': 2.0, 'a.c': 1.0}
        """
        if depth is not None and (type(depth) is not int or depth < 1):
            raise ConvcostError(f"by_module: depth={depth!r} must be a positive integer or None")
        sums, children = {}, {"": []}
        for r in self.rows:
            parts = r.node.split(".") if r.node else ["(model)"]
            parent = ""
            for k in range(1, (len(parts) if depth is None else min(depth, len(parts))) + 1):
                key = ".".join(parts[:k])
                if key not in sums:
                    sums[key] = 0.0
                    children.setdefault(parent, []).append(key)
                    children[key] = []
                sums[key] += r.seconds
                parent = key
        ordered = {}

        def visit(key):
            for child in children.get(key, ()):
                ordered[child] = sums[child]
                visit(child)

        visit("")
        return ordered

    def table(self, depth: int | None = None) -> str:
        """The module tree with each module's predicted time and share, then the totals."""
        nodes = self.by_module(depth)
        total = self.seconds or 1.0
        kinds = {}
        for r in self.rows:
            kinds.setdefault(r.node, r.op)
        head = ("Module", "Type", "Time", "% time")
        body = [("  " * p.count(".") + p, self.modules.get(p) or kinds.get(p, ""), display.seconds(s),
                 f"{100 * s / total:.1f}%") for p, s in nodes.items()]
        widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i]) for i in range(4)]
        line = lambda cols: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(cols, widths))).rstrip()
        rule = "=" * (sum(widths) + 6)
        lines = [rule, line(head), rule, *map(line, body), rule, self.summary(), rule]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        """The module tree with each module's predicted time and share, as an HTML table for Jupyter."""
        total = self.seconds or 1.0
        kinds = {}
        for r in self.rows:
            kinds.setdefault(r.node, r.op)
        rows = [(p, self.modules.get(p) or kinds.get(p, ""), display.seconds(s), f"{100 * s / total:.1f}%")
                for p, s in self.by_module().items()]
        return display.html_rows(self.summary(), ("Module", "Type", "Time", "% time"), rows, 2)

    def summary(self) -> str:
        """One line: the total and, for a training step, its parts."""
        if not self.training:
            return f"Predicted latency: {display.seconds(self.seconds)} on {self.machine} (inference, model)"
        calls = f", calls {display.seconds(self.call_seconds)}" if self.call_seconds else ""
        return (f"Predicted training step: {display.seconds(self.seconds)} on {self.machine} (forward "
                f"{display.seconds(self.forward_seconds)}, backward {display.seconds(self.backward_seconds)}"
                f"{calls}, {self.optimizer} update {display.seconds(self.optimizer_seconds)}; model)")

    def as_dict(self) -> dict:
        """Plain values for JSON: seconds per row and per module, and the totals."""
        return {
            "machine": self.machine,
            "training": self.training,
            "seconds": self.seconds,
            "forward_seconds": self.forward_seconds,
            "backward_seconds": self.backward_seconds,
            "call_seconds": self.call_seconds,
            "optimizer": self.optimizer,
            "optimizer_seconds": self.optimizer_seconds,
            "rows": [{"path": r.path, "op": r.op, "kinds": list(r.kinds), "forward_seconds": r.forward,
                      "backward_seconds": r.backward, "call_seconds": r.call, "bound": r.bound}
                     for r in self.rows],
            "by_module": self.by_module(),
        }

    def __repr__(self) -> str:
        what = f"training step with {self.optimizer}" if self.training else "inference"
        return f"<ModelLatency {display.seconds(self.seconds)} on {self.machine}: {len(self.rows)} rows, {what}>"


def predict_model(report: Report, machine: Machine, dtype: str = "float32", *, optimizer: str = "sgd") -> ModelLatency:
    """The predicted latency of a profiled model (see the module docstring); entry: ``predict_latency``."""
    _check(report, dtype, optimizer)
    training = report.training is not None
    phase = "training" if training else "inference"
    call = machine.network_call.get(phase, 0.0)  # every row that runs a kernel: calibration's unit (network_parts)
    rows = []
    for r in _row_parts(report, machine, dtype):
        path, op, kinds, parts, bound = r
        fwd = sum(latency_network.factor(machine.network, phase, k) * t for side, k, t in parts if side == "forward")
        bwd = sum(latency_network.factor(machine.network, phase, k) * t for side, k, t in parts if side == "backward")
        rows.append(RowTime(path, op, kinds, fwd, bwd, bound, call if kinds else 0.0))
    return ModelLatency(report.model, machine.name, tuple(rows), training, optimizer if training else None,
                        _update(report, machine, optimizer), dict(report.modules))


def network_parts(report: Report, machine: Machine, dtype: str = "float32", *, optimizer: str = "sgd") -> tuple:
    """``(kind -> seconds, fixed seconds, calls)``: a profiled model's predicted time before the in-network factors
    and per-call term (:mod:`convcost.latency_network`), per kernel kind (``"view"`` for calls that run no kernel),
    what no factor touches (a training step's optimizer update), and its calls, the rows of its profile that run a
    kernel (each pays the per-call term once; a view none: :func:`predict_model`); what calibration fits the
    factors and the term on.

    >>> from convcost.latency import Machine
    >>> from convcost.primitives import Activation, Flatten
    >>> from convcost.report import Report, Row
    >>> rows = [Row.of("act", "ReLU", Activation("relu"), ((1, 8, 6, 6),)),
    ...         Row.of("flat", "Flatten", Flatten(), ((1, 8, 6, 6),))]
    >>> m = Machine("toy", peak_flops=1e9, bandwidth=1e9, overhead=1e-6, view_overhead=5e-7)
    >>> parts, fixed, calls = network_parts(Report(rows), m)
    >>> {k: round(v * 1e6, 3) for k, v in parts.items()}, fixed, calls
    ({'elementwise': 3.304, 'view': 0.5}, 0.0, 1)
    >>> lat = predict_model(Report(rows), m.replace(network={"inference": {"elementwise": 2.0}}))
    >>> round(lat.seconds * 1e6, 3) == round(2 * parts["elementwise"] * 1e6 + parts["view"] * 1e6, 3)
    True
    """
    _check(report, dtype, optimizer)
    parts, rows = {}, _row_parts(report, machine, dtype)
    for _, _, _, row, _ in rows:
        for _, k, t in row:
            parts[k] = parts.get(k, 0.0) + t
    return parts, _update(report, machine, optimizer), sum(1 for row in rows if row[2])


def _check(report, dtype, optimizer) -> None:
    if not isinstance(report, Report):
        raise ConvcostError(f"predict_model needs a convcost Report (convcost.torch.profile), got {report!r}")
    if dtype not in ITEMSIZE:
        raise ConvcostError(f"unknown dtype {dtype!r}; known: {', '.join(ITEMSIZE)}")
    if report.training is not None and optimizer not in OPTIMIZERS:
        raise ConvcostError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if report.free_symbols:
        names = ", ".join(sorted(map(str, report.free_symbols)))
        raise ConvcostError(f"cannot predict a latency with free symbols {names}; profile on concrete sizes")


def _update(report, machine: Machine, optimizer: str) -> float:
    """Seconds of the optimizer's update (0 at inference)."""
    if report.training is None:
        return 0.0
    per_tensor, per_param = machine.training.get("optimizer", {}).get(optimizer, (0.0, 0.0))
    step = report.training
    return per_tensor * int(step.trainable_tensors) + per_param * int(step.trainable_params)


def _row_parts(report, machine: Machine, dtype: str) -> list:
    """Per row, ``(path, op, kinds, [(side, kind, seconds)], bound)`` before the in-network factors: each
    kernel's forward (and, in a training step, backward) seconds, by kind."""
    training = report.training is not None
    forward = machine.roof("forward" if training else "inference")
    backward = machine.roof("backward") if training else None
    memo, out = {}, []
    for r in report.rows:
        key = (r.spec, r.input_shapes, r.counts.get("backward_macs", 0))
        if key not in memo:
            memo[key] = _row_time(r, machine, forward, backward, dtype)
        kinds, parts, bound = memo[key]
        out.append((r.path, r.op, kinds, parts, bound))
    return out


def _row_time(row, machine: Machine, forward, backward, dtype: str) -> tuple:
    """``(kinds, [(side, kind, seconds)], bound)`` of one row."""
    shapes = row.input_shapes
    try:
        c = row.spec.cost(list(shapes) if isinstance(row.spec, Merge) else shapes[0])
    except ConvcostError as exc:
        raise ConvcostError(f"predict_latency: row {row.path} ({row.op}) cannot be costed again: {exc}") from None
    kernels = kernel_times(c, machine, dtype)
    if not kernels:  # a view: the call's dispatch, no kernel
        view = latency_network.VIEW
        parts = [("forward", view, machine.view_overhead)]
        if backward is not None:
            parts.append(("backward", view, machine.view_overhead))
        return (), parts, "call"
    parts = []
    for _, kind, _, _, compute, memory, fresh in kernels:
        seconds = forward.seconds(kind, compute, memory) + fresh
        if backward is None:
            seconds += machine.cold_overhead(kind.op)
        parts.append(("forward", str(kind), seconds))
    slow = [(compute * forward.slowdown(kind.op, kind.pixels), memory / forward.memory_efficiency_of(kind.op))
            for _, kind, _, _, compute, memory, _ in kernels]
    bound = "compute" if sum(a for a, _ in slow) >= sum(b for _, b in slow) else "memory"
    if backward is not None:
        back = BackwardCost(c, int(sympy.sympify(row.counts.get("backward_macs", 0))))
        parts += [("backward", str(kind), backward_seconds(backward, machine, kind, compute, memory, moved) + fresh)
                  for _, kind, _, moved, compute, memory, fresh in kernel_times(back, machine, dtype)]
    return tuple(str(k[1]) for k in kernels), parts, bound


def backward_seconds(roof, machine: Machine, kind, compute: float, memory: float, moved: float) -> float:
    """Seconds of one backward kernel inside a training step (no fresh memory): ``roof``'s time (its
    :meth:`convcost.latency.Roof.seconds` of ``compute`` and ``memory`` seconds), and never less than its call's
    overhead and its ``moved`` bytes at the machine's ``bandwidth``: what the forward saved is read from memory, not
    from the cache a layer's step timed alone finds it in (see the module docstring).

    >>> from convcost.latency import Roof
    >>> m = Machine("toy", peak_flops=1e9, bandwidth=1e8)
    >>> roof = Roof({}, {"elementwise": 2.0}, 1e-6)             # its backward timed alone: twice the bandwidth
    >>> round(roof.seconds("elementwise", 1e-6, 8e-6) * 1e6, 3)  # 800 bytes: 8 us at the bandwidth, 4 us from cache
    5.0
    >>> round(backward_seconds(roof, m, "elementwise", 1e-6, 8e-6, 800) * 1e6, 3)   # in a step: from memory
    9.0
    >>> round(backward_seconds(roof, m, "elementwise", 2e-5, 8e-6, 800) * 1e6, 3)   # compute-bound: as it was
    21.0
    """
    key = getattr(kind, "op", kind)
    return max(roof.seconds(kind, compute, memory), roof.overhead_of(key) + moved / machine.bandwidth)


def _node(path: str) -> str:
    import re

    return re.sub(r"#\d+", "", path) if "#" in path else path
