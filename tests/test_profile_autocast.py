"""Mixed precision: a training step read under ``torch.autocast`` or on a model cast to bfloat16 (issue 26, item 4).

The oracle is PyTorch's: saved-tensor hooks on the real step, each storage once by its data pointer,
parameters and buffers left out, counted in bytes (``untyped_storage().nbytes()``), so a bfloat16
activation counts 2 bytes, a float32 one 4 and an index 8, and the low-precision weight copies autocast
makes for each matmul and convolution (new storages, kept for the backward) count too. The wanted
interface is ``report.training.saved_bytes``, and ``memory()`` summing fp32 parameters, gradients and
optimizer state with those bytes. Not modelled yet: ``xfail(strict=True)`` until it is.
"""

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
from torch.autograd.graph import saved_tensors_hooks  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import optimizer_state  # noqa: E402


def saved_bytes(model, x) -> dict:
    """{dtype name: bytes} autograd keeps in one training-mode forward of ``model`` on ``x`` (under whatever
    autocast state the caller runs it in), each storage once, parameters and buffers excluded."""
    owned = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in owned and storage.nbytes():
            seen[storage.data_ptr()] = (str(t.dtype).removeprefix("torch."), storage.nbytes())
        return t

    model.train()
    with saved_tensors_hooks(pack, lambda t: t):
        model(x)
    by_dtype = {}
    for dtype, n in seen.values():
        by_dtype[dtype] = by_dtype.get(dtype, 0) + n
    return by_dtype


class Block(nn.Module):
    """What autocast treats three ways: conv and linear in bfloat16 (with weight copies), batch norm, layer
    norm and softmax in float32, ReLU in whatever it is given."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.norm, self.fc = nn.LayerNorm(8), nn.Linear(8, 8)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x))).flatten(2).transpose(1, 2)
        return torch.softmax(self.fc(self.norm(y)), dim=-1)


X = torch.randn(2, 3, 6, 6)


def test_the_oracle_sees_both_precisions_under_autocast():
    """The oracle itself: under autocast a step keeps bfloat16 and float32 tensors; outside it only float32."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = saved_bytes(Block(), X)
    assert {"bfloat16", "float32"} <= set(mixed)
    assert set(saved_bytes(Block(), X)) == {"float32"}


def test_saved_bytes_under_autocast_bf16():
    model = Block()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = saved_bytes(model, X)
        step = profile(model, tuple(X.shape), training=True).training
    assert step.saved_bytes == sum(want.values())


def test_memory_under_autocast_keeps_fp32_master_weights_and_state():
    model = Block()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        saved = sum(saved_bytes(model, X).values())
        step = profile(model, tuple(X.shape), training=True).training
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    state = optimizer_state(model, X, optimizer="adam")["bytes"]
    assert step.memory("adam") == params + params + state + saved   # fp32 weights, fp32 gradients, Adam, saved


def test_saved_bytes_of_a_model_cast_to_bf16():
    model = Block().to(torch.bfloat16)
    x = X.to(torch.bfloat16)
    want = saved_bytes(model, x)
    step = profile(model, x, training=True).training
    assert step.saved_bytes == sum(want.values())


# -- wider: a zoo sample, the weight copies, the dtypes autocast leaves alone ---------------------------------------

import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convcost.torch.runtime import autocast as autocast_lists  # noqa: E402
from convcost.torch.runtime import release  # noqa: E402


def by_dtype(step) -> dict:
    return dict(step.saved_by_dtype)


def agrees(model, x, *, cast=True, dtype=torch.bfloat16):
    """Under autocast (``cast``, in ``dtype``) or not: the step's saved bytes per dtype are the oracle's, each
    storage once."""
    with torch.autocast("cpu", dtype=dtype, enabled=cast):
        want = saved_bytes(model, x)
        report = profile(model, x if x.requires_grad or x.dtype != torch.float32 else tuple(x.shape), training=True)
    step = report.training
    assert step.complete, step.untracked
    assert by_dtype(step) == {k: v for k, v in want.items() if v}, (by_dtype(step), want)
    assert step.saved_bytes == sum(want.values())
    return step


class Attention(nn.Module):
    """A transformer block: layer norm, a fused qkv projection, attention (sdpa or written out: matmul, softmax,
    matmul), GELU MLP, dropout and residuals."""

    def __init__(self, d=16, heads=2, sdpa=True, p=0.0):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(p), nn.Linear(2 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


CNN = {
    "conv-bn-relu": lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                          nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, groups=2), nn.SiLU(),
                                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 4)),
    "block": Block,
    "residual": lambda: Residual(),
}


class Residual(nn.Module):
    """A bfloat16 convolution added to its float32 input: the sum is float32 (PyTorch's type promotion)."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3)

    def forward(self, x):
        return torch.sigmoid(self.bn(self.conv(x)) + x) * 2


@pytest.mark.parametrize("name", sorted(CNN))
@pytest.mark.parametrize("cast", [True, False])
def test_small_networks_under_autocast_and_without(name, cast):
    agrees(CNN[name](), torch.randn(2, 3, 8, 8), cast=cast)


@pytest.mark.parametrize("sdpa", [True, False])
@pytest.mark.parametrize("input_grad", [False, True])
def test_a_transformer_block_under_autocast(sdpa, input_grad):
    x = torch.randn(2, 5, 16, requires_grad=input_grad)
    step = agrees(Attention(sdpa=sdpa, p=0.1), x)
    assert {"bfloat16", "float32"} <= set(by_dtype(step))   # layer norm statistics, the fused kernel's lse: float32


def test_a_transformer_block_cast_to_bf16():
    model = Attention(p=0.1).to(torch.bfloat16)
    agrees(model, torch.randn(2, 5, 16, dtype=torch.bfloat16), cast=False)


def test_a_cnn_cast_to_bf16():
    model = CNN["conv-bn-relu"]().to(torch.bfloat16)
    step = agrees(model, torch.randn(2, 3, 8, 8, dtype=torch.bfloat16), cast=False)
    assert step.param_itemsize == 2


def test_a_weight_used_twice_is_cast_once():
    """Autocast caches the cast of a float32 parameter that needs a gradient: one copy, kept once."""

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(torch.relu(self.conv(x)))

    agrees(Twice(), torch.randn(2, 3, 6, 6))


def test_a_linear_layer_keeps_its_weight_copy_only_for_the_inputs_gradient():
    model = nn.Linear(6, 4)
    first = agrees(model, torch.randn(5, 6))
    second = agrees(model, torch.randn(5, 6, requires_grad=True))
    assert second.saved_bytes - first.saved_bytes == 6 * 4 * 2   # the bfloat16 copy of the weight


def test_memory_of_a_model_cast_to_bf16_is_its_own_dtype():
    from convcost.torch.measure_training import measure_training

    model = CNN["conv-bn-relu"]().to(torch.bfloat16)
    x = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)
    step = profile(model, x, training=True).training
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    state = optimizer_state(model, x, optimizer="adam")["bytes"]
    assert step.memory("adam") == 2 * params + state + sum(saved_bytes(model, x).values())
    assert measure_training  # the oracle module's own bytes price every saved element at the parameters' itemsize


def test_forward_macs_do_not_depend_on_precision():
    model = Attention()
    plain = profile(model, (2, 5, 16)).total["macs"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = profile(model, (2, 5, 16)).total["macs"]
    assert plain == mixed


def test_what_autocast_cannot_be_read_exactly_is_listed():
    """einsum runs its products in bfloat16 after its own permutes: not modelled, so listed, and memory()
    refuses rather than answering wrongly."""

    class Ein(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 6))

        def forward(self, x):
            return torch.einsum("bij,jk->bik", x, self.w)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        step = profile(Ein(), (2, 3, 6), training=True).training
    assert not step.complete and "autocast" in step.untracked[0][3]
    with pytest.raises(Exception, match="autocast"):
        step.memory("adam")


def test_the_autocast_lists_are_the_running_releases():
    """Every operator the running release registers for the CPU's autocast has a policy, and no other."""
    if release() not in autocast_lists.LISTS:
        pytest.skip("a release convcost does not prove")
    assert set(autocast_lists.LISTS[release()]) == autocast_lists.registered()


def test_the_largest_batch_under_autocast_is_proved_on_both_sides():
    from convcost.torch import max_batch

    model = Block()
    budget = 60_000
    params = sum(p.numel() * p.element_size() for p in model.parameters())

    def measured(n):
        x = torch.randn(n, 3, 6, 6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            saved = sum(saved_bytes(model, x).values())
        return 2 * params + optimizer_state(model, x, optimizer="adam")["bytes"] + saved

    with torch.autocast("cpu", dtype=torch.bfloat16):
        n = max_batch(model, (1, 3, 6, 6), memory=budget, optimizer="adam")
    assert n > 1 and measured(n) <= budget < measured(n + 1)
    assert max_batch(model, (1, 3, 6, 6), memory=budget, optimizer="adam") < n   # float32 activations: fewer


LAYERS = {
    "conv": lambda c: nn.Conv2d(c, 4, 3, padding=1),
    "bn": lambda c: nn.BatchNorm2d(c),
    "relu": lambda c: nn.ReLU(),
    "gelu": lambda c: nn.GELU(),
    "silu": lambda c: nn.SiLU(),
    "maxpool": lambda c: nn.MaxPool2d(2, ceil_mode=True),
    "avgpool": lambda c: nn.AvgPool2d(2, ceil_mode=True),
    "dropout": lambda c: nn.Dropout(0.3),
    "groupnorm": lambda c: nn.GroupNorm(1, c),
    "hardswish": lambda c: nn.Hardswish(),
}


def _chain(names):
    layers, c = [], 3
    for name in names:
        layers.append(LAYERS[name](c))
        c = 4 if name == "conv" else c
    return nn.Sequential(*layers)


@settings(deadline=None, max_examples=25)
@given(st.lists(st.sampled_from(sorted(LAYERS)), min_size=1, max_size=5), st.booleans(), st.booleans())
def test_random_cnn_chains_under_autocast(names, cast, input_grad):
    """Whatever order the layers come in, each saved storage has the dtype autocast left it in."""
    model = _chain(names)
    agrees(model, torch.randn(2, 3, 6, 6, requires_grad=input_grad), cast=cast)


ZOO = {
    "torchvision resnet18": ("torchvision", lambda m: m.models.resnet18(), (2, 3, 32, 32)),
    "torchvision mobilenet_v3_small": ("torchvision", lambda m: m.models.mobilenet_v3_small(), (2, 3, 32, 32)),
    "torchvision shufflenet_v2_x0_5": ("torchvision", lambda m: m.models.shufflenet_v2_x0_5(), (2, 3, 32, 32)),
    "timm convnext_atto": ("timm", lambda m: m.create_model("convnext_atto"), (2, 3, 32, 32)),
    "timm efficientnet_b0": ("timm", lambda m: m.create_model("efficientnet_b0"), (2, 3, 32, 32)),
    "timm vit_tiny_patch16_224": ("timm", lambda m: m.create_model("vit_tiny_patch16_224", img_size=32),
                                  (2, 3, 32, 32)),
    "timm swin (one block a stage)": ("timm", lambda m: m.create_model(
        "swin_tiny_patch4_window7_224", img_size=64, window_size=4, depths=(1, 1, 1, 1)), (2, 3, 64, 64)),
}


#: the zoo sample: every model under autocast, two of them cast to bfloat16 (each takes seconds; the others were
#: read once cast too, and agree)
SAMPLE = [(name, "autocast") for name in sorted(ZOO)] + [("torchvision resnet18", "bfloat16 model"),
                                                         ("timm vit_tiny_patch16_224", "bfloat16 model")]


@pytest.mark.parametrize(("name", "cast"), SAMPLE)
def test_the_zoo_sample_under_mixed_precision(name, cast):
    library, make, shape = ZOO[name]
    model = make(pytest.importorskip(library))
    if cast == "autocast":
        agrees(model, torch.randn(shape))
    else:
        agrees(model.to(torch.bfloat16), torch.randn(shape, dtype=torch.bfloat16), cast=False)


class EagerAttention(nn.Module):
    """Attention written out, softmax asked for float32 and cast back (as eager attention in transformers)."""

    def __init__(self):
        super().__init__()
        self.qkv, self.out = nn.Linear(16, 48), nn.Linear(16, 16)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, -1)
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1, dtype=torch.float32).to(q.dtype)
        return self.out(a @ v)


class Tokens(nn.Module):
    """Token ids into an embedding, layer norm, a linear head and the loss inside the forward (fp32 under
    autocast: cross_entropy_loss's policy)."""

    def __init__(self):
        super().__init__()
        self.embed, self.norm, self.head = nn.Embedding(10, 16), nn.LayerNorm(16), nn.Linear(16, 10)

    def forward(self, ids):
        logits = self.head(self.norm(self.embed(ids)))
        return F.cross_entropy(logits.flatten(0, 1), ids.flatten())


class ReadsValues(nn.Module):
    """A forward that reads a value: read with the tensors computed alongside, under the same autocast."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y.relu() if y.mean() > -100 else y


class Decoder(nn.Module):
    """Upsampling, a transposed convolution and a float cast in the forward."""

    def __init__(self):
        super().__init__()
        self.conv, self.up = nn.Conv2d(3, 4, 3, padding=1), nn.ConvTranspose2d(4, 3, 2, stride=2)

    def forward(self, x):
        return self.up(F.interpolate(self.conv(x), scale_factor=2, mode="bilinear")).float().tanh()


CASES = {
    "eager attention": (EagerAttention, lambda: torch.randn(2, 5, 16)),
    "tokens and a loss": (Tokens, lambda: torch.randint(0, 10, (2, 5))),
    "reads values": (ReadsValues, lambda: torch.randn(2, 3, 8, 8)),
    "decoder": (Decoder, lambda: torch.randn(2, 3, 8, 8)),
    "encoder layer (math-path attention)": (lambda: nn.TransformerEncoderLayer(16, 2, 32, batch_first=True),
                                            lambda: torch.randn(2, 5, 16)),
    "3-D pools and reflection pads (float32)": (
        lambda: nn.Sequential(nn.Conv3d(2, 4, 3), nn.MaxPool3d(2), nn.ReLU(), nn.Flatten(1, 2), nn.ReflectionPad2d(1),
                              nn.AvgPool2d(2)),
        lambda: torch.randn(2, 2, 6, 6, 6)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("cast", ["autocast", "bfloat16 model"])
def test_what_changes_dtype_inside_a_forward(name, cast):
    make, data = CASES[name]
    model, x = make(), data()
    if cast == "autocast":
        agrees(model, x)
    else:
        agrees(model.to(torch.bfloat16), x if not x.is_floating_point() else x.to(torch.bfloat16), cast=False)


def test_a_forward_read_call_by_call_under_autocast():
    """``type(x) is torch.Tensor`` needs real tensors: the call-by-call reading, with the same dtypes."""

    class Checks(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            assert type(x) is torch.Tensor
            return self.conv(x).relu()

    agrees(Checks(), torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize("name", ["block", "conv-bn-relu"])
def test_float16_autocast_on_the_cpu(name):
    """The CPU's lists are the same for float16: the same operators cast, to float16."""
    step = agrees(CNN[name](), torch.randn(2, 3, 8, 8), dtype=torch.float16)
    assert "float16" in by_dtype(step)


def test_float16_autocast_of_a_transformer_block():
    agrees(Attention(p=0.1), torch.randn(2, 5, 16), dtype=torch.float16)


def test_the_cli_reads_a_step_under_autocast(tmp_path, monkeypatch, capsys):
    import json

    from convcost.cli import main

    (tmp_path / "amp_models.py").write_text("import torch.nn as nn\n\ndef small():\n    return nn.Sequential("
                                          "nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())\n")
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "amp_models:small", "--input", "2,3,8,8", "--training", "--autocast", "bf16",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    x = torch.randn(2, 3, 8, 8)
    import amp_models

    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = saved_bytes(amp_models.small(), x)
    assert data["training"]["saved_by_dtype"] == {k: v for k, v in want.items() if v}
    assert main(["profile", "amp_models:small", "--input", "2,3,8,8", "--autocast", "bf16"]) == 2
    assert "--autocast bf16 applies to a training step" in capsys.readouterr().err


class WindowAttention(nn.Module):
    """Swin's attention written out: the query scaled before its product, the key a strided view (its fold
    copy kept in bfloat16), a float32 relative-position bias promoting the scores to float32."""

    def __init__(self):
        super().__init__()
        self.qkv, self.bias = nn.Linear(16, 48), nn.Parameter(torch.zeros(2, 5, 5))

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.softmax((q * 0.25) @ k.transpose(-2, -1) + self.bias, dim=-1)
        return (attn @ v).transpose(1, 2).reshape(b, n, c)


def test_a_scaled_query_and_a_float32_bias_under_autocast():
    step = agrees(WindowAttention(), torch.randn(2, 5, 16))
    assert by_dtype(step)["float32"] == 2 * 2 * 5 * 5 * 4   # the softmax's output, promoted by the bias


class Float32Inside(nn.Module):
    """EfficientViT's linear attention: autocast turned off inside the forward, the products in float32."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, -1)
        with torch.autocast("cpu", enabled=False):
            q, k, v = q.float(), k.float(), v.float()
            out = q @ (k.transpose(-1, -2) @ v)
        return out.to(x.dtype)


class ComputedBias(nn.Module):
    """BEiT's projection: a bias made in the forward (cast by autocast, kept by no backward)."""

    def __init__(self):
        super().__init__()
        self.weight, self.q_bias = nn.Parameter(torch.randn(48, 16)), nn.Parameter(torch.zeros(16))

    def forward(self, x):
        bias = torch.cat((self.q_bias, torch.zeros(16), self.q_bias))
        return F.linear(x, self.weight, bias).relu()


@pytest.mark.parametrize("model", [Float32Inside, ComputedBias], ids=lambda m: m.__name__)
def test_autocast_as_the_forward_changes_it(model):
    agrees(model(), torch.randn(2, 5, 16, requires_grad=True))


class StandardizedConv(nn.Conv2d):
    """NFNet's weight standardisation: the weight computed in the forward, whose bfloat16 copy the step keeps."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, padding=1)


def test_a_weight_computed_in_the_forward_under_autocast():
    agrees(nn.Sequential(StandardizedConv(3, 4, 3), nn.ReLU(), StandardizedConv(4, 4, 3)), torch.randn(2, 3, 6, 6))


def test_a_float32_model_that_halves_a_tensor_itself():
    """No autocast: a ``.to(torch.bfloat16)`` in a float32 forward makes the rest of it bfloat16."""

    class Halves(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.sigmoid(self.conv(x).to(torch.bfloat16)) * 2

    agrees(Halves(), torch.randn(2, 3, 6, 6, requires_grad=True), cast=False)


class MaskedAttention(nn.Module):
    """A boolean mask on the fused kernel: converted to an additive mask in the query's dtype and kept."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):
        q, k, v = self.qkv(x).reshape(2, 5, 3, 2, 8).permute(2, 0, 3, 1, 4)
        mask = torch.ones(5, 5, dtype=torch.bool).tril()
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("cast", [True, False])
def test_a_boolean_mask_under_autocast(cast):
    agrees(MaskedAttention(), torch.randn(2, 5, 16), cast=cast)
