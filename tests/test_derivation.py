"""Derivations: built from the costs, exact to the last step, parse back, compile, pinned by golden files."""

import functools
import pathlib
import random
import re
import shutil
import subprocess

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from sympy.core.function import AppliedUndef

from convcost import METRICS, VARIANTS, ConvcostError, SeparableConv, StandardConv, cost
from convcost.cli import main
from convcost.costs import metric_of
from convcost.derivation import KINDS, derive, tex

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
ALL_METRICS = ("flops", "memory", *METRICS)

#: values each variant field may take in the property (ints chosen so every variant is valid)
FIELD_VALUES = {
    "C": st.sampled_from([4, 8, 16]), "O": st.sampled_from([4, 8, 16]), "K": st.sampled_from([1, 3, 5]),
    "S": st.sampled_from([1, 2]), "P": st.integers(0, 2), "D": st.integers(1, 2), "G": st.sampled_from([1, 2, 4]),
    "M": st.integers(1, 3), "t": st.integers(1, 4), "r": st.sampled_from([2, 4]), "s": st.integers(1, 8),
    "e": st.integers(1, 8), "H": st.sampled_from([16, 32]), "W": st.sampled_from([16, 32]),
    "T": st.sampled_from([8, 16]),
    "N": st.integers(1, 3),
}


def _normal(expr):
    """Expanded inside floors too, so ``floor((H - 3)/2)`` and ``floor(H/2 - 3/2)`` compare equal."""
    expr = sympy.sympify(expr).doit()
    expr = expr.replace(lambda e: isinstance(e, (sympy.floor, sympy.ceiling)), _integer_part_out)
    return sympy.expand(expr)


def _integer_part_out(e):
    """``floor(x + q) = floor(x + frac(q)) + floor(q)`` for a rational constant ``q`` (and so for ceiling)."""
    arg = sympy.expand(e.args[0])
    q, rest = arg.as_coeff_Add()
    if not q.is_Rational:
        return type(e)(arg)
    whole = sympy.floor(q)
    return sympy.Add(type(e)(rest + (q - whole), evaluate=False), whole)


def _zero(expr) -> bool:
    expr = _normal(expr)
    return expr == 0 or sympy.simplify(expr) == 0


def _parsed_equal(latex: str, source) -> bool:
    """parse_latex(latex) equals ``source`` once its symbols are matched by their printed names.

    Equal symbolically (both sides on integer symbols), or, where sympy cannot decide identities of
    floors, exactly equal at a dozen random integer points.

    sympy deduces assumptions in a shuffled order (``sympy.core.random``), and on the unevaluated
    nodes parse_latex builds (``-1 \\cdot (1 - 1) + H``) some orders contradict themselves and raise
    InconsistentAssumptions "from time to time" (sympy/sympy#23874): a flaw of the deduction, not of
    the LaTeX. So the comparison is retried from a clean cache under other deduction orders.
    """
    import sympy.core.random
    from sympy.core.cache import clear_cache

    for order in range(25):
        if order:
            clear_cache()  # unevaluated nodes are cached with the assumptions already deduced on them
            sympy.core.random.seed(order)
        try:
            return _parsed_equal_once(latex, source, fresh=bool(order))
        except sympy.core.facts.InconsistentAssumptions as error:
            contradiction = error
    raise contradiction


@functools.cache
def _parse(latex: str):
    """parse_latex's answer for ``latex``, parsed once per process: sympy's ANTLR parser, in pure Python, takes
    about 0.1 s a formula, and the derivations repeat their formulas (every variant's definitions)."""
    from sympy.parsing.latex import parse_latex

    return parse_latex(latex, backend="antlr")


def _parsed_equal_once(latex: str, source, fresh: bool = False) -> bool:
    # a retry after contradictory assumptions parses anew: the cached nodes carry the assumptions deduced on them
    parsed = _parse.__wrapped__(latex) if fresh else _parse(latex)
    # parse_latex reads \max and \min as undefined functions named max and min: sympy's own
    parsed = parsed.replace(lambda e: isinstance(e, AppliedUndef) and e.func.__name__ in ("max", "min"),
                            lambda e: (sympy.Max if e.func.__name__ == "max" else sympy.Min)(*e.args))
    if isinstance(source, sympy.Eq) != isinstance(parsed, sympy.Eq):
        return False
    if isinstance(source, sympy.Eq) and isinstance(source.lhs, sympy.Symbol):  # a definition: "macs = ..."
        if not isinstance(parsed.lhs, sympy.Symbol) or tex(source.lhs).lstrip("\\") != parsed.lhs.name.lstrip("\\"):
            return False
        source, parsed = source.rhs.doit(), parsed.rhs
    elif isinstance(source, sympy.core.relational.Relational):
        if type(parsed) is not type(source):
            return False
        source, parsed = source.lhs - source.rhs, parsed.lhs - parsed.rhs
    source_names = {s: tex(s).lstrip("\\") for s in source.free_symbols}
    parsed_names = {s: s.name.lstrip("\\") for s in parsed.free_symbols}
    # a symbol may cancel on one side only (D * (1 - 1)); an extra symbol that does not cancel
    # still makes the two sides differ below
    names = set(source_names.values()) | set(parsed_names.values())
    try:
        integer = {n: sympy.Symbol(n, integer=True) for n in names}
        a = parsed.xreplace({s: sympy.Symbol(n) for s, n in parsed_names.items()})  # evaluate, then assume
        a = a.xreplace({sympy.Symbol(n): integer[n] for n in integer})
        if _zero(a - source.xreplace({s: integer[n] for s, n in source_names.items()})):
            return True
    except sympy.core.facts.InconsistentAssumptions:
        pass  # the points below decide
    rng = random.Random(latex)
    for _ in range(12):
        point = {n: sympy.Integer(rng.randint(1, 40)) for n in sorted(names)}
        a = parsed.xreplace({s: point[n] for s, n in parsed_names.items()}).doit()
        b = source.xreplace({s: point[n] for s, n in source_names.items()}).doit()
        # nsimplify only where parse_latex left a float: on an exact rational it may find "simpler" irrational
        # forms (19622025/32 became a product of powers with exponents in 67ths)
        if (sympy.nsimplify(a) if a.has(sympy.Float) else a) != b:
            return False
    return True


def _check_parses_back(d):
    emitted, markdown = d.latex(), None
    checked = 0
    for latex, source in d.formulas():
        if latex not in emitted:
            markdown = d.markdown() if markdown is None else markdown  # built once, and only when needed
            assert latex in markdown
        if source.has(sympy.Piecewise):
            continue  # cases blocks: parse_latex has no cases; their branches are listed as formulas of their own
        assert _parsed_equal(latex, source), latex
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_last_step_is_the_cost_for_every_metric(name):
    for c in (cost(VARIANTS[name]), cost(VARIANTS[name], **_small(name))):
        d = derive(c, ALL_METRICS)
        for metric in ALL_METRICS:
            steps = d.section(metric).steps
            assert steps[-1].kind == "result"
            assert steps[-1].rhs == metric_of(c, metric)  # structurally the same expression, not just equal
            assert all(s.kind in KINDS for s in steps)


def _small(name):
    if name in ("SpaceToDepth",):
        return dict(C=4, r=2, H=8, W=8)
    if name == "DepthToSpace":
        return dict(C=16, r=2, H=8, W=8)
    if name == "SqueezeExcitation":
        return dict(C=16, r=4, H=8, W=8)
    if name == "FireModule":
        return dict(C=16, s=4, e=8, H=8, W=8)
    if name in ("InvertedResidual",):
        return dict(C=8, O=8, t=2, H=8, W=8)
    if name in ("MobileNetV1Block", "InceptionBlock"):
        return dict(C=8, O=16, H=8, W=8)
    if name == "DepthwiseConv":
        return dict(C=8, K=3, H=8, W=8)
    if name == "Conv3d":
        return dict(C=4, O=8, K=3, T=4, H=8, W=8)
    if name == "Involution":
        return dict(C=16, K=3, H=8, W=8)
    fields = dict(C=8, O=16, H=8, W=8)
    if "K" in VARIANTS[name].__dataclass_fields__ and name != "FactorizedConv":
        fields["K"] = 3
    if "O" not in VARIANTS[name].__dataclass_fields__:  # blocks that keep their width (MixConv, ConvNeXt ...)
        del fields["O"]
    return fields


@st.composite
def bound_variant(draw):
    """A variant with a random subset of its fields bound to valid values (the rest stay symbolic)."""
    name = draw(st.sampled_from(sorted(VARIANTS)))
    cls = VARIANTS[name]
    fields = {}
    for field in cls.__dataclass_fields__:
        if field in FIELD_VALUES and draw(st.booleans()):
            fields[field] = draw(FIELD_VALUES[field])
    if name in ("FactorizedConv",):
        fields.pop("K", None)
        fields.pop("P", None)
    if "G" in fields and "C" in fields and "O" in fields:
        fields["C"], fields["O"] = fields["C"] * fields["G"], fields["O"] * fields["G"]
    elif "G" in fields:
        fields.pop("G")
    if name == "SqueezeExcitation" and "C" in fields and "r" in fields:
        fields["C"] = fields["C"] * fields["r"]
    try:
        return cost(cls, **fields)
    except ConvcostError:  # e.g. a kernel wider than the input: not what this property is about
        from hypothesis import assume

        assume(False)


@given(bound_variant(), st.sampled_from(ALL_METRICS))
def test_every_formula_parses_back(c, metric):
    d = derive(c, metric)
    assert d.steps[-1].rhs == metric_of(c, metric)
    _check_parses_back(d)


def test_general_forms_parse_back():
    for cls in VARIANTS.values():
        _check_parses_back(derive(cls))


def test_bound_values_show_the_substitution_and_the_number():
    d = derive(cost(SeparableConv, C=64, O=128, K=3), "params")
    assert [s.tex() for s in d.steps if s.kind == "substitution"] == [
        r"\Theta_{1} = \frac{64 \cdot 3^{2} \cdot 64}{64} + 64",
        r"\Theta_{2} = \frac{64 \cdot 1^{2} \cdot 128}{1} + 128",
        r"\Theta = 640 + 8320",
    ]
    assert d.steps[-1].rhs == 8960 == 3 * 3 * 64 + 64 + 64 * 128 + 128


def test_subs_bindings_are_substituted():
    c = cost(StandardConv, C=3, O=32, K=3, P=1).subs(H=32, W=32)
    d = derive(c, "macs")
    sub = [s for s in d.steps if s.kind == "substitution"][0]
    assert "H = 32" in sub.note and d.steps[-1].rhs == 884736 == 32 * 32 * 32 * 3 * 9


def test_definitions_come_from_the_primitive_cost_not_a_copy():
    # the definition of a part is the same primitive costed on glossary symbols
    from convcost.primitives import Conv
    from convcost.symbols import C, H, N, W

    d = derive(cost(SeparableConv), "params")
    assert d.steps[0].rhs == Conv.general().cost((N, C, H, W)).params


def test_gated_parts_have_a_condition_step():
    d = derive(cost(VARIANTS["InvertedResidual"]), "elementwise_ops")
    assert "condition" in [s.kind for s in d.steps] or isinstance(d.steps[-1].rhs, sympy.Piecewise)
    assert d.steps[-1].rhs.has(sympy.Piecewise)


def test_derive_of_a_cost_and_jupyter():
    c = cost(SeparableConv, C=64, O=128, K=3)
    assert derive(c).steps[-1].rhs == c.macs
    shown = derive(c)._repr_latex_()
    assert shown.startswith("$$\\begin{aligned}") and "8960" in shown


def test_markdown_has_prose_labels_and_display_math():
    md = derive(cost(SeparableConv, C=64, O=128, K=3)).markdown()
    assert "Substitution (C = 64, O = 64, K = 3, G = 64):" in md
    assert "$$\\Theta = 8960$$" in md


@pytest.mark.parametrize(
    "bad",
    [lambda: derive("SeparableConv"), lambda: derive(cost(SeparableConv), "speed"),
     lambda: derive(cost(SeparableConv)).render("pdf")],
)
def test_bad_input_is_one_error(bad):
    with pytest.raises(ConvcostError):
        bad()


def test_cli(capsys):
    assert main(["derive", "SeparableConv", "C=64", "O=128", "K=3", "--format", "md"]) == 0
    assert "$$\\Theta = 8960$$" in capsys.readouterr().out
    assert main(["derive", "Separable"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["derive", "SeparableConv", "--format", "docx"]) == 2
    assert "--format 'docx' is not known" in capsys.readouterr().err
    assert main(["derive", "SeparableConv", "C=64", "--document"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\\documentclass") and out.rstrip().endswith("\\end{document}")


def test_docs_derivations_is_current(golden):
    from convcost.cli.derive import all_variants

    # also: convcost derive --all --format md > docs/derivations.md
    golden(ROOT / "docs" / "derivations.md", all_variants("md"))


GOLDEN_CASES = {
    "separable_c64_o128_k3.tex": lambda: derive(cost(SeparableConv, C=64, O=128, K=3)).latex() + "\n",
    "asymmetric_general_params.md": lambda: derive(VARIANTS["AsymmetricConv"], "params").markdown(),
    "inverted_residual_c16_t6.tex": lambda: derive(cost(VARIANTS["InvertedResidual"], C=16, O=16, t=6, H=56,
                                                        W=56)).latex() + "\n",
    "standard_general.tex": lambda: derive(StandardConv).latex() + "\n",
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name, golden):
    golden(GOLDEN / name, GOLDEN_CASES[name]())


@pytest.mark.parametrize("spec", [SeparableConv(C=64, O=128, K=3), VARIANTS["InvertedResidual"].general()])
def test_document_compiles_with_pdflatex(tmp_path, spec):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (Debian: apt-get install texlive-latex-base texlive-latex-recommended)")
    (tmp_path / "d.tex").write_text(derive(spec).document())
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "d.pdf").read_bytes().startswith(b"%PDF")
    pages = re.search(r"Output written on d\.pdf \((\d+) pages?", run.stdout)
    assert pages and int(pages.group(1)) >= 1, run.stdout[-2000:]


def test_the_parse_back_check_can_fail():
    from convcost.symbols import C, K

    theta = sympy.Symbol("Theta")
    assert _parsed_equal(r"\Theta = 3 \cdot C \cdot K^{2}", sympy.Eq(theta, 3 * C * K**2, evaluate=False))
    assert not _parsed_equal(r"\Theta = 3 \cdot C \cdot K^{3}", sympy.Eq(theta, 3 * C * K**2, evaluate=False))
    assert not _parsed_equal(r"A = 3 \cdot C \cdot K^{2}", sympy.Eq(theta, 3 * C * K**2, evaluate=False))
    assert not _parsed_equal(r"\left\lfloor{\frac{C}{2}}\right\rfloor", C / 2)


def _seed_004():
    from convcost import AsymmetricConv
    from convcost.breakeven import break_even

    return break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")


def test_break_even_derivation_is_seed_004_made_exact():
    be = _seed_004()
    d = derive(be)
    kinds = [s.kind for s in d.steps]
    assert kinds[:2] == ["definition", "definition"] and kinds[-2:] == ["result", "approximation"]
    assert d.steps[0].rhs == be.comparison.value_a and d.steps[1].rhs == be.comparison.value_b
    difference = [s for s in d.steps if s.lhs == sympy.Symbol("Delta") and s.kind != "definition"]
    assert all(sympy.expand(s.rhs - (be.comparison.value_a - be.comparison.value_b)) == 0 for s in difference)
    condition = next(s for s in d.steps if s.kind == "condition")
    assert condition.relation == be.condition
    assert d.steps[-2].relation == be.solution and d.steps[-1].relation == be.rule_of_thumb
    _check_parses_back(d)
    with pytest.raises(ConvcostError):
        derive(be, "macs")


@pytest.mark.parametrize("name", ["seed_004_break_even.tex"])
def test_golden_break_even(name, golden):
    golden(GOLDEN / name, derive(_seed_004()).latex() + "\n")
