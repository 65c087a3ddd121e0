"""Algorithms that run a convolution: direct, im2col, Winograd and FFT, each an exact cost model.

A convolution layer says *what* is computed; an algorithm says *how*. Each
function here takes a convolution (:class:`convcost.primitives.Conv`, or a
variant that is one, such as :class:`convcost.StandardConv`) and an input
shape (the spec's default input when left out) and returns an
:class:`AlgorithmCost`: ``multiplications``, ``additions`` and
``workspace_elements``, each an exact closed form while fields are symbols
and an exact integer once they are bound. The direct convolution's products
and output size come from the layer's own cost (``spec.cost(shape)``), so no
convolution formula is written here again.

``direct``
    multiplications = the layer's MACs; additions = MACs - output elements
    (each output sums its ``C/G prod(K)`` products; bias not counted, as in
    convcost's MACs); no workspace.
``im2col``
    the same GEMM arithmetic; workspace = the unfolded input,
    ``N C prod(K) prod(out)`` elements, which is ``F.unfold(x, ...).numel()``
    (all C channels unfolded once; group ``g`` multiplies its ``C/G prod(K)`` rows).
``winograd``
    F(m x m, 3 x 3) for m = 2, 4, 6 on a stride-1, dilation-1 2-D conv:
    elementwise multiplications ``N ceil(H'/m) ceil(W'/m) (m+r-1)^2 C O / G``;
    transform additions counted row by row on the matrices of
    :func:`winograd_matrices` (see :func:`transform_counts`).
``fft``
    a stride-1, dilation-1 conv by FFT at the padded size: per axis the next
    power of two at least ``H + 2P``; complex pointwise products; radix-2
    transforms of ``n`` points costing ``n log2 n`` complex additions and
    ``(n/2) log2 n`` complex multiplications.

>>> from convcost.primitives import Conv
>>> conv = Conv(C=64, O=64, K=3, P=1)
>>> shape = (1, 64, 48, 48)
>>> [direct(conv, shape).ratio(winograd(conv, shape, m=m)) for m in (2, 4, 6)]   # Lavin and Gray
[9/4, 4, 81/16]
>>> im2col(conv, shape).workspace_elements
1327104
>>> winograd(Conv(C=64, O=64, K=3, S=2), (1, 64, 48, 48))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: winograd F(2x2,3x3) of Conv(C=64, O=64, K=3, S=2): stride S=2 must be 1 (the tiles of F(m x m, r x r) are computed at every position)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction

import sympy

from convcost.breakeven import BreakEven, solve_comparison
from convcost.compare import Comparison, simplest
from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.layers import Layer
from convcost.primitives import Conv
from convcost.shapes import as_shape, numel, per_axis, same_padding

#: the Winograd tile sizes whose matrices this module derives, for the 3 x 3 filter
WINOGRAD_TILES = (2, 4, 6)
WINOGRAD_FILTER = 3

#: interpolation points of the Cook-Toom construction, taken in this order (with the point at infinity):
#: the points of Lavin and Gray's F(2,3) and F(4,3) and of the usual F(6,3)
WINOGRAD_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))

#: a complex multiplication is 4 real multiplications and 2 real additions; a complex addition 2 real additions
COMPLEX_TO_REAL = {"multiplication": (4, 2), "addition": (0, 2)}

#: quantities :func:`break_even` compares; ``"a+b"`` sums several
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
        >>> winograd(Conv(C=1, O=1, K=3), (1, 1, 4, 4)).quantity("multiplications+transform_additions")
        100
        """
        names = name.split("+") if isinstance(name, str) else [name]
        unknown = [n for n in names if n not in QUANTITIES]
        if unknown:
            raise ConvcostError(f"unknown quantity {unknown[0]!r}; known: {', '.join(QUANTITIES)} (or several joined by +)")
        return sympy.Add(*(getattr(self, n) for n in names))

    def ratio(self, other: AlgorithmCost) -> sympy.Expr:
        """``self.multiplications / other.multiplications``: how many times fewer ``other`` uses.

        >>> from convcost.primitives import Conv
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


# -- the convolution an algorithm runs --------------------------------------------------
def conv_of(spec) -> Conv:
    """The one :class:`Conv` a spec is: the spec itself, or the single conv of a variant.

    >>> from convcost import StandardConv, SeparableConv
    >>> conv_of(StandardConv(C=3, O=8, K=3))
    Conv(C=3, O=8, K=3)
    >>> conv_of(SeparableConv(C=3, O=8, K=3))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: SeparableConv(C=3, O=8, K=3): an algorithm runs one convolution; this is depthwise then pointwise (cost each Conv on its own input)
    """
    if isinstance(spec, Conv):
        return spec
    if isinstance(spec, Layer) and hasattr(spec, "layers"):
        parts = getattr(spec.layers(), "parts", ())
        if len(parts) == 1 and isinstance(parts[0][1], Conv):
            return parts[0][1]
        names = " then ".join(name for name, _ in parts) or "not one Conv"
        raise ConvcostError(f"{spec!r}: an algorithm runs one convolution; this is {names} "
                            f"(cost each Conv on its own input)")
    raise ConvcostError(f"{spec!r}: give a convolution (convcost.primitives.Conv or a variant such as StandardConv)")


def _layer_cost(spec, input_shape) -> tuple[Conv, tuple, Cost]:
    conv = conv_of(spec)
    if input_shape is None:
        shape = spec.default_input()
    else:
        shape = as_shape(input_shape, spec)
    return conv, tuple(sympy.sympify(x) for x in shape), conv.cost(shape)


def _fields(conv: Conv, *names) -> tuple:
    """Fields as sympy values, so that ``C / G`` is exact even if a spec holds Python ints."""
    return tuple(sympy.sympify(getattr(conv, name)) for name in names)


def _spatial_out(cost: Cost) -> tuple:
    return tuple(sympy.sympify(x) for x in cost.output_shape[2:])


# -- direct and im2col ------------------------------------------------------------------
def direct(spec, input_shape=None) -> AlgorithmCost:
    """The direct convolution: one product per output position, input channel of its group and kernel tap.

    >>> from convcost import StandardConv
    >>> c = direct(StandardConv(C=3, O=8, K=3, H=5, W=5))
    >>> c.multiplications, c.additions, c.workspace_elements
    (1944, 1872, 0)
    """
    conv, shape, layer = _layer_cost(spec, input_shape)
    return _gemm_like("direct", spec, shape, layer, workspace=(),
                      rule="products = the layer's MACs (conv.cost); each output sums its C/G prod(K) products "
                           "(bias not counted); no workspace")


def im2col(spec, input_shape=None) -> AlgorithmCost:
    """im2col then GEMM: the direct convolution's products, after unfolding the input.

    The workspace is the unfolded input, ``N x (C prod(K)) x prod(out)``:
    ``torch.nn.functional.unfold(x, K, dilation=D, padding=P, stride=S).numel()``.
    With groups the whole input is unfolded once and group ``g``'s GEMM reads
    its ``C/G prod(K)`` rows.

    >>> from convcost.primitives import Conv
    >>> c = im2col(Conv(C=4, O=8, K=3, P=1, G=2), (2, 4, 6, 6))
    >>> c.multiplications, c.workspace_elements   # 2*8*36*(2*9) and 2*(4*9)*36
    (10368, 2592)
    """
    conv, shape, layer = _layer_cost(spec, input_shape)
    taps = sympy.Mul(*per_axis(conv.K, conv.dims, conv, "K"))
    (channels,) = _fields(conv, "C")
    unfolded = shape[0] * channels * taps * numel(_spatial_out(layer))
    return _gemm_like("im2col", spec, shape, layer, workspace=(("unfolded input", unfolded),),
                      rule="a GEMM per group of (O/G) x (C/G prod(K)) weights by (C/G prod(K)) x (N prod(out)) "
                           "columns: products = the layer's MACs; workspace = the unfolded input "
                           "N C prod(K) prod(out) (F.unfold(...).numel(), all groups unfolded once)")


def _gemm_like(name, spec, shape, layer: Cost, workspace, rule) -> AlgorithmCost:
    macs = sympy.sympify(layer.macs)
    outputs = numel(layer.output_shape)
    return AlgorithmCost(
        algorithm=name,
        spec=spec,
        input_shape=shape,
        output_shape=tuple(layer.output_shape),
        multiplications=macs,
        additions_by_stage=(("accumulation", simplest(macs - outputs)),),
        constant_multiplications_by_stage=(),
        workspace_by_buffer=workspace,
        rule=rule,
        conditions=tuple(layer.conditions),
    )


# -- Winograd ---------------------------------------------------------------------------
@functools.cache
def winograd_matrices(m: int, r: int = WINOGRAD_FILTER) -> dict:
    """The Cook-Toom matrices ``A^T`` (m x n), ``G`` (n x r), ``B^T`` (n x n) of F(m, r), n = m + r - 1.

    F(m, r) computes ``y_k = sum_j g_j d_{k+j}`` (k < m) as
    ``y = A^T [(G g) * (B^T d)]``, and in 2-D ``Y = A^T [(G g G^T) * (B^T d B)] A``.
    Built from the first ``n - 1`` of :data:`WINOGRAD_POINTS` and the point at
    infinity, by Winograd's construction as Lavin and Gray (2016) use it:

    * ``A^T``: column ``i`` is ``(1, a_i, ..., a_i^(m-1))``; the last column is ``e_(m-1)``.
    * ``G``: row ``i`` is ``f_i (1, a_i, ..., a_i^(r-1))`` with ``f_i = 1 / prod_(j != i) (a_i - a_j)``;
      the last row is ``e_(r-1)``.
    * ``B^T``: row ``i`` the coefficients of ``prod_(j != i) (x - a_j)``, the last row those of
      ``prod_j (x - a_j)`` (low powers first). That is ``V^-T`` for the evaluation matrix ``V``, the
      transpose of the interpolation step, so F(m, r) is the transposed linear convolution.

    Each ``B^T`` row is scaled to coprime integers and ``G``'s row takes the inverse factor
    (positive, the sign staying on ``B^T``), so the product is unchanged: for F(2, 3) and F(4, 3)
    the nonzero entries are where Lavin and Gray print them. Entries are :class:`fractions.Fraction`.

    >>> F23 = winograd_matrices(2)
    >>> [[str(v) for v in row] for row in F23["BT"]]
    [['1', '0', '-1', '0'], ['0', '1', '1', '0'], ['0', '-1', '1', '0'], ['0', '-1', '0', '1']]
    >>> [[str(v) for v in row] for row in F23["G"]]
    [['1', '0', '0'], ['1/2', '1/2', '1/2'], ['1/2', '-1/2', '1/2'], ['0', '0', '1']]
    >>> [[str(v) for v in row] for row in F23["AT"]]
    [['1', '1', '1', '0'], ['0', '1', '-1', '1']]
    """
    if not isinstance(m, int) or isinstance(m, bool) or not isinstance(r, int) or isinstance(r, bool) or m < 1 or r < 1:
        raise ConvcostError(f"winograd_matrices(m={m!r}, r={r!r}): m and r must be positive integers")
    n = m + r - 1
    if n - 1 > len(WINOGRAD_POINTS):
        raise ConvcostError(f"F({m},{r}) needs {n - 1} finite interpolation points; this module has "
                            f"{len(WINOGRAD_POINTS)} ({', '.join(map(str, WINOGRAD_POINTS))})")
    points = [Fraction(a) for a in WINOGRAD_POINTS[: n - 1]]
    AT = [[a**i for a in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    G, BT = [], []
    for i, a in enumerate(points):
        others = points[:i] + points[i + 1:]
        row = _coefficients(others) + [Fraction(0)]
        scale = _integer_scale(row)
        weight = 1 / math.prod(a - b for b in others) / scale
        if weight < 0:  # as Lavin's wincnn does: G's factor positive, the sign on B^T
            scale, weight = -scale, -weight
        BT.append([v * scale for v in row])
        G.append([weight * a**j for j in range(r)])
    last = _coefficients(points)
    scale = _integer_scale(last)
    BT.append([v * scale for v in last])
    G.append([Fraction(int(j == r - 1)) / scale for j in range(r)])
    return {"AT": AT, "G": G, "BT": BT, "m": m, "r": r, "n": n, "points": tuple(points)}


def _coefficients(roots) -> list:
    """Coefficients of ``prod (x - a)`` over ``roots``, constant term first."""
    coeffs = [Fraction(1)]
    for a in roots:
        shifted = [Fraction(0)] + coeffs
        coeffs = [s - a * c for s, c in zip(shifted, coeffs + [Fraction(0)])]
    return coeffs


def _integer_scale(row) -> Fraction:
    """The positive factor that makes ``row`` coprime integers."""
    lcm = math.lcm(*(v.denominator for v in row))
    return Fraction(lcm, math.gcd(*(int(v * lcm) for v in row)))


def _row_additions(matrix) -> int:
    """Additions of ``matrix @ x`` evaluated row by row: a row with k nonzero entries adds k - 1 terms."""
    return sum(max(sum(1 for v in row if v != 0) - 1, 0) for row in matrix)


def _constant_products(matrix) -> int:
    """Multiplications of ``matrix @ x`` by entries other than 0, 1 and -1."""
    return sum(1 for row in matrix for v in row if v not in (0, 1, -1))


def transform_counts(m: int, r: int = WINOGRAD_FILTER) -> dict:
    """Additions and constant multiplications of each 2-D transform of one tile of F(m x m, r x r).

    The rule: each 2-D transform is two passes of its 1-D matrix, evaluated
    row by row with no shared subexpressions (a row with k nonzero entries
    costs k - 1 additions and one multiplication per entry other than 0, +-1):

    * input ``B^T d B`` (d is n x n): ``B^T`` on n columns, then on n rows: ``2n`` passes of ``B^T``;
    * filter ``G g G^T`` (g is r x r): ``G`` on r columns, then on n rows: ``r + n`` passes of ``G``;
    * output ``A^T M A`` (M is n x n): ``A^T`` on n columns, then on m rows: ``n + m`` passes of ``A^T``.

    For F(2, 3) one pass costs 4 additions for ``B^T``, 4 for ``G`` and 4
    for ``A^T``, as Lavin and Gray count the 1-D F(2, 3) (their filter sum
    ``g0 + g2`` is shared, 3 additions; this rule does not share).

    >>> transform_counts(2)
    {'input transform': (32, 0), 'filter transform': (28, 42), 'output transform': (24, 0)}
    """
    mats = winograd_matrices(m, r)
    n = mats["n"]
    passes = {"input transform": ("BT", 2 * n), "filter transform": ("G", r + n), "output transform": ("AT", n + m)}
    return {stage: (count * _row_additions(mats[key]), count * _constant_products(mats[key]))
            for stage, (key, count) in passes.items()}


def winograd(spec, input_shape=None, m: int = 2) -> AlgorithmCost:
    """Winograd's minimal filtering F(m x m, 3 x 3), m in 2, 4, 6, on a stride-1, dilation-1 2-D conv.

    The output (N, O, H', W') is cut into ``ceil(H'/m) ceil(W'/m)`` tiles of
    m x m per image (the last tiles padded); per tile and channel pair the
    elementwise stage takes ``(m+r-1)^2`` products, so

    multiplications = N ceil(H'/m) ceil(W'/m) (m+r-1)^2 C O / G.

    Additions: the input transform once per input tile and channel, the
    filter transform once per filter (``O C/G``, every call: precomputed
    weights would drop it), the output transform once per output tile and
    channel (counts per tile from :func:`transform_counts`), and the
    accumulation over the ``C/G`` channels of a group at each of the
    ``(m+r-1)^2`` points. Workspace: the transformed input ``V``, filters
    ``U`` and products ``M``, ``(m+r-1)^2`` elements per tile and channel.

    >>> from convcost.primitives import Conv
    >>> c = winograd(Conv(C=1, O=1, K=3), (1, 1, 4, 4))   # one 2x2 tile: 16 products against 36
    >>> c.multiplications, dict(c.additions_by_stage)
    (16, {'input transform': 32, 'filter transform': 28, 'output transform': 24, 'accumulation': 0})
    >>> winograd(Conv(C=1, O=1, K=5), (1, 1, 8, 8))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: winograd F(2x2,3x3) of Conv(C=1, O=1, K=5): kernel K=5 is not the 3 x 3 filter the matrices F(m x m, 3 x 3) are for
    """
    r = WINOGRAD_FILTER
    name = f"winograd F({m}x{m},{r}x{r})" if isinstance(m, int) else "winograd"
    conv = conv_of(spec)
    where = f"{name} of {spec!r}"
    if not isinstance(m, int) or isinstance(m, bool) or m not in WINOGRAD_TILES:
        raise ConvcostError(f"{where}: m={m!r} is not a supported output tile; "
                            f"F(m x m, 3 x 3) is derived for m in {', '.join(map(str, WINOGRAD_TILES))}")
    if conv.dims != 2:
        raise ConvcostError(f"{where}: a {conv.dims}-D conv; F(m x m, r x r) tiles two spatial axes")
    conditions = ()
    for k, s, d in conv.axes():
        conditions += require(sympy.Eq(s, 1), where,
                              f"stride S={s} must be 1 (the tiles of F(m x m, r x r) are computed at every position)")
        conditions += require(sympy.Eq(d, 1), where, f"dilation D={d} must be 1 (the filter taps must be adjacent)")
        conditions += require(sympy.Eq(k, r), where,
                              f"kernel K={conv.K} is not the {r} x {r} filter the matrices F(m x m, {r} x {r}) are for")
    _, shape, layer = _layer_cost(spec, input_shape)
    out_h, out_w = _spatial_out(layer)
    n = m + r - 1
    batch, C, O, G = shape[0], *_fields(conv, "C", "O", "G")
    tiles = batch * sympy.ceiling(out_h / m) * sympy.ceiling(out_w / m)
    counts = transform_counts(m, r)
    per_stage = {"input transform": tiles * C, "filter transform": O * C / G, "output transform": tiles * O}
    additions = tuple((stage, per_stage[stage] * counts[stage][0]) for stage in per_stage)
    additions += (("accumulation", n**2 * tiles * O * (C / G - 1)),)
    constants = tuple((stage, per_stage[stage] * counts[stage][1]) for stage in per_stage)
    return AlgorithmCost(
        algorithm=name,
        spec=spec,
        input_shape=shape,
        output_shape=tuple(layer.output_shape),
        multiplications=tiles * n**2 * C * O / G,
        additions_by_stage=additions,
        constant_multiplications_by_stage=constants,
        workspace_by_buffer=(
            ("transformed input V", n**2 * tiles * C),
            ("transformed filters U", n**2 * O * C / G),
            ("products M", n**2 * tiles * O),
        ),
        rule=(f"N ceil(H'/{m}) ceil(W'/{m}) tiles of {m}x{m} outputs; {n}^2 products per tile and channel pair; "
              f"transforms evaluated row by row on the Cook-Toom matrices at points "
              f"{', '.join(map(str, WINOGRAD_POINTS[: n - 1]))}, infinity (winograd_matrices, transform_counts): "
              f"{counts['input transform'][0]} additions per input tile and channel, "
              f"{counts['filter transform'][0]} per filter, {counts['output transform'][0]} per output tile and channel"),
        conditions=tuple(layer.conditions) + conditions,
    )


# -- FFT --------------------------------------------------------------------------------
def fft_size(length):
    """The FFT length along one axis: the next power of two at least ``length``.

    >>> fft_size(56), fft_size(64), fft_size(65)
    (64, 64, 128)
    """
    return 2 ** _log2_ceiling(length)


def _log2_ceiling(length):
    length = sympy.sympify(length)
    if length.is_Integer:
        return sympy.Integer((int(length) - 1).bit_length())
    return sympy.ceiling(sympy.log(length, 2))


def fft(spec, input_shape=None) -> AlgorithmCost:
    """Convolution by FFT: transform, multiply pointwise, transform back; counted in complex arithmetic.

    The model: along each axis the padded input ``H + 2P`` (``H + D(K-1)``
    for ``"same"``) is zero-filled to ``L = 2^ceil(log2(H + 2P))``; a circular
    correlation of that length gives every valid output exactly, since no
    product wraps around before position ``H + 2P - K``. With ``n = prod L``
    points and ``e = sum log2 L``:

    * pointwise complex multiplications: ``N (C O / G) n``; their sums over the
      ``C/G`` channels of a group: ``N O n (C/G - 1)`` complex additions;
    * transforms: ``N C`` forward of the inputs, ``O C/G`` of the filters,
      ``N O`` inverse of the outputs, each a radix-2 FFT of ``n e`` complex
      additions and ``(n/2) e`` complex multiplications by twiddle factors
      (every butterfly's, trivial ones included);
    * workspace: the spectra, ``n`` complex elements per input channel, filter and output channel.

    Full complex transforms of real data (a real-input FFT would roughly halve
    transforms and products; not modelled).

    >>> from convcost.primitives import Conv
    >>> c = fft(Conv(C=1, O=1, K=3), (1, 1, 6, 6))   # 8x8 points: e = 6
    >>> c.multiplications, dict(c.additions_by_stage)["input transform"], c.constant_multiplications
    (64, 384, 576)
    """
    conv, shape, layer = _layer_cost(spec, input_shape)
    where = f"fft of {spec!r}"
    conditions = ()
    for k, s, d in conv.axes():
        conditions += require(sympy.Eq(s, 1), where, f"stride S={s} must be 1 (this model computes every position)")
        conditions += require(sympy.Eq(d, 1), where, f"dilation D={d} must be 1 (this model transforms a dense kernel)")
    if conv.P == "same":
        padded = [x + same_padding(k, d) for x, (k, _, d) in zip(shape[2:], conv.axes())]
    elif conv.P == "valid":
        padded = list(shape[2:])
    else:
        padded = [x + 2 * p for x, p in zip(shape[2:], per_axis(conv.P, conv.dims, conv, "P"))]
    exponents = [_log2_ceiling(x) for x in padded]
    points = sympy.Mul(*(2**e for e in exponents))
    log_points = sympy.Add(*exponents)
    batch, C, O, G = shape[0], *_fields(conv, "C", "O", "G")
    transforms = {"input transform": batch * C, "filter transform": O * C / G, "output transform": batch * O}
    sizes = " x ".join(f"2^{e}" if not sympy.sympify(e).is_Integer else str(2**e) for e in exponents)
    return AlgorithmCost(
        algorithm="fft",
        spec=spec,
        input_shape=shape,
        output_shape=tuple(layer.output_shape),
        multiplications=batch * C * O / G * points,
        additions_by_stage=tuple((k, v * points * log_points) for k, v in transforms.items())
        + (("accumulation", batch * O * points * (C / G - 1)),),
        constant_multiplications_by_stage=tuple((k, v * points * log_points / 2) for k, v in transforms.items()),
        workspace_by_buffer=(
            ("input spectra", batch * C * points),
            ("filter spectra", O * C / G * points),
            ("output spectra", batch * O * points),
        ),
        rule=(f"complex FFT of {sizes} points (per axis the next power of two >= the padded input); "
              f"radix-2: n log2 n complex additions and (n/2) log2 n complex multiplications per transform"),
        unit="complex",
        conditions=tuple(layer.conditions) + conditions,
    )


# -- break-even between algorithms ------------------------------------------------------
class _Named:
    """A label standing in for a spec in a comparison's display."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def compare_algorithms(A: AlgorithmCost, B: AlgorithmCost, quantity: str = "operations") -> Comparison:
    """B against A for one quantity (:data:`QUANTITIES`, or several joined by ``+``).

    Costs in different units are compared in real arithmetic (:meth:`AlgorithmCost.in_real_arithmetic`).

    >>> from convcost.primitives import Conv
    >>> conv = Conv(C=64, O=64, K=3, P=1)
    >>> compare_algorithms(direct(conv, (1, 64, 8, 8)), winograd(conv, (1, 64, 8, 8), m=2), "multiplications").ratio
    4/9
    """
    for X in (A, B):
        if not isinstance(X, AlgorithmCost):
            raise ConvcostError(f"compare_algorithms() needs AlgorithmCost results, got {X!r}")
    if A.unit != B.unit:
        A, B = A.in_real_arithmetic(), B.in_real_arithmetic()
    va, vb = sympy.sympify(A.quantity(quantity)), sympy.sympify(B.quantity(quantity))
    if va == 0:
        raise ConvcostError(f"{A.algorithm} has {quantity} = 0: there is nothing to compare against")

    def as_cost(X: AlgorithmCost, value) -> Cost:
        # break-even's machinery reads symbols and positive sizes off Costs; the compared value
        # rides in the macs slot, the output shape supplies the positive factors it may cancel
        return Cost(output_shape=X.output_shape, macs=value, conditions=X.conditions,
                    spec=_Named(f"{X.algorithm} of {X.spec!r}"))

    return Comparison(
        metric=quantity,
        A=as_cost(A, va),
        B=as_cost(B, vb),
        value_a=va,
        value_b=vb,
        ratio=simplest(vb / va),
        difference=simplest(va - vb),
        savings=simplest(100 * (va - vb) / va),
        conditions=tuple(dict.fromkeys((*A.conditions, *B.conditions))),
    )


def break_even(A: AlgorithmCost, B: AlgorithmCost, /, quantity: str = "operations", solve_for="K") -> BreakEven:
    """Where algorithm B costs no more than algorithm A, solved for one symbol (:func:`convcost.break_even`'s method).

    Winograd F(2x2,3x3) against direct on a 48x48 output: when do the
    transform additions cost less than the multiplications saved?

    >>> from convcost.primitives import Conv
    >>> from convcost.symbols import C, O
    >>> conv = Conv(C=C, O=O, K=3, P=1)
    >>> shape = (1, C, 48, 48)
    >>> be = break_even(direct(conv, shape), winograd(conv, shape, m=2),
    ...                 quantity="multiplications+transform_additions", solve_for="O")
    >>> be.condition
    2873*C*O - 4608*C - 3456*O >= 0
    >>> [be.holds(C=1, O=o) for o in (1, 10**6)], [be.holds(C=2, O=o) for o in (4, 5)]
    ([False, False], [False, True])
    """
    return solve_comparison(compare_algorithms(A, B, quantity), solve_for)


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


# -- the document ------------------------------------------------------------------------
def _math(expr) -> str:
    return "$" + sympy.latex(sympy.sympify(expr)) + "$"


def _fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _first_winning(be: BreakEven, fixed: dict, limit: int = 10**6):
    """The least value of the solved symbol from which B wins for good (exact checks), or None."""
    x = be.symbol.name
    if not be.holds(**fixed, **{x: limit}):
        return None
    roots = [r for r in be.threshold_at(**fixed) if float(r) <= limit]
    start = max([int(math.floor(float(r))) for r in roots], default=1)
    value = max(start - 2, 1)
    while not all(be.holds(**fixed, **{x: v}) for v in range(value, value + 3)):
        value += 1
    return value


def document() -> str:
    """docs/algorithms.md: the models, their formulas, the Lavin-Gray table and the break-evens.

    ``python -m convcost.algorithms > docs/algorithms.md`` writes it; a test checks it is current.
    """
    from convcost.symbols import D, G, H, K, N, O, P, S, W
    from convcost.symbols import C as C_

    out = ["# Algorithms that run a convolution", "",
           "Generated by `python -m convcost.algorithms > docs/algorithms.md` from the expressions of",
           "`convcost.algorithms`; a test checks that it is current.", "",
           "A convolution layer fixes *what* is computed; an algorithm fixes *how*. Each model returns",
           "`multiplications` (data times weights), `constant_multiplications` (by constants fixed in advance:",
           "transform matrix entries, twiddle factors), `additions` by stage and `workspace_elements` by buffer,",
           "exact closed forms in the symbols and exact integers once they are bound. The direct convolution's",
           "products and output size are the layer's own cost (`Conv.cost`), so the convolution formula is",
           "written once, in `convcost.primitives`. $H'$, $W'$ are the output height and width. A bias adds",
           "one addition per output whatever the algorithm; it is not counted here, as in convcost's MACs.", ""]

    general = Conv(C=C_, O=O, K=K, S=S, P=P, D=D, G=G)
    shape = (N, C_, H, W)
    g = im2col(general, shape)
    out += ["## Direct and im2col", "",
            "On `Conv(C, O, K, S, P, D, G)` (every field a symbol) and an input $(N, C, H, W)$:", "",
            f"* multiplications (the layer's MACs): {_math(g.multiplications)}",
            f"* additions (each output sums its $C K^2 / G$ products; bias not counted): {_math(g.additions)}",
            f"* im2col workspace, the unfolded input, `F.unfold(x, K, dilation=D, padding=P, stride=S).numel()`: "
            f"{_math(g.workspace_elements)}", "",
            "The direct convolution needs no workspace. With groups, im2col unfolds all $C$ channels once and",
            "group $g$'s GEMM reads its $C K^2 / G$ rows of the unfolded matrix.", ""]

    w3 = Conv(C=C_, O=O, K=3, P=P, G=G)
    out += ["## Winograd F(m x m, 3 x 3)", "",
            "Stride 1, dilation 1, a 3 x 3 filter, m = 2, 4 or 6 (anything else is refused with a",
            "`ConvcostError`). The output is cut into $\\lceil H'/m \\rceil \\lceil W'/m \\rceil$ tiles per image;",
            "each tile and channel pair takes $(m+r-1)^2$ products in the elementwise stage. The transforms are",
            "evaluated row by row with no shared subexpressions: a row with $k$ nonzero entries costs $k-1$",
            "additions, and one multiplication per entry other than $0, \\pm 1$. A 2-D transform is two passes:",
            "input $B^T d B$ is $2n$ passes of $B^T$, filter $G g G^T$ is $r + n$ passes of $G$, output",
            "$A^T M A$ is $n + m$ passes of $A^T$ ($n = m + r - 1$). The input transform runs once per input tile",
            "and channel, the filter transform once per filter (every call; precomputed weights drop it), the",
            "output transform once per output tile and channel; the accumulation adds the $C/G$ channels of a",
            "group at each of the $n^2$ points. Workspace: the transformed input $V$, filters $U$ and products $M$.",
            ""]
    for m in WINOGRAD_TILES:
        c = winograd(w3, shape, m=m)
        out += [f"### F({m}x{m}, 3x3) on `Conv(C, O, K=3, P, G)` and an input $(N, C, H, W)$", "",
                f"* multiplications: {_math(c.multiplications)}"]
        out += [f"* {stage} additions: {_math(v)}" for stage, v in c.additions_by_stage]
        out += [f"* {stage} constant multiplications: {_math(v)}" for stage, v in c.constant_multiplications_by_stage
                if sympy.sympify(v) != 0]
        out += [f"* workspace, {name}: {_math(v)}" for name, v in c.workspace_by_buffer]
        out.append("")

    out += ["### The matrices", "",
            "Derived by `winograd_matrices(m)` (Winograd's construction as Lavin and Gray use it) from the",
            "interpolation points $0, 1, -1, 2, -2, 1/2, -1/2$ (the first $n-1$) and the point at infinity;",
            "$y = A^T [(G g) \\odot (B^T d)]$. For F(2,3) and F(4,3) the nonzero entries are where Lavin and",
            "Gray (2016) print them (a row of $B^T$ and of $G$ may differ by a common sign). A test runs a literal",
            "F(m x m, 3 x 3) built on them, on exact fractions, against `torch.nn.functional.conv2d`, and counts",
            "the operations it performs.", ""]
    out += ["| tile | additions per pass B^T, G, A^T | input transform / tile | filter transform | "
            "output transform / tile | constant multiplications (input, filter, output) |",
            "|---|---|---|---|---|---|"]
    for m in WINOGRAD_TILES:
        mats, counts = winograd_matrices(m), transform_counts(m)
        passes = ", ".join(str(_row_additions(mats[k])) for k in ("BT", "G", "AT"))
        out.append(f"| F({m}x{m},3x3) | {passes} | {counts['input transform'][0]} | {counts['filter transform'][0]} | "
                   f"{counts['output transform'][0]} | " + ", ".join(str(v[1]) for v in counts.values()) + " |")
    out.append("")
    for m in WINOGRAD_TILES:
        mats = winograd_matrices(m)
        out += [f"F({m},3):", "", "```"]
        for key in ("BT", "G", "AT"):
            out.append(f"{key} =")
            out += ["  [" + ", ".join(f"{_fraction(v):>6}" for v in row) + "]" for row in mats[key]]
        out += ["```", ""]

    out += ["## Lavin and Gray's table, reproduced", "",
            "Multiplications of direct convolution against F(m x m, 3 x 3), per m x m output tile and channel",
            "pair ($m^2 r^2$ against $(m+r-1)^2$), and on `Conv(C=64, O=32, K=3, P=1)` with a 2 x 64 x 24 x 24",
            "input (the 24 x 24 output divides into whole tiles). Where the tiles do not divide the output the",
            "last row and column of tiles are partly wasted: the last column shows a 56 x 56 output.", "",
            "| algorithm | direct / tile | Winograd / tile | fewer (formula) | fewer (24 x 24 output) | "
            "fewer (56 x 56 output) |", "|---|---|---|---|---|---|"]
    anchor = Conv(C=64, O=32, K=3, P=1)
    for m in WINOGRAD_TILES:
        r = WINOGRAD_FILTER
        exact = sympy.Rational(m**2 * r**2, (m + r - 1) ** 2)
        on24 = direct(anchor, (2, 64, 24, 24)).ratio(winograd(anchor, (2, 64, 24, 24), m=m))
        on56 = direct(anchor, (2, 64, 56, 56)).ratio(winograd(anchor, (2, 64, 56, 56), m=m))
        out.append(f"| F({m}x{m},3x3) | {m**2 * r**2} | {(m + r - 1) ** 2} | {exact} = {float(exact):g}x | "
                   f"{on24} | {on56} = {float(on56):.4g}x |")
    out.append("")

    out += ["## Where the transforms erase the gain", "",
            "Winograd saves multiplications and pays for them in transform additions. Below: the exact condition",
            "under which F(m x m, 3 x 3) costs no more than direct convolution, counting direct's multiplications",
            "against Winograd's multiplications plus transform additions (`break_even(direct(...), winograd(...),",
            "quantity=\"multiplications+transform_additions\", solve_for=\"O\")`), on `Conv(C, O, K=3, P=1)` with a",
            "1 x C x 48 x 48 input (48 divides by 2, 4 and 6), and the least number of output channels O from",
            "which the transform additions stay below the multiplications saved, for some C (\"never\": for no O).",
            "The second table counts all arithmetic (`quantity=\"operations\"`: both algorithms' additions,",
            "Winograd's accumulation and constant multiplications too).", ""]
    sym_conv = Conv(C=C_, O=O, K=3, P=1)
    sym_shape = (1, C_, 48, 48)
    widths = (1, 2, 3, 4, 8, 16, 64, 256)
    saved = {m: m**2 * WINOGRAD_FILTER**2 - (m + WINOGRAD_FILTER - 1) ** 2 for m in WINOGRAD_TILES}
    output_adds = {m: transform_counts(m)["output transform"][0] for m in WINOGRAD_TILES}
    out += ["Per output tile and channel pair F(m x m, 3 x 3) saves $m^2 r^2 - (m+r-1)^2$ = "
            + ", ".join(str(saved[m]) for m in WINOGRAD_TILES) + " multiplications (m = "
            + ", ".join(map(str, WINOGRAD_TILES)) + "), while each output tile and channel costs "
            + ", ".join(str(output_adds[m]) for m in WINOGRAD_TILES) + " output-transform additions. In the first table,",
            "with one input channel a tile's savings (one channel pair per output channel) never pay for its output",
            "transform, whatever O: the transforms erase the whole gain. From a few input channels on, the input transform",
            "is shared by all O output channels and the output transform by all C input channels, and Winograd",
            "wins from a handful of output channels.", ""]
    for quantity in ("multiplications+transform_additions", "operations"):
        out += [f"`quantity=\"{quantity}\"`:", "",
                "| algorithm | Winograd costs no more than direct exactly when | " + " | ".join(f"C={c}" for c in widths) + " |",
                "|---|---|" + "---|" * len(widths)]
        for m in WINOGRAD_TILES:
            be = break_even(direct(sym_conv, sym_shape), winograd(sym_conv, sym_shape, m=m), quantity=quantity,
                            solve_for="O")
            cells = []
            for c in widths:
                least = _first_winning(be, {"C": c})
                cells.append("never" if least is None else f"O >= {least}")
            out.append(f"| F({m}x{m},3x3) | {_math(be.condition)} | " + " | ".join(cells) + " |")
        out.append("")

    out += ["## FFT", "",
            "Stride 1, dilation 1, any number of spatial axes. Along each axis the padded input $H + 2P$",
            "($H + D(K-1)$ for `\"same\"`) is zero-filled to the next power of two $L$; a circular correlation of",
            "that length gives every valid output exactly, as no product wraps around before position",
            "$H + 2P - K$ (a test checks it with `torch.fft`). With $n = \\prod L$ points: $N C O / G$ complex",
            "spectra products per point; $N C$ forward transforms of the inputs, $O C / G$ of the filters, $N O$",
            "inverse ones, each a radix-2 FFT of $n \\log_2 n$ complex additions and $(n/2) \\log_2 n$ complex",
            "multiplications by twiddle factors (every butterfly's, trivial ones included). Counts are complex;",
            "`in_real_arithmetic()` converts them (a complex multiplication is 4 real multiplications and 2",
            "additions, a complex addition 2 additions, a complex element 2 reals). Full complex transforms of",
            "real data: a real-input FFT would roughly halve transforms and products, and is not modelled.", ""]
    f = fft(Conv(C=C_, O=O, K=K, P=P, G=G), shape)
    e_h, e_w = sympy.symbols("e_H e_W", integer=True, nonnegative=True)
    short = {_log2_ceiling(H + 2 * P): e_h, _log2_ceiling(W + 2 * P): e_w}
    shown = lambda v: _math(sympy.sympify(v).subs(short))  # noqa: E731
    out += ["On `Conv(C, O, K, P, G)` and an input $(N, C, H, W)$, writing "
            "$e_H = \\lceil \\log_2 (H + 2P) \\rceil$ and $e_W = \\lceil \\log_2 (W + 2P) \\rceil$ "
            "(the FFT is $2^{e_H} \\times 2^{e_W}$):", "",
            f"* complex multiplications: {shown(f.multiplications)}"]
    out += [f"* {stage} complex additions: {shown(v)}" for stage, v in f.additions_by_stage]
    out += [f"* {stage} twiddle multiplications: {shown(v)}" for stage, v in f.constant_multiplications_by_stage]
    out += [f"* workspace, {name} (complex): {shown(v)}" for name, v in f.workspace_by_buffer]
    out.append("")

    conv = Conv(C=64, O=64, K=K, P="same")
    fshape = (1, 64, 56, 56)
    be = break_even(direct(conv, fshape), fft(conv, fshape), quantity="operations", solve_for="K")
    ks = range(1, 33)
    wins = [k for k in ks if be.holds(K=k)]
    shown_k = lambda v: _math(v.subs(_log2_ceiling(K + 55), sympy.Symbol("e")))  # noqa: E731
    out += ["### FFT against direct as K grows", "",
            "`break_even(direct(conv, shape), fft(conv, shape), quantity=\"operations\", solve_for=\"K\")` with",
            f"`conv = {conv!r}` and `shape = {fshape}` (\"same\" padding keeps the 56 x 56 output), all arithmetic",
            "in real operations. The condition is exact; it is not a polynomial in K (the FFT size jumps at powers",
            "of two), so the thresholds are found by checking each K exactly:", "",
            f"* FFT costs no more than direct exactly when {shown_k(be.condition)}, "
            "$e = \\lceil \\log_2 (K + 55) \\rceil$",
            f"* FFT wins for K in {_ranges(wins)} (of K = 1 .. {ks[-1]}); at K = 10 the padded size 55 + K passes",
            "  64 and the FFT doubles to 128 x 128, so direct wins again until K = 15.", "",
            "| K | direct operations | FFT operations (real) | cheaper |", "|---|---|---|---|"]
    for k in (3, 5, 7, 9, 11, 13, 15, 21, 31):
        d_ops = direct(conv.replace(K=k), fshape).operations
        f_ops = fft(conv.replace(K=k), fshape).in_real_arithmetic().operations
        out.append(f"| {k} | {d_ops} | {f_ops} | {'FFT' if f_ops <= d_ops else 'direct'} |")
    out.append("")
    out += ["With one image, the $O C$ filter transforms dominate the FFT's work; they amortise over a batch",
            "(or vanish when the filter spectra are precomputed), which moves the threshold down.", ""]
    return "\n".join(out)


def _ranges(values) -> str:
    """``[7, 8, 9, 15, 16]`` as ``7-9, 15-16``."""
    groups, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            groups.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(groups) or "none"


if __name__ == "__main__":
    print(document(), end="")
