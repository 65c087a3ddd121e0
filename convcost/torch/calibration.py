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
   :func:`convcost.latency.fit`.

The result is cached as JSON in the per-user cache folder of the operating system
(``platformdirs.user_cache_dir("convcost")``: ``$XDG_CACHE_HOME/convcost`` or
``~/.cache/convcost`` on Linux, ``~/Library/Caches/convcost`` on macOS,
``%LOCALAPPDATA%\\convcost\\Cache`` on Windows), keyed by device, threads, size and
torch version; ``cache=False`` measures afresh. A full calibration takes about
20 s; it reports its progress on stderr unless ``quiet=True``. Timings run under ``torch.inference_mode()``
with modules in
evaluation mode (``module.train(False)``). CUDA timings go through the same code (``torch.utils.benchmark``
synchronises the device) but have not been run by convcost's own tests, which
have no GPU; asking for ``"cuda"`` without one is a ConvcostError.

>>> import tempfile
>>> m = calibrate("cpu", quick=True, cache_dir=tempfile.mkdtemp(), quiet=True)
>>> m.peak_flops > 0 and m.bandwidth > 0 and "depthwise_conv" in m.efficiency
True
>>> calibrate("tpu")
Traceback (most recent call last):
...
convcost.errors.ConvcostError: unknown device 'tpu': use 'cpu', 'cuda' or 'cuda:<index>'
"""

from __future__ import annotations

import os
import platform
import re
import sys

import torch
from torch.utils import benchmark

from convcost import latency
from convcost.errors import ConvcostError
from convcost.latency import Machine
from convcost.torch.build import to_torch

#: bumped when calibration measures something new, so that older cached machines are measured again
CALIBRATION_VERSION = 2


def check_device(device) -> torch.device:
    """The torch device for ``device``, or a ConvcostError when it is unknown or absent.

    >>> check_device("cpu")
    device(type='cpu')
    """
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConvcostError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:<index>'")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConvcostError(f"device {device!r} requested but no CUDA GPU is available to torch {torch.__version__}")
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
        "torch": torch.__version__,
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


def time_call(fn, *args, device: str = "cpu", threads: int = 1, min_run_time: float = 0.2, warmup: int = 2,
              statistic: str = "min") -> float:
    """Seconds per call of ``fn(*args)``: warm-up calls, then ``Timer.blocked_autorange``.

    ``statistic="min"`` (default) is the fastest block's mean per call: on a
    machine shared with other work, interference only ever adds time, so the
    fastest block is the best estimate of the kernel's own latency.
    ``"median"`` is the median block.

    >>> time_call(torch.relu, torch.ones(8), min_run_time=0.001) > 0
    True
    """
    dev = check_device(device)
    if statistic not in ("min", "median"):
        raise ConvcostError(f"time_call: statistic={statistic!r} must be 'min' or 'median'")
    with torch.inference_mode():
        for _ in range(warmup):
            fn(*args)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        timer = benchmark.Timer(stmt="fn(*args)", globals={"fn": fn, "args": args}, num_threads=threads)
        measured = timer.blocked_autorange(min_run_time=min_run_time)
        return float(min(measured.times) if statistic == "min" else measured.median)


def time_layer(layer, input_shape, *, device: str = "cpu", threads: int = 1, min_run_time: float = 0.2) -> float:
    """Median seconds of the real kernels of a convcost layer on a random input of ``input_shape``."""
    dev = check_device(device)
    module = to_torch(layer, input_shape).to(dev).eval()
    x = torch.randn(*[int(s) for s in input_shape], device=dev)
    return time_call(module, x, device=device, threads=threads, min_run_time=min_run_time)


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


def fresh_memory(device: str = "cpu", threads: int = 1, largest_mib: int = 256, min_run_time: float = 0.2,
                 resolution_mib: int = 1) -> tuple:
    """``(alloc_threshold bytes, alloc_bandwidth bytes/s)``: what writing into newly allocated memory costs.

    At sizes doubling from 1 MiB, a new tensor is filled a few times while the
    process's minor page faults are counted (where they cannot be, a fill over twice
    as slow as into an existing tensor says it). Small blocks fault now and then,
    as the heap's history has it; from the allocator's threshold on (glibc: 32 MiB),
    every page of every call faults. That threshold, the smallest size from which
    every probed size faults, is bisected to ``resolution_mib``; the extra seconds
    per byte are filling a new tensor minus filling an existing one, at 64 MiB or more.
    ``(0.0, 0.0)`` when no size up to ``largest_mib`` pays (and always on CUDA, whose
    caching allocator reuses blocks).
    """
    dev = check_device(device)
    if dev.type == "cuda":
        return 0.0, 0.0

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
        except ImportError:  # no page-fault counter (Windows): the timing says it, less sharply
            reused, fresh = times(mib)
            return fresh > 2 * reused
        for _ in range(2):  # let the allocator settle (glibc raises its mmap threshold on a free)
            torch.empty(n, device=dev).fill_(1.0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(4):
            torch.empty(n, device=dev).fill_(1.0)
        pages = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4
        return pages > 0.9 * 4 * n / resource.getpagesize()

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


def calibration_kernels(quick: bool = False) -> list:
    """``(layer, input_shape)`` of the real kernels efficiency factors are fitted on: every kind at three
    sizes, two whose tensors stay in cache (batch 1) and one that streams from memory (batch 8).

    >>> len(calibration_kernels()), len(calibration_kernels(quick=True))
    (27, 18)
    """
    from convcost import primitives as p

    stages = ((8, 8, 1), (16, 4, 1)) if quick else ((64, 56, 1), (256, 14, 1), (32, 112, 8))
    out = []
    for c, h, n in stages:
        image = (n, c, h, h)
        out += [
            (p.Conv(c, c, 3, P=1), image),
            (p.Conv(c, c, 1), image),
            (p.Conv(c, c, 3, P=1, G=c), image),
            (p.Conv(c, c, 3, P=1, G=8), image),
            (p.ConvTranspose(c, c // 2, 2, S=2), image),
            (p.Conv(c // 2, c // 2, 3, P=1, dims=3), (n, c // 2, 4, h // 2, h // 2)),
            (p.Linear(c * 4, c * 4), (32 * n, c * 4)),
            (p.BatchNorm(c), image),
            (p.PixelShuffle(2), image),
        ]
    return out


def cache_path(device: str = "cpu", threads: int = 1, quick: bool = False, cache_dir=None) -> str:
    """Where the calibration of ``device`` is cached: the operating system's per-user cache folder
    (``platformdirs.user_cache_dir("convcost")``) unless ``cache_dir`` is given.

    >>> cache_path("cpu", 2, cache_dir="/tmp/x")
    '/tmp/x/machine2-cpu-2threads-torch....json'
    """
    if cache_dir is None:
        import platformdirs  # a core dependency; imported here, as only the default folder needs it

        cache_dir = platformdirs.user_cache_dir("convcost", appauthor=False)
    size = "-quick" if quick else ""
    name = f"machine{CALIBRATION_VERSION}-{device.replace(':', '')}-{threads}threads-torch{torch.__version__}{size}.json"
    return os.path.join(os.fspath(cache_dir), name)


def calibrate(
    device: str = "cpu",
    *,
    threads: int = 1,
    cache: bool = True,
    cache_dir=None,
    quick: bool = False,
    min_run_time: float | None = None,
    passes: int = 2,
    quiet: bool = False,
) -> Machine:
    """Measure ``device`` and fit the latency model's factors; cached unless ``cache=False``.

    ``quick=True`` uses tiny sizes and one pass (for tests and smoke runs): its
    numbers are dominated by call overhead and are not a calibration to trust.
    ``passes`` measurements of everything are made, and the best of each kept.
    Progress goes to stderr, one line per stage, unless ``quiet=True``.
    """
    check_device(device)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConvcostError(f"calibrate: threads={threads!r} must be a positive integer")
    if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
        raise ConvcostError(f"calibrate: passes={passes!r} must be a positive integer")
    path = cache_path(device, threads, quick, cache_dir)
    say = _progress(quiet)
    if cache and os.path.exists(path):
        say(f"using the cached calibration {path} (cache=False measures afresh)")
        return Machine.load(path)
    run = min_run_time if min_run_time is not None else (0.005 if quick else 0.2)
    kernels = calibration_kernels(quick)
    rounds = 1 if quick else passes
    say(f"measuring {device} with {threads} thread{'s' * (threads > 1)}: {rounds} pass{'es' * (rounds > 1)} over "
        f"matmul peak, copy bandwidth and {len(kernels)} kernels, then fresh memory"
        f"{'' if quick else ' (about 20 s)'}")
    peak, bandwidth, seconds = 0.0, 0.0, [float("inf")] * len(kernels)
    for done in range(rounds):
        # each pass measures everything once; a slow moment of the machine then spoils one pass, not the
        # result: the best peak, the best bandwidth and each kernel's fastest time are kept
        peak = max(peak, peak_matmul(device, threads, sizes=(64,) if quick else (512, 1024, 2048), min_run_time=run))
        bandwidth = max(bandwidth, copy_bandwidth(device, threads, elements=1 << 16 if quick else 1 << 25,
                                                  min_run_time=run))
        say(f"pass {done + 1}/{rounds}: peak {peak / 1e9:,.1f} GFLOP/s, bandwidth {bandwidth / 1e9:,.1f} GB/s; "
            f"timing {len(kernels)} kernels")
        seconds = [min(t, time_layer(layer, shape, device=device, threads=threads, min_run_time=run))
                   for t, (layer, shape) in zip(seconds, kernels)]
    say("measuring the cost of fresh memory")
    threshold, fresh = fresh_memory(device, threads, min_run_time=run, largest_mib=64 if quick else 256,
                                    resolution_mib=32 if quick else 1)
    info = describe(device, threads)
    name = f"{info['processor']} ({info['device']}, {threads} thread{'s' * (threads > 1)}, torch {info['torch']})"
    machine = Machine(name, peak_flops=peak, bandwidth=bandwidth, alloc_threshold=threshold, alloc_bandwidth=fresh)
    samples = [(layer.cost(shape), t) for t, (layer, shape) in zip(seconds, kernels)]
    machine = latency.fit(
        machine,
        samples,
        fitted_from=f"convcost.torch.calibrate: {len(samples)} kernels{' (quick)' if quick else ''}, "
        f"matmul peak, copy bandwidth, fresh-memory cost",
    )
    if cache:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        machine.save(path)
        say(f"done; cached in {path}")
    else:
        say("done")
    return machine


def _progress(quiet: bool):
    """A function that writes one line of progress to stderr (a no-op when ``quiet``)."""
    if quiet:
        return lambda message: None

    def say(message: str) -> None:
        print(f"convcost calibrate: {message}", file=sys.stderr, flush=True)

    return say
