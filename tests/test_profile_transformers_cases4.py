"""More of what the transformers zoo (benchmarks/zoo_transformers.py) found (issue #26), each cause reduced to a
few-line model from plain torch and held to PyTorch itself (``FlopCounterMode`` and saved-tensor hooks through
:func:`convcost.torch.measure_training.measure_training`), in every reading, as in
``test_profile_transformers_cases3.py``.
"""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_profile_transformers_cases3 import READINGS, assert_step_agrees, read_by, step_numbers  # noqa: E402


# --- detach() cuts the gradient: a layer reached only through it gets no backward ----------------------------

class Detached(nn.Module):
    """``dec(enc(x).detach())``: ``enc`` runs in the forward, yet the loss reaches it through nothing."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(8, 8), nn.Linear(8, 8)

    def pick(self, h):
        return h

    def forward(self, x):
        return self.dec(self.pick(self.enc(x)).detach())


class SlicedThenDetached(Detached):
    def pick(self, h):
        return h[:, :2]


class GatheredThenDetached(Detached):
    def pick(self, h):
        return h.gather(1, torch.zeros(2, 2, 8, dtype=torch.int64))


class TopkThenDetached(Detached):
    """RT-DETR's query selection: ``topk(...).values`` of a layer's scores, detached."""

    def pick(self, h):
        return h.topk(2, dim=1).values


class DetachedViewed(Detached):
    """A view of the detached tensor: it too carries no gradient back."""

    def forward(self, x):
        return self.dec(self.enc(x).detach().view(2, 4, 8)[:, 1:])


class DetachedAndNot(Detached):
    """The same layer read detached and not: it is reached through the second read."""

    def forward(self, x):
        h = self.enc(x)
        return self.dec(h.detach()) + h


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [Detached, SlicedThenDetached, GatheredThenDetached, TopkThenDetached,
                                   DetachedViewed, DetachedAndNot], ids=lambda c: c.__name__)
def test_detach_cuts_the_gradient(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4, 8), reading)


def test_detached_by_hand():
    """Only ``dec`` has a backward: its weight gradient, 8 x 8 for each of 8 tokens (its input needs none)."""
    _, ours, measured = step_numbers(Detached(), torch.randn(2, 4, 8))
    assert measured["backward_macs"] == 8 * 8 * 8 == ours["backward_macs"]
