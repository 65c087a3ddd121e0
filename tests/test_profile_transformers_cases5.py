"""More of what the transformers zoo (benchmarks/zoo_transformers.py) found (issue #26), each cause reduced to a
few-line model from plain torch and held to PyTorch itself (``FlopCounterMode``, ``numel``, and saved-tensor hooks
through :func:`convcost.torch.measure_training.measure_training`), in every reading, as in
``test_profile_transformers_cases3.py``.
"""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_oracle import READINGS, assert_step_agrees, read_by  # noqa: E402

from convcost.torch import profile  # noqa: E402


def forward_agrees(model, inputs):
    """``profile``'s forward claims exact, with PyTorch's params (``numel``) and MACs (``FlopCounterMode`` // 2)."""
    report = profile(model, inputs)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(inputs)
    assert report.exact, report.unsupported
    assert report.total["macs"] == counter.get_total_flops() // 2
    assert report.total["params"] == sum(p.numel() for p in model.parameters())


# --- bucketize and searchsorted: integer bucket ids, no multiply-accumulate, no gradient ----------------------

class Bucketed(nn.Module):
    """Idefics3's vision position ids: fractional patch coordinates put in buckets (``torch.bucketize``), then
    looked up in a position embedding."""

    def __init__(self):
        super().__init__()
        self.pos, self.lin = nn.Embedding(4, 8), nn.Linear(8, 8)

    def forward(self, x):
        steps = torch.full((x.shape[0],), 0.25)
        coords = torch.clamp(torch.arange(4, dtype=torch.float32)[None, :] * steps[:, None], max=1 - 1e-6)
        ids = torch.bucketize(coords, torch.arange(0, 1, 0.25), right=True) - 1
        return self.lin(x + self.pos(ids))


class SearchedFromALayer(nn.Module):
    """``searchsorted`` of a layer's output: the ids carry no gradient back to the layer."""

    def __init__(self):
        super().__init__()
        self.score, self.pos, self.lin = nn.Linear(8, 1), nn.Embedding(5, 8), nn.Linear(8, 8)

    def forward(self, x):
        ids = torch.searchsorted(torch.linspace(-1, 1, 4), self.score(x)[..., 0].contiguous())
        return self.lin(x + self.pos(ids))


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [Bucketed, SearchedFromALayer], ids=lambda c: c.__name__)
def test_bucket_ids_are_no_work_and_carry_no_gradient(model, reading):
    forward_agrees(read_by(model, reading)(), torch.randn(2, 4, 8))
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4, 8), reading)


# --- an einsum's output is its pairwise product permuted: a strided view the next einsum may fold as it is -----

class ChunkedScan(nn.Module):
    """Mamba 2's chunked scan (GraniteMoeHybrid, Bamba, Zamba 2, FalconH1): each chunk's start state is an einsum
    over the chunks, ``(b, z, c, h) x (b, z, h, p, n) -> (b, c, h, p, n)``, which PyTorch returns as its ``bmm``
    over ``(b, h)`` permuted (strides (1024, 128, 256, 16, 1) here, not contiguous); sliced to all chunks but
    the last and multiplied by ``C`` in a second einsum, ``(b, h)`` merge without a copy, so autograd keeps a view
    of the whole first output (2,048 elements), not a compact copy of the slice (1,024)."""

    def __init__(self):
        super().__init__()
        self.decay, self.states, self.c = nn.Linear(8, 4), nn.Linear(8, 4 * 8 * 16), nn.Linear(8, 4 * 16)

    def forward(self, x):
        decay = self.decay(x[:, :2]).view(2, 2, 1, 4).expand(2, 2, 2, 4)  # (b, z, c, h)
        states = self.states(x[:, :2]).view(2, 2, 4, 8, 16)  # (b, z, h, p, n)
        new_states = torch.einsum("bzch,bzhpn->bchpn", decay, states)
        c = self.c(x).view(2, 1, 8, 4, 16)  # (b, c, l, h, n)
        return torch.einsum("bclhn,bchpn->bclhp", c, new_states[:, :-1])


@pytest.mark.parametrize("reading", READINGS)
def test_an_einsum_output_keeps_its_strides(reading):
    forward_agrees(read_by(ChunkedScan, reading)(), torch.randn(2, 8, 8))
    assert_step_agrees(read_by(ChunkedScan, reading)(), torch.randn(2, 8, 8), reading)


# --- torch.vmap in the forward: its calls see one example, on tensors with no storage ---------------------------

class MaskByVmap(nn.Module):
    """transformers' attention masks (``masking_utils``): a mask function of (batch, query, key) indices, reading a
    padding tensor, vmapped over each index; Nemotron 3.5 ASR's step was refused (a vmapped tensor has no
    storage)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        valid = torch.ones(x.shape[0], x.shape[1], dtype=torch.bool)

        def keep(b, q, k):
            return valid[b, k] & (q >= 0)

        for dims in ((None, None, 0), (None, 0, None), (0, None, None)):
            keep = torch.vmap(keep, in_dims=dims)
        mask = keep(torch.arange(x.shape[0]), torch.arange(x.shape[1]), torch.arange(x.shape[1]))
        h = self.lin(x)
        return (h @ h.transpose(-1, -2)).masked_fill(~mask, -1e9).softmax(-1) @ h  # eager attention


class LayerByVmap(nn.Module):
    """A layer run under ``torch.vmap``: it sees one example, so its cost is not the batch's; listed."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        return torch.vmap(lambda row: torch.tanh(self.lin(row)))(x)


@pytest.mark.parametrize("reading", READINGS)
def test_a_mask_made_under_vmap_is_read_as_a_constant(reading):
    forward_agrees(read_by(MaskByVmap, reading)(), torch.randn(2, 4, 8))
    assert_step_agrees(read_by(MaskByVmap, reading)(), torch.randn(2, 4, 8))


@pytest.mark.parametrize("reading", READINGS)
def test_a_layer_under_vmap_is_listed(reading):
    model, x = read_by(LayerByVmap, reading)(), torch.randn(2, 4, 8)
    report = profile(model, x)
    assert not report.exact and [u.op for u in report.unsupported] == ["Linear"]
    assert report.total["params"] == sum(p.numel() for p in model.parameters())
    step = profile(model, x, training=True).training
    assert not step.complete and [u[0] for u in step.untracked] == ["Linear"]


# --- Falcon's multi-query attention: keys and values cut by a list index, one head for every query head ---------

class ListIndexedHeads(nn.Module):
    """Falcon's ``_split_heads``: ``qkv[..., [-2], :]`` indexes by a list, which PyTorch makes an int64 index
    tensor that autograd keeps (one element here)."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        qkv = self.qkv(x).view(2, 4, 6, 4)
        return qkv[..., :-2, :] * qkv[..., [-2], :] + qkv[..., [-1], :]


class OneKeyHead(nn.Module):
    """Falcon's sdpa with one key and value head for four query heads, without ``enable_gqa``: PyTorch 2.13's
    CPU takes the math path, which expands key and value to every head and keeps those copies."""

    mask = None

    def __init__(self):
        super().__init__()
        self.q, self.kv = nn.Linear(8, 32), nn.Linear(8, 16)

    def forward(self, x):
        q = self.q(x).view(2, 8, 4, 8).transpose(1, 2)
        k, v = self.kv(x).view(2, 8, 1, 16).transpose(1, 2).split(8, -1)
        return nn.functional.scaled_dot_product_attention(q, k.contiguous(), v.contiguous(), attn_mask=self.mask)


class OneKeyHeadMasked(OneKeyHead):
    mask = torch.zeros(2, 1, 8, 8)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [ListIndexedHeads, OneKeyHead, OneKeyHeadMasked], ids=lambda c: c.__name__)
def test_multi_query_heads(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4 if model is ListIndexedHeads else 8, 8), reading)


# --- baddbmm and addmm: the added input may have the operands' shape -------------------------------------------

class ScoresByBaddbmm(nn.Module):
    """GPT-NeoX-Japanese's attention scores: ``baddbmm(zeros, q, k^T, alpha=...)`` with the zeros, the query and
    the key all (heads, length, length): the operands are the call's second and third tensors, not the first two
    of the right shape (the step was silently short by one of the two gradient products)."""

    def __init__(self):
        super().__init__()
        self.qk = nn.Linear(8, 16)

    def forward(self, x):
        q, k = self.qk(x).split(8, -1)
        return torch.baddbmm(torch.zeros(2, 8, 8), q, k.transpose(1, 2), alpha=0.25)


class ScoresByAddmm(ScoresByBaddbmm):
    def forward(self, x):
        q, k = self.qk(x[0]).split(8, -1)
        return torch.addmm(torch.zeros(8, 8), q, k.t())


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [ScoresByBaddbmm, ScoresByAddmm], ids=lambda c: c.__name__)
def test_an_added_input_of_the_operands_shape(model, reading):
    forward_agrees(read_by(model, reading)(), torch.randn(2, 8, 8))
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 8, 8), reading)


# --- torch._check_tensor_all: a value read, no work ---------------------------------------------------------------

class Checked(nn.Module):
    """transformers' ``torch_compilable_check`` on a tensor condition (RT-DETR v2's sampling offsets): its
    ``Tensor._is_all_true`` flagged the forward as possibly missing multiply-accumulates."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        h = self.lin(x)
        torch._check_tensor_all(h.abs() >= 0)
        return h


@pytest.mark.parametrize("reading", READINGS)
def test_a_tensor_check_is_no_work(reading):
    forward_agrees(read_by(Checked, reading)(), torch.randn(2, 4, 8))
    assert_step_agrees(read_by(Checked, reading)(), torch.randn(2, 4, 8))


# --- x[..., d:] *= s: an in-place product on a slice keeps a copy of the slice ----------------------------------

class ScaledHalves(nn.Module):
    """DAB-DETR's decoder scales each half of its query's sine embedding in place by the anchor's size
    (``query_sine_embed[..., d:] *= (w / h).unsqueeze(-1)``). ``mul_`` needs the slice's values from before the
    write for the scale's gradient, so autograd keeps a copy of the slice (40 elements here), not the storage it
    views, which the write changes; the readings spell ``*=`` as ``x[..., d:] = x[..., d:] * s``."""

    def __init__(self):
        super().__init__()
        self.a, self.size, self.proj = nn.Linear(8, 8), nn.Linear(8, 2), nn.Linear(8, 8)

    def forward(self, x):
        q = self.a(x)
        size = self.size(x).sigmoid()
        q[..., 4:] *= size[..., 0].unsqueeze(-1)
        q[..., :4] *= size[..., 1].unsqueeze(-1)
        return self.proj(q)


class ScaledHalvesByMethod(ScaledHalves):
    """The same with ``mul_`` and ``div_`` called on the slices, which every reading sees as in place."""

    def forward(self, x):
        q = self.a(x)
        size = self.size(x).sigmoid()
        q[..., 4:].mul_(size[..., :1])
        q[..., :4].div_(size[..., 1:])
        return self.proj(q)


class ScaledWhole(ScaledHalves):
    """``q *= s`` on the whole tensor: the copy and the written storage are each kept once."""

    def forward(self, x):
        q = self.a(x)
        q *= self.size(x)[..., :1].sigmoid()
        return self.proj(q)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [ScaledHalves, ScaledHalvesByMethod, ScaledWhole], ids=lambda c: c.__name__)
def test_an_in_place_product_keeps_a_copy_of_what_it_overwrites(model, reading):
    forward_agrees(read_by(model, reading)(), torch.randn(5, 2, 8))
    assert_step_agrees(read_by(model, reading)(), torch.randn(5, 2, 8), reading)


# --- x //= 2: an in-place floor division is no work -----------------------------------------------------------

class FloorHalved(nn.Module):
    """DAB-DETR's sine position embedding makes its frequencies in place (``dim_t //= 2``, then ``mul_`` and
    ``copy_``): ``Tensor.floor_divide_`` flagged the forward as possibly missing multiply-accumulates."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        dim_t = torch.arange(8, dtype=torch.float32)
        dim_t //= 2
        dim_t.mul_(2 / 8)
        dim_t.copy_(10000 ** dim_t)
        return self.lin(x / dim_t)


@pytest.mark.parametrize("reading", READINGS)
def test_an_in_place_floor_division_is_no_work(reading):
    forward_agrees(read_by(FloorHalved, reading)(), torch.randn(2, 4, 8))
    assert_step_agrees(read_by(FloorHalved, reading)(), torch.randn(2, 4, 8), reading)
