"""More of what the transformers zoo (benchmarks/zoo_transformers.py) found, each cause reduced to a few-line model.

Every case is held to PyTorch itself, never to convcost's formulas: the forward's MACs to ``FlopCounterMode``
(halved), the training step to :func:`convcost.torch.measure_training.measure_training` (FlopCounterMode over the
backward, saved-tensor hooks). Where a transformers model is the motivating case, it is built from a tiny config
and checked the same way (skipped without transformers).
"""

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import step_oracle  # noqa: E402

needs_transformers = pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                                        reason="transformers is not installed")


def assert_zoo_row_exact(kind, attention="eager"):
    """The zoo's row of a transformers model type built from its tiny config: forward and step exact."""
    from zoo_transformers import one

    row = one(kind, attention)
    assert row["class"] == "exact", row["reason"]


def forward_macs(model, inputs) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops() // 2


def assert_forward_agrees(model, *inputs):
    """The forward read exactly: MACs equal FlopCounterMode's, nothing that may hold MACs listed."""
    report = profile(model, inputs if len(inputs) > 1 else inputs[0])
    assert report.exact, report.unsupported
    assert report.total["macs"] == forward_macs(model, inputs)


def assert_step_agrees(model, *inputs):
    """A training step read completely and exactly: what PyTorch's own step does (Adam's bytes too), nothing listed
    in the step or the forward (no fused-attention correction: these cases have none)."""
    step_oracle.assert_step_agrees(model, inputs, fused=False, exact=True)


def assert_reads_exactly(model, *inputs):
    assert_forward_agrees(model, *inputs)
    assert_step_agrees(model, *inputs)


class Linear8(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)


# --- PyTorch's other names of mul, div and sub (ConvBERT's torch.multiply) ---------------------------------------

class Aliases(Linear8):
    def forward(self, x):
        h = self.fc(x)
        y = torch.subtract(torch.divide(torch.multiply(h, x), h + 2), x)
        y = y.multiply(h).divide(3).subtract(1).true_divide(h)
        y.multiply_(2)
        y.divide_(h)
        y.subtract_(x)
        return y


def test_aliases_of_mul_div_sub():
    assert_reads_exactly(Aliases(), torch.randn(2, 8))


@needs_transformers
def test_convbert():
    assert_zoo_row_exact("convbert")


# --- torch.kthvalue: a pick, keeping its indices -----------------------------------------------------------------

class KthValue(Linear8):
    def forward(self, x):
        h = self.fc(x)
        values, indices = torch.kthvalue(h, 3, dim=-1)
        picked = h.kthvalue(2, 0, keepdim=True)
        return values[:, None] * h + indices[:, None] + picked.values * picked.indices


class KthValueOfData(Linear8):
    """A k-th value of what needs no gradient: nothing kept for it."""

    def forward(self, x):
        return self.fc(x) * torch.kthvalue(x, 2).values[:, None]


@pytest.mark.parametrize("model", [KthValue(), KthValueOfData()], ids=["of_a_layer", "of_data"])
def test_kthvalue(model):
    assert_reads_exactly(model, torch.randn(3, 8))


class TopKTimesIndices(Linear8):
    """topk's indices, saved by topk, kept again by the product: one storage of int64 indices."""

    def forward(self, x):
        h = self.fc(x)
        values, indices = torch.topk(h, 1, 0)
        return h + values * indices


class TimesArgmax(Linear8):
    """An argmax (int64, no gradient) kept by the product it scales: an index, as autograd's hooks see it."""

    def forward(self, x):
        return self.fc(x) * torch.argmax(x, 0)


@pytest.mark.parametrize("model", [TopKTimesIndices(), TimesArgmax()], ids=["topk_indices", "argmax"])
def test_an_integer_operand_kept_by_a_product_is_an_index(model):
    assert_reads_exactly(model, torch.randn(3, 8))


# --- Fourier transforms (FNet): listed as work convcost does not count, never a flag; their step exact ----------

class FourierMixing(Linear8):
    """FNet's token mixing: ``fftn(h).real`` into a layer that keeps it (its storage is complex, kept as reals)."""

    def forward(self, x):
        h = self.fc(x)
        return self.fc(torch.fft.fftn(h, dim=(-1, -2)).real) + h


class TwoTransforms(Linear8):
    def forward(self, x):
        return torch.fft.fft(torch.fft.fft(self.fc(x), dim=-1), dim=-2).real


class RealTransforms(Linear8):
    def forward(self, x):
        f = torch.fft.rfft(self.fc(x), dim=-1)
        return torch.fft.irfft(f * f, n=8, dim=-1)


class BothParts(Linear8):
    """``.imag`` and ``.real`` of one complex storage, both kept by their product: one storage, in reals."""

    def forward(self, x):
        f = torch.fft.fft2(self.fc(x))
        return f.imag * f.real


class BothPartsCallByCall(BothParts):
    """The same read call by call (an exact type check no shape passes): ``x.real`` is a property there."""

    def forward(self, x):
        h = self.fc(x)
        assert type(h) is torch.Tensor
        f = torch.fft.fftn(h, dim=(-1, -2))
        return self.fc(f.real) * f.imag


@pytest.mark.parametrize("model", [FourierMixing(), TwoTransforms(), RealTransforms(), BothParts(),
                                   BothPartsCallByCall()],
                         ids=["fftn_real", "fft_fft", "rfft_irfft", "imag_real", "call_by_call"])
def test_fourier_transforms(model):
    assert_reads_exactly(model, torch.randn(2, 4, 8))


def test_a_fourier_transform_is_listed_as_uncounted_work():
    report = profile(FourierMixing(), (2, 4, 8))
    listed = {u.op: u for u in report.unsupported}
    assert set(listed) == {"torch.fft_fftn"}
    assert not listed["torch.fft_fftn"].macs
    assert "Fourier transform" in listed["torch.fft_fftn"].reason


@needs_transformers
def test_fnet():
    assert_zoo_row_exact("fnet")


# --- complex tensors (Llama 4's rotary embedding) -------------------------------------------------------------

class ComplexProduct(Linear8):
    """A complex product keeps a complex dtype on shapes; its parts are views of it."""

    seen: dict = {}

    def forward(self, x):
        h = self.fc(x)
        freqs = torch.polar(torch.ones(x.shape[1], 4), torch.rand(x.shape[1], 4))
        q = torch.view_as_complex(h.reshape(*h.shape[:-1], 4, 2)) * freqs
        self.seen["dtype"] = q.dtype
        return self.fc(torch.cat([q.real, q.imag], -1))


def test_a_complex_product_keeps_its_dtype():
    model = ComplexProduct()
    profile(model, (2, 4, 8))
    assert model.seen["dtype"] == torch.complex64
    assert_reads_exactly(model, torch.randn(2, 4, 8))


@needs_transformers
def test_llama4():
    assert_zoo_row_exact("llama4")
    assert_zoo_row_exact("llama4", "sdpa")


# --- integer arithmetic on token ids keeps an integer dtype ---------------------------------------------------

IDS = torch.tensor([[2, 3, 4, 1], [5, 6, 1, 1]])


class Embedded(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.pos, self.fc = nn.Embedding(11, 8), nn.Embedding(16, 8, padding_idx=1), nn.Linear(8, 8)


class PositionsFromIds(Embedded):
    """RoBERTa's position ids (data2vec-text, LUKE, MPNet, FSMT, LayoutLM, CamemBERT): a cumulative sum of a mask
    of the ids, times the mask, plus the padding index; an int64 index for the position embedding."""

    seen: dict = {}

    def forward(self, ids):
        mask = ids.ne(1).int()
        incremental = (torch.cumsum(mask, dim=1).type_as(mask) + 0) * mask
        positions = incremental.long() + 1
        self.seen["dtypes"] = (incremental.dtype, positions.dtype, (ids + 1).dtype, (ids * mask).dtype)
        return self.fc(self.emb(ids) + self.pos(positions))


class DividedByIds(Embedded):
    """``x / int_tensor``: autograd keeps the integer divisor, an int64 index."""

    def forward(self, ids):
        return self.fc(self.emb(ids)) / (ids[..., None] + 1)


class TimesCastIds(Embedded):
    """``ids.float()`` is a float copy: kept by the product, it is no index."""

    def forward(self, ids):
        return self.fc(self.emb(ids)) * ids[..., None].float()


class FinfoOfCastIds(Embedded):
    """``torch.finfo`` of what the ids were cast to (a mask made from them)."""

    def forward(self, ids):
        m = (ids * (ids > 2)).float()
        return self.fc(self.emb(ids)) + m[..., None] * torch.finfo(m.dtype).min


def test_positions_from_ids_are_integers():
    model = PositionsFromIds()
    profile(model, IDS)
    assert model.seen["dtypes"] == (torch.int32, torch.int64, torch.int64, torch.int64)


@pytest.mark.parametrize("model", [PositionsFromIds(), DividedByIds(), TimesCastIds(), FinfoOfCastIds()],
                         ids=["positions", "divided_by_ids", "times_cast_ids", "finfo_of_cast"])
def test_integer_arithmetic_on_ids(model):
    assert_reads_exactly(model, IDS)
    assert profile(model, IDS).traced_with == "shape propagation"


class MaskPositionsIntoRotary(Embedded):
    """Qwen-VL's position ids from the attention mask (a cumulative sum, filled where masked), three rows of them,
    cast to float into the rotary frequencies' product."""

    def __init__(self):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8)), persistent=False)

    def forward(self, ids):
        mask = (ids != 1).long()
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)[None].expand(3, -1, -1)
        inv = self.inv_freq[None, None, :, None].float().expand(3, positions.shape[1], -1, 1)
        freqs = (inv @ positions[:, :, None, :].float()).transpose(2, 3)
        angles = torch.cat((freqs, freqs), -1)[0]
        h = self.fc(self.emb(ids))
        return h * angles.cos() + h * angles.sin()


def test_position_ids_from_a_mask_into_rotary():
    assert_reads_exactly(MaskPositionsIntoRotary(), IDS)


@needs_transformers
@pytest.mark.parametrize("kind", ["data2vec-text", "luke", "mpnet", "fsmt", "layoutlm", "camembert"])
def test_position_ids_from_input_ids(kind):
    assert_zoo_row_exact(kind)


# --- isfinite, isnan, isinf: no counted work, never a flag; what autograd keeps of them ------------------------

class FiniteChecks(Linear8):
    """isfinite and isinf of a tensor needing a gradient keep it (|x| through a differentiable abs); isnan keeps
    nothing; the masks they make are kept by the calls that pick by them."""

    def forward(self, x):
        h = self.fc(x)
        return h.masked_fill(~h.isfinite(), 0.0) * torch.isnan(h) + torch.isinf(h)


class FiniteWhere(Linear8):
    def forward(self, x):
        h = self.fc(x)
        if torch.isinf(h).any() or torch.isnan(h).any():  # read with values
            h = h * 0
        return torch.where(torch.isfinite(h), h, 0.0)


class FiniteOfData(Linear8):
    def forward(self, x):
        return torch.where(torch.isfinite(x), self.fc(x), 0.0)


@pytest.mark.parametrize("model", [FiniteChecks(), FiniteWhere(), FiniteOfData()],
                         ids=["masked_fill", "where_with_values", "of_data"])
def test_finite_checks(model):
    assert_reads_exactly(model, torch.randn(2, 8))
    assert not profile(model, (2, 8)).unsupported


# --- torch.linalg.solve_triangular (the chunked delta rule: olmo_hybrid, qwen3_next, qwen3_5) -------------------

def _substitution_macs(n, columns, unit):
    """Multiply-adds of forward substitution counted as it runs, one per entry of the triangle read per column:
    an oracle apart from TriangularSolve's formula and the FlopCounterMode formula the zoo teaches."""
    count = 0
    for _ in range(columns):
        for i in range(n):
            count += i  # x_i -= a_ij x_j for j < i
            count += 0 if unit else 1  # x_i *= 1 / a_ii
    return count


def taught_counter():
    from zoo_transformers import count_triangular_solve

    count_triangular_solve()


@pytest.mark.parametrize("n, columns, unit", [(1, 1, False), (5, 2, False), (5, 2, True), (7, 3, True)])
def test_the_solve_count_is_forward_substitution(n, columns, unit):
    import convcost.primitives as p

    taught_counter()
    assert p.TriangularSolve(unitriangular=unit).cost([(n, n), (n, columns)]).macs == \
        _substitution_macs(n, columns, unit)
    a, b = torch.eye(n), torch.randn(n, columns)
    with FlopCounterMode(display=False) as counter:
        torch.linalg.solve_triangular(a, b, upper=False, unitriangular=unit)
    assert counter.get_total_flops() // 2 == _substitution_macs(n, columns, unit)


class Solve(Linear8):
    """A unit-diagonal lower triangle computed from the input, solved against it (gated delta rule's chunk)."""

    def forward(self, x):
        h = self.fc(x)
        a = torch.eye(8) + torch.tril(h[0][:, None] * h[1][None, :] * 0.1, -1)
        return torch.linalg.solve_triangular(a, h.T, upper=False)


class BatchedUnitSolve(Linear8):
    def forward(self, x):
        h = self.fc(x)
        a = torch.eye(3) - torch.tril(h @ h.transpose(-1, -2), -1) * 0.01
        return torch.linalg.solve_triangular(a, h, upper=False, unitriangular=True)


class RightSolveByBuffer(Linear8):
    """``X A = B`` with a constant upper triangle: only the right-hand side needs a gradient."""

    def __init__(self):
        super().__init__()
        self.register_buffer("a", torch.triu(torch.rand(8, 8)) + torch.eye(8))

    def forward(self, x):
        return torch.linalg.solve_triangular(self.a, self.fc(x), upper=True, left=False)


@pytest.mark.parametrize("model, shape", [(Solve(), (2, 8)), (BatchedUnitSolve(), (2, 3, 8)),
                                          (RightSolveByBuffer(), (2, 3, 8))],
                         ids=["solve", "batched_unit", "right_by_buffer"])
def test_triangular_solve(model, shape):
    taught_counter()
    assert_reads_exactly(model, torch.randn(*shape))


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_triangular_solve_against_pytorch(data):
    """The primitive on its own, every operand's gradient flag, against FlopCounterMode (taught the solve) and
    saved-tensor hooks."""
    from convcost.testing import triangular_solve_cases
    from convcost.torch import to_torch
    from convcost.torch.measure_training import backward_macs, saved_tensors

    taught_counter()
    layer, shapes = data.draw(triangular_solve_cases())
    grads = tuple(data.draw(st.booleans()) for _ in shapes)
    cost = layer.cost(shapes, input_grads=grads)
    module = to_torch(layer, shapes[0])
    xs = [torch.randn(*s) for s in shapes]
    saved = saved_tensors(module, xs, input_grad=grads)
    assert cost.macs == forward_macs(module, xs)
    assert (cost.backward_macs, cost.saved_elements) == (backward_macs(module, xs, input_grad=grads),
                                                         saved["elements"])


@needs_transformers
def test_a_gated_delta_rule_model():
    """olmo_hybrid (qwen3_next and qwen3_5 solve the same way; each takes minutes on two cores)."""
    assert_zoo_row_exact("olmo_hybrid")


# --- a forward that sets requires_grad, read call by call (WavLM's feature encoder) -----------------------------

class SetsRequiresGradCallByCall(nn.Module):
    """``hidden_states.requires_grad = True`` on a view of the input, in a forward the shapes cannot run (an
    exact type check): the first convolution's input gradient is part of the step."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(1, 4, 3), nn.Linear(6, 6)

    def forward(self, x):
        h = x[:, None]
        assert type(h) is torch.Tensor
        h.requires_grad = True
        return self.fc(self.conv(h))


def test_a_forward_that_sets_requires_grad_read_call_by_call():
    model = SetsRequiresGradCallByCall()
    assert profile(model, (2, 8), training=True).traced_with == "calls on meta tensors"
    assert_reads_exactly(model, torch.randn(2, 8))


class AssignedCallByCall(nn.Module):
    """WavLM's SpecAugment, read call by call: ``h[mask] = embed.to(h.dtype)`` (a method there, ``__setitem__``)
    writes into ``h``, so the parameter reaches the loss and gets a gradient and optimizer state, even where the
    mask selects nothing."""

    def __init__(self):
        super().__init__()
        self.fc, self.embed = nn.Linear(8, 8), nn.Parameter(torch.randn(8))

    def forward(self, x):
        h = self.fc(x)
        assert type(h) is torch.Tensor
        h[torch.zeros(2, 4, dtype=torch.bool)] = self.embed.to(h.dtype)
        return h * 2


def test_an_assignment_read_call_by_call_reaches_the_loss():
    model, x = AssignedCallByCall(), torch.randn(2, 4, 8)
    assert_reads_exactly(model, x)
    step = profile(model, x, training=True).training
    assert step.unread_params == 0
    assert step.memory("adam") == measure_training(model, (x,), optimizer="adam")["bytes"]


@needs_transformers
def test_wavlm():
    """The requires_grad set in its feature encoder and the SpecAugment assignment, both read call by call."""
    assert_zoo_row_exact("wavlm")
