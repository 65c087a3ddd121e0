"""The PyTorch backend: building, measuring, reading back, and its errors."""

import subprocess
import sys

import pytest
import sympy
import torch
import torch.nn as nn

from convcost import VARIANTS, ConvcostError, InceptionBlock, Parallel, Residual, Sequential, SqueezeExcitation, When
from convcost import primitives as p
from convcost.costs import Cost
from convcost.layers import Layer
from convcost.spec import spec
from convcost.symbols import C, H, K
from convcost.torch import (
    REGISTRY,
    Registry,
    from_torch,
    is_supported,
    measure,
    modules,
    reader_for,
    register,
    supported_types,
    to_torch,
)


def test_import_convcost_and_testing_do_not_import_torch():
    code = "import sys, convcost, convcost.testing, convcost.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    "spec, expected",
    [
        (p.Conv(3, 8, 3, dims=1), nn.Conv1d),
        (p.Conv(3, 8, 3, dims=3), nn.Conv3d),
        (p.ConvTranspose(3, 8, 3), nn.ConvTranspose2d),
        (p.Linear(3, 8), nn.Linear),
        (p.BatchNorm(3), nn.BatchNorm2d),
        (p.Activation("hardswish"), nn.Hardswish),
        (p.MaxPool(2, dims=1), nn.MaxPool1d),
        (p.AvgPool(2, dims=3), nn.AvgPool3d),
        (p.AdaptiveMaxPool(1, dims=2), nn.AdaptiveMaxPool2d),
        (p.PixelUnshuffle(2), nn.PixelUnshuffle),
        (p.ChannelShuffle(2), nn.ChannelShuffle),
        (p.Flatten(), nn.Flatten),
        (p.Identity(), nn.Identity),
        (p.Narrow(1, 0, 2), modules.Narrow),
        (p.Add(), modules.Merge),
    ],
)
def test_primitive_builds_its_module(spec, expected):
    assert type(to_torch(spec)) is expected


@pytest.mark.parametrize("rank, cls",
                         [(2, nn.BatchNorm1d), (3, nn.BatchNorm1d), (4, nn.BatchNorm2d), (5, nn.BatchNorm3d)])
def test_batch_norm_class_follows_the_input_rank(rank, cls):
    assert type(to_torch(p.BatchNorm(4), (2, 4, *[3] * (rank - 2)))) is cls


def test_flatten_makes_a_later_batch_norm_1d():
    head = Sequential(pool=p.AdaptiveAvgPool(1), flat=p.Flatten(), fc=p.Linear(4, 6), bn=p.BatchNorm(6))
    assert type(to_torch(head, (2, 4, 5, 5)).bn) is nn.BatchNorm1d


def test_compositions_keep_part_names():
    se = to_torch(SqueezeExcitation(C=8, r=2))
    assert isinstance(se, modules.Parallel) and se.merge == "mul"
    assert [n for n, _ in se.named_children()] == ["identity", "gate"]
    assert [n for n, _ in se.gate.named_children()] == ["squeeze", "fc1", "relu", "fc2", "sigmoid"]
    inception = to_torch(InceptionBlock(C=3, O=4, form="3x3"))
    assert [n for n, _ in inception.branch3.named_children()] == ["reduce", "reduce_act", "conv1", "act1", "conv2",
                                                                  "act2"]
    residual = to_torch(Residual(p.Conv(4, 4, 1), shortcut=p.Conv(4, 4, 1, bias=False)))
    assert isinstance(residual.shortcut, nn.Conv2d)
    assert not to_torch(Residual(p.Conv(4, 4, 1), when=False)).add
    assert isinstance(to_torch(When(False, p.Conv(4, 4, 1))).layer, nn.Identity)


def test_every_named_variant_builds_with_its_parts():
    values = dict(C=4, O=4, K=3, G=2, D=2, M=2, r=2, s=2, e=2, t=2, group_channels=2)
    for name, cls in VARIANTS.items():
        fields = {f: v for f, v in values.items() if f in cls.__dataclass_fields__}
        layer = cls(**fields)
        module = to_torch(layer)
        parts = {n for n, _ in layer.cost().parts} - {"add", "concat", "mul"}
        assert parts and parts <= {n for n, _ in module.named_children()}, name


def test_mul_broadcasts_and_concat_merges():
    x = torch.zeros(2, 3, 4, 4, device="meta")
    gate = torch.zeros(2, 3, 1, 1, device="meta")
    assert to_torch(p.Mul())(x, gate).shape == (2, 3, 4, 4)
    assert measure(to_torch(p.Concat()), [(2, 3, 4, 4), (2, 5, 4, 4)]).output_shape == (2, 8, 4, 4)


def test_free_symbols_are_listed():
    with pytest.raises(ConvcostError, match="bind the free symbols C, K before"):
        to_torch(Sequential(p.Conv(C, 8, K), p.Conv(8, 8, 3)))
    with pytest.raises(ConvcostError, match="free symbols t"):
        to_torch(VARIANTS["InvertedResidual"](C=4, O=4, t=sympy.Symbol("t", positive=True, integer=True)))
    # a variant's own input size (H, W) is not part of its module
    assert isinstance(to_torch(VARIANTS["StandardConv"](C=3, O=8, K=3, H=H)), nn.Sequential)


def test_measure_counts_shared_parameters_once():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    shared = nn.Sequential(conv, nn.ReLU(), conv)
    measured = measure(shared, (1, 4, 8, 8))
    assert measured.params == 4 * 4 * 9 + 4
    assert measured.macs == 2 * 8 * 8 * 4 * 4 * 9


def test_measure_leaves_the_module_as_it_was():
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    before = module[0].weight.clone()
    measure(module, (2, 3, 6, 6))
    assert module.training and module[0].weight.device.type == "cpu"
    assert torch.equal(module[0].weight, before)


def test_measure_quotes_pytorch_when_it_rejects_a_shape():
    with pytest.raises(ConvcostError, match=r"PyTorch rejects input \(1, 3, 2, 2\).*Kernel size can't be greater"):
        measure(nn.Conv2d(3, 8, 5), (1, 3, 2, 2))
    with pytest.raises(ConvcostError, match="PyTorch rejects.*divisible by groups"):
        measure(nn.ChannelShuffle(3), (1, 4, 2, 2))
    with pytest.raises(ConvcostError, match="accepts a tuple of integers"):
        measure(nn.ReLU(), "1x3")


class _NoMeta(nn.Module):
    """A module whose forward cannot run on meta tensors (it reads a value)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if x.is_meta:
            raise NotImplementedError("no meta kernel")
        return self.fc(x)


def test_measure_falls_back_to_real_tensors():
    measured = measure(_NoMeta(), (3, 4))
    assert (measured.params, measured.macs, measured.output_shape, measured.device) == (10, 24, (3, 2), "cpu")


def test_unsupported_modules_are_named():
    assert not is_supported(nn.GRU(4, 4)) and is_supported(nn.LSTM(4, 4))
    with pytest.raises(ConvcostError, match=r"cannot read torch\.nn\.modules\.rnn\.GRU"):
        from_torch(nn.GRU(4, 4))

    class MyConv(nn.Conv2d):  # a subclass may compute something else: never read as its parent
        pass

    with pytest.raises(ConvcostError, match="MyConv"):
        from_torch(MyConv(3, 3, 3))
    with pytest.raises(ConvcostError, match="an output size of None"):
        from_torch(nn.AdaptiveAvgPool2d((None, 2)))
    with pytest.raises(ConvcostError, match="no PyTorch module is known"):
        to_torch(_Custom())


@spec
class _Custom(Layer):
    training_counts = False

    def _cost(self, shape):
        return Cost(output_shape=shape)


def test_registry_refuses_duplicates_and_reads_by_exact_type():
    mine = Registry()

    @mine.register(nn.Tanh)
    def read(module):
        return p.Activation("tanh")

    assert mine.read(nn.Tanh()) == p.Activation("tanh")
    with pytest.raises(ConvcostError, match="already has a reader"):
        mine.register(nn.Tanh)(read)
    with pytest.raises(ConvcostError, match="already has a reader"):
        register(nn.Conv2d)(read)  # the shared registry is protected the same way
    with pytest.raises(ConvcostError, match="not a module type"):
        mine.register("Conv2d")
    from convcost.torch.binding import binding_of

    assert reader_for(nn.Conv2d) is binding_of(p.Conv).read  # the conv binding is the one home of its reader
    assert nn.Dropout in supported_types() and REGISTRY.reader_for(nn.Dropout) is not None


@pytest.mark.parametrize(
    "module",
    [
        nn.Conv1d(4, 6, 3, stride=2, dilation=2, groups=2, bias=False),
        nn.Conv2d(4, 6, (3, 1), padding="same"),
        nn.Conv3d(2, 4, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        nn.ConvTranspose1d(4, 2, 3, stride=2, output_padding=1),
        nn.ConvTranspose3d(2, 4, 2, stride=2, groups=2),
        nn.Linear(8, 3, bias=False),
        nn.BatchNorm1d(5, affine=False),
        nn.BatchNorm3d(5),
        *[cls() for cls in (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU,
                            nn.LeakyReLU, nn.ELU)],
        nn.MaxPool1d(3, 2, 1, ceil_mode=True),
        nn.MaxPool2d((2, 3), dilation=2),
        nn.AvgPool2d(3, 2, 1),
        nn.AvgPool3d(2),
        nn.AdaptiveAvgPool1d(4),
        nn.AdaptiveMaxPool3d((1, 2, 2)),
        nn.PixelShuffle(3),
        nn.PixelUnshuffle(2),
        nn.ChannelShuffle(2),
        nn.Flatten(0, 2),
        nn.Identity(),
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()),
    ],
    ids=lambda m: type(m).__name__,
)
def test_torch_to_spec_to_torch(module):
    spec = from_torch(module)
    assert repr(to_torch(spec, _rank_input(module))) == repr(module)


def _rank_input(module):
    rank = {nn.BatchNorm1d: 3, nn.BatchNorm3d: 5}.get(type(module))
    return None if rank is None else (1,) * rank


def test_dropout_reads_as_identity():
    assert from_torch(nn.Dropout2d(0.3)) == p.Identity()


def test_batch_norm_scale_without_shift_is_refused():
    with pytest.raises(ConvcostError, match="bias=False"):
        from_torch(nn.BatchNorm2d(4, bias=False))


def test_bad_part_names_are_convcost_errors():
    with pytest.raises(ConvcostError, match="'training'"):
        to_torch(Parallel(training=p.Identity(), other=p.Identity()))
