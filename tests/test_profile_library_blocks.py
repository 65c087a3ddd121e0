"""profile() names the efficient-CNN blocks of timm and torchvision by convcost's variants, without importing
either library: a class is recognised by its module path and name, and a block is named only where the
variant's exact counts equal what its rows add up to."""

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn

from convcost.efficient import GhostModule
from convcost.torch import profile


class FakeGhostModule(nn.Module):
    """timm's GhostModule as timm 1.0 writes it (ghostnet.py), under timm's module path."""

    def __init__(self, in_chs, out_chs, kernel_size=1, ratio=2, dw_size=3, stride=1):
        super().__init__()
        self.out_chs = out_chs
        init_chs = math.ceil(out_chs / ratio)
        new_chs = init_chs * (ratio - 1)
        self.primary_conv = nn.Sequential(nn.Conv2d(in_chs, init_chs, kernel_size, stride, kernel_size // 2,
                                                    bias=False),
                                          nn.BatchNorm2d(init_chs), nn.ReLU(inplace=True))
        self.cheap_operation = nn.Sequential(nn.Conv2d(init_chs, new_chs, dw_size, 1, dw_size // 2, groups=init_chs,
                                                       bias=False), nn.BatchNorm2d(new_chs), nn.ReLU(inplace=True))

    def forward(self, x):
        x1 = self.primary_conv(x)
        out = torch.cat([x1, self.cheap_operation(x1)], dim=1)
        return out[:, :self.out_chs, :, :]


FakeGhostModule.__module__, FakeGhostModule.__name__ = "timm.models.ghostnet", "GhostModule"


class NotQuiteGhost(FakeGhostModule):
    """The same name and path, but a block the variant does not describe (a second primary convolution)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra = nn.Conv2d(self.primary_conv[0].in_channels, self.primary_conv[0].in_channels, 1)

    def forward(self, x):
        return super().forward(self.extra(x))


NotQuiteGhost.__module__, NotQuiteGhost.__name__ = "timm.models.ghostnet", "GhostModule"


def flop_macs(model, x):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as c, torch.no_grad():
        model.eval()(x)
    return c.get_total_flops() // 2


@pytest.mark.parametrize("ratio, dw_size, stride", [(2, 3, 1), (3, 5, 2), (2, 3, 2)])
def test_a_block_is_named_by_its_variant(ratio, dw_size, stride):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), FakeGhostModule(8, 12, 1, ratio, dw_size, stride), nn.ReLU())
    r = profile(model, (1, 3, 16, 16))
    assert r.blocks == {"1": GhostModule(C=8, O=12, K=1, s=ratio, d=dw_size, S=stride)}
    spec_cost = r.blocks["1"].cost((1, 8, 16, 16))
    block = model[1]
    assert spec_cost.params == sum(p.numel() for p in block.parameters())  # independent oracles
    assert spec_cost.macs == flop_macs(block, torch.zeros(1, 8, 16, 16))
    assert "Blocks named by convcost's variants" in r.table() and '"blocks"' in r.to_json()


def test_a_block_the_variant_does_not_describe_is_not_named():
    model = nn.Sequential(NotQuiteGhost(8, 12))
    r = profile(model, (1, 8, 16, 16))
    assert r.blocks == {} and r.exact
    assert r.total["macs"] == flop_macs(model, torch.zeros(1, 8, 16, 16))


def test_profiling_imports_neither_library():
    code = ("import sys, torch.nn as nn\nfrom convcost.torch import profile\n"
            "profile(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), (1, 3, 8, 8), training=True)\n"
            "print(any(m.split('.')[0] in ('timm', 'torchvision') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


ZOO = [("timm", "ghostnet_100", "GhostModule", "GhostModule"), ("timm", "mixnet_s", "MixedConv2d", "MixConv"),
       ("timm", "efficientnet_cc_b0_4e", "CondConv2d", "ExpertConv"),
       ("timm", "repvgg_a0", "RepVggBlock", "RepVGGBlock"),
       ("timm", "fasternet_t0", "Partial_conv3", "PartialConv"),
       ("torchvision", "convnext_tiny", "CNBlock", "ConvNeXtBlock")]


@pytest.mark.parametrize("source, name, cls, variant", ZOO)
def test_zoo_blocks_are_named(source, name, cls, variant):
    import importlib.util
    import pathlib

    if importlib.util.find_spec("timm") is None or importlib.util.find_spec("torchvision") is None:
        pytest.skip("timm and torchvision are not installed (pip install --no-deps timm torchvision pyyaml)")
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))
    from zoo_agreement import build, import_torchvision, oracle

    import_torchvision()  # its failing fake-op registrations skipped, as the zoo script does

    model = build(source, name).eval()
    r = profile(model, (1, 3, 64, 64))
    assert r.total["macs"] == oracle(model, torch.zeros(1, 3, 64, 64))
    blocks = [p for p, m in model.named_modules() if type(m).__name__ == cls]
    depthwise = [p for p in blocks if cls != "MixedConv2d" or all(c.groups == c.in_channels
                                                                  for c in model.get_submodule(p).values())]
    assert depthwise and all(type(r.blocks[p]).__name__ == variant for p in depthwise)
