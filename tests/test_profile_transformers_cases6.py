"""More of what the transformers zoo (benchmarks/zoo_transformers.py) left open (issue #26), each cause reduced to a
few-line model from plain torch and held to PyTorch itself in every reading (:mod:`step_oracle`:
``FlopCounterMode``, saved-tensor hooks and Adam's bytes through
:func:`convcost.torch.measure_training.measure_training`), as in ``test_profile_transformers_cases3.py``.
"""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_oracle import READINGS, assert_step_agrees, read_by, step_numbers  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training  # noqa: E402

# --- a view taken under torch.no_grad() of a tensor that needs a gradient --------------------------------------


class ViewUnderNoGrad(nn.Module):
    """``h[:, :2]`` under ``torch.no_grad()``, ``h`` needing a gradient: PyTorch gives the view ``requires_grad``
    (it is a view of what needs one) but no graph behind it, so ``b`` computes its input's gradient, which reaches
    nothing before the view (the readings with values and call by call gave it none)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        h = self.a(x)
        with torch.no_grad():
            v = h[:, :2]
        return self.b(v)


class ParameterViewUnderNoGrad(ViewUnderNoGrad):
    """A view of a parameter under ``torch.no_grad()``: it needs a gradient (the product keeps ``b``'s output for
    it), which goes to the view, not to the parameter (no gradient, no Adam state for ``a.weight``)."""

    def forward(self, x):
        with torch.no_grad():
            v = self.a.weight.view(64)
        return self.b(x) * v[:8]


class ViewOfAView(ViewUnderNoGrad):
    """A view of that view, taken after ``no_grad``: its graph ends at the first view too."""

    def forward(self, x):
        h = self.a(x)
        with torch.no_grad():
            v = h.transpose(1, 2)
        return self.b(v.transpose(1, 2)[:, 1:]) + h[:, 1:]


class ComputedUnderNoGrad(ViewUnderNoGrad):
    """Not a view (a product, a contiguous copy) under ``no_grad``: no gradient at all; ``contiguous()`` of a
    contiguous tensor is the tensor itself, still in the graph."""

    def forward(self, x):
        h = self.a(x)
        with torch.no_grad():
            s, same = h * 2, h.contiguous()
        return self.b(s) + same


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [ViewUnderNoGrad, ParameterViewUnderNoGrad, ViewOfAView, ComputedUnderNoGrad],
                         ids=lambda c: c.__name__)
def test_a_view_under_no_grad_needs_a_gradient(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4, 8), reading)


def test_a_view_under_no_grad_by_hand():
    """``b``'s weight gradient and its input's, on 4 tokens (2 x 2 x 8 x 8 each), and nothing of ``a``."""
    _, ours, measured = step_numbers(ViewUnderNoGrad(), torch.randn(2, 4, 8))
    assert measured["backward_macs"] == 2 * (4 * 8 * 8) == ours["backward_macs"]


@pytest.mark.parametrize("reading", READINGS)
def test_the_forward_sees_the_view_need_a_gradient(reading):
    """The forward reads the flag PyTorch gives (call by call, its tensors are computed without autograd: each is
    given the flag the step reads for it)."""
    seen = []

    class Looks(ViewUnderNoGrad):
        def forward(self, x):
            h = self.a(x)
            with torch.no_grad():
                v = h[:, :2]
            seen.append(v.requires_grad)
            return self.b(v)

    model = read_by(Looks, reading)()
    model(torch.randn(2, 4, 8))  # PyTorch's own answer
    profile(model, torch.randn(2, 4, 8), training=True)
    assert seen[0] is True and seen[-1] is True


def test_the_parameter_viewed_under_no_grad_gets_no_gradient():
    model = ParameterViewUnderNoGrad()
    step = profile(model, torch.randn(2, 4, 8), training=True).training
    assert step.unread_params == sum(p.numel() for p in model.a.parameters()) == 72
    assert measure_training(model, (torch.randn(2, 4, 8),))["gradients"] == 72


# --- a boolean mask kept for the backward is 1 byte an element --------------------------------------------------


def saved_bytes(model, x) -> dict:
    """{dtype name: bytes} autograd's saved-tensor hooks see (each storage once, parameters excluded)."""
    from test_profile_autocast import saved_bytes as oracle

    return {k: v for k, v in oracle(model, x).items() if v}


class MaskKept(nn.Module):
    """``masked_fill`` and ``torch.where`` keep their boolean masks for the backward (a float32 model: they were
    priced at float32's 4 bytes an element by convcost and by measure_training alike)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        return torch.where(x > 0, h, 0.0) + h.masked_fill(x[..., :1] < 0, 1.0)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_a_boolean_mask_is_one_byte_an_element(dtype, reading):
    model, x = read_by(MaskKept, reading)().to(dtype), torch.randn(2, 4, 8, dtype=dtype)
    want = saved_bytes(model, x)
    assert want["bool"] == 2 * 4 * 8 + 2 * 4 * 1  # by hand: the two masks, 1 byte an element
    report, ours, measured = step_numbers(model, x)
    assert report.traced_with == reading
    assert dict(report.training.saved_by_dtype) == want
    assert report.training.saved_bytes == sum(want.values())
    assert ours == measured


def test_measure_training_prices_each_storage_in_its_own_bytes():
    """The oracle's bytes: parameters, gradients and Adam's state in float32, then what the hooks saw, by storage."""
    model, x = MaskKept(), torch.randn(2, 4, 8)
    params = sum(p.numel() for p in model.parameters())
    adam = 2 * params * 4 + 4 * len(list(model.parameters()))  # two moments, and a float32 step per tensor
    assert measure_training(model, (x,))["bytes"] == 2 * params * 4 + adam + sum(saved_bytes(model, x).values())


# --- one label per operation, whichever reading: a tensor's operators call by call ------------------------------


class Operators(nn.Module):
    """I-BERT's ``x ** 2`` (read call by call as ``Tensor.pow``, on shapes as ``pow``), and the operators that reach
    a TorchFunctionMode as their own methods (``1 - x`` as ``x.__rsub__(1)``; ``1 / x`` was listed call by call)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        return h ** 2 + 2 ** h + h % 3 + h.detach() // 2 + (1 - h) + 1 / h + h.pow(2) + torch.pow(h, 3)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_one_label_per_operation(training, reading):
    report = profile(read_by(Operators, reading)(), torch.randn(2, 4, 8), training=training)
    assert report.traced_with == reading
    rows = sorted({row.op for row in report.rows} - {"Tensor.sum", "mul"})  # (the reading with values' own)
    assert rows == ["Linear", "add", "sub", "truediv"]
    assert sorted((u.op, u.count) for u in report.unsupported) == [
        ("Tensor.pow", 1), ("floordiv", 1), ("mod", 1), ("pow", 2), ("torch.pow", 1)]


@pytest.mark.parametrize("reading", READINGS)
def test_operators_in_a_step(reading):
    assert_step_agrees(read_by(Operators, reading)(), torch.randn(2, 4, 8), reading)


# --- a cast on shapes is in the dtype it names ----------------------------------------------------------------


class Casts(nn.Module):
    """Casts of a bfloat16 layer's output, as the forward reads their dtypes (``.float()`` kept bfloat16 on shapes
    in an inference reading)."""

    def __init__(self, seen):
        super().__init__()
        # ``seen.append``, not ``seen``: profile puts back the contents of the lists a module holds, which left
        # ``seen`` with PyTorch's answer alone and this test unable to fail
        self.fc, self.note = nn.Linear(8, 8), seen.append

    def forward(self, x):
        h = self.fc(x)
        f = h.float()
        self.note((h.dtype, f.dtype, h.to(torch.float32).dtype, h.double().dtype, h.half().dtype,
                          h.type(torch.float32).dtype, f.bfloat16().dtype, (f * 2).dtype, (f + f).dtype,
                          f.transpose(0, 1).dtype, (h * 2).dtype))
        return f * 2


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_a_cast_is_in_the_dtype_it_names(training, reading):
    seen = []
    model, x = read_by(Casts, reading)(seen).bfloat16(), torch.randn(2, 4, 8, dtype=torch.bfloat16)
    model(x)  # PyTorch's own answer
    report = profile(model, x, training=training)
    assert report.traced_with == reading
    bf16, f32 = torch.bfloat16, torch.float32
    assert len(seen) == 2
    assert seen[-1] == seen[0] == (bf16, f32, f32, torch.float64, torch.float16, f32, bf16, f32, f32, f32, bf16)
