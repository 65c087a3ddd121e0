"""The result of an algorithm's cost model: counts by stage, workspace by buffer, the rule used."""

from __future__ import annotations

import dataclasses

import sympy

from convcost.comparison import simplest
from convcost.errors import ConvcostError, require

#: a complex multiplication is 4 real multiplications and 2 real additions; a complex addition 2 real additions
COMPLEX_TO_REAL = {"multiplication": (4, 2), "addition": (0, 2)}

#: quantities :func:`convcost.algorithms.break_even` compares; ``"a+b"`` sums several
QUANTITIES = ("multiplications", "additions", "constant_multiplications", "transform_additions",
              "operations", "workspace_elements")


@dataclasses.dataclass(frozen=True, repr=False)
class AlgorithmCost:
    """The arithmetic and workspace of one algorithm running one convolution.

    ``multiplications`` are the products of data with weights (the main
    stage); ``constant_multiplications`` the products with constants fixed in
    advance (Winograd's matrix entries other than 0 and +-1, FFT twiddle
    factors), kept apart so the main stage reads as the papers count it;
    ``additions`` are every addition, their stages in ``additions_by_stage``;
    ``workspace_elements`` the buffers beyond input, weights and output, named
    in ``workspace_by_buffer``. ``unit`` is ``"real"`` or ``"complex"`` (FFT):
    :meth:`in_real_arithmetic` converts. ``rule`` states the model.
    """

    algorithm: str
    spec: object
    input_shape: tuple
    output_shape: tuple
    multiplications: sympy.Expr
    additions_by_stage: tuple
    constant_multiplications_by_stage: tuple
    workspace_by_buffer: tuple
    rule: str
    unit: str = "real"
    conditions: tuple = ()

    @property
    def additions(self) -> sympy.Expr:
        """Every addition: the sum of :attr:`additions_by_stage`."""
        return sympy.Add(*(v for _, v in self.additions_by_stage))

    @property
    def constant_multiplications(self) -> sympy.Expr:
        """Multiplications by constants fixed in advance: the sum of their stages."""
        return sympy.Add(*(v for _, v in self.constant_multiplications_by_stage))

    @property
    def transform_additions(self) -> sympy.Expr:
        """The additions of the transforms (every stage but the accumulation over channels)."""
        return sympy.Add(*(v for k, v in self.additions_by_stage if k.endswith("transform")))

    @property
    def workspace_elements(self) -> sympy.Expr:
        """Elements of every workspace buffer (complex elements for FFT)."""
        return sympy.Add(*(v for _, v in self.workspace_by_buffer))

    @property
    def operations(self) -> sympy.Expr:
        """All arithmetic: multiplications, constant multiplications and additions."""
        return self.multiplications + self.constant_multiplications + self.additions

    @property
    def free_symbols(self) -> set:
        """Symbols the counts still depend on."""
        found = set()
        for value in (self.multiplications, self.additions, self.constant_multiplications, self.workspace_elements):
            found |= sympy.sympify(value).free_symbols
        return found

    def quantity(self, name: str) -> sympy.Expr:
        """One of :data:`QUANTITIES`, or several joined by ``+`` (``"multiplications+transform_additions"``).

        >>> from convcost.primitives import Conv
        >>> from convcost.algorithms import winograd
        >>> winograd(Conv(C=1, O=1, K=3), (1, 1, 4, 4)).quantity("multiplications+transform_additions")
        100
        """
        names = name.split("+") if isinstance(name, str) else [name]
        unknown = [n for n in names if n not in QUANTITIES]
        if unknown:
            raise ConvcostError(f"unknown quantity {unknown[0]!r}; known: {', '.join(QUANTITIES)} "
                                "(or several joined by +)")
        return sympy.Add(*(getattr(self, n) for n in names))

    def ratio(self, other: AlgorithmCost) -> sympy.Expr:
        """``self.multiplications / other.multiplications``: how many times fewer ``other`` uses.

        >>> from convcost.primitives import Conv
        >>> from convcost.algorithms import direct, winograd
        >>> conv = Conv(C=8, O=8, K=3)
        >>> direct(conv).ratio(winograd(conv, m=4))   # symbolic H, W: the tiles' rounding shows
        (H - 2)*(W - 2)/(4*ceiling(H/4 - 1/2)*ceiling(W/4 - 1/2))
        """
        if not isinstance(other, AlgorithmCost):
            raise ConvcostError(f"ratio(): compare with another AlgorithmCost, got {other!r}")
        if self.unit != other.unit:
            return self.in_real_arithmetic().ratio(other.in_real_arithmetic())
        if sympy.sympify(other.multiplications) == 0:
            raise ConvcostError(f"{other.algorithm} has no multiplications to compare against")
        return simplest(sympy.sympify(self.multiplications) / other.multiplications)

    def in_real_arithmetic(self) -> AlgorithmCost:
        """The same counts in real arithmetic (complex counts converted by :data:`COMPLEX_TO_REAL`).

        A complex multiplication becomes 4 real multiplications and 2 real
        additions (the extra additions join the stage ``"complex products"``),
        a complex addition 2 real additions, a complex element 2 real ones.
        """
        if self.unit == "real":
            return self
        mul_m, mul_a = COMPLEX_TO_REAL["multiplication"]
        _, add_a = COMPLEX_TO_REAL["addition"]
        products = self.multiplications + self.constant_multiplications
        return dataclasses.replace(
            self,
            unit="real",
            multiplications=mul_m * self.multiplications,
            additions_by_stage=tuple((k, add_a * v) for k, v in self.additions_by_stage)
            + (("complex products", mul_a * products),),
            constant_multiplications_by_stage=tuple((k, mul_m * v) for k, v in self.constant_multiplications_by_stage),
            workspace_by_buffer=tuple((k, 2 * v) for k, v in self.workspace_by_buffer),
            rule=self.rule + f"; in real arithmetic: a complex multiplication is {mul_m} real multiplications and "
            f"{mul_a} additions, a complex addition {add_a} real additions, a complex element 2 real ones",
        )

    def subs(self, values: dict | None = None, /, **named) -> AlgorithmCost:
        """Bind symbols by name (or Symbol), as :meth:`convcost.Cost.subs` does, and re-check conditions.

        >>> from convcost.primitives import Conv
        >>> from convcost.algorithms import im2col
        >>> im2col(Conv(C=3, O=8, K=3)).subs(H=5, W=5).workspace_elements
        243
        """
        mapping = _bindings(self, {**(values or {}), **named})
        if not mapping:
            return self
        bind = lambda v: sympy.sympify(v).subs(mapping)  # noqa: E731
        conditions = []
        for cond in self.conditions:
            shown = ", ".join(f"{k}={v}" for k, v in mapping.items())
            conditions += require(cond.subs(mapping), f"{self.algorithm} after binding {shown}",
                                  f"the condition {cond} does not hold")
        pairs = lambda named_values: tuple((k, bind(v)) for k, v in named_values)  # noqa: E731
        return dataclasses.replace(
            self,
            input_shape=tuple(bind(x) for x in self.input_shape),
            output_shape=tuple(bind(x) for x in self.output_shape),
            multiplications=bind(self.multiplications),
            additions_by_stage=pairs(self.additions_by_stage),
            constant_multiplications_by_stage=pairs(self.constant_multiplications_by_stage),
            workspace_by_buffer=pairs(self.workspace_by_buffer),
            conditions=tuple(conditions),
        )

    def as_dict(self) -> dict:
        """Every count as a string, or an int where bound."""
        show = lambda v: int(v) if sympy.sympify(v).is_Integer else str(v)  # noqa: E731
        return {
            "algorithm": self.algorithm,
            "spec": repr(self.spec),
            "unit": self.unit,
            "multiplications": show(self.multiplications),
            "additions": show(self.additions),
            "additions_by_stage": {k: show(v) for k, v in self.additions_by_stage},
            "constant_multiplications": show(self.constant_multiplications),
            "constant_multiplications_by_stage": {k: show(v) for k, v in self.constant_multiplications_by_stage},
            "workspace_elements": show(self.workspace_elements),
            "workspace_by_buffer": {k: show(v) for k, v in self.workspace_by_buffer},
            "rule": self.rule,
            "conditions": [str(c) for c in self.conditions],
        }

    def __repr__(self) -> str:
        shape = lambda s: "(" + ", ".join(map(str, s)) + ")"  # noqa: E731
        unit = " (complex)" if self.unit == "complex" else ""
        lines = [f"<AlgorithmCost {self.algorithm} of {self.spec!r} on {shape(self.input_shape)} "
                 f"-> {shape(self.output_shape)}{unit}",
                 f"  multiplications = {self.multiplications}",
                 f"  additions = {self.additions}"]
        lines += [f"    {k}: {v}" for k, v in self.additions_by_stage]
        lines.append(f"  constant_multiplications = {self.constant_multiplications}")
        lines += [f"    {k}: {v}" for k, v in self.constant_multiplications_by_stage]
        lines.append(f"  workspace_elements = {self.workspace_elements}")
        lines += [f"    {k}: {v}" for k, v in self.workspace_by_buffer]
        lines.append(f"  rule: {self.rule}")
        if self.conditions:
            lines.append("  valid when " + " and ".join(map(str, self.conditions)))
        return "\n".join(lines) + ">"


def _bindings(cost: AlgorithmCost, values: dict) -> dict:
    by_name = {}
    for sym in cost.free_symbols | {s for x in cost.output_shape for s in sympy.sympify(x).free_symbols} | {
            s for c in cost.conditions for s in c.free_symbols}:
        by_name.setdefault(sym.name, []).append(sym)
    mapping = {}
    for key, value in values.items():
        name = key.name if isinstance(key, sympy.Symbol) else key
        if not isinstance(name, str) or name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise ConvcostError(f"cannot bind {key}: the cost has no symbol {key!r} (its symbols: {known})")
        if isinstance(value, bool) or not isinstance(value, (int, sympy.Expr)):
            raise ConvcostError(f"cannot bind {name}={value!r}: give an integer or a sympy expression")
        value = sympy.sympify(value)
        for sym in by_name[name]:
            if value.is_number and sym.is_integer and not value.is_integer:
                raise ConvcostError(f"cannot bind {name}={value}: it must be an integer")
            if value.is_number and sym.is_positive and not value.is_positive:
                raise ConvcostError(f"cannot bind {name}={value}: it must be a positive integer")
            if value.is_number and sym.is_nonnegative and value.is_negative:
                raise ConvcostError(f"cannot bind {name}={value}: it must be non-negative")
            mapping[sym] = value
    return mapping
