"""profile() on real public models (torchvision, timm), when they are importable: never a dependency.

The full run is benchmarks/zoo_agreement.py (docs/zoo.md); this keeps a handful in the test suite.
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
