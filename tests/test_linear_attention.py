"""The worked example of adding a primitive: linear attention, ``phi(Q) (phi(K)^T V)`` with ``phi = elu + 1``
(Katharopoulos et al., 2020), a module of query, key and value.

It is added in three places only: its core class (``convcost.primitives.matmul.LinearAttention``), its binding
(``convcost.torch.bindings.matmul``: the module it builds and reads, the tensors a call passes it, what a
training step runs on strided operands) and its strategy (``convcost.testing.linear_attention_cases``). Every
number here comes from PyTorch (``FlopCounterMode``, ``numel``, ``saved_tensors_hooks`` through
``measure_training``) or from hand arithmetic written here, never from the formula under test.
"""

from __future__ import annotations

import itertools

import pytest
import sympy
import torch
from hypothesis import given
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from convcost import primitives as p
from convcost.testing import MERGE_CASES, linear_attention_cases
from convcost.torch import from_torch, profile, to_torch
from convcost.torch.binding import binding_of
from convcost.torch.inputs import model_inputs
from convcost.torch.measure_training import backward_macs, measure_training, saved_tensors
from convcost.torch.rules import Tensor
from convcost.torch.trace_calls import read_calls
from convcost.torch.trace_fx import read_graph, trace
from convcost.torch.trace_shapes import read_shapes


def _macs_by_hand(shapes) -> int:
    """``phi(K)^T V`` is E x S x Ev per batch entry, ``phi(Q)`` times it L x E x Ev."""
    (*batch, length, e), (*_, keys, _), (*_, _, ev) = shapes
    n = 1
    for b in batch:
        n *= b
    return n * (e * keys * ev + length * e * ev)


def test_it_is_added_in_its_core_class_its_binding_and_its_strategy():
    assert p.LinearAttention in p.PRIMITIVES and p.LinearAttention in MERGE_CASES
    binding = binding_of(p.LinearAttention)
    module = to_torch(p.LinearAttention())
    assert type(module) in binding.modules and from_torch(module) == p.LinearAttention()
    q, k, v = (Tensor((2, 3, 5, 4)), Tensor((2, 3, 7, 4)), Tensor((2, 3, 7, 6)))
    assert binding.module_inputs(module, (q, k, v), {}) == [q, k, v]
    assert binding.module_inputs(module, (q,), {}) is None and binding.module_inputs(module, (q, k), {"v": v}) is None


@given(case=linear_attention_cases())
def test_forward_against_flopcountermode_numel_and_hand_arithmetic(case):
    layer, shapes = case
    c = layer.cost(shapes)
    module = to_torch(layer, shapes[0])
    xs = [torch.randn(s) for s in shapes]
    with FlopCounterMode(display=False) as flops:
        out = module(*xs)
    assert c.macs == flops.get_total_flops() // 2 == _macs_by_hand(shapes)
    assert c.params == sum(t.numel() for t in module.parameters()) == 0
    assert c.output_shape == tuple(out.shape)
    q, k = shapes[0], shapes[1]
    assert c.act_ops == c.elementwise_ops == torch.Size(q).numel() + torch.Size(k).numel()  # phi on each element


def test_by_hand():
    # batch 2 x 4 heads, L = 16, S = 20, E = 8, Ev = 6: 8 x (8 x 20 x 6 + 16 x 8 x 6) = 8 x (960 + 768)
    shapes = [(2, 4, 16, 8), (2, 4, 20, 8), (2, 4, 20, 6)]
    assert p.LinearAttention().cost(shapes).macs == 8 * (960 + 768) == 13824
    n, length = sympy.symbols("N L", positive=True, integer=True)
    assert p.LinearAttention().cost([(n, length, 8), (n, 20, 8), (n, 20, 6)]).macs == 48 * n * (length + 20)


@pytest.mark.parametrize("grads", [g for g in itertools.product([False, True], repeat=3) if any(g)], ids=str)
@given(case=linear_attention_cases())
def test_a_step_on_contiguous_operands_against_pytorch(grads, case):
    """Backward MACs against FlopCounterMode over ``backward()``, saved elements against saved_tensors_hooks."""
    layer, shapes = case
    c = layer.cost(shapes, input_grads=grads)
    module = to_torch(layer, shapes[0])
    xs = [torch.randn(s) for s in shapes]
    saved = saved_tensors(module, xs, input_grad=grads)
    assert (c.backward_macs, c.saved_elements, c.saved_indices) == (
        backward_macs(module, xs, input_grad=grads), saved["elements"], saved["indices"])


class Heads(nn.Module):
    """Linear attention on heads made by a transpose: ``(N, L, H, E)`` to ``(N, H, L, E)``, strided operands."""

    def __init__(self):
        super().__init__()
        self.attention = to_torch(p.LinearAttention())

    def forward(self, q, k, v):
        return self.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))


SHAPES = [(2, 5, 3, 4), (2, 7, 3, 4), (2, 7, 3, 6)]  # (N, L, H, E), (N, S, H, E), (N, S, H, Ev)
HEADS = [(2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 6)]  # what the attention is called on


def _rows(rows):
    return [(r.path, r.op, r.spec, r.input_shapes, r.output_shape, r.params, r.macs) for r in rows]


@pytest.mark.parametrize("reading", ["shapes", "calls", "fx"])
def test_one_row_in_every_reading(reading):
    model = Heads()
    given_ = model_inputs(model, SHAPES)
    if reading == "shapes":
        rows = read_shapes(model, given_).rows
    elif reading == "calls":
        rows = read_calls(model, given_)[0].rows
    else:
        rows = read_graph(model, given_, trace(model, given_)).rows
    expected = ("attention", "LinearAttentionCall", p.LinearAttention(), tuple(HEADS), (2, 3, 5, 6), 0,
                _macs_by_hand(HEADS))
    assert _rows(rows) == [expected]


def test_profile_reads_one_row_exactly():
    r = profile(Heads(), SHAPES)
    assert r.exact and [row.spec for row in r.rows] == [p.LinearAttention()]
    assert r.total["macs"] == _macs_by_hand(HEADS) == 2 * 3 * (4 * 7 * 6 + 5 * 4 * 6)
    n = sympy.Symbol("N", positive=True, integer=True)  # the fx reading, for a symbolic batch
    symbolic = profile(Heads(), [(n, *s[1:]) for s in SHAPES])
    assert [row.spec for row in symbolic.rows] == [p.LinearAttention()]
    assert symbolic.total["macs"].subs(n, 2) == r.total["macs"]


class SelfAttention(nn.Module):
    """Linear attention of one tensor with itself, on heads made by a transpose (``contiguous``: copied first)."""

    def __init__(self, contiguous=False):
        super().__init__()
        self.attention, self.contiguous = to_torch(p.LinearAttention()), contiguous

    def forward(self, x):
        h = x.transpose(1, 2)
        h = h.contiguous() if self.contiguous else h
        return self.attention(h, h, h)


def _step_agrees(model, xs, grads):
    report = profile(model, [x.clone().requires_grad_(g) for x, g in zip(xs, grads)], training=True)
    step, measured = report.training, measure_training(model, xs, input_grad=grads)
    assert step.complete
    assert (step.backward_macs, step.backward_macs_torch, step.saved_elements, step.saved_indices) == tuple(
        measured[k] for k in ("backward_macs", "backward_macs_torch", "saved_elements", "saved_indices"))
    return report


@pytest.mark.parametrize("grads", [g for g in itertools.product([False, True], repeat=3) if any(g)], ids=str)
def test_a_step_on_transposed_operands_agrees_with_measure_training(grads):
    """The products fold the strided heads to batches of matrices: copies, which autograd keeps instead of the
    operands; profile runs the computation itself on meta tensors laid out as the model's to find them."""
    torch.manual_seed(0)
    _step_agrees(Heads(), [torch.randn(s) for s in SHAPES], grads)


def test_transposed_operands_change_what_a_step_keeps():
    """One tensor as query, key and value: on contiguous heads the step keeps that storage once; on transposed
    heads the fold of the value copies it, and the copy is kept besides (so the strided path is what is checked)."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4)
    strided = _step_agrees(SelfAttention(), [x], (True,)).training.saved_elements
    contiguous = _step_agrees(SelfAttention(contiguous=True), [x], (True,)).training.saved_elements
    assert (strided, contiguous) == (576, 456)
    assert strided - contiguous == 120 == x.numel()  # the value's copy


def test_a_step_reads_one_row():
    torch.manual_seed(0)
    report = _step_agrees(SelfAttention(), [torch.randn(2, 5, 3, 4)], (True,))
    assert [(r.spec, r.op) for r in report.rows] == [(p.LinearAttention(), "LinearAttentionCall")]
