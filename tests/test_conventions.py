"""Conventions reproduce each tool's headline number on ordinary layers (PEERS.md and, when installed, the tools)."""

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from convcost.torch.conventions import CONVENTIONS, headline  # noqa: E402
from convcost.errors import ConvcostError  # noqa: E402
from convcost.torch.profile import profile  # noqa: E402


def mbnet_plain():  # PEERS.md's mbnet_plain_b3: conv 3x3 s2 64->128 no bias, BN, ReLU on 3x64x224x224
    return nn.Sequential(nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU())


GT, ELEMS = 2_774_532_096, 4_816_896


@pytest.mark.parametrize("tool,expected", [
    ("convcost", GT), ("torch", 2 * GT), ("fvcore", GT + 9_633_792), ("torchinfo", GT + 768),
    ("thop", GT + 19_267_584), ("ptflops", GT - 1_840_054_272),
])
def test_peers_md_numbers(tool, expected):
    assert 9_633_792 == 2 * ELEMS and 19_267_584 == 4 * ELEMS and 768 == 2 * 128 * 3
    assert headline(profile(mbnet_plain(), (3, 64, 224, 224)), tool) == expected


def test_transposed_conv_is_wrong_in_torchinfo_and_thop():
    r = profile(nn.Sequential(nn.ConvTranspose2d(32, 16, 3, stride=2, bias=False)), (1, 32, 16, 16))
    assert r.total["macs"] == 1_179_648
    assert headline(r, "torchinfo") == headline(r, "thop") == 5_018_112  # PEERS.md: x4.254


def test_unknown_convention():
    with pytest.raises(ConvcostError, match="unknown convention"):
        profile(mbnet_plain(), (1, 64, 8, 8), convention="flopth")


def models():
    return {
        "convnet": (nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, groups=2), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), (1, 3, 32, 32)),
        "convT": (nn.Sequential(nn.ConvTranspose2d(8, 4, 3, stride=2)), (1, 8, 16, 16)),
    }


@pytest.mark.parametrize("case", ["convnet", "convT"])
def test_installed_tools(case):
    model, shape = models()[case]
    model.eval()
    r = profile(model, shape)
    x = torch.zeros(shape)
    checked = 0
    try:
        from torchinfo import summary
        assert headline(r, "torchinfo") == summary(model, shape, verbose=0).total_mult_adds
        checked += 1
    except ImportError:
        pass
    try:
        from fvcore.nn import FlopCountAnalysis
        a = FlopCountAnalysis(model, x)
        a.unsupported_ops_warnings(False)
        assert headline(r, "fvcore") == a.total()
        checked += 1
    except ImportError:
        pass
    try:
        from thop import profile as thop_profile
        macs, _ = thop_profile(model, inputs=(x,), verbose=False)
        assert headline(r, "thop") == int(macs)
        checked += 1
    except ImportError:
        pass
    try:
        from ptflops import get_model_complexity_info
        macs, _ = get_model_complexity_info(model, shape[1:], as_strings=False, print_per_layer_stat=False)
        assert headline(r, "ptflops") == macs
        checked += 1
    except ImportError:
        pass
    if not checked:
        pytest.skip("none of torchinfo, fvcore, thop, ptflops is installed (optional peers)")
    assert set(CONVENTIONS) == {"convcost", "torch", "fvcore", "torchinfo", "ptflops", "thop"}
