"""``profile(model, x, training=True)``: one training step read from the model, against PyTorch's own step.

The oracle is :mod:`convcost.torch.measure_training`, which measures by running: ``FlopCounterMode`` over
``out.sum().backward()`` (its torch-2.13 grouped weight-gradient overcount divided out for convcost's
convention, kept for ``backward_macs_torch``), ``saved_tensors_hooks`` by distinct storage, and the
optimizer's state after a real step. Nothing here is computed from convcost's formulas.
"""

import itertools

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from convcost import primitives
from convcost.errors import ConvcostError
from convcost.testing import EINSUM_CASES
from convcost.torch import profile, runtime
from convcost.torch.bindings.matmul import EinsumProduct
from convcost.torch.measure_training import measure_training


class Residual(nn.Module):
    def __init__(self, c=8, inplace=True):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=inplace)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return self.relu(self.b2(self.c2(self.relu(self.b1(self.c1(x))))) + x)


class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(8, 4, 3, padding=1), nn.Conv2d(12, 4, 1)

    def forward(self, x):
        y = torch.cat([x, F.relu(self.a(x))], 1)
        return torch.cat([y, self.b(y)], 1)


class Shuffle(nn.Module):
    """ShuffleNet's channel shuffle: a permuted view made contiguous is a new storage."""

    def __init__(self):
        super().__init__()
        self.c, self.d = nn.Conv2d(8, 8, 1, groups=2), nn.Conv2d(8, 8, 3, padding=1, groups=8)

    def forward(self, x):
        x = self.c(x)
        n, c, h, w = x.shape
        return self.d(x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w))


class SqueezeExcite(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, 2, 1), nn.Conv2d(2, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class Reductions(nn.Module):
    """Reductions over a tensor that needs a gradient: mean and sum save nothing, amax and amin their input
    and output (PyTorch 2.13's autograd)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        pooled = y.mean((2, 3)) + torch.amax(y, dim=(2, 3)) + y.amin((2, 3)) + y.sum((2, 3), keepdim=True).flatten(1)
        return pooled + torch.sum(y, 1).mean((1, 2)).unsqueeze(1)


class Resizing(nn.Module):
    """Padding, interpolation and a channels-last layer norm: their backward saves nothing of their own."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = F.pad(self.conv(x), (1, 1, 2, 0))
        y = self.up(y) + F.interpolate(y, scale_factor=2)
        y = self.norm(y.permute(0, 2, 3, 1))
        return self.fc(F.interpolate(y.permute(0, 3, 1, 2), size=(5, 5), mode="bicubic").permute(0, 2, 3, 1))


class Norms(nn.Module):
    """Group, instance, layer and RMS norm, as modules and as functions."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.group, self.instance = nn.GroupNorm(4, 8), nn.InstanceNorm2d(8, affine=True)
        self.plain_instance, self.layer = nn.InstanceNorm2d(8), nn.LayerNorm((8, 8), elementwise_affine=False)
        self.rms, self.weight = nn.RMSNorm(8), nn.Parameter(torch.ones(8))

    def forward(self, x):
        y = self.plain_instance(self.instance(self.group(self.conv(x))))
        y = F.group_norm(self.layer(y), 2, self.weight)
        return self.rms(y)


class InPlaceAndBuffers(nn.Module):
    """In-place functional activations, a fixed blur filter held as a buffer, and drop-path noise made
    with ``new_empty``: what timm's darknets, blur pools and stochastic depth do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.register_buffer("blur", torch.ones(8, 1, 3, 3) / 9)

    def forward(self, x):
        y = F.leaky_relu(self.conv(x), 0.1, inplace=True)
        y = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), self.blur, groups=8)
        keep = y.new_empty((y.shape[0], 1, 1, 1)).bernoulli_(0.9)
        y = y * keep
        y += 1.0
        return y.relu_()


class StridedAttention(nn.Module):
    """Attention on heads made by a transpose that moves the last axis (timm's CPUBone): the fused CPU kernel
    needs unit last strides, so PyTorch runs the math path; its output, permuted back and reshaped, is a
    channels-last view, which the convolution, dropout and residual sum after it keep channels last."""

    def __init__(self, c=8):
        super().__init__()
        self.qkv, self.proj = nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(n, 1, 3 * c, h * w).permute(0, 1, 3, 2).chunk(3, dim=3)
        y = F.scaled_dot_product_attention(q, k, v).permute(0, 1, 3, 2).reshape(n, c, h, w)
        y = self.drop(self.proj(y)) + x  # channels last, as its first operand
        # channels last: these heads have unit last strides, and the fused kernel runs
        q = y.reshape(n, 1, c, h * w).permute(0, 1, 3, 2)
        k = y.flatten(2).unsqueeze(1).mT
        return F.scaled_dot_product_attention(q, k, k).flatten(1)


class TransposedTokens(nn.Module):
    """Linear layers on a transposed view (timm's NextViT): ``F.linear`` folds a 3-D input to a matrix, which
    copies a view whose axes do not merge, and each layer keeps its own copy; batched products of views
    whose batch axes were reordered copy them too."""

    def __init__(self, c=8):
        super().__init__()
        self.k, self.v, self.norm = nn.Linear(c, c), nn.Linear(c, c), nn.BatchNorm1d(c)

    def forward(self, x):  # (B, C, N)
        t = self.norm(x).transpose(1, 2)
        k, v = self.k(t), self.v(t)
        heads = k.reshape(k.shape[0], k.shape[1], 2, -1).permute(2, 0, 1, 3)  # (2, B, N, C/2), batch axes reordered
        scores = heads @ heads.transpose(-2, -1)
        return (scores.softmax(-1) @ v.reshape(v.shape[0], v.shape[1], 2, -1).permute(2, 0, 1, 3)).sum(0)


class BlockedAttention(nn.Module):
    """Attention over image blocks, 5-D heads cut from one projection (timm's NesT): the math path, whose
    products fold each head to a batch of matrices, copying the strided ones, and keep the copies."""

    def __init__(self, c=6, heads=3):
        super().__init__()
        self.qkv, self.heads = nn.Linear(c, 3 * c), heads

    def forward(self, x):  # (B, T, N, C)
        b, t, n, c = x.shape
        qkv = self.qkv(x).reshape(b, t, n, 3, self.heads, c // self.heads).permute(3, 0, 4, 1, 2, 5)
        q, k, v = qkv.unbind(0)
        return F.scaled_dot_product_attention(q, k, v).sum((1, 4))


class UnpaddedWindows(nn.Module):
    """Pad to whole windows, project, and crop back with ``x[:, :h, :w].contiguous()`` (timm's HieraDet): the
    crop is a strided view, so ``contiguous`` copies it; a ``detach`` shares its storage outside autograd."""

    def __init__(self, c=8):
        super().__init__()
        self.proj, self.scale = nn.Linear(c, c), nn.Parameter(torch.ones(c))

    def forward(self, x):  # (B, H, W, C)
        h, w = x.shape[1:3]
        y = self.proj(F.pad(x, (0, 0, 0, 3, 0, 3)))[:, :h, :w, :].contiguous()
        return y * self.scale + y.detach().contiguous() * self.scale


class HeadsOfAModule(nn.Module):
    """``nn.MultiheadAttention`` as torchvision's ViT calls it (self-attention, no weights returned) and as a
    decoder does (cross-attention with its own key and value sizes, averaged weights returned): a training
    step is read by what its forward calls (packed projections sliced from one parameter, products,
    softmax), each part counted exactly."""

    def __init__(self, c=8):
        super().__init__()
        self.own = nn.MultiheadAttention(c, 2, batch_first=True)
        self.cross = nn.MultiheadAttention(c, 2, kdim=4, vdim=6, add_bias_kv=True)

    def forward(self, x):  # (B, L, C)
        y = self.own(x, x, x, need_weights=False)[0]
        t = y.transpose(0, 1)
        out, weights = self.cross(t, t[2:, :, :4], t[2:, :, 2:])
        return out.sum() + weights.sum()


class CallsWithoutRows(nn.Module):
    """Element-wise calls convcost has no row for (normalize, clamp, exp, pow, addcmul, an in-place clamp_, a
    norm), a weight standardised in the forward (timm's NFNets), and a parameter the forward never reads (no
    gradient, no optimizer state): what autograd keeps of each is PyTorch's own, run on meta tensors."""

    def __init__(self):
        super().__init__()
        self.conv, self.weight = nn.Conv2d(3, 8, 3), nn.Parameter(torch.randn(8, 8, 1, 1))
        self.unread = nn.Linear(3, 3)

    def forward(self, x):
        y = F.normalize(self.conv(x), dim=1)
        y = torch.clamp(y, -1, 1).exp() + y.pow(2)
        w = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
        y = F.conv2d(y, w / w.std((1, 2, 3), keepdim=True))
        y = torch.addcmul(y, y, y.square())
        y.clamp_(0, 5)
        return y.norm(dim=1)


class Contractions(nn.Module):
    """``torch.einsum`` as models write it: a channel mix against a parameter, attention scores of permuted
    heads (folded with copies), a three-operand chain contracted left to right, and relative-position logits
    against a parameter of three axes (torchvision's MaxViT): backward MACs in closed form, what the folding
    keeps from the call run on meta tensors."""

    def __init__(self, c=3):
        super().__init__()
        self.mix, self.a = nn.Parameter(torch.randn(4, c)), nn.Parameter(torch.randn(4, 5))
        self.b = nn.Parameter(torch.randn(5, 2))
        self.rel = nn.Parameter(torch.randn(8, 7, 2))

    def forward(self, x):  # (B, C, H, W)
        y = torch.einsum("bchw,oc->bohw", x, self.mix)
        heads = y.permute(0, 2, 1, 3)  # (B, H, O, W)
        scores = torch.einsum("bhqd,bhkd->bhqk", heads, heads.flip(3) * 1)
        chain = torch.einsum("bhqk,ko,op->bhqp", scores, self.a[:, :4].T @ self.a[:, :4], self.b[:4, :])
        return torch.einsum("bhwc,hkc->bhwk", chain, self.rel).sum()


class MaskedAttention(nn.Module):
    """Attention with its options: causal, a boolean mask buffer (kept by the fused kernel as a float copy), an
    additive mask buffer (kept as it is), a relative-position bias gathered from a parameter table by an index
    buffer (Swin's; a mask that needs a gradient sends PyTorch down the math path, the gather keeps nothing
    but the index it was given), dropout on the weights (the math path, keeping the noise and the dropped
    weights), and grouped key and value heads."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 24)
        self.register_buffer("allowed", torch.rand(5, 5) > 0.3)
        self.register_buffer("additive", torch.randn(1, 2, 5, 5))
        self.table = nn.Parameter(torch.randn(9, 2))
        self.register_buffer("index", (torch.arange(5)[:, None] - torch.arange(5)[None, :] + 4).flatten())

    def forward(self, x):  # (B, N, C)
        b, n, c = x.shape
        q, k, v = self.proj(x).reshape(b, n, 3, 2, 4).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = F.scaled_dot_product_attention(y, k, v, attn_mask=self.allowed)
        y = F.scaled_dot_product_attention(y, k, v, attn_mask=self.additive)
        bias = self.table[self.index].view(5, 5, 2).permute(2, 0, 1).unsqueeze(0)
        y = F.scaled_dot_product_attention(y, k, v, attn_mask=bias)
        y = F.scaled_dot_product_attention(y, k.detach(), v, dropout_p=0.1)  # dropout: the math path
        one = slice(0, 1)  # one key and value head for both query heads: the fused kernel keeps them as given
        return F.scaled_dot_product_attention(y, k[:, one], v[:, one], enable_gqa=True)


class SelectedKernels(nn.Module):
    """timm's selective kernels: two paths stacked (``torch.stack`` makes a new tensor that needs a gradient
    when a path does), summed, pooled, and an attention over the paths computed from them."""

    def __init__(self, c=4):
        super().__init__()
        self.paths = nn.ModuleList([nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(3, c, 5, padding=2)])
        self.reduce, self.select = nn.Conv2d(c, 2, 1), nn.Conv2d(2, 2 * c, 1)

    def forward(self, x):
        stacked = torch.stack([p(x) for p in self.paths], dim=1)  # (B, 2, C, H, W)
        attn = self.select(self.reduce(stacked.sum(1).mean((2, 3), keepdim=True)).relu())
        attn = attn.view(attn.shape[0], 2, -1, 1, 1).softmax(dim=1)
        return (stacked * attn).sum(1)


class SlicedNorms(nn.Module):
    """Norms of channel slices (timm's SHViT normalises part of its channels): group norm makes a strided input
    contiguous and keeps that copy, batch norm keeps the slice itself; a module and a call alike."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.other = nn.Conv2d(3, 8, 1), nn.GroupNorm(1, 4), nn.GroupNorm(2, 4)
        self.batch = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        a, b = y[:, :4], y[:, 4:]
        return self.norm(a) + F.group_norm(b, 2, self.other.weight, self.other.bias) + self.batch(b)


class WeightedHeads(nn.Module):
    """Heads weighted by 0-d entries of a softmax over a parameter (timm's EfficientViM): each product keeps
    the head's output for the weight's gradient and the 0-d view for the head's."""

    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.ones(3))
        self.heads = nn.ModuleList([nn.Conv2d(3, 4, 1) for _ in range(3)])

    def forward(self, x):
        w = self.weights.softmax(-1)
        return torch.stack([w[i] * head(x) for i, head in enumerate(self.heads)]).sum(0)


def stem(c=8):
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True))


def frozen_stem():
    s = stem()
    s.requires_grad_(False)
    return nn.Sequential(s, nn.Conv2d(8, 8, 3, groups=4), nn.ReLU())


MODELS = {
    "residual": lambda: nn.Sequential(stem(), Residual(), Residual(inplace=False), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten(), nn.Linear(8, 5)),
    "dense": lambda: nn.Sequential(stem(), Dense(), nn.MaxPool2d(2), nn.Conv2d(16, 4, 1)),
    "shuffle": lambda: nn.Sequential(stem(), Shuffle(), nn.AvgPool2d(2)),
    "squeeze-excite": lambda: nn.Sequential(stem(), SqueezeExcite(), nn.Hardswish()),
    "dropout": lambda: nn.Sequential(stem(), nn.Flatten(), nn.Dropout(0.3), nn.Linear(512, 4)),
    "transposed": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 2, 3, stride=2), nn.Sigmoid()),
    "frozen stem": frozen_stem,
    "tokens": lambda: nn.Sequential(nn.Linear(8, 7), nn.GELU(), nn.Linear(7, 3)),
    "pool indices": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Tanh()),
    "reductions": Reductions,
    "resizing": Resizing,
    "norms": Norms,
    "in-place and buffers": InPlaceAndBuffers,
    "in-place leaky relu": lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.LeakyReLU(0.1, inplace=True),
                                                 nn.Conv2d(8, 4, 1)),
    # in place, SiLU, hardswish and ReLU6 overwrite the input their backward needs: autograd keeps a copy of it
    "in-place silu": lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.SiLU(inplace=True),
                                           nn.Conv2d(8, 4, 1), nn.Hardswish(inplace=True), nn.Conv2d(4, 4, 1)),
    "strided attention": StridedAttention,
    "weighted heads": WeightedHeads,
    "multihead attention": HeadsOfAModule,
    "calls without rows": CallsWithoutRows,
    "einsum": Contractions,
    "masked attention": MaskedAttention,
    "selected kernels": SelectedKernels,
    "sliced norms": SlicedNorms,
    # the noise each dropout multiplies by is kept: per element, or per channel for the feature dropouts
    "every dropout": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout2d(0.2), nn.Conv2d(4, 4, 1),
                                           nn.AlphaDropout(0.1),
                                           nn.Conv2d(4, 4, 1), nn.FeatureAlphaDropout(0.1), nn.Flatten(2),
                                           nn.Dropout1d(0.1), nn.Conv1d(4, 2, 1)),
    "unpadded windows": UnpaddedWindows,
    "blocked attention": BlockedAttention,
    "transposed tokens": TransposedTokens,
    "flattened channels last": lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(2), nn.Linear(36, 4)),
    "in-place relu6": lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU6(inplace=True),
                                            nn.Conv2d(8, 4, 1), nn.Hardtanh(0.0, 6.0, inplace=True),
                                            nn.Conv2d(4, 4, 1)),
}
SHAPES = {"tokens": (2, 5, 8), "transposed": (1, 3, 7, 7), "pool indices": (1, 3, 9, 9),
          "strided attention": (2, 8, 4, 4),
          "transposed tokens": (2, 8, 6), "blocked attention": (2, 2, 5, 6),
          "unpadded windows": (2, 3, 3, 8), "multihead attention": (2, 5, 8),
          "masked attention": (2, 5, 8)}


def agrees(model, shape, input_grad=False, optimizer="adam"):
    """profile's step against the measured one: backward MACs (both conventions), saved storages, bytes."""
    torch.manual_seed(0)
    x = torch.randn(shape)
    report = profile(model, x.clone().requires_grad_(True) if input_grad else shape, training=True)
    step = report.training
    measured = measure_training(model, x, optimizer=optimizer, input_grad=input_grad)
    # FlopCounterMode counts nothing for the CPU's fused attention kernel before torch 2.15 (checked by hand in
    # test_attention_on_the_fused_kernel): there compared without it
    unseen = 0 if runtime.flop_counter().fused_attention else sum(
        r.backward_macs for r in report.rows if isinstance(r.spec, primitives.Attention)
        and r.spec.fused(r.input_shapes))
    ours = (step.backward_macs - unseen, step.backward_macs_torch - unseen, step.saved_elements, step.saved_indices,
            step.params, step.trainable_params, step.memory(optimizer))
    theirs = tuple(measured[k] for k in ("backward_macs", "backward_macs_torch", "saved_elements", "saved_indices",
                                         "params", "trainable_params", "bytes"))
    assert ours == theirs
    return step


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("input_grad", [False, True])
def test_a_step_is_what_pytorch_does(name, input_grad):
    agrees(MODELS[name](), SHAPES.get(name, (2, 3, 8, 8)), input_grad)


@pytest.mark.parametrize("equation, shapes", EINSUM_CASES)
def test_einsum_in_a_step(equation, shapes):
    """Every operand's gradient flag: backward MACs in closed form (Einsum.backward_macs) against
    FlopCounterMode, saved elements against the hooks."""
    torch.manual_seed(0)
    xs = [torch.randn(s) for s in shapes]
    for grads in itertools.product([False, True], repeat=len(shapes)):
        if not any(grads):
            continue
        step = profile(EinsumProduct(equation), [x.clone().requires_grad_(g) for x, g in zip(xs, grads)],
                       training=True).training
        measured = measure_training(EinsumProduct(equation), xs, input_grad=grads)
        assert (step.backward_macs, step.saved_elements) == (measured["backward_macs"], measured["saved_elements"]), \
            grads


class FoldedTokens(nn.Module):
    """Tokens made by a transpose (a linear layer then keeps a copy of them) and a permuted map made contiguous
    (a copy): with a symbolic batch, the views and copies are decided at a generic size."""

    def __init__(self):
        super().__init__()
        self.conv, self.linear = nn.Conv2d(3, 8, 1), nn.Linear(8, 8)

    def forward(self, x):
        y = self.conv(x)
        tokens = self.linear(y.flatten(2).transpose(1, 2)).relu()
        return tokens.sum() + (y.permute(0, 2, 3, 1).contiguous().relu() * 2).sum()


def test_a_symbolic_batch_reads_the_same_step():
    import sympy

    n = sympy.Symbol("N", positive=True, integer=True)
    step = profile(FoldedTokens(), (n, 3, 4, 4), training=True).training
    assert step.complete
    for batch in (1, 2, 3):
        measured = measure_training(FoldedTokens(), torch.randn(batch, 3, 4, 4))
        assert (step.backward_macs.subs(n, batch), step.saved_elements.subs(n, batch)) \
            == (measured["backward_macs"], measured["saved_elements"])


def test_a_channels_last_input_is_read_as_one():
    """A channels-last input: the convolution's output stays channels last, so the linear layer's fold of its
    flattened view copies it, and autograd keeps that copy besides the ReLU's output (with a contiguous input
    both are one storage)."""
    model = MODELS["flattened channels last"]()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    for layout in (x, x.contiguous()):
        step = profile(model, layout, training=True).training
        assert step.saved_elements == measure_training(model, layout)["saved_elements"]
    assert profile(model, x, training=True).training.saved_elements \
        > profile(model, x.contiguous(), training=True).training.saved_elements


def test_attention_on_strided_heads_runs_the_math_path():
    report = profile(StridedAttention(), (2, 8, 4, 4), training=True)
    first, second = [r.spec for r in report.rows if isinstance(r.spec, primitives.Attention)]
    assert (first.kernel, second.kernel) == ("math", "auto")


def test_grouped_convolution_reconciles_with_flopcountermode():
    step = agrees(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)), (1, 4, 10, 10))
    # by hand: the weight gradient of a depthwise 3x3 on 4x10x10 is 4 x 100 x 9 = 3,600 MACs;
    # FlopCounterMode in torch 2.13 counts it as if every input channel met every output channel (x4)
    assert (step.backward_macs, step.backward_macs_torch) == (3600, 14400)


def test_frozen_parameters_get_no_weight_gradient_and_no_state():
    model = MODELS["frozen stem"]()
    step = agrees(model, (2, 3, 8, 8))
    assert step.trainable_params == sum(p.numel() for p in model[1].parameters())


def test_rows_carry_their_own_training_counts():
    r = profile(nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.Conv2d(8, 8, 3, bias=False)), (1, 3, 8, 8),
                training=True)
    first, _, last = r.rows
    # the first convolution's input is data: only its weight gradient (= its MACs); the last one has both
    assert first.backward_macs == first.macs and last.backward_macs == 2 * last.macs
    assert r.total["backward_macs"] == r.training.backward_macs == sum(row.backward_macs for row in r.rows)


def test_training_flags_of_the_model_are_restored():
    model = MODELS["dropout"]()
    model.eval()
    profile(model, (2, 3, 8, 8), training=True)
    assert not any(m.training for m in model.modules())


def test_what_cannot_be_counted_is_listed_and_memory_refused():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x).flatten(2)
            return torch.cdist(y, y)  # work convcost has no rule for: neither its MACs nor what it saves

    step = profile(Odd(), (1, 3, 6, 6), training=True).training
    assert not step.complete and step.untracked[0][0] == "torch.cdist"
    with pytest.raises(ConvcostError, match="cdist"):
        step.memory("adam")


def test_bad_training_arguments():
    with pytest.raises(ConvcostError, match="training="):
        profile(nn.Conv2d(3, 4, 3), (1, 3, 6, 6), training="yes")
    step = profile(nn.Conv2d(3, 4, 3), (1, 3, 6, 6), training=True).training
    with pytest.raises(ConvcostError, match="rmsprop"):
        step.memory("rmsprop")


LAYERS = [
    lambda c: (nn.Conv2d(c, 8, 3, padding=1), 8),
    lambda c: (nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), c),
    lambda c: (nn.BatchNorm2d(c), c),
    lambda c: (nn.ReLU(), c),
    lambda c: (nn.ReLU(inplace=True), c),
    lambda c: (nn.ReLU6(inplace=True), c),
    lambda c: (nn.LeakyReLU(0.1, inplace=True), c),
    lambda c: (nn.ELU(inplace=True), c),
    lambda c: (nn.SiLU(), c),
    lambda c: (nn.SiLU(inplace=True), c),
    lambda c: (nn.Hardswish(inplace=True), c),
    lambda c: (nn.Sigmoid(), c),
    lambda c: (nn.MaxPool2d(3, 1, 1), c),
    lambda c: (nn.AvgPool2d(3, 1, 1), c),
    lambda c: (nn.ConvTranspose2d(c, 4, 3, padding=1), 4),
    lambda c: (nn.Identity(), c),
]


@settings(deadline=None)
@given(st.lists(st.sampled_from(range(len(LAYERS))), min_size=1, max_size=5), st.booleans(),
       st.sampled_from(["sgd", "momentum", "adam", "adamw"]), st.integers(1, 3))
def test_random_networks(picks, input_grad, optimizer, batch):
    layers, c = [], 3
    for i in picks:
        layer, c = LAYERS[i](c)
        layers.append(layer)
    model = nn.Sequential(*layers)
    try:
        measure_training(model, torch.randn(batch, 3, 6, 6), input_grad=input_grad)
    except RuntimeError:  # PyTorch cannot train it (an in-place ReLU over a tensor saved for backward)
        reject()
    agrees(model, (batch, 3, 6, 6), input_grad, optimizer)


class _Step(nn.Module):
    """One step of a random token program on a (B, 6, 6) tensor: a view, a copy, or work, in any layout."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind in ("linear", "scale"):
            self.linear = nn.Linear(6, 6) if kind == "linear" else None
            self.scale = nn.Parameter(torch.ones(6)) if kind == "scale" else None

    def forward(self, t):
        k = self.kind
        if k == "transpose":
            return t.transpose(1, 2)
        if k == "contiguous":
            return t.contiguous()
        if k == "scramble":  # a reshape through a permuted 4-D view: a view or a copy, as the strides allow
            return t.reshape(t.shape[0], 3, 2, 6).permute(0, 2, 1, 3).reshape(t.shape[0], 6, 6)
        if k == "gelu":
            return F.gelu(t)
        if k == "softmax":
            return t.softmax(-1)
        if k == "linear":
            return self.linear(t)
        if k == "scale":
            return t * self.scale
        if k == "product":
            return t @ t.transpose(1, 2)
        if k == "residual":
            return t + t.transpose(1, 2)
        if k == "attention":
            q = t.unsqueeze(1)
            return F.scaled_dot_product_attention(q, q, q).squeeze(1)
        if k == "exp":
            return t.clamp(-3, 3).exp()
        return t[:, :, :].flip(1) * 1  # "flip": a gather into a fresh tensor


STEPS = ("transpose", "contiguous", "scramble", "gelu", "softmax", "linear", "scale", "product", "residual",
         "attention", "exp", "flip")


@settings(deadline=None)
@given(st.lists(st.sampled_from(STEPS), min_size=1, max_size=6), st.booleans(), st.integers(1, 2))
def test_random_token_programs(kinds, input_grad, batch):
    """Views, copies and work in random order: whatever layout each step leaves, the next one's copies, saved
    tensors and attention kernel are PyTorch's."""
    model = nn.Sequential(nn.Linear(6, 6), *(_Step(k) for k in kinds))
    agrees(model, (batch, 6, 6), input_grad)


def test_the_largest_batch_is_proved_by_pytorch_on_both_sides():
    from convcost.torch import max_batch

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    budget = 300_000
    n = max_batch(model, (1, 3, 8, 8), memory=budget, optimizer="momentum")
    fits = measure_training(model, torch.randn(n, 3, 8, 8), optimizer="momentum")["bytes"]
    over = measure_training(model, torch.randn(n + 1, 3, 8, 8), optimizer="momentum")["bytes"]
    assert n > 1 and fits <= budget < over
    assert max_batch(model, (1, 3, 8, 8), memory=1000) == 0  # not even the parameters fit


@pytest.mark.parametrize("memory", ["-1GB", "lots", 0, None, float("nan")])
def test_a_bad_budget_is_refused_by_name(memory):
    from convcost.torch import max_batch

    with pytest.raises(ConvcostError, match="memory"):
        max_batch(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), memory=memory)


def test_cli_prints_the_step_and_the_largest_batch(tmp_path):
    import subprocess
    import sys

    (tmp_path / "nets.py").write_text("import torch.nn as nn\n\ndef net():\n"
                                      "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())\n")
    run = [sys.executable, "-m", "convcost", "profile", "nets:net", "--input", "1,3,16,16", "--training"]
    done = subprocess.run([*run, "--memory", "1MiB"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Training step: backward MACs" in done.stdout
    assert "Largest batch whose training step fits in 1MiB" in done.stdout
    bad = subprocess.run([*run, "--optimizer", "rmsprop"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode != 0 and "rmsprop" in bad.stderr and "Traceback" not in bad.stderr


class Product(nn.Module):
    """``x @ w`` (or ``w @ x``) with a parameter ``w``, and ``x @ x^T``: what matmul keeps for each gradient."""

    def __init__(self, shape, first, trained):
        super().__init__()
        self.w, self.first = nn.Parameter(torch.randn(shape), requires_grad=trained), first

    def forward(self, x):
        y = x @ self.w if self.first else self.w @ x
        return y + (y @ y.transpose(-1, -2)).sum()


@st.composite
def products(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    mask = [draw(st.booleans()) for _ in batch]  # which batch axes the other operand broadcasts over
    other = tuple(1 if keep else b for b, keep in zip(batch, mask))[draw(st.integers(0, len(batch))):]
    if draw(st.booleans()):  # x (batch, n, k) @ w (other, k, m)
        return (*batch, n, k), (*other, k, m), True
    return (*batch, k, m), (*other, n, k), False  # w (other, n, k) @ x (batch, k, m)


@settings(deadline=None)
@given(products(), st.booleans(), st.booleans())
def test_matrix_products(case, input_grad, trained):
    x, w, first = case
    agrees(Product(w, first, trained), x, input_grad or not trained)


class SelfAttention(nn.Module):
    """Attention through F.scaled_dot_product_attention, which a training step runs on PyTorch's math path."""

    def __init__(self, heads, frozen):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(8, 24), nn.Linear(8, 8)
        self.qkv.requires_grad_(not frozen)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, 8 // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, 8))


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("input_grad, frozen", [(False, False), (True, False), (True, True), (False, True)])
def test_attention_on_the_fused_kernel(heads, input_grad, frozen):
    torch.manual_seed(0)
    model, x = SelfAttention(heads, frozen), torch.randn(2, 5, 8)
    step = profile(model, x.clone().requires_grad_(True) if input_grad else (2, 5, 8), training=True).training
    measured = measure_training(model, x, input_grad=input_grad)
    # FlopCounterMode counts nothing for the CPU's fused attention kernel before torch 2.15, forward or backward.
    # By hand, its backward as FlopCounterMode counts the fused kernels elsewhere (and from 2.15 this one):
    # B H L S (3 E + 2 Ev), every gradient
    e = 8 // heads
    fused = 2 * heads * 5 * 5 * (3 * e + 2 * e) if input_grad or not frozen else 0
    if runtime.flop_counter().fused_attention:  # measured already (tests/test_runtime.py checks it by hand)
        fused = 0
    assert step.backward_macs == measured["backward_macs"] + fused
    assert (step.saved_elements, step.memory("adam")) == (measured["saved_elements"], measured["bytes"])


class MathAttention(nn.Module):
    """Values of another head size than queries and keys: PyTorch runs attention on its math path."""

    def __init__(self):
        super().__init__()
        self.qk, self.v = nn.Linear(8, 16), nn.Linear(8, 6)

    def forward(self, x):
        b, n, _ = x.shape
        q, k = self.qk(x).view(b, n, 2, 2, 4).permute(2, 0, 3, 1, 4)
        v = self.v(x).view(b, n, 2, 3).transpose(1, 2)
        return F.scaled_dot_product_attention(q, k, v).sum(-1)


@pytest.mark.parametrize("input_grad", [False, True])
def test_attention_on_the_math_path(input_grad):
    agrees(MathAttention(), (2, 5, 8), input_grad)


# -- a forward that reads values -------------------------------------------------------------------------------


class BranchOnValues(nn.Module):
    """A branch on a value, a loop count read from one, and a sample picked by its argmax."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.extra, self.fc = nn.Conv2d(8, 8, 1), nn.Linear(8, 4)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if y.mean() > -1:
            y = F.relu(y)
        for _ in range(int(y.abs().sum() > 0) + 1):
            y = self.extra(y)
        k = int(y.flatten(1).sum(1).argmax())
        return self.fc(y[k:k + 1].mean((2, 3)))


class RoutedExperts(nn.Module):
    """Each sample sent to the expert its router scores highest (``tolist``), with dropout on the way, its output
    weighted by that score (so that the router is trained, as in a mixture of experts)."""

    def __init__(self):
        super().__init__()
        self.router, self.drop = nn.Linear(3, 3), nn.Dropout(0.2)
        self.experts = nn.ModuleList(nn.Conv2d(3, 5, 3, padding=1) for _ in range(3))

    def forward(self, x):
        scores = self.router(x.mean((2, 3))).softmax(1)
        choice = scores.argmax(1).tolist()
        outs = [self.experts[e](self.drop(x[i:i + 1])) * scores[i, e] for i, e in enumerate(choice)]
        return torch.cat(outs).sigmoid()


@pytest.mark.parametrize("model", [BranchOnValues, RoutedExperts], ids=lambda m: m.__name__)
def test_a_forward_that_reads_values(model):
    """Read on shapes with the tensors computed alongside: the step is PyTorch's, and reading it changes
    neither the model (batch norm's running statistics), nor the input, nor the random state."""
    torch.manual_seed(0)
    net, x = model(), torch.randn(3, 3, 8, 8)
    given, state, rng = x.clone(), {k: v.clone() for k, v in net.state_dict().items()}, torch.random.get_rng_state()
    report = profile(net, x, training=True)
    assert report.traced_with == "shape propagation with values"
    assert torch.equal(x, given) and torch.equal(torch.random.get_rng_state(), rng)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    step, measured = report.training, measure_training(net, x)
    assert step.complete
    assert (step.backward_macs, step.backward_macs_torch, step.saved_elements, step.saved_indices,
            step.memory("adam")) \
        == tuple(measured[k] for k in ("backward_macs", "backward_macs_torch", "saved_elements", "saved_indices",
                                       "bytes"))


def test_a_forward_whose_sizes_the_values_decide_is_read_with_values_and_listed():
    class Grows(nn.Module):
        def forward(self, x):
            return x[x > 0]  # how many elements: the values' answer, which no rule gives

    r = profile(Grows(), torch.randn(4, 4).requires_grad_(True), training=True)
    # the size from the call run on the values; the forward holds no multiply-accumulate, so it is exact, and
    # what the indexing keeps for its backward is not known: the step says so (never a silent zero)
    assert r.traced_with == "shape propagation with values" and r.exact
    assert [u[0] for u in r.training.untracked] == ["getitem"] and not r.training.complete


@pytest.mark.parametrize("shape", ["line", "bent at one", "convex", "concave", "steps"])
def test_max_batch_finds_the_largest_batch_in_few_readings(shape, monkeypatch):
    """The search, on memories of every shape a step can have (a line, a line bent at a batch of one as
    attention's views bend it, faster or slower than a line, in steps), against every batch tried in turn."""
    from convcost.torch import fit

    memory = {"line": lambda n: 1000 + 37 * n, "bent at one": lambda n: 1000 + 37 * n + (0 if n == 1 else 500),
              "convex": lambda n: 1000 + n * n, "concave": lambda n: 1000 + 300 * int(n ** 0.5 * 10),
              "steps": lambda n: 1000 + 37 * n + 640 * (n // 8)}[shape]
    calls = []
    monkeypatch.setattr(fit, "step_memory", lambda model, batch, *a: calls.append(batch[0]) or memory(batch[0]))
    for budget in (1037, 1100, 5000, 123_457, 10**6):
        calls.clear()
        found = fit.max_batch(None, (1, 3), memory=budget)
        brute = 0
        while memory(brute + 1) <= budget:  # every batch in turn (memory grows with the batch)
            brute += 1
        assert found == brute, (shape, budget)
        # a line (bent or not) in two readings past the first two guesses; any other shape by bisection
        assert len(set(calls)) <= (6 if shape in ("line", "bent at one") else 30), (shape, budget, len(set(calls)))
