"""``profile(model, input_shape)``: the exact cost of every leaf operation of a PyTorch model.

Conventions are convcost's (:mod:`convcost.costs`): params are parameter tensors
by ``numel``, each tensor once (tied weights once); MACs are those of
convolutions, transposed convolutions, linear layers and matrix products, bias
excluded, equal to ``FlopCounterMode`` / 2; other work is reported apart.

How a model is read:

* ``torch.fx.symbolic_trace`` records the graph, so functional calls are seen
  (``F.conv2d``, ``F.linear``, ``torch.cat``, ``x + y``, ``x * w``, ``flatten``,
  ``matmul``/``bmm``, activations ...). Called modules are read through the one
  registry (:func:`convcost.torch.from_torch`); functions through
  :data:`FUNCTIONS`/:data:`METHODS`, each rule a convcost primitive. Views and
  shape queries (``view``, ``reshape``, ``permute``, ``size`` ...) cost nothing
  and make no row. The trace is cached per model object.
* Shapes are propagated by convcost's own formulas, so nothing is computed
  (not even on meta tensors) for a supported model; each count is the
  primitive's own formula, run on Python ints.
* An operation without a rule is listed in ``report.unsupported`` with its
  count; its output shape comes from running it alone on meta tensors.
* A model fx cannot trace is read with forward hooks on its leaf modules (on
  meta tensors); the report says so, and that functional calls are then unseen.
* An input the model rejects raises :class:`ConvcostError` with PyTorch's reason.
* Symbols in ``input_shape`` (``(1, 3, H, W)``) give closed forms in them;
  ``report.evaluate(H=..., W=...)`` evaluates them at many sizes at once.

>>> import torch, torch.nn as nn, torch.nn.functional as F
>>> class Net(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv2d(3, 8, 3, padding=1)
...         self.fc = nn.Linear(8, 10)
...     def forward(self, x):
...         y = F.relu(self.conv(x))
...         return self.fc(torch.flatten(F.adaptive_avg_pool2d(y + x.mean() , 1), 1))
>>> r = profile(Net(), (1, 3, 32, 32))
>>> r.total["params"], r.total["macs"]
(314, 221264)
>>> [(u.op, u.count) for u in r.unsupported]
[('Tensor.mean', 1)]
"""

from __future__ import annotations

import operator
import weakref

import sympy
import torch
import torch.fx
import torch.nn.functional as F

from convcost import primitives as p
from convcost.costs import METRICS
from convcost.errors import ConvcostError
from convcost.layers import Merge
from convcost.report import Report, Row, Unsupported
from convcost.shapes import as_shape
from convcost.torch.registry import REGISTRY


class _T:
    """A tensor known by its shape (and, for a parameter or buffer, the tensor itself)."""

    __slots__ = ("shape", "tensor", "name")

    def __init__(self, shape, tensor=None, name=""):
        self.shape, self.tensor, self.name = tuple(shape), tensor, name


class _Unknown:
    """The value of an operation whose output convcost could not determine."""

    __slots__ = ("op",)

    def __init__(self, op):
        self.op = op


class _Emit:
    """A rule's answer: cost ``spec`` on ``inputs`` (shapes), reading parameter tensors ``reads``."""

    __slots__ = ("spec", "inputs", "reads", "out")

    def __init__(self, spec, inputs, reads=(), out=None):
        self.spec, self.inputs, self.reads, self.out = spec, inputs, reads, out


# -- functional rules ------------------------------------------------------------------------------


def _bind(names, defaults, args, kwargs):
    values = dict(zip(names, args))
    for k, v in kwargs.items():
        values[k] = v
    for k, v in defaults.items():
        values.setdefault(k, v)
    return values


def _axes(value, dims):
    if isinstance(value, (tuple, list)):
        value = tuple(int(v) for v in value)
        return value[0] if len(set(value)) == 1 else value
    return value if isinstance(value, str) else int(value)


def _reads(*values):
    return tuple(v.tensor for v in values if isinstance(v, _T) and isinstance(v.tensor, torch.nn.Parameter))


def _conv(dims):
    def rule(args, kwargs):
        a = _bind(("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                  {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}, args, kwargs)
        x, w, b = a["input"], a["weight"], a["bias"]
        groups = int(a["groups"])
        spec = p.Conv(C=int(w.shape[1]) * groups, O=int(w.shape[0]), K=_axes(w.shape[2:], dims),
                      S=_axes(a["stride"], dims), P=_axes(a["padding"], dims), D=_axes(a["dilation"], dims),
                      G=groups, bias=b is not None, dims=dims)
        return _Emit(spec, [x.shape], _reads(w, b))
    return rule


def _conv_transpose(dims):
    def rule(args, kwargs):
        a = _bind(("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
                  {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1},
                  args, kwargs)
        x, w, b = a["input"], a["weight"], a["bias"]
        groups = int(a["groups"])
        spec = p.ConvTranspose(C=int(w.shape[0]), O=int(w.shape[1]) * groups, K=_axes(w.shape[2:], dims),
                               S=_axes(a["stride"], dims), P=_axes(a["padding"], dims),
                               output_padding=_axes(a["output_padding"], dims), D=_axes(a["dilation"], dims),
                               G=groups, bias=b is not None, dims=dims)
        return _Emit(spec, [x.shape], _reads(w, b))
    return rule


def _linear(args, kwargs):
    a = _bind(("input", "weight", "bias"), {"bias": None}, args, kwargs)
    w, b = a["weight"], a["bias"]
    return _Emit(p.Linear(C=int(w.shape[1]), O=int(w.shape[0]), bias=b is not None), [a["input"].shape], _reads(w, b))


def _matmul(args, kwargs):
    """``x @ y`` as a bias-free Linear on ``x``: (..., n, k) @ (k, m) or batched (..., k, m)."""
    x, y = args[0], args[1]
    if not isinstance(x, _T) or not isinstance(y, _T) or len(x.shape) < 2 or len(y.shape) < 2:
        raise _NoRule("matmul of vectors or non-tensors")
    batch_x, batch_y = x.shape[:-2], y.shape[:-2]
    if len(batch_y) > len(batch_x) or any(by != 1 and by != bx for bx, by in zip(batch_x[::-1], batch_y[::-1])):
        raise _NoRule("matmul whose second operand has more batch entries than the first")
    return _Emit(p.Linear(C=y.shape[-2], O=y.shape[-1], bias=False), [x.shape], _reads(x, y))


def _activation(kind):
    def rule(args, kwargs):
        return _Emit(p.Activation(kind), [args[0].shape])
    return rule


def _hardtanh(args, kwargs):
    """``F.hardtanh``: ReLU6 when clamped to [0, 6] (``nn.ReLU6`` calls it so), no rule otherwise."""
    a = _bind(("input", "min_val", "max_val", "inplace"), {"min_val": -1.0, "max_val": 1.0}, args, kwargs)
    if (float(a["min_val"]), float(a["max_val"])) != (0.0, 6.0):
        raise _NoRule(f"hardtanh to [{a['min_val']}, {a['max_val']}] (only [0, 6], ReLU6, is an activation convcost counts)")
    return _Emit(p.Activation("relu6"), [a["input"].shape])


def _shuffle(cls, factor):
    """``F.pixel_shuffle``, ``F.pixel_unshuffle``, ``F.channel_shuffle``: one integer argument each."""
    def rule(args, kwargs):
        a = _bind(("input", factor), {}, args, kwargs)
        return _Emit(cls(int(a[factor])), [a["input"].shape])
    return rule


def _broadcast(shapes):
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for sizes in zip(*padded):
        big = [x for x in sizes if x != 1]
        out.append(big[0] if big else 1)
    return tuple(out)


def _elementwise(merge):
    """``x + y``, ``x * w`` ...: a convcost merge on the broadcast shapes; a number operand broadcasts."""
    def rule(args, kwargs):
        tensors = [a for a in args[:2] if isinstance(a, _T)]
        if not tensors:
            raise _NoRule("not a tensor operation")
        out = _broadcast([t.shape for t in tensors])
        shapes = [t.shape if len(t.shape) == len(out) else (1,) * (len(out) - len(t.shape)) + t.shape for t in tensors]
        if len(shapes) == 1 or merge is p.Add:
            shapes = [out, out]  # Add needs equal shapes: a broadcast operand is read as expanded
        return _Emit(merge(), shapes, _reads(*args[:2]))
    return rule


def _cat(args, kwargs):
    a = _bind(("tensors", "dim"), {"dim": 0}, args, kwargs)
    tensors = list(a["tensors"])
    if len(tensors) == 1:
        return tensors[0]
    return _Emit(p.Concat(int(a["dim"])), [t.shape for t in tensors], _reads(*tensors))


def _flatten(args, kwargs):
    a = _bind(("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1}, args, kwargs)
    return _Emit(p.Flatten(int(a["start_dim"]), int(a["end_dim"])), [a["input"].shape])


def _pool(cls, dims, names, defaults):
    def rule(args, kwargs):
        a = _bind(names, defaults, args, kwargs)
        if a.get("return_indices"):
            raise _NoRule("pooling that returns indices")
        k = _axes(a["kernel_size"], dims)
        s = k if a["stride"] in (None, [], ()) else _axes(a["stride"], dims)
        fields = dict(K=k, S=s, P=_axes(a["padding"], dims), ceil_mode=bool(a["ceil_mode"]), dims=dims)
        if cls is p.MaxPool:
            fields["D"] = _axes(a["dilation"], dims)
        return _Emit(cls(**fields), [a["input"].shape])
    return rule


def _adaptive(cls, dims):
    def rule(args, kwargs):
        a = _bind(("input", "output_size", "return_indices"), {"return_indices": False}, args, kwargs)
        size = a["output_size"]
        if size is None or (isinstance(size, (tuple, list)) and None in size):
            raise _NoRule("adaptive pooling to a None size")
        if a["return_indices"]:
            raise _NoRule("pooling that returns indices")
        return _Emit(cls(_axes(size, dims), dims=dims), [a["input"].shape])
    return rule


# -- shape-only operations (no work, no row) ------------------------------------------------------------


def _view(args, kwargs):
    x = args[0]
    sizes = args[1:] if len(args) > 2 or not isinstance(args[1], (tuple, list)) else tuple(args[1])
    sizes = list(kwargs.get("shape", kwargs.get("size", sizes)))
    total = sympy.Mul(*x.shape)
    if -1 in sizes:
        known = sympy.Mul(*(s for s in sizes if s != -1))
        sizes[sizes.index(-1)] = sympy.simplify(total / known)
    return _T(tuple(_int(s) for s in sizes))


def _int(x):
    if type(x) is int:
        return x
    x = sympy.sympify(x)
    return int(x) if x.is_Integer else x


def _permute(args, kwargs):
    x = args[0]
    order = args[1:] if len(args) > 2 or not isinstance(args[1], (tuple, list)) else tuple(args[1])
    order = kwargs.get("dims", order)
    return _T(tuple(x.shape[int(i)] for i in order))


def _transpose(args, kwargs):
    x, a, b = args[0], int(args[1]), int(args[2])
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return _T(tuple(shape))


def _size(args, kwargs):
    x = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    return x.shape if dim is None else x.shape[int(dim)]


def _chunk(args, kwargs):
    a = _bind(("input", "chunks", "dim"), {"dim": 0}, args, kwargs)
    x, n, dim = a["input"], int(a["chunks"]), int(a["dim"])
    length = x.shape[dim]
    if not isinstance(length, int):
        raise _NoRule("chunk of a symbolic axis")
    piece = -(-length // n)
    out, start = [], 0
    while start < length:
        shape = list(x.shape)
        shape[dim] = min(piece, length - start)
        out.append(_T(tuple(shape)))
        start += piece
    return tuple(out)


def _narrow(args, kwargs):
    a = _bind(("input", "dim", "start", "length"), {}, args, kwargs)
    out = p.Narrow(dim=int(a["dim"]), start=a["start"], length=a["length"]).cost(a["input"].shape).output_shape
    return _T(tuple(_int(x) for x in out))


def _same(args, kwargs):
    return args[0]


class _NoRule(Exception):
    """This call has no convcost rule: it is listed as unsupported."""


_POOL_ARGS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_POOL_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False}
_AVG_ARGS = ("input", "kernel_size", "stride", "padding", "ceil_mode")
_AVG_DEFAULTS = {"stride": None, "padding": 0, "ceil_mode": False}

#: rules for ``call_function`` nodes, by the function traced
FUNCTIONS = {
    F.conv1d: _conv(1), F.conv2d: _conv(2), F.conv3d: _conv(3),
    F.conv_transpose1d: _conv_transpose(1), F.conv_transpose2d: _conv_transpose(2),
    F.conv_transpose3d: _conv_transpose(3),
    F.linear: _linear,
    torch.matmul: _matmul, operator.matmul: _matmul, torch.mm: _matmul, torch.bmm: _matmul,
    operator.add: _elementwise(p.Add), operator.iadd: _elementwise(p.Add), torch.add: _elementwise(p.Add),
    operator.sub: _elementwise(p.Add), torch.sub: _elementwise(p.Add),
    operator.mul: _elementwise(p.Mul), operator.imul: _elementwise(p.Mul), torch.mul: _elementwise(p.Mul),
    operator.truediv: _elementwise(p.Mul), torch.div: _elementwise(p.Mul),
    torch.cat: _cat, torch.concat: _cat,
    torch.flatten: _flatten,
    F.relu: _activation("relu"), torch.relu: _activation("relu"), F.relu6: _activation("relu6"),
    torch.sigmoid: _activation("sigmoid"), F.sigmoid: _activation("sigmoid"),
    torch.tanh: _activation("tanh"), F.tanh: _activation("tanh"),
    F.hardswish: _activation("hardswish"), F.hardsigmoid: _activation("hardsigmoid"),
    F.silu: _activation("silu"), F.gelu: _activation("gelu"), F.leaky_relu: _activation("leaky_relu"),
    F.elu: _activation("elu"),
    F.max_pool1d: _pool(p.MaxPool, 1, _POOL_ARGS, _POOL_DEFAULTS),
    F.max_pool2d: _pool(p.MaxPool, 2, _POOL_ARGS, _POOL_DEFAULTS),
    F.max_pool3d: _pool(p.MaxPool, 3, _POOL_ARGS, _POOL_DEFAULTS),
    F.avg_pool1d: _pool(p.AvgPool, 1, _AVG_ARGS, _AVG_DEFAULTS),
    F.avg_pool2d: _pool(p.AvgPool, 2, _AVG_ARGS, _AVG_DEFAULTS),
    F.avg_pool3d: _pool(p.AvgPool, 3, _AVG_ARGS, _AVG_DEFAULTS),
    F.adaptive_avg_pool1d: _adaptive(p.AdaptiveAvgPool, 1), F.adaptive_avg_pool2d: _adaptive(p.AdaptiveAvgPool, 2),
    F.adaptive_avg_pool3d: _adaptive(p.AdaptiveAvgPool, 3),
    F.adaptive_max_pool1d: _adaptive(p.AdaptiveMaxPool, 1), F.adaptive_max_pool2d: _adaptive(p.AdaptiveMaxPool, 2),
    F.adaptive_max_pool3d: _adaptive(p.AdaptiveMaxPool, 3),
    F.hardtanh: _hardtanh,
    F.pixel_shuffle: _shuffle(p.PixelShuffle, "upscale_factor"),
    F.pixel_unshuffle: _shuffle(p.PixelUnshuffle, "downscale_factor"),
    torch.channel_shuffle: _shuffle(p.ChannelShuffle, "groups"),
    torch.reshape: _view, torch.permute: _permute, torch.transpose: _transpose, torch.chunk: _chunk, torch.narrow: _narrow,
    F.dropout: _same, F.dropout2d: _same,
}

#: rules for ``call_method`` nodes (``x.view(...)``), by method name
METHODS = {
    "view": _view, "reshape": _view, "permute": _permute, "transpose": _transpose, "contiguous": _same,
    "size": _size, "chunk": _chunk, "narrow": _narrow, "flatten": _flatten,
    "add": FUNCTIONS[torch.add], "add_": FUNCTIONS[torch.add], "sub": FUNCTIONS[torch.sub],
    "mul": FUNCTIONS[torch.mul], "mul_": FUNCTIONS[torch.mul], "div": FUNCTIONS[torch.div],
    "matmul": _matmul, "mm": _matmul, "bmm": _matmul,
    "relu": _activation("relu"), "relu_": _activation("relu"), "sigmoid": _activation("sigmoid"),
    "sigmoid_": _activation("sigmoid"), "tanh": _activation("tanh"),
}


# -- the trace ------------------------------------------------------------------------------------------

_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _trace(model):
    """The fx graph of ``model`` (cached per model object while its submodules stay the same)."""
    fingerprint = tuple(id(m) for m in model.modules())
    cached = _TRACES.get(model)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    graph = torch.fx.Tracer().trace(model)
    _TRACES[model] = (fingerprint, graph)
    return graph


def profile(model, input_shape, convention: str = "convcost") -> Report:
    """The exact cost of every leaf operation of ``model`` on an input of ``input_shape``.

    ``convention`` names the tool whose headline ``report.headline()`` gives
    (see :mod:`convcost.conventions`); the rows are convcost's exact counts either way.
    """
    from convcost.conventions import CONVENTIONS

    if not isinstance(model, torch.nn.Module):
        raise ConvcostError(f"profile: {model!r} is not a torch.nn.Module")
    if convention not in CONVENTIONS:
        raise ConvcostError(f"profile: unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    shape = as_shape(input_shape, "profile")
    symbolic = any(type(x) is not int for x in shape)
    try:
        graph = _trace(model)
    except Exception as exc:  # fx raises many kinds (TraceError, TypeError on proxies ...)
        if symbolic:
            raise ConvcostError(f"profile: torch.fx cannot trace {type(model).__name__} ({_first_line(exc)}), "
                                "and module hooks need concrete input sizes") from None
        report = _profile_hooks(model, shape, exc)
    else:
        try:
            report = _Walk(model, shape, symbolic).run(graph)
        except ConvcostError:
            if not symbolic:
                _torch_verdict(model, shape)  # PyTorch's own reason, if it rejects the input too
            raise
    report.convention = convention
    return report


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _torch_verdict(model, shape):
    from convcost.torch.measure import measure

    measure(model, shape)  # raises "PyTorch rejects input ...: <PyTorch's message>"


class _Walk:
    """One pass over the graph: shapes from convcost's formulas, a row per costed node."""

    def __init__(self, model, shape, symbolic):
        self.model, self.shape, self.symbolic = model, shape, symbolic
        self.rows, self.unsupported, self.seen, self.calls = [], {}, {}, {}
        self.modules = dict(model.named_modules())

    def run(self, graph) -> Report:
        env = {}
        placeholders = 0
        for node in graph.nodes:
            if node.op == "placeholder":
                placeholders += 1
                if placeholders > 1:
                    if node.args or node.kwargs or not isinstance(getattr(node, "meta", {}), dict):
                        pass
                    env[node] = None  # extra optional inputs keep their defaults
                    continue
                env[node] = _T(self.shape)
            elif node.op == "get_attr":
                tensor = _attr(self.model, node.target)
                env[node] = _T(tensor.shape, tensor, node.target) if isinstance(tensor, torch.Tensor) else tensor
            elif node.op == "output":
                continue
            else:
                args = torch.fx.node.map_arg(node.args, env.__getitem__)
                kwargs = torch.fx.node.map_arg(node.kwargs, env.__getitem__)
                env[node] = self.call(node, args, kwargs)
        unused = [(n, t) for n, t in self.model.named_parameters() if id(t) not in self.seen]
        unsupported = [Unsupported(op, len(paths), tuple(paths), reason, params)
                       for op, (paths, reason, params) in self.unsupported.items()]
        return Report(self.rows, unsupported=unsupported, input_shape=self.shape, model=type(self.model).__name__,
                      traced_with="torch.fx", unused_params=sum(t.numel() for _, t in unused),
                      unused_names=[n for n, _ in unused])

    # -- one node -------------------------------------------------------------------------------
    def call(self, node, args, kwargs):
        if any(isinstance(a, _Unknown) for a in _flat(args, kwargs)):
            up = next(a for a in _flat(args, kwargs) if isinstance(a, _Unknown))
            self.skip(node, _label(node), f"its input comes from unsupported {up.op}")
            return _Unknown(_label(node))
        if node.op == "call_module":
            return self.call_module(node, self.modules[node.target], args, kwargs)
        rule = FUNCTIONS.get(node.target) if node.op == "call_function" else METHODS.get(node.target)
        if not any(isinstance(a, _T) for a in _flat(args, kwargs)):  # Python arithmetic on sizes
            if node.op == "call_function" and rule is None:
                return node.target(*args, **kwargs)
        if rule is None:
            if node.op == "call_function" and node.target in (operator.getitem, getattr):
                return self.getitem(node, args)
            return self.unknown(node, args, kwargs, "no convcost rule for this operation")
        try:
            result = rule(args, kwargs)
        except _NoRule as why:
            return self.unknown(node, args, kwargs, str(why))
        if isinstance(result, _Emit):
            return self.emit(node.name, _label(node), result.spec, result.inputs, result.reads, "function")
        return result

    def getitem(self, node, args):
        obj, key = args
        if node.target is getattr:
            if isinstance(obj, _T) and key == "shape":
                return obj.shape
            return self.unknown(node, args, {}, f"attribute {key!r}")
        if isinstance(obj, (tuple, list)):
            return obj[key]
        return self.unknown(node, args, {}, "indexing a tensor")

    def call_module(self, node, module, args, kwargs):
        reader = REGISTRY.reader_for(type(module))
        path = node.target
        if reader is None or len(args) != 1 or kwargs or not isinstance(args[0], _T):
            why = "no convcost reader is registered for this module type" if reader is None else "called with several inputs"
            return self.unknown(node, args, kwargs, why, module=module)
        spec = REGISTRY.read(module)
        return self.emit(path, type(module).__name__, spec, [args[0].shape], tuple(module.parameters()), "module")

    def emit(self, path, op, spec, inputs, reads, source):
        n = self.calls[path] = self.calls.get(path, 0) + 1
        if n > 1:
            path = f"{path}#{n}"
        params, tied = 0, ""
        for t in reads:
            if id(t) in self.seen:
                tied = tied or self.seen[id(t)]
            else:
                self.seen[id(t)] = path
                params += t.numel()
        row = Row.of(path, op, spec, inputs, source=source, params=params, tied_to=tied)
        self.rows.append(row)
        return _T(row.output_shape)

    def skip(self, node, op, reason, params=0):
        paths, _, held = self.unsupported.setdefault(op, ([], reason, 0))
        paths.append(node.target if node.op == "call_module" else node.name)
        self.unsupported[op] = (paths, reason, held + params)

    def unknown(self, node, args, kwargs, reason, module=None):
        """List the node as unsupported; its output shape from running it alone on meta tensors."""
        params = 0
        if module is not None:
            for t in module.parameters():
                if id(t) not in self.seen:
                    self.seen[id(t)] = node.target
                    params += t.numel()
        label = type(module).__name__ if module is not None else _label(node)
        self.skip(node, label, reason, params)
        if self.symbolic:
            return _Unknown(label)
        try:
            meta_args, meta_kwargs = _to_meta(args), _to_meta(kwargs)
            with torch.no_grad():
                if module is not None:
                    state = {n: torch.empty_like(t, device="meta") for n, t in module.state_dict(keep_vars=True).items()}
                    out = torch.func.functional_call(module, state, meta_args, meta_kwargs)
                elif node.op == "call_method":
                    out = getattr(meta_args[0], node.target)(*meta_args[1:], **meta_kwargs)
                else:
                    out = node.target(*meta_args, **meta_kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the shape unknown, and says so
            self.unsupported[label] = (self.unsupported[label][0], f"{reason}; its output shape is unknown "
                                       f"({_first_line(exc)})", self.unsupported[label][2])
            return _Unknown(label)
        return _from_meta(out)


def _label(node) -> str:
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    if module in ("_operator", "operator"):
        return name
    if module.startswith("torch.nn.functional") or getattr(F, name, None) is target:
        return f"F.{name}"
    return f"torch.{name}" if module.startswith("torch") else name


def _flat(args, kwargs):
    out = []

    def walk(v):
        if isinstance(v, (tuple, list)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        else:
            out.append(v)

    walk(args)
    walk(kwargs)
    return out


def _attr(model, target):
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _to_meta(value):
    if isinstance(value, _T):
        if value.tensor is not None:
            return torch.empty_like(value.tensor, device="meta")
        return torch.empty(value.shape, device="meta")
    if isinstance(value, tuple):
        return tuple(_to_meta(v) for v in value)
    if isinstance(value, list):
        return [_to_meta(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


def _from_meta(value):
    if isinstance(value, torch.Tensor):
        return _T(tuple(int(x) for x in value.shape))
    if isinstance(value, torch.Size):
        return tuple(int(x) for x in value)
    if isinstance(value, (tuple, list)):
        return type(value)(_from_meta(v) for v in value) if isinstance(value, tuple) else [_from_meta(v) for v in value]
    return value


# -- the fallback: module hooks ------------------------------------------------------------------------


def _profile_hooks(model, shape, why) -> Report:
    """Read leaf modules with forward hooks on meta tensors (functional calls stay unseen)."""
    calls = []
    handles = []
    paths = {}
    for name, module in model.named_modules():
        if not list(module.children()) or REGISTRY.reader_for(type(module)) is not None and name:
            paths[module] = name

    leaves = {m: n for m, n in paths.items() if not any(c in paths for c in m.modules() if c is not m)}

    def hook(module, inputs, output):
        calls.append((leaves[module], module, [tuple(i.shape) for i in inputs if isinstance(i, torch.Tensor)],
                      tuple(output.shape) if isinstance(output, torch.Tensor) else None))

    for module in leaves:
        handles.append(module.register_forward_hook(hook))
    dtype = next((t.dtype for t in model.parameters() if t.is_floating_point()), torch.float32)
    state = {n: torch.empty_like(t, device="meta") for n, t in model.state_dict(keep_vars=True).items()}
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                torch.func.functional_call(model, state, (torch.empty(shape, dtype=dtype, device="meta"),))
            except Exception:  # noqa: BLE001 - data-dependent code cannot run on meta: run on zeros
                calls.clear()
                model(torch.zeros(shape, dtype=dtype))
    except Exception as exc:  # noqa: BLE001 - PyTorch's reason, as the library error
        raise ConvcostError(f"PyTorch rejects input {shape} for {type(model).__name__}: {_first_line(exc)}") from None
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    rows, unsupported, seen, counted = [], {}, {}, {}
    for path, module, inputs, out in calls:
        n = counted[path] = counted.get(path, 0) + 1
        label = path if n == 1 else f"{path}#{n}"
        fresh = [t for t in module.parameters() if id(t) not in seen]
        for t in fresh:
            seen[id(t)] = label
        params = sum(t.numel() for t in fresh)
        reader = REGISTRY.reader_for(type(module))
        if reader is None or len(inputs) != 1:
            entry = unsupported.setdefault(type(module).__name__, [[], 0])
            entry[0].append(label)
            entry[1] += params
            continue
        spec = REGISTRY.read(module)
        tied = "" if fresh or not list(module.parameters()) else seen[id(next(module.parameters()))]
        rows.append(Row.of(label, type(module).__name__, spec, (inputs[0],), params=params, tied_to=tied))
    unused = [(n, t) for n, t in model.named_parameters() if id(t) not in seen]
    note = (f"torch.fx could not trace {type(model).__name__} ({_first_line(why)}); read with module hooks, "
            "so functional calls (F.conv2d, x + y, torch.cat ...) are NOT seen and not counted")
    return Report(rows, unsupported=[Unsupported(op, len(v[0]), tuple(v[0]), "no convcost reader is registered "
                                                 "for this module type", v[1]) for op, v in unsupported.items()],
                  input_shape=shape, model=type(model).__name__, traced_with="module hooks (fx failed)",
                  notes=[note], unused_params=sum(t.numel() for _, t in unused), unused_names=[n for n, _ in unused])
