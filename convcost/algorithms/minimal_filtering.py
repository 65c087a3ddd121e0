"""Winograd's minimal filtering F(m x m, 3 x 3): the Cook-Toom matrices, their transform counts, the cost."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import sympy

from convcost.algorithms.convolution import conv_of, fields_of, layer_cost, output_spatial
from convcost.algorithms.result import AlgorithmCost
from convcost.errors import ConvcostError, require

#: the Winograd tile sizes whose matrices this module derives, for the 3 x 3 filter
WINOGRAD_TILES = (2, 4, 6)
WINOGRAD_FILTER = 3

#: interpolation points of the Cook-Toom construction, taken in this order (with the point at infinity):
#: the points of Lavin and Gray's F(2,3) and F(4,3) and of the usual F(6,3)
WINOGRAD_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))


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


def row_additions(matrix) -> int:
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
    return {stage: (count * row_additions(mats[key]), count * _constant_products(mats[key]))
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
    convcost.errors.ConvcostError: winograd F(2x2,3x3) of Conv(C=1, O=1, K=5): kernel K=5 is not the 3 x 3 filter the
    matrices F(m x m, 3 x 3) are for
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
    _, shape, layer = layer_cost(spec, input_shape)
    out_h, out_w = output_spatial(layer)
    n = m + r - 1
    batch, C, O, G = shape[0], *fields_of(conv, "C", "O", "G")
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
              f"{counts['filter transform'][0]} per filter, "
              f"{counts['output transform'][0]} per output tile and channel"),
        conditions=tuple(layer.conditions) + conditions,
    )
