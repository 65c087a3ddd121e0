"""Calibrate the latency model on this machine: measured peak, bandwidth and kernel efficiencies.

``calibrate(device)`` times four things with ``torch.utils.benchmark`` at a fixed
thread count, and returns a :class:`convcost.latency.Machine`:

1. peak FLOP/s: the best of square float32 matmuls (``2 n^3`` FLOPs each);
2. bandwidth: a large tensor copied into another (``2 x bytes`` moved: read + write);
3. the cost of fresh memory (:func:`fresh_memory`): filling a new tensor against
   filling an existing one; the smallest size where the new one pays page faults
   is ``alloc_threshold``, the extra time per byte ``alloc_bandwidth`` (on CUDA the
   caching allocator reuses blocks: no cost);
4. efficiency per kernel kind and overhead per kernel call: a small set of real
   kernels (convcost specs built by :func:`convcost.torch.to_torch`), fitted by
   :func:`convcost.latency.fit`; the convolutions are also timed at batches 2, 4 and 8
   (:data:`BATCH_STAGES`), for the term of their efficiency that takes the size of a call
   (:attr:`convcost.latency.Machine.pixel_slowdown`);
5. in-network factors and seconds per call, at inference and in a training step: a few small synthetic networks
   (:mod:`convcost.torch.networks`, never a zoo model) timed end to end against the sum of their rows'
   predictions; per phase one factor shared by every kind or one per kind, each with or without seconds per row
   (:attr:`convcost.latency.Machine.network_call`), whichever predicts a network left out of its fit better, kept
   only where it does so clearly better than no correction (:func:`convcost.latency_network.checked`).

The result is cached as JSON in the per-user cache folder of the operating system
(``platformdirs.user_cache_dir("convcost")``: ``$XDG_CACHE_HOME/convcost`` or
``~/.cache/convcost`` on Linux, ``~/Library/Caches/convcost`` on macOS,
``%LOCALAPPDATA%\\convcost\\Cache`` on Windows), keyed by device, threads, size and
torch version; ``cache=False`` measures afresh. A full calibration repeats its passes until they are
stable, which takes minutes (longer on a busy machine; ``quick=True`` times a subset of the kernels); it
reports its progress on stderr unless ``quiet=True``. Timings run under ``torch.inference_mode()`` with
modules in evaluation mode (``module.train(False)``). CUDA timings go through the same code (``torch.utils.benchmark``
synchronises the device) but have not been run by convcost's own tests, which
have no GPU; asking for ``"cuda"`` without one is a ConvcostError.

>>> import tempfile
>>> small = (("inference", 1, 32, False),)   # the synthetic networks on small images, for a quick look
>>> m = calibrate("cpu", quick=True, cache_dir=tempfile.mkdtemp(), quiet=True, passes=1, min_run_time=0.001,
...               network_settings=small)
>>> m.peak_flops > 0 and m.bandwidth > 0 and "depthwise_conv" in m.efficiency
True
>>> calibrate("tpu")
Traceback (most recent call last):
...
convcost.errors.ConvcostError: unknown device 'tpu': use 'cpu', 'cuda' or 'cuda:<index>'
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import re
import sys
import time

import torch
from torch.utils import benchmark

from convcost import latency, latency_network
from convcost.errors import ConvcostError
from convcost.latency import Machine
from convcost.layers import Merge
from convcost.model_latency import network_parts
from convcost.torch import networks, runtime
from convcost.torch.build import to_torch
from convcost.torch.profiling import profile

#: bumped when calibration measures or fits something new, so that older cached machines are measured again
CALIBRATION_VERSION = 11


def check_device(device) -> torch.device:
    """The torch device for ``device``, or a ConvcostError when it is unknown or absent.

    >>> check_device("cpu")
    device(type='cpu')
    """
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConvcostError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:<index>'")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConvcostError(f"device {device!r} requested but no CUDA GPU is available to "
                                f"torch {runtime.version()}")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConvcostError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device(device)


def describe(device: str = "cpu", threads: int = 1) -> dict:
    """A description of the machine timings come from: processor, cores, threads, torch.

    >>> sorted(describe("cpu", 1))
    ['cores', 'device', 'processor', 'python', 'threads', 'torch']
    """
    dev = check_device(device)
    if dev.type == "cuda":
        processor = torch.cuda.get_device_name(dev)
    else:
        processor = _cpu_model()
    return {
        "device": str(dev),
        "processor": processor,
        "cores": os.cpu_count(),
        "threads": threads,
        "torch": runtime.version(),
        "python": platform.python_version(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: the clocks a timing can read: wall time, or the process's CPU time (one thread on a busy machine: the time
#: the work itself took, not the time other processes held the core)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = ["wall"]


@contextlib.contextmanager
def clock(name: str):
    """Time with the clock ``name`` (:data:`CLOCKS`) inside the block: ``with clock("cpu"): calibrate(...)``."""
    if name not in CLOCKS:
        raise ConvcostError(f"unknown clock {name!r}; known: {', '.join(CLOCKS)}")
    before = _clock[0]
    _clock[0] = name
    try:
        yield
    finally:
        _clock[0] = before


def time_call(fn, *args, device: str = "cpu", threads: int = 1, min_run_time: float = 0.2, warmup: int = 2,
              statistic: str = "median", grad: bool = False) -> float:
    """Seconds per call of ``fn(*args)``: warm-up calls, then ``Timer.blocked_autorange``.

    ``statistic="median"`` (default) is the median block's mean per call: a
    kernel inside a network runs at its typical speed, not at its luckiest, and on
    a machine shared with other work the fastest of many short blocks is a moment
    when nothing else ran, which a whole model's tens of milliseconds never are
    (measured under load: the calibration kernels timed again ran 1.3 to 2x their
    fastest blocks). ``"min"`` is the fastest block (the kernel's own latency on a
    quiet machine). ``grad=True`` times with autograd on (a training step), else under
    ``torch.inference_mode()``.

    >>> time_call(torch.relu, torch.ones(8), min_run_time=0.001) > 0
    True
    """
    dev = check_device(device)
    if statistic not in ("min", "median"):
        raise ConvcostError(f"time_call: statistic={statistic!r} must be 'min' or 'median'")
    with torch.inference_mode(not grad), torch.enable_grad() if grad else contextlib.nullcontext():
        for _ in range(warmup):
            fn(*args)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if _clock[0] == "cpu" and (threads != 1 or dev.type != "cpu"):
            raise ConvcostError(f"the cpu clock times one thread on the CPU, not {threads} threads on {device}")
        timer = benchmark.Timer(stmt="fn(*args)", globals={"fn": fn, "args": args}, num_threads=threads,
                                timer=CLOCKS[_clock[0]])
        measured = timer.blocked_autorange(min_run_time=min_run_time)
        return float(min(measured.times) if statistic == "min" else measured.median)


#: the weights a timing cycles through at least (copies of the module): more than a core's own cache holds, so
#: that each call reads its weights from further away, as a layer inside a network does (the input stays hot:
#: inside a network the layer before has just written it)
COLD_BYTES = 8 * 2**20
#: at most this many copies of one module
MOST_COPIES = 16


def copies(layer, input_shape, device, training=False) -> list:
    """Copies of the module ``convcost.torch.to_torch`` builds for ``layer``, enough to hold :data:`COLD_BYTES`
    of weights between them (one for a layer without weights)."""

    dev = check_device(device)
    shape = None if isinstance(layer, Merge) else input_shape
    first = to_torch(layer, shape).to(dev).train(training)
    weights = sum(q.numel() * q.element_size() for q in first.parameters())
    count = min(MOST_COPIES, -(-COLD_BYTES // weights)) if weights else 1
    return [first] + [to_torch(layer, shape).to(dev).train(training) for _ in range(count - 1)]


def inputs(layer, input_shape, device, grad=False) -> list:
    """Random inputs of ``input_shape``: one tensor, or one per shape for a merge (add, multiply, concatenate)."""
    dev = check_device(device)
    shapes = input_shape if isinstance(layer, Merge) else [input_shape]
    return [torch.randn(*[int(s) for s in shape], device=dev, requires_grad=grad) for shape in shapes]


def time_layer(layer, input_shape, *, device: str = "cpu", threads: int = 1, min_run_time: float = 0.2) -> float:
    """Seconds per call (the median block) of the real kernels of a convcost layer on a random input of ``input_shape``,
    its weights cold (:func:`copies`, called in turn), and its output written where the last call's is not (that
    one is held until the call returns, as a network holds a layer's input while the next layer writes): a call
    that writes into the block it freed a moment ago finds it in cache, which no layer inside a network does."""
    turn = itertools.cycle(copies(layer, input_shape, device))
    xs = inputs(layer, input_shape, device)
    held = [None]

    def call():
        held[0] = next(turn)(*xs)

    return time_call(call, device=device, threads=threads, min_run_time=min_run_time)


#: how many times the core's own cache (:func:`core_cache_bytes`) a cold call's flush streams: twice, so that
#: nothing the core held before survives it, as nothing does after the layers before a call inside a network
FLUSH_CACHES = 2
#: the calls a cold reading takes the median of
COLD_CALLS = 30
#: kernels whose first input holds at most this many elements: their time is their call, so a cold call's extra
#: time is what the call itself pays (a larger kernel's own traffic would hide it)
CALL_ELEMENTS = 2048


def time_cold(layer, input_shape, *, device: str = "cpu", threads: int = 1, calls: int = COLD_CALLS) -> tuple:
    """``(hot, cold)`` seconds of one call of a convcost layer's kernels (the median of ``calls``): ``hot`` called
    again and again, as a kernel timing loop calls it; ``cold`` after streaming a buffer of :data:`FLUSH_CACHES`
    times the core's cache through it and writing the input again (inside a network, the layers before a call
    have evicted its code, its weights and the framework's state for it, and the layer just before has written
    its input). ``(0.0, 0.0)`` on CUDA, whose calls are launched, not run, by the core.

    >>> from convcost.primitives import Activation
    >>> hot, cold = time_cold(Activation("relu"), (1, 16, 4, 4), calls=3)
    >>> hot > 0 and cold > 0
    True
    """
    dev = check_device(device)
    if dev.type == "cuda":
        return 0.0, 0.0
    module = copies(layer, input_shape, device)[0]
    xs = inputs(layer, input_shape, device)
    flush = torch.ones(FLUSH_CACHES * core_cache_bytes() // 4, device=dev)
    now = CLOCKS[_clock[0]]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(2):
                module(*xs)
            hot, cold = [], []
            for _ in range(calls):
                start = now()
                module(*xs)
                hot.append(now() - start)
            for _ in range(calls):
                flush.mul_(1.0)
                for x in xs:
                    x.mul_(1.0)
                start = now()
                module(*xs)
                cold.append(now() - start)
    finally:
        torch.set_num_threads(before)
    return float(sorted(hot)[calls // 2]), float(sorted(cold)[calls // 2])


def cold_kernels(kernels) -> list:
    """The indices of ``kernels`` (``(layer, input_shape)``) whose time is their call (:data:`CALL_ELEMENTS`): those a
    cold call is measured on."""
    first = [shape[0] if isinstance(layer, Merge) else shape for layer, shape in kernels]
    return [i for i, shape in enumerate(first) if _numel(shape) <= CALL_ELEMENTS]


def _numel(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def cold_overheads(kernels, readings) -> dict:
    """Seconds per call added inside a network, per operation (:func:`convcost.latency.op_key`) and per kind: the
    median over the kernels measured of ``cold - hot`` (each the fastest of its passes; never below 0)."""
    extra = {}
    for i, (hot, cold) in readings.items():
        layer, shape = kernels[i]
        kind = latency.KernelKind(latency.kind_of(layer.cost(shape)), latency.op_key(layer.cost(shape)))
        for key in dict.fromkeys((kind.op, str(kind))):
            extra.setdefault(key, []).append(max(cold - hot, 0.0))
    return {key: float(sorted(v)[len(v) // 2]) for key, v in extra.items()}


def peak_matmul(device: str = "cpu", threads: int = 1, sizes=(512, 1024, 2048), min_run_time: float = 0.2) -> float:
    """The best FLOP/s of square float32 matmuls of the given sizes."""
    dev = check_device(device)
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
        seconds = time_call(torch.mm, a, b, device=device, threads=threads, min_run_time=min_run_time)
        best = max(best, 2 * n**3 / seconds)
    return best


def copy_bandwidth(device: str = "cpu", threads: int = 1, elements: int = 1 << 25, min_run_time: float = 0.2) -> float:
    """Bytes/s of copying a float32 tensor of ``elements`` into another (read + write counted)."""
    dev = check_device(device)
    src, dst = torch.randn(elements, device=dev), torch.empty(elements, device=dev)
    seconds = time_call(dst.copy_, src, device=device, threads=threads, min_run_time=min_run_time)
    return 2 * 4 * elements / seconds


def core_cache_bytes() -> int:
    """Bytes of the largest cache one core has to itself (Linux: the level-2 cache in sysfs; else 1 MiB)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    best = 0
    try:
        for index in (i for i in os.listdir(base) if i.startswith("index")):
            with open(os.path.join(base, index, "level"), encoding="utf-8") as f:
                level = int(f.read())
            with open(os.path.join(base, index, "size"), encoding="utf-8") as f:
                text = f.read().strip()
            size = int(text[:-1]) * {"K": 2**10, "M": 2**20}.get(text[-1], 1) if text[-1] in "KM" else int(text)
            if level == 2:
                best = max(best, size)
    except (OSError, ValueError):
        pass
    return best or 2**20


#: a fresh block faults in every page where the counter counts at least this share of its pages per call
EVERY_PAGE = 0.9
#: a fresh block pays where filling it is this many times as slow as filling an existing one (platforms without a
#: page-fault counter only)
SLOWER = 1.5


def every_page_faults(faults_per_call, size_bytes: int, page_bytes: int = 4096, fresh_over_reused=None) -> bool:
    """Whether a fresh block of ``size_bytes`` faults in every page on every call: at least :data:`EVERY_PAGE` of
    its pages (of ``page_bytes``) per call by the page-fault counter where one was read (``faults_per_call``); by
    the timing only where none was (``faults_per_call=None``: filling it :data:`SLOWER` times as slow as filling an
    existing block, which below the allocator's ceiling is the cache's doing as often as the faults').

    >>> every_page_faults(446, 16 * 2**20, fresh_over_reused=2.0)   # measured: 11% of the pages, slower by cache
    False
    >>> every_page_faults(8192, 32 * 2**20), every_page_faults(None, 32 * 2**20, fresh_over_reused=2.0)
    (True, True)
    """
    if faults_per_call is None:
        return fresh_over_reused is not None and fresh_over_reused > SLOWER
    return faults_per_call >= EVERY_PAGE * size_bytes / page_bytes


def _fault_page_bytes(base: int) -> int:
    """Bytes one fault brings in: a transparent huge page where Linux backs every large block with one
    (``/sys/kernel/mm/transparent_hugepage/enabled`` set to ``always``), else the base page."""
    root = "/sys/kernel/mm/transparent_hugepage"
    try:
        with open(os.path.join(root, "enabled"), encoding="utf-8") as f:
            if "[always]" not in f.read():
                return base
        with open(os.path.join(root, "hpage_pmd_size"), encoding="utf-8") as f:
            return int(f.read())
    except (OSError, ValueError):
        return base


def fresh_memory(device: str = "cpu", threads: int = 1, largest_mib: int = 256, min_run_time: float = 0.2,
                 resolution_mib: int = 1) -> tuple:
    """``(alloc_threshold bytes, alloc_bandwidth bytes/s)``: what writing into newly allocated memory costs.

    Measured in a fresh interpreter of its own (no earlier work's heap). At sizes doubling from 1 MiB, a new tensor
    is filled a few times while the process's minor page faults are counted: a size pays where every page of every
    call faults (:func:`every_page_faults`). Small blocks fault now and then, as the heap's history has it (glibc
    reuses a freed block below its mmap threshold, which rises to the largest block freed); from the allocator's
    ceiling on (glibc: 32 MiB), every page of every call faults, inside a network as in this loop. That threshold,
    the smallest size from which every probed size faults, is bisected to ``resolution_mib``; the extra seconds per
    byte are filling a new tensor minus filling an existing one, at 64 MiB or more. The fault counter decides, and
    the timing (a new tensor over 1.5x as slow) only where the platform has no counter: below the ceiling a new
    tensor at another address than the existing one is slower for the cache alone (measured on a 2-core AMD EPYC:
    the rule that let the timing decide first read 7 and 9 MiB in two runs at one thread, 48 MiB in the last zoo
    run's one-thread calibration and 18 MiB in its two-thread one; the counter alone, 32 MiB in four runs at one and
    two threads (33 once, under load: the probe of 32 sits on the ceiling), with 3% to 31% of the pages faulting
    below it and every page from it on). Read too high, the cost is missed where a zoo's batch of 8 at 224x224 pays
    it (its 96-channel 112x112 tensors: 36.75 MiB; the last run's one-thread calibration, at 48 MiB, put mobile nets
    up to 50% under). ``(0.0, 0.0)`` when no size up to ``largest_mib`` pays (and always on CUDA, whose caching
    allocator reuses blocks).
    """
    dev = check_device(device)
    if dev.type == "cuda":
        return 0.0, 0.0
    # a process of its own: glibc serves a block from a free chunk of the heap before it maps one, so where earlier
    # work left large free chunks, blocks of any size can come from them, touched already, without a fault (read in
    # test processes after other tests: 0 and 47 MiB; in the last zoo run's calibration, after the zoo was built and
    # profiled: 48 MiB). A plain interpreter running this module's function, not multiprocessing's spawn, which
    # imports the caller's script again (a script that calibrates at its top level, without a main guard, would
    # calibrate again in the child and fail)
    call = (f"import json; from convcost.torch.calibration import _fresh_memory; print(json.dumps(_fresh_memory("
            f"{str(dev.type)!r}, {int(threads)}, {int(largest_mib)}, {float(min_run_time)!r}, {int(resolution_mib)}, "
            f"{_clock[0]!r})))")
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # where convcost is
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))}
    import subprocess

    done = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True, env=env)
    if done.returncode:
        raise ConvcostError(f"calibrate: measuring fresh memory in a process of its own failed: "
                            f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def _fresh_memory(device: str, threads: int, largest_mib: int, min_run_time: float, resolution_mib: int,
                  clock_name: str) -> tuple:
    """:func:`fresh_memory`'s measurement, in the process that calls it."""
    _clock[0] = clock_name
    torch.set_num_threads(threads)
    dev = check_device(device)

    def times(mib):
        n = mib * 2**20 // 4
        existing = torch.empty(n, device=dev)
        reused = time_call(existing.fill_, 1.0, device=device, threads=threads, min_run_time=min_run_time)
        del existing
        fresh = time_call(lambda: torch.empty(n, device=dev).fill_(1.0), device=device, threads=threads,
                          min_run_time=min_run_time)
        return reused, fresh

    def faults(mib):
        n = mib * 2**20 // 4
        try:
            import resource
        except ImportError:  # no page-fault counter (Windows): the timing says it
            reused, fresh = times(mib)
            return every_page_faults(None, 4 * n, fresh_over_reused=fresh / reused)
        for _ in range(2):  # let the allocator settle (glibc raises its mmap threshold on a free)
            torch.empty(n, device=dev).fill_(1.0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(4):
            torch.empty(n, device=dev).fill_(1.0)
        counted = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4
        return every_page_faults(counted, 4 * n, _fault_page_bytes(resource.getpagesize()))

    # small blocks fault now and then, depending on the heap's history; from the threshold on, always
    probed = [1]
    while probed[-1] < largest_mib:
        probed.append(min(2 * probed[-1], largest_mib))
    verdicts = [faults(mib) for mib in probed]
    if not verdicts[-1]:
        return 0.0, 0.0
    first = len(verdicts) - 1
    while first > 0 and verdicts[first - 1]:
        first -= 1
    low, high = (probed[first - 1] if first else 0), probed[first]
    while high - low > resolution_mib:
        middle = (low + high) // 2
        low, high = (low, middle) if faults(middle) else (middle, high)
    at = max(high, 64)
    reused, fresh = times(at)
    if fresh <= reused:
        return 0.0, 0.0
    return float(high * 2**20), at * 2**20 / (fresh - reused)


#: ``(channels, spatial size, batch)`` of the stages the calibration kernels are timed at: a CNN's stages at
#: batch 1, and two at batch 8 whose tensors stream from memory
#: (narrow and wide, so that tensors both stay in a core's cache and spill from it, as in a network), and a
#: tiny one, where a call is its dispatch: each operation's overhead
STAGES = ((16, 112, 1), (96, 112, 1), (24, 56, 1), (144, 56, 1), (64, 28, 1), (192, 28, 1), (128, 14, 1),
          (512, 14, 1), (256, 7, 1), (960, 7, 1), (64, 56, 8), (256, 14, 8), (16, 4, 1))
#: the quick calibration's stages: a subset of the full one's, so that each kind is fitted on kernels like them
QUICK_STAGES = ((96, 112, 1), (144, 56, 1), (128, 14, 1), (960, 7, 1), (64, 56, 8), (16, 4, 1))
#: stages where only the convolutions are timed, at batches past one: a convolution's efficiency depends on the
#: size of its call, batch x output positions (:attr:`convcost.latency.Machine.pixel_slowdown`), fitted on the same
#: operations at batches 1, 2, 4 and 8 across a CNN's stages, as a zoo's batch 8 and training steps call them; the
#: other kinds take no size and are timed at the full stages only
BATCH_STAGES = ((128, 28, 8), (512, 7, 8), (192, 28, 2), (48, 56, 4))
#: the quick calibration's: the narrowest image and widest channels at batch 8, beside the quick grid's own stage
#: at batch 8
QUICK_BATCH_STAGES = ((512, 7, 8),)


#: the activation functions of CNNs timed apart from ReLU (each its own factors: an exponential costs more), at
#: three stages of both grids (in cache, streaming, a call's dispatch)
ACTIVATION_FUNCTIONS = ("relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu")
ACTIVATION_STAGES = ((96, 112, 1), (960, 7, 1), (16, 4, 1))


def calibration_kernels(quick: bool = False) -> list:
    """``(layer, input_shape)`` of the real kernels the factors are fitted on: every kind at every stage of
    :data:`STAGES` (:data:`QUICK_STAGES`; the quick grid also times the kinds of few kernels, transposed and 3-d
    convolutions, at every full stage, so that its factors for them stay within 1.5x of the full grid's), the
    convolutions again at the batches of :data:`BATCH_STAGES` (:data:`QUICK_BATCH_STAGES`), and
    the odd shapes of CNNs (a stem on the image, squeeze-excitation's 1x1 convolutions on one pixel, a classifier
    at batch 1). No kernel is taken from a model that predictions
    are checked against.

    >>> len(calibration_kernels()), len(calibration_kernels(quick=True))
    (331, 170)
    """
    from convcost import primitives as p

    out = [(p.Conv(3, 32, 3, S=2, P=1), (1, 3, 224, 224)), (p.Conv(3, 64, 7, S=2, P=3), (1, 3, 224, 224)),
           (p.Linear(1280, 1000), (1, 1280)), (p.Conv(256, 64, 1), (1, 256, 1, 1)),
           (p.Conv(64, 256, 1), (1, 64, 1, 1))]
    for c, h, n in QUICK_STAGES if quick else STAGES:
        image = (n, c, h, h)
        out += [
            *_convolutions(c, h, n),
            (p.Linear(c * 4, c * 4), (8 * n, c * 4)),
            (p.BatchNorm(c), image),
            (p.Activation("relu"), image),
            *((p.Activation(f), image) for f in ACTIVATION_FUNCTIONS if (c, h, n) in ACTIVATION_STAGES),
            (p.MaxPool(3, S=2, P=1), image),
            (p.MaxPool(3, S=1, P=1), image),
            (p.AvgPool(2), image),
            (p.AdaptiveAvgPool(1), image),
            (p.PixelShuffle(2), image),
            (p.ChannelShuffle(2), image),
            (p.Add(), [image, image]),
            (p.Mul(), [image, (n, c, 1, 1)]),  # squeeze-excitation's scaling
            (p.Concat(1), [image, image]),
            (p.Linear(c * 4, c * 4), (n, c * 4)),
        ]
        if h >= 14:
            out += _few_kinds(c, h, n)
    out += [k for c, h, n in (QUICK_BATCH_STAGES if quick else BATCH_STAGES) for k in _convolutions(c, h, n)]
    if quick:  # the kinds timed at few stages of each grid: the quick grid times them at every full stage
        out += [k for c, h, n in STAGES if h >= 14 and (c, h, n) not in QUICK_STAGES for k in _few_kinds(c, h, n)]
    return out


def _convolutions(c: int, h: int, n: int) -> list:
    """The convolutions of every kind but the rare ones (:func:`_few_kinds`), at one stage."""
    from convcost import primitives as p

    image = (n, c, h, h)
    return [(p.Conv(c, c, 3, P=1), image),
            (p.Conv(c, c, 3, S=2, P=1), image),
            (p.Conv(c, 2 * c, 1), image),
            (p.Conv(c, c, 3, P=1, G=c), image),
            (p.Conv(c, c, 5, P=2, G=c), image),
            (p.Conv(c, c, 3, S=2, P=1, G=c), image),  # strided depthwise: an operation of its own
            (p.Conv(c, c, 3, P=1, G=max(c // 16, 2)), image)]


def _few_kinds(c: int, h: int, n: int) -> list:
    """The kernels of the kinds a CNN rarely has (transposed and 3-d convolutions), at one stage."""
    from convcost import primitives as p

    return [(p.ConvTranspose(c, c // 2, 2, S=2), (n, c, h, h)),
            (p.Conv(c // 2, c // 2, 3, P=1, dims=3), (n, c // 2, 4, h // 2, h // 2))]


def cache_path(device: str = "cpu", threads: int = 1, quick: bool = False, cache_dir=None) -> str:
    """Where the calibration of ``device`` is cached: the operating system's per-user cache folder
    (``platformdirs.user_cache_dir("convcost")``) unless ``cache_dir`` is given; the name holds the processor,
    the thread count and the torch release, so another machine or release is measured afresh.

    >>> cache_path("cpu", 2, cache_dir="/tmp/x")
    '/tmp/x/machine11-cpu-...-2threads-torch....json'
    """
    if cache_dir is None:
        import platformdirs  # a core dependency; imported here, as only the default folder needs it

        cache_dir = platformdirs.user_cache_dir("convcost", appauthor=False)
    size = "-quick" if quick else ""
    processor = re.sub(r"[^A-Za-z0-9]+", "_", describe(device, threads)["processor"]).strip("_")[:60]
    name = (f"machine{CALIBRATION_VERSION}-{device.replace(':', '')}-{processor}-{threads}threads-"
            f"torch{runtime.version()}{size}.json")
    return os.path.join(os.fspath(cache_dir), name)


def time_training(layer, input_shape, *, device: str = "cpu", threads: int = 1, min_run_time: float = 0.2) -> tuple:
    """``(forward, forward and backward)`` seconds of a convcost layer in training mode, its input needing a
    gradient as a layer's inside a network does (fastest block of each)."""
    modules = copies(layer, input_shape, device, training=True)
    xs = inputs(layer, input_shape, device, grad=True)
    grad = torch.ones_like(modules[0](*xs))
    turn = itertools.cycle(modules)

    def step():
        module = next(turn)
        for q in module.parameters():
            q.grad = None
        for x in xs:
            x.grad = None
        module(*xs).backward(grad)

    held = [None]

    def call():
        held[0] = next(turn)(*xs)

    forward = time_call(call, device=device, threads=threads, min_run_time=min_run_time, grad=True)
    both = time_call(step, device=device, threads=threads, min_run_time=min_run_time, grad=True)
    return forward, both


def time_network(model, input_shape, training: bool, *, device: str = "cpu", threads: int = 1,
                 min_run_time: float = 0.2) -> float:
    """Seconds of one call of a whole network (the median block): at inference its forward, in training one step
    (gradients cleared, forward, the output's mean's backward, an SGD step with momentum), as a model is timed.

    >>> from convcost.torch import networks
    >>> time_network(networks.build("classifier"), (1, 3, 32, 32), False, min_run_time=0.001) > 0
    True
    """
    dev = check_device(device)
    model = model.to(dev).train(training)
    x = torch.randn(*input_shape, device=dev)
    if not training:
        return time_call(model, x, device=device, threads=threads, min_run_time=min_run_time)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        model(x).mean().backward()
        opt.step()

    return time_call(step, device=device, threads=threads, min_run_time=min_run_time, grad=True)


def network_factors(machine: Machine, timings: dict, say=None) -> tuple:
    """``(machine.network, machine.network_call)``: per phase, the in-network factors and seconds per call (per row
    of a profile; a phase absent where none was kept) fitted on ``timings`` (``(name, label, batch, size, training)
    -> seconds`` of :mod:`convcost.torch.networks`), each network predicted from its profile on ``machine`` before
    any factor or per-call term."""
    samples = {}
    plain = machine.replace(network={}, network_call={})
    for (name, label, batch, size, training), seconds in timings.items():
        shape = (batch, 3, size, size)
        report = profile(networks.build(name), shape, training=training)
        parts, fixed, calls = network_parts(report, plain)
        samples.setdefault(label, []).append((f"{name} {batch}x{size}", parts, fixed, seconds, calls))
    out, per_call = {}, {}
    for label, rows in samples.items():
        # one shared factor or one per kind, each with or without seconds per call, whichever predicts a network left
        # out of its fit better, where it does so clearly better than none: a uniform slowdown of every network is a
        # factor too, and a slowdown that grows with a network's calls, not its kernels' time, is the per-call term
        how, errors, factors, call = latency_network.checked([row[1:] for row in rows],
                                                             [row[0].split()[0] for row in rows])
        out[label] = factors
        if call:
            per_call[label] = call
        if say:
            kept = (f"one shared factor {next(iter(factors.values())):.2f}" if how.startswith("shared") else
                    ", ".join(f"{k} {v:.2f}" for k, v in factors.items())
                    or ("no factor" if how in latency_network.CALL_FITS else "none"))
            kept += f", {call * 1e6:.2f} us per call (row)" if how in latency_network.CALL_FITS else ""
            held = ", ".join(f"{100 * e:.1f}% {what.replace('_', ' ')}" for what, e in errors.items())
            say(f"in-network factors, {label}: {kept} ("
                + (f"each network left out: mean error {held})" if errors else "one network: nothing held out)"))
            say("  predicted / measured before and after: " + ", ".join(
                f"{what} {(fixed + sum(parts.values())) / t:.2f} "
                f"{latency_network.corrected(parts, fixed, factors, call, calls) / t:.2f}"
                for what, parts, fixed, t, calls in rows))
    return out, per_call


def optimizer_cost(optimizer: str, device: str = "cpu", threads: int = 1, min_run_time: float = 0.2) -> tuple:
    """``(seconds per parameter tensor, seconds per parameter)`` of one ``optimizer.step()``: SGD with momentum
    0.9 or Adam (torch's defaults otherwise), on many small tensors and on a few large ones."""
    dev = check_device(device)

    def seconds(count, size):
        params = [torch.nn.Parameter(torch.randn(size, device=dev)) for _ in range(count)]
        for q in params:
            q.grad = torch.randn_like(q)
        opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9) if optimizer == "sgd" else torch.optim.Adam(params)
        return time_call(opt.step, device=device, threads=threads, min_run_time=min_run_time, grad=True)

    many, large = (400, 1024), (4, 1 << 20)
    t_many, t_large = seconds(*many), seconds(*large)
    # two equations t = a * tensors + b * parameters
    det = many[0] * large[0] * large[1] - large[0] * many[0] * many[1]
    a = (t_many * large[0] * large[1] - t_large * many[0] * many[1]) / det
    b = (many[0] * t_large - large[0] * t_many) / det
    return max(a, 0.0), max(b, 0.0)


def view_seconds(device: str = "cpu", threads: int = 1, min_run_time: float = 0.2) -> float:
    """Seconds of a call that runs no kernel: a module that flattens, called as a network calls it."""
    dev = check_device(device)
    flatten = torch.nn.Flatten().to(dev)
    return time_call(flatten, torch.randn(1, 64, 7, 7, device=dev), device=device, threads=threads,
                     min_run_time=min_run_time)


def calibrate(
    device: str = "cpu",
    *,
    threads: int = 1,
    cache: bool = True,
    cache_dir=None,
    quick: bool = False,
    min_run_time: float | None = None,
    passes: int | None = None,
    tolerance: float = 0.02,
    quiet: bool = False,
    network_settings=None,
) -> Machine:
    """Measure ``device`` and fit the latency model's factors; cached unless ``cache=False``.

    Everything is measured in passes, each pass over every quantity in turn (so that a busy moment of the
    machine spoils one reading of each, not all readings of one); a reading is the median block of its timing
    (:func:`time_call`) and each quantity keeps its fastest reading: interference only ever adds time.
    Passes go on until no reading improved by more than
    ``tolerance`` (relative) in the last pass, at least two (unless ``passes=1``) and at most ``passes``
    (default 6; quick 3).
    The machine's ``spread`` reports how far the passes' readings lay above the kept ones (median and
    worst over the kernels, and for peak and bandwidth): the calibration's own noise.

    ``quick=True`` times the kernels of :data:`QUICK_STAGES` (a subset of the full grid) for a shorter
    time each, and :data:`convcost.torch.networks.QUICK_NETWORKS`: its factors are meant to stay within 1.5x of
    the full calibration's. ``network_settings`` replaces the synthetic networks' batches and image sizes
    (:data:`convcost.torch.networks.SETTINGS`; smaller ones for a test, whose factors then fit small images).
    Progress goes to stderr, one line per stage, unless ``quiet=True``.
    """
    check_device(device)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConvcostError(f"calibrate: threads={threads!r} must be a positive integer")
    if passes is not None and (not isinstance(passes, int) or isinstance(passes, bool) or passes < 1):
        raise ConvcostError(f"calibrate: passes={passes!r} must be a positive integer")
    path = cache_path(device, threads, quick, cache_dir)
    say = _progress(quiet)
    if cache and os.path.exists(path):
        try:
            machine = Machine.load(path)
        except ConvcostError as exc:
            # a file this release's checks reject (written by another build of convcost, or cut short): the cache
            # is convcost's own, so it is measured again and replaced, not handed to the user as an error
            _progress(False)(f"the cached calibration cannot be used ({exc}); measuring afresh")
        else:
            say(f"using the cached calibration {path} (cache=False measures afresh)")
            return machine
    machine, _ = measure(device, threads=threads, quick=quick, min_run_time=min_run_time, passes=passes,
                         tolerance=tolerance, say=say, network_settings=network_settings)
    if cache:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        machine.save(path)
        say(f"done; cached in {path}")
    else:
        say("done")
    return machine


def measure(device: str = "cpu", *, threads: int = 1, quick: bool = False, min_run_time: float | None = None,
            passes: int | None = None, tolerance: float = 0.02, say=None, network_settings=None) -> tuple:
    """``(machine, samples)``: what :func:`calibrate` measures and fits, never cached, with the inference
    samples ``(cost, fastest seconds)`` it was fitted on (for other predictors fitted on the same kernels).
    ``network_settings`` replaces :data:`convcost.torch.networks.SETTINGS` (smaller images for a test)."""
    say = say or _progress(True)
    read = read_all(device, threads=threads, quick=quick, min_run_time=min_run_time, passes=passes,
                    tolerance=tolerance, say=say, network_settings=network_settings)
    return fit_readings(read, device, threads=threads, quick=quick, say=say)


def read_all(device: str = "cpu", *, threads: int = 1, quick: bool = False, min_run_time: float | None = None,
             passes: int | None = None, tolerance: float = 0.02, say=None, network_settings=None) -> dict:
    """What :func:`measure` times, before any fit: ``{"kernels", "nets", "readings", "fresh"}`` (the calibration
    kernels, the synthetic networks' settings, every pass's reading per quantity, and :func:`fresh_memory`'s
    pair), for :func:`fit_readings`."""
    say = say or _progress(True)
    run = min_run_time if min_run_time is not None else (0.01 if quick else 0.05)
    most = passes if passes is not None else (3 if quick else 6)
    kernels = calibration_kernels(quick)
    nets = [(name, *setting) for name in (networks.QUICK_NETWORKS if quick else networks.NETWORKS)
            for setting in (network_settings or networks.SETTINGS)]
    built = {net: networks.build(net[0]) for net in nets}
    say(f"measuring {device} with {threads} thread{'s' * (threads > 1)}: matmul peak, copy bandwidth, "
        f"{len(kernels)} kernels for inference and training, optimizers, views, {len(nets)} synthetic network "
        "timings, in passes until stable "
        f"(at most {most}), then fresh memory")
    readings = {}  # quantity -> every pass's reading
    cold = cold_kernels(kernels)

    def read(key, measure):
        readings.setdefault(key, []).append(measure())

    for done in range(most):
        read("peak", lambda: 1 / peak_matmul(device, threads, sizes=(256, 1024), min_run_time=run))
        read("bandwidth", lambda: 1 / copy_bandwidth(device, threads, elements=1 << 24, min_run_time=run))
        if check_device(device).type == "cpu":  # a copy that stays in one core's cache: the cache tier
            read("cache", lambda: 1 / copy_bandwidth(device, threads, elements=core_cache_bytes() // 16,
                                                     min_run_time=run))
        read("view", lambda: view_seconds(device, threads, min_run_time=run))
        for opt in ("sgd", "adam"):
            read(opt, lambda opt=opt: optimizer_cost(opt, device, threads, min_run_time=run))
        for i in cold:
            read(("cold", i), lambda: time_cold(*kernels[i], device=device, threads=threads,
                                                calls=COLD_CALLS if run >= 0.01 else 5))
        for i, (layer, shape) in enumerate(kernels):
            read(("inference", i), lambda: time_layer(layer, shape, device=device, threads=threads, min_run_time=run))
            read(("training", i), lambda: time_training(layer, shape, device=device, threads=threads,
                                                        min_run_time=run))
        for net in nets:
            read(("network", net), lambda net=net: time_network(built[net], (net[2], 3, net[3], net[3]), net[4],
                                                                 device=device, threads=threads, min_run_time=run))
        moved, how_many, of = _improvement(readings, tolerance)
        say(f"pass {done + 1}: peak {1 / min(readings['peak']) / 1e9:,.1f} GFLOP/s, bandwidth "
            f"{1 / min(readings['bandwidth']) / 1e9:,.1f} GB/s; the last pass improved a reading by up to "
            f"{100 * moved:.1f}% ({how_many} of {of} by more than {100 * tolerance:g}%)")
        if done + 1 >= min(2, most) and moved <= tolerance:
            break
    say("measuring the cost of fresh memory")
    threshold, fresh = fresh_memory(device, threads, min_run_time=run, largest_mib=64 if quick else 256,
                                    resolution_mib=4 if quick else 1)
    return {"kernels": kernels, "nets": nets, "readings": readings, "fresh": (threshold, fresh)}


def fit_readings(read: dict, device: str = "cpu", *, threads: int = 1, quick: bool = False, say=None) -> tuple:
    """``(machine, samples)`` fitted on :func:`read_all`'s readings (see :func:`measure`)."""
    say = say or _progress(True)
    kernels, nets, readings = read["kernels"], read["nets"], read["readings"]
    threshold, fresh = read["fresh"]
    cold = [i for i in cold_kernels(kernels) if ("cold", i) in readings]
    info = describe(device, threads)
    name = f"{info['processor']} ({info['device']}, {threads} thread{'s' * (threads > 1)}, torch {info['torch']})"
    best = {key: _best(values) for key, values in readings.items()}
    cache = {"cache_bytes": core_cache_bytes(), "cache_bandwidth": 1 / best["cache"]} if "cache" in best else {}
    machine = Machine(name, peak_flops=1 / best["peak"], bandwidth=1 / best["bandwidth"], alloc_threshold=threshold,
                      alloc_bandwidth=fresh, view_overhead=best["view"], **cache,
                      cold_overheads=cold_overheads(kernels, {i: best[("cold", i)] for i in cold}))
    costs = [layer.cost(shape) for layer, shape in kernels]
    inference = [(c, best[("inference", i)]) for i, c in enumerate(costs)]
    forward = [(c, best[("training", i)][0]) for i, c in enumerate(costs)]
    # the backward alone: a step less its forward (never below a tenth of the step, for a noisy pair)
    backward = [(latency.BackwardCost(c), max(best[("training", i)][1] - best[("training", i)][0],
                                              0.1 * best[("training", i)][1])) for i, c in enumerate(costs)]
    note = (f"convcost.torch.calibrate: {len(costs)} kernels{' (quick)' if quick else ''}, "
            f"{len(readings['peak'])} passes, matmul peak, copy bandwidth, fresh-memory cost")
    machine = latency.fit(machine, inference, fitted_from=note)
    # a training step's phases from the plain roofline's sides only: a first guess with every kernel on the compute
    # side anchored the backward's memory-bound kernels there
    training = {"forward": latency.fit_phase(machine, forward, compute_guess=False).as_dict(),
                "backward": latency.fit_phase(machine, backward, compute_guess=False).as_dict(),
                "optimizer": {opt: list(best[opt]) for opt in ("sgd", "adam")}}
    machine = machine.replace(training=training, spread=_spread(readings))
    say(f"fitting the in-network factors on {len(nets)} timings of {len({net[0] for net in nets})} synthetic networks")
    network, call = network_factors(machine, {net: best[("network", net)] for net in nets}, say)
    return machine.replace(network=network, network_call=call), inference


def _best(values):
    """The fastest reading (each component's, for pairs)."""
    if isinstance(values[0], tuple):
        return tuple(min(v[k] for v in values) for k in range(len(values[0])))
    return min(values)


def _main(value) -> float:
    return value[-1] if isinstance(value, tuple) else value


def _improvement(readings, tolerance: float) -> tuple:
    """``(most, moved, of)``: how much the last pass lowered the best reading of any quantity (relative; 1 after
    one pass), and how many of the ``of`` quantities it lowered by more than ``tolerance``.

    The passes stop on ``most``, so every one of some 700 quantities must hold still: where each reading is a few
    percent noisy (a busy machine), a quantity's best drops by more than 2% in a later pass with a fair chance
    (about one in the pass's number, for a new fastest reading), and some always do; the passes then run to their
    most (simulated, 730 quantities of half-normal noise: where the median reading lies 2.4% above the fastest,
    none of 400 runs settled by the sixth pass; at 1%, 84% did; the last zoo run's calibration measured 10.8%).
    ``moved`` says how many still move.

    >>> most, moved, of = _improvement({"peak": [1.0, 0.9], "view": [1.0, 1.0], ("cold", 0): [1.0, 0.5]}, 0.02)
    >>> round(most, 6), moved, of   # a cold call's reading is not counted
    (0.1, 1, 2)
    """
    worst, moved, of = 0.0, 0, 0
    for key, values in readings.items():
        if isinstance(key, tuple) and key[0] == "cold":  # a difference of two timings: noisier than the passes' aim
            continue
        of += 1
        if len(values) < 2:
            worst, moved = 1.0, moved + 1
            continue
        before, now = _main(_best(values[:-1])), _main(_best(values))
        if before > 0:
            worst = max(worst, (before - now) / before)
            moved += (before - now) / before > tolerance
    return worst, moved, of


def _spread(readings) -> dict:
    """How far each quantity's readings lay above its fastest, relative: the median reading's excess for peak,
    bandwidth and the view, and the median and worst of it over the kernels."""
    def excess(values):
        values = sorted(_main(v) for v in values)
        return (values[len(values) // 2] - values[0]) / values[0] if values[0] > 0 else 0.0

    kernels = sorted(excess(v) for k, v in readings.items() if isinstance(k, tuple))
    return {"passes": len(readings["peak"]), "peak": excess(readings["peak"]),
            "bandwidth": excess(readings["bandwidth"]), "view": excess(readings["view"]),
            "kernels_median": kernels[len(kernels) // 2] if kernels else 0.0,
            "kernels_worst": kernels[-1] if kernels else 0.0}


def _progress(quiet: bool):
    """A function that writes one line of progress to stderr (a no-op when ``quiet``)."""
    if quiet:
        return lambda message: None

    def say(message: str) -> None:
        print(f"convcost calibrate: {message}", file=sys.stderr, flush=True)

    return say
