"""profile() on real public models (torchvision, timm), forward and training step, when they are importable
(the ``vision`` extra, in ``dev``; installed through a constraints file that pairs torchvision with torch).

The full runs are benchmarks/zoo_agreement.py (docs/zoo.md) and benchmarks/zoo_training.py
(docs/zoo_training.md); this keeps a handful of each in the test suite.
"""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from convcost.torch.profiling import profile


def torchvision_models():
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    from zoo_agreement import import_torchvision  # its failing fake-op registrations skipped

    return import_torchvision()


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1",
                                  "shufflenet_v2_x0_5", "convnext_tiny", "swin_t", "vit_b_32"])
def test_torchvision_models_are_exact(name):
    from zoo_agreement import oracle

    model = torchvision_models().get_model(name, weights=None).eval()
    x = torch.zeros(1, 3, 64 if "vit" not in name else 224, 64 if "vit" not in name else 224)
    r = profile(model, x)
    assert r.exact, r.unsupported
    assert r.total["params"] == sum(p.numel() for p in model.parameters())
    assert r.total["macs"] == oracle(model, x)


@pytest.mark.parametrize("name", ["tf_efficientnet_b0", "regnetx_002", "mixnet_s", "levit_128s"])
def test_timm_models_are_exact(name):
    timm = pytest.importorskip("timm")
    from zoo_agreement import oracle

    model = timm.create_model(name, pretrained=False).eval()
    x = torch.zeros(1, 3, 224, 224)
    r = profile(model, x)
    assert r.total["params"] == sum(p.numel() for p in model.parameters())
    assert r.total["macs"] == oracle(model, x)


def _step_agrees(model, shape):
    """A training step read by profile against the one PyTorch runs (measure_training): backward MACs in both
    conventions, saved elements and indices, and the bytes of a step with Adam."""
    from convcost.torch import runtime
    from convcost.torch.measure_training import measure_training

    torch.manual_seed(0)
    x = torch.randn(shape)
    measured = measure_training(model, x, optimizer="adam")
    report = profile(model, shape, training=True)
    step = report.training
    assert step.complete and step.proven == runtime.is_proven(), (step.untracked, step.unproven)
    # FlopCounterMode does not see the CPU's fused attention kernel before torch 2.15: taken out there
    unseen = 0 if runtime.flop_counter().fused_attention else sum(
        r.backward_macs for r in report.rows if type(r.spec).__name__ == "Attention" and r.spec.fused(r.input_shapes))
    ours = (step.backward_macs - unseen, step.backward_macs_torch - unseen, step.saved_elements, step.saved_indices,
            step.memory("adam"))
    assert ours == tuple(measured[k] for k in ("backward_macs", "backward_macs_torch", "saved_elements",
                                               "saved_indices", "bytes"))


# a sample within CI's time: squeeze-excitation and in-place hardswish, fire modules; grouped convolutions,
# attention with biases (benchmarks/zoo_training.py reads all 266)
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "squeezenet1_1"])
def test_torchvision_training_steps_are_exact(name):
    _step_agrees(torchvision_models().get_model(name, weights=None), (2, 3, 32, 32))


@pytest.mark.parametrize("name, size", [("regnetx_002", 32), ("levit_128s", 224)])
def test_timm_training_steps_are_exact(name, size):
    timm = pytest.importorskip("timm")
    _step_agrees(timm.create_model(name, pretrained=False), (2, 3, size, size))


class _Cache(torch.nn.Module):
    """A layer with an eval-time cache, as LeViT's attention biases: what a reading leaves in it is what the zoo
    check must catch."""

    def __init__(self):
        super().__init__()
        self.linear, self.cache = torch.nn.Linear(4, 4), None

    def forward(self, x):
        if self.cache is None:
            self.cache = torch.ones(4)
        return self.linear(x) + self.cache


@pytest.mark.parametrize("change, says", [
    (lambda m: None, "yes"),
    (lambda m: m.linear.bias.data.add_(1), "NO: its state changed"),
    (lambda m: setattr(m, "cache", torch.zeros(4)), "NO: its next forward (eval) gives other values"),
    (lambda m: setattr(m, "cache", "a shape-only value"), "NO: its next forward (eval) raised TypeError"),
])
def test_the_zoo_check_of_a_model_left_as_it_was_can_fail(change, says):
    import copy

    from zoo_agreement import unchanged

    model = _Cache()
    model(torch.zeros(1, 4))
    before = copy.deepcopy(model)
    change(model)
    assert unchanged(model, before, (torch.randn(2, 4),)).startswith(says)


def test_the_zoo_check_compares_train_mode_with_the_same_random_draws():
    import copy

    from zoo_agreement import unchanged

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    assert unchanged(model, copy.deepcopy(model), (torch.randn(2, 4),)) == "yes"


class _NumpyMask(torch.nn.Module):
    """Train-mode masking drawn with NumPy, as wav2vec2's SpecAugment: both forwards must see the same draws."""

    def forward(self, x):
        import numpy as np

        if self.training:
            x = x * torch.from_numpy(np.random.rand(*x.shape) > 0.5)
        return x


def test_the_zoo_check_seeds_numpy_too():
    import copy

    from zoo_agreement import unchanged

    model = _NumpyMask()
    assert unchanged(model, copy.deepcopy(model), (torch.randn(2, 64),)) == "yes"


def test_the_zoo_oracle_leaves_a_shared_module_as_it_was():
    from zoo_agreement import oracle

    shared = torch.nn.Conv2d(3, 3, 1)
    model = torch.nn.Sequential(shared, torch.nn.Sequential(shared))  # one module under two parents (coat_mini)
    assert oracle(model, torch.zeros(1, 3, 4, 4)) == 2 * 3 * 3 * 16
    assert all(p.device.type == "cpu" for p in model.parameters())


class _Drifting(torch.nn.Module):
    """A forward that is not deterministic by itself (each call, whichever copy makes it, gives other values, as a
    model reading an uninitialised scratch buffer): the zoo check can compare its state only, and says so."""

    calls = 0  # shared by every copy, as the memory torch.empty hands out is

    def forward(self, x):
        _Drifting.calls += 1
        return x + _Drifting.calls


def test_the_zoo_check_says_when_a_forward_is_not_deterministic():
    import copy

    from zoo_agreement import unchanged

    model = _Drifting()
    assert unchanged(model, copy.deepcopy(model), (torch.randn(2, 4),)).startswith("yes (by its state")
