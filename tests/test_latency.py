"""The roofline latency model: hand-checked roofline arithmetic, bound selection, fitting, errors, JSON."""

import json
import math

import pytest

from convcost import DepthwiseConv, GroupedConv, PointwiseConv, SeparableConv, SqueezeExcitation, StandardConv, cost
from convcost.errors import ConvcostError
from convcost.latency import KINDS, Machine, fit, kind_of, nnls, predict_latency, primitives
from convcost.primitives import (
    Activation,
    Add,
    AvgPool,
    BatchNorm,
    ChannelShuffle,
    Conv,
    ConvTranspose,
    Linear,
    MaxPool,
    PixelShuffle,
)

ROUND = Machine("round", peak_flops=1e9, bandwidth=1e8)  # ridge at 10 FLOP/byte


def test_roofline_compute_bound_by_hand():
    # 1x1 conv, 100 -> 100 channels, 10x10, no bias: 100*100*100 MACs = 2e6 FLOPs;
    # bytes = 4 * (100*100 in + 100*100 out + 100*100 weights) = 120000
    layer = PointwiseConv(C=100, O=100, H=10, W=10, bias=False)
    assert 2 * 100 * 100 * 100 == 2_000_000 and 4 * 3 * 100 * 100 == 120_000
    est = predict_latency(layer, ROUND)
    assert (est.flops, est.bytes) == (2_000_000, 120_000)
    assert est.bound == "compute" and est.kernels[0].bound == "compute"
    assert est.seconds == pytest.approx(2e6 / 1e9)  # compute roof: 2 ms, above 1.2 ms of memory
    assert est.roofline_seconds == pytest.approx(2e-3)
    assert est.intensity == pytest.approx(2e6 / 120_000)


def test_roofline_memory_bound_by_hand():
    # ReLU on 1000 elements: 1000 FLOPs, 8000 bytes; memory 80 us > compute 1 us
    est = predict_latency(Activation("relu").cost((1, 10, 10, 10)), ROUND)
    assert (est.flops, est.bytes, est.bound) == (1000, 8000, "memory")
    assert est.seconds == pytest.approx(8000 / 1e8)


def test_efficiency_and_overhead_apply_per_kernel():
    m = ROUND.replace(efficiency={"depthwise_conv": 0.5, "pointwise_conv": 0.25}, overhead=1e-6)
    layer = SeparableConv(C=16, O=32, K=3, P=1, H=8, W=8)
    base = predict_latency(layer, ROUND)
    est = predict_latency(layer, m)
    dw, pw = base.kernels
    assert [k.kind for k in est.kernels] == ["depthwise_conv", "pointwise_conv"]
    expected = 2e-6 + max(dw.compute_seconds, dw.memory_seconds) / 0.5 + max(pw.compute_seconds,
                                                                             pw.memory_seconds) / 0.25
    assert est.seconds == pytest.approx(expected)
    assert est.flops == base.flops and est.roofline_seconds == base.roofline_seconds


def test_bound_follows_the_ridge():
    # the same layer switches bound when bandwidth grows 100x
    layer = PointwiseConv(C=64, O=64, H=56, W=56)
    assert predict_latency(layer, Machine("slow-memory", 1e12, 1e9)).bound == "memory"
    assert predict_latency(layer, Machine("fast-memory", 1e12, 1e11)).bound == "compute"
    assert Machine("r", 1e12, 1e11).ridge == pytest.approx(10)


def test_dtype_scales_bytes_only():
    layer = StandardConv(C=8, O=8, K=3, H=16, W=16)
    f32, f16 = predict_latency(layer, ROUND, "float32"), predict_latency(layer, ROUND, "float16")
    assert f32.bytes == 2 * f16.bytes and f32.flops == f16.flops
    with pytest.raises(ConvcostError, match="unknown dtype 'float8'"):
        predict_latency(layer, ROUND, "float8")


@pytest.mark.parametrize(
    "layer, shape, kind",
    [
        (Conv(C=16, O=16, K=3), (1, 16, 8, 8), "dense_conv"),
        (Conv(C=16, O=32, K=1), (1, 16, 8, 8), "pointwise_conv"),
        (Conv(C=16, O=16, K=3, G=16), (1, 16, 8, 8), "depthwise_conv"),
        (Conv(C=16, O=32, K=3, G=16), (1, 16, 8, 8), "depthwise_conv"),  # depth multiplier 2
        (Conv(C=16, O=16, K=1, G=4), (1, 16, 8, 8), "grouped_conv"),
        (Conv(C=4, O=4, K=3, dims=3), (1, 4, 4, 8, 8), "conv3d"),
        (ConvTranspose(C=8, O=4, K=2, S=2), (1, 8, 4, 4), "transposed_conv"),
        (Linear(C=8, O=4), (2, 8), "linear"),
        (BatchNorm(C=8), (1, 8, 4, 4), "elementwise"),
        (MaxPool(K=3, S=2, P=1), (1, 8, 8, 8), "pooling"),
        (PixelShuffle(2), (1, 8, 4, 4), "data_movement"),
        (ChannelShuffle(2), (1, 8, 4, 4), "data_movement"),
    ],
)
def test_kinds(layer, shape, kind):
    assert kind_of(layer.cost(shape)) == kind


def test_views_cost_nothing_and_composites_walk_to_primitives():
    c = cost(SqueezeExcitation, C=32, r=4, H=8, W=8)
    names = [name for name, _ in primitives(c)]
    assert names == ["identity", "gate.squeeze", "gate.fc1", "gate.relu", "gate.fc2", "gate.sigmoid", "mul"]
    est = predict_latency(c, ROUND)
    assert [k.name for k in est.kernels] == names[1:]  # the identity moves nothing


def test_fit_recovers_known_factors_exactly():
    truth = ROUND.replace(efficiency={"grouped_conv": 0.3, "dense_conv": 0.8, "depthwise_conv": 0.1}, overhead=5e-6)
    layers = [
        V(C=c, H=h, W=h, **kw)
        for c in (16, 32, 64)
        for h in (7, 28)
        for V, kw in ((GroupedConv, dict(O=c, K=3, G=4)), (StandardConv, dict(O=c, K=3)), (DepthwiseConv, dict(K=3)))
    ]
    fitted = fit(ROUND, [(x, predict_latency(x, truth).seconds) for x in layers], fitted_from="synthetic")
    for kind, factor in truth.efficiency.items():
        assert fitted.efficiency[kind] == pytest.approx(factor, rel=1e-6)
    assert fitted.overhead == pytest.approx(5e-6, rel=1e-6)
    assert fitted.fitted_from == "synthetic"


def test_fit_keeps_unseen_kinds_and_bad_samples_raise():
    prior = ROUND.replace(efficiency={"linear": 0.7})
    fitted = fit(prior, [(PointwiseConv(C=8, O=8, H=8, W=8), 1e-4)])
    assert fitted.efficiency["linear"] == 0.7 and "pointwise_conv" in fitted.efficiency
    with pytest.raises(ConvcostError, match="measured time -1"):
        fit(prior, [(PointwiseConv(C=8, O=8, H=8, W=8), -1)])
    with pytest.raises(ConvcostError, match="at least one"):
        fit(prior, [])


def test_nnls_respects_bounds():
    import numpy as np

    a = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    x = nnls(a, np.array([-1.0, -2.0, -3.0]))
    assert (x >= 0).all() and x.tolist() == [0.0, 0.0]
    x = nnls(a, np.array([3.0, 5.0, 7.0]), lower=np.array([0.0, 0.0]))
    assert x == pytest.approx([1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(peak_flops=0, bandwidth=1.0), "peak_flops=0 must be a positive finite number"),
        (dict(peak_flops=1.0, bandwidth=math.inf), "bandwidth=inf must be a positive finite number"),
        (dict(peak_flops=1.0, bandwidth=1.0, overhead=-1.0), "overhead=-1.0 must be"),
        (dict(peak_flops=1.0, bandwidth=1.0, efficiency={"warp_conv": 1.0}), "unknown kernel kind 'warp_conv'"),
        (dict(peak_flops=1.0, bandwidth=1.0, efficiency={"linear": 0.0}), r"efficiency\['linear'\]=0.0"),
        (dict(peak_flops="fast", bandwidth=1.0), "peak_flops='fast'"),
    ],
)
def test_bad_machines(kwargs, message):
    with pytest.raises(ConvcostError, match=message):
        Machine("bad", **kwargs)


def test_bad_predictions():
    with pytest.raises(ConvcostError, match="free symbols H, W"):
        predict_latency(StandardConv(C=3, O=8, K=3), ROUND)
    with pytest.raises(ConvcostError, match="needs a Machine"):
        predict_latency(StandardConv(C=3, O=8, K=3, H=8, W=8), {"peak_flops": 1})
    with pytest.raises(ConvcostError, match="needs a convcost layer or Cost"):
        predict_latency("StandardConv", ROUND)
    with pytest.raises(ConvcostError, match="unknown kernel kind"):
        ROUND.factor("gemm")


def test_save_load_round_trip(tmp_path):
    m = Machine("box", 2.5e11, 1.5e10, {"dense_conv": 0.8, "elementwise": 2.0}, overhead=3e-6, fitted_from="test")
    path = tmp_path / "m.json"
    m.save(path)
    assert Machine.load(path) == m
    assert json.loads(path.read_text())["peak_flops"] == 2.5e11


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"name": "x", "peak_flops": 1}', r"missing fields \['bandwidth'\]"),
        ('{"name": "x", "peak_flops": 1, "bandwidth": 1, "clock": 3}', r"unknown fields \['clock'\]"),
        ('{"name": "x", "peak_flops": -1, "bandwidth": 1}', "peak_flops=-1"),
    ],
)
def test_bad_machine_files(tmp_path, content, message):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ConvcostError, match=message):
        Machine.load(path)
    with pytest.raises(ConvcostError, match="cannot read machine file"):
        Machine.load(tmp_path / "missing.json")


def test_every_kind_is_known():
    assert len(set(KINDS)) == len(KINDS) == 10


def test_fresh_outputs_pay_the_allocation_cost_by_hand():
    m = ROUND.replace(alloc_threshold=4000, alloc_bandwidth=1e7)
    # ReLU on 1000 elements: 8000 bytes moved at 1e8 B/s; its 4000-byte output is fresh memory at 1e7 B/s
    est = predict_latency(Activation("relu").cost((1, 10, 10, 10)), m)
    assert est.seconds == pytest.approx(8000 / 1e8 + 4000 / 1e7)
    assert est.kernels[0].allocation_seconds == pytest.approx(4000 / 1e7)
    # an output below the threshold comes from reused memory: the plain roofline
    small = predict_latency(Activation("relu").cost((1, 10, 10, 9)), m)
    assert small.seconds == pytest.approx(7200 / 1e8) and small.kernels[0].allocation_seconds == 0
    with pytest.raises(ConvcostError, match="alloc_threshold needs an alloc_bandwidth"):
        Machine("half", 1e9, 1e8, alloc_threshold=4000)


def test_fit_takes_the_allocation_cost_as_measured_not_fitted():
    truth = ROUND.replace(efficiency={"pointwise_conv": 0.5, "depthwise_conv": 0.2}, overhead=3e-6,
                          alloc_threshold=50_000, alloc_bandwidth=2e7)
    layers = [V(C=c, H=h, W=h, **kw) for c in (8, 32) for h in (14, 56)
              for V, kw in ((PointwiseConv, {"O": c}), (DepthwiseConv, {"K": 3}))]
    assert any(k.allocation_seconds for x in layers for k in predict_latency(x, truth).kernels)
    prior = ROUND.replace(alloc_threshold=50_000, alloc_bandwidth=2e7)
    fitted = fit(prior, [(x, predict_latency(x, truth).seconds) for x in layers])
    # per kind, and per operation (each kind here has one, a Conv)
    ops = {f"{kind}/Conv": factor for kind, factor in truth.efficiency.items()}
    assert fitted.efficiency == pytest.approx(truth.efficiency | ops, rel=1e-6)
    assert fitted.overhead == pytest.approx(3e-6, rel=1e-6) and fitted.alloc_bandwidth == 2e7
    assert fitted.overheads == pytest.approx({op: 3e-6 for op in ops}, rel=1e-6)


def test_fit_gives_each_operation_of_a_kind_its_own_factors_and_overhead():
    """A max pool and an average pool are both pooling; where their kernels differ, each keeps its own."""
    truth = ROUND.replace(efficiency={"pooling/MaxPool": 0.05, "pooling/AvgPool": 0.5},
                          overheads={"pooling/MaxPool": 4e-6, "pooling/AvgPool": 3e-6})
    layers = [(P(K=k, S=2), (1, c, h, h)) for P in (MaxPool, AvgPool) for k in (2, 3) for c in (8, 64)
              for h in (8, 56)]
    layers += [(P(K=2, S=2), (1, 1, h, h)) for P in (MaxPool, AvgPool) for h in (2, 4)]  # tiny: dispatch, nearly all
    samples = [(layer.cost(shape), predict_latency(layer.cost(shape), truth).seconds) for layer, shape in layers]
    fitted = fit(ROUND, samples)
    assert fitted.factor("pooling/MaxPool") == pytest.approx(0.05, rel=1e-6)
    # (the average pool's one tiny sample leaves its compute factor and its overhead a little latitude)
    assert fitted.factor("pooling/AvgPool") == pytest.approx(0.5, rel=0.02)
    assert fitted.overheads["pooling/MaxPool"] == pytest.approx(4e-6, rel=0.02)
    assert fitted.overheads["pooling/AvgPool"] == pytest.approx(3e-6, rel=0.02)
    # one factor for the whole kind lies between them: an operation no kernel sampled takes it
    assert 0.05 < fitted.factor("pooling") < 0.5
    assert fitted.factor("pooling/LPPool") == fitted.factor("pooling")
    for layer, shape in layers:  # the fitted machine predicts every sample again
        assert predict_latency(layer.cost(shape), fitted).seconds == pytest.approx(
            predict_latency(layer.cost(shape), truth).seconds, rel=1e-2)
    with pytest.raises(ConvcostError, match="unknown kernel kind 'pool/MaxPool'"):
        fitted.factor("pool/MaxPool")
    with pytest.raises(ConvcostError, match=r"overheads\['pooling'\]=-1"):
        ROUND.replace(overheads={"pooling": -1})


# -- calibration (torch) ------------------------------------------------------------------------
torch = pytest.importorskip("torch")


def test_calibrate_tiny_caches_in_the_user_cache_folder(tmp_path, monkeypatch, capsys):
    import platformdirs

    from convcost.torch.calibration import cache_path, calibrate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # where platformdirs puts it on Linux
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name, appauthor=None: str(tmp_path / name))
    small = (("inference", 1, 32, False), ("training", 1, 32, True))  # the synthetic networks on small images
    m = calibrate("cpu", quick=True, min_run_time=0.001, passes=1, network_settings=small)
    path = cache_path("cpu", 1, quick=True)
    assert path.startswith(str(tmp_path / "convcost"))
    assert Machine.load(path) == m
    assert m.peak_flops > 0 and m.bandwidth > 0
    assert {k for k in m.efficiency if "/" not in k} == set(KINDS)  # the calibration kernels cover every kind
    # and each operation of the grid has factors and a call overhead of its own
    assert {"pooling/MaxPool", "elementwise/BatchNorm", "elementwise/Activation-silu"} <= set(m.overheads)
    # and a cold call's extra time, measured on the kernels whose time is their call
    assert {"elementwise/BatchNorm", "pointwise_conv", "linear"} <= set(m.cold_overheads)
    assert all(v >= 0 for v in m.cold_overheads.values())
    # a strided depthwise convolution has factors of its own, and the synthetic networks were fitted for both
    # phases, saved with the cache (Machine.load(path) == m above); a phase keeps factors (one shared by every kind,
    # or one per kind) only where they predict a network left out of their fit clearly better than none, which a
    # tiny, noisy calibration may not show: then it keeps none, and says so
    assert "depthwise_conv/Conv-strided" in m.efficiency
    assert set(m.network) == {"inference", "training"}
    err = capsys.readouterr().err  # progress, one line per stage, on stderr
    for phase, factors in m.network.items():
        assert {"dense_conv", "depthwise_conv", "elementwise", "linear"} <= set(factors) or (
            not factors and f"in-network factors, {phase}: none (each network left out" in err) or (
            not factors and f"in-network factors, {phase}: no factor, " in err and phase in m.network_call)
        # the per-call term, where a phase keeps one (seconds per row), says so
        assert phase not in m.network_call or (
            m.network_call[phase] > 0 and f"in-network factors, {phase}: " in err and " us per call (row)" in err)
    assert "convcost calibrate: measuring cpu with 1 thread" in err and f"cached in {path}" in err
    # a cached calibration is read back, not measured again; quiet=True says nothing
    again = calibrate("cpu", quick=True, min_run_time=0.001, quiet=True)
    assert again == m and capsys.readouterr().err == ""


def test_a_cached_calibration_this_build_rejects_is_measured_again(tmp_path, monkeypatch, capsys):
    """A cache file that does not load (another build's kinds, a file cut short) is replaced, with a note."""
    import convcost.torch.calibration as calibration

    fresh = Machine("fresh", peak_flops=1e9, bandwidth=1e9)
    measured = []
    monkeypatch.setattr(calibration, "measure", lambda *a, **k: (measured.append(1) or fresh, []))
    path = calibration.cache_path("cpu", 1, quick=True, cache_dir=tmp_path)
    for stale in ('{"name": "old", "peak_flops": 1, "bandwidth": 1, "network": {"inference": {"calls": 1.0}}}',
                  '{"name": "cut short'):
        with open(path, "w", encoding="utf-8") as f:
            f.write(stale)
        assert calibration.calibrate("cpu", quick=True, cache_dir=tmp_path, quiet=True) == fresh
        assert "cannot be used" in capsys.readouterr().err
        assert Machine.load(path) == fresh  # replaced: the next call reads it back
    assert len(measured) == 2
    assert calibration.calibrate("cpu", quick=True, cache_dir=tmp_path, quiet=True) == fresh and len(measured) == 2


def test_calibrate_is_callable_from_the_package():
    import convcost.torch

    # the README's convcost.torch.calibrate("cpu"): the package exports the function, not the module
    assert callable(convcost.torch.calibrate) and convcost.torch.calibrate.__name__ == "calibrate"


@pytest.mark.parametrize(
    "device, message",
    [("tpu", "unknown device 'tpu'"), ("cuda:x", "unknown device"), (3, "unknown device 3")],
)
def test_calibrate_bad_devices(device, message, tmp_path):
    from convcost.torch.calibration import calibrate

    with pytest.raises(ConvcostError, match=message):
        calibrate(device, cache_dir=tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_an_error(tmp_path):
    from convcost.torch.calibration import calibrate

    with pytest.raises(ConvcostError, match="no CUDA GPU is available"):
        calibrate("cuda", cache_dir=tmp_path)


def test_calibrate_rejects_bad_threads(tmp_path):
    from convcost.torch.calibration import calibrate, time_call

    with pytest.raises(ConvcostError, match="threads=0"):
        calibrate("cpu", threads=0, cache_dir=tmp_path)
    with pytest.raises(ConvcostError, match="statistic='mean'"):
        time_call(torch.relu, torch.ones(2), statistic="mean")


def test_cache_tier_splits_traffic():
    m = Machine("tiered", 1e9, 1e8, cache_bytes=4000, cache_bandwidth=1e9)
    # ReLU on 1000 elements moves 8000 bytes: 4000 at 1e9 B/s + 4000 at 1e8 B/s
    est = predict_latency(Activation("relu").cost((1, 10, 10, 10)), m)
    assert est.seconds == pytest.approx(4000 / 1e9 + 4000 / 1e8)
    with pytest.raises(ConvcostError, match="both cache_bytes and cache_bandwidth"):
        Machine("half", 1e9, 1e8, cache_bytes=4000)


def test_fresh_memory_is_a_threshold_and_a_bandwidth_or_nothing():
    from convcost.torch.calibration import fresh_memory

    threshold, bandwidth = fresh_memory("cpu", largest_mib=64, min_run_time=0.001, resolution_mib=32)
    assert (threshold == 0 and bandwidth == 0) or (threshold >= 2**20 and bandwidth > 0)
    assert threshold % 2**20 == 0


def test_a_fresh_block_pays_by_the_fault_counter_not_by_a_slower_fill():
    from convcost.torch.calibration import EVERY_PAGE, every_page_faults

    mib = 2**20
    # measured, one thread: a fresh 16 MiB block faulted 446 of its 4,096 pages per call (glibc reused the rest) yet
    # filled twice as slowly as an existing one, in cache: no threshold there (the timing alone said one)
    assert not every_page_faults(446, 16 * mib, fresh_over_reused=2.0)
    assert 446 < EVERY_PAGE * 16 * mib / 4096
    # every page of every call: it pays, however fast the fill; the timing decides only without a counter
    assert every_page_faults(8192, 32 * mib, fresh_over_reused=1.0)
    assert every_page_faults(None, 32 * mib, fresh_over_reused=1.6)
    assert not every_page_faults(None, 32 * mib, fresh_over_reused=1.4) and not every_page_faults(None, 32 * mib)
    # a huge page brings 512 base pages in one fault: 16 faults for 32 MiB of 2 MiB pages are every page
    assert every_page_faults(16, 32 * mib, page_bytes=2 * mib) and not every_page_faults(16, 32 * mib)


def _glibc_defaults() -> bool:
    import os
    import platform

    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="utf-8") as f:
            huge = "[always]" in f.read()
    except OSError:
        huge = False
    tuned = any(k.startswith("MALLOC_") or k == "LD_PRELOAD" for k in os.environ)
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and not huge and not tuned


@pytest.mark.skipif(not _glibc_defaults(), reason="glibc's allocator at its defaults (Linux, no huge pages always)")
def test_fresh_memory_finds_glibcs_mmap_ceiling():
    # glibc's mmap threshold rises to the largest block freed, up to 32 MiB (DEFAULT_MMAP_THRESHOLD_MAX on 64 bits):
    # from there on every block is mapped afresh and every page of every call faults; below it, some do, as the
    # heap's history has it (the timing of a fill put the threshold anywhere from 7 to 48 MiB)
    from convcost.torch.calibration import fresh_memory

    threshold, bandwidth = fresh_memory("cpu", largest_mib=64, min_run_time=0.01)
    # the probe of exactly 32 MiB sits on the ceiling (read once at 33 MiB, under load): a zoo's 36.75 MiB tensors
    # (96 channels of 112x112 at batch 8) pay either way, as the 48 MiB read by the rule before missed
    assert 32 * 2**20 <= threshold <= 36 * 2**20 and bandwidth > 0


def test_fresh_memory_runs_from_a_script_without_a_main_guard(tmp_path):
    # its process of its own runs convcost's function, not the caller's script again (as multiprocessing's spawn
    # does: a script calibrating at its top level would calibrate again in the child, and fail)
    import subprocess
    import sys

    script = tmp_path / "calibrates.py"
    script.write_text("from convcost.torch.calibration import fresh_memory\n"
                      "print('ran', fresh_memory('cpu', largest_mib=2, min_run_time=0.001, resolution_mib=1))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("ran") == 1


def test_cold_overheads_are_the_median_extra_per_operation_and_kind():
    from convcost.torch.calibration import CALL_ELEMENTS, cold_kernels, cold_overheads

    kernels = [(BatchNorm(C=16), (1, 16, 4, 4)), (BatchNorm(C=16), (1, 16, 2, 2)), (BatchNorm(C=16), (1, 16, 2, 1)),
               (Activation("relu"), (1, 16, 4, 4)), (Add(), [(1, 16, 4, 4), (1, 16, 4, 4)]),
               (BatchNorm(C=96), (1, 96, 112, 112))]
    assert cold_kernels(kernels) == [0, 1, 2, 3, 4] and 96 * 112 * 112 > CALL_ELEMENTS
    # (hot, cold) seconds: a stand-in for the timings; a cold call never counts as faster than a hot one
    readings = {0: (1e-5, 4e-5), 1: (1e-5, 2e-5), 2: (2e-5, 1e-5), 3: (1e-6, 3e-6), 4: (2e-6, 9e-6)}
    extra = cold_overheads(kernels, readings)
    assert extra["elementwise/BatchNorm"] == pytest.approx(1e-5)  # median of 3e-5, 1e-5, 0
    assert extra["elementwise/Activation-relu"] == pytest.approx(2e-6)
    assert extra["elementwise/Add"] == pytest.approx(7e-6)
    assert extra["elementwise"] == pytest.approx(7e-6)  # median of 3e-5, 1e-5, 0, 2e-6, 7e-6


def test_cold_overhead_lookup_and_checks():
    m = Machine("m", 1e9, 1e9, cold_overheads={"elementwise/Activation": 3e-6, "elementwise": 1e-6})
    assert m.cold_overhead("elementwise/Activation-silu") == 3e-6  # its family's
    assert m.cold_overhead("elementwise/BatchNorm") == 1e-6 and m.cold_overhead("pooling") == 0.0
    with pytest.raises(ConvcostError, match=r"cold_overheads\['linear'\]=-1"):
        Machine("m", 1e9, 1e9, cold_overheads={"linear": -1})
    with pytest.raises(ConvcostError, match="unknown kernel kind 'gpu'"):
        Machine("m", 1e9, 1e9, cold_overheads={"gpu": 1e-6})


def test_fit_finds_an_operation_slow_on_its_compute_side_though_its_roofline_says_memory():
    # a max pool: few operations per byte (the plain roofline puts it on the memory side), yet its windows'
    # comparisons are what take the time; started from the roofline's sides alone, the fit never left memory
    truth = ROUND.replace(efficiency={"pooling/MaxPool": 0.002}, memory_efficiency={"pooling/MaxPool": 1.0},
                          overhead=3e-6)
    layers = [(MaxPool(3, S=s, P=1), (1, c, h, h)) for s in (1, 2) for c, h in ((16, 112), (64, 56), (256, 14))]
    costs = [layer.cost(shape) for layer, shape in layers]
    assert all(k.compute_seconds < k.memory_seconds for c in costs for k in predict_latency(c, truth).kernels)
    fitted = fit(ROUND.replace(overhead=3e-6), [(c, predict_latency(c, truth).seconds) for c in costs])
    assert fitted.efficiency["pooling/MaxPool"] == pytest.approx(0.002, rel=1e-3)
    for c in costs:
        assert predict_latency(c, fitted).seconds == pytest.approx(predict_latency(c, truth).seconds, rel=1e-3)


def test_a_backward_writes_its_parameters_gradients_into_fresh_memory():
    import dataclasses

    from convcost.latency import BackwardCost, kernel_times

    m = Machine("m", 1e9, 1e9, alloc_threshold=32 * 2**20, alloc_bandwidth=2e9)
    big = Linear(C=4096, O=4096).cost((2, 4096))   # a 64 MiB weight, and its gradient, on a batch of 2
    assert 4 * 4096 * 4096 == 64 * 2**20
    (*_, forward_fresh), = kernel_times(big, m)
    (*_, backward_fresh), = kernel_times(BackwardCost(big), m)
    assert forward_fresh == 0.0   # its output: 2 x 4096 elements, far under the threshold
    assert backward_fresh == pytest.approx(4 * (4096 * 4096 + 4096) / 2e9)   # the weight's and bias's gradients
    frozen = dataclasses.replace(big, trainable=False)
    assert kernel_times(BackwardCost(frozen), m)[0][-1] == 0.0   # no gradient of its own
    small = Linear(C=256, O=256).cost((2, 256))    # 256 KiB of gradient: reused from the heap, no fault
    assert kernel_times(BackwardCost(small), m)[0][-1] == 0.0
