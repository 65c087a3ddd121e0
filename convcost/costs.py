"""The cost of a layer: exact counts plus the output shape.

Each count is a Python ``int`` when it is a number and a sympy expression when
it depends on symbols; the two are never mixed up (a sympy integer is stored as
an ``int``), so bound costs are plain integer arithmetic end to end.

Counting conventions (the same everywhere in convcost, see docs/conventions.md):

``params``
    learnable parameters; equals ``sum(p.numel() for p in module.parameters())``.
``macs``
    multiply-accumulates of convolutions, transposed convolutions and linear
    layers (the papers' "mult-adds"). Bias is not included; padded zeros are
    counted (conv: output positions x kernel taps; transposed conv: input
    positions x kernel taps). Equals ``FlopCounterMode`` total / 2.
``flops``
    ``2 * macs``, PyTorch's convention.
``bias_ops``
    one addition per output element of a biased conv or linear layer.
``norm_ops``
    one fused multiply-add per element normalised (batch norm in eval mode).
``act_ops``
    one evaluation per element passed through an activation function.
``pool_ops``
    one read per element of every pooling window (outputs x window taps).
``elementwise_ops``
    one operation per output element of an add or multiply (residuals, SE scaling).
``activation_elements``
    elements written by every operation (the activation memory of a forward pass
    that keeps every output).
``memory_access``
    elements read and written: inputs + outputs + weights of every operation,
    as ShuffleNet V2 counts memory access cost.

Training counts (one training step, ``out.sum().backward()``, PyTorch 2.13 on CPU):

``backward_macs``
    multiply-accumulates of the backward pass of convolutions, transposed
    convolutions and linear layers, bias excluded as in ``macs``: the input
    gradient (a transposed convolution, or matmul, of the same size as the
    forward: ``macs``) when the layer's input needs a gradient, plus the weight
    gradient (``macs`` again) when its parameters are trainable. Equals
    ``FlopCounterMode``'s backward total / 2 once its grouped weight-gradient
    overcount (G times the work in torch 2.13) is divided out.
``saved_elements``
    elements of the tensors autograd saves for backward in a training-mode
    forward, parameters and buffers excluded, each storage counted once (the
    ``saved_tensors_hooks`` count by distinct storage). Convolutions and linear
    layers save their input, batch norm its input plus the batch mean and
    inverse std (C each), ReLU, sigmoid and tanh their output, the other
    activations their input, max and average pooling their input (max pooling
    also its argmax indices), adaptive average pooling its input unless every
    bin is 1 (then it is a mean and saves nothing); views, shuffles, add and
    concat save nothing; multiply saves each operand whose partner needs a
    gradient. A layer whose input needs no gradient and that has no trainable
    parameters saves nothing. Composition rule: a tensor is kept once however
    many layers save it (a ReLU's output saved by the ReLU and by the next
    convolution, an input read by several branches), and a view (flatten,
    narrow, identity) keeps its whole base storage: compositions carry, besides
    the counts, whether they save their input's storage (``saves_input``), their
    output's (``saves_output``), whether the output is a view of the input
    (``output_view``) and whether it needs a gradient (``output_grad``), and
    add each storage once. On CUDA, cuDNN saves different tensors (e.g. batch
    norm's reserve space); these counts are the CPU's.
``saved_indices``
    how many of ``saved_elements`` are int64 indices (max pooling's argmax);
    the rest have the model's dtype.
``param_tensors``
    parameter tensors (weight, bias ...): Adam keeps one ``step`` scalar per
    trainable tensor.

>>> from convcost import cost, SeparableConv
>>> c = cost(SeparableConv, C=10, O=32, K=3, H=128, W=128)
>>> c.params, c.macs, c.output_shape
(452, 6509160, (1, 32, 126, 126))
>>> c.flops
13018320
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable
from fractions import Fraction

import sympy

from convcost import display
from convcost.arith import both, integer, total, where
from convcost.errors import ConvcostError, require
from convcost.precision import precision as as_precision
from convcost.precision import saved_by_dtype
from convcost.symbols import GLOSSARY
from convcost.validate import number

#: the counted quantities of a Cost, in the order they are reported
METRICS = (
    "params",
    "macs",
    "bias_ops",
    "norm_ops",
    "act_ops",
    "pool_ops",
    "elementwise_ops",
    "activation_elements",
    "memory_access",
    "backward_macs",
    "saved_elements",
    "saved_indices",
    "param_tensors",
)

#: the metrics of one training step (reported by training analyses, left out of the forward displays)
TRAINING_METRICS = ("backward_macs", "saved_elements", "saved_indices", "param_tensors")

#: optimizer state kept per trainable parameter element, and whether a ``step`` scalar is kept per tensor
OPTIMIZERS = {"sgd": (0, False), "momentum": (1, False), "adam": (2, True), "adamw": (2, True)}

#: flags a cost carries so that compositions can count each saved storage once (see the conventions above)
FLAGS = ("saves_input", "saves_output", "output_view", "output_grad")

ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

ZERO = 0


@dataclasses.dataclass(frozen=True, repr=False)
class Cost:
    """Exact cost of applying a layer to an input: every count an ``int`` or a sympy expression.

    ``parts`` holds the named costs a composition was summed from, ``conditions``
    the facts that must hold for the cost to be valid but that depend on free
    symbols (e.g. ``Eq(Mod(C, G), 0)``), and ``spec`` the layer that produced it.
    """

    output_shape: tuple
    params: sympy.Expr = ZERO
    macs: sympy.Expr = ZERO
    bias_ops: sympy.Expr = ZERO
    norm_ops: sympy.Expr = ZERO
    act_ops: sympy.Expr = ZERO
    pool_ops: sympy.Expr = ZERO
    elementwise_ops: sympy.Expr = ZERO
    activation_elements: sympy.Expr = ZERO
    memory_access: sympy.Expr = ZERO
    backward_macs: sympy.Expr = ZERO
    saved_elements: sympy.Expr = ZERO
    saved_indices: sympy.Expr = ZERO
    param_tensors: sympy.Expr = ZERO
    #: the input's storage is among the saved tensors (a tuple, one per operand, for a merge)
    saves_input: object = dataclasses.field(default=False, compare=False)
    #: the output's storage is among the saved tensors
    saves_output: object = dataclasses.field(default=False, compare=False)
    #: the output is a view of the input's storage (flatten, narrow, identity)
    output_view: object = dataclasses.field(default=False, compare=False)
    #: the output needs a gradient (the input did, or the layer has trainable parameters)
    output_grad: bool = dataclasses.field(default=True, compare=False)
    #: the parameters were counted as trainable (they get gradients and optimizer state)
    trainable: bool = dataclasses.field(default=True, compare=False)
    #: the operands that needed a gradient, as it was costed (one flag per input; empty for a cost made by hand)
    input_grads: tuple = dataclasses.field(default=(), compare=False)
    #: layers in this cost whose training counts convcost does not know yet: its backward_macs and
    #: saved_elements leave them out (never a silent zero: training_memory and max_batch refuse)
    untrained: tuple = dataclasses.field(default=(), compare=False)
    input_shape: tuple = dataclasses.field(default=(), compare=False)
    conditions: tuple = dataclasses.field(default=(), compare=False)
    parts: tuple = dataclasses.field(default=(), compare=False)
    spec: object = dataclasses.field(default=None, compare=False)
    #: ``(symbol, value)`` pairs bound by :meth:`subs`, so a derivation can show the substitution
    bindings: tuple = dataclasses.field(default=(), compare=False)

    def __post_init__(self):
        values = self.__dict__
        for name in METRICS:
            if type(values[name]) is not int:
                object.__setattr__(self, name, _expression(name, values[name]))
        shape = self.output_shape
        if not all(type(x) is int for x in shape):
            shape = tuple(_expression("output_shape", x) for x in shape)
        object.__setattr__(self, "output_shape", tuple(shape))
        if self.conditions:
            object.__setattr__(self, "conditions", _unique(self.conditions))

    # -- derived quantities -------------------------------------------------
    @property
    def flops(self) -> sympy.Expr:
        """``2 * macs`` (PyTorch's FLOP convention)."""
        return 2 * self.macs

    @property
    def weights(self) -> sympy.Expr:
        """Weight elements held in memory: the learnable parameters."""
        return self.params

    @property
    def free_symbols(self) -> set:
        """Symbols the cost still depends on."""
        found = set()
        for x in (*(getattr(self, name) for name in METRICS), *self.output_shape):
            if type(x) is not int:
                found |= x.free_symbols
        return found

    def bytes(self, dtype: str = "float32") -> dict:
        """Memory in bytes for elements of ``dtype``: weights, activations, memory access.

        >>> from convcost import cost, PointwiseConv
        >>> cost(PointwiseConv, C=16, O=32, H=8, W=8).bytes("float16")["weights"]
        1088
        """
        if not isinstance(dtype, str) or dtype not in ITEMSIZE:
            raise ConvcostError(f"unknown dtype {dtype!r}; known: {', '.join(ITEMSIZE)}")
        size = ITEMSIZE[dtype]
        return {
            "weights": size * self.params,
            "activations": size * self.activation_elements,
            "memory_access": size * self.memory_access,
        }

    # -- algebra ------------------------------------------------------------
    def __add__(self, other: Cost) -> Cost:
        """``a + b`` is ``a`` then ``b``: counts add, the shape is ``b``'s output."""
        if type(other) is int and other == 0:
            return self
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost.total([("0", self), ("1", other)], output_shape=other.output_shape, input_shape=self.input_shape)

    def __radd__(self, other) -> Cost:
        if type(other) is int and other == 0:  # so that sum(costs) works
            return self
        return NotImplemented

    def __eq__(self, other) -> bool:
        if not isinstance(other, Cost):
            return NotImplemented
        pairs = [(getattr(self, m), getattr(other, m)) for m in METRICS]
        pairs += list(zip(self.output_shape, other.output_shape))
        return len(self.output_shape) == len(other.output_shape) and all(
            a == b if type(a) is int and type(b) is int else sympy.simplify(a - b) == 0 for a, b in pairs
        )

    __hash__ = None

    @classmethod
    def total(cls, named: Iterable[tuple[str, Cost]], *, output_shape, input_shape=(), spec=None, **given) -> Cost:
        """The sum of named part costs, remembering the parts; ``given`` sets counts or flags that are not sums
        (a composition's ``saved_elements``, which counts a shared storage once)."""
        named = tuple(named)
        sums = {m: total(getattr(c, m) for _, c in named) for m in METRICS}
        untrained = tuple(dict.fromkeys(name for _, c in named for name in c.untrained))
        if untrained:
            sums["untrained"] = untrained
        sums.update(given)
        conditions = tuple(cond for _, c in named for cond in c.conditions)
        return cls(
            output_shape=output_shape,
            input_shape=input_shape,
            conditions=conditions,
            parts=named,
            spec=spec,
            **sums,
        )

    def when(self, condition) -> Cost:
        """This cost where ``condition`` holds and nothing otherwise (a ``Piecewise`` per count)."""
        gated = {m: where(condition, getattr(self, m), 0) for m in METRICS}
        gated["saves_input"] = both(condition, self.saves_input) if not isinstance(self.saves_input, tuple) else tuple(
            both(condition, s) for s in self.saves_input)
        gated["saves_output"] = both(condition, self.saves_output)
        # what this cost needs holds only where it applies
        implied = tuple(sympy.Or(sympy.Not(condition), c) for c in self.conditions if not _implied(condition, c))
        return dataclasses.replace(self, conditions=implied, **gated)

    def with_spec(self, spec, input_shape=None) -> Cost:
        """The same counts, attributed to ``spec``."""
        # a copy of already checked values: no need to run the checks of __post_init__ again
        copy = object.__new__(Cost)
        copy.__dict__.update(self.__dict__)
        copy.__dict__["spec"] = spec
        if input_shape is not None:
            copy.__dict__["input_shape"] = tuple(input_shape)
        return copy

    def subs(self, values: dict | None = None, /, **named) -> Cost:
        """Bind symbols (by name or by symbol) and re-check the carried conditions.

        >>> from convcost import cost, StandardConv
        >>> c = cost(StandardConv, C=3, O=32, K=3, P=1)
        >>> c.subs(H=32, W=32).macs
        884736
        >>> c.subs(H=0)
        Traceback (most recent call last):
        ...
        convcost.errors.ConvcostError: cannot bind H=0: it must be a positive integer
        """
        mapping = _bindings(self.free_symbols | {s for cond in self.conditions for s in cond.free_symbols},
                            {**(values or {}), **named})
        if not mapping:
            return self
        replaced = {m: _simplify_bound(_substitute(getattr(self, m), mapping)) for m in METRICS}
        conditions = []
        for cond in self.conditions:
            conditions += require(cond.subs(mapping), "after binding " + _show_mapping(mapping),
                                  f"the condition {cond} does not hold")
        parts = tuple((name, part.subs(mapping)) for name, part in self.parts)
        flags = {f: _substitute_flag(getattr(self, f), mapping) for f in FLAGS}
        return dataclasses.replace(
            self,
            **flags,
            output_shape=tuple(_simplify_bound(_substitute(x, mapping)) for x in self.output_shape),
            input_shape=tuple(integer(_substitute(x, mapping)) for x in self.input_shape),
            conditions=tuple(conditions),
            parts=parts,
            bindings=self.bindings + tuple(mapping.items()),
            **replaced,
        )

    def training_memory(self, optimizer: str = "adam", dtype: str = "float32", *, precision=None):
        """Bytes one training step holds: parameters, their gradients, the optimizer's state, saved activations.

        ``itemsize x (params + grads + state + saved_elements - saved_indices) + 8 x saved_indices``, where
        grads = params when trainable, state = 0 (``"sgd"``), params (``"momentum"``) or 2 params plus
        one ``step`` scalar per parameter tensor (``"adam"``, ``"adamw"``). Linear in the batch size N.

        >>> from convcost import cost, StandardConv
        >>> c = cost(StandardConv, C=3, O=8, K=3, N=2, H=6, W=6)
        >>> c.params, c.saved_elements, c.param_tensors
        (224, 216, 2)
        >>> c.training_memory("adam")   # 4 bytes x (224 + 224 + 2 x 224 + 2 + 216)
        4456
        >>> c.training_memory("rmsprop")
        Traceback (most recent call last):
        ...
        convcost.errors.ConvcostError: unknown optimizer 'rmsprop'; known: sgd, momentum, adam, adamw

        ``precision`` names a mixed-precision recipe instead of ``dtype`` (:mod:`convcost.precision`): under
        ``"bf16-autocast"`` the weights, gradients and Adam's state stay float32 and each saved tensor takes the
        dtype autocast gives it, with the bfloat16 copy of each convolution's weight:

        >>> big = cost(StandardConv, C=3, O=8, K=3, N=2, H=16, W=16)
        >>> big.training_memory("adam"), big.training_memory("adam", precision="bf16-autocast")
        (9736, 7096)
        >>> 4 * (224 + 224 + 2 * 224) + 4 * 2 + 2 * (2 * 3 * 16 * 16 + 8 * 3 * 3 * 3)  # the input's copy, the weight's
        7096
        """
        if self.untrained:
            raise ConvcostError(f"training_memory: convcost has no training counts yet for {', '.join(self.untrained)} "
                                "(backward MACs and saved tensors), so the memory of a step is not known")
        trained = self.params if self.trainable else 0
        if precision is not None:
            recipe = as_precision(precision)
            if dtype != "float32":
                raise ConvcostError(f"training_memory: give dtype={dtype!r} or precision={recipe.name!r}, not both "
                                    "(the recipe says which dtype each part is held in)")
            weights = training_bytes(params=self.params, trainable_params=trained,
                                     trainable_tensors=self.param_tensors if self.trainable else 0, saved_elements=0,
                                     optimizer=optimizer, dtype=recipe.params)
            if recipe.name == "fp32":  # the one-dtype rule, each storage once as the cost counts it
                return weights + 4 * (self.saved_elements - self.saved_indices) + 8 * self.saved_indices
            return weights + total(saved_by_dtype(self, recipe).values())
        return training_bytes(params=self.params, trainable_params=trained,
                              trainable_tensors=self.param_tensors if self.trainable else 0,
                              saved_elements=self.saved_elements, saved_indices=self.saved_indices,
                              optimizer=optimizer, dtype=dtype)

    def ratio(self, other: Cost, metric: str = "macs") -> sympy.Expr:
        """``self.metric / other.metric``, simplified.

        >>> from convcost import cost, StandardConv, SeparableConv
        >>> shared = dict(C=64, O=128, K=3, H=56, W=56)
        >>> cost(SeparableConv, **shared).ratio(cost(StandardConv, **shared), "params")
        70/577
        """
        if not isinstance(other, Cost):
            raise ConvcostError(f"ratio: other={other!r} must be a Cost (e.g. cost(StandardConv, C=64))")
        a, b = _metric(self, metric), _metric(other, metric)
        if b == 0:
            raise ConvcostError(f"ratio: the other cost's {metric} is 0, so the ratio is undefined")
        return integer(sympy.simplify(sympy.sympify(a) / b))

    def as_dict(self, *, numeric: bool = False) -> dict:
        """Every count, the flops and the output shape; ``numeric=True`` gives Python ints.

        >>> from convcost import cost, PointwiseConv
        >>> cost(PointwiseConv, C=3, O=4, H=2, W=2).as_dict(numeric=True)["macs"]
        48
        """
        if not isinstance(numeric, bool):
            raise ConvcostError(f"as_dict: numeric={numeric!r} must be True or False")
        out = {m: getattr(self, m) for m in METRICS}
        out["flops"] = self.flops
        out["output_shape"] = self.output_shape
        if numeric:
            free = self.free_symbols
            if free:
                raise ConvcostError(
                    f"cannot give numbers: free symbols {', '.join(sorted(map(str, free)))} "
                    "remain; bind them with subs()"
                )
            out = {k: tuple(int(x) for x in v) if k == "output_shape" else int(v) for k, v in out.items()}
        return out

    # -- display ------------------------------------------------------------
    def __repr__(self) -> str:
        shape = "(" + ", ".join(map(display.formula, self.output_shape)) + ")"
        lines = [f"<Cost of {display.spec(self.spec)}" if self.spec is not None else "<Cost",
                 f"  output_shape = {shape}"]
        for m in METRICS:
            value = getattr(self, m)
            if (value != 0 and m not in TRAINING_METRICS) or m in ("params", "macs"):
                lines.append(f"  {m} = {display.number(value)}")  # one number format: the CLI's
        if self.conditions:
            lines.append("  valid when " + " and ".join(map(display.condition, self.conditions)))
        return "\n".join(lines) + ">"

    def _repr_latex_(self) -> str:
        rows = [r"\text{output} &= (" + ", ".join(display.latex(x) for x in self.output_shape) + ")"]
        for m in METRICS:
            value = getattr(self, m)
            if (value != 0 and m not in TRAINING_METRICS) or m in ("params", "macs"):
                rows.append(r"\text{%s} &= %s" % (m.replace("_", r"\_"), display.latex(value)))
        return r"$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"

    def _repr_html_(self) -> str:
        """The cost as an HTML table, for Jupyter: counts with thousands separators, conditions as text.

        >>> from convcost import cost, SeparableConv
        >>> html = cost(SeparableConv, C=64, O=128, K=3)._repr_html_()
        >>> "<td>8,960</td>" in html and "H &gt;= 3" in html
        True
        """
        import html

        from convcost import display

        cell = lambda text: f"<td>{html.escape(text)}</td>"  # noqa: E731
        rows = [f"<tr><th>output_shape</th>{cell('(' + ', '.join(map(display.formula, self.output_shape)) + ')')}</tr>"]
        for m in (*METRICS[:2], "flops", *METRICS[2:]):
            value = getattr(self, m)
            if (value != 0 and m not in TRAINING_METRICS) or m in ("params", "macs", "flops"):
                rows.append(f"<tr><th>{m}</th>{cell(display.number(value))}</tr>")
        rows += [f"<tr><th>valid when</th>{cell(display.condition(c))}</tr>" for c in self.conditions]
        caption = f"<caption>{html.escape(display.spec(self.spec))}</caption>" if self.spec is not None else ""
        return f"<table>{caption}{''.join(rows)}</table>"


#: every metric name the analyses accept ("memory" is memory access, "flops" is 2 x MACs)
METRIC_NAMES = ("params", "macs", "flops", "memory", *[m for m in METRICS if m not in ("params", "macs")])


def check_metric(metric) -> str:
    """The count ``metric`` names (``"memory"`` is ``"memory_access"``), or one error listing every name.

    The one check of a metric name, for every analysis that takes one.

    >>> check_metric("memory"), check_metric("flops")
    ('memory_access', 'flops')
    """
    if not isinstance(metric, str) or metric not in METRIC_NAMES:
        raise ConvcostError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    return "memory_access" if metric == "memory" else metric


def training_bytes(*, params, trainable_params, trainable_tensors, saved_elements, saved_indices=0,
                   optimizer: str = "adam", dtype: str = "float32"):
    """Bytes of one training step from its parts, for a model whose parameters are partly frozen too.

    ``itemsize x (params + trainable_params [gradients] + k x trainable_params [state] + saved_elements -
    saved_indices) + 8 x saved_indices + 4 x trainable_tensors [Adam's float32 step scalars]``, with
    k = 0 (``"sgd"``), 1 (``"momentum"``) or 2 (``"adam"``, ``"adamw"``).

    >>> training_bytes(params=224, trainable_params=224, trainable_tensors=2, saved_elements=216)
    4456
    """
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ConvcostError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if not isinstance(dtype, str) or dtype not in ITEMSIZE:
        raise ConvcostError(f"unknown dtype {dtype!r}; known: {', '.join(ITEMSIZE)}")
    per_element, step = OPTIMIZERS[optimizer]
    floats = params + (1 + per_element) * trainable_params + saved_elements - saved_indices
    # Adam's step scalars are float32 (torch's default dtype) whatever the parameters' dtype; indices are int64
    return ITEMSIZE[dtype] * floats + 8 * saved_indices + (4 * trainable_tensors if step else 0)


def _metric(c: Cost, metric: str):
    name = check_metric(metric)
    return c.flops if name == "flops" else getattr(c, name)


def metric_of(c: Cost, metric: str) -> sympy.Expr:
    """The named metric of a cost as a sympy expression, for the analyses (``"memory"`` is memory access,
    ``"flops"`` 2 x MACs)."""
    return sympy.sympify(_metric(c, metric))


def _implied(condition, fact) -> bool:
    """True when the equalities in ``condition`` make ``fact`` true (``C = O`` gives ``O - C = 0``)."""
    equalities = [condition] if isinstance(condition, sympy.Eq) else [
        a for a in getattr(condition, "args", ()) if isinstance(a, sympy.Eq)
    ] if isinstance(condition, sympy.And) else []
    substitution = {eq.lhs: eq.rhs for eq in equalities if isinstance(eq.lhs, sympy.Symbol)}
    return bool(substitution) and fact.subs(substitution) is sympy.true


def _unique(conditions) -> tuple:
    seen, out = set(), []
    for cond in conditions:
        if cond not in seen:
            seen.add(cond)
            out.append(cond)
    return tuple(out)


def _expression(name: str, value):
    """A count as an int or a sympy expression; text is refused, since sympify of text is eval."""
    if type(value) is int:
        return value
    if isinstance(value, sympy.Basic):
        if not isinstance(value, sympy.Expr):
            raise ConvcostError(f"Cost: {name}={value!r} must be a number or a sympy expression")
        return integer(value)
    if isinstance(value, (str, bytes)):  # never sympified: sympify of text is eval
        raise ConvcostError(f"Cost: {name}={value!r} must be a number or a sympy expression, not text")
    if isinstance(value, bool) or not isinstance(value, (numbers.Rational, float)):
        raise ConvcostError(f"Cost: {name}={value!r} must be a number or a sympy expression")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConvcostError(f"Cost: {name}={value!r} must be finite")
    return integer(sympy.Rational(Fraction(value)) if not isinstance(value, numbers.Integral) else int(value))


def _substitute(x, mapping):
    return x if type(x) is int else integer(sympy.sympify(x).subs(mapping))


def _substitute_flag(flag, mapping):
    if isinstance(flag, tuple):
        return tuple(_substitute_flag(f, mapping) for f in flag)
    if isinstance(flag, bool):
        return flag
    value = flag.subs(mapping)
    return True if value is sympy.true else False if value is sympy.false else value


def _simplify_bound(expr):
    if type(expr) is int:
        return expr
    expr = sympy.sympify(expr)
    return integer(expr if expr.free_symbols else sympy.nsimplify(expr) if expr.has(sympy.Float) else expr)


def _bindings(free: set, values: dict) -> dict:
    """Map names or symbols to checked values, against the symbols the cost holds."""
    by_name = {}
    for sym in free:
        by_name.setdefault(sym.name, []).append(sym)
    mapping = {}
    for key, value in values.items():
        name = key.name if isinstance(key, sympy.Symbol) else key
        if not isinstance(name, str):
            raise ConvcostError(f"cannot bind {key!r}: give a symbol name or a sympy Symbol")
        value = _bound_value(name, value)
        if name not in by_name and name not in GLOSSARY:  # a typo would otherwise bind nothing
            known = ", ".join(sorted(by_name)) or "none"
            raise ConvcostError(f"cannot bind {name}: the cost has no symbol {name!r} (its symbols: {known})")
        for sym in by_name.get(name, ()):
            if sym.is_integer and value.is_number and not value.is_integer:
                raise ConvcostError(f"cannot bind {name}={value}: it must be an integer")
            if sym.is_positive and value.is_number and not value.is_positive:
                raise ConvcostError(f"cannot bind {name}={value}: it must be a positive integer")
            if sym.is_nonnegative and value.is_number and value.is_negative:
                raise ConvcostError(f"cannot bind {name}={value}: it must be non-negative")
            mapping[sym] = value
    return mapping


def _bound_value(name, value):
    # ints, finite floats (read as the decimal written), Fractions, numpy numbers and finite sympy expressions
    return number("cannot bind", name, value)


def _show_mapping(mapping: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items())
