"""Dtypes of reductions, scans and casts, and writes in place, as the shape readings read them, held to PyTorch.

Each few-line model is read three ways (on shapes, with the values computed alongside, call by call:
:func:`step_oracle.read_by`). The dtype the forward sees of each result is held to the same forward run on real
tensors (the call's own dtype); a training step to PyTorch's own (:mod:`step_oracle`: saved-tensor hooks,
FlopCounterMode and Adam's bytes through :func:`convcost.torch.measure_training.measure_training`), never to
convcost's formulas. A step PyTorch refuses to run backward on (a tensor saved for the backward, then written in
place) is refused by PyTorch here and listed by convcost, never counted.
"""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_oracle import READINGS, assert_step_agrees, read_by, step_numbers  # noqa: E402

from convcost.errors import ConvcostError  # noqa: E402
from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training  # noqa: E402


def seen_agrees(cls, reading, x, training=False):
    """The dtypes ``cls``'s forward records, in PyTorch's own run and in profile's reading, which must be ``reading``
    (the model holds ``seen.append``, not ``seen``: profile puts back the contents of the lists a module holds)."""
    seen = []
    model = read_by(cls, reading)(seen)
    model(x)  # PyTorch's own answer
    report = profile(model, x, training=training)
    assert report.traced_with == reading
    assert len(seen) == 2 and seen[-1] == seen[0]
    return seen[0]


# --- (a) reductions and scans of integer and boolean tensors ----------------------------------------------------

class Reduced(nn.Module):
    """Reductions and scans of a boolean mask and its int32 and int64 copies: ``sum``/``prod``/``cumsum`` of them
    are int64 (unless a dtype is asked), ``amax``/``amin``/``max``/``min`` keep their dtype, indices are int64."""

    def __init__(self, seen):
        super().__init__()
        self.fc, self.note = nn.Linear(8, 8), seen.append

    def forward(self, x):
        m = x > 0
        i, n = m.int(), m.long()
        self.note(tuple(t.dtype for t in (
            m.sum(-1), i.sum(-1), m.amax(-1), i.amax(-1), i.amin(-1, keepdim=True), n.amax(-1), torch.amax(m, -1),
            torch.amin(i, (0, 1)), m.prod(-1), i.prod(-1), m.cumsum(-1), i.cumsum(-1), i.cumprod(-1),
            torch.cumsum(m, -1, dtype=torch.int32), i.sum(-1, dtype=torch.float64), torch.sum(i, dtype=torch.int32),
            i.max(), m.max(), i.max(-1).values, i.max(-1).indices, i.min(-1)[0], i.argmax(-1), i.argmin(-1),
            i.topk(2, -1).values, i.topk(2, -1).indices, m.any(-1), i.float().mean(-1),
            i.mean(-1, dtype=torch.float64))))
        return self.fc(x)


@pytest.mark.parametrize("reading", READINGS)
def test_integer_and_boolean_reductions_are_in_pytorchs_dtypes(reading):
    i32, i64, b = torch.int32, torch.int64, torch.bool
    assert seen_agrees(Reduced, reading, torch.randn(2, 4, 8)) == (
        i64, i64, b, i32, i32, i64, b, i32, i64, i64, i64, i64, i64, i32, torch.float64, i32,
        i32, b, i32, i64, i32, i64, i64, i32, i64, b, torch.float32, torch.float64)


class MeanOfIntegers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x) * (x > 0).int().mean(-1, keepdim=True)


@pytest.mark.parametrize("reading", READINGS)
def test_the_mean_of_integers_is_refused_as_pytorch_refuses_it(reading):
    model = read_by(MeanOfIntegers, reading)()
    with pytest.raises(RuntimeError, match="mean"):
        model(torch.randn(2, 4, 8))
    with pytest.raises(ConvcostError, match="mean"):
        profile(model, torch.randn(2, 4, 8))


class KeptReductions(nn.Module):
    """A layer's output scaled by reductions of a mask, which the products keep for the backward: a boolean amax
    (1 byte an element), a boolean prod (int64: an index), an int32 amin (4 bytes, 8 in a float64 model's)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h, m = self.fc(x), x > 0
        return (h * m.amax(-1, keepdim=True) + h * m.prod(-1, keepdim=True) + h * m.int().amin(-1, keepdim=True)
                + h * m.cumsum(-1)).sum()


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_integer_reductions_kept_by_a_step_in_their_own_bytes(dtype, reading):
    model, x = read_by(KeptReductions, reading)().to(dtype), torch.randn(2, 4, 8, dtype=dtype)
    _, _, measured = step_numbers(model, x)
    assert measured["saved_indices"] == 2 * 4 + 2 * 4 * 8  # the prod and the cumsum, by hand
    assert_step_agrees(model, x, reading)


# --- (b) a reduction or softmax after a cast is in the cast's dtype ---------------------------------------------

class CastThenReduced(nn.Module):
    """A float32 (or bfloat16) model's reductions and softmaxes of cast copies: each in the copy's dtype."""

    def __init__(self, seen):
        super().__init__()
        self.fc, self.note, self.softmax = nn.Linear(8, 8), seen.append, nn.Softmax(-1)

    def forward(self, x):
        h = self.fc(x)
        self.note(tuple(t.dtype for t in (
            h.double().softmax(-1), h.to(torch.bfloat16).sum(-1), F.softmax(h, -1, dtype=torch.float64),
            torch.softmax(h, -1, torch.float64), h.double().amax(-1), h.double().mean(-1), h.float().sum(),
            F.log_softmax(h.double(), -1), self.softmax(h.double()), h.double().sum(-1, dtype=torch.float16))))
        return h


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_a_reduction_after_a_cast_is_in_the_casts_dtype(training, reading):
    f64 = torch.float64
    assert seen_agrees(CastThenReduced, reading, torch.randn(2, 4, 8), training) == (
        f64, torch.bfloat16, f64, f64, f64, f64, torch.float32, f64, f64, torch.float16)


class CastsKept(nn.Module):
    """What a step keeps of reductions and softmaxes of cast copies: softmax keeps its float64 output, the product
    keeps a bfloat16 sum and the float64 softmax it multiplies."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        a = h.double().softmax(-1)
        b = F.softmax(h, -1, dtype=torch.float64)
        c = h.to(torch.bfloat16).sum(-1, keepdim=True)
        d = h.double().amax(-1, keepdim=True)
        return (a * b).sum() + (a * c).sum() + (b * d).sum()


@pytest.mark.parametrize("reading", READINGS)
def test_a_step_keeps_reductions_of_casts_in_their_dtypes(reading):
    assert_step_agrees(read_by(CastsKept, reading)(), torch.randn(2, 4, 8), reading)


# --- (c) a write under torch.no_grad() -------------------------------------------------------------------------

class WrittenUnderNoGrad(nn.Module):
    """``h`` written in place under ``torch.no_grad()``, before any call keeps it: PyTorch's step runs, and
    ``b`` keeps the written ``h``."""

    def __init__(self, where="slice"):
        super().__init__()
        self.a, self.b, self.where = nn.Linear(8, 8), nn.Linear(8, 8), where

    def write(self, h):
        with torch.no_grad():
            if self.where == "slice":
                h[..., :4] *= 2
            elif self.where == "index":
                h[torch.tensor([0, 1])] = torch.ones(8)
            else:
                h.mul_(2)

    def forward(self, x):
        h = self.a(x)
        self.write(h)
        return self.b(h)


class WrittenAfterKept(WrittenUnderNoGrad):
    """... after ``b`` kept it: the backward reads values no longer there, which PyTorch refuses."""

    def forward(self, x):
        h = self.a(x)
        y = self.b(h)
        self.write(h)
        return y


WHERES = ["slice", "index", "whole"]


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("where", WHERES)
def test_a_write_under_no_grad_before_a_call_keeps_the_tensor(where, reading):
    assert_step_agrees(read_by(WrittenUnderNoGrad, reading)(where), torch.randn(2, 4, 8), reading)


def refused_by_pytorch_and_listed(model, x, reading):
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        measure_training(model, (x,))
    report = profile(model, x, training=True)
    assert report.traced_with == reading
    assert not report.training.complete
    assert any("in place" in why for _, _, _, why in report.training.untracked)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("where", WHERES)
def test_a_write_under_no_grad_after_a_call_kept_the_tensor_is_listed(where, reading):
    refused_by_pytorch_and_listed(read_by(WrittenAfterKept, reading)(where), torch.randn(2, 4, 8), reading)


# --- (d) x *= y, x.mul_(y), x.add_(y) on a whole tensor --------------------------------------------------------

class InPlace(nn.Module):
    """A whole tensor written in place by a tensor that needs a gradient (``mul_`` keeps a copy of what it
    overwrites), before a call keeps it."""

    def __init__(self, how="*="):
        super().__init__()
        self.a, self.g, self.b, self.how = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8), how

    def write(self, h, g):
        if self.how == "*=":
            h *= g
        elif self.how == "+=":
            h += g
        elif self.how == "-=":
            h -= g
        elif self.how == "/=":
            h /= g
        elif self.how == "mul_":
            h.mul_(g)
        else:
            h.add_(g)

    def forward(self, x):
        h = self.a(x)
        self.write(h, torch.sigmoid(self.g(x)))
        return self.b(h)


class InPlaceAfterKept(InPlace):
    """... after ``torch.sigmoid`` kept its output ``s`` and ``b`` kept it as its input: PyTorch refuses the
    backward."""

    def forward(self, x):
        s = torch.sigmoid(self.a(x))
        y = self.b(s)
        self.write(s, self.g(x))
        return y + s


HOWS = ["*=", "+=", "-=", "/=", "mul_", "add_"]


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("how", HOWS)
def test_a_whole_tensor_written_in_place(how, reading):
    assert_step_agrees(read_by(InPlace, reading)(how), torch.randn(2, 4, 8), reading)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("how", HOWS)
def test_a_whole_tensor_written_in_place_after_a_call_kept_it_is_listed(how, reading):
    refused_by_pytorch_and_listed(read_by(InPlaceAfterKept, reading)(how), torch.randn(2, 4, 8), reading)


@pytest.mark.parametrize("reading", READINGS)
def test_an_in_place_write_is_the_tensor_itself(reading):
    """``x *= y`` writes into ``x``: another name for it, or a view taken before, sees the write (PyTorch's own
    numbers: the view kept by ``b`` is the storage written, kept once)."""

    class Aliased(InPlace):
        def forward(self, x):
            h = self.a(x)
            alias, view = h, h[:, :2]
            h *= torch.sigmoid(self.g(x))
            return self.b(view).sum() + (alias is h) * self.b(alias).sum()

    assert_step_agrees(read_by(Aliased, reading)(), torch.randn(2, 4, 8), reading)


class SliceProductWrittenBack(WrittenUnderNoGrad):
    """``h[..., :4] = h[..., :4] * s``, written out of place: the product keeps the slice of ``h`` for ``s``'s
    gradient, then the write changes it, which PyTorch refuses at backward (unlike ``h[..., :4] *= s``, whose
    ``mul_`` keeps a copy: test_profile_transformers_cases5.py)."""

    def forward(self, x):
        h, s = self.a(x), torch.sigmoid(self.b(x))
        h[..., :4] = h[..., :4] * s[..., :4]
        return h


@pytest.mark.parametrize("reading", READINGS)
def test_a_slice_written_back_from_a_product_that_kept_it_is_listed(reading):
    refused_by_pytorch_and_listed(read_by(SliceProductWrittenBack, reading)(), torch.randn(2, 4, 8), reading)


class VarianceOfIntegers(MeanOfIntegers):
    """``var`` of an int32 tensor: PyTorch refuses it on the CPU, though its meta kernel does not."""

    def forward(self, x):
        return self.fc(x) * (x > 0).int().var(-1, keepdim=True)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_the_variance_of_integers_is_refused_as_pytorch_refuses_it(training, reading):
    model = read_by(VarianceOfIntegers, reading)()
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        model(torch.randn(2, 4, 8))
    with pytest.raises(ConvcostError, match="std and var only support floating point"):
        profile(model, torch.randn(2, 4, 8), training=training)
