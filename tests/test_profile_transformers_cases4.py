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
from step_oracle import READINGS, assert_step_agrees, read_by, step_numbers  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training, optimizer_state  # noqa: E402

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


# --- grouped-query attention through sdpa's own flag, key and value heads of their own counts -----------------

class GroupedQuery(nn.Module):
    """``F.scaled_dot_product_attention(q, k, v, enable_gqa=True)`` on 4 query heads and ``HEADS`` key and value
    heads, each projected by a layer: PyTorch repeats the key and the value to the query's heads, each by its own
    count (key and value heads that differ take the math path on the CPU)."""

    HEADS = (2, 2)

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(8, 8 * h) for h in (4, *self.HEADS))

    def forward(self, x):
        heads = (4, *self.HEADS)
        q, k, v = (layer(x).view(1, 8, h, 8).transpose(1, 2) for layer, h in zip((self.q, self.k, self.v), heads))
        return nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)


class KeyHeadsFewer(GroupedQuery):
    HEADS = (2, 4)


class ValueHeadsFewer(GroupedQuery):
    HEADS = (2, 1)


class OneKeyHead(GroupedQuery):
    HEADS = (1, 2)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [GroupedQuery, KeyHeadsFewer, ValueHeadsFewer, OneKeyHead],
                         ids=lambda c: c.__name__)
def test_grouped_query_attention_through_sdpa(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(1, 8, 8), reading)


def test_key_and_value_heads_that_differ_by_hand():
    """The math path's backward on 4 x 8 x 8 scores: the scores' gradient (8 per score), the query's and key's
    (8 each), the value's (8); plus the three layers' weight gradients on 8 tokens (the input needs none)."""
    _, ours, measured = step_numbers(KeyHeadsFewer(), torch.randn(1, 8, 8))
    assert measured["backward_macs"] == 4 * 8 * 8 * (8 + 8 + 8 + 8) + 8 * 8 * (32 + 16 + 32) == ours["backward_macs"]


def test_grouped_heads_take_one_count_or_a_pair():
    from convcost import primitives as p
    from convcost.errors import ConvcostError

    with pytest.raises(ConvcostError, match=r"kv_groups takes one count or a pair \(key, value\), got \(2, 1, 1\)"):
        p.Attention(kv_groups=(2, 1, 1)).cost([(1, 4, 8, 8), (1, 2, 8, 8), (1, 4, 8, 8)])


# --- batch norm without affine weights under autocast: its running statistics decide what it keeps ------------

def saved_bytes(model, x) -> dict:
    """{dtype name: bytes} autograd keeps in one training-mode forward of ``model`` on ``x`` under the autocast
    in force, each storage once, parameters and buffers excluded (``test_profile_autocast.py``'s oracle)."""
    from test_profile_autocast import saved_bytes as oracle

    return {k: v for k, v in oracle(model, x).items() if v}


class NormWithoutWeights(nn.Module):
    """A convolution, then batch norm without affine weights, with running statistics (``TRACK``) or without:
    the CPU keeps the batch mean and inverse std in the statistics' dtype (float32), else in the input's."""

    TRACK, FUNCTIONAL = True, False

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, affine=False, track_running_stats=self.TRACK)

    def forward(self, x):
        y = self.conv(x)
        if self.FUNCTIONAL:
            return nn.functional.batch_norm(y, self.bn.running_mean, self.bn.running_var, training=True)
        return self.bn(y)


class NormWithoutStatistics(NormWithoutWeights):
    TRACK = False


class FunctionalNormWithoutWeights(NormWithoutWeights):
    FUNCTIONAL = True


class FunctionalNormWithoutStatistics(NormWithoutWeights):
    TRACK, FUNCTIONAL = False, True


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [NormWithoutWeights, NormWithoutStatistics, FunctionalNormWithoutWeights,
                                   FunctionalNormWithoutStatistics], ids=lambda c: c.__name__)
def test_batch_norm_without_weights_under_autocast(model, reading):
    model, x = read_by(model, reading)(), torch.randn(2, 3, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = saved_bytes(model, x)
        report = profile(model, (x,), training=True)
        measured = measure_training(model, (x,), optimizer="adam")
    step = report.training
    assert step.complete, step.untracked
    assert report.traced_with == reading
    assert dict(step.saved_by_dtype) == want
    assert step.saved_bytes == sum(want.values())
    assert step.backward_macs == measured["backward_macs"]
    # float32 weights and gradients, Adam's state, what the step saves in each dtype
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    state = optimizer_state(model, x, optimizer="adam")["bytes"]
    assert step.memory("adam") == 2 * params + state + sum(want.values())


def test_batch_norm_statistics_by_hand():
    """8 channels' mean and inverse std: float32 with running statistics (64 bytes), bfloat16 without (32)."""
    x = torch.randn(2, 3, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kept = {track: saved_bytes(NormWithoutWeights() if track else NormWithoutStatistics(), x)
                for track in (True, False)}
    assert kept[True]["float32"] - kept[False].get("float32", 0) == 2 * 8 * 4
    assert kept[False]["bfloat16"] - kept[True]["bfloat16"] == 2 * 8 * 2


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [NormWithoutWeights, FunctionalNormWithoutWeights], ids=lambda c: c.__name__)
def test_batch_norm_without_weights_of_a_bfloat16_model_under_autocast(model, reading):
    """A model cast to bfloat16, trained under autocast: its running statistics are bfloat16, and so is what the
    step keeps of them (not the float32 of a float32 model's buffers)."""
    model, x = read_by(model, reading)().bfloat16(), torch.randn(2, 3, 6, 6, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = saved_bytes(model, x)
        report = profile(model, (x,), training=True)
    assert report.training.complete, report.training.untracked
    assert report.traced_with == reading
    assert dict(report.training.saved_by_dtype) == want == {"bfloat16": sum(want.values())}
