"""More of what the transformers zoo (benchmarks/zoo_transformers.py) found, each cause reduced to a few-line model.

Every case is held to PyTorch itself, never to convcost's formulas: ``FlopCounterMode`` and saved-tensor hooks
through :func:`convcost.torch.measure_training.measure_training` (its bytes too: parameters, gradients, Adam's
state and saved tensors), as in ``test_profile_transformers_cases.py``; each few-line model is read three ways
(on shapes, on shapes with the values computed alongside, call by call), since each reading follows the tensors
on its own. Where a transformers model is the motivating case, it is also built from a tiny config (skipped
without transformers).
"""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from step_oracle import READINGS, assert_step_agrees, read_by, step_numbers, transformers_model  # noqa: E402

IDS = torch.randint(3, 99, (2, 8), generator=torch.Generator().manual_seed(0))


# --- multi-head latent attention: a tensor written in place through its views needs a gradient ---------------

class KeysFromParts(nn.Module):
    """DeepSeek-V2/V3's ``expand_kv``: a fresh tensor (``new_empty``) filled through two views by ``copy_`` from
    tensors needing a gradient; the tensor itself, read after, needs one (autograd rebases it on the writes)."""

    def __init__(self):
        super().__init__()
        self.a, self.rope, self.o = nn.Linear(8, 12), nn.Linear(4, 4), nn.Linear(8, 8)

    def forward(self, x):
        h = self.a(x)
        k_nope, k_rot = h[..., :8], self.rope(h[..., 8:])
        k = k_nope.new_empty(*k_nope.shape[:-1], 12)
        k[..., :8].copy_(k_nope)
        k[..., 8:].copy_(k_rot)
        return self.o(k[..., 4:])


class SliceIntoZeros(nn.Module):
    """``k = zeros(...); k[..., :d] = y``: a constant the forward made, written through a slice (it was listed)."""

    def __init__(self):
        super().__init__()
        self.a, self.o = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        k = torch.zeros(*x.shape[:-1], 8)
        k[..., :4] = self.a(x)[..., :4]
        return self.o(k)


class CopyIntoEmptyLike(nn.Module):
    """``copy_`` into views of ``empty_like(x)`` of an input that needs no gradient: one part from the input, the
    other from a layer."""

    def __init__(self):
        super().__init__()
        self.a, self.o = nn.Linear(8, 4), nn.Linear(8, 8)

    def forward(self, x):
        k = torch.empty_like(x)
        k[..., :4].copy_(x[..., :4])
        k[..., 4:].copy_(self.a(x))
        return self.o(k)


class RotaryPartAssigned(nn.Module):
    """The rotary part of a query assigned back into its slice (``q[..., d:] = rotate(q_pe)``)."""

    def __init__(self):
        super().__init__()
        self.a, self.o = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        q = self.a(x)
        q_pe = q[..., 4:]
        q[..., 4:] = torch.cat((-q_pe[..., 2:], q_pe[..., :2]), -1)
        return self.o(q)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [KeysFromParts, SliceIntoZeros, CopyIntoEmptyLike, RotaryPartAssigned],
                         ids=lambda c: c.__name__)
def test_a_tensor_written_through_its_views_needs_a_gradient(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4, 8), reading)


def test_keys_from_parts_by_hand():
    """The oracle's own number, by hand: every linear layer has a weight gradient (8 x (12 + 4 + 8) x 8 tokens),
    and the input gradients of ``rope`` and ``o`` (the one of ``o`` was dropped: its input read as needing none)."""
    report, ours, measured = step_numbers(KeysFromParts(), torch.randn(2, 4, 8))
    assert measured["backward_macs"] == 8 * (8 * 12 + 4 * 4 + 8 * 8) + 8 * (4 * 4 + 8 * 8) == ours["backward_macs"]


def test_deepseek_v3_multi_head_latent_attention():
    from zoo_transformers import count_grouped_mm  # FlopCounterMode taught torch._grouped_mm, as the zoo does

    count_grouped_mm()
    model = transformers_model(
        "DeepseekV3Model", vocab_size=99, hidden_size=32, intermediate_size=48, moe_intermediate_size=16,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4, num_experts_per_tok=2,
        n_group=1, topk_group=1, kv_lora_rank=16, q_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8,
        v_head_dim=8, first_k_dense_replace=1, max_position_embeddings=64)
    assert_step_agrees(model, IDS)


# --- parameters read under torch.no_grad() get no gradient and no optimizer state ----------------------------

class FrozenEncoder(nn.Module):
    """PE Audio's codec encoder, run under ``torch.no_grad()`` inside the forward: its parameters get no gradient
    and no Adam state (they were counted with both)."""

    def __init__(self):
        super().__init__()
        self.encoder, self.proj = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        with torch.no_grad():
            h = self.encoder(x)
        return self.proj(h)


class Indexer(nn.Module):
    """DeepSeek-V3.2's indexer: a method decorated ``@torch.no_grad()`` scoring tokens with its own layer and a
    bare parameter, whose choice masks the attention."""

    def __init__(self):
        super().__init__()
        self.score, self.proj, self.w = nn.Linear(8, 8), nn.Linear(8, 8), nn.Parameter(torch.randn(8))

    @torch.no_grad()
    def index(self, x):
        return (self.score(x) * self.w).topk(2, dim=-1).indices

    def forward(self, x):
        h = self.proj(x)
        keep = torch.zeros(h.shape, dtype=torch.bool).scatter(-1, self.index(x), True)
        return h.masked_fill(~keep, 0.0)


class AlsoWithGrad(FrozenEncoder):
    """The same layer read under ``no_grad`` and again with gradients: it gets both."""

    def forward(self, x):
        return super().forward(x) + self.encoder(x)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [FrozenEncoder, Indexer, AlsoWithGrad], ids=lambda c: c.__name__)
def test_parameters_read_under_no_grad_get_no_gradient(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4, 8), reading)


@pytest.mark.parametrize("model", [FrozenEncoder, Indexer], ids=lambda c: c.__name__)
def test_parameters_read_under_no_grad_by_hand(model):
    """The parameters PyTorch gives no gradient are the no-grad part's, by numel, and convcost says so."""
    model = model()
    frozen = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("proj"))
    step = profile(model, torch.randn(2, 4, 8), training=True).training
    gradients = measure_training(model, (torch.randn(2, 4, 8),))["gradients"]
    assert step.unread_params == frozen == sum(p.numel() for p in model.parameters()) - gradients


def test_deepseek_v3_2_indexer_parameters_get_no_gradient():
    """DeepSeek-V3.2's indexer (``@torch.no_grad()``): its layers were counted with gradients and Adam state
    (535,084 bytes against 508,164)."""
    from zoo_transformers import count_grouped_mm

    count_grouped_mm()
    model = transformers_model(
        "DeepseekV32Model", vocab_size=99, hidden_size=32, intermediate_size=48, moe_intermediate_size=16,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4, num_experts_per_tok=2,
        n_group=1, topk_group=1, kv_lora_rank=16, q_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8,
        v_head_dim=8, first_k_dense_replace=1, max_position_embeddings=64, index_topk=4, index_head_dim=16,
        index_n_heads=2)
    assert_step_agrees(model, IDS)


# --- .data, requires_grad set in the forward, x[mask] = parameter ---------------------------------------------

class ThroughData(nn.Module):
    """``h.data``: the same storage outside autograd (read call by call, it carried ``h``'s gradient)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        h = self.a(x)
        return self.b(h.data * 2) + h


class ParameterData(nn.Module):
    """A parameter read only through ``.data``: it gets no gradient and no optimizer state."""

    def __init__(self):
        super().__init__()
        self.a, self.w = nn.Linear(8, 8), nn.Parameter(torch.randn(8))

    def forward(self, x):
        return self.a(x * self.w.data)


class SetsRequiresGrad(nn.Module):
    """wav2vec2's feature encoder: ``hidden_states.requires_grad = True`` in the forward (read call by call, the
    flag was not seen: the first layer's input gradient was left out)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = x * 2
        h.requires_grad = True
        return self.fc(h)


class RequiresGradMethod(SetsRequiresGrad):
    """The same by ``requires_grad_()``, on a view of the input."""

    def forward(self, x):
        h = x[:, 1:]
        h.requires_grad_()
        return self.fc(h)


class MaskedTimeEmbedding(nn.Module):
    """WavLM's and wav2vec2's SpecAugment: ``h[mask_time_indices] = self.masked_spec_embed``, a parameter written
    through a boolean mask the forward computes (index_put keeps the mask)."""

    def __init__(self):
        super().__init__()
        self.fc, self.embed = nn.Linear(8, 8), nn.Parameter(torch.randn(8))

    def forward(self, x):
        h = self.fc(x)
        h[x[..., 0] > 0] = self.embed.to(h.dtype)
        return h * 2


class MaskedTimeEmbeddingFirst(MaskedTimeEmbedding):
    """The same into a tensor that needs no gradient before it (the layer after it)."""

    def forward(self, x):
        h = x * 1
        mask = torch.zeros(2, 4, dtype=torch.bool)
        mask[:, 1] = True
        h[mask] = self.embed.to(h.dtype)
        return self.fc(h)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [ThroughData, ParameterData, SetsRequiresGrad, RequiresGradMethod,
                                   MaskedTimeEmbedding, MaskedTimeEmbeddingFirst], ids=lambda c: c.__name__)
def test_autograd_flags_set_in_the_forward(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4, 8), reading)


def test_a_parameter_read_through_data_by_hand():
    model = ParameterData()
    step = profile(model, torch.randn(2, 4, 8), training=True).training
    assert step.unread_params == model.w.numel() == 8
    assert measure_training(model, (torch.randn(2, 4, 8),))["gradients"] == 8 * 8 + 8


# --- sizes and indices given as 0-d integer tensors; moves to the device the tensor is on ---------------------

class ZeroDIndex(nn.Module):
    """``table[i]`` with ``i`` a 0-d integer tensor: PyTorch reads it as the int it holds (a view, no index kept;
    it was listed)."""

    def __init__(self):
        super().__init__()
        self.a, self.table = nn.Linear(8, 8), nn.Parameter(torch.randn(5, 8))

    def forward(self, x):
        return self.a(x) + self.table[torch.tensor(x.shape[1]) // 2]


class PaddedByTensor(nn.Module):
    """EnCodec's and Mimi's ``_get_extra_padding_for_conv1d``: the padding a 0-d tensor made by ``torch.ceil`` (the
    shape reading raised an internal error on it)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 8, 3)

    def forward(self, x):
        length = x.shape[-1]
        frames = torch.ceil(torch.tensor(length / 3)).to(torch.int64) - 1
        return self.conv(nn.functional.pad(x, (2, frames * 3 + 3 - length)))


class InterpolatedToTensor(PaddedByTensor):
    """``F.interpolate`` to a size given as a 0-d tensor."""

    def forward(self, x):
        return self.conv(nn.functional.interpolate(x, size=torch.tensor(x.shape[-1]) * 2))


class MovedToItsDevice(PaddedByTensor):
    """``.to(x.device)`` and ``.cpu()`` of a tensor already there: the tensor itself, no copy (read call by call,
    ``.cpu()`` was listed, and the forward's ``float(...)`` too)."""

    def forward(self, x):
        h = self.conv(x).to(x.device).cpu()
        return h * 2 if float(h.sum()) > -1e30 else h


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", [ZeroDIndex, PaddedByTensor, InterpolatedToTensor, MovedToItsDevice],
                         ids=lambda c: c.__name__)
def test_sizes_and_indices_as_0d_tensors(model, reading):
    if model is MovedToItsDevice and reading == READINGS[0]:
        pytest.skip("it reads a value: never read on shapes alone")
    x = torch.randn(2, 8, 8)
    assert_step_agrees(read_by(model, reading)(), x)
    report = profile(read_by(model, reading)(), x)
    assert report.exact and report.total["macs"] == _flop_counter_macs(read_by(model, reading)(), x)


def _flop_counter_macs(model, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


# --- an expert no token is routed to ------------------------------------------------------------------------

class EmptyExpert(nn.Module):
    """A mixture of experts looping over its experts (Mixtral's eager loop) where the router sends no token to
    the last one: a Linear on zero rows costs nothing, keeps what autograd keeps of empty operands, and its
    parameters get a gradient of zeros (convcost refused the model: "input shape (1, 0, 8) holds 0")."""

    def __init__(self, from_values=False):
        super().__init__()
        self.router, self.experts = nn.Linear(8, 3), nn.ModuleList(nn.Linear(8, 8) for _ in range(3))
        self.from_values = from_values
        with torch.no_grad():
            self.router.bias.copy_(torch.tensor([0.0, 100.0, -100.0]))

    def forward(self, x):
        flat = x.reshape(-1, 8)
        logits = self.router(flat)
        if self.from_values:  # routed by the router's values: the last expert never wins
            choice = logits.argmax(-1)
        else:  # routed by position: half the tokens to each of the first two
            choice = (torch.arange(flat.shape[0]) < flat.shape[0] // 2).long()
        weights, out = logits.softmax(-1), torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            idx = torch.where(choice == e)[0]
            out = out.index_add(0, idx, expert(flat[idx]) * weights[idx, e, None])
        return out


@pytest.mark.parametrize("reading", READINGS[:2])
@pytest.mark.parametrize("from_values", [False, True], ids=["by_position", "by_value"])
def test_an_expert_without_tokens(from_values, reading):
    model, x = read_by(EmptyExpert, reading)(from_values), torch.randn(2, 4, 8)
    report = profile(model, x)
    assert report.exact and report.total["macs"] == _flop_counter_macs(model, x) == 8 * (8 * 3 + 8 * 8)
    assert report.total["params"] == sum(p.numel() for p in model.parameters())
    assert_step_agrees(model, x, reading if from_values is False else READINGS[1])
    # by hand: every expert's weight and bias get a gradient, the empty one's of zeros
    assert measure_training(model, (x,))["gradients"] == sum(p.numel() for p in model.parameters())


# --- a detection model in eval mode, its images a list ------------------------------------------------------

@pytest.mark.slow  # a torchvision detection model: tens of seconds on a busy machine
def test_a_detection_model_takes_its_images_as_one_list():
    """``profile(model, (images,))``: torchvision's detection models take a list of images (which may differ in
    size) as their one input; it was refused ("an input must be a shape or a tensor")."""
    from test_profile_detection import build
    from torch.utils.flop_counter import FlopCounterMode

    model = build("fasterrcnn_mobilenet_v3_large_fpn").eval()
    images = [torch.rand(3, 64, 80), torch.rand(3, 72, 64)]
    report = profile(model, (images,))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(images)
    assert report.exact and report.total["macs"] == counter.get_total_flops() // 2
    assert report.total["params"] == sum(p.numel() for p in model.parameters())
    assert report.input_shape == (2,)  # two images of different sizes


# --- F.embedding_bag: what the CPU kernel keeps -------------------------------------------------------------

class Bags(nn.Module):
    """``nn.EmbeddingBag`` on 2-D ids, or ``F.embedding_bag`` on 1-D ids with offsets: the CPU kernel keeps other
    index tensors than the meta kernel convcost ran it on (sum: 30 saved elements, convcost said 36)."""

    def __init__(self, mode, functional=False):
        super().__init__()
        self.bag, self.fc, self.functional = nn.EmbeddingBag(20, 8, mode=mode), nn.Linear(8, 8), functional

    def forward(self, ids):
        if self.functional:
            return self.fc(nn.functional.embedding_bag(ids, self.bag.weight, torch.tensor([0, 3]), mode=self.bag.mode))
        return self.fc(self.bag(ids))


@pytest.mark.parametrize("reading", [READINGS[0], READINGS[2]])
@pytest.mark.parametrize("functional", [False, True], ids=["module", "functional"])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_keeps_what_the_cpu_kernel_keeps(mode, functional, reading):
    ids = torch.randint(0, 20, (8,) if functional else (2, 4), generator=torch.Generator().manual_seed(0))
    assert_step_agrees(read_by(Bags, reading)(mode, functional), ids, reading)
    # by hand (PyTorch 2.13's CPU kernel): the ids (8), offsets (2), offset2bag (9, none in sum mode), bag sizes (2)
    # and max indices (2 bags, x 8 features in max mode)
    kept = 8 + 2 + (0 if mode == "sum" else 9) + 2 + (2 * 8 if mode == "max" else 2)
    assert step_numbers(Bags(mode, functional), ids)[1]["saved_indices"] == kept
