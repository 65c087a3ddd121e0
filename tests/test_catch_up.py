"""A reading on shapes that meets a value it cannot give goes on with values from there
(:meth:`convcost.torch.trace_shapes._Session.catch_up`): the calls read so far run on tensors, in order, then every
call after. It must read what the reading with values from the start reads (rows, listing, the branch the values
take), with the forward run once; where it cannot catch up (a write into a tensor that is no stand-in) the forward
is read again with values, as before. Oracles: FlopCounterMode's MACs of the real forward, the same reading with
values from the start, numel, and how many times the forward ran."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from step_oracle import flop_macs  # noqa: E402

from convcost.torch import trace_shapes  # noqa: E402
from convcost.torch.profiling import VALUES, profile  # noqa: E402


def _rows(report):
    return [(r.path, r.op, r.input_shapes, r.output_shape, r.counts, r.tied_to) for r in report.rows]


def _from_start(monkeypatch, model, x):
    """The report of the reading with values from the start (the catch-up off), and how often the forward ran."""
    init = trace_shapes._Session.__init__

    def no_tape(session, *args, **kwargs):
        init(session, *args, **kwargs)
        session.tape = None

    with monkeypatch.context() as patch:
        patch.setattr(trace_shapes._Session, "__init__", no_tape)
        before = model.runs
        report = profile(model, x)
        return report, model.runs - before


#: forward runs by model id, kept outside the models (a reading puts what it finds in a model back as it was)
RUNS = {}


class Counted(nn.Module):
    """A model that counts its forward runs."""

    @property
    def runs(self):
        return RUNS.get(id(self), 0)

    def forward(self, x):
        RUNS[id(self)] = self.runs + 1
        return self.body(x)


class Experts(Counted):
    """Mixture-of-experts routing as transformers writes it (GPT-OSS, the privacy filter): top-k, one-hot, the experts
    hit by ``nonzero``, a Python loop over them with ``torch.where`` on the mask, and ``index_add_`` into a tensor
    made from the input."""

    def __init__(self, experts=4, width=8):
        super().__init__()
        self.router = nn.Linear(width, experts)
        self.up = nn.Parameter(torch.randn(experts, width, 2 * width))
        self.down = nn.Parameter(torch.randn(experts, 2 * width, width))
        self.experts = experts

    def body(self, x):
        weights, chosen = torch.topk(self.router(x).softmax(-1), 2, dim=-1)
        out = torch.zeros_like(x)
        mask = F.one_hot(chosen, self.experts).permute(2, 1, 0)
        for expert in torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero():
            expert = expert[0]
            place, token = torch.where(mask[expert])
            h = F.gelu(x[token] @ self.up[expert]) @ self.down[expert]
            out.index_add_(0, token, h * weights[token, place, None])
        return out + x


def test_routing_read_once_with_the_rows_of_the_reading_with_values(monkeypatch):
    torch.manual_seed(0)
    model, x = Experts().eval(), torch.randn(6, 8)
    before = model.runs
    caught = profile(model, x)
    assert model.runs - before == 1  # caught up: the forward ran once
    assert caught.traced_with == VALUES and "nonzero" in caught.notes[0]
    fresh, runs = _from_start(monkeypatch, model, x)
    assert runs == 2 and fresh.traced_with == VALUES  # on shapes until the value, then again with values
    assert _rows(caught) == _rows(fresh)
    assert [u.paths for u in caught.unsupported] == [u.paths for u in fresh.unsupported]
    assert caught.total["macs"] == flop_macs(model, x)
    assert caught.total["params"] == sum(p.numel() for p in model.parameters())


class Written(Counted):
    """A branch on values written in place first: ``y -= 10``, ``y[:, 0] = 0``, and through a view (``v.mul_``), each
    flipping the branch where a catch-up would miss it (the input is ones)."""

    def __init__(self, write):
        super().__init__()
        self.write = write
        self.small, self.large = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 16, 5, padding=2)

    def body(self, x):
        y = x * 2  # 2 everywhere
        if self.write == "isub":
            y -= 10
        elif self.write == "setitem":
            y[:, 1:] = -50
        elif self.write == "view":
            y[:, :1].mul_(-100)
        return self.large(x) if y.mean() < 0 else self.small(x)


@pytest.mark.parametrize("write", ["isub", "setitem", "view", "none"])
def test_writes_in_place_before_the_value_are_run_again_in_place(monkeypatch, write):
    model, x = Written(write).eval(), torch.ones(1, 3, 8, 8)
    before = model.runs
    caught = profile(model, x)
    assert model.runs - before == 1
    large = write != "none"
    assert [r.path for r in caught.rows if r.op == "Conv2d"] == (["large"] if large else ["small"])
    # by hand: 16 x 3 x 5 x 5 per output position of an 8 x 8 map (padded), or 4 x 3
    assert caught.total["macs"] == flop_macs(model, x) == (16 * 75 * 64 if large else 4 * 3 * 64)
    fresh, _ = _from_start(monkeypatch, model, x)
    assert _rows(caught) == _rows(fresh)


class Appended(Counted):
    """A list passed to ``torch.cat`` and appended to afterwards: the call run at catch-up takes the list it had."""

    def __init__(self):
        super().__init__()
        self.small, self.large = nn.Conv2d(3, 4, 1), nn.Conv2d(6, 16, 3)

    def body(self, x):
        parts = [x * 1]
        y = torch.cat(parts, dim=1)
        parts.append(x * -5)
        if y.sum() > 0:
            return self.small(y)
        return self.large(torch.cat(parts, dim=1))


def test_a_list_changed_after_the_call_is_read_as_the_call_had_it():
    model, x = Appended().eval(), torch.ones(1, 3, 8, 8)
    before = model.runs
    report = profile(model, x)
    assert model.runs - before == 1  # the cat run at catch-up had one part, as the forward's did
    assert [r.path for r in report.rows if r.op == "Conv2d"] == ["small"]
    assert report.total["macs"] == flop_macs(model, x) == 4 * 3 * 64


class Constant(Counted):
    """A value written into a tensor of the forward's own (not a stand-in) before a value is read: no catch-up (the
    calls on that tensor ran before the write would be made), the forward read again with values."""

    def __init__(self):
        super().__init__()
        self.small, self.large = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 16, 3)

    def body(self, x):
        scale = torch.ones(1, 3, 1, 1)
        scale[:, :] = x.mean() - 10  # -9: a write of a computed value into a constant
        total = scale.sum()  # a call on the constant alone, run as it is made (on shapes: before the write)
        if (x * total).sum() < 0:
            return self.large(x)
        return self.small(x)


def test_a_write_into_a_constant_reads_the_forward_again_with_values():
    model, x = Constant().eval(), torch.ones(1, 3, 8, 8)
    before = model.runs
    report = profile(model, x)
    assert model.runs - before == 2  # on shapes (given up at the value), then with values
    assert report.traced_with == VALUES
    assert [r.path for r in report.rows if r.op == "Conv2d"] == ["large"]
    assert report.total["macs"] == flop_macs(model, x) == 16 * 27 * 36


class ReadBack(Counted):
    """A computed value written into a constant, whose values the forward then reads on the constant alone (no
    stand-in in the call): on shapes the write is not made, so the reading must not answer from the constant."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.small, self.large = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 16, 3)

    def body(self, x):
        scale = torch.ones(3)
        view = scale[:2]  # made before the write: the same storage
        if self.how == "setitem":
            scale[0] = x.mean() - 10
        else:
            scale.copy_(x.mean(dim=(0, 2, 3)) - 10)
        if view.sum() < 0:
            return self.large(x)
        return self.small(x)


@pytest.mark.parametrize("how", ["setitem", "copy_"])
def test_a_constant_written_from_a_computed_value_is_read_with_values(how):
    model, x = ReadBack(how).eval(), torch.ones(1, 3, 8, 8)
    report = profile(model, x)
    assert report.traced_with == VALUES
    assert [r.path for r in report.rows if r.op == "Conv2d"] == ["large"]
    assert report.total["macs"] == flop_macs(model, x) == 16 * 27 * 36


class LateWrite(Counted):
    """Token positions (known values, run as they are read) added to a computed tensor (not run on shapes), then
    written in place: at catch-up the addition must read the positions as they were."""

    def __init__(self):
        super().__init__()
        self.small, self.large = nn.Linear(4, 2), nn.Linear(4, 64)

    def forward(self, x, positions):
        RUNS[id(self)] = self.runs + 1
        h = x + positions  # 1 + 0: positive
        positions -= 100  # run now, on the positions' values
        return self.large(h) if h.sum() < 0 else self.small(h)


def test_a_write_run_on_known_values_after_a_call_reading_them_is_not_replayed_before_it():
    model, x, positions = LateWrite().eval(), torch.ones(3, 4), torch.zeros(3, 4, dtype=torch.long)
    report = profile(model, (x, positions))
    assert [r.path for r in report.rows if r.path in ("small", "large")] == ["small"]
    assert report.total["macs"] == flop_macs(model, x, positions.clone()) == 3 * 4 * 2


class Buffered(Counted):
    """A floating buffer the forward writes into before a value is read: run again at catch-up, then put back."""

    def __init__(self):
        super().__init__()
        self.register_buffer("total", torch.zeros(3))
        self.lin = nn.Linear(3, 3)
        self.small, self.large = nn.Linear(3, 2), nn.Linear(3, 64)

    def body(self, x):
        self.total.add_(x.sum(0))
        h = self.lin(x) + self.total
        return self.large(h) if h.sum() > 0 else self.small(h)


def test_buffers_written_before_a_catch_up_are_put_back():
    torch.manual_seed(0)
    model, x = Buffered().eval(), torch.ones(4, 3) * 100
    before = model.runs
    report = profile(model, x)
    assert model.runs - before == 1
    assert torch.equal(model.total, torch.zeros(3))  # the model left as it was
    assert [r.path for r in report.rows if r.path in ("small", "large")] == ["large"]
    assert report.total["macs"] == flop_macs(model, x)
    assert torch.equal(model.total, torch.zeros(3) + 400)  # (the oracle's real forward wrote into it)
