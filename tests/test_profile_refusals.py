"""Element-wise calls PyTorch refuses are refused by every reading, with PyTorch's words; the ones it accepts are
counted as before. The oracle is PyTorch: the model run on a real tensor (its exception, or FlopCounterMode's count
of the forward and saved_tensors_hooks' of the step)."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_oracle import READINGS, assert_step_agrees, flop_macs, read_by  # noqa: E402

from convcost.errors import ConvcostError  # noqa: E402
from convcost.torch import profile  # noqa: E402


class Linear(nn.Module):
    """A layer before the call under test, so that the input is a stand-in that needs a gradient in a step."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)


class SoftmaxOfIds(Linear):
    def forward(self, x):
        ids = (self.fc(x) > 0).long()  # made from a stand-in: no values to run the softmax on
        return torch.softmax(ids, -1) + x


class LogSoftmaxMethodOfMask(Linear):
    def forward(self, x):
        return (self.fc(x) > 0).log_softmax(-1) * x


class GeluOfIds(Linear):
    def forward(self, x):
        return nn.functional.gelu((self.fc(x) > 0).int()) * x


class ScaledIdsInPlace(Linear):
    def forward(self, x):
        ids = (self.fc(x) > 0).long()
        ids *= 0.5  # the result is float: PyTorch cannot write it into the int64 ids
        return x * ids


class DividedIdsInPlace(Linear):
    def forward(self, x):
        ids = (self.fc(x) > 0).long() + 1
        ids /= 2
        return x * ids


class SigmoidOfIdsInPlace(Linear):
    def forward(self, x):
        ids = (self.fc(x) > 0).long()
        return x * ids.sigmoid_()


class GrowsInPlace(Linear):
    def forward(self, x):
        y = self.fc(x).sum(1, keepdim=True)
        y += x  # (2, 1) += (2, 4): PyTorch writes no larger result into y
        return y


class GrowsByMethod(Linear):
    def forward(self, x):
        return self.fc(x)[:, :1].clone().mul_(x)


REFUSED = [SoftmaxOfIds, LogSoftmaxMethodOfMask, GeluOfIds, ScaledIdsInPlace, DividedIdsInPlace, SigmoidOfIdsInPlace,
           GrowsInPlace, GrowsByMethod]


def _pytorch_says(model, x) -> str:
    with pytest.raises(RuntimeError) as raised:
        model(x)
    return str(raised.value).splitlines()[0]


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("cls", REFUSED, ids=lambda c: c.__name__)
def test_an_element_wise_call_pytorch_refuses_is_refused_with_its_words(cls, training, reading):
    model, x = read_by(cls, reading)(), torch.randn(2, 4)
    says = _pytorch_says(model, x)
    with pytest.raises(ConvcostError) as refused:
        profile(model, (2, 4), training=training)
    assert says in str(refused.value)


class SigmoidOfIdsThenSoftmax(Linear):
    """sigmoid of integers is float32 (PyTorch promotes it), so the softmax after it runs."""

    def forward(self, x):
        h = self.fc(x)
        return torch.sigmoid((h > 0).long()).softmax(-1) * h


class IdsArithmetic(Linear):
    def forward(self, x):
        h = self.fc(x)
        ids = (h > 0).long()
        ids += 1  # an integer into integers
        ids *= 2
        return h * ids.relu() + torch.softmax(ids.float(), -1) * (x > 0)


class ShrinksInPlace(Linear):
    def forward(self, x):
        y = self.fc(x)
        y += x.sum(1, keepdim=True)  # (2, 4) += (2, 1): broadcast into y, as PyTorch does
        y.mul_(x[0])
        return y


class FloatIntoDouble(Linear):
    def forward(self, x):
        y = self.fc(x).double()
        y *= x  # float32 into float64
        return y.float()


ACCEPTED = [SigmoidOfIdsThenSoftmax, IdsArithmetic, ShrinksInPlace, FloatIntoDouble]


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("cls", ACCEPTED, ids=lambda c: c.__name__)
def test_the_element_wise_calls_pytorch_accepts_are_counted(cls, reading):
    torch.manual_seed(0)
    model, x = read_by(cls, reading)(), torch.randn(2, 4)
    model(x)  # PyTorch runs it
    r = profile(model, (2, 4))
    assert r.traced_with == reading
    assert r.total["macs"] == flop_macs(model, x)


@pytest.mark.parametrize("cls", ACCEPTED, ids=lambda c: c.__name__)
def test_their_training_step_agrees(cls):
    torch.manual_seed(0)
    assert_step_agrees(cls(), torch.randn(2, 4))


class ScaledIdsGiven(nn.Module):
    """The ids are given, so the shape reading has their values and runs the write on them (PyTorch fails there)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, ids):
        scaled = ids.clone()
        scaled *= 0.5
        return self.emb(ids) * scaled.unsqueeze(-1)


class SoftmaxOfIdsGiven(ScaledIdsGiven):
    def forward(self, ids):
        return self.emb(ids) * torch.softmax(ids, -1).unsqueeze(-1)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("cls", [ScaledIdsGiven, SoftmaxOfIdsGiven], ids=lambda c: c.__name__)
def test_a_call_pytorch_refuses_on_the_values_given_is_refused(cls, training):
    ids = torch.tensor([[1, 2, 3]])
    says = _pytorch_says(cls(), ids)
    with pytest.raises(ConvcostError) as refused:
        profile(cls(), ids, training=training)
    assert says in str(refused.value)
