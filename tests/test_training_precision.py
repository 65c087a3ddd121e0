"""The closed form in mixed precision (issue 26, item 4): ``saved_by_dtype`` and ``training_memory(precision=...)``
for convcost's own layers, against PyTorch.

Two oracles, each a training-mode forward of the layer convcost.torch builds: saved-tensor hooks on the real
step (each storage once by its data pointer, parameters and buffers left out, ``untyped_storage().nbytes()``
in its own dtype), and the torch reading (``convcost.torch.profile(..., training=True)``), which follows the
dtypes storage by storage on its own code. Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (or float16),
and on a model and input cast to bfloat16 (or float16).
"""

import pytest
import sympy

from convcost import (
    AsymmetricConv,
    DepthToSpace,
    DilatedConv,
    FireModule,
    GroupedConv,
    InceptionBlock,
    InvertedResidual,
    MobileNetV1Block,
    SeparableConv,
    Sequential,
    ShuffleGroupedConv,
    SqueezeExcitation,
    StandardConv,
    TransposedConv,
)
from convcost.compose import Parallel, Residual, When
from convcost.errors import ConvcostError
from convcost.precision import RECIPES, precision, saved_by_dtype
from convcost.primitives import (
    PRIMITIVES,
    Activation,
    AdaptiveAvgPool,
    Add,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    ConvTranspose,
    Flatten,
    LayerNorm,
    LayerScale,
    Linear,
    MaxPool,
    Pad,
)
from convcost.symbols import N
from convcost.training import max_batch, training_memory
from convcost.zoo.resnet import basic_block, bottleneck

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_profile_autocast import saved_bytes  # noqa: E402 - the saved-tensor hooks oracle, one copy

from convcost.torch import profile, to_torch  # noqa: E402
from convcost.torch.binding import hooks_of  # noqa: E402
from convcost.torch.measure_training import optimizer_state  # noqa: E402
from convcost.torch.runtime import autocast as autocast_lists  # noqa: E402

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def measured(model, x, recipe) -> dict:
    """{dtype name: bytes} autograd keeps in one training-mode forward of ``model`` on data ``x`` under
    ``recipe`` (autocast around it, or the model and ``x`` cast), each storage once, parameters and buffers
    excluded: the oracle."""
    r = precision(recipe)
    if not r.autocast:
        model, x = model.to(DTYPES[r.compute]), x.to(DTYPES[r.compute])
    with torch.autocast("cpu", dtype=DTYPES[r.compute], enabled=r.autocast):
        by = saved_bytes(model, x)
    return {k: v for k, v in sorted(by.items()) if v}


def read(model, x, recipe) -> dict:
    """The torch reading's saved bytes by dtype under ``recipe``."""
    r = precision(recipe)
    if not r.autocast:
        model, x = model.to(DTYPES[r.compute]), x.to(DTYPES[r.compute])
    with torch.autocast("cpu", dtype=DTYPES[r.compute], enabled=r.autocast):
        step = profile(model, x if not r.autocast else tuple(x.shape), training=True).training
    assert step.complete, step.untracked
    return dict(step.saved_by_dtype)


#: convcost's own variants and blocks, each with the input it is fed (as a whole network: no input gradient)
CASES = {
    "standard": (StandardConv(C=3, O=8, K=3, P=1), (2, 3, 8, 8)),
    "standard-nobias-stride": (StandardConv(C=4, O=6, K=3, S=2, bias=False), (2, 4, 9, 9)),
    "separable": (SeparableConv(C=8, O=16, K=3), (2, 8, 8, 8)),
    "grouped": (GroupedConv(C=8, O=12, K=3, G=4, P=1), (2, 8, 6, 6)),
    "shuffle-grouped": (ShuffleGroupedConv(C=8, O=8, K=1, G=2), (2, 8, 5, 5)),
    "transposed": (TransposedConv(C=6, O=4, K=4, S=2, P=1), (2, 6, 5, 5)),
    "dilated": (DilatedConv(C=4, O=8, K=3, D=2), (2, 4, 9, 9)),
    "mobilenet-v1": (MobileNetV1Block(C=8, O=16, S=2), (2, 8, 8, 8)),
    "inverted-residual": (InvertedResidual(C=8, O=8, t=4), (2, 8, 6, 6)),
    "se": (SqueezeExcitation(C=16, r=4), (2, 16, 5, 5)),
    "basic-block": (basic_block(8, 8), (2, 8, 6, 6)),
    "bottleneck": (bottleneck(16, 4), (2, 16, 6, 6)),
    "bottleneck-downsample": (bottleneck(8, 4, stride=2), (2, 8, 8, 8)),
    "cnn": (Sequential(conv=Conv(C=3, O=8, K=3), bn=BatchNorm(C=8), relu=Activation("relu6"),
                       pool=MaxPool(K=2), flatten=Flatten(), fc=Linear(C=8 * 3 * 3, O=10),
                       act=Activation("gelu"), fc2=Linear(C=10, O=4)), (2, 3, 8, 8)),
    "avgpool-silu-bn-noaffine": (Sequential(Conv(C=3, O=8, K=3, P="same"), BatchNorm(C=8, affine=False),
                                            Activation("silu"), AvgPool(K=2), Conv(C=8, O=4, K=1),
                                            AdaptiveAvgPool(output_size=2)), (2, 3, 8, 8)),
    "conv3d-pool3d": (Sequential(Conv(C=2, O=4, K=3, dims=3), Activation("relu"), MaxPool(K=2, dims=3),
                                 Conv(C=4, O=4, K=1, dims=3)), (2, 2, 6, 6, 6)),
    "concat-of-precisions": (Sequential(Parallel(AdaptiveAvgPool(output_size=3),
                                                 Sequential(Conv(C=3, O=5, K=3, P=1), AdaptiveAvgPool(output_size=3)),
                                                 merge="concat"), Activation("sigmoid")), (2, 3, 6, 6)),
    "residual-fp32-add": (Residual(Conv(C=3, O=3, K=3, P=1)), (2, 3, 5, 5)),
    "inception-asymmetric": (InceptionBlock(C=4, O=4, form="asymmetric"), (2, 4, 7, 7)),
    "fire": (FireModule(C=8, s=4, e=4), (2, 8, 6, 6)),
    "asymmetric": (AsymmetricConv(C=4, O=6, K=3), (2, 4, 7, 7)),
    "depth-to-space-after-conv": (Sequential(Conv(C=3, O=8, K=1), DepthToSpace(C=8, r=2), Activation("tanh")),
                                  (2, 3, 4, 4)),
    "reflect-pad-fp32": (Sequential(Conv(C=3, O=4, K=1), Pad(P=(1, 1, 1, 1), mode="reflect"), Conv(C=4, O=4, K=3),
                                    Pad(P=(1, 1, 1, 1), mode="replicate"), Pad(P=(1, 1), mode="constant"),
                                    Activation("sigmoid")), (2, 3, 5, 5)),
    "layer-norm-mlp": (Sequential(Linear(C=8, O=16), LayerNorm(C=16), Activation("gelu"), Linear(C=16, O=8),
                                  LayerNorm(C=8, affine=False), Linear(C=8, O=4)), (3, 5, 8)),
}
RECIPE_NAMES = ("bf16-autocast", "fp16-autocast", "bf16", "fp16")


def _model(layer, shape):
    torch.manual_seed(0)
    return to_torch(layer, input_shape=shape)


@pytest.mark.parametrize("recipe", RECIPE_NAMES)
@pytest.mark.parametrize("name", CASES)
def test_closed_form_saved_bytes_equal_the_hooks_and_the_torch_reading(name, recipe):
    layer, shape = CASES[name]
    c = layer.cost(shape, input_grad=False)
    want = measured(_model(layer, shape), torch.randn(shape), recipe)
    assert saved_by_dtype(c, recipe) == want
    # (batch norm without affine weights under autocast too: the reading sees its running buffers)
    assert read(_model(layer, shape), torch.randn(shape), recipe) == want


@pytest.mark.parametrize("recipe", RECIPE_NAMES)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_memory_is_weights_in_the_recipe_dtype_plus_the_hooks_bytes(recipe, optimizer):
    layer, shape = CASES["bottleneck"]
    r = precision(recipe)
    model = _model(layer, shape)
    saved = sum(measured(model, torch.randn(shape), recipe).values())
    if not r.autocast:
        model = model.to(DTYPES[r.compute])
    x = torch.randn(shape, dtype=next(model.parameters()).dtype)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    state = optimizer_state(model, x, optimizer=optimizer)["bytes"]
    want = params + params + state + saved  # weights, their gradients, the optimizer's state, what is saved
    assert layer.cost(shape, input_grad=False).training_memory(optimizer, precision=recipe) == want
    assert training_memory(layer, optimizer, input_shape=shape, precision=recipe).subs(N, shape[0]) == want


def test_autocast_saves_less_than_fp32_but_keeps_fp32_where_autocast_does():
    layer, shape = CASES["cnn"]
    c = layer.cost(shape, input_grad=False)
    mixed = saved_by_dtype(c, "bf16-autocast")
    assert set(mixed) == {"bfloat16", "float32", "int64"}  # batch norm's statistics float32, the argmax int64
    assert sum(mixed.values()) < 4 * (c.saved_elements - c.saved_indices) + 8 * c.saved_indices


def test_fp32_recipe_is_the_one_dtype_rule():
    for layer, shape in CASES.values():
        c = layer.cost(shape, input_grad=False)
        for optimizer in ("adam", "momentum"):
            assert c.training_memory(optimizer, precision="fp32") == c.training_memory(optimizer)


def test_symbolic_batch_stays_exact_and_max_batch_is_proven_at_n_and_n_plus_1():
    layer, shape = CASES["bottleneck"]
    expr = training_memory(layer, "adam", input_shape=shape, precision="bf16-autocast")
    assert expr.free_symbols == {N} and sympy.Poly(expr, N).degree() == 1
    assert all(c.is_Integer for c in sympy.Poly(expr, N).all_coeffs())
    budget = 200_000
    n = max_batch(layer, input_shape=shape, memory=budget, optimizer="adam", precision="bf16-autocast")
    model = _model(layer, shape)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    fixed = 2 * params + optimizer_state(model, torch.randn(shape), optimizer="adam")["bytes"]
    at = {b: fixed + sum(measured(model, torch.randn((b, *shape[1:])), "bf16-autocast").values())
          for b in (n, n + 1)}
    assert n >= 1 and at[n] <= budget < at[n + 1]
    assert n > max_batch(layer, input_shape=shape, memory=budget, optimizer="adam")  # fp32 fits fewer


def test_symbolic_sizes_stay_exact():
    from convcost.symbols import H, W

    c = SeparableConv(C=8, O=16, K=3).cost((N, 8, H, W), input_grad=False)
    bf16 = saved_by_dtype(c, "bf16-autocast")["bfloat16"]
    assert bf16.subs({N: 2, H: 8, W: 8}) == saved_by_dtype(c.subs(N=2, H=8, W=8), "bf16-autocast")["bfloat16"]


# -- refusals: never a silent wrong number -------------------------------------------------------------------------

def test_an_unknown_recipe_names_the_allowed_ones():
    with pytest.raises(ConvcostError, match=r"unknown precision 'amp'; known: fp32, bf16-autocast, fp16-autocast"):
        training_memory(StandardConv(C=3, O=8, K=3, H=6, W=6), precision="amp")


def test_dtype_and_precision_together_are_refused():
    with pytest.raises(ConvcostError, match="not both"):
        StandardConv(C=3, O=8, K=3, H=6, W=6).cost().training_memory("adam", "float16", precision="bf16")


def test_a_primitive_without_an_autocast_rule_is_refused_by_name():
    layer = Sequential(Conv(C=8, O=8, K=1), LayerScale(C=8))   # x * gamma: promoted by its float32 parameter
    c = layer.cost((2, 8, 4, 4), input_grad=False)
    with pytest.raises(ConvcostError, match="LayerScale.*no autocast rule declared"):
        c.training_memory("adam", precision="bf16-autocast")
    assert c.training_memory("adam", precision="fp32") == c.training_memory("adam")


def test_an_undecided_residual_is_refused():
    from convcost.symbols import S

    layer = Residual(Conv(C=4, O=4, K=3, P=1, S=S), when=sympy.Eq(S, 1))
    with pytest.raises(ConvcostError, match="bind it"):
        saved_by_dtype(layer.cost((1, 4, 6, 6)), "bf16-autocast")


def test_bytes_given_as_an_expression_take_no_recipe():
    with pytest.raises(ConvcostError, match="given already"):
        max_batch(100 * N + 5, memory=1000, precision="bf16")


def test_a_cost_summed_by_hand_is_refused():
    a = Conv(C=3, O=4, K=1).cost((1, 3, 4, 4))
    with pytest.raises(ConvcostError, match="sum of costs"):
        saved_by_dtype(a + Activation().cost((1, 4, 4, 4)), "bf16")


def test_when_bound_true_and_false():
    on = When(True, Conv(C=4, O=4, K=1))
    off = When(False, Conv(C=4, O=4, K=1))
    shape = (2, 4, 3, 3)
    for layer in (on, off):
        c = Sequential(Conv(C=4, O=4, K=1), layer, Activation("relu")).cost(shape, input_grad=False)
        assert saved_by_dtype(c, "bf16-autocast") == measured(
            _model(Sequential(Conv(C=4, O=4, K=1), layer, Activation("relu")), shape), torch.randn(shape),
            "bf16-autocast")


# -- the per-primitive facts: declared with the primitive, held against the torch backend's autocast lists -------

EXAMPLES = [Conv(C=4, O=4, K=3), Conv(C=4, O=4, K=3, dims=3), Linear(C=4, O=4), BatchNorm(C=4),
            Activation("gelu"), MaxPool(K=2), MaxPool(K=2, dims=3), AvgPool(K=2, dims=3), AdaptiveAvgPool(),
            AdaptiveAvgPool(dims=3), Concat(), Add(), Flatten(), LayerNorm(C=4), Pad(P=(1, 1), mode="reflect"),
            Pad(P=(1, 1, 1, 1), mode="replicate"), Pad(P=(1, 1, 1, 1, 1, 1), mode="reflect"),
            Pad(P=(1, 1, 1, 1, 1, 1), mode="replicate"), Pad(P=(1, 1), mode="circular"), Pad(P=1)]


@pytest.mark.parametrize("layer", EXAMPLES, ids=repr)
def test_declared_rule_is_the_torch_releases_list(layer):
    """The core's declaration (no torch) is the policy the PyTorch backend reads for the same layer from the
    release's autocast lists, which a runtime test compares with the running release's registrations."""
    listed = autocast_lists.policy(hooks_of(layer).autocast_op(layer))
    assert layer.autocast_rule() == (listed or "keep")


def test_every_primitive_either_declares_a_rule_or_is_refused():
    declared = {cls.__name__ for cls in PRIMITIVES if "autocast_rule" in _own_methods(cls)}
    assert {"Conv", "ConvTranspose", "Linear", "BatchNorm", "Activation", "MaxPool", "AdaptiveAvgPool",
            "Add", "Mul", "Concat", "Flatten", "Identity"} <= declared
    for name in ("MatMul", "Einsum", "Attention", "LSTM", "LayerScale", "Normalization"):
        assert name not in declared  # their mixed-precision facts are not written yet: refused, not guessed


def _own_methods(cls) -> set:
    return {name for klass in cls.__mro__ if klass.__module__.startswith("convcost.primitives")
            for name in klass.__dict__}


# -- a property over random fields --------------------------------------------------------------------------------

@st.composite
def networks(draw):
    g = draw(st.integers(1, 3))
    c = g * draw(st.integers(1, 3))
    o = g * draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    size = draw(st.integers(k + 1, 7))
    act = draw(st.sampled_from(["relu", "sigmoid", "gelu", "silu", "hardswish", "tanh"]))
    first = Conv if draw(st.booleans()) else ConvTranspose
    parts = [first(C=c, O=o, K=k, G=g, S=draw(st.integers(1, 2)), bias=draw(st.booleans()))]
    if draw(st.booleans()):
        parts.append(BatchNorm(C=o, affine=draw(st.booleans())))
    parts.append(Activation(act))
    if draw(st.booleans()):  # float32 under autocast where reflect or replicate (where the map has room for it)
        mode = draw(st.sampled_from(["reflect", "replicate", "constant"]))
        if mode == "constant" or min(Sequential(*parts).cost((1, c, size, size)).output_shape[2:]) >= 2:
            parts.append(Pad(P=(1, 1, 1, 1), mode=mode))
    if draw(st.booleans()):
        parts.append(Residual(Sequential(Conv(C=o, O=o, K=3, P=1, G=o), Activation("relu"))))
    if draw(st.booleans()):
        parts.append(MaxPool(K=1) if draw(st.booleans()) else AdaptiveAvgPool(output_size=1))
    head = draw(st.sampled_from(["none", "linear", "se"]))
    if head == "se" and o % 2 == 0:
        parts.append(SqueezeExcitation(C=o, r=2))
    shape = (draw(st.integers(2, 3)), c, size, size)  # batch norm in training refuses one value per channel
    layer = Sequential(*parts)
    if head == "linear":
        out = layer.cost(shape).output_shape
        layer = Sequential(*parts, Flatten(), Linear(C=out[1] * out[2] * out[3], O=draw(st.integers(1, 5))))
    return layer, shape, draw(st.sampled_from(RECIPE_NAMES))


@settings(deadline=None)
@given(networks())
def test_property_closed_form_equals_the_hooks(case):
    layer, shape, recipe = case
    c = layer.cost(shape, input_grad=False)
    assert saved_by_dtype(c, recipe) == measured(_model(layer, shape), torch.randn(shape), recipe)


def test_recipes_are_the_documented_ones():
    assert tuple(RECIPES) == ("fp32", "bf16-autocast", "fp16-autocast", "bf16", "fp16")


@pytest.mark.parametrize("recipe", ["bf16-autocast", "bf16"])
def test_zoo_resnet18_at_a_small_input(recipe):
    from convcost.zoo import resnet18

    layer, shape = resnet18().layer, (2, 3, 64, 64)
    c = layer.cost(shape, input_grad=False)
    assert saved_by_dtype(c, recipe) == measured(_model(layer, shape), torch.randn(shape), recipe)


def test_the_torch_front_door_hands_the_recipe_to_the_closed_form_and_refuses_it_for_a_module():
    from convcost.torch import max_batch as torch_max_batch

    layer, shape = CASES["bottleneck"]
    assert torch_max_batch(layer, shape, memory=200_000, precision="bf16-autocast") == \
        max_batch(layer, shape, memory=200_000, precision="bf16-autocast")
    with pytest.raises(ConvcostError, match="under torch.autocast"):
        torch_max_batch(_model(layer, shape), shape, memory=200_000, precision="bf16-autocast")


def test_cli_cost_takes_a_precision_recipe(capsys):
    import json

    from convcost.cli import main

    fields = ["SeparableConv", "C=8", "O=16", "K=3", "H=8", "W=8"]
    assert main(["cost", *fields, "--training", "--first", "--precision", "bf16-autocast", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    want = SeparableConv(C=8, O=16, K=3, H=8, W=8).cost(input_grad=False).training_memory(
        "adam", precision="bf16-autocast")
    assert data["training_memory[adam, bf16-autocast]"] == want == 4 * (4 * 224) + 4 * 4 + 2000
    assert main(["cost", *fields, "--training", "--dtype", "float16", "--precision", "bf16"]) == 2
    assert "leave --dtype out" in capsys.readouterr().err


@pytest.mark.parametrize("input_grad, trainable", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("name", ["cnn", "bottleneck", "se", "layer-norm-mlp", "transposed"])
def test_an_input_that_needs_a_gradient_and_frozen_parameters(name, input_grad, trainable):
    """A layer inside a network (its input needs a gradient) and frozen parameters (no weight gradient; the
    weight copy is still kept where the input's gradient needs it)."""
    layer, shape = CASES[name]
    c = layer.cost(shape, input_grad=input_grad, trainable=trainable)
    model = _model(layer, shape)
    for p in model.parameters():
        p.requires_grad_(trainable)
    x = torch.randn(shape, requires_grad=input_grad)
    for recipe in RECIPE_NAMES:
        assert saved_by_dtype(c, recipe) == measured(model, x.detach().requires_grad_(input_grad), recipe), recipe
