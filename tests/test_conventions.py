"""Conventions reproduce each tool's headline number on ordinary layers: the numbers docs/conventions.md
derives by hand, and the tools themselves (the peers extra installs them; the dev extra includes it)."""

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn
import torch.nn.functional as F

from convcost.errors import ConvcostError
from convcost.torch.conventions import CONVENTIONS, headline
from convcost.torch.profiling import profile


def mbnet_plain():  # docs/conventions.md's mbnet_plain_b3: conv 3x3 s2 64->128 no bias, BN, ReLU on 3x64x224x224
    return nn.Sequential(nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU())


# by hand: the output is 3 x 128 x 112 x 112; each output element takes 64 x 3 x 3 multiply-adds
ELEMS = 3 * 128 * 112 * 112          # elements BN and ReLU each see
GT = ELEMS * 64 * 3 * 3              # exact MACs
BN_PARAMS = 2 * 128                  # weight and bias


@pytest.mark.parametrize("tool,expected", [
    ("convcost", GT),
    ("torch", 2 * GT),                             # FlopCounterMode counts FLOPs: 2 per MAC
    ("fvcore", GT + 2 * ELEMS),                    # + BN at 2 per element
    ("torchinfo", GT + BN_PARAMS * 3),             # + BN params x batch 3
    ("thop", GT + 4 * ELEMS),                      # + BN at 4 per element
    # ptflops divides module counts by the batch (3) but counts the functional ReLU again, undivided:
    # (MACs + BN at 2 per element + ReLU at 1 per element) / 3 + ReLU
    ("ptflops", (GT + 2 * ELEMS + ELEMS) // 3 + ELEMS),
])
def test_documented_numbers(tool, expected):
    assert (GT, ELEMS) == (2_774_532_096, 4_816_896)  # the numbers docs/conventions.md prints
    assert headline(profile(mbnet_plain(), (3, 64, 224, 224)), tool) == expected


def test_transposed_conv_is_wrong_in_torchinfo_and_thop():
    r = profile(nn.Sequential(nn.ConvTranspose2d(32, 16, 3, stride=2, bias=False)), (1, 32, 16, 16))
    assert r.total["macs"] == 1_179_648
    # exact: each of the 16 x 16 input positions scatters 32 x 16 x 3 x 3 products
    assert r.total["macs"] == 16 * 16 * 32 * 16 * 9
    # torchinfo and thop: the weight (32 x 16 x 3 x 3) times the 33 x 33 *output* positions (x4.254)
    assert headline(r, "torchinfo") == headline(r, "thop") == 32 * 16 * 9 * 33 * 33 == 5_018_112


def test_unknown_convention():
    with pytest.raises(ConvcostError, match="unknown convention"):
        profile(mbnet_plain(), (1, 64, 8, 8), convention="flopth")


class SameConv(nn.Conv2d):
    """A Conv2d subclass that pads in its forward and calls F.conv2d: read by its calls."""

    def forward(self, x):
        x = F.pad(x, (1, 1, 1, 1))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ValueConv(SameConv):
    """The same, behind a forward that reads a value: read call by call on real tensors."""

    def forward(self, x):
        return super().forward(x if x.sum() >= 0 else -x)


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(8, 8, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.w)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).chunk(3, -1)
        a = torch.bmm(q, k.transpose(1, 2)).softmax(-1)
        return torch.bmm(a, v).transpose(1, 2).reshape(b, c, h, w)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return F.relu(self.bn(self.c(x)) + x)


def models():
    return {
        "convnet": (nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, groups=2), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), (1, 3, 32, 32)),
        "convT": (nn.Sequential(nn.ConvTranspose2d(8, 4, 3, stride=2)), (1, 8, 16, 16)),
        "subclass": (nn.Sequential(SameConv(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 1)), (1, 3, 16, 16)),
        "values": (nn.Sequential(ValueConv(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 1)), (1, 3, 16, 16)),
        "functional": (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Functional(), nn.ReLU()), (1, 3, 16, 16)),
        "attention": (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Attention()), (1, 3, 16, 16)),
        "residual": (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Residual(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                   nn.Linear(8, 4)), (1, 3, 16, 16)),
    }


def _torchinfo(model, shape, x):
    from torchinfo import summary

    return summary(model, shape, verbose=0).total_mult_adds


def _fvcore(model, shape, x):
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    return analysis.total()


def _thop(model, shape, x):
    from thop import profile as thop_profile

    macs, _ = thop_profile(model, inputs=(x,), verbose=False)
    return int(macs)


def _ptflops(model, shape, x):
    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(model, shape[1:], as_strings=False, print_per_layer_stat=False)
    return macs


#: tool -> (module to import, its own headline number of a model)
TOOLS = {"torchinfo": ("torchinfo", _torchinfo), "fvcore": ("fvcore.nn", _fvcore), "thop": ("thop", _thop),
         "ptflops": ("ptflops", _ptflops)}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("case", ["convnet", "convT", "subclass", "values", "functional", "attention", "residual"])
def test_installed_tools(case, tool):
    """The tool itself, run live, prints the number the convention reproduces (pip install 'convcost[peers]')."""
    module, run = TOOLS[tool]
    pytest.importorskip(module, reason=f"{tool} is not installed: pip install 'convcost[peers]'")
    model, shape = models()[case]
    model.eval()
    assert headline(profile(model, shape), tool) == run(model, shape, torch.zeros(shape))


def test_every_convention_is_checked_live():
    assert set(CONVENTIONS) == {"convcost", "torch", *TOOLS}
