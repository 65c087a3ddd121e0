"""Hostile input to ``convcost.torch.profile``: a report or a ConvcostError, and no state changed.

The companion of tests/test_fuzz.py for ``profile`` (its thread safety has its
own test). Models are small modules and compositions; input shapes and
conventions are hostile values.
"""

from __future__ import annotations

import pytest
from fuzzing import ERROR, attempt, examples, hostile_values, torch_state
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from convcost.report import Report
from convcost.torch import profile
from convcost.torch.conventions import CONVENTIONS

nn = torch.nn

MODELS = [
    nn.Conv2d(3, 4, 3),
    nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                  nn.Linear(4, 2)),
    nn.Linear(4, 2),
    nn.LSTM(4, 3),
    nn.Sequential(nn.Conv1d(2, 2, 3), nn.Dropout(0.5)),
    nn.Conv2d(3, 4, 3).to("meta"),
    nn.Identity(),
]
SHAPES = [(1, 3, 8, 8), (2, 4), (1, 2, 9), (5, 1, 4), (), (1, 3, 0, 8), (1, 3, 10**30, 8)]

# PyTorch's first traced run loads its machinery (seconds); that is not the call under test
profile(nn.Conv2d(3, 4, 3), (1, 3, 8, 8))


def _fingerprint(module):
    return ([(n, t.device.type, t.dtype, t.requires_grad, tuple(t.shape),
              None if t.is_meta else t.detach().clone())
             for n, t in [*module.named_parameters(), *module.named_buffers()]],
            [m.training for m in module.modules()],
            [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in module.modules()])


def _same(a, b) -> bool:
    (ta, ma, ha), (tb, mb, hb) = a, b
    return ma == mb and ha == hb and len(ta) == len(tb) and all(
        x[:5] == y[:5] and (x[5] is None) == (y[5] is None) and (x[5] is None or torch.equal(x[5], y[5]))
        for x, y in zip(ta, tb))


@settings(max_examples=examples(200, 4000))
@given(st.sampled_from(range(len(MODELS))), st.booleans(), st.one_of(st.sampled_from(SHAPES), hostile_values()),
       st.one_of(st.sampled_from(sorted(CONVENTIONS)), hostile_values()))
def test_profile_leaves_state(index, training, shape, convention):
    model = MODELS[index]
    model.train(training)
    before, state = _fingerprint(model), torch_state()
    result = attempt("profile", profile, model, shape, convention=convention)
    assert result is ERROR or isinstance(result, Report)
    assert _same(_fingerprint(model), before)
    assert torch_state() == state


@settings(max_examples=examples(100, 2000))
@given(hostile_values(), hostile_values())
def test_profile_arguments(model, shape):
    assert attempt("profile", profile, model, shape) is ERROR
