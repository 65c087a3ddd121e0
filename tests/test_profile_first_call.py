"""The reading paths that keep profile's first call fast, each asserted by the reading it takes and its counts
(never by a timing): module calls routed on the model's own modules, not by patching nn.Module."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_oracle import flop_macs, numel  # noqa: E402

from convcost.torch.profiling import SHAPES, VALUES, profile  # noqa: E402

SEEN = []


class Watched(nn.Module):
    """A forward that looks at what the reading did to nn.Module and to itself while it runs."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):  # into a list of the test's: profile puts back whatever the forward writes on the model
        SEEN.append((nn.Module.__dict__["__call__"], nn.Module.__dict__["__getattr__"],
                          nn.Module.__dict__["_call_impl"], type(self.fc.weight).__name__))
        return self.fc(x).relu()


def test_a_reading_swaps_no_class_attribute():
    before = nn.Module.__dict__["__call__"], nn.Module.__dict__["__getattr__"], nn.Module.__dict__["_call_impl"]
    model = Watched()
    own = dict(vars(model.fc))
    r = profile(model, (2, 8))
    assert r.traced_with == SHAPES
    call, getattr_, impl, weight = SEEN[-1]
    assert (call, getattr_, impl) == before  # torch's own, during the forward
    assert weight == "Shaped"  # the module's parameter read as a shape, through its own dicts
    assert (nn.Module.__dict__["__call__"], nn.Module.__dict__["__getattr__"], nn.Module.__dict__["_call_impl"]) \
        == before
    assert vars(model.fc).keys() == own.keys()
    assert all(vars(model.fc)[k] is v for k, v in own.items())  # its _parameters dict is the same object
    assert type(vars(model.fc)["_parameters"]) is dict
    assert r.total["params"] == numel(model) == 72
    assert r.total["macs"] == flop_macs(model, torch.zeros(2, 8)) == 2 * 8 * 8
    assert [row.op for row in r.rows] == ["Linear", "Tensor.relu"]


class Registers(nn.Module):
    """A forward that registers a buffer and replaces a parameter's attribute (both to be undone)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        self.register_buffer("cache", torch.ones(3))
        return self.fc(x) * self.fc.bias


def test_what_a_forward_registers_is_undone_and_the_modules_run_after():
    model = Registers()
    r = profile(model, (2, 4))
    assert r.traced_with == SHAPES and r.exact
    assert "cache" not in model._buffers and type(model._buffers) is dict
    assert r.total["macs"] == flop_macs(Registers(), torch.zeros(2, 4)) == 2 * 4 * 4
    assert model(torch.zeros(2, 4)).shape == (2, 4)  # the model runs for real afterwards


class Shared(nn.Module):
    """One module called twice and a compiled-looking module (its _compiled_call_impl set)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)
        self.out._compiled_call_impl = self.out._call_impl  # what Module.compile() sets (a callable body)

    def forward(self, x):
        return self.out(self.fc(self.fc(x)))


def test_a_compiled_module_is_read_by_its_forward_and_kept_compiled():
    model = Shared()
    compiled = model.out._compiled_call_impl
    r = profile(model, (3, 4))
    assert r.traced_with == SHAPES and r.exact
    assert [row.path for row in r.rows] == ["fc", "fc#2", "out"]
    assert model.out._compiled_call_impl is compiled and "_call_impl" not in vars(model.out)
    assert r.total["macs"] == flop_macs(model, torch.zeros(3, 4)) == 3 * (16 + 16 + 8)


class PadWarning(nn.Module):
    """BERT-style: the forward asks whether a padding id is among the last and first tokens (transformers'
    ``warn_if_padding_and_no_attention_mask``), then embeds and projects."""

    def __init__(self, pad=0):
        super().__init__()
        self.pad = pad
        self.emb = nn.Embedding(10, 8)
        self.fc = nn.Linear(8, 4)
        self.warned = []

    def forward(self, ids):
        if self.pad in ids[:, [-1, 0]]:
            self.warned.append(True)
        return self.fc(self.emb(ids))


@pytest.mark.parametrize("pad", [0, 3])
def test_value_in_a_tensor_is_answered_from_its_values(pad):
    ids = torch.tensor([[3, 1, 2, 4], [5, 6, 7, 8]])
    model = PadWarning(pad)
    r = profile(model, ids)
    assert r.traced_with == SHAPES  # the ids' values were given: neither a second reading nor one call by call
    assert not model.warned  # what the forward appended is put back
    assert r.total["macs"] == flop_macs(model, ids) == 2 * 4 * 8 * 4
    assert r.total["params"] == numel(model) == 80 + 36
    assert [row.path for row in r.rows if row.macs] == ["fc"]
    assert (pad in ids[:, [-1, 0]]) == (pad == 3)  # the answer the reading had to read: both kinds happen


class Lengths(nn.Module):
    """XLM-style: the longest sequence, read from the ids' values (``.item()``), sizes what follows; a mask
    written in place by a computed call first (its values stay known)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, ids):
        mask = ids != 0
        mask[:, 0] = True  # computed on the values: they stay current
        n = int(mask.sum(1).max().item())
        return self.fc(self.emb(ids[:, :n]))


@pytest.mark.parametrize("ids", [[[3, 1, 0, 0], [5, 0, 0, 0]], [[3, 1, 2, 4], [5, 6, 7, 0]]])
def test_values_computed_from_the_integer_inputs_given_keep_the_shape_reading(ids):
    ids = torch.tensor(ids)
    model = Lengths()
    r = profile(model, ids)
    assert r.traced_with == SHAPES
    n = int((ids != 0).sum(1).max())
    assert r.total["macs"] == flop_macs(model, ids) == 2 * n * 8 * 4
    assert [row.output_shape for row in r.rows if row.path == "fc"] == [(2, n, 4)]


class Overwritten(nn.Module):
    """A mask of known values written in place by a call whose other operand is not known (it comes from
    the weights): its values are then unknown, and a branch on them needs the reading with values."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.big = nn.Linear(8, 8)
        self.small = nn.Linear(8, 2)

    def forward(self, ids):
        keep = (ids > 0).float()
        x = self.emb(ids)
        keep.mul_(x.mean(-1))  # keep's values now depend on the weights
        if keep.sum() > 0:
            return self.big(x)
        return self.small(x)


def test_a_known_value_written_by_an_unknown_one_is_read_with_values():
    ids = torch.tensor([[3, 1, 2, 4]])
    model = Overwritten()
    r = profile(model, ids)
    assert r.traced_with == VALUES
    assert r.total["macs"] == flop_macs(model, ids) in (4 * 8 * 8, 4 * 8 * 2)


class Counter(nn.Module):
    """An integer buffer written by the forward (a step counter), read back as a value."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.steps.add_(1)
        return self.fc(x) if int(self.steps) == 1 else self.fc(self.fc(x))


def test_an_integer_buffer_the_forward_writes_is_read_and_put_back():
    model = Counter()
    r = profile(model, (1, 4))
    assert r.traced_with == SHAPES
    assert int(model.steps) == 0  # put back
    assert r.total["macs"] == flop_macs(model, torch.zeros(1, 4)) == 16  # the oracle's forward sees steps == 1


class Tower(nn.Module):
    """A large part the forward does not run (a vision tower on a text-only input), beside a small one that
    it runs; the small one's child held in a plain list too, and a cache written by the parent into a child
    the forward never calls."""

    def __init__(self):
        super().__init__()
        self.tower = nn.Sequential(*[nn.Linear(8, 8) for _ in range(50)])
        self.rotary = nn.Module()
        self.rotary.register_buffer("cos", torch.ones(4))
        self.rotary.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)
        self.plain = [self.head]  # a list, not a ModuleList: reached only as an attribute of the parent

    def forward(self, x, use_tower=False):
        self.rotary.register_buffer("sin", torch.zeros(4))  # written into a module that is never called
        self.rotary.cos.add_(1)  # a float buffer: read as a shape, nothing written
        for b in self.buffers():  # an integer buffer reached by iterating, written for real: put back
            if not b.is_floating_point():
                b.add_(1)
        x = self.fc(x)
        if use_tower:
            x = self.tower(x)
        return self.plain[0](x)


def _swap_marks(model):
    return {name: "_call_impl" in vars(m) for name, m in model.named_modules()}


def test_a_forward_reaches_only_the_modules_it_uses_and_each_is_put_back():
    model = Tower()
    before = {name: (dict(vars(m)), {k: dict(v) for k, v in vars(m).items() if type(v) is dict})
              for name, m in model.named_modules()}
    r = profile(model, (3, 8))
    assert r.traced_with == SHAPES and r.exact
    assert [row.path for row in r.rows if row.macs] == ["fc", "head"]  # the list's module read as a module
    assert r.total["macs"] == flop_macs(Tower(), torch.zeros(3, 8)) == 3 * (64 + 16)
    assert r.total["params"] == numel(model)  # the tower's parameters are listed as read by nothing, counted
    assert r.unused_params == 50 * 72
    assert len(r.modules) == len(before)  # every module's type, reached or not
    assert not any(_swap_marks(model).values())
    for name, m in model.named_modules():  # the same attributes, the same dicts holding the same entries
        attributes, dicts = before[name]
        assert vars(m).keys() == attributes.keys() and all(vars(m)[k] is v for k, v in attributes.items()), name
        assert all(vars(m)[k] == v for k, v in dicts.items()), name
    assert "sin" not in model.rotary._buffers
    assert torch.equal(model.rotary.cos, torch.ones(4)) and int(model.rotary.steps) == 0


def test_the_modules_a_forward_reaches_by_iterating_are_read_as_modules():
    class Iterates(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
            self.named = nn.ModuleDict({"a": nn.Linear(4, 4), "b": nn.ReLU()})

        def forward(self, x):
            for block in self.blocks[1:]:
                x = block(x)
            for _, m in self.named.items():
                x = m(x)
            kids = dict(self._modules)["blocks"]
            return kids[0](x) + sum(1 for _ in self.modules())

    model = Iterates()
    r = profile(model, (2, 4))
    assert r.traced_with == SHAPES and r.exact
    assert [row.path for row in r.rows if row.macs] == ["blocks.1", "blocks.2", "named.a", "blocks.0"]
    assert r.total["macs"] == flop_macs(model, torch.zeros(2, 4)) == 4 * 2 * 16
    assert not any(_swap_marks(model).values())


def _quick_cases():
    import operator

    import torch.nn.functional as F

    from convcost.torch.events import Event
    from convcost.torch.rules import Tensor

    x, ids = Tensor((2, 4, 8, 6)), Tensor((3, 5), dtype=torch.int64)
    real = Tensor((4, 3), torch.arange(12.0).reshape(4, 3), dtype=torch.float32)
    idx, idx32 = Tensor((7,), dtype=torch.int64), Tensor((2, 3), dtype=torch.int32)
    weight = Tensor((10, 6), torch.zeros(10, 6, dtype=torch.float16))
    index = [Ellipsis, slice(None, 3), (Ellipsis, slice(3, None)), (slice(None), slice(None), None), 1, -2,
             (0, slice(1, None, 2)), (slice(None), -1, Ellipsis, 2), (None, Ellipsis, None), slice(10, 20),
             slice(-100, 100), (1, 2, 3, 4), (1, 2, 3, 4, 5), 2 ** 40, (Ellipsis, Ellipsis), slice(None, None, -1),
             idx, (slice(None), idx), (idx, Ellipsis), (slice(None), slice(None), idx32), (Ellipsis, idx),
             (idx, idx), [0, 1], True]
    cases = [Event("function", operator.getitem, (x, k), {}, "") for k in index]
    cases += [Event("method", "__getitem__", (real, (slice(None), 1)), {}, ""),
              Event("function", operator.getitem, (ids, (slice(None), idx)), {}, "")]
    for a, b in [(ids, 2), (ids, 2.5), (x, 3), (2, ids), (ids, Tensor((5,), dtype=torch.int32)),
                 (Tensor((3, 1), dtype=torch.int32), Tensor((), dtype=torch.int64)), (ids, x), (real, ids),
                 (Tensor((4,), dtype=torch.bool), 2), (ids, True)]:
        cases += [Event("function", operator.floordiv, (a, b), {}, ""), Event("function", operator.mod, (a, b), {}, "")]
    cases += [Event("method", "__floordiv__", (ids, 4), {}, ""), Event("method", "__rfloordiv__", (ids, 4), {}, ""),
              Event("function", torch.remainder, (ids, 3), {}, "")]
    for t in (x, ids, Tensor((4,), dtype=torch.bool), Tensor((4,), dtype=torch.int32), Tensor((), dtype=torch.int64)):
        cases += [Event("function", torch.cumsum, (t, 0), {}, ""), Event("method", "cumsum", (t, -1), {}, ""),
                  Event("function", torch.cumsum, (t,), {"dim": 0, "dtype": torch.int32}, ""),
                  Event("method", "cumprod", (t,), {"dim": 0}, "")]
    cases += [Event("function", torch.cumsum, (x, 4), {}, "")]
    cases += [Event("function", F.embedding, (ids, weight), {"padding_idx": None, "max_norm": None}, ""),
              Event("function", F.embedding, (idx32, weight), {}, ""),
              Event("function", F.embedding, (Tensor((3,), dtype=torch.int64), weight), {"padding_idx": 0}, "")]
    double = Tensor((4, 1), dtype=torch.float64)
    for a, b in [(x, x), (Tensor((4, 1)), Tensor((3,))), (double, double), (double, Tensor((4, 1))), (ids, ids),
                 (Tensor((2,), dtype=torch.float16), Tensor((2,), dtype=torch.float16)), (x, Tensor((5,)))]:
        cases.append(Event("function", torch.polar, (a, b), {}, ""))
    mask, complex_ = Tensor((8, 6), dtype=torch.bool), Tensor((4,), dtype=torch.complex64)
    for a, b in [(ids, 0), (x, 0.5), (x, Tensor((8, 1))), (ids, idx), (2, ids), (mask, True), (complex_, complex_),
                 (x, Tensor((5,))), (Tensor((4,), dtype=torch.float16), Tensor((4,), dtype=torch.float64))]:
        cases += [Event("function", f, (a, b), {}, "") for f in (operator.eq, torch.gt, torch.greater_equal)]
        cases.append(Event("method", "__lt__", (a, b), {}, ""))
    for f in (torch.zeros_like, torch.ones_like, torch.empty_like):
        cases += [Event("function", f, (t,), {}, "") for t in (x, ids, real)]
        cases.append(Event("function", f, (ids,), {"dtype": torch.float16}, ""))
    cases += [Event("function", torch.full_like, (t, v), {}, "") for t in (x, ids, mask) for v in (0, 1.5, True)]
    cases.append(Event("function", torch.ones_like, (x,), {"device": "meta"}, ""))
    cases += [Event("function", torch.zeros_like, (t,), {"dtype": torch.float32, "device": d}, "")
              for t in (x, ids) for d in ("cpu", torch.device("cpu"), torch.device("meta"), "cpu:0", 0, None)]
    empty = Tensor((3, 0, 2))
    for t in (x, ids, Tensor(()), Tensor((4,), dtype=torch.bool), complex_,
              empty, Tensor((5,), dtype=torch.float16)):
        for f in (torch.max, torch.min, "max", "min"):
            kind, fn = ("method", f) if isinstance(f, str) else ("function", f)
            cases += [Event(kind, fn, (t,), {}, ""), Event(kind, fn, (t, 0), {}, ""),
                      Event(kind, fn, (t,), {"dim": -1, "keepdim": True}, ""), Event(kind, fn, (t, 1, True), {}, ""),
                      Event(kind, fn, (t, -1), {"keepdim": False}, ""), Event(kind, fn, (t, 3), {}, ""),
                      Event(kind, fn, (t, t), {}, ""), Event(kind, fn, (t,), {"dim": 0, "keepdim": 1}, "")]
    row = Tensor((5,), dtype=torch.bool)
    for t, m, v in [(x, mask, 0.0), (x, Tensor((2, 1, 8, 1), dtype=torch.bool), -1e9), (ids, row, 0),
                    (ids, row, 0.5), (x, Tensor((3, 8, 6), dtype=torch.bool), 1),
                    (x, Tensor((8, 6), dtype=torch.int64), 1), (x, mask, Tensor((), torch.tensor(-1.0))),
                    (x, mask, Tensor((), torch.tensor(2.0, dtype=torch.float64), dtype=torch.float64))]:
        cases += [Event("method", "masked_fill", (t, m, v), {}, ""),
                  Event("function", torch.masked_fill, (t, m, v), {}, "")]
    for c, a, b in [(mask, x, 0.0), (mask, ids, 1), (mask, ids, 1.5), (Tensor((6,), dtype=torch.bool), x, x),
                    (mask, 1.0, 2.0), (Tensor((6,)), x, x), (mask, x, Tensor((5,))),
                    (mask, Tensor((8, 6), dtype=torch.float64), Tensor((1,), dtype=torch.float16))]:
        cases.append(Event("function", torch.where, (c, a, b), {}, ""))
    cases.append(Event("method", "where", (x, mask, 0.0), {}, ""))
    for t, n in [(ids, 4), (idx32, 4), (ids, -1), (ids, 0), (Tensor((2,), dtype=torch.float32), 3)]:
        cases += [Event("function", F.one_hot, (t, n), {}, ""),
                  Event("function", F.one_hot, (t,), {"num_classes": n}, "")]
    scores, half = Tensor((6, 5)), Tensor((3,), dtype=torch.float16)
    for t in (scores, ids, Tensor((4,), dtype=torch.bool), complex_, half, Tensor(())):
        cases += [Event("function", torch.topk, (t, 2), {"dim": -1}, ""), Event("method", "topk", (t, 3, 0), {}, ""),
                  Event("function", torch.topk, (t, 6), {}, ""), Event("function", torch.topk, (t, 2, 2), {}, ""),
                  Event("function", torch.sort, (t,), {}, ""),
                  Event("method", "sort", (t, 0), {"descending": True}, ""),
                  Event("function", torch.sort, (t,), {"dim": 3}, ""),
                  Event("function", torch.histc, (t,), {"bins": 4, "min": 0, "max": 3}, ""),
                  Event("method", "histc", (t, 5), {}, ""), Event("function", torch.histc, (t, 0), {}, ""),
                  Event("method", "repeat", (t, 2, 1), {}, ""), Event("method", "repeat", (t, (1, 2, 3)), {}, ""),
                  Event("method", "repeat", (t, 2), {}, "")]
    for t in (Tensor((3, 4, 2)), Tensor((3, 2), dtype=torch.float64), Tensor((3, 4)), half,
              Tensor((2,), dtype=torch.int64), complex_, Tensor((2, 3), dtype=torch.complex128)):
        cases += [Event("function", torch.view_as_complex, (t,), {}, ""),
                  Event("function", torch.view_as_real, (t,), {}, "")]
    return cases


@pytest.mark.parametrize("event", _quick_cases(), ids=lambda e: f"{e.label}")
def test_a_quick_output_is_what_the_meta_run_gives(event):
    """The oracle: the call run alone on meta tensors (PyTorch's own meta kernels), as the reading did before."""
    from convcost.torch.quick_outputs import quick_output
    from convcost.torch.walker import _on_meta_alone

    quick = quick_output(event)
    try:
        meta = _on_meta_alone(event)
    except Exception:  # noqa: BLE001 - PyTorch refuses it: the quick path must leave it to the meta run
        assert quick is None
        return
    if quick is not None and isinstance(meta, tuple):  # topk's and sort's values and indices
        assert type(quick) is type(meta)
        assert [(q.shape, q.dtype) for q in quick] == [(m.shape, m.dtype) for m in meta]
    elif quick is not None:
        assert (quick.shape, quick.dtype) == (meta.shape, meta.dtype)


def test_the_quick_outputs_answer_the_plain_cases():
    from convcost.torch.quick_outputs import quick_output

    answered = sum(quick_output(e) is not None for e in _quick_cases())
    assert answered >= 250  # (the rest left to the meta run: a refusal, an in-place write, a bool, a list index)


def test_the_tree_is_what_named_modules_and_named_parameters_give():
    from convcost.torch.tree import Tree, named_parameters

    shared = nn.Linear(3, 3)
    inner = nn.Sequential(shared, nn.ReLU(), nn.Sequential(nn.Linear(3, 3), shared))
    model = nn.ModuleDict({"a": inner, "b": nn.ModuleList([shared, inner, nn.Identity()])})
    model.register_module("empty", None)
    model.b[2].weight = model.a[2][0].weight  # a tied parameter, on a module that had none
    tree = Tree(model)
    assert list(tree.named.items()) == list(model.named_modules())
    assert tree.paths == {id(m): name for name, m in reversed(list(model.named_modules()))}
    assert named_parameters(tree.named) == list(model.named_parameters())


class Casts(nn.Module):
    """A cast to the dtype a tensor has is the tensor itself in PyTorch (``x.float() is x``), a cast to another
    one a copy; a forward may branch on which (as mixed-precision code does on ``is``)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        same = [x.float() is x, x.to(torch.float32) is x, x.to(dtype=torch.float32) is x, x.double() is x,
                x.to(torch.float64) is x, x.half().float() is x]
        y = self.fc(x)
        return y * 2 if same == [True, True, True, False, False, False] else y


@pytest.mark.parametrize("training", [False, True])
def test_a_cast_to_the_dtype_a_tensor_has_is_the_tensor_itself(training):
    model, x = Casts(), torch.randn(2, 8)
    assert model(x).grad_fn.name().startswith("Mul")  # what PyTorch does: the branch that doubles
    r = profile(model, (2, 8), training=training)
    assert [row.op for row in r.rows] == ["Linear", "mul"]
    assert r.total["macs"] == flop_macs(model, x) == 2 * 8 * 8
