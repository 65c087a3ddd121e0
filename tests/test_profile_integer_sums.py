"""The sum of a boolean or integer tensor is an int64 tensor in PyTorch, and a loss divided by it keeps it.

``n = (x[:, 0] >= 0).sum(); loss / max(1, n)`` (torchvision's RetinaNet divides its classification loss by its
count of foreground anchors so): autograd's division keeps the int64 divisor, one saved index. Each few-line model
is read three ways (on shapes, with the values computed alongside, call by call), in one floating dtype (the
itemsize rule) and with a float64 tensor beside the float32 model (each storage priced by its own dtype), and held
to PyTorch's own step (:mod:`step_oracle`: saved-tensor hooks, FlopCounterMode, Adam's bytes), never to convcost's
formulas.
"""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_oracle import READINGS, assert_step_agrees, read_by, step_numbers  # noqa: E402


class Counted(nn.Module):
    """A loss divided by the count of a mask's set elements, and scaled by each row's count (keepdim); ``mixed``:
    by a float64 constant too, which makes the step price each storage by its dtype."""

    def __init__(self, mixed=False):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.mixed = mixed

    def forward(self, x):
        y = self.linear(x)
        if self.mixed:
            y = y * x.double().sum()
        per_row = torch.sum(x >= 0.5, dim=1, keepdim=True)
        return (y * per_row).sum() / (x[:, 0] >= 0).sum()


class Clamped(Counted):
    """RetinaNet's ``loss / max(1, num_foreground)``: the count compared with 1 (a value read), then divided by."""

    def forward(self, x):
        y = self.linear(x)
        if self.mixed:
            y = y * x.double().sum()
        return y.sum() / max(1, (x[:, 0] >= 0).sum())


def positive():
    return torch.rand(5, 4, generator=torch.Generator().manual_seed(0)) + 0.1


@pytest.mark.parametrize("mixed", [False, True], ids=["one dtype", "mixed"])
@pytest.mark.parametrize("reading", READINGS)
def test_a_loss_divided_by_a_count_keeps_the_int64_count(reading, mixed):
    """5 + 1 int64 elements kept: the per-row counts (the product keeps them) and the count divided by."""
    model = read_by(Counted, reading)(mixed)
    _, _, measured = step_numbers(model, positive())
    assert measured["saved_indices"] == 6
    assert_step_agrees(model, positive(), reading)


@pytest.mark.parametrize("mixed", [False, True], ids=["one dtype", "mixed"])
@pytest.mark.parametrize("reading", READINGS)
def test_a_loss_divided_by_max_of_one_and_a_count_keeps_the_count(reading, mixed):
    """``max(1, n)`` is ``n`` itself (5 > 1): one int64 element kept. Comparing it reads its value, so every
    reading goes on with the values computed alongside."""
    model = read_by(Clamped, reading)(mixed)
    _, _, measured = step_numbers(model, positive())
    assert measured["saved_indices"] == 1
    assert_step_agrees(model, positive())
