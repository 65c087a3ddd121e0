"""Whole-model latency and latency in the analyses: hand-checked sums, every row costed, training steps,
the symbolic formula against the bound prediction, and break-even on latency wherever MACs has one."""

import json
import math

import pytest

from convcost import VARIANTS, SeparableConv, StandardConv, break_even, compare
from convcost.errors import ConvcostError
from convcost.frontdoor import predict_latency
from convcost.latency import BackwardCost, Machine, kernel_times
from convcost.latency_analysis import latency_formula
from convcost.model_latency import ModelLatency, predict_model
from convcost.primitives import Activation, Add, BatchNorm, Conv, Flatten, Linear
from convcost.report import Report, Row

ROOF = {"efficiency": {"dense_conv": 0.5}, "memory_efficiency": {"elementwise": 0.25}, "overhead": 2e-6}
MACHINE = Machine("toy", peak_flops=1e9, bandwidth=1e8, overhead=1e-6, view_overhead=5e-7,
                  efficiency={"dense_conv": 0.8}, memory_efficiency={"elementwise": 0.5},
                  training={"forward": ROOF, "backward": ROOF,
                            "optimizer": {"sgd": [1e-6, 1e-9], "adam": [2e-6, 3e-9]}})


def _rows():
    return [Row.of("features.conv", "Conv2d", Conv(C=3, O=8, K=3, bias=False), ((1, 3, 8, 8),)),
            Row.of("features.bn", "BatchNorm2d", BatchNorm(C=8), ((1, 8, 6, 6),)),
            Row.of("features.act", "ReLU", Activation("relu"), ((1, 8, 6, 6),)),
            Row.of("add", "add", Add(), ((1, 8, 6, 6), (1, 8, 6, 6))),
            Row.of("flatten", "Flatten", Flatten(), ((1, 8, 6, 6),)),
            Row.of("fc", "Linear", Linear(C=288, O=10), ((1, 288),))]


def test_every_row_costs_time_by_hand():
    lat = predict_model(Report(_rows()), MACHINE)
    assert [r.path for r in lat.rows] == [r.path for r in _rows()]
    assert all(r.seconds > 0 for r in lat.rows)  # moves and views included
    # conv: 8*6*6*3*9 = 7776 MACs -> 15552 FLOPs at 0.8 of 1 GFLOP/s; bytes 4*(192 + 288 + 216) = 2784 at 100 MB/s
    assert 8 * 6 * 6 * 3 * 9 == 7776 and 4 * (192 + 288 + 216) == 2784
    # (no memory efficiency of its own: the kind's efficiency, 0.8, slows both roofs)
    conv = 1e-6 + max(15552 / 1e9 / 0.8, 2784 / 1e8 / 0.8)
    # relu: 288 elements read and written (2304 bytes) at 0.5 of the bandwidth; 288 FLOPs
    relu = 1e-6 + max(288 / 1e9, 2304 / 1e8 / 0.5)
    assert lat.rows[0].seconds == pytest.approx(conv) and lat.rows[2].seconds == pytest.approx(relu)
    assert lat.rows[0].bound == "memory" and lat.rows[4].bound == "call"
    assert lat.rows[4].seconds == 5e-7  # flatten: a call that runs no kernel
    assert lat.seconds == pytest.approx(sum(r.seconds for r in lat.rows))


def test_a_network_call_adds_its_cold_overhead_per_kernel_at_inference_only():
    cold = {"dense_conv": 3e-6, "elementwise": 1e-6, "elementwise/BatchNorm": 2e-6, "linear": 4e-6}
    report, warm = Report(_rows()), MACHINE.replace(cold_overheads={})
    plain, network = predict_model(report, warm), predict_model(report, MACHINE.replace(cold_overheads=cold))
    extra = [b.seconds - a.seconds for a, b in zip(plain.rows, network.rows)]
    # conv, batch norm, relu, add: one kernel each; flatten: no kernel; fc: its kernels (the matmul and the bias)
    fc = len(kernel_times(Linear(C=288, O=10).cost((1, 288)), MACHINE))
    assert extra == pytest.approx([3e-6, 2e-6, 1e-6, 1e-6, 0.0, 4e-6 * fc])
    assert predict_model(report, MACHINE).seconds == pytest.approx(plain.seconds)  # MACHINE measured none


def test_by_module_sums_to_its_children_and_the_total():
    lat = predict_model(Report(_rows()), MACHINE)
    tree = lat.by_module()
    assert list(tree)[:4] == ["features", "features.conv", "features.bn", "features.act"]
    assert tree["features"] == pytest.approx(tree["features.conv"] + tree["features.bn"] + tree["features.act"])
    assert sum(v for k, v in tree.items() if "." not in k) == pytest.approx(lat.seconds)
    assert list(lat.by_module(depth=1)) == ["features", "add", "flatten", "fc"]
    with pytest.raises(ConvcostError, match="depth=0"):
        lat.by_module(depth=0)


def test_table_and_json():
    lat = predict_model(Report(_rows()), MACHINE)
    text = lat.table()
    assert "features.conv" in text and "Predicted latency" in text and "% time" in text
    data = json.loads(json.dumps(lat.as_dict()))
    assert data["seconds"] == pytest.approx(lat.seconds) and len(data["rows"]) == 6
    assert set(data["by_module"]) == set(lat.by_module())


def test_backward_work_of_a_kernel_by_hand():
    c = Conv(C=8, O=8, K=3).cost((1, 8, 10, 10))
    (_, kind, flops, moved, *_), = kernel_times(BackwardCost(c, 100), Machine("m", 1e9, 1e9))
    # 2 x 100 backward MACs + the forward's bias additions (8 x 8 x 8); twice the forward's bytes
    assert (kind, flops, moved) == ("dense_conv", 200 + 512, 2 * 4 * (800 + 512 + 576 + 8))


def torch_tests():
    return pytest.importorskip("torch")


def test_a_profiled_model_and_its_training_step():
    torch = torch_tests()
    from convcost.torch import profile

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10))
    report = profile(net, (2, 3, 8, 8))
    lat = predict_latency(report, MACHINE)
    assert isinstance(lat, ModelLatency) and not lat.training and len(lat.rows) == len(report.rows)
    step = predict_latency(profile(net, (2, 3, 8, 8), training=True), MACHINE, optimizer="adam")
    assert step.training and step.backward_seconds > 0
    # the update: 2e-6 per tensor and 3e-9 per parameter, 6 tensors (conv, bn and linear weight and bias)
    params = 8 * 27 + 8 + 16 + 2880 + 10
    assert step.optimizer_seconds == pytest.approx(6 * 2e-6 + params * 3e-9)
    assert step.seconds == pytest.approx(step.forward_seconds + step.backward_seconds + step.optimizer_seconds)
    assert "adam update" in step.summary()
    # a training step's factors were fitted without the cold call's extra time: it adds none there
    cold = MACHINE.replace(cold_overheads={"dense_conv": 1e-3, "elementwise": 1e-3, "linear": 1e-3})
    assert predict_latency(profile(net, (2, 3, 8, 8), training=True), cold, optimizer="adam").seconds == step.seconds
    assert predict_latency(report, cold).seconds > lat.seconds
    with pytest.raises(ConvcostError, match="unknown optimizer 'lion'"):
        predict_latency(profile(net, (2, 3, 8, 8), training=True), MACHINE, optimizer="lion")


def test_symbolic_report_is_refused():
    torch = torch_tests()
    import sympy

    from convcost.torch import profile

    H = sympy.Symbol("H", positive=True, integer=True)
    report = profile(torch.nn.Conv2d(3, 4, 3), (1, 3, H, H))
    with pytest.raises(ConvcostError, match="free symbols H"):
        predict_latency(report, MACHINE)


CACHED = Machine("cached", peak_flops=1e11, bandwidth=1e10, overhead=1e-6, efficiency={"depthwise_conv": 0.2},
                 memory_efficiency={"pointwise_conv": 0.5}, cache_bytes=2**20, cache_bandwidth=5e10,
                 alloc_threshold=2**22, alloc_bandwidth=2e9)


#: a value for every symbol the variants' costs have (channels divisible by the groups and ratios)
VALUES = {"C": 32, "O": 32, "H": 28, "W": 28, "N": 1, "K": 3, "G": 4, "T": 4, "M": 2, "r": 2, "s": 4, "e": 16,
          "t": 2, "S": 1, "P": 1, "D": 1, "d": 3}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_formula_is_the_bound_prediction(name):
    """The latency formula over symbols, bound, equals predict_latency of the bound cost (cache tier and fresh
    memory included)."""
    symbolic = VARIANTS[name]().cost()
    values = {s: VALUES.get(s.name, 2) for s in symbolic.free_symbols}
    bound = symbolic.subs(values)
    assert not bound.free_symbols
    at = latency_formula(symbolic, CACHED).subs(values)
    assert float(at) == pytest.approx(predict_latency(bound, CACHED).seconds, rel=1e-9)


def test_compare_on_latency_and_its_errors():
    m = Machine("toy", peak_flops=1e11, bandwidth=1e10, efficiency={"depthwise_conv": 0.1}, overhead=1e-6)
    c = compare(StandardConv, SeparableConv, metric="latency", machine=m, C=64, O=64, K=3, P=1, H=56, W=56)
    a = predict_latency(StandardConv(C=64, O=64, K=3, P=1, H=56, W=56), m).seconds
    b = predict_latency(SeparableConv(C=64, O=64, K=3, P=1, H=56, W=56), m).seconds
    assert float(c.value_a) == pytest.approx(a) and float(c.value_b) == pytest.approx(b)
    assert c.cheaper == "B" and c.metric == "latency"
    with pytest.raises(ConvcostError, match="needs machine="):
        compare(StandardConv, SeparableConv, metric="latency", C=64)
    with pytest.raises(ConvcostError, match="machine= is for metric='latency'"):
        compare(StandardConv, SeparableConv, metric="macs", machine=m, C=64)


def test_latency_break_even_cases_agree_with_the_exact_condition():
    m = Machine("toy", peak_flops=1e11, bandwidth=1e10, efficiency={"depthwise_conv": 0.1}, overhead=1e-6)
    be = break_even(StandardConv, SeparableConv, metric="latency", machine=m, solve_for="C", O=64, K=3, P=1, H=56,
                    W=56)
    assert be.metric == "latency" and be.cases
    for channels in (1, 2, 3, 8, 9, 10, 64, 512):
        a = predict_latency(StandardConv(C=channels, O=64, K=3, P=1, H=56, W=56), m).seconds
        b = predict_latency(SeparableConv(C=channels, O=64, K=3, P=1, H=56, W=56), m).seconds
        assert be.holds(C=channels) == (b <= a)
        # exactly one case's bounds hold, and its condition says the same
        live = [case for case in be.cases if all(bool(r.subs({be.symbol: channels})) for r in case.bounds)]
        assert len(live) >= 1 and all(bool(case.condition.subs({be.symbol: channels})) == (b <= a) for case in live)
    changes = be.threshold_at()
    assert all(be.holds(C=t) != be.holds(C=t - 1) for t in changes)


#: a machine without a cache tier or fresh-memory cost: the all-pairs test's (the formula test covers those)
PLAIN = Machine("plain", peak_flops=1e11, bandwidth=1e10, overhead=1e-6, efficiency={"depthwise_conv": 0.2},
                memory_efficiency={"pointwise_conv": 0.5})


def _macs_pairs():
    import itertools

    return list(itertools.combinations(VARIANTS, 2))


@pytest.mark.parametrize("a, b", _macs_pairs())
def test_latency_break_even_answers_wherever_macs_does(a, b):
    """Every pair of variants has a latency break-even solved for C, whose exact condition can be evaluated,
    unless the MACs break-even has none either (then both refuse: the pair does not depend on C)."""
    try:
        be = break_even(VARIANTS[a], VARIANTS[b], metric="latency", machine=PLAIN, solve_for="C")
    except ConvcostError:
        with pytest.raises(ConvcostError):
            break_even(VARIANTS[a], VARIANTS[b], metric="macs", solve_for="C")
        return
    assert be.metric == "latency" and be.symbol.name == "C"
    assert isinstance(be.holds(**{s.name: _value(s.name) for s in be.variables}), bool)


def _value(name):
    return {"C": 32, "O": 32, "K": 3, "H": 28, "W": 28, "N": 1, "G": 4, "T": 4}.get(name, 2)


def test_machine_fields_round_trip_and_are_checked(tmp_path):
    path = tmp_path / "m.json"
    MACHINE.save(path)
    assert Machine.load(path) == MACHINE
    with pytest.raises(ConvcostError, match="training\\['forward'\\]"):
        Machine("m", 1e9, 1e9, training={"forward": {"efficiency": {}}})
    with pytest.raises(ConvcostError, match="memory_efficiency\\['linear'\\]=0"):
        Machine("m", 1e9, 1e9, memory_efficiency={"linear": 0})
    assert not math.isnan(MACHINE.roof("backward").overhead)


def test_cli_latency_metric_and_profile_latency(tmp_path, capsys):
    from convcost.cli import main

    path = tmp_path / "m.json"
    MACHINE.save(path)
    assert main(["compare", "StandardConv", "SeparableConv", "C=64", "O=64", "K=3", "H=56", "W=56",
                 "--metric", "latency", "--machine", str(path)]) == 0
    assert capsys.readouterr().out.startswith("latency: A = StandardConv")
    assert main(["breakeven", "StandardConv", "SeparableConv", "O=64", "K=3", "H=56", "W=56", "--metric", "latency",
                 "--solve-for", "C", "--machine", str(path)]) == 0
    assert "cases" in capsys.readouterr().out
    torch_tests()
    assert main(["profile", "torch.nn:ReLU", "--input", "1,3,8,8", "--latency", "--machine", str(path)]) == 0
    assert "Predicted latency" in capsys.readouterr().out
    assert main(["profile", "torch.nn:ReLU", "--input", "1,3,8,8", "--latency", "--machine", str(path),
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["latency"]["seconds"] > 0


def test_a_backward_kernel_reads_what_the_forward_saved_at_no_more_than_the_bandwidth():
    # a backward timed alone from cache (memory efficiency 4: four times the bandwidth) gains nothing in a step
    # past the bandwidth; at efficiency 0.25 it is slower than the floor and keeps its own time
    torch = torch_tests()
    from convcost.latency import Roof
    from convcost.model_latency import backward_seconds
    from convcost.torch import profile

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10))
    report = profile(net, (1, 3, 8, 8), training=True)

    def step(efficiency):
        roof = dict(ROOF, memory_efficiency={"elementwise": efficiency})
        m = MACHINE.replace(training={"forward": ROOF, "backward": roof, "optimizer": MACHINE.training["optimizer"]})
        return {r.op: r for r in predict_model(report, m).rows}

    fast, at_one, slow = step(4.0), step(1.0), step(0.25)
    for op in ("BatchNorm2d", "ReLU"):
        assert fast[op].backward == pytest.approx(at_one[op].backward) and slow[op].backward > at_one[op].backward
    assert fast["Conv2d"].backward == at_one["Conv2d"].backward  # no elementwise factor: as it was
    # by hand: a ReLU's backward on 288 elements moves 2 x 4 x (288 + 288) bytes at 1e8 B/s, after its 2 us call
    relu = Activation("relu").cost((1, 8, 6, 6))
    (_, kind, _, moved, compute, memory, _), = kernel_times(BackwardCost(relu), MACHINE)
    assert moved == 2 * 4 * (288 + 288)
    floor = 2e-6 + moved / 1e8
    assert backward_seconds(Roof({}, {"elementwise": 4.0}, 2e-6), MACHINE, kind, compute, memory, moved) == floor
    assert fast["ReLU"].backward == pytest.approx(floor)
