"""Custom ``torch.autograd.Function`` subclasses in a training step (transformers' YOSO and RecurrentGemma).

PyTorch runs such a Function's forward with grad disabled (its calls are forward work and keep nothing), keeps
what ``ctx.save_for_backward`` was given, and runs the user's own backward once the loss reaches its output.
Each few-line model is read three ways (on shapes, with the values computed alongside, call by call) and held to
PyTorch itself (:mod:`step_oracle`: FlopCounterMode over the backward, saved-tensor hooks, Adam's bytes), never to
convcost's formulas; a backward convcost cannot read is listed, with why, and never claimed complete.
"""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from step_oracle import READINGS, assert_step_agrees, read_by, step_numbers  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training  # noqa: E402

needs_transformers = pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                                        reason="transformers is not installed")


class ClippedSqrt(torch.autograd.Function):
    """RecurrentGemma's ``SqrtBoundDerivative``: ``sqrt`` forward, its own clipped gradient backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sqrt(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / torch.sqrt(torch.clip(4.0 * x, min=1e-6))


class Cumulation(torch.autograd.Function):
    """YOSO's ``YosoCumulation``: an attention whose forward keeps its weights and operands, and whose backward is
    four products of its own (autograd's derivative of the forward would also go through ``acos``)."""

    @staticmethod
    def forward(ctx, query, key, value, config):
        expectation = (1 - torch.acos(torch.matmul(query, key.transpose(-1, -2))) / math.pi) ** config["bits"]
        ctx.save_for_backward(expectation, query, key, value)
        ctx.config = config
        return torch.matmul(expectation, value)

    @staticmethod
    def backward(ctx, grad):
        expectation, query, key, value = ctx.saved_tensors
        bits = ctx.config["bits"]
        weighted = torch.matmul(grad, value.transpose(-1, -2)) * expectation
        grad_query = torch.matmul(weighted, (bits / 2) * key)
        grad_key = torch.matmul(weighted.transpose(-1, -2), (bits / 2) * query)
        grad_value = torch.matmul(expectation.transpose(-1, -2), grad)
        return grad_query, grad_key, grad_value, None


class WeightOnly(torch.autograd.Function):
    """``x @ w`` whose backward computes only the gradients ``ctx.needs_input_grad`` asks for."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        grad_x = grad @ w.T if ctx.needs_input_grad[0] else None
        grad_w = x.flatten(0, -2).T @ grad.flatten(0, -2) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w


class SplitContext(torch.autograd.Function):
    """The same product, its forward apart from ``setup_context`` (torch's functorch-ready form)."""

    @staticmethod
    def forward(x, w):
        return x @ w

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return grad @ w.T, x.flatten(0, -2).T @ grad.flatten(0, -2)


class TopIndex(torch.autograd.Function):
    """A maximum and its index: the index marked non-differentiable, nothing saved, the gradient scattered."""

    @staticmethod
    def forward(ctx, x):
        values, index = x.max(-1)
        ctx.mark_non_differentiable(index)
        ctx.shape = x.shape
        ctx.index = index
        return values, index

    @staticmethod
    def backward(ctx, grad, _):
        return torch.zeros(ctx.shape).scatter(-1, ctx.index[..., None], grad[..., None])


class ReadsValues(torch.autograd.Function):
    """A backward that reads a value (``float(...)``): it cannot run on meta tensors, so it is listed."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 if float(x.abs().max()) < 1e30 else grad


class ScaledBy(torch.autograd.Function):
    """A module's weight read inside the forward, not passed to ``apply``: it gets no gradient (grad is disabled
    there)."""

    @staticmethod
    def forward(ctx, x, module):
        return module(x)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class SavesOutput(torch.autograd.Function):
    """``exp``, saving its own output for the backward."""

    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class TwoOutputs(torch.autograd.Function):
    """Two outputs needing a gradient; the loss may reach the Function through either."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w, x * 2

    @staticmethod
    def backward(ctx, grad_product, grad_double):
        x, w = ctx.saved_tensors
        return grad_product @ w.T + grad_double * 2, x.flatten(0, -2).T @ grad_product.flatten(0, -2)


class InPlace(torch.autograd.Function):
    """Writes its input in place (``ctx.mark_dirty``) and returns it."""

    @staticmethod
    def forward(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class Flattened(torch.autograd.Function):
    """Returns a view of its input, keeps nothing."""

    @staticmethod
    def forward(ctx, x):
        return x.view(-1)

    @staticmethod
    def backward(ctx, grad):
        return grad.view(2, 4, 8)


class Sqrt(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return ClippedSqrt.apply(1 - torch.sigmoid(self.fc(x))) * x


class Yoso(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(8, 8) for _ in range(4))

    def forward(self, x):
        q, k = (nn.functional.normalize(layer(x), dim=-1) for layer in (self.q, self.k))
        return self.o(Cumulation.apply(q, k, self.v(x), {"bits": 4}))


class Product(nn.Module):
    """The input (needing no gradient) times a bare parameter, through ``FUNCTION``."""

    FUNCTION = WeightOnly

    def __init__(self):
        super().__init__()
        self.w, self.fc = nn.Parameter(torch.randn(8, 8)), nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(self.FUNCTION.apply(x, self.w))


class BothGradients(Product):
    """The same after a layer: both operands need a gradient."""

    def forward(self, x):
        return self.FUNCTION.apply(self.fc(x), self.w)


class SetupContext(BothGradients):
    FUNCTION = SplitContext


class Maximum(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        values, index = TopIndex.apply(self.fc(x))
        return values * index


class OnTheInput(nn.Module):
    """A Function on the input alone: no input needs a gradient, so torch builds no node and keeps nothing."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(ClippedSqrt.apply(x.abs()))


class UnderNoGrad(Sqrt):
    """The Function called under ``torch.no_grad()``: forward work alone."""

    def forward(self, x):
        h = self.fc(x)
        with torch.no_grad():
            s = ClippedSqrt.apply(h.abs())
        return h * s


class Closure(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.inner = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return ScaledBy.apply(self.fc(x), self.inner)


class IndexUnderNoGrad(Sqrt):
    """An index picked under ``torch.no_grad()`` from a tensor that needs a gradient, kept by a product after it:
    the pick keeps nothing there, so the product is the first to keep the index (it went uncounted)."""

    def forward(self, x):
        h = self.fc(x)
        with torch.no_grad():
            index = h.max(-1).indices
        return h.max(-1).values * index


class ExpOutput(Sqrt):
    def forward(self, x):
        return SavesOutput.apply(self.fc(x)) * x


class SecondOutputOnly(Product):
    """Only the second output reaches the loss: the Function's backward still runs (and its product)."""

    def forward(self, x):
        _, doubled = TwoOutputs.apply(self.fc(x), self.w)
        return doubled


class WrittenInPlace(Sqrt):
    def forward(self, x):
        return self.fc(InPlace.apply(self.fc(x) * 1))


class ViewReturned(Sqrt):
    def forward(self, x):
        return Flattened.apply(self.fc(x)) * 3


MODELS = [Sqrt, Yoso, Product, BothGradients, SetupContext, Maximum, OnTheInput, UnderNoGrad, Closure,
          IndexUnderNoGrad, ExpOutput, SecondOutputOnly, WrittenInPlace, ViewReturned]


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("model", MODELS, ids=lambda c: c.__name__)
def test_a_custom_function_is_read_as_pytorch_runs_it(model, reading):
    assert_step_agrees(read_by(model, reading)(), torch.randn(2, 4, 8), reading)


@pytest.mark.parametrize("reading", READINGS)
def test_its_forward_is_forward_work(reading):
    """The Function's forward calls are the forward's rows (FlopCounterMode counts them): q @ k^T and the
    weights times v, 2 x (4 x 4 x 8), beside the four layers."""
    from torch.utils.flop_counter import FlopCounterMode

    model, x = read_by(Yoso, reading)(), torch.randn(2, 4, 8)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    report = profile(model, x)
    assert report.total["macs"] == counter.get_total_flops() // 2 == 4 * 8 * 8 * 8 + 2 * 2 * 4 * 4 * 8
    step = profile(model, x, training=True)
    assert step.total["macs"] == report.total["macs"]


def test_its_own_backward_by_hand():
    """YOSO's backward is its own four products, 2 x 4 x 4 x 8 each (autograd's derivative of its forward would
    be two), beside the four layers' gradients (weights: 8 x 8 on 8 tokens each; inputs of q, k, v: none);
    it keeps the weights and its three operands (32 + 3 x 64), not what autograd would keep of ``acos``."""
    _, ours, measured = step_numbers(Yoso(), torch.randn(2, 4, 8))
    products, layers = 4 * 2 * 4 * 4 * 8, 4 * 8 * 8 * 8 + 8 * 8 * 8
    assert measured["backward_macs"] == products + layers == ours["backward_macs"]


def test_only_the_gradients_it_is_asked_for():
    """``needs_input_grad``: the input needs none, so only the weight's product runs (8 x 8 x 8), beside ``fc``'s
    weight gradient (8 x 8 x 8) and its input gradient (8 x 8 x 8: the Function's output needs one)."""
    _, ours, measured = step_numbers(Product(), torch.randn(2, 4, 8))
    assert measured["backward_macs"] == 3 * 8 * 8 * 8 == ours["backward_macs"]


def test_a_weight_read_inside_the_forward_gets_no_gradient():
    model = Closure()
    step = profile(model, torch.randn(2, 4, 8), training=True).training
    assert step.unread_params == sum(p.numel() for p in model.inner.parameters()) == 72
    assert measure_training(model, (torch.randn(2, 4, 8),))["gradients"] == 72


@pytest.mark.parametrize("reading", READINGS)
def test_a_backward_that_cannot_be_read_is_listed(reading):
    """A backward that reads a value cannot run on meta tensors: the step lists the Function, saying why, and what
    it keeps (its input, by ``save_for_backward``) is still exact."""

    class Model(Sqrt):
        def forward(self, x):
            return ReadsValues.apply(self.fc(x))

    report, ours, measured = step_numbers(read_by(Model, reading)(), torch.randn(2, 4, 8))
    step = report.training
    assert not step.complete
    assert [(op, why) for op, _, _, why in step.untracked] == [
        ("ReadsValues", "its own backward, which cannot run on meta tensors (RuntimeError: Tensor.item() cannot "
                        "be called on meta tensors)")]
    assert ours["saved_elements"] == measured["saved_elements"] == 64 + 64
    assert ours["backward_macs"] == measured["backward_macs"]  # (its backward has no product: nothing missed)


@needs_transformers
@pytest.mark.parametrize("kind", ["yoso", "recurrent_gemma"])
def test_the_transformers_models_with_their_own_functions(kind):
    from zoo_transformers import one

    row = one(kind, "eager")
    assert row["class"] == "exact", row["reason"]


@pytest.mark.parametrize("reading", READINGS)
def test_reentrant_checkpointing_is_listed(reading):
    """``torch.utils.checkpoint`` with ``use_reentrant=True`` is a custom Function whose backward runs the forward
    again under autograd: it cannot be read on meta tensors, so the step says so, never complete."""
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(Closure):
        def forward(self, x):
            return checkpoint(self.inner, self.fc(x), use_reentrant=True) * 2

    step = profile(read_by(Checkpointed, reading)(), torch.randn(2, 4, 8), training=True).training
    assert not step.complete
    assert [op for op, _, _, _ in step.untracked] == ["CheckpointFunction"]
