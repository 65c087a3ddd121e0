"""Derivations: the steps from a layer's definition to its closed form, built from its own costs.

A derivation never re-types a formula. Each primitive's steps come from the
primitive's own cost: the same primitive is costed once more with canonical
stand-ins (``C, O, K, S, P, D, G`` from the glossary, ``N, C, H, W`` for its
input; ``K_H, K_W`` for a per-axis field), which prints its general formula
(*definition*); the stand-ins are then replaced by the values of the spec and
of the input the part actually saw (*substitution*), and the result is the
part's cost expression itself (*simplification*). That the substituted
template equals the part's cost is checked, not assumed. A composition shows
its parts, then their sum; a gated part (``Residual(when=...)``,
``When(...)``) adds a *condition* step. The last step (*result*) is the cost
expression, exactly.

Each metric has one letter, indexed by part (``\\Theta_{2}`` is the
parameters of the second part):

=======================  ===========
metric                   symbol
=======================  ===========
``params``               ``\\Theta``
``macs``                 ``A``
``flops``                ``F``
``bias_ops``             ``B``
``norm_ops``             ``Z``
``act_ops``              ``\\Phi``
``pool_ops``             ``Q``
``elementwise_ops``      ``E``
``activation_elements``  ``X``
``memory_access``        ``\\Omega``
=======================  ===========

Every formula prints with one convention: glossary names, explicit ``\\cdot``
products (so ``W \\cdot (K^2 + O)`` never reads as a function call).

>>> from convcost import cost, SeparableConv
>>> d = derive(cost(SeparableConv, C=64, O=128, K=3), "params")
>>> [s.kind for s in d.steps]
['definition', 'substitution', 'simplification', 'definition', 'substitution', 'simplification', 'definition',
'substitution', 'result']
>>> print(d.steps[0].tex())
\\Theta_{1} = \\frac{C \\cdot K^{2} \\cdot O}{G} + O
>>> print(d.steps[1].tex())
\\Theta_{1} = \\frac{64 \\cdot 3^{2} \\cdot 64}{64} + 64
>>> d.steps[-1].rhs
8960
"""

from __future__ import annotations

import dataclasses

import sympy
from sympy.printing.latex import LatexPrinter

from convcost import display, primitives
from convcost.breakeven import BreakEven
from convcost.costs import Cost, check_metric, metric_of
from convcost.errors import ConvcostError
from convcost.layers import Layer, Merge
from convcost.symbols import GLOSSARY, SPATIAL, C, N
from convcost.validate import entry_point

#: the symbol letter of each metric (sympy names; they print as the table above)
METRIC_SYMBOLS = {
    "params": "Theta",
    "macs": "A",
    "flops": "F",
    "bias_ops": "B",
    "norm_ops": "Z",
    "act_ops": "Phi",
    "pool_ops": "Q",
    "elementwise_ops": "E",
    "activation_elements": "X",
    "memory_access": "Omega",
    "backward_macs": "Gamma",
    "saved_elements": "Sigma",
    "saved_indices": "Xi",
    "param_tensors": "Pi",
}

#: what each metric counts, for headings
METRIC_TITLES = {
    "params": "learnable parameters",
    "macs": "multiply-accumulates",
    "flops": "floating-point operations (2 per multiply-accumulate)",
    "bias_ops": "bias additions",
    "norm_ops": "normalisation multiply-adds",
    "act_ops": "activation evaluations",
    "pool_ops": "pooling window reads",
    "elementwise_ops": "element-wise operations",
    "activation_elements": "activation elements written",
    "memory_access": "memory access (elements read and written)",
    "backward_macs": "backward multiply-accumulates (input and weight gradients)",
    "saved_elements": "elements autograd saves for backward",
    "saved_indices": "int64 indices autograd saves (max pooling)",
    "param_tensors": "parameter tensors",
}

KINDS = ("definition", "substitution", "simplification", "condition", "result", "approximation")

#: relations a step may state (break-even conditions are inequalities)
RELATIONS = {"=": sympy.Eq, ">=": sympy.Ge, ">": sympy.Gt, "<=": sympy.Le, "<": sympy.Lt}
_RELATION_TEX = {"=": "=", ">=": r"\geq", ">": ">", "<=": r"\leq", "<": "<"}
FORMATS = ("tex", "md")
DEFAULT_METRICS = ("params", "macs")


# -- printing: one convention everywhere ---------------------------------------
def tex(expr, names: dict | None = None) -> str:
    """LaTeX of an expression: glossary names, ``\\cdot`` products, cases for ``Piecewise``.

    ``names`` prints some symbols as given LaTeX (how substitutions are shown).

    >>> from convcost.symbols import C, K, O
    >>> tex(C * K**2 * O)
    'C \\\\cdot K^{2} \\\\cdot O'
    """
    return _Printer(names).doprint(display.readable(expr))  # floor nests as one, as in text


class _Printer(LatexPrinter):
    def __init__(self, names=None):
        super().__init__({"mul_symbol": "dot", "symbol_names": dict(names or {})})

    def _print_Piecewise(self, expr):
        rows = []
        for value, cond in expr.args:
            shown = r"\text{otherwise}" if cond is sympy.true else r"\text{if } " + self._print(cond)
            rows.append(f"{self._print(value)} & {shown}")
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"

    def _print_And(self, expr):
        return r" \text{ and } ".join(self._print(a) for a in expr.args)

    def _print_Or(self, expr):
        return r" \text{ or } ".join(self._print(a) for a in expr.args)


def _text(s: str) -> str:
    """Plain text made safe inside ``\\text{}``."""
    out = str(s)
    for a, b in (("\\", r"\textbackslash "), ("{", r"\{"), ("}", r"\}"), ("_", r"\_"), ("&", r"\&"),
                 ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("^", r"\^{}"), ("~", r"\~{}"), ("'", "")):
        out = out.replace(a, b)
    return out


# -- the data -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Step:
    """One step ``lhs = rhs``: its ``kind`` (see ``KINDS``), a prose ``note``.

    ``shown`` is how the right-hand side prints when it is not ``tex(rhs)``: a
    substitution prints the template with the values in place, unevaluated.
    """

    kind: str
    lhs: sympy.Symbol
    rhs: sympy.Expr
    note: str = ""
    shown: str | None = None
    rel: str = "="

    def __post_init__(self):
        # counts come as ints where they are numbers: a step holds sympy expressions on both sides
        object.__setattr__(self, "lhs", sympy.sympify(self.lhs))
        object.__setattr__(self, "rhs", sympy.sympify(self.rhs))

    @property
    def relation(self):
        """The step as a sympy relation (unevaluated, so ``x = x`` stays a relation)."""
        return RELATIONS[self.rel](self.lhs, self.rhs, evaluate=False)

    def rhs_tex(self) -> str:
        return self.shown if self.shown is not None else tex(self.rhs)

    def tex(self) -> str:
        return f"{tex(self.lhs)} {_RELATION_TEX[self.rel]} {self.rhs_tex()}"

    def label(self) -> str:
        return f"{self.kind}: {self.note}" if self.note else self.kind


@dataclasses.dataclass(frozen=True)
class Section:
    """The steps of one metric."""

    metric: str
    steps: tuple
    title: str = ""

    @property
    def heading(self) -> str:
        return self.title or METRIC_TITLES[self.metric]


@dataclasses.dataclass(frozen=True)
class Derivation:
    """Ordered steps from a layer's definition to its closed form, one section per metric."""

    title: str
    sections: tuple
    cost: Cost | None = None

    @property
    def steps(self) -> tuple:
        """Every step, section after section."""
        return tuple(s for sec in self.sections for s in sec.steps)

    def section(self, metric: str) -> Section:
        name = _metric_name(metric)
        for sec in self.sections:
            if sec.metric == name:
                return sec
        raise ConvcostError(f"this derivation has no {metric!r} section; it has "
                            f"{', '.join(s.metric for s in self.sections)}")

    def formulas(self) -> list:
        """Every emitted formula as ``(latex, sympy)``: step relations, and each branch of a cases block."""
        out = []
        for step in self.steps:
            out.append((step.tex(), step.relation))
            for pw in display.readable(step.rhs).atoms(sympy.Piecewise):  # as printed (C = 16 for C/16 = 1)
                for value, cond in pw.args:
                    out.append((tex(value), value))
                    for atom in _condition_atoms(cond):
                        out.append((tex(atom), atom))
        return out

    # -- renderings ---------------------------------------------------------
    def latex(self) -> str:
        """An ``align*`` block (amsmath), a heading per metric, each step labelled."""
        lines = [r"\begin{align*}"]
        for sec in self.sections:
            lines.append(r"\intertext{\textbf{%s}: %s}" % (_text(sec.metric), _text(sec.heading)))
            lines += [_row(group) + r" \\" for group in _groups(sec.steps)]
        lines[-1] = lines[-1].removesuffix(r" \\")
        lines.append(r"\end{align*}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """Markdown: a heading per metric, each step a prose label and a ``$$`` block."""
        out = [f"### `{self.title}`", ""]
        for sec in self.sections:
            out += [f"#### {sec.metric}: {sec.heading}", ""]
            for group in _groups(sec.steps):
                said = ", ".join(f"{s.kind}" + (f" ({_md(s.note)})" if s.note else "") for s in group)
                out += [f"{said[0].upper()}{said[1:]}:", "", f"$${group[-1].tex()}$$", ""]
        return "\n".join(out).rstrip() + "\n"

    def document(self) -> str:
        """A standalone LaTeX document (article, amsmath, graphicx, geometry: all in texlive-latex-base) that
        compiles with pdflatex and fits the page: each step's label is a line of text above it, a long sum is
        broken over lines, and an equation still wider than the text is scaled to its width."""
        body = []
        for sec in self.sections:
            body.append(r"\subsection*{%s: %s}" % (_text(sec.metric), _text(sec.heading)))
            for group in _groups(sec.steps):
                body.append(r"\noindent\textit{%s}" % _text("; ".join(s.label() for s in group)))
                body.append(r"\fitmath{%s}" % _lines(group[-1]))
        return "\n".join(
            [
                r"\documentclass[10pt]{article}",
                r"\usepackage[margin=2cm]{geometry}",
                r"\usepackage{amsmath}",
                r"\usepackage{graphicx}",
                # an equation wider than the text is scaled down to it, never run off the page
                r"\newcommand{\fitmath}[1]{\par\smallskip\noindent\hfill\sbox0{$\displaystyle #1$}%",
                r"  \ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi\hfill\null\par\smallskip}",
                r"\setlength{\parindent}{0pt}",
                r"\begin{document}",
                r"\raggedright",
                r"\section*{%s}" % _text(self.title),
                *body,
                r"\end{document}",
                "",
            ]
        )

    def render(self, fmt: str = "tex", *, document: bool = False) -> str:
        """``"tex"`` (``document=True`` for a standalone file) or ``"md"``."""
        if not isinstance(fmt, str) or fmt not in FORMATS:
            raise ConvcostError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        if not isinstance(document, bool):
            raise ConvcostError(f"render: document={document!r} must be True or False")
        if fmt == "md":
            if document:
                raise ConvcostError("--document makes a LaTeX file; use it with format 'tex'")
            return self.markdown()
        return self.document() if document else self.latex() + "\n"

    def _repr_latex_(self) -> str:
        rows = []
        for sec in self.sections:
            rows.append(r"&\textbf{%s}" % _text(sec.metric))
            rows += [_row(group) for group in _groups(sec.steps)]
        return r"$$\begin{aligned}" + " \\\\\n".join(rows) + r"\end{aligned}$$"

    def __repr__(self) -> str:
        lines = [f"<Derivation of {self.title}"]
        for sec in self.sections:
            lines.append(f"  {sec.metric}:")
            rows = []  # steps that print the same text are one row: a value is not repeated as each step's
            for step in sec.steps:
                text = f"{display.formula(step.lhs)} {step.rel} {display.number(step.rhs)}"
                if rows and rows[-1][0] == text:
                    rows[-1][1].append(step.kind)
                else:
                    rows.append((text, [step.kind]))
            lines += [f"    {text}    [{', '.join(kinds)}]" for text, kinds in rows]
        return "\n".join(lines) + ">"


def _groups(steps) -> list:
    """The steps as shown: consecutive steps that print the same formula are one row, labelled with all of them.

    (A substitution whose values are already the result would otherwise print the same line twice.)
    """
    out = []
    for step in steps:
        if out and out[-1][-1].tex() == step.tex():
            out[-1].append(step)
        else:
            out.append([step])
    return out


def _row(group) -> str:
    step = group[-1]
    label = "; ".join(s.label() for s in group)
    return f"{tex(step.lhs)} &{_RELATION_TEX[step.rel]} {step.rhs_tex()} && \\text{{{_text(label)}}}"


#: about how many characters of LaTeX source fill one line of a document's equation
_LINE = 110


def _lines(step) -> str:
    """A step as display math for a document: a long sum on its right side broken after a ``+`` into lines
    of about :data:`_LINE` characters of source (an ``aligned`` block)."""
    lhs = f"{tex(step.lhs)} {_RELATION_TEX[step.rel]} "
    rhs = sympy.sympify(step.rhs)
    if step.shown is not None or not isinstance(rhs, sympy.Add) or len(step.rhs_tex()) <= _LINE:
        return lhs + step.rhs_tex()
    lines, line = [], []
    for term in sympy.Add.make_args(rhs):
        if line and sum(len(x) for x in line) + len(tex(term)) > _LINE:
            lines.append(line)
            line = []
        line.append(tex(term))
    lines.append(line)
    joined = [" + ".join(terms).replace("+ -", "- ") for terms in lines]
    rows = [f"{lhs.replace(' ' + _RELATION_TEX[step.rel] + ' ', ' &' + _RELATION_TEX[step.rel] + ' ')}{joined[0]}"]
    rows += [rf"&\quad + {j}" if not j.startswith("-") else rf"&\quad {j}" for j in joined[1:]]
    return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"


def _md(s: str) -> str:
    return s.replace("`", "'")


def _condition_atoms(cond) -> list:
    """The relations a cases block's condition is made of (``and``, ``or`` and ``not`` taken apart: each relation
    is a formula printed as it stands inside the condition)."""
    if cond is sympy.true or cond is sympy.false:
        return []
    if isinstance(cond, (sympy.And, sympy.Or, sympy.Not)):
        return [a for arg in cond.args for a in _condition_atoms(arg)]
    return [cond]


# -- building -------------------------------------------------------------------
@entry_point
def derive(spec_or_cost, metric=None) -> Derivation:
    """The derivation of a cost (or of a layer's cost), for one metric or several.

    ``metric`` is a metric name (``"params"``, ``"macs"``, ``"flops"``,
    ``"memory"`` ...), a tuple of them, or ``None`` for params and MACs.
    Free symbols are fine: the derivation stays symbolic. A break-even result
    (:func:`convcost.breakeven.break_even`) derives too: the two costs, their
    difference, the condition, the threshold and the rule of thumb.

    >>> from convcost import cost, StandardConv
    >>> d = derive(StandardConv(C=3, O=32, K=3, P=1, H=32, W=32), "macs")
    >>> d.steps[-1].rhs
    884736
    >>> from convcost import AsymmetricConv
    >>> from convcost.breakeven import break_even
    >>> seed_004 = derive(break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K"))
    >>> print(seed_004.steps[-1].tex())
    K > 1 + \\frac{O}{C}
    >>> derive("StandardConv")
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: derive() needs a convcost layer, layer class or Cost, got 'StandardConv'
    """

    if isinstance(spec_or_cost, BreakEven):
        if metric is not None:
            raise ConvcostError("a break-even result has its own metric; derive() takes none with it")
        return _break_even(spec_or_cost)
    if isinstance(spec_or_cost, type) and issubclass(spec_or_cost, Layer):
        spec_or_cost = spec_or_cost.general()
    if isinstance(spec_or_cost, Layer):
        spec_or_cost = spec_or_cost.cost()
    if not isinstance(spec_or_cost, Cost):
        raise ConvcostError(f"derive() needs a convcost layer, layer class or Cost, got {spec_or_cost!r}")
    c = spec_or_cost
    if metric is not None and not isinstance(metric, (str, tuple, list)):
        raise ConvcostError(f"derive: metric={metric!r} must be a metric name or a tuple of them")
    metrics = DEFAULT_METRICS if metric is None else (metric,) if isinstance(metric, str) else tuple(metric)
    if not metrics:
        raise ConvcostError("derive() needs at least one metric")
    templates: dict = {}
    sections = tuple(Section(_metric_name(m), _section(c, _metric_name(m), templates)) for m in metrics)
    title = display.spec(c.spec)
    return Derivation(title, sections, c)


def _break_even(be) -> Derivation:
    """Seed 004's derivation, exact: the two costs, their difference, factored, the condition, the threshold."""
    comparison, x = be.comparison, be.symbol
    letter = METRIC_SYMBOLS[_metric_name(be.metric)]
    a, b, delta = sympy.Symbol(f"{letter}_A"), sympy.Symbol(f"{letter}_B"), sympy.Symbol("Delta")
    steps = [
        Step("definition", a, comparison.value_a, f"A = {display.spec(comparison.A.spec)}"),
        Step("definition", b, comparison.value_b, f"B = {display.spec(comparison.B.spec)}"),
        Step("definition", delta, a - b, "B costs no more than A exactly when the difference is not negative",
             shown=f"{tex(a)} - {tex(b)}"),
        Step("substitution", delta, comparison.difference),
    ]
    factored = sympy.factor(comparison.difference)
    if factored != comparison.difference:
        steps.append(Step("simplification", delta, factored, "factored"))
    cancelled = ", ".join(str(c) for c in be.cancelled)
    note = f"cancelling the positive factors {cancelled}" if cancelled else "the condition"
    steps.append(Step("condition", be.expression, sympy.Integer(0), note, rel=">="))
    if be.threshold is not None:
        assuming = f", assuming {' and '.join(map(str, be.assuming))}" if be.assuming else ""
        steps.append(Step("result", x, be.threshold, f"threshold (closed form){assuming}", rel=be.direction))
    if be.rule_of_thumb is not None:
        rule = be.rule_of_thumb
        steps.append(Step("approximation", x, rule.rhs, "rule of thumb: leading order when the other symbols are large",
                          rel=rule.rel_op))
    title = (f"break-even of {be.metric}: {display.spec(comparison.B.spec)} against "
             f"{display.spec(comparison.A.spec)}, solved for {x}")
    heading = f"where B costs no more than A ({be.method}: {be.note})"
    return Derivation(title, (Section(be.metric, tuple(steps), heading),), None)


def _metric_name(metric) -> str:
    return check_metric(metric)


def _section(c: Cost, metric: str, templates: dict) -> tuple:
    if metric == "flops":
        steps = list(_section(c, "macs", templates))
        macs_sym, flops_sym = _symbol("macs", None), _symbol("flops", None)
        steps[-1] = dataclasses.replace(steps[-1], kind="simplification")
        steps.append(Step("definition", flops_sym, 2 * macs_sym, "two operations per multiply-accumulate"))
        steps.append(Step("result", flops_sym, c.flops))
        return tuple(steps)
    builder = _Builder(metric, templates)
    steps = builder.node(c, None, "", ())
    if not steps:
        steps = [Step("result", _symbol(metric, None), metric_of(c, metric))]
    last, total = steps[-1], metric_of(c, metric)
    if last.shown is not None or last.rhs != total:
        steps.append(Step("result", last.lhs, total))
    else:  # the last step already states the cost: it is the result
        steps[-1] = dataclasses.replace(last, kind="result")
    return tuple(steps)


def _symbol(metric: str, index: int | None) -> sympy.Symbol:
    name = METRIC_SYMBOLS[metric]
    return sympy.Symbol(name if index is None else f"{name}_{index}")


class _Builder:
    """Walks a cost's parts depth-first, numbering every part that contributes."""

    def __init__(self, metric: str, templates: dict):
        self.metric = metric
        self.count = 0
        self.templates = templates

    def value(self, c: Cost):
        return metric_of(c, self.metric)

    def node(self, c: Cost, index, path: str, siblings: tuple) -> list:
        lhs = _symbol(self.metric, index)
        total = self.value(c)
        if total == 0:
            return [Step("definition", lhs, total, _where(path, c.spec))] if index is None else []
        if not c.parts:
            return self.leaf(c, lhs, path, siblings)
        live = [(name, part) for name, part in c.parts if self.value(part) != 0]
        if len(live) == 1 and self.value(live[0][1]) == total:  # one part carries it all: same symbol
            name, part = live[0]
            return self.node(part, index, _join(path, name), _preceding(c.parts, name))
        steps, children = [], []
        for name, part in live:
            self.count += 1
            child = self.count
            steps += self.node(part, child, _join(path, name), _preceding(c.parts, name))
            children.append((_symbol(self.metric, child), self.value(part)))
        where = _where(path, c.spec)
        summed = sympy.Add(*(v for _, v in children))
        steps.append(Step("definition", lhs, sympy.Add(*(s for s, _ in children)), f"sum of the parts of {where}",
                          shown=" + ".join(tex(s) for s, _ in children)))
        shown = " + ".join(tex(v) for _, v in children)
        steps.append(Step("substitution", lhs, summed, "values of the parts", shown=shown))
        if tex(summed) != shown:
            steps.append(Step("simplification", lhs, summed))
        if self.metric == "saved_elements" and not _same(summed, total):
            steps.append(Step("simplification", lhs, total,
                              "each saved storage once: a tensor two parts save (an output and "
                              "the next input) counts once"))
        elif not _same(summed, total):
            steps.append(Step("condition", lhs, total, "counted only where the condition holds"))
        elif summed != total:
            steps.append(Step("simplification", lhs, total))
        return steps

    def leaf(self, c: Cost, lhs, path: str, siblings: tuple) -> list:
        actual = self.value(c)
        where = _where(path, c.spec)
        key = id(c)
        if key not in self.templates:  # one template per part, shared by every metric
            self.templates[key] = (c, _template(c, siblings))
        found = self.templates[key][1]
        if found is not None:
            template_cost, mapping = found
            general = metric_of(template_cost, self.metric)
            bound = general.xreplace(mapping)
            gated = not _same(bound, actual) and isinstance(actual, sympy.Piecewise) and any(
                _same(bound, v) for v, _ in actual.args
            )
            if _same(bound, actual) or gated:
                steps = [Step("definition", lhs, general, f"{where}, the formula of {type(c.spec).__name__}")]
                used = {s: v for s, v in mapping.items() if s in general.free_symbols and s != v}
                if used:
                    names = {s: _wrapped(v) for s, v in used.items()}
                    shown = tex(general, names)
                    steps.append(Step("substitution", lhs, bound, ", ".join(f"{s} = {v}" for s, v in used.items()),
                                      shown=shown))
                    if tex(bound) != shown:
                        steps.append(Step("simplification", lhs, actual if not gated else bound))
                if gated:
                    steps.append(Step("condition", lhs, actual, "counted only where the condition holds"))
                elif steps[-1].rhs != actual:
                    steps.append(Step("simplification", lhs, actual))
                return steps
        return [Step("definition", lhs, actual, f"the cost of {where}")]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _preceding(parts: tuple, name: str) -> tuple:
    out = []
    for n, part in parts:
        if n == name:
            break
        out.append(part)
    return tuple(out)


def _where(path: str, spec) -> str:
    shown = display.spec(spec)
    return f"{path}: {shown}" if path else shown


def _wrapped(value) -> str:
    """LaTeX of a value put in place of a symbol: bracketed unless it is an atom."""
    value = sympy.sympify(value)
    if value.is_Atom and not (value.is_Rational and not value.is_Integer) and not (value.is_number and value < 0):
        return tex(value)
    return r"\left(" + tex(value) + r"\right)"


def _same(a, b) -> bool:
    """Equal as expressions; cheap tests first, ``simplify`` only when they cannot tell."""
    if a == b:
        return True
    if isinstance(b, sympy.Piecewise) != isinstance(a, sympy.Piecewise):
        return False  # a gated count never equals an ungated one here: they differ off the condition
    try:
        if sympy.expand(a - b) == 0:
            return True
        return sympy.simplify(a - b) == 0
    except (TypeError, ValueError):  # e.g. undecidable Piecewise comparisons
        return False


# -- templates: the primitive costed with stand-ins ------------------------------
def _template(c: Cost, siblings: tuple):
    """``(cost with stand-ins, {stand-in: value})`` for a primitive's cost, or None."""
    spec = c.spec
    if spec is None or not type(spec).__module__.startswith(primitives.__name__ + "."):
        return None
    bindings = dict(getattr(c, "bindings", ()))
    mapping: dict = {}

    def bind(stand_in, value) -> bool:
        value = sympy.sympify(value).xreplace(bindings)
        if stand_in in mapping and mapping[stand_in] != value:
            return False
        mapping[stand_in] = value
        return True

    fields = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.metadata.get("kind") not in ("size", "count", "padding", "real") or isinstance(value, str):
            continue
        if f.name not in GLOSSARY:
            continue
        base = GLOSSARY[f.name]
        if isinstance(value, tuple):
            axes = [s.name for s in SPATIAL[len(value)]] if len(value) in SPATIAL else range(1, len(value) + 1)
            stand_ins = tuple(sympy.Symbol(f"{f.name}_{a}", **base.assumptions0) for a in axes)
            if not all(bind(s, v) for s, v in zip(stand_ins, value)):
                return None
            fields[f.name] = stand_ins
        else:
            if not bind(base, value):
                return None
            fields[f.name] = base
    try:
        template = dataclasses.replace(spec, **fields)
        if isinstance(spec, Merge):
            shapes = tuple(s.output_shape for s in siblings)
            if len(shapes) < 2 or tuple(shapes[0]) != tuple(c.input_shape):
                return None
            stand = _merge_stand_ins(shapes, bind)
            if stand is None:
                return None
            return template.cost(stand), mapping
        if not isinstance(spec, Layer):
            return None
        shape = tuple(c.input_shape)
        stand = _shape_stand_ins(len(shape), isinstance(spec, primitives.Linear))
        if stand is None or not all(bind(s, v) for s, v in zip(stand, shape)):
            return None
        return template.cost(stand), mapping
    except ConvcostError:
        return None


def _shape_stand_ins(rank: int, channels_last: bool):
    if rank == 2:
        return (N, C)
    if rank - 2 not in SPATIAL:
        return None
    spatial = SPATIAL[rank - 2]
    return (N, *spatial, C) if channels_last else (N, C, *spatial)


def _merge_stand_ins(shapes, bind):
    first = _shape_stand_ins(len(shapes[0]), False)
    if first is None or not all(bind(s, v) for s, v in zip(first, shapes[0])):
        return None
    out = [first]
    for i, shape in enumerate(shapes[1:], start=2):
        if len(shape) != len(first):
            return None
        row = []
        for stand, mine, theirs in zip(first, shape, shapes[0]):
            if mine == theirs:
                row.append(stand)
            elif mine == 1:
                row.append(sympy.Integer(1))
            else:
                other = sympy.Symbol(f"{stand.name}_{i}", **stand.assumptions0)
                if not bind(other, mine):
                    return None
                row.append(other)
        out.append(tuple(row))
    return tuple(out)
