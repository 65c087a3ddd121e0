"""The algorithms that run a convolution (convcost.algorithms), checked against independent oracles.

* im2col: MACs against FlopCounterMode // 2 and the workspace against F.unfold(...).numel() (Hypothesis).
* Winograd: a literal F(m x m, 3 x 3) written here, on exact fractions, that counts the operations it
  performs; it must compute torch's convolution exactly and perform the counted operations.
* FFT: the padded size computes the valid correlation; counts by hand arithmetic.
* The anchor: Lavin and Gray's 2.25x, 4x and 5.0625x, from the formulas and on a concrete conv.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import sympy
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from convcost import SeparableConv, StandardConv
from convcost.algorithms import (
    break_even,
    direct,
    document,
    fft,
    fft_size,
    im2col,
    transform_counts,
    winograd,
    winograd_matrices,
)
from convcost.errors import ConvcostError
from convcost.primitives import Conv
from convcost.symbols import C, K, N, O, S

ROOT = Path(__file__).resolve().parents[1]


# -- the anchor: Lavin and Gray (2016), table of F(m x m, 3 x 3) ---------------------------
@pytest.mark.parametrize("m, fewer", [(2, sympy.Rational(9, 4)), (4, 4), (6, sympy.Rational(81, 16))])
def test_lavin_gray_ratio_from_the_formulas(m, fewer):
    # per m x m output tile and channel pair: direct m^2 r^2 products, Winograd (m + r - 1)^2
    r = 3
    assert sympy.Rational(m**2 * r**2, (m + r - 1) ** 2) == fewer
    # the same from the closed forms, symbolic in everything but a height and width divisible by m:
    # a conv with padding 1 keeps the size, 12 h x 12 w
    h, w = sympy.symbols("h w", integer=True, positive=True)
    conv = Conv(C=C, O=O, K=3, P=1)
    shape = (N, C, 12 * h, 12 * w)
    assert direct(conv, shape).ratio(winograd(conv, shape, m=m)) == fewer


@pytest.mark.parametrize("m, fewer", [(2, sympy.Rational(9, 4)), (4, 4), (6, sympy.Rational(81, 16))])
def test_lavin_gray_ratio_on_a_concrete_conv(m, fewer):
    conv = Conv(C=64, O=32, K=3, P=1)
    shape = (2, 64, 24, 24)  # output 24 x 24, divisible by 2, 4 and 6
    d, wg = direct(conv, shape), winograd(conv, shape, m=m)
    # hand arithmetic: direct 2 * 32 * 24 * 24 * 64 * 9; Winograd 2 * (24/m)^2 tiles * (m+2)^2 * 64 * 32
    assert d.multiplications == 2 * 32 * 24 * 24 * 64 * 9
    assert wg.multiplications == 2 * (24 // m) ** 2 * (m + 2) ** 2 * 64 * 32
    assert d.ratio(wg) == fewer


def test_lavin_gray_ratio_falls_when_the_tiles_do_not_divide_the_output():
    conv = Conv(C=8, O=8, K=3, P=1)
    shape = (1, 8, 56, 56)  # 56 / 6 is 9.33: the last row and column of tiles are partly wasted
    assert direct(conv, shape).ratio(winograd(conv, shape, m=6)) == sympy.Rational(56 * 56 * 9, 10 * 10 * 64)


def test_winograd_multiplications_by_hand():
    # 7 x 6 output in 2 x 2 tiles: 4 x 3 tiles per image, 2 images, 16 products per tile and channel pair
    c = winograd(Conv(C=3, O=5, K=3), (2, 3, 9, 8), m=2)
    assert c.multiplications == 24 * 16 * 3 * 5
    # grouped: 4 x 4 output, one 4 x 4 tile, 36 products per tile and pair, C O / G = 4 * 6 / 2 pairs
    c = winograd(Conv(C=4, O=6, K=3, G=2), (1, 4, 6, 6), m=4)
    assert c.multiplications == 36 * 12
    assert c.workspace_elements == 36 * (1 * 4) + 36 * 12 + 36 * (1 * 6)


def test_transform_counts_of_f2x2_by_hand():
    # B^T rows (1,0,-1,0) (0,1,1,0) (0,-1,1,0) (0,-1,0,1): 4 additions a pass, 2 x 4 passes -> 32
    # G rows (1,0,0) (1/2,1/2,1/2) (1/2,-1/2,1/2) (0,0,1): 4 additions, 6 halvings a pass, 3 + 4 passes
    # A^T rows (1,1,1,0) (0,1,-1,1): 4 additions a pass, 4 + 2 passes -> 24
    assert transform_counts(2) == {"input transform": (32, 0), "filter transform": (28, 42),
                                   "output transform": (24, 0)}


# -- the matrices: Lavin and Gray's, up to the sign of a row pair ---------------------------
LAVIN_GRAY = {
    2: {
        "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        "G": [[1, 0, 0], ["1/2", "1/2", "1/2"], ["1/2", "-1/2", "1/2"], [0, 0, 1]],
        "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
    },
    4: {
        "BT": [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        "G": [["1/4", 0, 0], ["-1/6", "-1/6", "-1/6"], ["-1/6", "1/6", "-1/6"],
              ["1/24", "1/12", "1/6"], ["1/24", "-1/12", "1/6"], [0, 0, 1]],
        "AT": [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    },
}


@pytest.mark.parametrize("m", [2, 4])
def test_matrices_are_lavin_and_grays_up_to_signs(m):
    ours, theirs = winograd_matrices(m), {k: [[Fraction(v) for v in row] for row in rows]
                                          for k, rows in LAVIN_GRAY[m].items()}
    # a point's row of B^T and of G may both change sign; the point at infinity's sign may sit on A^T
    for i, (bt, g) in enumerate(zip(ours["BT"], ours["G"])):
        assert (bt, g) in ((theirs["BT"][i], theirs["G"][i]),
                           ([-v for v in theirs["BT"][i]], [-v for v in theirs["G"][i]])) or (
            i == len(ours["BT"]) - 1 and bt == [-v for v in theirs["BT"][i]] and g == theirs["G"][i])
    for ours_row, their_row in zip(ours["AT"], theirs["AT"]):
        assert ours_row[:-1] == their_row[:-1] and abs(ours_row[-1]) == abs(their_row[-1])


# -- a literal Winograd convolution that counts what it does --------------------------------
class Counter:
    def __init__(self):
        self.additions = 0
        self.constant_multiplications = 0
        self.multiplications = 0

    def apply(self, matrix, vector):
        """matrix @ vector row by row, skipping zeros; +-1 cost no multiplication."""
        out = []
        for row in matrix:
            total = None
            for coefficient, x in zip(row, vector):
                if coefficient == 0:
                    continue
                if coefficient in (1, -1):
                    term = coefficient * x
                else:
                    term = coefficient * x
                    self.constant_multiplications += 1
                if total is None:
                    total = term
                else:
                    total = total + term
                    self.additions += 1
            out.append(total if total is not None else Fraction(0))
        return out

    def transform(self, matrix, block):
        """matrix @ block @ matrix^T: the matrix on every column, then on every row."""
        columns = [self.apply(matrix, [row[j] for row in block]) for j in range(len(block[0]))]
        half = [[columns[j][i] for j in range(len(columns))] for i in range(len(matrix))]
        return [self.apply(matrix, row) for row in half]


def literal_winograd(x, weight, m, groups):
    """F(m x m, 3 x 3) on exact fractions: stride 1, no padding (pad x beforehand). Returns (y, counters)."""
    mats = winograd_matrices(m)
    n = mats["n"]
    batch, channels, height, width = x.shape
    outs = weight.shape[0]
    out_h, out_w = height - 2, width - 2
    tiles_h, tiles_w = -(-out_h // m), -(-out_w // m)
    padded = torch.zeros(batch, channels, tiles_h * m + 2, tiles_w * m + 2, dtype=torch.int64)
    padded[:, :, :height, :width] = x
    counts = {stage: Counter() for stage in ("input transform", "filter transform", "output transform", "stage")}
    per_group_in, per_group_out = channels // groups, outs // groups
    U = {(o, c): counts["filter transform"].transform(mats["G"], [[Fraction(int(v)) for v in row]
                                                                  for row in weight[o, c]])
         for o in range(outs) for c in range(per_group_in)}
    y = torch.zeros(batch, outs, tiles_h * m, tiles_w * m, dtype=torch.float64)
    stage = counts["stage"]
    for b, ty, tx in itertools.product(range(batch), range(tiles_h), range(tiles_w)):
        V = {c: counts["input transform"].transform(
            mats["BT"],
            [[Fraction(int(v)) for v in row] for row in padded[b, c, ty * m: ty * m + n, tx * m: tx * m + n]])
            for c in range(channels)}
        for o in range(outs):
            group = o // per_group_out
            M = [[None] * n for _ in range(n)]
            for c in range(per_group_in):
                for i, j in itertools.product(range(n), range(n)):
                    product = U[o, c][i][j] * V[group * per_group_in + c][i][j]
                    stage.multiplications += 1
                    if M[i][j] is None:
                        M[i][j] = product
                    else:
                        M[i][j] += product
                        stage.additions += 1
            Y = counts["output transform"].transform(mats["AT"], M)
            for i, j in itertools.product(range(m), range(m)):
                assert Y[i][j].denominator == 1  # integers in, integers out: the transform is exact
                y[b, o, ty * m + i, tx * m + j] = float(Y[i][j])
    return y[:, :, :out_h, :out_w], counts


@pytest.mark.parametrize("m, batch, channels, outs, groups, size, padding", [
    (2, 1, 2, 3, 1, 6, 0),
    (2, 2, 2, 2, 1, 7, 1),   # output 7 x 7: the last tiles hang over
    (4, 1, 4, 2, 2, 9, 1),   # groups
    (6, 1, 1, 2, 1, 10, 1),  # output 10 x 10: 2 x 2 tiles of 6
])
def test_literal_winograd_computes_the_convolution_and_the_counted_operations(m, batch, channels, outs, groups, size,
                                                                              padding):
    gen = torch.Generator().manual_seed(m * 100 + size)
    x = torch.randint(-3, 4, (batch, channels, size, size), generator=gen)
    weight = torch.randint(-3, 4, (outs, channels // groups, 3, 3), generator=gen)
    y, counts = literal_winograd(F.pad(x, (padding,) * 4), weight, m, groups)
    expected = F.conv2d(x.double(), weight.double(), padding=padding, groups=groups)
    assert torch.equal(y, expected)

    cost = winograd(Conv(C=channels, O=outs, K=3, P=padding, G=groups), tuple(x.shape), m=m)
    assert cost.multiplications == counts["stage"].multiplications
    additions = dict(cost.additions_by_stage)
    constants = dict(cost.constant_multiplications_by_stage)
    for stage in ("input transform", "filter transform", "output transform"):
        assert additions[stage] == counts[stage].additions, stage
        assert constants[stage] == counts[stage].constant_multiplications, stage
    assert additions["accumulation"] == counts["stage"].additions
    assert cost.output_shape == tuple(expected.shape)


@given(st.sampled_from([2, 4, 6]), st.integers(1, 2), st.integers(1, 2), st.integers(1, 2), st.integers(1, 2),
       st.integers(3, 9), st.integers(3, 9), st.integers(0, 1))
def test_literal_winograd_over_random_configs(m, batch, channel_mult, out_mult, groups, height, width, padding):
    channels, outs = groups * channel_mult, groups * out_mult
    gen = torch.Generator().manual_seed(height * 10 + width)
    x = torch.randint(-3, 4, (batch, channels, height, width), generator=gen)
    weight = torch.randint(-3, 4, (outs, channel_mult, 3, 3), generator=gen)
    y, counts = literal_winograd(F.pad(x, (padding,) * 4), weight, m, groups)
    assert torch.equal(y, F.conv2d(x.double(), weight.double(), padding=padding, groups=groups))
    cost = winograd(Conv(C=channels, O=outs, K=3, P=padding, G=groups), tuple(x.shape), m=m)
    assert cost.multiplications == counts["stage"].multiplications
    assert cost.additions == sum(c.additions for c in counts.values())
    assert cost.constant_multiplications == sum(c.constant_multiplications for c in counts.values())


@pytest.mark.parametrize("m", [2, 4, 6])
def test_winograd_multiplications_are_the_issue_formula(m):
    # N ceil(H'/m) ceil(W'/m) (m+r-1)^2 C O / G, with H' = H + 2P - 2 for a 3x3 stride-1 conv
    G_, H_, W_, P_ = sympy.symbols("G H W P", integer=True, positive=True)
    c = winograd(Conv(C=C, O=O, K=3, P=P_, G=G_), (N, C, H_, W_), m=m)
    tiles = sympy.ceiling((H_ + 2 * P_ - 2) / m) * sympy.ceiling((W_ + 2 * P_ - 2) / m)
    expected = N * tiles * (m + 2) ** 2 * C * O / G_
    assert sympy.simplify(c.multiplications - expected) == 0


# -- im2col against torch ---------------------------------------------------------------------
@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    channels, outs = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    spatial = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 9))
                    for k, p, d in zip(kernel, padding, dilation))
    batch = draw(st.integers(1, 3))
    return dict(C=channels, O=outs, K=kernel, S=stride, P=padding, D=dilation, G=groups), (batch, channels, *spatial)


@given(conv_configs())
def test_im2col_against_torch(config):
    fields, shape = config
    x = torch.randn(shape)
    weight = torch.randn(fields["O"], fields["C"] // fields["G"], *fields["K"])
    with FlopCounterMode(display=False) as counter:
        y = F.conv2d(x, weight, None, fields["S"], fields["P"], fields["D"], fields["G"])
    unfolded = F.unfold(x, fields["K"], dilation=fields["D"], padding=fields["P"], stride=fields["S"])
    c = im2col(Conv(**fields), shape)
    assert c.multiplications == counter.get_total_flops() // 2
    assert c.workspace_elements == unfolded.numel()
    assert c.output_shape == tuple(y.shape)
    # each output sums C/G prod(K) products: one addition fewer than products
    assert c.additions == y.numel() * (fields["C"] // fields["G"] * fields["K"][0] * fields["K"][1] - 1)
    assert direct(Conv(**fields), shape).multiplications == c.multiplications


def test_im2col_of_a_1d_conv_against_unfold_of_one_row():
    # F.unfold is 2-D only: a 1-D conv is a 2-D one over a single row with a 1 x K kernel
    x = torch.randn(2, 6, 1, 17)
    c = im2col(Conv(C=6, O=3, K=5, S=2, P=1, D=2, G=3, dims=1), (2, 6, 17))
    assert c.workspace_elements == F.unfold(x, (1, 5), dilation=(1, 2), padding=(0, 1), stride=(1, 2)).numel()
    with FlopCounterMode(display=False) as counter:
        F.conv1d(x[:, :, 0], torch.randn(3, 2, 5), None, 2, 1, 2, 3)
    assert c.multiplications == counter.get_total_flops() // 2


def test_im2col_of_a_variant_and_symbolic_then_bound():
    c = im2col(StandardConv(C=3, O=8, K=3, P=1, N=2))
    bound = c.subs(H=10, W=12)
    x = torch.randn(2, 3, 10, 12)
    assert bound.workspace_elements == F.unfold(x, 3, padding=1).numel()
    assert bound.multiplications == im2col(Conv(C=3, O=8, K=3, P=1), (2, 3, 10, 12)).multiplications
    assert c.workspace_elements.free_symbols == {sympy.Symbol("H", integer=True, positive=True),
                                                 sympy.Symbol("W", integer=True, positive=True)}


# -- FFT --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, padding", [(6, 3, 0), (7, 3, 1), (9, 5, 2), (8, 4, 0)])
def test_fft_size_gives_the_valid_correlation(size, kernel, padding):
    x = torch.randn(1, 1, size, size, dtype=torch.float64)
    weight = torch.randn(1, 1, kernel, kernel, dtype=torch.float64)
    length = fft_size(size + 2 * padding)
    assert length >= size + 2 * padding and length & (length - 1) == 0
    xp = F.pad(x, (padding,) * 4)[0, 0]
    spectrum = torch.fft.fft2(xp, s=(length, length)) * torch.fft.fft2(weight[0, 0], s=(length, length)).conj()
    circular = torch.fft.ifft2(spectrum).real
    expected = F.conv2d(x, weight, padding=padding)[0, 0]
    out = expected.shape[-1]
    assert torch.allclose(circular[:out, :out], expected, atol=1e-9)


def test_fft_counts_by_hand():
    # 6 x 6 input, no padding: 8 x 8 points, log2 64 = 6; N=2, C=4, O=6, G=2
    c = fft(Conv(C=4, O=6, K=3, G=2), (2, 4, 6, 6))
    points, logs = 64, 6
    assert c.unit == "complex"
    assert c.multiplications == 2 * (4 * 6 // 2) * points
    additions = dict(c.additions_by_stage)
    assert additions == {"input transform": 2 * 4 * points * logs, "filter transform": 12 * points * logs,
                         "output transform": 2 * 6 * points * logs, "accumulation": 2 * 6 * points * (2 - 1)}
    assert c.constant_multiplications == (8 + 12 + 12) * points * logs // 2
    assert c.workspace_elements == (8 + 12 + 12) * points
    real = c.in_real_arithmetic()
    assert real.multiplications == 4 * c.multiplications
    assert real.additions == 2 * c.additions + 2 * (c.multiplications + c.constant_multiplications)
    assert real.workspace_elements == 2 * c.workspace_elements


def test_fft_padding_rules():
    # per axis the next power of two at least H + 2P
    assert fft(Conv(C=1, O=1, K=3, P=1), (1, 1, 62, 62)).multiplications == 64 * 64
    assert fft(Conv(C=1, O=1, K=3, P=1), (1, 1, 63, 62)).multiplications == 128 * 64
    assert fft(Conv(C=1, O=1, K=3, P=2), (1, 1, 60, 61)).multiplications == 64 * 128
    assert fft(Conv(C=1, O=1, K=5, P="same"), (1, 1, 60, 61)).multiplications == 64 * 128
    assert fft(Conv(C=1, O=1, K=3, P="valid"), (1, 1, 64, 65)).multiplications == 64 * 128
    assert fft(Conv(C=1, O=1, K=3, dims=1), (1, 1, 100)).multiplications == 128


# -- break-even: FFT against direct as K grows ----------------------------------------------
def test_fft_against_direct_as_k_grows():
    conv = Conv(C=64, O=64, K=K, P="same")
    shape = (1, 64, 56, 56)
    be = break_even(direct(conv, shape), fft(conv, shape), quantity="operations", solve_for="K")
    wins = [k for k in range(1, 21) if be.holds(K=k)]
    # each K checked on its own, both algorithms costed at that K in real arithmetic
    by_hand = [k for k in range(1, 21)
               if fft(conv.replace(K=k), shape).in_real_arithmetic().operations <= direct(conv.replace(K=k),
                                                                                          shape).operations]
    assert wins == by_hand == [7, 8, 9, 15, 16, 17, 18, 19, 20]   # at K = 10, 55 + K passes 64: the FFT doubles


def test_winograd_transforms_erase_the_gain_for_one_input_channel():
    conv = Conv(C=C, O=O, K=3, P=1)
    shape = (1, C, 48, 48)
    be = break_even(direct(conv, shape), winograd(conv, shape, m=2), quantity="multiplications+transform_additions",
                    solve_for="O")
    # per 2x2 tile: 20 products saved per channel pair; 32 additions per input and 24 per output channel,
    # 576 tiles; the filter transforms 28 additions each for C O filters
    assert be.condition == sympy.Ge(sympy.expand((576 * 20 * C * O - 576 * 32 * C - 576 * 24 * O - 28 * C * O) / 4), 0)
    assert not any(be.holds(C=1, O=o) for o in (1, 10, 1000))
    assert [o for o in range(1, 8) if be.holds(C=2, O=o)] == [5, 6, 7]


# -- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: winograd(Conv(C=2, O=2, K=3, S=2), (1, 2, 8, 8)), "stride S=2 must be 1"),
    (lambda: winograd(Conv(C=2, O=2, K=3, D=2), (1, 2, 8, 8)), "dilation D=2 must be 1"),
    (lambda: winograd(Conv(C=2, O=2, K=5), (1, 2, 8, 8)), "kernel K=5 is not the 3 x 3 filter"),
    (lambda: winograd(Conv(C=2, O=2, K=(3, 5)), (1, 2, 8, 8)), "kernel K=(3, 5) is not the 3 x 3 filter"),
    (lambda: winograd(Conv(C=2, O=2, K=3), (1, 2, 8, 8), m=3), "m=3 is not a supported output tile"),
    (lambda: winograd(Conv(C=2, O=2, K=3, dims=1), (1, 2, 8)), "a 1-D conv"),
    (lambda: fft(Conv(C=2, O=2, K=3, S=2), (1, 2, 8, 8)), "stride S=2 must be 1"),
    (lambda: im2col(SeparableConv(C=2, O=2, K=3)), "an algorithm runs one convolution"),
    (lambda: im2col("conv"), "give a convolution"),
    (lambda: im2col(Conv(C=2, O=2, K=3), (1, 3, 8, 8)), "input has 3 channels, expected C=2"),
    (lambda: im2col(Conv(C=2, O=2, K=3)).subs(H=0), "H=0: it must be a positive integer"),
    (lambda: im2col(Conv(C=2, O=2, K=3)).subs(Q=2), "no symbol 'Q'"),
    (lambda: im2col(Conv(C=2, O=2, K=3)).quantity("flops"), "unknown quantity 'flops'"),
])
def test_refusals_name_the_value_and_the_rule(call, message):
    with pytest.raises(ConvcostError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_symbolic_stride_is_carried_then_checked():
    c = winograd(Conv(C=2, O=2, K=3, S=S), (1, 2, 8, 8))
    assert sympy.Eq(S, 1) in c.conditions
    assert c.subs(S=1).conditions == ()
    with pytest.raises(ConvcostError, match=r"after binding S=2: the condition Eq\(S, 1\) does not hold"):
        c.subs(S=2)


def test_subs_of_symbolic_winograd_equals_the_bound_one():
    conv = Conv(C=C, O=O, K=3, P=1)
    symbolic = winograd(conv, (N, C, sympy.Symbol("H", integer=True, positive=True), 30), m=4).subs(N=2, C=3, O=5, H=17)
    bound = winograd(Conv(C=3, O=5, K=3, P=1), (2, 3, 17, 30), m=4)
    assert symbolic.multiplications == bound.multiplications == 2 * 5 * 8 * 36 * 15
    assert dict(symbolic.additions_by_stage) == dict(bound.additions_by_stage)
    assert symbolic.workspace_elements == bound.workspace_elements


# -- the document --------------------------------------------------------------------------------
def test_docs_are_current():
    assert (ROOT / "docs" / "algorithms.md").read_text() == document()


def test_module_does_not_import_torch():
    code = "import sys, convcost.algorithms; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
