"""What the transformers zoo (benchmarks/zoo_transformers.py) found, each cause reduced to a few-line model.

Every case is held to PyTorch itself, never to convcost's formulas: ``FlopCounterMode`` and saved-tensor
hooks through :func:`convcost.torch.measure_training.measure_training` (the CPU's fused attention kernel, which
FlopCounterMode does not count, taken out by convcost's own row for it), or the error PyTorch raises. A case
not fixed yet is ``xfail(strict=True)``: it starts failing loudly the day the fix lands, and its marker goes.
"""

import contextlib
import functools
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcost.errors import ConvcostError  # noqa: E402
from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from step_oracle import assert_step_agrees, assert_step_agrees_or_listed, step_numbers  # noqa: E402
from test_profile_custom_functions import ClippedSqrt  # noqa: E402  RecurrentGemma's custom backward

# --- a tensor computed from integer token ids keeps the ids' dtype -------------------------------------------

class Embed(nn.Module):
    """Token ids through an embedding and a norm, attention scores cast back to the hidden states' dtype
    (GPT-2, Llama): read on shapes, the norm's output took the ids' int64, so the cast read as a kept copy."""

    def __init__(self, vocab=11, d=8):
        super().__init__()
        self.emb, self.norm, self.q = nn.Embedding(vocab, d), nn.LayerNorm(d), nn.Linear(d, d)

    def forward(self, ids):
        h = self.norm(self.emb(ids))
        scores = torch.softmax(self.q(h) @ h.transpose(-1, -2), dim=-1, dtype=torch.float32).type(h.dtype)
        return scores @ h


IDS = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])


def test_a_layer_after_the_embedding_has_the_weights_dtype():
    """The zoo's first symptom (BERT's last hidden state read as int64): what a layer after the embedding of
    int64 ids gives is a float tensor, as PyTorch gives it."""
    seen = {}

    class Out(Embed):
        def forward(self, ids):
            h = self.norm(self.emb(ids))
            seen["dtype"] = h.dtype
            return h

    profile(Out(), IDS, training=True)
    assert seen["dtype"] == Out()(IDS).dtype == torch.float32


def test_ids_dtype_does_not_leak_into_the_step():
    assert_step_agrees(Embed(), IDS)


class Finfo(nn.Module):
    """``torch.finfo(x.dtype)`` on a tensor computed from ids (T5's and many decoders' mask code)."""

    def __init__(self):
        super().__init__()
        self.emb, self.norm = nn.Embedding(11, 8), nn.LayerNorm(8)

    def forward(self, ids):
        h = self.norm(self.emb(ids))
        return h + (ids == 0)[..., None] * torch.finfo(h.dtype).min


def test_finfo_of_a_tensor_computed_from_ids():
    assert_step_agrees(Finfo(), IDS)


# --- one index tensor shared by every layer (BEiT's cached relative-position index) -------------------------

@functools.lru_cache
def _relative_index(n: int):
    return (torch.arange(n)[:, None] - torch.arange(n)[None, :] + n - 1).flatten()


class SharedIndex(nn.Module):
    def __init__(self, n=5, layers=2):
        super().__init__()
        self.tables = nn.ParameterList(nn.Parameter(torch.randn(2 * n - 1)) for _ in range(layers))

    def forward(self, x):
        n = x.shape[-1]
        for table in self.tables:
            x = x + table[_relative_index(n)].view(n, n)
        return x


def test_a_shared_index_is_saved_once():
    assert_step_agrees(SharedIndex(), torch.randn(2, 5, 5))


class SameIndexTwice(nn.Module):
    """The same index tensor, computed once in the forward, gathers from two tables."""

    def __init__(self, n=5):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.randn(2 * n - 1)), nn.Parameter(torch.randn(2 * n - 1))

    def forward(self, x):
        n = x.shape[-1]
        index = (torch.arange(n)[:, None] - torch.arange(n)[None, :] + n - 1).flatten()
        return x + self.a[index].view(n, n) + self.b[index].view(n, n)


def test_one_index_used_twice_is_saved_once():
    assert_step_agrees(SameIndexTwice(), torch.randn(2, 5, 5))


class BufferPositions(nn.Module):
    """BERT's position ids: a slice of a registered buffer fed to an embedding. The embedding keeps the slice
    for its backward, but its storage is the buffer's, which the step does not add (as for every buffer)."""

    def __init__(self, n=16, d=8):
        super().__init__()
        self.emb, self.pos = nn.Embedding(11, d), nn.Embedding(n, d)
        self.register_buffer("position_ids", torch.arange(n)[None], persistent=False)

    def forward(self, ids):
        return self.emb(ids) + self.pos(self.position_ids[:, :ids.shape[1]])


def test_a_buffer_slice_kept_for_the_backward_is_not_counted():
    assert_step_agrees(BufferPositions(), IDS)


class ExpandedIds(nn.Module):
    """BERT's token type ids: one row of ids made in the forward, expanded over the batch; the embedding keeps
    the expanded view, whose storage is the one row."""

    def __init__(self, d=8):
        super().__init__()
        self.emb, self.types = nn.Embedding(11, d), nn.Embedding(2, d)

    def forward(self, ids):
        types = torch.zeros(1, ids.shape[1], dtype=torch.long).expand(ids.shape[0], -1)
        return self.emb(ids) + self.types(types)


def test_an_expanded_index_is_saved_as_its_storage():
    assert_step_agrees(ExpandedIds(), IDS)


# --- torch.where keeps the gradient flag of the tensor it selects from (T5's position bias) -----------------

class WhereBias(nn.Module):
    def __init__(self, heads=2, n=6, d=8):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(1, heads, n, n))
        self.qkv, self.heads = nn.Linear(d, 3 * d), heads

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        mask = torch.where(causal, self.bias, -1e4)   # needs a gradient: PyTorch takes the math path
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum(1)


def test_where_keeps_the_gradient_flag():
    assert_step_agrees(WhereBias(), torch.randn(2, 6, 8))


# --- masked_fill's boolean mask is saved ---------------------------------------------------------------------

class MaskedFill(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        y = self.a(x)
        return self.b(y.masked_fill(y > 0.5, 0.0))


def test_masked_fill_saves_its_mask():
    assert_step_agrees(MaskedFill(), torch.randn(2, 4, 8))


# --- sdpa with a float mask (Swin's shifted windows) ---------------------------------------------------------

class WindowMask(nn.Module):
    def __init__(self, windows=4, heads=2, n=9, d=8):
        super().__init__()
        self.qkv, self.heads = nn.Linear(d, 3 * d), heads
        self.register_buffer("mask", torch.zeros(windows, 1, n, n).masked_fill(torch.rand(windows, 1, n, n) > 0.7,
                                                                                -100.0))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        windows = self.mask.shape[0]
        mask = self.mask.repeat(b // windows, 1, 1, 1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, d)


def test_sdpa_with_a_window_mask_totals_agree():
    assert_step_agrees_or_listed(WindowMask(), torch.randn(8, 9, 8))


class WindowMaskWithBias(WindowMask):
    """timm's Swin with sdpa: the window mask plus a learned relative-position bias, so the mask needs a gradient
    (PyTorch takes the math path) and its dtype is read as unknown (the step is listed)."""

    def __init__(self, windows=4, heads=2, n=9, d=8):
        super().__init__(windows, heads, n, d)
        self.table = nn.Parameter(torch.randn(1, heads, n, n))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        w = self.mask.shape[0]
        mask = self.mask.view(1, w, 1, n, n).expand(b // w, -1, self.heads, -1, -1).reshape(-1, self.heads, n, n)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self.table + mask).transpose(1, 2).reshape(b, n, d)


def test_sdpa_with_a_learned_window_mask_totals_agree():
    assert_step_agrees_or_listed(WindowMaskWithBias(), torch.randn(8, 9, 8))


# --- a forward that sets requires_grad (wav2vec2's feature encoder) ------------------------------------------

class SetsRequiresGrad(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)

    def forward(self, x):
        h = x[:, None]
        if self.training:
            h.requires_grad = True
        return self.conv(h)


def test_a_forward_that_sets_requires_grad():
    assert_step_agrees(SetsRequiresGrad(), torch.randn(2, 16))


# --- calls that do no counted work never flag a total --------------------------------------------------------

class Diff(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(torch.diff(x, dim=-1, prepend=x[..., :1]))


class WeightNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.utils.parametrizations.weight_norm(nn.Linear(8, 8))

    def forward(self, x):
        return self.fc(x)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN: ``torch.norm`` over the spatial axes (``linalg_vector_norm``)."""

    def __init__(self, c=8):
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.randn(c)), nn.Parameter(torch.randn(c))
        self.fc = nn.Linear(c, c)

    def forward(self, x):
        g = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return self.fc(self.gamma * (x * n) + self.beta + x)


class PolarRotary(nn.Module):
    """Llama 4's rotary frequencies made by ``torch.polar``, the result cast back by ``type_as``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        freqs = torch.polar(torch.ones(x.shape[1], 4), torch.rand(x.shape[1], 4))
        q = torch.view_as_complex(h.float().reshape(*h.shape[:-1], 4, 2)) * freqs
        return torch.view_as_real(q).flatten(-2).type_as(h)


@pytest.mark.parametrize("model, x", [pytest.param(Diff(), (2, 4, 8)),
                                      pytest.param(WeightNorm(), (2, 8)),
                                      pytest.param(GlobalResponseNorm(), (2, 3, 3, 8)),
                                      pytest.param(PolarRotary(), (2, 4, 8))],
                         ids=["diff", "weight_norm", "linalg_vector_norm", "polar_type_as"])
def test_no_work_calls_do_not_flag_the_forward(model, x):
    assert profile(model, x).exact, profile(model, x).unsupported


@pytest.mark.parametrize("model, x", [(Diff(), (2, 4, 8)),
                                      pytest.param(WeightNorm(), (2, 8)),
                                      (GlobalResponseNorm(), (2, 3, 3, 8)),
                                      (PolarRotary(), (2, 4, 8))],
                         ids=["diff", "weight_norm", "linalg_vector_norm", "polar_type_as"])
def test_no_work_calls_do_not_flag_the_step(model, x):
    assert_step_agrees(model, torch.randn(*x))


# --- the model is left as it was -----------------------------------------------------------------------------

class CachedBias(nn.Module):
    """LeViT's attention biases: gathered once in eval mode and kept until ``train()`` clears them."""

    def __init__(self, n=4):
        super().__init__()
        self.table = nn.Parameter(torch.randn(2 * n - 1))
        self.register_buffer("index", (torch.arange(n)[:, None] - torch.arange(n)[None, :] + n - 1),
                             persistent=False)
        self.cache = {}

    def train(self, mode=True):
        super().train(mode)
        if mode:
            self.cache = {}
        return self

    def forward(self, x):
        if self.training:
            bias = self.table[self.index]
        else:
            if "bias" not in self.cache:
                self.cache["bias"] = self.table[self.index]
            bias = self.cache["bias"]
        return x @ bias


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_an_eval_cache_is_not_left_holding_a_reading(training):
    model = CachedBias().eval()
    profile(model, (2, 4, 4), training=training)
    x = torch.randn(2, 4, 4)
    assert torch.equal(model(x), x @ model.table[model.index])


# --- what PyTorch refuses, convcost refuses ------------------------------------------------------------------

def _pytorch_refuses(model, x, training):
    model.train(training)
    with pytest.raises(Exception) as pytorch:
        model(x)
    return str(pytorch.value).splitlines()[0]


def test_a_batch_norm_of_other_channels_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(16))
    why = _pytorch_refuses(model, torch.randn(1, 3, 8, 8), training=False)
    assert "running_mean" in why
    with pytest.raises(ConvcostError, match="running_mean"):
        profile(model.eval(), (1, 3, 8, 8))


def test_batch_one_batch_norm_training_is_refused():
    model = nn.Sequential(nn.BatchNorm2d(4))
    why = _pytorch_refuses(model, torch.randn(1, 4, 1, 1), training=True)
    assert "more than 1 value per channel" in why
    with pytest.raises(ConvcostError, match="more than 1 value per channel"):
        profile(model, (1, 4, 1, 1), training=True)


@pytest.mark.parametrize("model, channels", [
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(4, 16)), "weight of shape \\[16\\]"),
    (nn.Sequential(nn.Conv2d(3, 6, 3), nn.GroupNorm(4, 8, affine=False)), "divisible by num_groups"),
], ids=["weight", "groups"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_a_group_norm_of_other_channels_is_refused(model, channels, training):
    why = _pytorch_refuses(model, torch.randn(2, 3, 8, 8), training=training)
    with pytest.raises(ConvcostError, match=channels) as ours:
        profile(model.train(training), (2, 3, 8, 8), training=training)
    assert why in str(ours.value)


def test_a_group_norm_without_weights_takes_any_channels_groups_divide():
    """PyTorch reads a group norm without weights on the input's channels, whatever ``num_channels`` says."""
    model = nn.Sequential(nn.Conv2d(3, 12, 3), nn.GroupNorm(4, 8, affine=False))
    assert_step_agrees(model, torch.randn(2, 3, 8, 8))


# --- a layer whose output does not reach the loss (BERT's pooler) --------------------------------------------

class DeadEnd(nn.Module):
    """A second head whose output the caller drops: autograd gives it no backward."""

    def __init__(self):
        super().__init__()
        self.body, self.pooler = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        h = self.body(x)
        pooled = self.pooler(h[:, 0])
        return (h, pooled)[0]


def test_a_layer_that_does_not_reach_the_output_has_no_backward():
    assert_step_agrees(DeadEnd(), torch.randn(2, 4, 8))


class DeadEndCallByCall(DeadEnd):
    """RemBERT's pooler, in a forward read call by call (it runs on neither shapes nor values computed alongside):
    that reading did not say what the forward returned, so every row counted as reached (757,760 backward MACs
    against 753,664)."""

    def forward(self, x):
        assert type(x) is torch.Tensor
        return super().forward(x)


def test_a_layer_that_does_not_reach_the_output_has_no_backward_call_by_call():
    model, x = DeadEndCallByCall(), torch.randn(2, 4, 8)
    assert profile(model, x, training=True).traced_with.startswith("calls on")
    assert_step_agrees(model, x)
    # by hand: the pooler's 8 x 8 + 8 parameters get no gradient
    step = profile(model, x, training=True).training
    assert step.unread_params == 72 == sum(p.numel() for p in model.parameters()) - measure_training(
        model, (x,))["gradients"]


class PooledAtIds(nn.Module):
    """SAM 3's text pooler: the states at each sequence's largest id, projected, then dropped by the caller;
    autograd keeps the two index tensors all the same."""

    def __init__(self):
        super().__init__()
        self.emb, self.body, self.projection = nn.Embedding(11, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, ids):
        h = self.body(self.emb(ids))
        pooled = self.projection(h[torch.arange(h.shape[0]), ids.argmax(dim=-1)])
        return (h, pooled)[0]


def test_indices_kept_where_the_loss_does_not_reach():
    assert_step_agrees(PooledAtIds(), IDS)


class PoolingHead(nn.Module):
    """AIMv2's vision head: a class token expanded into the query of one attention over the states, whose
    output the caller drops. Autograd runs no backward for the head and gives the token no gradient."""

    def __init__(self):
        super().__init__()
        self.body, self.k = nn.Linear(32, 32), nn.Linear(32, 32)
        self.cls = nn.Parameter(torch.randn(1, 1, 32))

    def forward(self, x):
        h = self.body(x)
        q = self.cls.expand(h.shape[0], -1, -1).reshape(-1, 1, 4, 8).permute(0, 2, 1, 3)
        k = self.k(h).reshape(*h.shape[:2], 4, 8).permute(0, 2, 1, 3)
        pooled = F.scaled_dot_product_attention(q, k, k)
        return (h, pooled)[0]


def test_a_class_token_that_does_not_reach_the_loss():
    model, x = PoolingHead(), torch.randn(2, 16, 32)
    assert_step_agrees(model, x)  # the fused row's backward is no part of the step: 0 on its row
    report = profile(model, x, training=True)
    assert [r.backward_macs for r in report.rows if r.op == "F.scaled_dot_product_attention"] == [0]
    # the token, read only through a view into the dropped query, has no gradient and no Adam state
    assert report.training.memory("adam") == measure_training(model, (x,), optimizer="adam")["bytes"]


# --- an einsum whose summed index has size 1 (LED's sliding-window mask) ------------------------------------

def _chunks(x, w):
    """LED's ``_chunk``: windows of 2w overlapping by w, as an ``as_strided`` view."""
    x = x.view(x.shape[0], x.shape[1] // (2 * w), 2 * w, x.shape[2])
    stride = list(x.stride())
    stride[1] //= 2
    return x.as_strided(size=(x.shape[0], x.shape[1] * 2 - 1, 2 * w, x.shape[3]), stride=stride)


class WindowScores(nn.Module):
    """LED's local attention scores and its diagonal mask: the mask goes through the same chunked einsum with
    one head of size 1, which PyTorch runs as a broadcast product, not a matrix product."""

    def __init__(self, d=8, w=2):
        super().__init__()
        self.q, self.w = nn.Linear(d, d), w

    def forward(self, x, mask):
        h = self.q(x)
        scores = torch.einsum("bcxd,bcyd->bcxy", (_chunks(h, self.w), _chunks(x, self.w)))
        ones = mask.new_ones(mask.shape)
        return scores + torch.einsum("bcxd,bcyd->bcxy", (_chunks(ones, self.w), _chunks(mask, self.w)))


def test_an_einsum_over_a_summed_index_of_size_one():
    from torch.utils.flop_counter import FlopCounterMode

    model, x, mask = WindowScores(), torch.randn(2, 16, 8), torch.zeros(2, 16, 1)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, mask)
    report = profile(model, (x, mask))
    assert report.exact and report.total["macs"] == counter.get_total_flops() // 2
    assert_step_agrees(model, (x, mask))


class WindowValues(nn.Module):
    """LED's values in overlapping windows: ``as_strided`` over a padded tensor, its chunk count a tensor
    (``torch.div`` of sizes), so that only the call on the values computed alongside gives its strides; the
    overlapping windows cannot be folded to a batch of matrices as a view, and the einsum keeps a copy."""

    def __init__(self, d=8, w=4):
        super().__init__()
        self.v, self.p, self.w = nn.Linear(d, d), nn.Linear(3 * w, 3 * w), w

    def forward(self, x, probs):
        b, n, d = x.shape
        w = self.w
        chunks = torch.div(n, w, rounding_mode="trunc") - 1
        padded = F.pad(self.v(x), (0, 0, w, w))
        stride = padded.stride()
        windows = padded.as_strided(size=(b, chunks + 1, 3 * w, d), stride=(stride[0], w * stride[1], *stride[1:]))
        return torch.einsum("bcwd,bcdh->bcwh", (self.p(probs), windows))


def test_an_einsum_over_overlapping_windows_sized_by_a_tensor():
    assert_step_agrees(WindowValues(), (torch.randn(2, 16, 8), torch.randn(2, 4, 4, 12)))


# --- a router's branch the loss does not reach frees what it saved mid-forward (SolarOpen) -------------------

class GroupScores(nn.Module):
    """SolarOpen's router: group scores through ``topk`` values (which keep their indices), read only to pick
    experts; the branch dies when the router returns, and what it saved is freed while the forward runs on."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def _group_scores(self, h):
        return h.topk(2, dim=-1)[0].sum(-1)

    def forward(self, x):
        h = self.fc(x)
        chosen = self._group_scores(h).argmax(-1)
        return h.gather(-1, h.topk(2, dim=-1)[1]) + 0 * chosen.sum()


def test_the_oracle_counts_a_freed_branch_once_per_storage():
    """The measured step once changed from run to run (SolarOpen's saved indices: 304 to 368): the allocator
    gave the next topk's indices the freed branch's address (large storages are unmapped and mapped again),
    and one data pointer counted for two storages. Held until the forward ends, each counts: two topk index
    tensors of 16384 x 2, every time, as convcost counts them."""
    from convcost.torch.measure_training import saved_tensors

    model, x = GroupScores(), torch.randn(16384, 8)
    assert {saved_tensors(model, (x,))["indices"] for _ in range(20)} == {2 * 16384 * 2}
    assert profile(model, x, training=True).training.saved_indices == 2 * 16384 * 2


# --- a selection by index keeps its index (and for some, its input) -------------------------------------------

class Selects(nn.Module):
    """A selection by index after a layer: gather and take keep their input and index, index_select its index
    alone; read as views before, the step kept none of it."""

    def __init__(self, kind):
        super().__init__()
        self.fc, self.kind = nn.Linear(8, 8), kind

    def forward(self, x):
        h = self.fc(x)
        if self.kind == "gather":
            return h.gather(1, (x[:, :2] > 0).long())
        if self.kind == "index_select":
            return torch.index_select(h, 1, torch.tensor([0, 3, 5]))
        return h.take(torch.tensor([0, 3, 5, 9]))


@pytest.mark.parametrize("kind", ["gather", "index_select", "take"])
def test_a_selection_by_index_keeps_what_autograd_keeps(kind):
    assert_step_agrees(Selects(kind), torch.randn(4, 8))


# --- partial rotary embeddings: a concatenation with an empty part (Phi-3) -----------------------------------

class EmptyPart(nn.Module):
    """Rotary embedding over the whole head: the part passed through unrotated is empty, and PyTorch
    concatenates it all the same."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        rotated, passed = h[..., :8], h[..., 8:]
        return torch.cat([rotated * 2, passed], dim=-1)


def test_a_concatenation_with_an_empty_part():
    assert_step_agrees(EmptyPart(), torch.randn(2, 4, 8))


class EmptyVectorPart(EmptyPart):
    """XLM's cache start: a 1-D empty tensor concatenated with 3-D ones, which PyTorch skips."""

    def forward(self, x):
        h = self.fc(x)
        return torch.cat([torch.tensor([]), h, h * 2], dim=-2) * 2


def test_a_concatenation_with_an_empty_vector():
    assert_step_agrees(EmptyVectorPart(), torch.randn(2, 4, 8))


# --- mixture of experts through torch._grouped_mm (Mixtral) --------------------------------------------------

class GroupedExperts(nn.Module):
    """Tokens sorted by expert, one grouped matrix product over all experts (transformers' MoE kernels)."""

    def __init__(self, experts=4, d=8, f=16):
        super().__init__()
        self.router, self.w = nn.Linear(d, experts), nn.Parameter(torch.randn(experts, d, f))

    def forward(self, x):
        expert = self.router(x).argmax(-1)
        order = expert.argsort()
        counts = torch.histc(expert.float(), bins=self.w.shape[0], min=0, max=self.w.shape[0] - 1)
        offsets = torch.cumsum(counts, dim=0, dtype=torch.int32)
        return torch._grouped_mm(x[order], self.w, offs=offsets) * 2  # a gradient the kernel takes (not expanded)


def test_flopcounter_taught_grouped_mm_counts_each_token_once():
    """The oracle: torch 2.13's FlopCounterMode counts nothing for ``_grouped_mm``; taught by the zoo, it counts
    tokens x in x out forward and twice that backward, by hand."""
    from torch.utils.flop_counter import FlopCounterMode
    from zoo_transformers import count_grouped_mm

    count_grouped_mm()
    x, w = torch.randn(8, 8, requires_grad=True), torch.randn(4, 8, 16, requires_grad=True)
    with FlopCounterMode(display=False) as forward:
        y = torch._grouped_mm(x, w, offs=torch.tensor([2, 4, 6, 8], dtype=torch.int32)) * 2
    with FlopCounterMode(display=False) as backward:
        y.sum().backward()
    assert (forward.get_total_flops() // 2, backward.get_total_flops() // 2) == (8 * 8 * 16, 2 * 8 * 8 * 16)


def test_experts_through_grouped_mm():
    from torch.utils.flop_counter import FlopCounterMode
    from zoo_transformers import count_grouped_mm

    count_grouped_mm()
    model, x = GroupedExperts(), torch.randn(8, 8)
    report = profile(model, x)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert report.exact, report.unsupported
    assert report.total["macs"] == counter.get_total_flops() // 2 == 8 * 8 * 4 + 8 * 8 * 16  # router, experts
    assert_step_agrees(model, x)


class TopKExperts(nn.Module):
    """transformers' grouped experts (``grouped_mm_experts_forward``, Mixtral's router): top-k routing weights
    that carry the router's gradient, tokens sorted by expert, two grouped products on transposed weights, the
    order restored through an index assignment."""

    def __init__(self, d=32, f=48, experts=4):
        super().__init__()
        self.w = nn.Parameter(torch.randn(experts, d))
        self.up, self.down = nn.Parameter(torch.randn(experts, 2 * f, d)), nn.Parameter(torch.randn(experts, d, f))

    def forward(self, x):
        x = x.view(-1, x.shape[-1])
        probs = F.softmax(F.linear(x, self.w).float(), dim=-1)
        weights, experts = torch.topk(probs, 2, dim=-1)
        weights /= weights.sum(dim=-1, keepdim=True)
        expert_ids, perm = torch.sort(experts.reshape(-1))
        tokens, weights = x[perm // 2], weights.reshape(-1)[perm]
        counts = torch.histc(expert_ids.float(), bins=self.w.shape[0], min=0, max=self.w.shape[0] - 1)
        offs = torch.cumsum(counts, dim=0, dtype=torch.int32)
        gate, up = F.grouped_mm(tokens, self.up.transpose(-2, -1), offs=offs).chunk(2, dim=-1)
        out = F.grouped_mm(F.silu(gate) * up, self.down.transpose(-2, -1), offs=offs) * weights.unsqueeze(-1)
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.size(0))
        return out[inverse].view(x.shape[0], 2, -1).sum(dim=1)


def test_top_k_routed_experts():
    from zoo_transformers import count_grouped_mm

    count_grouped_mm()
    assert_step_agrees(TopKExperts(), torch.randn(2, 8, 32))


class ScatteredRouter(nn.Module):
    """Llama 4's router and experts: the top-k logits scattered into a tensor of -inf (which needs a gradient
    from then on), a sigmoid, every token through every expert by ``bmm``, weighted by its score."""

    def __init__(self, d=32, f=16, experts=4, chained=True):
        super().__init__()
        self.router, self.shared, self.chained = nn.Linear(d, experts, bias=False), nn.Linear(d, d), chained
        self.gate_up, self.down = nn.Parameter(torch.randn(experts, d, 2 * f)), nn.Parameter(torch.randn(experts, f, d))

    def forward(self, h):
        h = h.reshape(-1, h.shape[-1])
        logits = self.router(h)
        top, index = torch.topk(logits, 1, dim=1)
        scores = torch.full_like(logits, float("-inf"))
        if self.chained:
            scores = scores.scatter_(1, index, top)
        else:  # the tensor written in place, its result dropped
            scores.scatter_(1, index, top)
        scores = torch.sigmoid(scores.float()).to(scores.dtype)
        routed = h.repeat(scores.shape[1], 1) * scores.transpose(0, 1).reshape(-1, 1)
        gate, up = torch.bmm(routed.view(scores.shape[1], -1, h.shape[-1]), self.gate_up).chunk(2, dim=-1)
        out = self.shared(h)
        out.add_(torch.bmm(up * F.silu(gate), self.down).sum(dim=0))
        return out


@pytest.mark.parametrize("chained", [True, False], ids=["chained", "in_place"])
def test_a_router_scattered_into_a_tensor_without_gradient(chained):
    assert_step_agrees(ScatteredRouter(chained=chained), torch.randn(2, 8, 32))


@pytest.mark.parametrize("shapes", [[(8, 8), (4, 8, 16), (4,)], [(5, 4), (2, 4, 8), (2,)], [(4, 3, 8), (4, 8, 16)]],
                         ids=["tokens", "few_tokens", "batched"])
@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True)], ids=["both", "a", "b"])
def test_grouped_matmul_against_pytorch(shapes, grads):
    """The primitive against a real CPU step: forward and backward MACs by the taught FlopCounterMode and by
    hand (T x K x N, each gradient as much), saved elements by saved-tensor hooks. (The CPU kernel wants rows
    of a multiple of 16 bytes.)"""
    from torch.utils.flop_counter import FlopCounterMode
    from zoo_transformers import count_grouped_mm

    from convcost import primitives as p

    count_grouped_mm()
    a, b = (torch.randn(s, requires_grad=g) for s, g in zip(shapes, grads))
    offs = [torch.tensor(sorted(torch.randint(0, shapes[0][0] + 1, (shapes[2][0] - 1,)).tolist()) + [shapes[0][0]],
                         dtype=torch.int32)] if len(shapes) == 3 else []
    saved = []
    with FlopCounterMode(display=False) as forward, torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t):
        y = torch._grouped_mm(a, b, *offs)
    with FlopCounterMode(display=False) as backward:
        y.backward(torch.ones_like(y))  # a contiguous gradient: the kernel refuses sum()'s expanded one
    cost = p.GroupedMatMul().cost(shapes, input_grads=(*grads, False)[:len(shapes)])
    by_hand = y.numel() * shapes[0][-1]
    assert cost.output_shape == tuple(y.shape)
    assert cost.macs == forward.get_total_flops() // 2 == by_hand
    assert cost.backward_macs == backward.get_total_flops() // 2 == by_hand * sum(grads)
    assert cost.saved_elements == sum(t.numel() for t in saved)


def test_grouped_matmul_refuses_what_it_is_not():
    from convcost import primitives as p

    with pytest.raises(ConvcostError, match="inner sizes"):
        p.GroupedMatMul().cost([(8, 8), (4, 7, 16), (4,)])
    with pytest.raises(ConvcostError, match="multiplies tokens"):
        p.GroupedMatMul().cost([(8, 8), (8, 16)])


# --- Nyströmformer's pseudo-inverse start: the reciprocal of a maximum ---------------------------------------

class GlobalMax(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        k = self.fc(x)
        return 1 / torch.max(torch.sum(k, dim=-2)) * k


class MaxOverAxis(GlobalMax):
    def forward(self, x):
        k = self.fc(x)
        return 1 / torch.max(torch.sum(k, dim=-2), dim=-1).values[:, None, None] * k


@pytest.mark.parametrize("model", [GlobalMax(), MaxOverAxis()], ids=["global", "over_an_axis"])
def test_the_reciprocal_of_a_maximum(model):
    assert_step_agrees(model, torch.randn(2, 4, 8))


# --- `value in tensor` (transformers' padding warning) -------------------------------------------------------

class PadCheck(nn.Module):
    """``pad_token_id in input_ids[:, [-1, 0]]``: PyTorch answers ``(tensor == value).any()``."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)

    def forward(self, ids):
        h = self.emb(ids)
        return h * 2 if 0 in ids[:, [-1, 0]] else h


def test_value_in_a_tensor():
    assert_step_agrees(PadCheck(), IDS)


@pytest.mark.parametrize("name", ["levit_128s", "efficientformerv2_s0", "tiny_vit_5m_224"])
def test_timm_eval_caches_are_left_as_they_were(name):
    """The zoo's own cases of the cache above (timm, where installed): the next real forward runs."""
    import importlib.util

    if importlib.util.find_spec("timm") is None or importlib.util.find_spec("torchvision") is None:
        pytest.skip("timm is not installed")
    from zoo_agreement import import_torchvision

    import_torchvision()  # timm imports torchvision: its failing fake-op registrations skipped first
    import timm

    model = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)
    profile(model, x)
    with torch.no_grad():
        assert model(x).shape == (1, model.num_classes)


# --- rotary embeddings in complex numbers (Llama 4) ----------------------------------------------------------

class ComplexRotary(nn.Module):
    def __init__(self, n=4, d=8):
        super().__init__()
        self.q = nn.Linear(d, d)
        angles = torch.outer(torch.arange(n).float(), torch.rand(d // 2))
        self.register_buffer("freqs", torch.polar(torch.ones_like(angles), angles), persistent=False)

    def forward(self, x):
        q = torch.view_as_complex(self.q(x).float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(q * self.freqs).flatten(-2)


def test_rotary_in_complex_numbers():
    assert_step_agrees(ComplexRotary(), torch.randn(2, 4, 8))


class NormedComplexRotary(ComplexRotary):
    """Llama 4's L2 norm after the complex rotary: the complex product's storage kept through its real view."""

    def forward(self, x):
        q = super().forward(x)
        return q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + 1e-6)


def test_a_complex_storage_kept_through_its_real_view():
    assert_step_agrees(NormedComplexRotary(), torch.randn(2, 4, 8))


# --- SpecAugment's time masking (wav2vec2 in training): a boolean-mask assignment ----------------------------

class MaskedAssignment(nn.Module):
    """``hidden_states[mask_time_indices] = self.masked_spec_embed``: PyTorch's index_put keeps the boolean mask
    for the backward (2 x 4 elements here; wav2vec2's zoo step is under by its 2 x 19)."""

    def __init__(self):
        super().__init__()
        self.fc, self.embed = nn.Linear(8, 8), nn.Parameter(torch.randn(8))

    def forward(self, x):
        h = self.fc(x)
        mask = torch.zeros(2, 4, dtype=torch.bool)
        mask[:, 1] = True
        h[mask] = self.embed.to(h.dtype)
        return h * 2


def test_an_assignment_through_a_boolean_mask():
    assert_step_agrees(MaskedAssignment(), torch.randn(2, 4, 8))


class IndexAssignment(MaskedAssignment):
    """``h[:, idx] = w``: index_put keeps its int64 index."""

    def forward(self, x):
        h = self.fc(x)
        h[:, torch.tensor([0, 2])] = self.embed
        return h * 2


class MaskFromValues(MaskedAssignment):
    """The mask from a comparison and the value gathered by it (the forward reads values)."""

    def forward(self, x):
        h, mask = self.fc(x), x[..., 0] > 0
        h[mask] = (x * 3)[mask]
        return h * 2


@pytest.mark.parametrize("model", [IndexAssignment(), MaskFromValues()], ids=["index", "mask_from_values"])
def test_an_assignment_through_an_index(model):
    assert_step_agrees(model, torch.randn(2, 4, 8))


class AssignedParameter(MaskedAssignment):
    """A tensor that needs no gradient until a parameter is written into it."""

    def __init__(self, masked):
        super().__init__()
        self.masked = masked

    def forward(self, x):
        h = torch.zeros(2, 4, 8)
        if self.masked:
            h[torch.tensor([[False, True, False, True]] * 2)] = self.embed
        else:
            h[:, 1] = self.embed
        return self.fc(h + x) * 2


class AssignedIntoComputed(AssignedParameter):
    """The same into a tensor the forward computed from its input (no gradient until the assignment)."""

    def forward(self, x):
        h = x * 2
        if self.masked:
            h[torch.tensor([[False, True, False, True]] * 2)] = self.embed
        else:
            h[:, 1] = self.embed
        return self.fc(h) * 2


@pytest.mark.parametrize("masked", [True, False], ids=["mask", "slice"])
def test_an_assignment_into_a_computed_tensor_gives_it_a_gradient(masked):
    assert_step_agrees(AssignedIntoComputed(masked), torch.randn(2, 4, 8))


@pytest.mark.parametrize("masked", [True, False], ids=["mask", "slice"])
def test_an_assignment_that_makes_a_constant_need_a_gradient(masked):
    """Into a constant the forward made (a real tensor): it needs a gradient from then on, by its storage (it was
    listed)."""
    assert_step_agrees(AssignedParameter(masked), torch.randn(2, 4, 8))


# --- a forward that runs part of itself under torch.no_grad() (HRM's k-step gradient trick) -------------------

class NoGradCycles(nn.Module):
    """Early cycles of a recurrence under ``torch.no_grad()``: autograd keeps nothing of them and runs no backward
    for them; ``reads_values``: the forward also reads a value (the reading computes real tensors alongside)."""

    def __init__(self, reads_values=False):
        super().__init__()
        self.low, self.high, self.reads_values = nn.Linear(8, 8), nn.Linear(8, 8), reads_values

    def forward(self, x):
        z = torch.zeros_like(x)
        for cycle in range(3):
            with torch.no_grad() if cycle < 2 else contextlib.nullcontext():
                z = self.low(z + x)
        if self.reads_values and float(z.sum()) > -1e30:
            z = z * 2
        return self.high(z + x)


@pytest.mark.parametrize("reads_values", [False, True], ids=["shapes", "values"])
def test_a_forward_under_no_grad_in_part(reads_values):
    assert_step_agrees(NoGradCycles(reads_values), torch.randn(2, 4, 8))


class CustomFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return ClippedSqrt.apply(1 - torch.sigmoid(self.fc(x))) * x


def test_a_custom_autograd_function_is_read_not_dropped():
    """Its forward runs with grad disabled, yet its output needs a gradient: the step goes on through it, keeps what
    it saves and reads its own backward (tests/test_profile_custom_functions.py), rather than dropping the layers
    before it (it was listed: every number right)."""
    report, ours, measured = step_numbers(CustomFunction(), torch.randn(2, 4, 8))
    step = report.training
    assert ours == measured and ours["backward_macs"] > 0
    assert step.complete, step.untracked


class ChunkedView(nn.Module):
    """Longformer's and LED's chunks: a view whose size is ``torch.div`` of two sizes (a 0-d tensor)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        return h.view(h.size(0), torch.div(h.size(1), 2, rounding_mode="trunc"), 2, h.size(2)) * 2


def test_a_view_sized_by_a_tensor_division():
    model, x = ChunkedView(), torch.randn(2, 4, 8)
    assert profile(model, x).total["macs"] == 2 * 4 * 8 * 8
    assert_step_agrees(model, x)


class NumpyNamedMean(nn.Module):
    """ImageGPT's layer norm: ``torch.mean(x, axis=-1, keepdim=True)``, NumPy's name for the axis."""

    def __init__(self):
        super().__init__()
        self.fc, self.weight = nn.Linear(8, 8), nn.Parameter(torch.ones(8))

    def forward(self, x):
        h = self.fc(x)
        return h / torch.sqrt(torch.mean(torch.square(h), axis=-1, keepdim=True) + 1e-5) * self.weight


def test_a_reduction_over_an_axis_named_as_numpy_names_it():
    assert_step_agrees(NumpyNamedMean(), torch.randn(2, 4, 8))


class ChunkedViewReadingValues(ChunkedView):
    def forward(self, x):
        if float(x.sum()) > -1e30:  # read call by call (the forward reads a value)
            x = x * 1
        return super().forward(x)


def test_a_view_sized_by_a_tensor_division_call_by_call():
    assert_step_agrees(ChunkedViewReadingValues(), torch.randn(2, 4, 8))


# --- mixture-of-experts routing: sorted expert ids and torch.where over the expert mask -----------------------

class SortedExpertBiases(nn.Module):
    """GPT-OSS's grouped experts: the top-k expert ids sorted, then read by two bias gathers. ``torch.sort``
    returns ``torch.return_types.sort``: its indices were given a new storage at each read, so the one index
    autograd keeps for both gathers was counted twice (36 saved indices against 24)."""

    def __init__(self):
        super().__init__()
        self.router = nn.Linear(8, 4)
        self.up_bias, self.down_bias = nn.Parameter(torch.randn(4, 8)), nn.Parameter(torch.randn(4, 8))

    def forward(self, x):
        _, top = torch.topk(self.router(x), 2, dim=-1)
        ids, _ = torch.sort(top.reshape(-1))
        return self.up_bias[ids] * self.down_bias[ids]


def test_sorted_expert_ids_read_twice_are_one_saved_index():
    model, x = SortedExpertBiases(), torch.randn(6, 8)
    report, ours, measured = step_numbers(model, x)
    step = report.training
    # by hand: topk's 6 x 2 indices, kept for its backward, and the sorted ids (12), once for both gathers
    assert ours == measured and measured["saved_indices"] == 12 + 12
    assert step.complete
    # the router is read only through topk's indices: no backward (0 MACs above) and no gradient, as autograd
    # gives it none (only the two biases get one)
    assert step.params - step.unread_params == measure_training(model, (x,))["gradients"] == 2 * 4 * 8


class WhereRouted(nn.Module):
    """Switch Transformers' and Mixtral's experts: the tokens of each expert by ``torch.where`` over its row of
    the one-hot expert mask, gathered and added back with ``index_add_``. ``torch.where(cond)`` gives the columns
    of one new ``(n, cond.dim())`` index tensor; they were read as views of the mask (its 18 elements kept, not
    the n tokens). ``rows``: the mask row as a ``(1, T)`` matrix, whose two columns share one storage of 2n."""

    def __init__(self, rows=False):
        super().__init__()
        self.rows, self.fc, self.router = rows, nn.Linear(8, 8), nn.Linear(8, 3)
        self.experts = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))

    def forward(self, x):
        h = self.fc(x)
        mask = F.one_hot(self.router(h).argmax(-1), 3).permute(1, 0)  # (experts, tokens)
        out = torch.zeros_like(h)
        for e in torch.greater(mask.sum(-1), 0).nonzero()[:, 0].tolist():
            top = torch.where(mask[e][None])[1] if self.rows else torch.where(mask[e])[0]
            out.index_add_(0, top, self.experts[e](h[None, top].reshape(-1, 8)))
        return out


@pytest.mark.parametrize("rows", [False, True], ids=["vector", "matrix"])
def test_the_tokens_torch_where_routes_are_their_own_saved_index(rows):
    x = torch.randn(6, 8)
    report, ours, measured = step_numbers(WhereRouted(rows), x)
    step = report.training
    # by hand: each of the 6 tokens is routed to one expert, so the experts' index storages hold 6 (one column)
    # or 12 (two columns of 6 rows in all) elements
    assert ours == measured and measured["saved_indices"] == (12 if rows else 6)
    assert step.complete


# --- the oracle: a routing drawn at random is the same in every forward of one measured step -----------------

class JitteredRoute(nn.Module):
    """Switch Transformers' router jitter: a random draw decides which expert the tokens go to, so which expert
    gets a gradient. measure_training ran its forwards one after another on the generator, so its gradients
    (and their bytes) came from another routing than its saved tensors (12,288 bytes apart in the zoo)."""

    def __init__(self):
        super().__init__()
        self.small, self.large = nn.Linear(8, 2), nn.Linear(8, 16)

    def forward(self, x):
        return self.small(x).sum(-1) if torch.rand(()) < 0.5 else self.large(x).sum(-1)


def test_the_oracles_forwards_draw_the_same_routing():
    model, x = JitteredRoute(), torch.randn(4, 8)
    seed = next(s for s in range(100) if _draws(s)[0] != _draws(s)[2])  # the first and third draws differ
    first_is_small = _draws(seed)[0] < 0.5
    torch.manual_seed(seed)
    measured = measure_training(model, (x,), optimizer="adam")
    # by hand: the expert of the generator's first draw is the one saved for and the one with a gradient
    expert = (8 * 2 + 2) if first_is_small else (8 * 16 + 16)
    assert measured["gradients"] == expert
    assert measured["saved_elements"] == 4 * 8  # its input, whichever expert
    params = 8 * 2 + 2 + 8 * 16 + 16
    # parameters, their gradients, Adam's two moments and its step scalars (one per parameter tensor), saved input
    assert measured["bytes"] == 4 * (params + expert + 2 * expert + 2 + 4 * 8)
    assert torch.rand(()) == _draws(seed)[0]  # the caller's generator is left as it was


def _draws(seed) -> list:
    generator = torch.Generator().manual_seed(seed)
    return [float(torch.rand((), generator=generator)) for _ in range(3)]


class WeightRoute(nn.Module):
    """A routing decided by a weight: measure_training's Adam step moved the gate by its learning rate (1e-3)
    past zero and left it there, so the forward after it took the other expert."""

    def __init__(self):
        super().__init__()
        self.gate, self.small, self.large = nn.Parameter(torch.tensor(5e-4)), nn.Linear(8, 2), nn.Linear(8, 16)

    def forward(self, x):
        # the loss grows with the gate: Adam's first step lowers it by its learning rate, to -5e-4
        return self.gate * (self.small(x) ** 2).sum() if self.gate > 0 else self.gate * self.large(x).sum()


def test_the_oracles_optimizer_step_leaves_the_weights_as_they_were():
    model, x = WeightRoute(), torch.randn(4, 8)
    before = [p.detach().clone() for p in model.parameters()]
    measured = measure_training(model, (x,), optimizer="adam")
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    # by hand: the gate and the small expert get gradients, and Adam's state for each (two moments, one step)
    assert measured["gradients"] == 1 + 8 * 2 + 2
    assert measured["optimizer_state"] == 2 * (1 + 8 * 2 + 2) + 3


# --- calls that do no counted work: never a flag ---------------------------------------------------------------

class RouterCastAndCompare(nn.Module):
    """Switch Transformers' router casts its classifier in the forward (``Module.to``, which sets each
    parameter's ``.data``) and its experts test ``torch.greater``: both flagged the forward as not exact."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        self.fc = self.fc.to(torch.float32)
        h = self.fc(x)
        return h * torch.greater(h.sum(-1, keepdim=True), 0)


def test_a_parameter_data_set_and_torch_greater_flag_nothing():
    model, x = RouterCastAndCompare(), torch.randn(2, 4, 8)
    report = profile(model, x)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert report.total["macs"] == counter.get_total_flops() // 2 == 2 * 4 * 8 * 8
    assert report.exact, report.unsupported
    assert_step_agrees(model, x)
