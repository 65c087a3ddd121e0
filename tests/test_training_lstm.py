"""The LSTM's training step against PyTorch 2.13 on the CPU.

Without a projection PyTorch trains an ``nn.LSTM`` through oneDNN's fused RNN (``mkldnn_rnn_layer``, one
call per layer and direction), whose backward ``FlopCounterMode`` cannot see; with one it runs the LSTM cell
by cell. So the oracles are: ``saved_tensors_hooks`` on the path PyTorch takes (oneDNN's workspace, a uint8
buffer, counted as its bytes / 4 float32 elements); ``FlopCounterMode`` on the same step with oneDNN switched
off, where PyTorch runs the cell-by-cell path and FlopCounterMode sees every product; and hand arithmetic
written here. Nothing is computed from the formulas under test.
"""

from __future__ import annotations

import contextlib
import random

import pytest
import sympy
import torch
from hypothesis import given
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from convcost import primitives as p
from convcost.errors import ConvcostError
from convcost.primitives.recurrent import workspace
from convcost.testing import lstm_cases
from convcost.torch import profile, to_torch
from convcost.torch.conventions import torch_backward_macs
from convcost.torch.measure_training import backward_macs, measure_training, saved_tensors

#: PyTorch warns once that oneDNN does not take a projection: that is the path these tests expect
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

GRADS = [(True, True), (False, True), (True, False), (False, False)]  # (input_grad, trainable)


class Output(nn.Module):
    """An LSTM's output alone (``nn.LSTM`` returns ``(output, (h_n, c_n))``)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


@contextlib.contextmanager
def without_onednn():
    """oneDNN switched off: PyTorch runs the LSTM cell by cell, in matmuls FlopCounterMode counts."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False  # the setter, not mkldnn.flags(): that one warns about Intel GPUs' TF32
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def _built(layer, shape, trainable):
    torch.manual_seed(0)
    module = Output(to_torch(layer, shape))
    module.requires_grad_(trainable)
    return module


def _saved_storages(module, x, input_grad):
    """The raw saved tensors: ``(storages saved, the input's, the output's, bytes of uint8 storages)``."""
    x = x.detach().clone().requires_grad_(input_grad)
    owned = {t.untyped_storage().data_ptr() for t in module.parameters()}
    seen, workspaces = set(), []

    def pack(t):
        pointer = t.untyped_storage().data_ptr()
        if pointer not in owned and pointer not in seen:
            seen.add(pointer)
            if t.dtype == torch.uint8:
                workspaces.append(t.untyped_storage().nbytes())
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    return seen, x.untyped_storage().data_ptr(), out.untyped_storage().data_ptr(), workspaces


def _check(case, input_grad, trainable):
    layer, shape = case
    c = layer.cost(shape, input_grad=input_grad, trainable=trainable)
    module = _built(layer, shape, trainable)
    x = torch.randn(*shape)
    where = f"{layer!r} on {shape}, input_grad={input_grad}, trainable={trainable}"
    saved = saved_tensors(module, x, input_grad=input_grad)
    assert (c.saved_elements, c.saved_indices) == (saved["elements"], saved["indices"]), where
    storages, given, output, workspaces = _saved_storages(module, x, input_grad)
    assert (c.saves_input, c.saves_output) == (given in storages, output in storages), where
    fused = layer.P == 0 and (input_grad or trainable)
    calls = layer.layers * (2 if layer.bidirectional else 1)
    assert len(workspaces) == (calls if fused else 0), where  # oneDNN's path exactly when there is no projection
    # FlopCounterMode sees nothing of oneDNN's backward: on the default path it counts the projection's only
    assert backward_macs(module, x, input_grad=input_grad) == (0 if fused else c.backward_macs), where
    with without_onednn():
        assert c.backward_macs == backward_macs(module, x, input_grad=input_grad), where
        assert torch_backward_macs(c) == backward_macs(module, x, input_grad=input_grad, convention="torch"), where


@pytest.mark.parametrize("input_grad, trainable", GRADS)
@given(case=lstm_cases())
def test_lstm_step(case, input_grad, trainable):
    """Saved elements and flags on the path PyTorch takes, backward MACs with oneDNN off, for every grad flag."""
    _check(case, input_grad, trainable)


# -- by hand -----------------------------------------------------------------------------------------------------


def test_a_step_on_onednn_by_hand():
    layer, shape = p.LSTM(I=8, H=16), (5, 2, 8)
    module, x = _built(layer, shape, True), torch.randn(*shape)
    rows, gates = 5 * 2, 4 * 16
    inputs = rows * gates * 8  # the input projection: its input gradient, and its weight gradient as many again
    state = (5 - 1) * 2 * gates * 16  # the recurrence's state gradient: every step but the first (h_0 is a constant)
    weights = rows * gates * 16  # the recurrence's weight gradient
    assert (inputs, state, weights) == (5120, 8192, 10240)
    expected = {(True, True): 2 * inputs + state + weights, (False, True): inputs + state + weights,
                (True, False): inputs + state, (False, False): 0}
    with without_onednn():
        for (input_grad, trainable), macs in expected.items():
            module.requires_grad_(trainable)
            assert layer.cost(shape, input_grad=input_grad, trainable=trainable).backward_macs == macs
            assert backward_macs(module, x, input_grad=input_grad) == macs
    module.requires_grad_(True)
    # oneDNN 3.12's workspace: seven regions (gates 10 x 64, hidden 10 x 16, five of 2 x 6 x 2 rows of 16
    # states), each under 4096 bytes, so one page each
    assert 10 * 64 * 4 < 4096 and 2 * 6 * 2 * 16 * 4 < 4096
    pages = 7 * 4096 // 4
    # the input, h_0 and c_0 (zeros), the output, h_n and c_n, the workspace
    by_hand = 5 * 2 * 8 + 2 * (2 * 16) + 5 * 2 * 16 + 2 * (2 * 16) + pages
    assert by_hand == layer.cost(shape).saved_elements == saved_tensors(module, x)["elements"] == 7536


def test_a_projection_by_hand():
    """``P > 0``: oneDNN refuses it, PyTorch runs the cells and FlopCounterMode sees the whole backward."""
    layer, shape = p.LSTM(I=4, H=6, P=3), (3, 2, 4)
    module, x = _built(layer, shape, True), torch.randn(*shape)
    rows, gates = 3 * 2, 4 * 6
    # input projection (input and weight gradients), recurrence (weight gradient every step, state gradient
    # after the first), projection (its input and weight gradients)
    macs = 2 * rows * gates * 4 + rows * gates * 3 + (3 - 1) * 2 * gates * 3 + 2 * rows * 6 * 3
    assert macs == 2088 == layer.cost(shape).backward_macs == backward_macs(module, x, input_grad=True)
    # c_0 and h_0, the input, then per step: the gates, tanh(c), h before the projection; and the cell
    # state and projected h of every step but the last (the next step reads them)
    saved = 2 * 6 + 2 * 3 + 3 * 2 * 4 + 3 * (2 * 24 + 2 * 6 + 2 * 6) + 2 * (2 * 6 + 2 * 3)
    assert saved == 294 == layer.cost(shape).saved_elements == saved_tensors(module, x, input_grad=True)["elements"]


@pytest.mark.parametrize("layer, shape", [(p.LSTM(I=5, H=7, layers=2, bidirectional=True), (4, 3, 5)),
                                          (p.LSTM(I=5, H=7, bias=False, P=3), (4, 3, 5)),
                                          (p.LSTM(I=5, H=7, batch_first=True), (3, 4, 5))], ids=repr)
@pytest.mark.parametrize("input_grad, trainable", GRADS[:3])
def test_the_memory_of_a_step(layer, shape, input_grad, trainable, optimizer="adam"):
    """Bytes of parameters, gradients, optimizer state (Adam's step scalar per parameter tensor) and saved
    tensors, the workspace's bytes among them, against one real step."""
    module = _built(layer, shape, trainable)
    measured = measure_training(module, torch.randn(*shape), optimizer=optimizer, input_grad=input_grad)
    assert layer.cost(shape, input_grad=input_grad, trainable=trainable).training_memory(optimizer) == measured["bytes"]


# -- oneDNN's workspace ------------------------------------------------------------------------------------------

#: sizes around oneDNN's alignments: 4H and max(I, H) across multiples of 16, 64 and 256 floats (256 and its
#: multiples get 16 more), and T N large enough that regions cross 4096-byte pages
BOUNDARIES = [(1, 1, 1, 1), (3, 4, 1, 1), (3, 5, 2, 3), (16, 16, 1, 1), (17, 63, 2, 2), (5, 64, 3, 2), (5, 65, 3, 2),
              (255, 8, 2, 2), (256, 8, 2, 2), (257, 8, 2, 2), (12, 256, 2, 1), (300, 250, 1, 2), (40, 128, 8, 8),
              (8, 16, 31, 2), (8, 16, 32, 2), (8, 16, 33, 2), (2, 1, 60, 17), (512, 3, 4, 1), (7, 200, 1, 20)]


@pytest.mark.parametrize("inputs, hidden, steps, batch", BOUNDARIES)
def test_the_workspace_is_onednns(inputs, hidden, steps, batch):
    _, _, _, workspaces = _saved_storages(Output(nn.LSTM(inputs, hidden)), torch.randn(steps, batch, inputs), True)
    assert workspaces == [4 * workspace(steps, batch, inputs, hidden)]


def test_the_workspace_in_closed_form_binds_to_the_numbers():
    T, N, I, H = sympy.symbols("T N I H", positive=True, integer=True)
    general = workspace(T, N, I, H)
    rng = random.Random(0)
    for steps, batch, inputs, hidden in [*((s, n, i, h) for i, h, s, n in BOUNDARIES),
                                         *((rng.randint(1, 80), rng.randint(1, 80), rng.randint(1, 700),
                                            rng.randint(1, 700)) for _ in range(20))]:
        bound = general.subs({T: steps, N: batch, I: inputs, H: hidden})
        assert bound == workspace(steps, batch, inputs, hidden)


@pytest.mark.parametrize("bidirectional, batch_first, P", [(False, False, 0), (True, True, 0), (True, False, 2)])
def test_the_training_counts_in_closed_form_bind_to_the_numbers(bidirectional, batch_first, P):
    T, N = sympy.symbols("T N", positive=True, integer=True)
    layer = p.LSTM(I=5, H=6, layers=2, bias=False, batch_first=batch_first, bidirectional=bidirectional, P=P)
    general = layer.cost((N, T, 5) if batch_first else (T, N, 5), input_grad=False)
    for steps, batch in [(1, 1), (1, 3), (4, 1), (7, 5), (40, 30)]:
        bound = layer.cost((batch, steps, 5) if batch_first else (steps, batch, 5), input_grad=False)
        numbers = general.subs(T=steps, N=batch)
        assert (numbers.backward_macs, numbers.saved_elements) == (bound.backward_macs, bound.saved_elements)


# -- in a model --------------------------------------------------------------------------------------------------


class Rows(nn.Module):
    """A convolution, then an LSTM along each image row (timm's Sequencer reads rows and columns so)."""

    def __init__(self, bidirectional=True, bias=True, proj=0, batch_first=True, layers=1):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.rnn = nn.LSTM(8, 6, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                           proj_size=proj)

    def forward(self, x):
        y = self.conv(x)
        b, c, h, w = y.shape
        rows = y.permute(0, 2, 3, 1).reshape(b * h, w, c)  # B H sequences of W steps
        out, _ = self.rnn(rows if self.rnn.batch_first else rows.transpose(0, 1))
        return out.sum()


@pytest.mark.parametrize("fields", [{}, {"bidirectional": False}, {"bias": False}, {"proj": 3},
                                    {"batch_first": False}, {"layers": 2}], ids=repr)
@pytest.mark.parametrize("input_grad", [False, True])
def test_a_sequencer_step(fields, input_grad):
    """profile's step is complete and is the measured one: saved elements and bytes (Adam) on the path
    PyTorch takes, backward MACs with oneDNN off (FlopCounterMode cannot see its backward)."""
    torch.manual_seed(0)
    model, x = Rows(**fields), torch.randn(2, 3, 4, 5)
    step = profile(model, x.clone().requires_grad_(True) if input_grad else (2, 3, 4, 5), training=True).training
    assert step.complete
    measured = measure_training(model, x, input_grad=input_grad)
    assert (step.saved_elements, step.memory("adam")) == (measured["saved_elements"], measured["bytes"])
    with without_onednn():
        measured = measure_training(model, x, input_grad=input_grad)
    assert (step.backward_macs, step.backward_macs_torch) == (measured["backward_macs"],
                                                              measured["backward_macs_torch"])


class Strided(nn.Module):
    """An LSTM read from a permuted view of a tensor a ReLU keeps: a time-major view the LSTM must copy, or,
    for ``batch_first``, ``time_major=True`` makes the view it transposes back a contiguous one (no copy)."""

    def __init__(self, batch_first, proj, bidirectional, time_major=False):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 1)
        self.rnn = nn.LSTM(6, 5, batch_first=batch_first, proj_size=proj, bidirectional=bidirectional)
        self.time_major = time_major

    def forward(self, x):
        y = torch.relu(self.conv(x))  # (N, 6, L), kept by the ReLU
        if self.time_major:  # (L, N, 6) contiguous, handed over as its (N, L, 6) transpose
            seq = y.permute(2, 0, 1).contiguous().transpose(0, 1)
        else:
            seq = y.permute(0, 2, 1) if self.rnn.batch_first else y.permute(2, 0, 1)
        out, _ = self.rnn(seq)
        return out.sum() + y.sum()


@pytest.mark.parametrize("batch_first, proj, bidirectional, time_major",
                         [(False, 0, False, False), (True, 0, True, False), (False, 2, True, False),
                          (True, 2, False, False), (True, 0, False, True), (True, 2, True, True)])
@pytest.mark.parametrize("frozen", [False, True])
def test_a_strided_input(batch_first, proj, bidirectional, time_major, frozen):
    """What the LSTM keeps of a strided input: oneDNN's path a contiguous copy (not the ReLU's storage), the
    cell path one copy per direction when its projection is trained; none when the time-major view is
    contiguous already."""
    torch.manual_seed(0)
    model, x = Strided(batch_first, proj, bidirectional, time_major), torch.randn(3, 4, 7)
    model.rnn.requires_grad_(not frozen)
    step = profile(model, (3, 4, 7), training=True).training
    assert step.complete
    measured = measure_training(model, x)
    assert (step.saved_elements, step.memory("adam")) == (measured["saved_elements"], measured["bytes"])
    with without_onednn():
        assert step.backward_macs == measure_training(model, x)["backward_macs"]


def test_dropout_between_layers_is_listed_not_counted():
    """``nn.LSTM(dropout=p)`` keeps the noise and the dropped copy between layers in training: listed, and the
    memory refused (one layer has no dropout to apply, and is counted)."""
    class Deep(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.rnn = nn.LSTM(4, 5, num_layers=layers, dropout=0.5 if layers > 1 else 0.0)

        def forward(self, x):
            return self.rnn(x)[0].sum()

    step = profile(Deep(2), (6, 3, 4), training=True).training
    assert not step.complete and step.untracked[0][0] == "LSTM" and "dropout" in step.untracked[0][3]
    with pytest.raises(ConvcostError, match="dropout between an LSTM's layers"):
        step.memory("adam")
    assert profile(Deep(1), (6, 3, 4), training=True).training.complete
