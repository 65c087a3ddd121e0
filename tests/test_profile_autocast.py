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
