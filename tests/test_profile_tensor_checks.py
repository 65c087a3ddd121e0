"""A forward that asks ``isinstance(x, torch.Tensor)`` or ``torch.is_tensor(x)`` takes PyTorch's branch on shapes.

The shape reading hands the forward stand-ins (:class:`convcost.torch.trace_shapes.Shaped`); to the forward's Python
they are tensors (:mod:`convcost.torch.tensor_checks`), to torch's C++ they are not, as before. Each few-line model
does different work on each branch, so a reading that took the other one gives other counts: they are held to
PyTorch's own (FlopCounterMode's flops halved and numel for a forward; measure_training, through :mod:`step_oracle`,
for a step), never to convcost's formulas.
"""

import abc
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_oracle import READINGS, assert_step_agrees, flop_macs, numel, read_by, step_numbers  # noqa: E402

from convcost.torch.profiling import SHAPES, profile  # noqa: E402


class TwiceForTensors(nn.Module):
    """One layer twice on a tensor, once on anything else (a helper that accepts tensors and numbers)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            x = self.fc(x)
        return self.fc(x)


class IsTensor(TwiceForTensors):
    """The same branch through ``torch.is_tensor`` on a computed value, and ``isinstance`` against a tuple."""

    def forward(self, x):
        h = self.fc(x).relu()
        if torch.is_tensor(h) and isinstance(h, (tuple, torch.Tensor)) and not isinstance(h, (tuple, list)):
            h = self.fc(h)
        return h


class ParameterCheck(TwiceForTensors):
    """A parameter's stand-in is an ``nn.Parameter``, the input's is not."""

    def forward(self, x):
        if isinstance(self.fc.weight, nn.Parameter) and not isinstance(x, nn.Parameter):
            x = self.fc(x)
        return self.fc(x)


@pytest.mark.parametrize("cls", [TwiceForTensors, IsTensor, ParameterCheck])
def test_a_forward_that_branches_on_tensors_is_read_on_pytorchs_branch(cls):
    model = cls()
    r = profile(model, (2, 8))
    assert r.traced_with == SHAPES and r.exact
    assert r.total["macs"] == flop_macs(model, torch.zeros(2, 8)) == 2 * (2 * 8 * 8)
    assert r.total["params"] == numel(model) == 72


SEEN = []  # (profile puts back what a forward writes on its model: a list of the test's)


class SeesItsType(nn.Module):
    """What the forward sees of its input: a tensor to ``isinstance`` and ``torch.is_tensor`` called from Python;
    its own type to ``type``, to ``x.__class__`` and to an ``isinstance`` that C code calls (``map`` here, torch's
    C++ elsewhere)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        SEEN.append((isinstance(x, torch.Tensor), torch.is_tensor(x), *map(isinstance, [x], [torch.Tensor]),
                     type(x).__name__, x.__class__.__name__))
        return self.fc(x)


def test_only_isinstance_called_from_python_is_told_a_stand_in_is_a_tensor():
    SEEN.clear()
    assert profile(SeesItsType(), (2, 8)).traced_with == SHAPES
    assert SEEN == [(True, True, False, "Shaped", "Shaped")]


CHECKS = [isinstance]


class Aliased(TwiceForTensors):
    """``isinstance`` through a local name, and through a list item (a call its frame does not name: read again with
    the profile function watching)."""

    def forward(self, x):
        check = isinstance
        if check(x, torch.Tensor) and CHECKS[0](x, torch.Tensor) and not check(x, (list, tuple)):
            x = self.fc(x)
        return self.fc(x)


class TensorLike(abc.ABC):  # noqa: B024 - only registered with, never subclassed
    """An abstract class ``torch.Tensor`` is registered with: ``isinstance`` asks a stand-in's class from inside
    ``ABCMeta.__instancecheck__``, as it does from inside ``nn.Parameter``'s metaclass."""


TensorLike.register(torch.Tensor)


class Registered(TwiceForTensors):
    def forward(self, x):
        if isinstance(x, TensorLike):
            x = self.fc(x)
        return self.fc(x)


@pytest.mark.parametrize("cls", [TwiceForTensors, IsTensor, ParameterCheck, Aliased, Registered])
def test_every_reading_of_a_forward_takes_the_same_branch(cls):
    """The interpreter specialises a call site run often (a builtin's call then runs in its ``PRECALL``): the
    answers stay the same reading after reading."""
    model = cls()
    macs = flop_macs(model, torch.zeros(2, 8))
    assert {profile(model, (2, 8)).total["macs"] for _ in range(20)} == {macs} == {2 * (2 * 8 * 8)}


def test_each_asker_is_told_the_same_reading_after_reading():
    SEEN.clear()
    for _ in range(20):
        profile(SeesItsType(), (2, 8))
    assert set(SEEN) == {(True, True, False, "Shaped", "Shaped")}


LIAR = """
import sys, torch
class Liar:
    @property
    def __class__(self):
        return torch.Tensor if sys.argv[1] == "lie" else Liar
try:
    torch.utils.dlpack.to_dlpack(Liar())
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_torchs_cpp_asks_a_class_as_isinstance_does():
    """Why a stand-in tells torch's C++ the truth: an object whose ``__class__`` names ``torch.Tensor`` passes
    torch's own type check (``THPVariable_Check`` is ``PyObject_IsInstance``), which then reads it as a tensor's
    memory (here an undefined tensor, or a crash); told the truth, the check refuses it (in a process of its own)."""
    def run(how):
        done = subprocess.run([sys.executable, "-c", LIAR, how], capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout

    assert run("truth") == (0, "TypeError _to_dlpack(): argument 'data' (position 1) must be Tensor, not Liar\n")
    code, out = run("lie")
    assert "must be Tensor" not in out and (code != 0 or out.startswith("RuntimeError")), (code, out)


class ThroughTorchsParser(nn.Module):
    """After ``isinstance`` says yes, the stand-in goes on through torch's argument parser, which asks its type
    again (told the truth, it finds ``__torch_function__``): a number beside it, another overload tried."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        if isinstance(h, torch.Tensor):
            h = self.fc(torch.where(h > 0, h, 0.0) + torch.clamp(h, min=0.5))
        return self.fc(h)


def test_after_isinstance_a_stand_in_still_goes_through_torchs_parser():
    model = ThroughTorchsParser()
    r = profile(model, (2, 8))
    assert r.traced_with == SHAPES and r.exact
    assert r.total["macs"] == flop_macs(model, torch.zeros(2, 8)) == 3 * (2 * 8 * 8)


class Root(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sqrt(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (2 * torch.sqrt(x))


class WithFunction(TwiceForTensors):
    """A custom Function in a forward read for inference: torch's own ``apply`` hands what ``isinstance`` calls a
    tensor to a C++ function, which refuses a stand-in; the reading runs the Function's forward itself."""

    def forward(self, x):
        return self.fc(Root.apply(self.fc(x).square() + 1))


def test_a_custom_function_is_still_read_on_shapes_for_inference():
    model = WithFunction()
    r = profile(model, (2, 8))
    assert r.traced_with == SHAPES and r.exact
    assert r.total["macs"] == flop_macs(model, torch.zeros(2, 8)) == 2 * (2 * 8 * 8)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("cls", [TwiceForTensors, IsTensor, ParameterCheck])
def test_a_step_that_branches_on_tensors_is_pytorchs(cls, reading):
    assert_step_agrees(read_by(cls, reading)(), torch.randn(2, 4, 8), reading, exact=True)


class Checkpointed(nn.Module):
    """Reentrant checkpointing: ``CheckpointFunction`` saves the tensors among its inputs (``torch.is_tensor``)
    and runs the inner layer under no_grad; its backward runs that layer again."""

    def __init__(self):
        super().__init__()
        self.fc, self.inner = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return checkpoint(self.inner, self.fc(x), use_reentrant=True) * 2


@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")
def test_a_reentrant_checkpoint_is_read_for_inference():
    model = Checkpointed()
    r = profile(model, (2, 4, 8))
    assert r.traced_with == SHAPES and r.exact
    assert r.total["macs"] == flop_macs(model, torch.zeros(2, 4, 8)) == 2 * (2 * 4 * 8 * 8)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")
def test_a_reentrant_checkpoint_step_keeps_what_pytorch_keeps(reading):
    """Its backward (the layer run again) cannot be read on meta tensors, so the step is listed as incomplete;
    what it keeps is PyTorch's: the linear layer's input and the checkpoint's (64 + 64), the shape readings
    included (they kept 64 while ``torch.is_tensor`` said no)."""
    report, ours, measured = step_numbers(read_by(Checkpointed, reading)(), torch.randn(2, 4, 8), adam=False)
    step = report.training
    assert not step.complete
    assert [op for op, _, _, _ in step.untracked] == ["CheckpointFunction"]
    assert ours["saved_elements"] == measured["saved_elements"] == 64 + 64
    if reading == READINGS[0]:
        assert report.traced_with == SHAPES


def test_under_another_profiler_the_reading_gives_way_rather_than_guess():
    """With a profile function of someone else's in place the stand-ins cannot tell Python's ``isinstance`` from
    torch's C++: the forward is read on real tensors, and says why."""
    model = TwiceForTensors()
    events = []
    sys.setprofile(lambda frame, event, arg: events.append(event) if len(events) < 10 else None)
    try:
        r = profile(model, (2, 8))
    finally:
        sys.setprofile(None)
    assert events  # (the other profiler kept its place)
    assert r.traced_with == "calls on meta tensors" and r.exact
    assert "another profiler" in r.notes[0]
    assert r.total["macs"] == flop_macs(model, torch.zeros(2, 8)) == 2 * (2 * 8 * 8)
