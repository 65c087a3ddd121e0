"""A roofline latency model, refined by per-primitive efficiency factors. A model, not a measurement.

Conventions (what is predicted, from what):

* a cost is walked down its ``parts`` to its primitives; each primitive is one
  kernel and belongs to one *kind* (:data:`KINDS`): ``dense_conv`` (groups 1,
  kernel larger than 1x1), ``pointwise_conv`` (1x1, groups 1), ``depthwise_conv``
  (groups = input channels), ``grouped_conv`` (1 < groups < channels),
  ``transposed_conv``, ``conv3d``, ``linear``, ``elementwise`` (batch norm,
  activations, global pooling, add, multiply), ``pooling`` (windowed max and average
  pooling) and ``data_movement`` (pixel shuffle and unshuffle, channel shuffle,
  concatenation). Views that move nothing (identity, flatten, narrow) run no kernel:
  a single layer's prediction gives them no time, a whole model's gives them the
  machine's ``view_overhead`` (the call's dispatch).
* a primitive's work is ``flops = 2 macs + bias_ops + 2 norm_ops + act_ops +
  pool_ops + elementwise_ops`` (one FLOP per counted operation, two per
  multiply-add) and its traffic ``bytes = memory_access x itemsize(dtype)``.
* its time is ``overhead + max(flops / peak_flops, memory_seconds) / efficiency[kind]
  + allocation_seconds``: the roofline of the machine, slowed by how far that kind
  of kernel falls short of it, plus a fixed cost per kernel call, plus the cost of
  the fresh memory its output is written to. A convolution's compute efficiency takes
  the size of its call, ``P`` output positions (batch x output height x width):
  ``1 / (1 / efficiency + pixel_slowdown / P)`` (:meth:`Roof.slowdown`; a call on one
  7x7 image runs further from the roof than one on eight, or on one 56x56 image). ``memory_seconds`` is
  ``bytes / bandwidth``, or, when the machine has a cache tier
  (``cache_bytes``, ``cache_bandwidth``), the first ``cache_bytes`` at the cache's
  bandwidth and the rest at ``bandwidth``: small working sets stay in cache.
  ``allocation_seconds`` is ``output bytes / alloc_bandwidth`` for outputs of at
  least ``alloc_threshold`` bytes, else 0: on CPU, PyTorch allocates each output
  afresh, and glibc hands large blocks (32 MiB and up) straight from the kernel,
  so every call page-faults them in (measured: a 64 MiB ReLU takes 3x longer into a
  new tensor than into an existing one). Efficiency factors and the overhead are
  fitted on measured kernels (:func:`fit`, ``convcost.torch.calibrate``), the
  allocation cost is measured directly; a factor never fitted is 1.
* within a kind, each operation (:func:`op_key`: ``"elementwise/BatchNorm"``,
  ``"pooling/MaxPool"``, ``"elementwise/Activation-silu"``) takes its own factors and
  call overhead where calibration fitted them (a max pool's windows are not an average
  pool's, a SiLU's exponential is not a ReLU's comparison), else its kind's.

>>> from convcost import PointwiseConv
>>> m = Machine("toy", peak_flops=1e9, bandwidth=1e9)
>>> est = predict_latency(PointwiseConv(C=64, O=64, H=56, W=56), m)
>>> est.bound, round(est.intensity, 2), round(est.seconds * 1e3, 3)
('compute', 15.96, 25.891)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import sympy

from convcost import display, latency_network
from convcost.costs import ITEMSIZE, Cost
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.least_squares import nnls
from convcost.primitives import KINDS
from convcost.validate import entry_point, text

#: fitted inverse efficiencies are kept at or above this (efficiency at most 1/it),
#: so a kind the data cannot see is not predicted to take no time
MIN_SLOWDOWN = 0.02


@dataclasses.dataclass(frozen=True)
class Machine:
    """What the roofline needs to know about a device.

    ``peak_flops`` in FLOP/s, ``bandwidth`` in bytes/s, ``efficiency`` the fraction
    of the roofline each kind of kernel reaches (missing kinds: 1), ``overhead``
    seconds per kernel call, ``fitted_from`` where the numbers came from.

    >>> Machine("m", peak_flops=1e9, bandwidth=0)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: Machine 'm': bandwidth=0 must be a positive finite number (bytes/s)
    """

    name: str
    peak_flops: float
    bandwidth: float
    efficiency: dict = dataclasses.field(default_factory=dict)
    overhead: float = 0.0
    fitted_from: str = ""
    cache_bytes: float = 0.0
    cache_bandwidth: float = 0.0
    alloc_threshold: float = 0.0
    alloc_bandwidth: float = 0.0
    #: the fraction of the *memory* roof each kind reaches (missing kinds: their ``efficiency``)
    memory_efficiency: dict = dataclasses.field(default_factory=dict)
    #: seconds of a call that moves nothing (a view: flatten, reshape, identity)
    view_overhead: float = 0.0
    #: a training step's factors (:class:`Roof` fields under ``"forward"`` and ``"backward"``, and per
    #: optimizer ``[seconds per parameter tensor, seconds per parameter]``), fitted by calibration
    training: dict = dataclasses.field(default_factory=dict)
    #: how far repeated measurements of the calibration spread (relative, per quantity): its own noise
    spread: dict = dataclasses.field(default_factory=dict)
    #: seconds per call of one kind or one operation (:func:`op_key`), where calibration measured it apart from
    #: ``overhead`` (a batch norm's dispatch is not a ReLU's)
    overheads: dict = dataclasses.field(default_factory=dict)
    #: seconds a call of one kind or operation (:func:`op_key`) takes on top of its own inside a network, where
    #: the layers before it have evicted its code and state from the core's caches (measured by calibration on
    #: calls made after streaming a buffer larger than the core's cache; a single layer timed alone pays none)
    cold_overheads: dict = dataclasses.field(default_factory=dict)
    #: per phase (``"inference"``, ``"training"``) and kernel kind, the factor a kernel's time takes inside a
    #: whole network (:mod:`convcost.latency_network`; fitted by calibration on synthetic networks; missing: 1)
    network: dict = dataclasses.field(default_factory=dict)
    #: per phase (``"inference"``, ``"training"``), the seconds each row of a whole network's profile that runs a
    #: kernel (one call of a module or function; a view, none) adds inside it, whatever its kind and size: the
    #: framework's work between calls, which no factor scales (:func:`convcost.latency_network.fit_call`; fitted by
    #: calibration on synthetic networks and kept only where it predicts those left out better; missing: 0)
    network_call: dict = dataclasses.field(default_factory=dict)
    #: per convolution kind or operation (:data:`SIZED`), the compute roof's extra slowdown of a small call, in
    #: output positions: its compute efficiency on a call of ``P`` output positions (batch x output height x width)
    #: is ``1 / (1 / efficiency + pixel_slowdown / P)`` (missing: 0; see :meth:`Roof.slowdown`)
    pixel_slowdown: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for field, unit in (("peak_flops", "FLOP/s"), ("bandwidth", "bytes/s")):
            value = getattr(self, field)
            if not _positive(value):
                raise ConvcostError(f"Machine {self.name!r}: {field}={value!r} must be a "
                                    f"positive finite number ({unit})")
        if not (_finite(self.overhead) and self.overhead >= 0):
            raise ConvcostError(f"Machine {self.name!r}: overhead={self.overhead!r} must be a "
                                "finite number of seconds >= 0")
        for field in ("cache_bytes", "cache_bandwidth", "alloc_threshold", "alloc_bandwidth"):
            value = getattr(self, field)
            if not (_finite(value) and value >= 0):
                raise ConvcostError(f"Machine {self.name!r}: {field}={value!r} must be a finite number >= 0")
        if (self.cache_bytes > 0) != (self.cache_bandwidth > 0):
            raise ConvcostError(f"Machine {self.name!r}: give both cache_bytes and cache_bandwidth, or neither")
        if self.alloc_threshold > 0 and not self.alloc_bandwidth > 0:
            raise ConvcostError(f"Machine {self.name!r}: alloc_threshold needs an alloc_bandwidth (bytes/s)")
        if not isinstance(self.efficiency, dict):
            raise ConvcostError(f"Machine {self.name!r}: efficiency={self.efficiency!r} must be a dict kind -> factor")
        for field in ("efficiency", "memory_efficiency"):
            _check_factors(f"Machine {self.name!r}", field, getattr(self, field))
            factors = getattr(self, field)
            object.__setattr__(self, field, _ordered(factors))
        _check_nonnegative(f"Machine {self.name!r}", "pixel_slowdown", self.pixel_slowdown, "slowdown")
        object.__setattr__(self, "pixel_slowdown", _ordered(self.pixel_slowdown))
        for field in ("overheads", "cold_overheads"):
            _check_nonnegative(f"Machine {self.name!r}", field, getattr(self, field), "seconds",
                               "a finite number of seconds")
            object.__setattr__(self, field, _ordered(getattr(self, field)))
        if not (_finite(self.view_overhead) and self.view_overhead >= 0):
            raise ConvcostError(f"Machine {self.name!r}: view_overhead={self.view_overhead!r} must be a finite number "
                                "of seconds >= 0")
        latency_network.check(f"Machine {self.name!r}", self.network)
        latency_network.check_call(f"Machine {self.name!r}", self.network_call)
        object.__setattr__(self, "network_call", {p: float(v) for p, v in self.network_call.items()})
        for field in ("training", "spread"):
            if not isinstance(getattr(self, field), dict):
                raise ConvcostError(f"Machine {self.name!r}: {field}={getattr(self, field)!r} must be a dict")
        for part in ("forward", "backward"):
            if part in self.training:
                Roof.from_dict(self.training[part], where=f"Machine {self.name!r}: training[{part!r}]")
        for optimizer, pair in self.training.get("optimizer", {}).items():
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_finite(x) and x >= 0 for x in pair)):
                raise ConvcostError(f"Machine {self.name!r}: training['optimizer'][{optimizer!r}]={pair!r} must be "
                                    "[seconds per tensor, seconds per parameter], both >= 0")
        object.__setattr__(self, "view_overhead", float(self.view_overhead))
        object.__setattr__(self, "peak_flops", float(self.peak_flops))
        object.__setattr__(self, "bandwidth", float(self.bandwidth))
        object.__setattr__(self, "overhead", float(self.overhead))
        object.__setattr__(self, "cache_bytes", float(self.cache_bytes))
        object.__setattr__(self, "cache_bandwidth", float(self.cache_bandwidth))
        object.__setattr__(self, "alloc_threshold", float(self.alloc_threshold))
        object.__setattr__(self, "alloc_bandwidth", float(self.alloc_bandwidth))

    __hash__ = None

    @property
    def ridge(self) -> float:
        """The arithmetic intensity (FLOP/byte) where the roofline turns from memory- to compute-bound."""
        return self.peak_flops / self.bandwidth

    def memory_seconds(self, moved: float) -> float:
        """Seconds to move ``moved`` bytes: the cache tier first (if any), the rest at ``bandwidth``.

        >>> Machine("m", 1e9, 1e9, cache_bytes=1000, cache_bandwidth=1e10).memory_seconds(3000)
        2.1e-06
        """
        cached = min(moved, self.cache_bytes)
        return cached / self.cache_bandwidth + (moved - cached) / self.bandwidth if cached else moved / self.bandwidth

    def allocation_seconds(self, output_bytes: float) -> float:
        """Seconds to bring a fresh output of ``output_bytes`` into memory (0 below ``alloc_threshold``).

        >>> m = Machine("m", 1e9, 1e9, alloc_threshold=32 * 2**20, alloc_bandwidth=2e9)
        >>> m.allocation_seconds(2**20), m.allocation_seconds(64 * 2**20)
        (0.0, 0.033554432)
        """
        if not self.alloc_bandwidth or output_bytes < self.alloc_threshold:
            return 0.0
        return output_bytes / self.alloc_bandwidth

    def cold_overhead(self, kind: str) -> float:
        """Seconds a call of ``kind`` or ``"kind/Name"`` adds inside a network (:attr:`cold_overheads`: its
        operation's, else its family's, else its kind's; 0 where calibration measured none).

        >>> m = Machine("m", 1e9, 1e9, cold_overheads={"elementwise": 2e-5, "elementwise/BatchNorm": 5e-5})
        >>> m.cold_overhead("elementwise/BatchNorm"), m.cold_overhead("elementwise/Add"), m.cold_overhead("linear")
        (5e-05, 2e-05, 0.0)
        """
        _check_key(kind)
        return next((self.cold_overheads[k] for k in _chain(kind) if k in self.cold_overheads), 0.0)

    def factor(self, kind: str, pixels=math.inf) -> float:
        """The efficiency of ``kind``, or of one operation ``"kind/Name"`` (:func:`op_key`; its kind's where
        none was fitted apart; 1 where none was fitted), on a call of ``pixels`` output positions (a convolution:
        :meth:`Roof.slowdown`; by default the efficiency a call tends to as it grows)."""
        _check_key(kind)
        return self.roof().efficiency_of(kind, pixels)

    def memory_factor(self, kind: str) -> float:
        """The memory-roof efficiency of ``kind`` or ``"kind/Name"`` (its :meth:`factor` where none was fitted
        apart)."""
        _check_key(kind)
        return self.roof().memory_efficiency_of(kind)

    def roof(self, phase: str = "inference") -> Roof:
        """The factors of one phase: ``"inference"`` (the machine's own), or a training step's ``"forward"`` or
        ``"backward"`` (the inference factors where calibration fitted none)."""
        if phase == "inference" or phase not in self.training:
            if phase not in ("inference", "forward", "backward"):
                raise ConvcostError(f"unknown phase {phase!r}; known: inference, forward, backward")
            return Roof(dict(self.efficiency), dict(self.memory_efficiency), self.overhead, dict(self.overheads),
                        dict(self.pixel_slowdown))
        return Roof.from_dict(self.training[phase], where=f"Machine {self.name!r}: training[{phase!r}]")

    def replace(self, **changes) -> Machine:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path) -> None:
        """Write the machine as JSON to ``path``.

        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "m.json")
        >>> Machine("m", 1e9, 2e9, {"dense_conv": 0.5}).save(path)
        >>> Machine.load(path).efficiency
        {'dense_conv': 0.5}
        """
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.as_dict(), f, indent=2, sort_keys=True)
            f.write("\n")

    @classmethod
    def load(cls, path) -> Machine:
        """Read a machine saved by :meth:`save`; a missing or malformed file is a ConvcostError."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise ConvcostError(f"cannot read machine file {os.fspath(path)!r}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConvcostError(f"machine file {os.fspath(path)!r} is not valid JSON: {exc.msg} "
                                f"at line {exc.lineno}") from None
        return cls.from_dict(data, where=os.fspath(path))

    @classmethod
    def from_dict(cls, data, where: str = "machine data") -> Machine:
        if not isinstance(data, dict):
            raise ConvcostError(f"{where}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted({"name", "peak_flops", "bandwidth"} - set(data))
        if unknown or missing:
            problem = f"unknown fields {unknown}" if unknown else f"missing fields {missing}"
            raise ConvcostError(f"{where}: {problem}")
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class Roof:
    """One phase's factors: the fraction of the compute and memory roofs each kind (or operation, ``"kind/Name"``:
    :func:`op_key`) reaches, and seconds per kernel call (``overheads`` per kind or operation, else
    ``overhead``). A kernel takes ``overhead + max(compute / efficiency, memory / memory_efficiency)``; an
    operation without factors of its own takes its kind's.

    >>> roof = Roof({"pooling": 0.5, "pooling/MaxPool": 0.1}, {}, 1e-6, {"pooling/MaxPool": 3e-6})
    >>> roof.efficiency_of("pooling/AvgPool"), roof.efficiency_of("pooling/MaxPool"), roof.overhead_of("pooling")
    (0.5, 0.1, 1e-06)

    A convolution's compute efficiency depends on the size of its call (``pixels``: :meth:`slowdown`): one 7x7
    image per call runs further from the roof than eight do.

    >>> conv = Roof({"dense_conv": 0.8}, {}, 0.0, pixels={"dense_conv": 20.0})
    >>> [round(conv.efficiency_of("dense_conv", n * 49), 3) for n in (1, 2, 8)]
    [0.603, 0.688, 0.769]
    """

    efficiency: dict
    memory_efficiency: dict
    overhead: float
    overheads: dict = dataclasses.field(default_factory=dict)
    #: per kind or operation, the compute roof's extra slowdown of a small call, in output positions
    #: (:meth:`slowdown`)
    pixels: dict = dataclasses.field(default_factory=dict)

    def slowdown(self, key: str, pixels=math.inf):
        """The compute roof's inverse efficiency of ``key`` on a call of ``pixels`` output positions (batch x output
        height x width): ``1 / efficiency + p / pixels``, ``p`` the size term of the operation, family or kind whose
        ``efficiency`` is used (0 where it has none). Time per output position then falls as the call grows (a
        larger batch, a larger image) toward ``1 / efficiency``; ``pixels`` may be a sympy expression."""
        found = next((k for k in _chain(key) if k in self.efficiency), None)
        if found is None:
            return 1.0
        extra = self.pixels.get(found, 0.0)
        return 1.0 / self.efficiency[found] + (extra / pixels if extra else 0.0)

    def efficiency_of(self, key: str, pixels=math.inf) -> float:
        """The compute efficiency of ``key`` on a call of ``pixels`` output positions (:meth:`slowdown`)."""
        return 1.0 / self.slowdown(key, pixels)

    def memory_efficiency_of(self, key: str) -> float:
        # the first of the operation, its family and its kind with a factor of either roof: its memory factor
        for k in _chain(key):
            if k in self.memory_efficiency or k in self.efficiency:
                return self.memory_efficiency.get(k, self.efficiency.get(k))
        return 1.0

    def overhead_of(self, key: str) -> float:
        return next((self.overheads[k] for k in _chain(key) if k in self.overheads), self.overhead)

    def seconds(self, kind: str, compute: float, memory: float) -> float:
        """Seconds of one kernel of ``kind`` (its operation's factors, at its call's size, where ``kind`` is a
        :class:`KernelKind`)."""
        key = getattr(kind, "op", kind)
        return self.overhead_of(key) + max(compute * self.slowdown(key, getattr(kind, "pixels", math.inf)),
                                           memory / self.memory_efficiency_of(key))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data, where: str = "roof") -> Roof:
        need = {"efficiency", "memory_efficiency", "overhead"}
        if not isinstance(data, dict) or not need <= set(data) <= need | {"overheads", "pixels"}:
            raise ConvcostError(f"{where}: expected efficiency, memory_efficiency and overhead (and overheads, "
                                f"pixels), got {data!r}")
        for field in ("efficiency", "memory_efficiency"):
            _check_factors(where, field, data[field])
        if not (_finite(data["overhead"]) and data["overhead"] >= 0):
            raise ConvcostError(f"{where}: overhead={data['overhead']!r} must be a finite number of seconds >= 0")
        overheads = data.get("overheads", {})
        _check_nonnegative(where, "overheads", overheads, "seconds", "a finite number of seconds")
        pixels = data.get("pixels", {})
        _check_nonnegative(where, "pixels", pixels, "slowdown")
        return cls(dict(data["efficiency"]), dict(data["memory_efficiency"]), float(data["overhead"]),
                   {k: float(v) for k, v in overheads.items()}, {k: float(v) for k, v in pixels.items()})


class KernelKind(str):
    """A kernel's kind (a plain string of :data:`KINDS`) that also names its operation, ``op`` (:func:`op_key`):
    the factors of one operation, where calibration fitted them, are its own; and the size of its call, ``pixels``
    (:func:`pixels_of`), which a convolution's compute efficiency depends on.

    >>> k = KernelKind("pooling", "pooling/MaxPool")
    >>> k == "pooling", k.op, k.pixels
    (True, 'pooling/MaxPool', inf)
    """

    op: str
    pixels: object

    def __new__(cls, kind: str, op: str, pixels=math.inf):
        self = super().__new__(cls, kind)
        self.op = op
        self.pixels = pixels
        return self


#: the kinds whose compute efficiency depends on the size of the call (:meth:`Roof.slowdown`): convolutions, whose
#: kernels run further from the roof on few output positions (measured, one thread: a 3x3 convolution of 512
#: channels at 7x7 reached 63 GFLOP/s on one image and 99 on eight; on one image, 0.2 to 0.6 of the roof at 4x4 and
#: 7x7 outputs, 0.8 to 1 from 28x28 on)
SIZED = ("dense_conv", "pointwise_conv", "depthwise_conv", "grouped_conv", "transposed_conv", "conv3d")


def pixels_of(c: Cost):
    """The output positions of a convolution's call: its batch times its output's spatial extents (an expression
    where they are free); infinite for kinds not in :data:`SIZED`, whose efficiency takes no size.

    >>> import sympy
    >>> from convcost.primitives import Conv, Activation
    >>> conv = Conv(C=8, O=8, K=3)
    >>> pixels_of(conv.cost((4, 8, 9, 9))), pixels_of(conv.cost((sympy.Symbol("N"), 8, 9, 9)))
    (196, 49*N)
    >>> pixels_of(Activation("relu").cost((4, 8)))
    inf
    """
    if kind_of(c) not in SIZED or not c.output_shape:
        return math.inf
    pixels = sympy.sympify(c.output_shape[0])
    for extent in c.output_shape[2:]:
        pixels = pixels * sympy.sympify(extent)
    return int(pixels) if pixels.is_Integer else pixels


def op_key(c: Cost) -> str:
    """``"kind/Name"``: a primitive's kernel kind and the name of its operation (a batch norm and a ReLU are both
    element-wise, and their kernels differ), ``"kind/Name-function"`` for a spec whose ``kind`` field names its
    function (an activation: a SiLU's exponential is not a ReLU's comparison); None for a view.

    >>> from convcost.primitives import Activation, BatchNorm, MaxPool
    >>> op_key(BatchNorm(C=8).cost((1, 8, 4, 4))), op_key(MaxPool(K=3).cost((1, 8, 9, 9)))
    ('elementwise/BatchNorm', 'pooling/MaxPool')
    >>> op_key(Activation("silu").cost((1, 8))), _chain("elementwise/Activation-silu")
    ('elementwise/Activation-silu', ['elementwise/Activation-silu', 'elementwise/Activation', 'elementwise'])

    A strided depthwise convolution is an operation of its own (its kernel runs far from the unstrided one's fit):

    >>> from convcost.primitives import Conv
    >>> op_key(Conv(C=8, O=8, K=3, S=2, G=8).cost((1, 8, 9, 9))), op_key(Conv(C=8, O=8, K=3, G=8).cost((1, 8, 9, 9)))
    ('depthwise_conv/Conv-strided', 'depthwise_conv/Conv')
    """
    kind = kind_of(c)
    if kind is None:
        return None
    axes = getattr(c.spec, "axes", None)  # a convolution's (kernel, stride, dilation) per axis
    if kind == "depthwise_conv" and callable(axes) and any(int(s) != 1 for _, s, _ in axes()):
        return f"{kind}/{type(c.spec).__name__}-strided"
    function = getattr(c.spec, "kind", None) if "kind" in getattr(c.spec, "count_free_fields", ()) else None
    return f"{kind}/{type(c.spec).__name__}" + (f"-{function}" if isinstance(function, str) else "")


def _chain(key: str) -> list:
    """Where the factors of ``key`` are looked up, first to last: the operation, its family, its kind."""
    kind, _, name = key.partition("/")
    out = [key] if name else []
    if "-" in name:
        out.append(f"{kind}/{name.split('-')[0]}")
    return out + [kind]


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One primitive's share of a prediction."""

    name: str
    kind: str
    flops: int
    bytes: int
    compute_seconds: float
    memory_seconds: float
    seconds: float
    allocation_seconds: float = 0.0
    efficiency: float = 1.0
    memory_efficiency: float = 1.0

    @property
    def bound(self) -> str:
        """``"compute"`` or ``"memory"``: which roof, slowed by its efficiency, limits this kernel."""
        slow_compute = self.compute_seconds / self.efficiency
        return "compute" if slow_compute >= self.memory_seconds / self.memory_efficiency else "memory"


@dataclasses.dataclass(frozen=True, repr=False)
class Latency:
    """A latency estimate: ``seconds`` (the model), the pure ``roofline_seconds``, and per-kernel detail.

    It prints in human units (``seconds`` stays a float of seconds):

    >>> from convcost import DepthwiseConv
    >>> m = Machine("toy", peak_flops=1e11, bandwidth=1e10, efficiency={"depthwise_conv": 0.25}, overhead=1e-5)
    >>> predict_latency(DepthwiseConv(C=64, K=3, P=1, H=56, W=56), m)
    <Latency 653 µs (model; roofline 161 µs), memory-bound, 1 kernel, on toy>
    >>> print(predict_latency(DepthwiseConv(C=64, K=3, P=1, H=56, W=56), m).table())
    kernel  kind            time    bound   GFLOP  MB moved
    conv    depthwise_conv  653 µs  memory  0.00   1.61
    """

    seconds: float
    roofline_seconds: float
    flops: int
    bytes: int
    kernels: tuple
    machine: str

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte moved (infinite when nothing moves)."""
        return self.flops / self.bytes if self.bytes else math.inf

    @property
    def bound(self) -> str:
        """The roof that limits most of the predicted time: ``"compute"`` or ``"memory"``."""
        compute = sum(k.seconds for k in self.kernels if k.bound == "compute")
        memory = sum(k.seconds for k in self.kernels if k.bound == "memory")
        return "compute" if compute >= memory else "memory"

    @property
    def kernel_count(self) -> int:
        return len(self.kernels)

    def __str__(self) -> str:
        count = f"{self.kernel_count} kernel{'s' * (self.kernel_count != 1)}"
        return (f"{display.seconds(self.seconds)} (model; roofline {display.seconds(self.roofline_seconds)}), "
                f"{self.bound}-bound, {count}, on {self.machine}")

    def __repr__(self) -> str:
        return f"<Latency {self}>"

    def _rows(self) -> list:
        return [(k.name, k.kind, display.seconds(k.seconds), k.bound, f"{k.flops / 1e9:,.2f}",
                 f"{k.bytes / 1e6:,.2f}") for k in self.kernels]

    def _repr_html_(self) -> str:
        """The estimate and its kernels as an HTML table, for Jupyter."""
        return display.html_rows(str(self), ("kernel", "kind", "time", "bound", "GFLOP", "MB moved"), self._rows(), 2)

    def table(self) -> str:
        """One line per kernel: its predicted time in human units, the roof that limits it, its work."""
        rows = [("kernel", "kind", "time", "bound", "GFLOP", "MB moved"), *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def primitives(c: Cost, prefix: str = "") -> list:
    """``(dotted name, Cost)`` of every primitive a cost was summed from, in order.

    >>> from convcost import cost, SeparableConv
    >>> [name for name, _ in primitives(cost(SeparableConv, C=8, O=16, K=3, H=8, W=8))]
    ['depthwise', 'pointwise']
    """
    if c.parts:
        out = []
        for name, part in c.parts:
            out += primitives(part, f"{prefix}.{name}" if prefix else name)
        return out
    return [(prefix or type(c.spec).__name__, c)]


def kind_of(c: Cost) -> str | None:
    """The kernel kind of a primitive's cost, or None for a view that moves nothing.

    >>> from convcost.primitives import Conv
    >>> kind_of(Conv(C=32, O=32, K=3, G=32).cost((1, 32, 8, 8))), kind_of(Conv(C=32, O=64, K=1).cost((1, 32, 8, 8)))
    ('depthwise_conv', 'pointwise_conv')
    """
    spec = c.spec
    if c.memory_access == 0 and c.macs == 0:
        return None
    kind = getattr(spec, "kernel_kind", None)
    found = kind() if kind is not None else None
    if found is None:
        raise ConvcostError(f"no kernel kind for {spec!r}: the latency model knows {', '.join(KINDS)}")
    return found


def work(c: Cost) -> sympy.Expr:
    """FLOPs of a cost: two per multiply-add (MACs, batch norm), one per other counted operation."""
    return 2 * c.macs + c.bias_ops + 2 * c.norm_ops + c.act_ops + c.pool_ops + c.elementwise_ops


def _as_cost(spec_or_cost) -> Cost:
    if isinstance(spec_or_cost, Cost):
        c = spec_or_cost
    elif isinstance(spec_or_cost, Layer):
        c = spec_or_cost.cost()
    else:
        raise ConvcostError(f"predict_latency needs a convcost layer or Cost, got {spec_or_cost!r}")
    if c.free_symbols:
        names = ", ".join(sorted(map(str, c.free_symbols)))
        raise ConvcostError(f"cannot predict a latency with free symbols {names}; bind them with subs()")
    return c


@dataclasses.dataclass(frozen=True)
class BackwardCost:
    """The backward pass of a bound cost, as the latency model sees it: each kernel does ``2 x`` its share of
    ``backward_macs`` (the cost's own when None; shared among kernels as their forward MACs are) plus the
    forward's other operations, and moves twice the forward's bytes (the output's gradient and the saved
    tensors read, the input's gradient written). Its fresh memory is the forward's output's size and, for a
    trainable primitive, its parameters' gradients (one block: a weight's, with its bias's few elements), new
    tensors every step where gradients are set to None between steps (``optimizer.zero_grad()``'s default): a
    gradient of 32 MiB or more page-faults in each step (the last zoo run rescored offline: AlexNet's training step,
    one thread, with its linear layers' 144 MiB and 64 MiB weight gradients, 48% under without them, 13% with).

    >>> from convcost.primitives import Conv
    >>> c = Conv(C=8, O=8, K=3).cost((1, 8, 10, 10))
    >>> [(t[1], t[2], t[3]) for t in kernel_times(BackwardCost(c), Machine("m", 1e9, 1e9))]
    [('dense_conv', 147968, 15168)]
    >>> 2 * 2 * 8 * 8 * 9 * 64 + 512, 2 * 4 * (800 + 512 + 8 * 8 * 9 + 8)
    (147968, 15168)
    """

    cost: Cost
    backward_macs: object = None


def kernel_times(spec_or_cost, machine: Machine, dtype: str = "float32") -> list:
    """``(name, kind, flops, bytes, compute seconds, memory seconds, allocation seconds)`` of every
    kernel that does work (of the backward, for a :class:`BackwardCost`)."""
    if text("predict_latency", "dtype", dtype) not in ITEMSIZE:
        raise ConvcostError(f"unknown dtype {dtype!r}; known: {', '.join(ITEMSIZE)}")
    backward = isinstance(spec_or_cost, BackwardCost)
    c = _as_cost(spec_or_cost.cost if backward else spec_or_cost)
    parts = [(name, part, kind_of(part)) for name, part in primitives(c)]
    parts = [(name, part, KernelKind(kind, op_key(part), pixels_of(part))) for name, part, kind in parts
             if kind is not None]
    if backward:
        total = spec_or_cost.backward_macs if spec_or_cost.backward_macs is not None else c.backward_macs
        total, macs = int(total), sum(int(part.macs) for _, part, _ in parts)
    out = []
    for name, part, kind in parts:
        flops, moved = int(work(part)), int(part.memory_access) * ITEMSIZE[dtype]
        if backward:
            share = total * int(part.macs) / macs if macs else 0
            flops, moved = int(round(2 * share)) + flops - 2 * int(part.macs), 2 * moved
        fresh = machine.allocation_seconds(int(part.activation_elements) * ITEMSIZE[dtype])
        if backward and part.trainable:  # its parameters' gradients, new tensors each step (set to None between)
            fresh += machine.allocation_seconds(int(part.params) * ITEMSIZE[dtype])
        out.append((name, kind, flops, moved, flops / machine.peak_flops, machine.memory_seconds(moved), fresh))
    return out


@entry_point
def predict_latency(spec_or_cost, machine: Machine, dtype: str = "float32"):
    """The model's latency of a fully bound layer (or its Cost) on ``machine``; the front door
    :func:`convcost.predict_latency` also takes a whole profiled model (:mod:`convcost.model_latency`).

    >>> from convcost import DepthwiseConv
    >>> m = Machine("toy", peak_flops=1e11, bandwidth=1e10, efficiency={"depthwise_conv": 0.25}, overhead=1e-5)
    >>> est = predict_latency(DepthwiseConv(C=64, K=3, P=1, H=56, W=56), m)
    >>> est.bound, est.kernels[0].kind, round(est.seconds * 1e6, 1)
    ('memory', 'depthwise_conv', 653.3)
    >>> predict_latency(DepthwiseConv(C=64, K=3), m)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: cannot predict a latency with free symbols H, W; bind them with subs()
    """
    if not isinstance(machine, Machine):
        raise ConvcostError(f"predict_latency needs a Machine, got {machine!r}")
    return predict_kernels(_as_cost(spec_or_cost), machine, dtype)


def predict_kernels(c: Cost, machine: Machine, dtype: str = "float32", phase: str = "inference") -> Latency:
    """The :class:`Latency` of one bound cost's kernels in one phase (see :meth:`Machine.roof`)."""
    roof = machine.roof(phase)
    kernels = []
    for name, kind, flops, moved, compute, memory, fresh in kernel_times(c, machine, dtype):
        seconds = roof.seconds(kind, compute, memory) + fresh
        kernels.append(Kernel(name, kind, flops, moved, compute, memory, seconds, fresh,
                              roof.efficiency_of(kind.op, kind.pixels), roof.memory_efficiency_of(kind.op)))
    flops = sum(k.flops for k in kernels)
    moved = sum(k.bytes for k in kernels)
    return Latency(
        seconds=sum(k.seconds for k in kernels),
        roofline_seconds=max(flops / machine.peak_flops, machine.memory_seconds(moved)),
        flops=flops,
        bytes=moved,
        kernels=tuple(kernels),
        machine=machine.name,
    )


def fit(machine: Machine, samples, dtype: str = "float32", fitted_from: str = "") -> Machine:
    """``machine`` with efficiency factors and overheads fitted to measured ``(spec_or_cost, seconds)`` pairs.

    See :func:`fit_phase`; the allocation cost is the machine's (measured, not fitted). Kinds the samples
    never use keep the machine's factors.

    >>> from convcost import PointwiseConv, DepthwiseConv
    >>> truth = Machine("t", 1e11, 1e10, {"pointwise_conv": 0.5, "depthwise_conv": 0.1}, overhead=2e-5)
    >>> layers = [V(C=c, H=h, W=h, **kw) for c in (16, 64) for h in (14, 56)
    ...           for V, kw in ((PointwiseConv, {"O": c}), (DepthwiseConv, {"K": 3}))]
    >>> fitted = fit(Machine("t", 1e11, 1e10), [(x, predict_latency(x, truth).seconds) for x in layers])
    >>> {k: round(v, 3) for k, v in fitted.efficiency.items() if "/" not in k}, round(fitted.overhead * 1e6, 2)
    ({'pointwise_conv': 0.5, 'depthwise_conv': 0.1}, 20.0)
    """
    roof = fit_phase(machine, samples, dtype)
    efficiency = dict(machine.efficiency) | roof.efficiency
    memory = dict(machine.memory_efficiency) | roof.memory_efficiency
    note = fitted_from or f"fit to {len(samples)} measured samples"
    return machine.replace(efficiency=efficiency, memory_efficiency=memory, overhead=roof.overhead,
                           overheads=dict(machine.overheads) | roof.overheads,
                           pixel_slowdown=dict(machine.pixel_slowdown) | roof.pixels, fitted_from=note)


def fit_phase(machine: Machine, samples, dtype: str = "float32", compute_guess: bool = True) -> Roof:
    """The :class:`Roof` of one phase: factors and an overhead per kind (:func:`fit_roof`), for an operation
    the samples hold but a model may lack a kernel of, and factors and an overhead per operation
    (``by_op=True``), which a kernel of that operation takes first. ``compute_guess=False`` fits each operation
    from the plain roofline's sides only (see :func:`fit_roof`)."""
    kinds = fit_roof(machine, samples, dtype)
    ops = fit_roof(machine, samples, dtype, by_op=True, overhead=kinds.overhead, compute_guess=compute_guess)
    return Roof(kinds.efficiency | ops.efficiency, kinds.memory_efficiency | ops.memory_efficiency, kinds.overhead,
                ops.overheads, kinds.pixels | ops.pixels)


#: a sample whose plain roofline is under this share of its measured time is a call's dispatch, nearly all
TINY = 0.1


def fit_roof(machine: Machine, samples, dtype: str = "float32", rounds: int = 30, by_op: bool = False,
             overhead: float = 0.0, compute_guess: bool = True) -> Roof:
    """The :class:`Roof` that fits measured ``(spec_or_cost, seconds)`` pairs best, relative error counted.

    A kernel takes ``overhead + max(compute / e_c[kind], memory / e_m[kind])``: given which side of each
    max a kernel is on, time is linear in ``1/e_c``, ``1/e_m`` and ``overhead``, found by non-negative
    least squares on *relative* errors (each row divided by its measured time, so a 10 us kernel counts as
    much as a 100 ms one). The sides are then read again from the fitted factors, until they no longer
    change. A side no kernel of a kind is on takes the other side's factor. Only kinds the samples use are
    returned. ``by_op=True`` fits per operation (:func:`op_key`) instead of per kind, with an overhead for each
    (``overheads``) fitted where it has a *tiny* sample (one kernel whose plain roofline is under :data:`TINY`
    of its time: the call is nearly all dispatch), and ``overhead`` for an operation without one: an overhead
    fitted along with the factors of a few large kernels soaks up their noise. ``by_op`` also fits each
    operation from a first guess with every kernel on the compute side and keeps it where it fits clearly better
    (a max pool), unless ``compute_guess=False`` (a training step's phases: a step's backward of a memory-bound
    kernel is no compute-bound kernel, and a start on that side anchors the fit on it).
    """
    rows, measured = [], []
    for spec_or_cost, seconds in samples:
        if not _positive(seconds):
            raise ConvcostError(f"fit: measured time {seconds!r} of {spec_or_cost!r} must be a "
                                "positive number of seconds")
        rows.append(kernel_times(spec_or_cost, machine, dtype))
        measured.append(float(seconds))
    if not rows:
        raise ConvcostError("fit: needs at least one measured sample")
    key = (lambda kind: kind.op) if by_op else str
    kinds = list(dict.fromkeys(key(kt[1]) for r in rows for kt in r))
    if not by_op:
        kinds = [k for k in KINDS if k in kinds]
    y = np.asarray(measured)
    fresh = np.array([sum(kt[6] for kt in r) for r in rows])
    n = len(kinds)
    # a size term only for a convolution kind timed at two sizes or more: from one size the fit cannot tell it from
    # the kind's efficiency
    sizes = {}
    for r in rows:
        for kt in r:
            sizes.setdefault(key(kt[1]), set()).add(kt[1].pixels)
    sized = {k for k in kinds if k.split("/")[0] in SIZED and len(sizes[k]) > 1}
    if not by_op:
        coef = _fit_sized(rows, y, fresh, kinds, key, rounds, {k: 0 for k in kinds}, sized)
        return Roof({k: 1.0 / coef[i] for i, k in enumerate(kinds)},
                    {k: 1.0 / coef[n + i] for i, k in enumerate(kinds)}, float(coef[2 * n]), {},
                    _size_terms(coef, kinds, sized, 1))
    # an overhead of its own for an operation with a tiny sample; the given one for the others
    tiny = list(dict.fromkeys(key(r[0][1]) for r, t in zip(rows, measured)
                              if len(r) == 1 and max(r[0][4], r[0][5]) < TINY * t))
    known = np.array([sum(overhead for kt in r if key(kt[1]) not in tiny) for r in rows])
    calls = {k: i for i, k in enumerate(tiny)}
    m = len(tiny)
    # the sides are found by iterating from a first guess, and an operation whose kernels all start on the memory
    # side (a max pool: few operations per byte, yet each window's comparisons are slow) never leaves it; so it
    # is fitted from both guesses, each operation keeping the one its own kernels fit clearly better (its columns
    # are its own: one fit does not move another's)
    coef = _fit_sized(rows, y, fresh + known, kinds, key, rounds, calls, sized)
    if not compute_guess:
        other = coef.copy()
    else:
        other = _fit_sized(rows, y, fresh + known, kinds, key, rounds, calls, sized, compute_first=True)
    worse, better = (_errors(c, rows, y, fresh + known, kinds, key, calls) for c in (coef, other))
    for j, k in enumerate(kinds):
        if sum(better.get(k, ())) < 0.5 * sum(worse.get(k, ())):  # clearly better: a tie keeps the first guess
            coef[j], coef[n + j], coef[2 * n + m + j] = other[j], other[n + j], other[2 * n + m + j]
            if k in calls:
                coef[2 * n + calls[k]] = other[2 * n + calls[k]]
    overheads = {k: float(coef[2 * n + tiny.index(k)]) if k in tiny else float(overhead) for k in kinds}
    return Roof({k: 1.0 / coef[i] for i, k in enumerate(kinds)},
                {k: 1.0 / coef[n + i] for i, k in enumerate(kinds)}, float(overhead), overheads,
                _size_terms(coef, kinds, sized, m))


#: a sum of squared relative errors this small is a fit already exact (to rounding): no term can improve it
EXACT = 1e-12


def _fit_sized(rows, y, fixed, kinds, key, rounds: int, calls: dict, sized, compute_first: bool = False):
    """:func:`_fit_sides` with the size terms of ``sized`` and without any, each kind keeping the columns of the fit
    with the term where its own samples fit better with it, unless they fit exactly without it (:data:`EXACT`: on
    few kernels of the compute side the term and the efficiency trade off freely, and the term would only move the
    efficiency)."""
    plain = _fit_sides(rows, y, fixed, kinds, key, rounds, calls, frozenset(), compute_first)
    if not sized:
        return plain
    coef = _fit_sides(rows, y, fixed, kinds, key, rounds, calls, sized, compute_first)
    without, with_term = (_errors(c, rows, y, fixed, kinds, key, calls) for c in (plain, coef))
    n, m = len(kinds), len(set(calls.values()))
    out = plain.copy()
    for j, k in enumerate(kinds):
        error = sum(without.get(k, ()))
        if k in sized and error > EXACT and sum(with_term.get(k, ())) < error:
            out[j], out[n + j], out[2 * n + m + j] = coef[j], coef[n + j], coef[2 * n + m + j]
            if k in calls:
                out[2 * n + calls[k]] = coef[2 * n + calls[k]]
    return out


def _size_terms(coef, kinds, sized, m: int) -> dict:
    """The fitted size terms (:meth:`Roof.slowdown`) of the kinds that have one, from :func:`_fit_sides`'s columns."""
    n = len(kinds)
    return {k: float(coef[2 * n + m + j]) for j, k in enumerate(kinds) if k in sized and coef[2 * n + m + j] > 0}


def _compute_slowdown(coef, n: int, m: int, j: int, pixels) -> float:
    """``1/e_c`` of kind ``j`` on a call of ``pixels`` output positions under :func:`_fit_sides`'s columns."""
    return coef[j] + coef[2 * n + m + j] / pixels


def _errors(coef, rows, y, fixed, kinds, key, calls: dict) -> dict:
    """Per kind (or operation), the squared relative errors of the samples holding a kernel of it under ``coef``
    (:func:`_fit_sides`'s columns)."""
    n, m, out = len(kinds), len(set(calls.values())), {}
    for i, r in enumerate(rows):
        predicted = fixed[i]
        for kt in r:
            j = kinds.index(key(kt[1]))
            predicted += max(kt[4] * _compute_slowdown(coef, n, m, j, kt[1].pixels), kt[5] * coef[n + j])
            predicted += coef[2 * n + calls[key(kt[1])]] if key(kt[1]) in calls else 0.0
        for k in dict.fromkeys(key(kt[1]) for kt in r):
            out.setdefault(k, []).append((predicted / y[i] - 1) ** 2)
    return out


def _fit_sides(rows, y, fixed, kinds, key, rounds: int, calls: dict, sized=frozenset(),
               compute_first: bool = False) -> np.ndarray:
    """``[1/e_c per kind, 1/e_m per kind, overheads, size terms per kind]`` by non-negative least squares on
    relative errors: an overhead column per distinct value of ``calls`` (kind -> column; a kind not in it has
    none), a size term (compute seconds over the call's output positions: :meth:`Roof.slowdown`) for the kinds in
    ``sized``
    (0 for the others), the seconds in ``fixed`` taken as known, each kernel's side of the max read again until it
    no longer moves."""
    # the first guess: each kernel on the side of the plain roofline (or every kernel on the compute side)
    compute_side = [[compute_first or kt[4] >= kt[5] for kt in r] for r in rows]
    coef, seen, n, m = None, set(), len(kinds), len(set(calls.values()))
    for _ in range(rounds):
        # columns: compute seconds per kind (coefficient 1/e_c), memory seconds per kind (1/e_m), calls (overhead),
        # compute seconds over the call's output positions per kind (the size term)
        design = np.zeros((len(rows), 3 * n + m))
        for i, r in enumerate(rows):
            for (_, kind, _, _, compute, memory, _), on_compute in zip(r, compute_side[i]):
                j = kinds.index(key(kind))
                design[i, j if on_compute else n + j] += compute if on_compute else memory
                if on_compute and key(kind) in sized:
                    design[i, 2 * n + m + j] += compute / kind.pixels
                if key(kind) in calls:
                    design[i, 2 * n + calls[key(kind)]] += 1
        lower = np.array([MIN_SLOWDOWN] * (2 * n) + [0.0] * (m + n))
        used = design[:, :2 * n].any(axis=0)
        # each column scaled to unit length: a size term's column (compute seconds over thousands of positions) is
        # orders of magnitude below the others, and unscaled its fit is lost in the solver's tolerances
        a = design / y[:, None]
        scale = np.linalg.norm(a, axis=0)
        scale[scale == 0] = 1.0
        coef = nnls(a / scale, 1 - fixed / y, lower * scale) / scale
        for j in range(n):  # a side nothing is on: the other side's factor (from the compute side: the plain roof's
            if not used[j]:  # bandwidth, as no kernel was seen slower on it)
                coef[j] = coef[n + j] if used[n + j] else 1.0
                coef[2 * n + m + j] = 0.0
            if not used[n + j]:
                coef[n + j] = 1.0 if compute_first else coef[j]
            if kinds[j] not in sized:
                coef[2 * n + m + j] = 0.0
        side = [[kt[4] * _compute_slowdown(coef, n, m, kinds.index(key(kt[1])), kt[1].pixels)
                 >= kt[5] * coef[n + kinds.index(key(kt[1]))] for kt in r]
                for r in rows]
        as_key = tuple(map(tuple, side))
        if side == compute_side or as_key in seen:
            break
        seen.add(as_key)
        compute_side = side
    return coef


def _check_key(key) -> None:
    """A kind of :data:`KINDS`, or an operation ``"kind/Name"`` of one (:func:`op_key`)."""
    if not isinstance(key, str) or key.split("/")[0] not in KINDS or key.count("/") > 1 or key.endswith("/"):
        raise ConvcostError(f"unknown kernel kind {key!r}; known: {', '.join(KINDS)} (or an operation of one, "
                            "'kind/Name')")


def _ordered(values: dict) -> dict:
    """Floats per kind in the order of :data:`KINDS`, each kind's operations after it (sorted)."""
    rank = {k: i for i, k in enumerate(KINDS)}
    return {k: float(values[k]) for k in sorted(values, key=lambda k: (rank[k.split("/")[0]], k))}


def _check_nonnegative(where, field, values, unit, number="a finite number") -> None:
    """``values``: a dict kernel kind -> a finite number >= 0 (``unit`` and ``number`` word the errors)."""
    if not isinstance(values, dict):
        raise ConvcostError(f"{where}: {field}={values!r} must be a dict kind -> {unit}")
    for key, value in values.items():
        try:
            _check_key(key)
        except ConvcostError as exc:
            raise ConvcostError(f"{where}: {field}: {exc}") from None
        if not (_finite(value) and value >= 0):
            raise ConvcostError(f"{where}: {field}[{key!r}]={value!r} must be {number} >= 0")


def _check_factors(where, field, factors) -> None:
    if not isinstance(factors, dict):
        raise ConvcostError(f"{where}: {field}={factors!r} must be a dict kind -> factor")
    for kind, factor in factors.items():
        if not isinstance(kind, str) or kind.split("/")[0] not in KINDS or kind.count("/") > 1:
            raise ConvcostError(f"{where}: unknown kernel kind {kind!r}; known: {', '.join(KINDS)}")
        if not _positive(factor):
            raise ConvcostError(f"{where}: {field}[{kind!r}]={factor!r} must be a positive finite number")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value) -> bool:
    return _finite(value) and value > 0
