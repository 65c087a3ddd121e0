"""What the models trained today do, each reduced to a few-line torch model, against PyTorch itself.

Token ids, cached relative-position indices, masks built with ``where`` and ``masked_fill``, ``finfo`` in a
forward, eval-time caches: each case is profiled and then measured on a real step
(:func:`convcost.torch.measure_training`: ``FlopCounterMode`` over the backward, ``saved_tensors_hooks`` by
distinct storage, the optimizer's state), or run by PyTorch for its own error. Nothing here is computed from
convcost's formulas.
"""

import functools

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn
import torch.nn.functional as F

from convcost import primitives
from convcost.errors import ConvcostError
from convcost.torch import profile
from convcost.torch.measure_training import measure_training


def agrees(model, x):
    """profile's step against the measured one, on the same input; the report claims to be exact."""
    torch.manual_seed(0)
    report = profile(model, x, training=True)
    step = report.training
    measured = measure_training(model, x)
    # FlopCounterMode counts nothing for the CPU's fused attention kernel: compared without it
    unseen = sum(r.backward_macs for r in report.rows if isinstance(r.spec, primitives.Attention)
                 and r.spec.fused(r.input_shapes))
    ours = (step.backward_macs - unseen, step.saved_elements, step.saved_indices, step.params, step.memory("adam"))
    theirs = tuple(measured[k] for k in ("backward_macs", "saved_elements", "saved_indices", "params", "bytes"))
    assert ours == theirs
    assert step.complete
    return report


def _heads(x, n=3):
    """(B, T, n * 8) -> n tensors (B, 2, T, 4): query, key, value of two heads."""
    b, t, _ = x.shape
    return x.view(b, t, 2 * n, 4).transpose(1, 2).chunk(n, dim=1)


class EagerAttention(nn.Module):
    """GPT-2 / Llama-style eager attention on token ids: the probabilities cast back to the value's dtype."""

    def __init__(self, cast="type"):
        super().__init__()
        self.emb, self.qkv, self.out = nn.Embedding(50, 8), nn.Linear(8, 24), nn.Linear(8, 8)
        self.cast = cast

    def forward(self, ids):
        q, k, v = _heads(self.qkv(self.emb(ids)))
        w = F.softmax(torch.matmul(q, k.transpose(-1, -2)) / 2.0, dim=-1)
        w = w.type(v.dtype) if self.cast == "type" else w.to(q.dtype)
        return self.out(torch.matmul(w, v).transpose(1, 2).reshape(ids.shape[0], ids.shape[1], 8))


@pytest.mark.parametrize("cast", ["type", "to"])
def test_a_cast_after_token_ids_is_no_copy(cast):
    """Computed from int64 ids, the scores are still float: ``.type(v.dtype)`` is the tensor itself."""
    report = agrees(EagerAttention(cast), torch.randint(0, 50, (2, 6)))
    assert report.exact


@functools.lru_cache(maxsize=4)
def _relative_index(n):
    coords = torch.arange(n)
    return coords[:, None] - coords[None, :] + n - 1


class RelativeBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(9, 2))

    def forward(self, n):
        return self.table[_relative_index(n).view(-1)].view(n, n, 2).permute(2, 0, 1)


class SharedIndex(nn.Module):
    """BEiT-style: one cached int64 index, made once, read by every layer."""

    def __init__(self):
        super().__init__()
        self.rel, self.qkv = RelativeBias(), nn.ModuleList([nn.Linear(8, 24) for _ in range(2)])

    def forward(self, x):
        for layer in self.qkv:
            q, k, v = _heads(layer(x))
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=self.rel(5)[None]).transpose(1, 2).reshape(2, 5, 8)
        return x


def test_a_shared_index_is_saved_once():
    _relative_index.cache_clear()
    step = agrees(SharedIndex(), torch.randn(2, 5, 8)).training
    assert step.saved_indices == 25


class WhereMask(nn.Module):
    """T5-style: a position bias needing a gradient, masked with ``torch.where(cond, bias, number)``."""

    def __init__(self):
        super().__init__()
        self.qkv, self.bias = nn.Linear(8, 24), nn.Parameter(torch.randn(1, 2, 5, 5))

    def forward(self, x):
        q, k, v = _heads(self.qkv(x))
        mask = torch.where(torch.ones(5, 5, dtype=torch.bool).tril(), self.bias, -1e9)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def test_where_keeps_the_gradient_flag():
    """The mask needs a gradient, so PyTorch takes the math path (not the fused kernel), and keeps the condition."""
    report = agrees(WhereMask(), torch.randn(2, 5, 8))
    attention = [r for r in report.rows if isinstance(r.spec, primitives.Attention)]
    assert [r.spec.fused(r.input_shapes) for r in attention] == [False]


class MaskedFill(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        return self.lin(x).masked_fill(x > 0, 0.0)


def test_masked_fill_keeps_its_mask():
    agrees(MaskedFill(), torch.randn(2, 5, 8))


class FinfoMask(nn.Module):
    """T5-style: the mask's fill value from ``torch.finfo`` of a tensor computed from token ids."""

    def __init__(self):
        super().__init__()
        self.emb, self.lin = nn.Embedding(50, 8), nn.Linear(8, 8)

    def forward(self, ids):
        y = self.lin(self.emb(ids))
        fill = torch.finfo(y.dtype).min + torch.iinfo(torch.int32).bits
        return y.masked_fill(ids[..., None] == 0, fill)


def test_finfo_in_a_forward_reads():
    report = agrees(FinfoMask(), torch.randint(0, 50, (2, 5)))
    assert report.traced_with == "shape propagation"
    assert profile(FinfoMask(), torch.randint(0, 50, (2, 5))).traced_with == "shape propagation"


class SetsRequiresGrad(nn.Module):
    """wav2vec2-style: the forward makes its input's view need a gradient in training."""

    def __init__(self):
        super().__init__()
        self.lin, self.lin2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        h = x[:, None]
        if self.training:
            h.requires_grad = True
        return self.lin2(self.lin(h))


def test_a_forward_may_set_requires_grad():
    report = agrees(SetsRequiresGrad(), torch.randn(2, 5, 8))
    assert report.exact and report.traced_with == "shape propagation"
    assert profile(SetsRequiresGrad(), (2, 5, 8)).total["macs"] == 2 * 2 * 5 * 8 * 8


class MaskCode(nn.Module):
    """Mask construction that does no counted work: cumsum, diff, comparisons, on ids and on activations."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        pos = torch.ones(x.shape[:2], dtype=torch.long).cumsum(-1)
        keep = (torch.diff(pos, dim=-1, prepend=pos[:, :1]) == 1) & (pos > 0)
        y = self.lin(x) * keep[..., None]
        return y.cumsum(1)[:, 1:] + torch.diff(y, dim=1)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN: ``torch.linalg.vector_norm`` over the tokens."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.gamma, self.beta = nn.Parameter(torch.zeros(1, 1, 8)), nn.Parameter(torch.zeros(1, 1, 8))

    def forward(self, x):
        x = self.lin(x)
        gx = torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True)
        return self.gamma * (x * gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)) + self.beta + x


def _weight_normed(kind):
    conv = nn.Conv1d(4, 4, 3)
    if kind == "parametrization":
        conv = torch.nn.utils.parametrizations.weight_norm(conv)
    else:
        with pytest.warns(FutureWarning):
            conv = torch.nn.utils.weight_norm(conv)
    return nn.Sequential(conv, nn.ReLU(), nn.Conv1d(4, 4, 1))


@pytest.mark.parametrize("case", ["mask code", "vector norm", "parametrization", "hook"])
def test_work_not_counted_never_flags(case):
    """Calls without counted work are listed as such (never flagging the total); the step agrees with PyTorch."""
    model, x = {"mask code": (MaskCode, (2, 5, 8)), "vector norm": (GlobalResponseNorm, (2, 5, 8)),
                "parametrization": (lambda: _weight_normed("parametrization"), (2, 4, 9)),
                "hook": (lambda: _weight_normed("hook"), (2, 4, 9))}[case]
    model = model()
    forward = profile(model, x)
    report = agrees(model, torch.randn(x))
    for r in (forward, report):
        assert r.exact
        assert all(u.reason == "element-wise or reduction work convcost does not count" for u in r.unsupported)
    report.training.memory("adam")  # answers


class BiasCache(nn.Module):
    """LeViT-style: an eval-time attention-bias cache filled in place (keyed by device), another set as an
    attribute, and a call counter; ``train()`` clears the cache, as timm's does."""

    def __init__(self):
        super().__init__()
        self.attention_biases = nn.Parameter(torch.randn(2, 9))
        self.register_buffer("idxs", torch.randint(0, 9, (4, 4)), persistent=False)
        self.attention_bias_cache, self.calls = {}, 0
        self.lin = nn.Linear(8, 4)

    def biases(self, device):
        if self.training:
            return self.attention_biases[:, self.idxs]
        key = str(device)
        if key not in self.attention_bias_cache:
            self.attention_bias_cache[key] = self.attention_biases[:, self.idxs]
        return self.attention_bias_cache[key]

    def forward(self, x):
        self.calls += 1
        if not self.training:
            self.ab = self.attention_biases[:, self.idxs]
        bias = self.biases(x.device) + (0 if self.training else self.ab)
        return self.lin(x) + bias[0]

    def train(self, mode=True):
        super().train(mode)
        if mode and self.attention_bias_cache:
            self.attention_bias_cache = {}
        return self


@pytest.mark.parametrize("training", [False, True])
def test_the_model_is_left_as_it_was(training):
    """After profile, the model's attributes are those it had, and its next real forward, in eval and in train
    mode, is that of an untouched copy."""
    torch.manual_seed(0)
    model, twin = BiasCache(), BiasCache()
    twin.load_state_dict(model.state_dict())
    twin.idxs.copy_(model.idxs)
    model.eval(), twin.eval()
    before = {name: {k: (v, dict(v) if isinstance(v, dict) else None) for k, v in vars(m).items()}
              for name, m in model.named_modules()}
    profile(model, (2, 4, 8), training=training)
    profile(model, torch.randn(2, 4, 8), training=training)
    for name, m in model.named_modules():
        assert vars(m).keys() == before[name].keys()
        for k, v in vars(m).items():
            old, contents = before[name][k]
            assert v is old and (contents is None or v == contents), (name, k)
    x = torch.randn(2, 4, 8)
    assert torch.equal(model(x), twin(x))
    model.train(), twin.train()
    assert torch.equal(model(x), twin(x))
    assert model.calls == twin.calls == 2


def _pytorch_refuses(model, x, training):
    model.train(training)
    with pytest.raises((RuntimeError, ValueError)) as refused:
        model(x)
    return str(refused.value).splitlines()[0]


@pytest.mark.parametrize("training", [False, True])
def test_a_channel_mismatch_is_refused_as_pytorch_refuses(training):
    model, x = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(16)), torch.randn(2, 3, 8, 8)
    message = _pytorch_refuses(model, x, training)
    for given in ((2, 3, 8, 8), x):
        with pytest.raises(ConvcostError, match="PyTorch rejects") as refused:
            profile(model, given, training=training)
        assert message in str(refused.value)
    with pytest.raises(ConvcostError, match="running_mean should contain 8 elements not 16"):
        profile(nn.BatchNorm2d(16), (1, 8, 4, 4))


@pytest.mark.parametrize("model, shape", [
    (lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), (1, 3, 3, 3)),
    (lambda: nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8)), (1, 3)),
    (lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 4), nn.BatchNorm1d(4)), (1, 3, 3, 3)),
])
def test_batch_norm_on_one_value_per_channel_is_refused_in_a_step(model, shape):
    model = model()
    message = _pytorch_refuses(model, torch.randn(shape), True)
    with pytest.raises(ConvcostError, match="PyTorch rejects") as refused:
        profile(model, shape, training=True)
    assert message in str(refused.value)
    assert profile(model, shape).exact  # on running statistics it runs, and is read


class ArgmaxRouter(nn.Module):
    """A router read only through ``argmax``: its output does not reach the loss."""

    def __init__(self):
        super().__init__()
        self.router = nn.Linear(8, 2)
        self.experts = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])

    def forward(self, x):
        choice = self.router(x).argmax(-1, keepdim=True)
        return torch.where(choice == 0, self.experts[0](x), self.experts[1](x))


def test_a_layer_the_loss_does_not_reach_has_no_backward():
    """No backward MACs, gradient or optimizer state for the router (autograd gives it none); what its forward
    saves is still saved."""
    step = agrees(ArgmaxRouter(), torch.randn(2, 5, 8)).training
    assert step.unread_params == 8 * 2 + 2
