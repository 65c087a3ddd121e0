"""The training step against PyTorch: backward MACs, saved tensors, optimizer state, max batch.

Every expected number comes from running PyTorch (``convcost.torch.measure_training``: FlopCounterMode with the
grouped weight-gradient overcount divided out, saved_tensors_hooks by distinct storage, optimizer.state after
one real step) or from hand arithmetic written here, never from the formulas under test.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from convcost import ConvcostError, StandardConv, max_batch
from convcost import primitives as p
from convcost.compose import Parallel
from convcost.layers import _takes_grad
from convcost.storages import distinct_saved
from convcost.symbols import N
from convcost.testing import (
    CALL_CASES,
    MERGE_CASES,
    PRIMITIVE_CASES,
    VARIANT_CASES,
    attention_cases,
    composition_cases,
    multihead_attention_cases,
)
from convcost.torch import runtime, to_torch
from convcost.torch.conventions import torch_backward_macs
from convcost.torch.measure_training import (
    backward_macs,
    measure_training,
    optimizer_state,
    saved_tensors,
    saved_tensors_by_module,
)
from convcost.torch.modules import Merge
from convcost.training import parse_memory, training_memory
from convcost.zoo import MODELS, mnist_net

GRADS = [(True, True), (False, True), (True, False), (False, False)]  # (input_grad, trainable)


def _empty_window(layer, shape) -> bool:
    """A max-pooling window that lies wholly in the padding: torch 2.13's CPU kernel then stores argmax indices
    outside the input, and the backward writes out of bounds (heap corruption, an abort), so it is not run."""
    if not isinstance(layer, p.MaxPool) or isinstance(layer, p.AvgPool):
        return False
    out = layer.cost(shape).output_shape
    for length, size, (k, s, pad, d) in zip(shape[2:], out[2:], layer.window()):
        for o in range(size):
            if not any(0 <= o * s - pad + i * d < length for i in range(k)):
                return True
    return False


def _measure(layer, shape, input_grad, trainable):
    assume(not _empty_window(layer, shape))
    torch.manual_seed(0)
    module = to_torch(layer, shape)
    module.requires_grad_(trainable)
    x = torch.randn(*shape)
    try:
        saved = saved_tensors(module, x, input_grad=input_grad)
    except (RuntimeError, ValueError) as exc:  # batch norm in training mode needs 2+ values per channel
        assume("more than 1 value per channel" not in str(exc))
        raise
    return saved, backward_macs(module, x, input_grad=input_grad), backward_macs(module, x, input_grad=input_grad,
                                                                                 convention="torch")


def _check(case, input_grad, trainable):
    layer, shape = case
    c = layer.cost(shape, input_grad=input_grad, trainable=trainable)
    saved, macs, torch_macs = _measure(layer, shape, input_grad, trainable)
    where = f"{layer!r} on {shape}, input_grad={input_grad}, trainable={trainable}"
    assert (c.backward_macs, c.saved_elements, c.saved_indices) == (macs, saved["elements"], saved["indices"]), where
    assert torch_backward_macs(c) == torch_macs, where


# -- the grouped weight-gradient correction, by hand ---------------------------------------------------------


def test_grouped_weight_gradient_correction_by_hand():
    depthwise = torch.nn.Conv2d(4, 4, 3, groups=4, bias=False)
    x = torch.randn(1, 4, 10, 10)
    work = 4 * 8 * 8 * (3 * 3)  # each of 4 channels: 8x8 outputs, 3x3 taps of one input channel
    assert work == 2304
    # torch 2.13 costs the weight gradient as if all 4 input channels met every output channel
    assert backward_macs(depthwise, x, convention="torch") == 4 * work == 9216
    assert backward_macs(depthwise, x) == work
    # the input gradient is not overcounted: a transposed conv of the same size as the forward
    assert backward_macs(depthwise, x, input_grad=True) == 2 * work
    assert backward_macs(depthwise, x, input_grad=True, convention="torch") == work + 4 * work


def test_grouped_transposed_correction_by_hand():
    up = torch.nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2, bias=False)
    x = torch.randn(1, 6, 3, 3)
    work = 6 * 3 * 3 * (2 * 2) * (4 // 2)  # every input element scatters (O/G) K^2 products
    assert backward_macs(up, x) == work
    assert backward_macs(up, x, convention="torch") == 2 * work


# -- every primitive, variant and random composition ---------------------------------------------------------


def _untrained_variant(cls) -> bool:
    """A variant built from a primitive without training counts (the efficient blocks' new primitives)."""
    from convcost.frontdoor import cost
    from convcost.tour import EXAMPLES

    return bool(cost(cls, **EXAMPLES[cls.__name__]).untrained)


@pytest.mark.parametrize("cls", [cls for cls in PRIMITIVE_CASES if not _takes_grad(cls)], ids=lambda c: c.__name__)
@given(data=st.data())
def test_a_primitive_without_training_counts_says_so(cls, data):
    """Never a silent zero: its costs name it in ``untrained``, and the memory of a step is refused."""
    case = data.draw(PRIMITIVE_CASES[cls]())
    c = case.layer.cost(case.input_shape)
    assert c.untrained == (cls.__name__,)
    with pytest.raises(ConvcostError, match="no training counts yet"):
        c.training_memory()


@pytest.mark.parametrize("input_grad, trainable", GRADS)
@given(case=st.one_of(*(make() for cls, make in PRIMITIVE_CASES.items() if _takes_grad(cls))))
def test_primitives(case, input_grad, trainable):
    _check(case, input_grad, trainable)


@pytest.mark.parametrize("cls", list(CALL_CASES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("input_grad, trainable", GRADS)
@given(data=st.data())
def test_called_primitives(cls, input_grad, trainable, data):
    """Padding in every mode, interpolation in every mode, reductions of every kind, every normalisation."""
    _check(data.draw(CALL_CASES[cls]()), input_grad, trainable)


def _check_merge(case, grads, trainable, unseen=0):
    """A primitive of several inputs: ``grads`` says which operands need a gradient; ``unseen`` backward MACs
    are added to FlopCounterMode's count (the CPU's fused attention kernel, which it does not see)."""
    layer, shapes = case
    c = layer.cost(shapes, input_grads=grads, trainable=trainable)
    torch.manual_seed(0)
    module = to_torch(layer, shapes[0])
    module.requires_grad_(trainable)
    xs = [torch.randn(*s) for s in shapes]
    saved = saved_tensors(module, xs, input_grad=grads)
    where = f"{layer!r} on {shapes}, input_grads={grads}, trainable={trainable}"
    assert (c.backward_macs, c.saved_elements, c.saved_indices) == (
        backward_macs(module, xs, input_grad=grads) + unseen, saved["elements"], saved["indices"]), where
    assert torch_backward_macs(c) == backward_macs(module, xs, input_grad=grads, convention="torch") + unseen, where


@pytest.mark.parametrize("layer", [p.Attention(kernel="math"), p.Attention(dropout=True),
                                   p.Attention(kernel="math", dropout=True), p.Attention(kernel="math", kv_groups=2),
                                   p.Attention(kv_groups=3, dropout=True), p.Attention(kv_groups=(2, 1)),
                                   p.Attention(kv_groups=(4, 2), dropout=True)], ids=repr)
@given(data=st.data())
def test_attention_on_the_math_path(layer, data):
    """The math path PyTorch takes on strided heads, with dropout, or both, and with grouped key and value
    heads (repeated, and the copies kept; key and value heads of their own counts take the math path too), for
    every operand's flag (the fused kernel, which FlopCounterMode cannot see on the CPU, is checked by hand in
    test_profile_training.py)."""
    batch = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    length, keys, e, ev = (data.draw(st.integers(1, 5)) for _ in range(4))
    key, value = layer.groups()
    heads = batch[-1] * key  # the query's heads: each key head serves ``key`` of them, each value head ``value``
    shapes = [(*batch[:-1], heads, length, e), (*batch, keys, e), (*batch[:-1], heads // value, keys, ev)]
    grads = tuple(data.draw(st.booleans()) for _ in shapes)
    _check_merge((layer, shapes), grads, True)


@pytest.mark.parametrize("trainable", [True, False])
@given(data=st.data())
def test_multihead_attention(trainable, data):
    """``nn.MultiheadAttention`` called on one, two or three distinct tensors, batched or not, every option.
    Without ``need_weights`` (and without dropout) it runs the CPU's fused kernel, whose backward
    FlopCounterMode does not see: by hand, per batch entry and head, it recomputes the scores (L S' E/H), then
    the gradients of the weights (L S' E/H), the value (L S' E/H), the query and the key (L S' E/H each),
    S' the keys with the extra ones, whenever anything in the attention needs a gradient."""
    layer, shapes = data.draw(multihead_attention_cases())
    grads = tuple(data.draw(st.booleans()) for _ in shapes)
    assume(trainable or any(grads))  # else nothing needs a gradient and there is no backward to run
    n = shapes[0][1] if len(shapes[0]) == 3 else 1
    keys = shapes[-1][0] + layer.add_bias_kv + layer.add_zero_attn
    # the fused kernel runs, and FlopCounterMode does not see it (before torch 2.15)
    fused = not layer.need_weights and not layer.dropout and not runtime.flop_counter().fused_attention
    scores = n * layer.H * shapes[0][0] * keys  # per head: L S' scores of E/H products each
    _check_merge((layer, shapes), grads, trainable, unseen=scores * 5 * (layer.E // layer.H) if fused else 0)
    # the forward too: its parameters, and its MACs (the fused kernel's two products added by hand)
    c, module = layer.cost(shapes), to_torch(layer, shapes[0]).train()
    with FlopCounterMode(display=False) as flops:
        module(*(torch.randn(*s) for s in shapes))
    assert c.params == sum(t.numel() for t in module.parameters())
    assert c.macs == flops.get_total_flops() // 2 + (scores * 2 * (layer.E // layer.H) if fused else 0)


@pytest.mark.parametrize("trainable", [True, False])
@given(data=st.data())
def test_attention(trainable, data):
    """Attention on every kernel and option. The CPU's fused kernel is invisible to FlopCounterMode, forward
    and backward: where it counts no forward products the fused kernel ran, and its backward is added by hand,
    per batch entry: it recomputes the scores (L S E), then the gradients of the weights (L S Ev), the value
    (L S Ev), the query and the key (L S E each), whenever an operand needs a gradient."""
    layer, shapes = data.draw(attention_cases())
    grads = tuple(data.draw(st.booleans()) for _ in shapes)
    module = to_torch(layer, shapes[0]).train()
    with FlopCounterMode(display=False) as flops:
        module(*(torch.randn(*s) for s in shapes))
    q, v = shapes[0], shapes[2]
    scores = math.prod(q[:-1]) * shapes[1][-2]  # every query row meets every key
    fused = flops.get_total_flops() == 0  # the fused kernel ran, unseen (from torch 2.15 it is counted)
    _check_merge((layer, shapes), grads, trainable, unseen=scores * (3 * q[-1] + 2 * v[-1]) if fused and any(grads)
                 else 0)


#: the merges with a property test of their own (the fused attention kernel, which FlopCounterMode does not see)
OWN_TESTS = (p.Attention, p.MultiheadAttention, p.GroupedMatMul,  # GroupedMatMul: test_profile_transformers_cases
             p.TriangularSolve)  # FlopCounterMode taught its count: test_profile_transformers_cases2


@pytest.mark.parametrize("cls", [cls for cls in MERGE_CASES if cls not in OWN_TESTS], ids=lambda c: c.__name__)
@pytest.mark.parametrize("trainable", [True, False])
@given(data=st.data())
def test_merges(cls, trainable, data):
    case = data.draw(MERGE_CASES[cls]())
    grads = tuple(data.draw(st.booleans()) for _ in case.input_shape)
    _check_merge(case, grads, trainable)


@pytest.mark.parametrize("input_grad, trainable", GRADS[:3])
@given(case=st.one_of(*(make() for cls, make in VARIANT_CASES.items() if not _untrained_variant(cls))))
def test_variants(case, input_grad, trainable):
    _check(case, input_grad, trainable)


#: the variants built on merges with training counts of their own (each drawn on its own, not among all)
DYNAMIC = [cls for cls in VARIANT_CASES if cls.__name__ in ("CondConv", "Involution", "DeformableConv")]


@pytest.mark.parametrize("cls", DYNAMIC, ids=lambda c: c.__name__)
@pytest.mark.parametrize("input_grad, trainable", GRADS[:3])
@given(data=st.data())
def test_dynamic_variants(cls, input_grad, trainable, data):
    """``op(x, generator(x))``: x read by both parts, the generator's output by the op, each storage once."""
    _check(data.draw(VARIANT_CASES[cls]()), input_grad, trainable)


@pytest.mark.parametrize("input_grad, trainable", GRADS[:3])
@given(case=composition_cases())
def test_compositions(case, input_grad, trainable):
    _check(case, input_grad, trainable)


@given(grads=st.lists(st.booleans(), min_size=2, max_size=4), broadcast=st.booleans())
def test_products_save_each_factor_for_the_others_gradient(grads, broadcast):
    shapes = [(2, 3, 4, 4) if i == 0 or not broadcast else (2, 3, 1, 1) for i in range(len(grads))]
    c = p.Mul().cost(shapes, input_grads=grads)
    xs = [torch.randn(*s).requires_grad_(g) for s, g in zip(shapes, grads)]
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        Merge("mul")(*xs)
    assert c.saved_elements == sum(seen.values())


def test_a_view_keeps_its_whole_storage_once():
    # both halves of a channel split are read by convolutions: the input storage is saved once
    layer = Parallel(_narrow_conv(0), _narrow_conv(2))
    c = layer.cost((2, 4, 5, 5))
    saved, _, _ = _measure(layer, (2, 4, 5, 5), True, True)
    assert c.saved_elements == saved["elements"] == 2 * 4 * 5 * 5


def _narrow_conv(start):
    from convcost.compose import Sequential

    return Sequential(p.Narrow(dim=1, start=start, length=2), p.Conv(C=2, O=3, K=1))


# -- whole models ---------------------------------------------------------------------------------------------

ZOO_INPUTS = {"mnist_net": 28, "mnist_net_asymmetric": 28}


# resnet50 takes a while on a CPU: only in the thorough profile
THOROUGH = os.environ.get("CONVCOST_PROFILE") == "thorough"


@pytest.mark.parametrize("name", sorted(MODELS if THOROUGH else set(MODELS) - {"resnet50"}))
def test_zoo_models(name):
    model = MODELS[name]()
    side = ZOO_INPUTS.get(name, 32)
    shape = (2, model.input_shape[1], side, side)
    c = model.layer.cost(shape, input_grad=False)
    torch.manual_seed(0)
    module = model.to_torch()
    x = torch.randn(*shape)
    saved = saved_tensors(module, x)
    assert (c.backward_macs, c.saved_elements, c.saved_indices) == (
        backward_macs(module, x), saved["elements"], saved["indices"])
    assert torch_backward_macs(c) == backward_macs(module, x, convention="torch")
    assert sum(saved_tensors_by_module(module, x).values()) == saved["elements"]


def test_distinct_saved_over_traced_rows_is_the_hooks_total():
    # conv -> bn -> relu -> maxpool -> flatten -> linear, traced by hand as a profile would: storage keys per tensor
    shape = (2, 3, 8, 8)
    layers = [p.Conv(C=3, O=4, K=3, P=1, bias=False), p.BatchNorm(C=4), p.Activation("relu"), p.MaxPool(K=2),
              p.Flatten(), p.Linear(C=64, O=5)]
    rows, storages, x, key = [], {"x": 2 * 3 * 8 * 8}, shape, "x"
    for i, layer in enumerate(layers):
        c = layer.cost(x, input_grad=i > 0)
        out = key if c.output_view else f"t{i}"
        storages.setdefault(out, c.activation_elements)
        rows.append((c, [(key, x)], out))
        x, key = c.output_shape, out
    module = torch.nn.Sequential(*(to_torch(layer, shape) for layer in layers))
    assert distinct_saved(rows, storages) == saved_tensors(module, torch.randn(*shape))["elements"]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_training_memory_is_what_a_step_holds(optimizer):
    model = mnist_net()
    module = model.to_torch()
    measured = measure_training(module, torch.randn(3, 1, 28, 28), optimizer=optimizer)
    expected = training_memory(model, optimizer).subs(N, 3)
    assert measured["bytes"] == expected
    state = optimizer_state(module, torch.randn(1, 1, 28, 28), optimizer=optimizer)["elements"]
    c = model.cost()
    per_element, steps = {"sgd": (0, 0), "momentum": (1, 0), "adam": (2, 1), "adamw": (2, 1)}[optimizer]
    assert state == per_element * c.params + steps * c.param_tensors


def test_frozen_parameters_get_no_gradient_and_no_state():
    layer = StandardConv(C=3, O=8, K=3, N=2, H=6, W=6)
    module = to_torch(layer)
    module.requires_grad_(False)
    measured = measure_training(module, torch.randn(2, 3, 6, 6), optimizer="adam", input_grad=True)
    c = layer.cost(input_grad=True, trainable=False)
    assert measured["bytes"] == c.training_memory("adam")
    assert measured["gradients"] == measured["optimizer_state"] == 0


def test_max_batch_is_exact_on_both_sides():
    model = mnist_net()
    torch.manual_seed(0)
    module = model.to_torch()
    at = {n: measure_training(module, torch.randn(n, 1, 28, 28), optimizer="sgd")["bytes"] for n in (3, 4)}
    assert max_batch(model, memory=at[3], optimizer="sgd") == 3
    assert max_batch(model, memory=at[4] - 1, optimizer="sgd") == 3
    assert max_batch(model, memory=at[4], optimizer="sgd") == 4
    assert max_batch(model, memory=1000, optimizer="sgd") == 0


# -- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("memory",
                         [-1, 0, "0GiB", "lots", "12 parsecs", float("nan"), float("inf"), True, None, "-3GB"])
def test_bad_memory_is_refused(memory):
    with pytest.raises(ConvcostError, match="memory="):
        max_batch(mnist_net(), memory=memory)


@pytest.mark.parametrize("optimizer", ["rmsprop", "", None, "Adam"])
def test_unknown_optimizer_is_refused(optimizer):
    with pytest.raises(ConvcostError, match="optimizer"):
        max_batch(mnist_net(), memory="1GiB", optimizer=optimizer)


def test_memory_units():
    assert parse_memory("80GiB") == 80 * 2**30
    assert parse_memory("24GB") == 24 * 10**9
    assert parse_memory("512MiB") == 512 * 2**20
    assert parse_memory("1.5KiB") == 1536
    assert parse_memory(2.5) == 2
    assert math.isclose(parse_memory("1TB"), 1e12)


def test_grad_flags_must_be_booleans():
    with pytest.raises(ConvcostError, match="input_grad='no'"):
        p.Conv(C=3, O=4, K=1).cost((1, 3, 2, 2), input_grad="no")
    with pytest.raises(ConvcostError, match="input_grads"):
        p.Add().cost([(1, 2), (1, 2)], input_grads=[True])


def test_max_batch_needs_a_bound_input_in_n():
    with pytest.raises(ConvcostError, match="still depends on H, W"):
        max_batch(StandardConv(C=3, O=4, K=3), memory="1GiB")
    with pytest.raises(ConvcostError, match="does not depend on the batch size"):
        max_batch(StandardConv(C=3, O=4, K=3, H=10, W=10).cost(), memory="1GiB")


def test_cli_cost_training(capsys):
    from convcost.cli import main

    assert main(["cost", "StandardConv", "C=3", "O=8", "K=3", "N=2", "H=6", "W=6", "--training", "--json"]) == 0
    out = capsys.readouterr().out
    # 8 filters x 4x4 positions x 27 taps x batch 2 forward; input and weight gradients double it
    assert '"backward_macs": 13824' in out and '"saved_elements": 216' in out
    assert '"training_memory[adam, float32]": 4456' in out
    assert main(["cost", "StandardConv", "C=3", "O=8", "K=3", "--training", "--optimizer", "lion"]) == 2
    assert "unknown optimizer 'lion'" in capsys.readouterr().err


def test_training_bytes_of_a_partly_frozen_model():
    from convcost.costs import training_bytes

    torch.manual_seed(0)
    module = mnist_net().to_torch()
    first = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    first.requires_grad_(False)
    x = torch.randn(2, 1, 28, 28)
    measured = measure_training(module, x, optimizer="adam")
    trainable = [q for q in module.parameters() if q.requires_grad]
    assert measured["bytes"] == training_bytes(
        params=sum(q.numel() for q in module.parameters()), trainable_params=sum(q.numel() for q in trainable),
        trainable_tensors=len(trainable), saved_elements=measured["saved_elements"],
        saved_indices=measured["saved_indices"], optimizer="adam")


def test_max_batch_of_an_expression_in_n():
    assert max_batch(100 * N + 50, memory=1050) == 10
    assert max_batch(100 * N + 50, memory=1049) == 9


@pytest.mark.parametrize("t, O, S", [(1, 8, 1), (6, 8, 1), (6, 16, 2)])
def test_symbolic_training_counts_bind_to_the_numbers(t, O, S):
    # the closed form (a When over t and a Residual over S and C = O) gives the bound cost's numbers
    from convcost import InvertedResidual, cost

    general = cost(InvertedResidual, general=True)
    values = dict(C=8, O=O, t=t, S=S, K=3, H=7, W=7, N=2)
    bound = InvertedResidual(**values).cost(input_grad=True)
    for metric in ("backward_macs", "saved_elements", "saved_indices", "param_tensors"):
        assert getattr(general.subs(**values), metric) == getattr(bound, metric), metric


def test_a_layer_without_training_counts_refuses_training_flags():
    from convcost.layers import Layer
    from convcost.spec import spec

    @spec
    class Plain(Layer):
        training_counts = False

        def _cost(self, shape):
            return p.Identity().cost(shape)

    assert Plain().cost((1, 2)).output_shape == (1, 2)
    assert Plain().cost((1, 2)).untrained == ("Plain",)
    with pytest.raises(ConvcostError, match="has no training counts"):
        Plain().cost((1, 2), input_grad=False)


def test_a_layer_says_whether_it_has_training_counts():
    # declared, not guessed from _cost's signature: a class whose _cost cannot take the flags and does not say
    # so is refused when it is made, never costed with a silent zero
    from convcost.layers import Layer, Merge

    with pytest.raises(ConvcostError, match="training_counts = False"):
        class Forgot(Layer):
            def _cost(self, shape):
                return p.Identity().cost(shape)

    with pytest.raises(ConvcostError, match="has_parameters = False"):
        class Weighted(Merge):
            def _cost(self, shapes, grads, trainable=True):
                return p.Add().cost(shapes)

    assert p.ExpertConv.has_parameters and p.MultiheadAttention.has_parameters and not p.Add.has_parameters


def test_one_max_batch_signature_for_convcost_layers_and_pytorch_models():
    # convcost.max_batch and convcost.torch.max_batch take the same arguments (what, input shape, memory,
    # optimizer, dtype); the torch one also reads a PyTorch model, and solves a convcost layer as the core one does
    pytest.importorskip("torch")
    import torch.nn as nn

    from convcost import torch as ct

    layer = StandardConv(C=3, O=8, K=3, H=6, W=6)
    assert max_batch(layer, None, 4456, "adam") == ct.max_batch(layer, None, 4456, "adam") == 2
    assert max_batch(layer, (1, 3, 6, 6), memory=4456) == ct.max_batch(layer, (1, 3, 6, 6), memory=4456) == 2
    with pytest.raises(ConvcostError, match="convcost.torch.max_batch"):
        max_batch(nn.Conv2d(3, 8, 3), (1, 3, 6, 6), memory=4456)
