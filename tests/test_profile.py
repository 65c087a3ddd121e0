"""profile(): exact per-operation counts of whole models, checked against numel and FlopCounterMode."""

from pathlib import Path

import numpy as np
import pytest
import sympy

torch = pytest.importorskip("torch")
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from convcost.errors import ConvcostError
from convcost.symbols import H, W
from convcost.torch.measure_forward import measure
from convcost.torch.profiling import profile

GOLDEN = Path(__file__).parent / "golden" / "profile_table.txt"


def oracle(model, shape):
    """params by numel, MACs by FlopCounterMode / 2 (independent of convcost's formulas)."""
    m = measure(model, shape)
    return m.params, m.macs


def assert_exact(model, shape):
    r = profile(model, shape)
    assert r.complete, r.unsupported
    assert (r.total["params"], r.total["macs"]) == oracle(model, shape)
    return r


class Functional(nn.Module):
    """Functional calls only fx sees: F.conv2d with a weight parameter, cat, residual add, gate, matmul."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(8, 3, 3, 3))
        self.b = nn.Parameter(torch.zeros(8))
        self.pw = nn.Conv2d(16, 16, 1, bias=False)
        self.gate = nn.Conv2d(16, 16, 1)
        self.up = nn.ConvTranspose2d(16, 4, 3, stride=2, groups=2)
        self.proj = nn.Parameter(torch.zeros(4, 6))

    def forward(self, x):
        y = F.relu(F.conv2d(x, self.w, self.b, padding=1))
        y = torch.cat([y, y], dim=1)
        y = y + self.pw(y)
        y = y * torch.sigmoid(self.gate(F.adaptive_avg_pool2d(y, 1)))
        y = self.up(y)
        y = y.permute(0, 2, 3, 1)  # channels-last, then a matmul on the last axis
        return torch.matmul(y, self.proj).flatten(1)


class ChannelsLastLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(96, 384, bias=False)

    def forward(self, x):
        return self.fc(x.permute(0, 2, 3, 1))


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.b.weight = self.a.weight  # tied

    def forward(self, x):
        return self.b(self.a(x)) + self.a(x)


def test_functional_model_is_exact():
    r = assert_exact(Functional(), (2, 3, 16, 16))
    ops = {row.op for row in r.rows}
    assert {"F.conv2d", "torch.cat", "add", "mul", "torch.sigmoid", "ConvTranspose2d", "torch.matmul"} <= ops


def test_linear_on_channels_last_is_exact():
    r = assert_exact(ChannelsLastLinear(), (1, 96, 56, 56))
    assert r.total["macs"] == 115_605_504  # docs/conventions.md: torchinfo says 36,864


def test_tied_parameters_count_once():
    model = Tied()
    r = profile(model, (4, 16))
    assert r.total["params"] == sum(p.numel() for p in model.parameters()) == 16 * 16 + 16 + 16
    tied = [row for row in r.rows if row.tied_to]
    assert tied and all(row.counts["params"] == 0 for row in tied[1:])
    assert r.total["macs"] == oracle(model, (4, 16))[1]


@st.composite
def conv_nets(draw):
    layers, c = [], draw(st.integers(1, 6))
    for _ in range(draw(st.integers(1, 3))):  # at most 6 halvings of a >= 64 input: never below 1
        g = draw(st.sampled_from([1, c])) if c > 1 else 1
        o = g * draw(st.integers(1, 3))
        k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        layers.append(nn.Conv2d(c, o, k, stride=s, padding=k // 2, groups=g, bias=draw(st.booleans())))
        layers += draw(st.sampled_from([[], [nn.BatchNorm2d(o)], [nn.ReLU()], [nn.MaxPool2d(2, ceil_mode=True)]]))
        c = o
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, draw(st.integers(1, 5)))]
    return nn.Sequential(*layers), (draw(st.integers(1, 3)), layers[0].in_channels, draw(st.integers(64, 80)),
                                    draw(st.integers(64, 80)))


@given(conv_nets())
def test_random_conv_nets_are_exact(case):
    model, shape = case
    assert_exact(model, shape)


def test_symbolic_input_gives_closed_form_and_vectorised_sweep():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2))
    r = profile(model, (1, 3, H, W))
    assert r.total["macs"].has(sympy.floor)
    sizes = np.arange(16, 1016)
    swept = r.evaluate(H=sizes, W=sizes + 1)["macs"]
    for i in (0, 7, 999):
        assert swept[i] == oracle(model, (1, 3, int(sizes[i]), int(sizes[i]) + 1))[1]


def test_rejected_input_gives_pytorchs_reason():
    with pytest.raises(ConvcostError, match="PyTorch rejects input"):
        profile(nn.Sequential(nn.Conv2d(3, 8, 3)), (1, 4, 8, 8))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.GroupNorm(2, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            return x
        return self.norm(self.conv(x))


def test_untraceable_model_is_read_call_by_call_and_exact():
    r = profile(Untraceable(), (1, 3, 8, 8))
    assert r.traced_with == "shape propagation with values"  # x.sum() > 0 reads values: computed alongside
    assert r.exact and r.complete, r.unsupported
    assert (r.total["params"], r.total["macs"]) == oracle(Untraceable(), (1, 3, 8, 8))
    assert [row.path for row in r.rows] == ["sum", "conv", "norm"]


def test_unknown_function_is_listed_never_zero_silently():
    class Soft(nn.Module):
        def forward(self, x):
            return torch.erf(x) * 2

    r = profile(Soft(), (1, 5))
    assert not r.complete and r.unsupported[0].op == "torch.erf" and "erf" in r.table()
    assert r.exact  # erf holds no multiply-accumulates


def test_output_formats_agree_with_the_report():
    import csv
    import io
    import json

    r = profile(Functional(), (1, 3, 8, 8))
    data = json.loads(r.to_json())
    assert data["total"]["macs"] == r.total["macs"] and len(data["rows"]) == len(r.rows)
    lines = list(csv.reader(io.StringIO(r.to_csv())))
    assert int(lines[-1][5]) == r.total["macs"]
    assert f"**{r.total['macs']:,}**" in r.to_markdown()


def test_golden_table(golden):
    golden(GOLDEN, profile(Functional(), (1, 3, 8, 8)).table())


def small_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))


def test_cli_profile_formats(capsys):
    import json

    from convcost.cli import main

    assert main(["profile", "tests.test_profile:small_net", "--input", "1,3,8,8", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["macs"] == oracle(small_net(), (1, 3, 8, 8))[1]
    assert main(["profile", "tests.test_profile:small_net", "--input", "1,3,H,W", "--format", "md"]) == 0
    assert "H" in capsys.readouterr().out
    assert main(["profile", "math:pi", "--input", "1"]) == 2


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "squeezenet1_0",
                                  "squeezenet1_1", "shufflenet_v2"])
def test_zoo_models_are_exact(name):
    import convcost.zoo as zoo

    model = getattr(zoo, name)()
    shape = tuple(int(x) for x in model.input_shape)
    r = assert_exact(model.to_torch(), shape)
    if name == "resnet50":  # the closed form in H, W agrees at the concrete size
        sym = profile(model.to_torch(), (1, 3, H, W))
        assert sym.subs(H=shape[2], W=shape[3])["macs"] == r.total["macs"]


class Shuffles(nn.Module):
    """Functional forms of what nn.ReLU6, nn.PixelShuffle, nn.ChannelShuffle and adaptive max pooling call."""

    def forward(self, x):
        x = F.hardtanh(x, 0.0, 6.0)
        x = F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2)
        x = torch.channel_shuffle(x, 4)
        return F.adaptive_max_pool2d(x, 1) + F.adaptive_max_pool1d(x.flatten(2), 1).unsqueeze(-1)


def test_functional_shuffles_and_relu6_are_read_not_skipped():
    r = profile(Shuffles(), (2, 16, 8, 8))
    assert [row.op for row in r.rows if row.op.startswith(("F.", "torch."))][:4] == [
        "F.hardtanh", "F.pixel_shuffle", "F.pixel_unshuffle", "F.channel_shuffle"]
    relu6 = r.rows[0]
    assert relu6.spec.kind == "relu6" and relu6.output_shape == (2, 16, 8, 8)
    assert r.rows[1].output_shape == (2, 4, 16, 16) and r.rows[2].output_shape == (2, 16, 8, 8)
    assert r.complete  # unsqueeze is a view


def test_a_single_leaf_module_profiles_like_a_model():
    for module, shape in ((nn.ReLU6(), (2, 8, 4, 4)), (nn.PixelShuffle(2), (1, 8, 4, 4)),
                          (nn.ChannelShuffle(2), (1, 8, 4, 4)), (nn.AdaptiveMaxPool1d(1), (2, 8, 16))):
        r = profile(module, shape)
        assert r.complete and len(r.rows) == 1, (module, r.unsupported)


class Clamp2(nn.Module):
    def forward(self, x):
        return F.hardtanh(x, -2.0, 2.0)


def test_hardtanh_other_than_relu6_is_listed_with_its_reason():
    r = profile(Clamp2(), (1, 4))
    assert r.unsupported[0].op == "F.hardtanh" and "[-2.0, 2.0]" in r.unsupported[0].reason
