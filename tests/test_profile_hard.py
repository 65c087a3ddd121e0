"""profile() on models written to be hard: each checked against numel and FlopCounterMode // 2 (on meta)."""

import math
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convcost.errors import ConvcostError
from convcost.testing import EINSUM_CASES
from convcost.torch import runtime
from convcost.torch.bindings.matmul import EinsumProduct
from convcost.torch.measure_forward import measure
from convcost.torch.profiling import profile


def flop_macs(model, *inputs, **kwargs):
    """The oracle, run here on meta copies: FlopCounterMode total // 2 (independent of convcost)."""
    from torch.utils.flop_counter import FlopCounterMode

    state = {n: torch.empty_like(t, device="meta") for n, t in model.state_dict(keep_vars=True).items()}
    meta = [torch.empty_like(x, device="meta") for x in inputs]
    with FlopCounterMode(display=False) as c, torch.no_grad():
        torch.func.functional_call(model.eval(), state, tuple(meta), {k: v.to("meta") for k, v in kwargs.items()})
    return c.get_total_flops() // 2


def numel(model):
    return sum(p.numel() for p in model.parameters())


def exact(model, *inputs, **kwargs):
    r = profile(model, list(inputs) if len(inputs) > 1 else inputs[0], kwargs=kwargs or None)
    assert r.exact, r.unsupported
    assert r.total["params"] == numel(model)
    assert r.total["macs"] == flop_macs(model, *inputs, **kwargs)
    if r.traced_with == "shape propagation" and not kwargs:  # the reading that sees every call agrees
        from convcost.torch.inputs import model_inputs
        from convcost.torch.trace_calls import read_calls

        given = model_inputs(model, list(inputs) if len(inputs) > 1 else inputs[0])
        calls = read_calls(model, given)[0].rows
        assert [(x.path, x.params, x.macs, x.output_shape, x.spec) for x in r.rows] == \
            [(x.path, x.params, x.macs, x.output_shape, x.spec) for x in calls]
    return r


class SameConv(nn.Conv2d):
    """A Conv2d subclass that pads 'same' in its forward, then calls F.conv2d (timm's Conv2dSame)."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        ph = max((math.ceil(ih / self.stride[0]) - 1) * self.stride[0] + kh - ih, 0)
        pw = max((math.ceil(iw / self.stride[1]) - 1) * self.stride[1] + kw - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ShapeFlow(nn.Module):
    """Python control flow on shapes (fx cannot trace it) and a channel check."""

    def __init__(self):
        super().__init__()
        self.small, self.big = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 16, 1)
        self.stem = SameConv(3, 8, 3, stride=2)

    def forward(self, x):
        x = self.stem(x)
        if x.shape[-1] > 8:
            x = self.big(self.small(x))
        return x


class Attention(nn.Module):
    """Attention through bmm, softmax and a scale, then SDPA and einsum."""

    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), heads

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        q, k, v = (t.reshape(b * self.heads, n, -1) for t in (q, k, v))
        a = torch.bmm(q, k.transpose(1, 2)) * (c // self.heads) ** -0.5
        y = torch.bmm(a.softmax(-1), v)
        y = F.scaled_dot_product_attention(y, k, v) + torch.einsum("bnd,bmd->bnm", y, k) @ v
        return self.proj(y.reshape(b, self.heads, n, -1).transpose(1, 2).reshape(b, n, c))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Linear(5, 4)

    def forward(self, image, vector, scale=None):
        y = self.a(image).mean((2, 3)) + self.b(vector)
        return y if scale is None else y * scale


class Unpool(nn.Module):
    """Pool indices into an unpool (torchinfo's autoencoder)."""

    def __init__(self):
        super().__init__()
        self.enc, self.pool = nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2, return_indices=True)
        self.unpool, self.dec = nn.MaxUnpool2d(2), nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        y, idx = self.pool(self.enc(x))
        return self.dec(self.unpool(y, idx))


class Products(nn.Module):
    """addmm, baddbmm, matmul with a broadcast batch on both sides, a vector product."""

    def __init__(self):
        super().__init__()
        self.w, self.bias = nn.Parameter(torch.zeros(6, 7)), nn.Parameter(torch.zeros(7))
        self.m = nn.Parameter(torch.zeros(3, 1, 5, 6))

    def forward(self, x):  # x: (4, 6)
        y = torch.addmm(self.bias, x, self.w)  # (4, 7)
        z = torch.baddbmm(torch.zeros(2, 4, 4), y.expand(2, 4, 7), y.t().expand(2, 7, 4))
        return torch.matmul(self.m, x.t()[None]).sum() + z.sum() + (x @ x[0]).sum()


@pytest.mark.parametrize("model, inputs", [
    (nn.Sequential(SameConv(3, 8, 3, stride=2), nn.ReLU(), SameConv(8, 4, 5)), [(1, 3, 17, 19)]),
    (ShapeFlow(), [(2, 3, 32, 32)]),
    (ShapeFlow(), [(2, 3, 8, 8)]),
    (Attention(), [(2, 5, 16)]),
    (TwoInputs(), [(2, 3, 8, 8), (2, 5)]),
    (Unpool(), [(1, 3, 16, 16)]),
])
def test_hard_models_are_exact(model, inputs):
    exact(model, *(torch.zeros(s) for s in inputs))


def test_vector_product_counted_where_flopcountermode_misses_it():
    r = profile(Products(), (4, 6))
    assert r.exact
    addmm, baddbmm = 4 * 6 * 7, 2 * 4 * 7 * 4
    broadcast = 3 * 5 * 6 * 4  # (3, 1, 5, 6) @ (1, 6, 4): batch (3, 1), (5 x 6) @ (6 x 4)
    vector = 4 * 6  # (4, 6) @ (6,): aten.mv, which FlopCounterMode does not count
    assert r.total["macs"] == addmm + baddbmm + broadcast + vector
    assert flop_macs(Products(), torch.zeros(4, 6)) == addmm + baddbmm + broadcast  # its blind spot


def test_pool_indices_keep_the_layers_after_them():
    r = profile(Unpool(), (1, 3, 16, 16))
    assert [row.path for row in r.rows] == ["enc", "pool", "unpool.max_unpool2d", "dec"]
    assert r.rows[-1].output_shape == (1, 3, 16, 16)


def test_inputs_as_pytorch_takes_them():
    conv = nn.Conv2d(3, 8, 3)
    unbatched = profile(conv, (3, 10, 10))
    assert unbatched.total["macs"] == flop_macs(conv, torch.zeros(3, 10, 10)) == 8 * 27 * 64
    assert profile(conv, torch.zeros(3, 10, 10, dtype=torch.float64)).total["macs"] == 8 * 27 * 64
    two = profile(TwoInputs(), (torch.zeros(2, 3, 8, 8), torch.zeros(2, 5)), kwargs={"scale": torch.ones(4)})
    assert two.total["macs"] == flop_macs(TwoInputs(), torch.zeros(2, 3, 8, 8), torch.zeros(2, 5))
    assert two.input_shapes == ((2, 3, 8, 8), (2, 5), (4,))
    with pytest.raises(ConvcostError, match="PyTorch rejects input.*expected input.*to have 3 channels"):
        profile(conv, (1, 4, 10, 10))
    with pytest.raises(ConvcostError, match="PyTorch rejects input"):
        profile(conv, (10, 10))


def test_lstm_with_an_empty_shape_is_refused():
    with pytest.raises(ConvcostError):
        profile(nn.LSTM(4, 4), ())


def test_measure_of_multihead_attention_quotes_torch():
    with pytest.raises(ConvcostError, match="PyTorch rejects input"):
        measure(nn.MultiheadAttention(8, 2), (2, 8))


def test_tree_sums_to_parents_and_total():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()),
                          nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU()), nn.Flatten(), nn.LazyLinear(4))
    model(torch.zeros(1, 3, 12, 12))
    r = profile(model, (1, 3, 12, 12))
    tree = r.by_module()
    top = [k for k in tree if "." not in k]
    for metric in ("params", "macs", "norm_ops", "memory_access"):
        assert sum(tree[k][metric] for k in top) == r.total[metric]
        for parent in tree:
            kids = [k for k in tree if k.startswith(parent + ".") and k.count(".") == parent.count(".") + 1]
            if kids:
                assert sum(tree[k][metric] for k in kids) == tree[parent][metric]
    assert list(r.by_module(depth=1)) == ["0", "1", "2", "3"]
    text = r.table(depth=2, width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "0.0" in text and "%" in text and "K" in text
    assert "<table>" in r._repr_html_()


def test_headline_of_other_tools_on_a_bare_layer():
    conv = nn.Conv2d(3, 8, 3)
    r = profile(conv, (1, 3, 10, 10), convention="thop")
    assert r.headline() == 8 * 27 * 64  # thop: output elements x taps x C/G
    assert r.headline("torch") == 2 * 8 * 27 * 64


def test_state_is_left_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Dropout())
    model.train()
    model[1].eval()  # mixed flags
    model[0].weight.requires_grad_(False)
    before = [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]
    count = model[1].num_batches_tracked.clone()
    profile(model, (1, 3, 8, 8))
    profile(Untraceable := ShapeFlow(), (1, 3, 32, 32))  # noqa: F841
    measure(model, (1, 3, 8, 8))
    assert ([m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]) == before
    assert torch.equal(model[1].num_batches_tracked, count) and torch.is_grad_enabled()
    from torch.nn.modules import module as hooks

    assert not hooks._global_forward_hooks and not hooks._global_forward_pre_hooks


THREADS = textwrap.dedent("""
    import threading, torch.nn as nn, torch
    from convcost.torch import profile
    from tests.test_profile_hard import ShapeFlow, Attention, Unpool, TwoInputs

    def models():
        return [(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4)), (1, 3, 8, 8)),
                (nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)), (2, 3, 6, 6)),
                (ShapeFlow(), (1, 3, 32, 32)), (Attention(), (2, 5, 16)), (Unpool(), (1, 3, 8, 8)),
                (nn.Sequential(nn.Linear(5, 6), nn.GELU()), (3, 5)), (ShapeFlow(), (1, 3, 8, 8)),
                (nn.Sequential(nn.Conv2d(3, 3, 3, groups=3), nn.AdaptiveAvgPool2d(1)), (1, 3, 9, 9))]

    def answer(r):
        return (r.total["params"], r.total["macs"], r.total["act_ops"], r.total["norm_ops"], r.exact)

    jobs = models()
    results, errors = [None] * len(jobs), []
    start = threading.Barrier(len(jobs))

    def work(i):
        try:
            start.wait()
            results[i] = answer(profile(*jobs[i]))
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    alone = [answer(profile(m, s)) for m, s in models()]
    assert not errors, errors
    assert results == alone, (results, alone)
    print("ok")
""")


@pytest.mark.parametrize("attempt", range(3))
def test_threads_on_cold_caches_agree_with_one_thread(attempt):
    done = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "ok", done.stderr[-3000:]


@pytest.mark.parametrize("equation, shapes", EINSUM_CASES)
def test_einsum_counts_as_flopcountermode(equation, shapes):
    tensors = [torch.zeros(s) for s in shapes]
    r = profile(EinsumProduct(equation), tensors)
    assert r.exact and r.total["macs"] == flop_macs(EinsumProduct(equation), *tensors)


@pytest.mark.parametrize("options", [{}, {"bias": False}, {"kdim": 6, "vdim": 4}, {"add_bias_kv": True},
                                     {"add_zero_attn": True}])
def test_multihead_attention_is_exact(options):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True, **options)

        def forward(self, x, k, v):
            return self.attn(x, k, v)[0]

    x, k, v = torch.zeros(2, 5, 8), torch.zeros(2, 7, options.get("kdim", 8)), torch.zeros(2, 7, options.get("vdim", 8))
    exact(Block(), x, k, v)


def test_an_unknown_call_that_may_multiply_is_listed_and_not_exact():
    class Bilinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Bilinear(4, 5, 3)

        def forward(self, x):
            return self.b(x, x[:, :5] if x.shape[1] > 5 else torch.cat([x, x], 1)[:, :5])

    r = profile(Bilinear(), (2, 4))
    assert not r.exact and [u.op for u in r.unsupported if u.macs] == ["F.bilinear"]
    assert r.total["params"] == numel(Bilinear())
    assert "NOT EXACT" in r.table()


def test_sdpa_by_hand_where_flopcountermode_on_cpu_counts_nothing():
    class Sdpa(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    from torch.utils.flop_counter import FlopCounterMode

    q, k, v = torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 7, 4), torch.zeros(2, 3, 7, 6)
    assert profile(Sdpa(), [q, k, v]).total["macs"] == 2 * 3 * 5 * 7 * (4 + 6)  # Q K^T and A V, by hand
    v = torch.zeros(2, 3, 7, 4)
    assert profile(Sdpa(), [q, k, v]).total["macs"] == 2 * 3 * 5 * 7 * (4 + 4)
    with FlopCounterMode(display=False) as c:
        Sdpa()(q, k, v)
    # the CPU's flash kernel: FlopCounterMode's blind spot before torch 2.15 (on meta it agrees)
    assert c.get_total_flops() == (2 * 2 * 3 * 5 * 7 * (4 + 4) if runtime.flop_counter().fused_attention else 0)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(x) + x)


def three_readings(model, inputs):
    """The rows of each reading of ``model``: fx's graph walk, the forward on shapes, every call on meta."""
    from convcost.torch.inputs import model_inputs
    from convcost.torch.trace_calls import read_calls
    from convcost.torch.trace_fx import read_graph, trace
    from convcost.torch.trace_shapes import read_shapes

    given = model_inputs(model, inputs)
    model.eval()
    records = {"fx": read_graph(model, given, trace(model, given)), "shapes": read_shapes(model, given),
               "values": read_shapes(model, given, with_values=True), "calls": read_calls(model, given)[0]}
    # the operation's label may differ (``x + y`` is ``add`` in a graph, ``Tensor.add`` to a TorchFunctionMode)
    return {name: [(r.path, r.params, r.macs, r.output_shape, r.spec) for r in record.rows]
            for name, record in records.items()}


@pytest.mark.parametrize("untraceable", [False, True])
def test_every_reading_gives_the_same_rows_and_paths(untraceable):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(Block(), Block())

        def forward(self, x):
            if untraceable and x.sum() > -1:  # reads a value: neither fx nor shapes alone can run it
                x = x * 1.0
            return self.blocks(x)

    r = profile(Net(), (1, 4, 8, 8))
    assert r.traced_with == ("shape propagation with values" if untraceable else "shape propagation"), r.traced_with
    paths = [row.path for row in r.rows]
    expected = ["blocks.0.conv", "blocks.0.add", "blocks.0.relu", "blocks.1.conv", "blocks.1.add", "blocks.1.relu"]
    assert paths[-6:] == expected
    assert list(r.by_module(depth=2))[-3:] == ["blocks", "blocks.0", "blocks.1"]
    if not untraceable:
        rows = three_readings(Net(), (1, 4, 8, 8))
        assert rows["fx"] == rows["shapes"] == rows["values"] == rows["calls"]


def test_shape_control_flow_runs_on_shapes():
    class Padded(nn.Module):  # fx cannot trace Python control flow on a size; a shape runs it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            if x.shape[-1] % 8:
                x = F.pad(x, (0, 8 - x.shape[-1] % 8))
            return self.conv(x)

    r = exact(Padded(), torch.zeros(1, 3, 10, 10))
    assert r.traced_with == "shape propagation"
    assert r.rows[-1].output_shape == (1, 4, 8, 14)


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Conv2d(3, 8, 3), nn.MaxPool2d(2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.PixelShuffle(2)),
    nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2), nn.InstanceNorm2d(4, affine=True), nn.AvgPool2d(2)),
])
def test_unbatched_inputs_wherever_the_layers_take_them(model):
    r = exact(model, torch.zeros(3, 12, 12))
    assert r.complete, r.unsupported


def test_functional_pool_indices_into_unpool():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y, idx = F.max_pool2d(self.conv(x), 2, return_indices=True)
            return self.conv(F.max_unpool2d(y, idx, 2)[:, :3])

    r = exact(Net(), torch.zeros(1, 3, 8, 8))
    assert r.complete and r.traced_with == "shape propagation", (r.unsupported, r.traced_with)
    rows = three_readings(Net(), torch.zeros(1, 3, 8, 8))
    assert rows["fx"] == rows["shapes"] == rows["values"] == rows["calls"]


class ShapesAlone(nn.Module):
    """What the forward on shapes must answer without a kernel: tuples from attention and max, a bool mask
    built in the forward, an item assignment, tensor properties, a leaf whose reader declines it."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.weights = nn.MultiheadAttention(8, 2)
        self.up = nn.Upsample(scale_factor=1.5, mode="bilinear")  # not one integer factor: read by its calls
        self.conv = nn.Conv2d(2, 4, 3, padding=1)

    def forward(self, x):  # x: (B, L, 8)
        assert not x.is_nested and x.layout == torch.strided
        y, _ = self.attn(x, x, x, need_weights=False)
        t = y.transpose(0, 1)
        z, scores = self.weights(t, t, t, average_attn_weights=False)  # scores: (B, heads, L, L)
        mask = scores.new_zeros(scores.shape)
        mask[:, :, 0] = 1
        scores = scores.masked_fill(mask != 0, -1.0)
        best = scores.max(-1)
        grid = self.up(best.values[:, :, :4].reshape(scores.shape[0], 2, 2, 2))
        return self.conv(grid).sum() + z.sum() + best[0].sum()


def test_the_forward_on_shapes_answers_what_python_asks():
    r = exact(ShapesAlone(), torch.zeros(3, 6, 8))
    assert r.traced_with == "shape propagation", r.notes
    attention = [row.output_shape for row in r.rows if row.op == "F.multi_head_attention_forward"]
    assert attention == [(6, 3, 8), (6, 3, 8)]  # batch_first is the module's transpose around the function
    assert any(row.path.startswith("up.") for row in r.rows)  # bilinear: read by what it calls


def test_a_forward_that_caches_a_shape_leaves_the_model_as_it_was():
    class Cached(nn.Module):  # convit and others cache a tensor built from the input in their forward
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.scale = None

        def forward(self, x):
            if self.scale is None or self.scale.shape != x.shape[-2:]:
                self.scale = x.new_ones(x.shape[-2:])
            return self.conv(x * self.scale)

    from convcost.torch.inputs import model_inputs
    from convcost.torch.trace_calls import read_calls

    model = Cached()
    r = profile(model, (1, 3, 6, 6))
    assert r.traced_with == "shape propagation" and r.total["macs"] == 4 * 6 * 6 * 3 * 3 * 3  # by hand
    assert model.scale is None
    read_calls(model, model_inputs(model, (1, 3, 6, 6)))  # the meta reading's cache is undone too
    assert model.scale is None
    assert model(torch.ones(1, 3, 6, 6)).shape == (1, 4, 6, 6)  # still runs for real


class Recurrent(nn.Module):
    def __init__(self, input_size, hidden, layers, bias, batch_first, bidirectional, proj):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden, num_layers=layers, bias=bias, batch_first=batch_first,
                           bidirectional=bidirectional, proj_size=proj)

    def forward(self, x):
        y, (h, c) = self.rnn(x)
        return y.sum() + h.sum() + c.sum()


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 6), st.integers(2, 7), st.integers(1, 3), st.booleans(), st.booleans(), st.booleans(),
       st.integers(0, 3), st.integers(1, 4), st.sampled_from([None, 1, 3]))
def test_lstm(input_size, hidden, layers, bias, batch_first, bidirectional, proj, steps, batch):
    proj = min(proj, hidden - 1)
    model = Recurrent(input_size, hidden, layers, bias, batch_first, bidirectional, proj)
    shape = (steps, input_size) if batch is None else (batch, steps, input_size) if batch_first else (steps, batch,
                                                                                                      input_size)
    exact(model, torch.zeros(shape))  # params == numel, MACs == FlopCounterMode // 2


class _SelectedRows(nn.Module):
    """A layer on the rows a mask keeps: ``masked_select``'s size is the mask's count, which meta tensors
    cannot give, and convcost has no rule for it (it moves values, no arithmetic)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, mask):
        return self.fc(torch.masked_select(x, mask).reshape(-1, 4))


def test_a_call_sized_by_values_is_read_with_values_not_call_by_call():
    from torch.utils.flop_counter import FlopCounterMode

    from convcost.torch.measure_training import measure_training

    x, mask = torch.ones(3, 4), torch.tensor([[True] * 4, [False] * 4, [True] * 4])
    model = _SelectedRows()
    report = profile(model, (x, mask))
    with FlopCounterMode(display=False) as counter:
        model(x, mask)
    assert report.traced_with == "shape propagation with values"  # the size from the call run on the values
    assert (report.total["macs"], report.exact) == (counter.get_total_flops() // 2, True) == (2 * 4 * 3, True)
    step = profile(model, (x, mask), training=True)
    measured = measure_training(model, (x, mask))
    assert step.traced_with == "shape propagation with values"
    # masked_select copies (2 kept rows of 4): the linear layer keeps that copy, not the 12 inputs it came from
    assert (step.training.backward_macs, step.training.saved_elements) == (
        measured["backward_macs"], measured["saved_elements"]) == (24, 8)
    x.requires_grad_(True)  # now masked_select is in the backward: what it keeps (the mask) is not known
    step = profile(model, (x, mask), training=True).training
    assert step.untracked and not step.complete
