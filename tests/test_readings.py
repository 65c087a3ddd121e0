"""Every reading of a model hands call events to one walker: the rows agree, and convcost's own failures are its own.

The readings are the forward on shapes, the same with the tensors computed alongside, a ``torch.fx`` graph, and
every call on meta tensors. Each model of the profile tests is read by every reading that can
run it, and their rows (path, op label, spec, counts) and a training step's totals must be equal. The oracle is
the readings themselves, against one another; the residual's headline is ptflops' own, run live.
"""

import operator

import pytest

torch = pytest.importorskip("torch")
import test_profile as basic  # noqa: E402
import test_profile_hard as hard  # noqa: E402
import test_profile_training as steps  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcost import primitives  # noqa: E402
from convcost.errors import ConvcostError, InternalError  # noqa: E402
from convcost.torch import profile  # noqa: E402
from convcost.torch.conventions import headline  # noqa: E402
from convcost.torch.inputs import model_inputs  # noqa: E402
from convcost.torch.trace_calls import read_calls  # noqa: E402
from convcost.torch.trace_fx import read_graph, trace  # noqa: E402
from convcost.torch.trace_shapes import NeedsTensors, read_shapes  # noqa: E402
from convcost.torch.walker import Walk  # noqa: E402


class Residual(nn.Module):
    """``relu(conv(x) + x)``, optionally reading one value of its input (which adds no work)."""

    def __init__(self, reads=False):
        super().__init__()
        self.conv, self.reads = nn.Conv2d(4, 4, 3, padding=1), reads

    def forward(self, x):
        if self.reads:
            float(x[0, 0, 0, 0])
        return F.relu(self.conv(x) + x)


class Spellings(nn.Module):
    """One operation, four spellings: each keeps its own label under every reading."""

    def forward(self, x):
        y = x + x
        y = y.add(x)
        y = torch.add(y, x)
        y += x
        return y * 2


FORWARD = {
    "functional": (basic.Functional, (2, 3, 16, 16)),
    "channels-last linear": (basic.ChannelsLastLinear, (1, 96, 8, 8)),
    "tied": (basic.Tied, (4, 16)),
    "untraceable": (basic.Untraceable, (1, 3, 8, 8)),
    "shuffles": (basic.Shuffles, (2, 16, 8, 8)),
    "clamp": (basic.Clamp2, (1, 4)),
    "same conv": (lambda: nn.Sequential(hard.SameConv(3, 8, 3, stride=2), nn.ReLU(), hard.SameConv(8, 4, 5)),
                  (1, 3, 17, 19)),
    "shape flow": (hard.ShapeFlow, (2, 3, 32, 32)),
    "attention": (hard.Attention, (2, 5, 16)),
    "two inputs": (hard.TwoInputs, [(2, 3, 8, 8), (2, 5)]),
    "unpool": (hard.Unpool, (1, 3, 16, 16)),
    "products": (hard.Products, (4, 6)),
    "block": (hard.Block, (1, 4, 8, 8)),
    "shapes alone": (hard.ShapesAlone, (3, 6, 8)),
    "lstm": (lambda: hard.Recurrent(3, 5, 2, True, False, True, 2), (4, 2, 3)),
    "residual": (Residual, (1, 4, 8, 8)),
    "residual reading a value": (lambda: Residual(reads=True), (1, 4, 8, 8)),
    "spellings": (Spellings, (2, 3)),
    **{f"step model {name}": (factory, steps.SHAPES.get(name, (2, 3, 8, 8))) for name, factory in steps.MODELS.items()},
}
TRAINING = {name: (factory, steps.SHAPES.get(name, (2, 3, 8, 8))) for name, factory in steps.MODELS.items()}


def readings(model, inputs, training=False) -> dict:
    """The recorder of every reading that can run ``model``."""
    given = model_inputs(model, inputs)
    model.train(training)
    found = {}
    try:
        found["shapes"] = read_shapes(model, given, training=training)
    except NeedsTensors:
        pass
    try:
        found["values"] = read_shapes(model, given, training=training, with_values=True)
    except NeedsTensors:
        pass
    try:
        graph = trace(model, given)
    except Exception:  # noqa: BLE001 - fx cannot trace it (Python control flow on values or sizes)
        graph = None
    if graph is not None:
        try:
            found["fx"] = read_graph(model, given, graph, training)
        except ConvcostError:  # a graph whose sizes fx froze at tracing, or a value it cannot give
            pass
    found["calls"] = read_calls(model, given, training=training)[0]
    model.eval()
    return found


def rows(record) -> list:
    return [(r.path, r.op, r.spec, r.counts) for r in record.rows]


@pytest.mark.parametrize("name", sorted(FORWARD))
def test_every_reading_gives_the_same_rows(name):
    factory, shape = FORWARD[name]
    found = readings(factory(), shape)
    assert len(found) >= 2, found.keys()
    first, *others = found
    for other in others:
        assert rows(found[other]) == rows(found[first]), (first, other)
        assert found[other].unsupported.keys() == found[first].unsupported.keys(), (first, other)


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_every_reading_gives_the_same_training_step(name):
    factory, shape = TRAINING[name]
    found = readings(factory(), shape, training=True)
    assert len(found) >= 2, found.keys()
    first, *others = found
    for other in others:
        assert rows(found[other]) == rows(found[first]), (first, other)
        assert found[other].step_totals() == found[first].step_totals(), (first, other)


def test_spellings_keep_their_labels_under_every_reading():
    found = readings(Spellings(), (2, 3))
    assert set(found) == {"shapes", "values", "fx", "calls"}
    for record in found.values():
        assert [r.op for r in record.rows][:3] == ["add", "Tensor.add", "torch.add"]


def test_the_residual_gives_ptflops_own_headline_under_every_reading():
    ptflops = pytest.importorskip("ptflops")
    for reads in (False, True):
        model = Residual(reads)
        theirs, _ = ptflops.get_model_complexity_info(model, (4, 8, 8), as_strings=False, print_per_layer_stat=False,
                                                      backend="pytorch")
        assert profile(model, (1, 4, 8, 8)).headline("ptflops") == theirs == 9728  # conv + bias, and F.relu patched
        given = model_inputs(model, (1, 4, 8, 8))
        types = {n: type(m).__name__ for n, m in model.named_modules()}
        for way, record in readings(model, (1, 4, 8, 8)).items():
            report = record.report(inputs=given, traced_with=way, convention="ptflops", headline=headline,
                                   modules=types)
            assert report.headline("ptflops") == theirs, way


# -- failures keep their cause ------------------------------------------------------------------------------


def test_a_broken_formula_is_convcosts_bug(monkeypatch):
    def broken(self, shape, grad=None):
        raise AttributeError("a formula that breaks")

    monkeypatch.setattr(primitives.Conv, "_cost", broken)
    with pytest.raises(InternalError, match="AttributeError: a formula that breaks.*a bug in convcost"):
        profile(nn.Sequential(nn.Conv2d(3, 4, 3)), (1, 3, 8, 8))
    with pytest.raises(InternalError):
        profile(nn.Conv2d(3, 4, 3), (1, 3, 8, 8))
    with pytest.raises(InternalError):
        profile(nn.Sequential(nn.Conv2d(3, 4, 3)), (1, 3, 8, 8), training=True)


@pytest.mark.parametrize("method", ["call", "read"])
def test_a_broken_walker_is_convcosts_bug(monkeypatch, method):
    def broken(self, event):
        raise RuntimeError("a walker that breaks")

    monkeypatch.setattr(Walk, method, broken)
    models = [(nn.Sequential(nn.Conv2d(3, 4, 3)), (1, 3, 8, 8)), (basic.Untraceable(), (1, 3, 8, 8))]
    if method == "read":  # only the call-by-call reading and constants made in the forward reach it
        models = [(NotOnShapes(), (1, 3, 8, 8))]
    for model, shape in models:
        with pytest.raises(InternalError, match="RuntimeError: a walker that breaks"):
            profile(model, shape)


class NotOnShapes(nn.Module):
    """A forward that cannot run on shapes at all: read call by call."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        assert type(x) is torch.Tensor
        return self.conv(x) * 2


def test_a_forward_that_cannot_run_on_shapes_says_which_reading_and_why():
    r = profile(NotOnShapes(), (1, 3, 8, 8))
    assert r.traced_with == "calls on meta tensors" and r.exact
    assert "cannot run on shapes alone" in r.notes[0] and "AssertionError" in r.notes[0]
    values = profile(basic.Untraceable(), (1, 3, 8, 8))
    assert values.traced_with == "shape propagation with values" and "the truth value of a tensor" in values.notes[0]


def test_a_step_that_cannot_run_on_shapes_is_read_call_by_call():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), NotOnShapes())
    model[3].conv = nn.Conv2d(8, 4, 3)
    report = profile(model, (2, 3, 10, 10), training=True)
    assert report.traced_with == "calls on meta tensors" and report.exact
    steps.agrees(model, (2, 3, 10, 10))  # against the step PyTorch runs
    steps.agrees(model, (2, 3, 10, 10), input_grad=True)


def test_pytorchs_refusal_is_still_the_users_error():
    with pytest.raises(ConvcostError, match="PyTorch rejects input.*expected input.*to have 3 channels"):
        profile(nn.Sequential(nn.Conv2d(3, 8, 3)), (1, 4, 8, 8))


def test_one_key_whatever_the_spelling():
    from convcost.torch.ops import key, op_of

    assert key("function", operator.add) is key("method", "__add__") is key("method", "add") is torch.add
    assert op_of("function", operator.iadd) is op_of("function", torch.add)
    assert op_of("method", "view").view and not op_of("function", torch.bmm).view


class _RMSNormedHead(nn.Module):
    """RMS norm written out (``pow``, ``rsqrt``), an integer operand that changes dtype under ``rsqrt`` and keeps
    it under ``neg``: element-wise calls the shape reading answers without a meta run."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 3)

    def forward(self, x, ids):
        scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        eps = torch.finfo(torch.rsqrt(ids).dtype).eps  # an int64 operand: rsqrt gives float32
        bound = torch.iinfo((-ids).dtype).max  # ... and neg keeps int64
        return self.head(x * scale * (1 + eps)).clamp(max=float(bound))


def test_element_wise_calls_on_one_tensor_keep_shape_and_dtype_as_pytorch_does():
    model = _RMSNormedHead()
    x, ids = torch.randn(2, 5, 8), torch.arange(10).reshape(2, 5)
    with FlopCounterMode(display=False) as counter:
        out = model(x, ids)
    report = profile(model, (x, ids))
    assert report.traced_with == "shape propagation"
    assert report.total["macs"] == counter.get_total_flops() // 2 == 2 * 5 * 8 * 3
    assert report.rows[-1].output_shape == tuple(out.shape)
    assert {u.op for u in report.unsupported} >= {"torch.rsqrt", "Tensor.pow"}  # listed, as no-MAC work
