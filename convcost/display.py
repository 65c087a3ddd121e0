"""How convcost writes numbers, formulas, conditions and specs for people, and numbers for JSON.

One format everywhere (the CLI, result objects' text, JSON):

* an integer has thousands separators in text (``8,960``) and is a JSON integer;
* an exact non-integer number is a float in text and JSON, with the exact rational
  beside it in a field named ``..._exact`` (JSON) or in brackets (text);
* a formula prints as the glossary writes it (sympy's ``str``: ``C*K**2*O/G + O``), nests of ``floor``
  collapsed into one ``floor`` or ``ceiling`` where that is exact (:func:`readable`), a case split as
  ``(a if t != 1 else b)``, never as ``Piecewise((a, t != 1), (b, True))``;
* a condition prints as text, ``C mod G = 0``, never as ``Eq(Mod(C, G), 0)``;
* a spec prints its bound fields, and names what is still symbolic.

>>> import sympy
>>> from convcost.symbols import C, G, H
>>> number(8960), number(sympy.Rational(25375, 288))
('8,960', '88.11 (exactly 25375/288)')
>>> condition(sympy.Eq(sympy.Mod(C, G), 0)), condition(H >= 5)
('C mod G = 0', 'H >= 5')
>>> json_fields("ratio", sympy.Rational(70, 577))
{'ratio': 0.12131715771230503, 'ratio_exact': '70/577'}
>>> json_fields("macs", sympy.Integer(25567488)), json_fields("macs", 8768 * (H - 2))
({'macs': 25567488}, {'macs': '8768*H - 17536'})
>>> seconds(2.5e-5), seconds(0.0123), seconds(3.2)
('25.0 µs', '12.3 ms', '3.20 s')
>>> size(209250680), size(512)
('209,250,680 bytes (199.6 MiB)', '512 bytes')
"""

from __future__ import annotations

import dataclasses

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter


class _TextPrinter(StrPrinter):
    """sympy's ``str``, with conditions as words: ``C mod G = 0``, ``K != 1``, ``a and b``."""

    def _print_Mod(self, expr):
        a, b = expr.args
        level = precedence(expr)
        return f"{self.parenthesize(a, level)} mod {self.parenthesize(b, level + 1)}"

    def _print_Relational(self, expr):
        op = {"==": "=", "!=": "!="}.get(expr.rel_op)
        if op is None:
            return super()._print_Relational(expr)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _logic(self, expr, word):
        return f" {word} ".join(
            f"({self._print(a)})" if isinstance(a, (sympy.And, sympy.Or)) else self._print(a) for a in expr.args
        )

    def _print_And(self, expr):
        return self._logic(expr, "and")

    def _print_Or(self, expr):
        return self._logic(expr, "or")

    def _print_Not(self, expr):
        return f"not ({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        pieces = [f"{self._print(e)} if {self._print(c)}" for e, c in expr.args[:-1]]
        last, cond = expr.args[-1]
        tail = self._print(last) if cond == sympy.true else f"{self._print(last)} if {self._print(cond)}"
        return "(" + " else ".join([*pieces, tail]) + ")"


_PRINTER = _TextPrinter()


def formula(expr) -> str:
    """A count or formula as text: sympy's ``str`` of :func:`readable`, conditions inside it as words, a case
    split as ``a if condition else b``.

    >>> from convcost.symbols import C, G, H, K, O, t
    >>> formula(C * K**2 * O / G + O)
    'C*K**2*O/G + O'
    >>> formula(64 + sympy.Piecewise((1088 * t, sympy.Ne(t, 1)), (0, True)))
    '(1088*t if t != 1 else 0) + 64'
    >>> formula(sympy.Piecewise((1088 * t, sympy.Ne(t, 1)), (0, True)))
    '1088*t if t != 1 else 0'
    >>> formula(sympy.floor(sympy.floor(H / 2 - sympy.Rational(1, 2)) / 2) + 1)
    'ceiling(H/4)'
    """
    text = _PRINTER.doprint(readable(expr))
    if isinstance(sympy.sympify(expr), sympy.Piecewise) and text.startswith("(") and text.endswith(")"):
        return text[1:-1]  # a case split alone needs no brackets
    return text


def latex(expr) -> str:
    """LaTeX of a count or condition for Jupyter: sympy's, of :func:`readable` (floor nests as one).

    >>> from convcost.symbols import H
    >>> print(latex(sympy.floor(sympy.floor(H / 2 - sympy.Rational(1, 2)) / 2) + 1))
    \\left\\lceil{\\frac{H}{4}}\\right\\rceil
    """
    return sympy.latex(readable(expr))


def readable(expr):
    """``expr`` with its ``floor`` and ``ceiling`` nests written as one, where that is exact: ``floor(floor(u)/n
    + r)`` is ``floor(u/n + r)`` for a positive integer ``n`` and integer ``n r``, and ``floor(A/d)`` of an
    integer ``A`` is ``ceiling((A - d + 1)/d)``, taken where it is shorter. Nothing else changes.

    >>> from convcost.symbols import H, W
    >>> half = sympy.floor(H / 2 - sympy.Rational(1, 2))   # a stride-2 convolution, kernel 7, padding 3
    >>> readable(half + 1), readable(sympy.floor(sympy.floor(sympy.floor(half / 2) / 2) / 2) + 1)
    (ceiling(H/2), ceiling(H/16))
    >>> readable((9408 * half + 9408) * (sympy.floor(W / 2 - sympy.Rational(1, 2)) + 1))
    9408*ceiling(H/2)*ceiling(W/2)
    """
    expr = sympy.sympify(expr)
    if not isinstance(expr, sympy.Basic) or not expr.has(sympy.floor, sympy.ceiling):
        return expr
    expr = expr.replace(lambda x: isinstance(x, sympy.ceiling), _to_floor)
    expr = expr.replace(lambda x: isinstance(x, sympy.floor), _collapse)
    return expr.replace(lambda x: isinstance(x, sympy.floor), _shorter)


def _fraction(arg):
    """``(A, d)`` with ``arg = A/d``, ``A`` integer-valued and ``d`` a positive integer; None where it is not."""
    num, den = sympy.together(arg).as_numer_denom()
    num = sympy.expand(num)
    if den.is_Integer and den != 0 and num.is_integer:
        return (num, den) if den > 0 else (-num, -den)
    return None


def _to_floor(f):
    found = _fraction(f.args[0])
    if found is None:
        return f
    num, den = found
    return sympy.floor((num + den - 1) / den)  # ceiling(A/d) = floor((A + d - 1)/d) for an integer A


def _collapse(f):
    inner, rest = [], []
    for term in sympy.Add.make_args(sympy.expand(f.args[0])):
        c, g = term.as_coeff_Mul()
        if isinstance(g, sympy.floor) and c.is_Rational and c > 0 and c.p == 1:
            inner.append((c.q, g))
        else:
            rest.append(term)
    if len(inner) != 1:
        return f
    n, g = inner[0]
    r = sympy.Add(*rest)
    if not (n * r).is_integer:
        return f
    return sympy.floor(g.args[0] / n + r)  # floor(floor(u)/n + r) = floor(u/n + r): n r is an integer


def _shorter(f):
    found = _fraction(f.args[0])
    if found is None:
        return f
    num, den = found
    other = sympy.ceiling((num - den + 1) / den)
    return other if sympy.count_ops(other) < sympy.count_ops(f) else f


def condition(cond) -> str:
    """A condition a cost carries, as text (``C mod G = 0``, ``H >= 5``)."""
    return formula(cond)


def number(value) -> str:
    """A count for people: ``8,960``; a non-integer as 4 significant digits and its exact value; a formula as text."""
    value = sympy.sympify(value)
    if value.is_Integer:
        return f"{int(value):,}"
    if value.is_Rational:
        return f"{_short(float(value))} (exactly {value})"
    if value.is_number and value.is_real:
        return f"{_short(float(value))} (exactly {formula(value)})"
    return formula(value)


def percent(value) -> str:
    """A percentage for people: ``87.87%`` where it is a number, else the formula."""
    value = sympy.sympify(value)
    if value.is_number and value.is_real:
        return f"{float(value):.2f}%"
    return f"{formula(value)} %"


def json_value(value):
    """A count for JSON: an int, a float (an exact non-integer; see :func:`json_fields`) or a formula string."""
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    value = sympy.sympify(value)
    if value.is_Integer:
        return int(value)
    if value.is_number and value.is_real:
        return float(value)
    return formula(value)


def json_fields(name: str, value) -> dict:
    """``{name: value}`` for JSON, plus ``name_exact`` (the exact rational or closed form) when ``value`` is
    a non-integer number."""
    out = {name: json_value(value)}
    if not isinstance(value, tuple):
        value = sympy.sympify(value)
        if value.is_number and not value.is_Integer:
            out[f"{name}_exact"] = formula(value)
    return out


def spec(layer) -> str:
    """A layer as text: its bound fields, then the ones still symbolic; ``Name(general)`` when every field
    that can be a symbol is one.

    >>> from convcost import StandardConv, SeparableConv
    >>> spec(StandardConv.general()), spec(SeparableConv(C=64, O=128, K=3))
    ('StandardConv(general)', 'SeparableConv(C=64, O=128, K=3)')
    >>> from convcost.symbols import G
    >>> spec(StandardConv(C=64, G=G))
    'StandardConv(C=64; symbolic: G)'
    """
    if layer is None:
        return "a cost"
    if not dataclasses.is_dataclass(layer) or isinstance(layer, type):
        return repr(layer)
    name = type(layer).__name__
    general = getattr(type(layer), "general", None)
    if general is not None:
        try:
            if layer == general():
                return f"{name}(general)"
        except Exception:  # noqa: BLE001 - a layer without a general form: show its fields
            pass
    bound, symbolic = [], []
    last = getattr(layer, "_shown_last", ())
    for f in sorted(dataclasses.fields(layer), key=lambda f: f.name in last):
        if not f.init:
            continue
        value = getattr(layer, f.name)
        if f.default is not dataclasses.MISSING and _same(value, f.default):
            continue
        if isinstance(value, sympy.Symbol) and value.name == f.name:
            symbolic.append(f.name)  # its own glossary symbol: shown as "symbolic", not as G=G
            continue
        bound.append(f"{f.name}={_field(value)}")
    text = ", ".join(bound)
    if symbolic:
        text += ("; " if text else "") + "symbolic: " + ", ".join(symbolic)
    return f"{name}({text})"


def size(value) -> str:
    """Bytes for people: the exact count, and beside it the size in KiB, MiB, GiB or TiB (powers of 1024).

    >>> size(44680), size(25769803776)
    ('44,680 bytes (43.6 KiB)', '25,769,803,776 bytes (24.0 GiB)')
    >>> from convcost.symbols import N
    >>> size(432 * N + 3592)
    '432*N + 3592 bytes'
    """
    value = sympy.sympify(value)
    if not value.is_Integer:
        return f"{formula(value)} bytes"
    n = int(value)
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n:,} bytes ({n / scale:,.1f} {unit})"
    return f"{n:,} bytes"


def html_lines(text: str) -> str:
    """A result's text as an HTML table for Jupyter: ``name = value`` lines as two cells (the value right-aligned),
    the first line as the heading, any other line across both cells.

    >>> table = html_lines("params: A vs B\\n  A       = 73,856\\n  valid when H >= 3")
    >>> table.split("</tr>")[0]
    "<table><tr><th colspan='2' style='text-align:left'>params: A vs B</th>"
    >>> table.split("</tr>")[1]
    "<tr><td style='text-align:left'>A</td><td style='text-align:right'>73,856</td>"
    >>> table.split("</tr>")[2]
    "<tr><td colspan='2' style='text-align:left'>valid when H &gt;= 3</td>"
    """
    import html

    lines = text.splitlines()
    rows = [f"<tr><th colspan='2' style='text-align:left'>{html.escape(lines[0])}</th></tr>"] if lines else []
    for line in lines[1:]:
        name, sep, value = line.strip().partition(" = ")
        if sep and name.strip().replace("/", "").replace(" ", "").isalnum() and len(name.strip()) <= 12:
            rows.append(f"<tr><td style='text-align:left'>{html.escape(name.strip())}</td>"
                        f"<td style='text-align:right'>{html.escape(value.strip())}</td></tr>")
        else:
            rows.append(f"<tr><td colspan='2' style='text-align:left'>{html.escape(line.strip())}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def html_rows(caption: str, head: tuple, rows: list, left: int = 1) -> str:
    """Rows of text as an HTML table for Jupyter: a caption, a header, the first ``left`` columns left-aligned
    and the rest (numbers) right-aligned.

    >>> for row in html_rows("a & b", ("name", "time"), [("conv", "3 µs")]).split("</tr>"):
    ...     print(row)
    <table><caption>a &amp; b</caption><tr><th style='text-align:left'>name</th><th style='text-align:right'>time</th>
    <tr><td style='text-align:left'>conv</td><td style='text-align:right'>3 µs</td>
    </table>
    """
    import html

    def cells(tag, cols):
        return "".join(f"<{tag} style='text-align:{'left' if i < left else 'right'}'>{html.escape(str(c))}</{tag}>"
                       for i, c in enumerate(cols))

    body = "".join(f"<tr>{cells('td', r)}</tr>" for r in rows)
    return f"<table><caption>{html.escape(caption)}</caption><tr>{cells('th', head)}</tr>{body}</table>"


def seconds(value: float) -> str:
    """A time in human units: ns, µs, ms or s, three significant digits."""
    if value != value or value in (float("inf"), float("-inf")):
        return f"{value} s"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(value) >= scale:
            return f"{_three(value / scale)} {unit}"
    return f"{_three(value / 1e-9)} ns"


def latex_text(text: str) -> str:
    """``text`` escaped for LaTeX's ``\\text{}``.

    >>> print(latex_text("C_1 & 50%"))
    C\\_1 \\& 50\\%
    """
    for a, b in (("\\", r"\textbackslash "), ("{", r"\{"), ("}", r"\}"), ("_", r"\_"), ("&", r"\&"),
                 ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("^", r"\^{}"), ("~", r"\~{}")):
        text = text.replace(a, b)
    return text


def _three(x: float) -> str:
    return f"{x:.{max(0, 2 - len(str(int(abs(x)))) + 1)}f}" if abs(x) < 1000 else f"{x:,.0f}"


def _short(x: float) -> str:
    return f"{x:,.4g}" if abs(x) < 1e15 else f"{x:.4g}"


def _field(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_field(v) for v in value) + ")"
    return formula(value) if isinstance(value, sympy.Basic) else str(value)


def _same(a, b) -> bool:
    if type(a) is not type(b) and (isinstance(a, (bool, str)) or isinstance(b, (bool, str))):
        return False
    if isinstance(a, tuple) is not isinstance(b, tuple):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # an array's comparison has no single truth
        return False
