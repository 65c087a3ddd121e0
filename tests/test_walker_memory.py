"""The walker's memory of calls read before (:meth:`convcost.torch.walker.Walk.remembered`): a call answered from it
makes the rows, the listing and the result a fresh reading of it makes, each at its own path, and parameters are
claimed by the first row that reads them (the oracles: FlopCounterMode's MACs, numel of the distinct parameters, and
the same reading with the memory off)."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from step_oracle import flop_macs  # noqa: E402

from convcost.torch.profiling import profile  # noqa: E402
from convcost.torch.walker import Walk  # noqa: E402


class Blocks(nn.Module):
    """Three blocks of one shape (the second and third read as the first); the third's projection is tied to the
    first's, one block is called twice, and each block makes element-wise calls, a view, an uncounted call and calls
    given parameters."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(3))
        self.blocks[2][0].weight = self.blocks[0][0].weight
        self.scale = nn.Parameter(torch.ones(8))

    def forward(self, x):
        for block in (*self.blocks, self.blocks[1]):
            y = block(x)
            x = F.relu(x + y * 0.5).view(2, 4, 8).reshape(8, 8)
            x = x.exp() + torch.ones_like(x) + F.linear(x, block[0].weight) * self.scale
        return x


def _rows(report):
    return [(r.path, r.op, r.input_shapes, r.output_shape, r.counts, r.tied_to) for r in report.rows]


def test_calls_read_again_from_memory_give_the_rows_of_a_fresh_reading(monkeypatch):
    model, x = Blocks().eval(), torch.randn(8, 8)
    again, hits = Walk.again, []
    monkeypatch.setattr(Walk, "again", lambda walk, found, event: hits.append(event.path) or again(walk, found, event))
    remembered = profile(model, x)
    assert {"blocks.2.0", "relu", "linear", "mul"} <= set(hits) and len(hits) > 20  # the later blocks, from memory
    monkeypatch.setattr(Walk, "remembered", Walk._each)  # the memory off: every call read afresh
    fresh = profile(model, x)
    assert _rows(remembered) == _rows(fresh)
    assert [u.paths for u in remembered.unsupported] == [u.paths for u in fresh.unsupported]
    assert remembered.total["macs"] == flop_macs(model, x) == 8 * 8 * 8 * 8
    distinct = {id(p): p.numel() for p in model.parameters()}
    assert remembered.total["params"] == sum(distinct.values())
    # by hand: a parameter is counted by the first row that reads it, each later row is tied to that one
    assert [(r.path, r.counts["params"]) for r in remembered.rows if r.counts["params"] and not r.tied_to] == [
        ("blocks.0.0", 72), ("blocks.0.1", 16), ("mul#2", 8), ("blocks.1.0", 72), ("blocks.1.1", 16),
        ("blocks.2.1", 16)]
    assert [(r.path, r.tied_to, r.counts["params"]) for r in remembered.rows if r.tied_to] == [
        ("linear", "blocks.0.0", 0), ("linear#2", "blocks.1.0", 0), ("mul#4", "mul#2", 0),
        ("blocks.2.0", "blocks.0.0", 8), ("linear#3", "blocks.0.0", 0), ("mul#6", "mul#2", 0),
        ("blocks.1.0#2", "blocks.1.0", 0),
        ("blocks.1.1#2", "blocks.1.1", 0), ("linear#4", "blocks.1.0", 0), ("mul#8", "mul#2", 0)]


def test_a_call_is_read_again_only_with_the_same_signature():
    from convcost.torch.events import Event
    from convcost.torch.inputs import model_inputs
    from convcost.torch.rules import Tensor

    net = nn.Linear(4, 4)
    walk = Walk(net, model_inputs(net, (2, 4)), symbolic=False)
    for shape, other in [((2, 4), 2), ((2, 4), 2.0), ((2, 4), 2), ((3, 4), 2), ((2, 4), Tensor((4,)))]:
        walk.call(Event("function", torch.mul, (Tensor(shape), other), {}, ""))
    assert len(walk._memo) == 4
    assert [r.input_shapes for r in walk.record.rows] == [((2, 4), (2, 4))] * 3 + [((3, 4), (3, 4)), ((2, 4), (1, 4))]
