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
  the functional rules of each primitive's binding (:mod:`convcost.torch.bindings`). Views and
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

from convcost.errors import ConvcostError
from convcost.report import Report, Row, Unsupported
from convcost.shapes import as_shape
from convcost.torch.binding import FUNCTIONS, METHODS
from convcost.torch.conventions import CONVENTIONS, headline
from convcost.torch.registry import REGISTRY
from convcost.torch.rules import Emit, NoRule, Tensor, bind_arguments


class _Unknown:
    """The value of an operation whose output convcost could not determine."""

    __slots__ = ("op",)

    def __init__(self, op):
        self.op = op


# -- shape-only operations (no work, no row) ------------------------------------------------------------


def _view(args, kwargs):
    x = args[0]
    sizes = args[1:] if len(args) > 2 or not isinstance(args[1], (tuple, list)) else tuple(args[1])
    sizes = list(kwargs.get("shape", kwargs.get("size", sizes)))
    total = sympy.Mul(*x.shape)
    if -1 in sizes:
        known = sympy.Mul(*(s for s in sizes if s != -1))
        sizes[sizes.index(-1)] = sympy.simplify(total / known)
    return Tensor(tuple(_int(s) for s in sizes))


def _int(x):
    if type(x) is int:
        return x
    x = sympy.sympify(x)
    return int(x) if x.is_Integer else x


def _permute(args, kwargs):
    x = args[0]
    order = args[1:] if len(args) > 2 or not isinstance(args[1], (tuple, list)) else tuple(args[1])
    order = kwargs.get("dims", order)
    return Tensor(tuple(x.shape[int(i)] for i in order))


def _transpose(args, kwargs):
    x, a, b = args[0], int(args[1]), int(args[2])
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return Tensor(tuple(shape))


def _size(args, kwargs):
    x = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    return x.shape if dim is None else x.shape[int(dim)]


def _chunk(args, kwargs):
    a = bind_arguments(("input", "chunks", "dim"), {"dim": 0}, args, kwargs)
    x, n, dim = a["input"], int(a["chunks"]), int(a["dim"])
    length = x.shape[dim]
    if not isinstance(length, int):
        raise NoRule("chunk of a symbolic axis")
    piece = -(-length // n)
    out, start = [], 0
    while start < length:
        shape = list(x.shape)
        shape[dim] = min(piece, length - start)
        out.append(Tensor(tuple(shape)))
        start += piece
    return tuple(out)


def _same(args, kwargs):
    return args[0]


#: calls that only change how a tensor is viewed: no work, no row
SHAPE_FUNCTIONS = {
    torch.reshape: _view, torch.permute: _permute, torch.transpose: _transpose, torch.chunk: _chunk,
    F.dropout: _same, F.dropout2d: _same,
}
SHAPE_METHODS = {
    "view": _view, "reshape": _view, "permute": _permute, "transpose": _transpose, "contiguous": _same,
    "size": _size, "chunk": _chunk,
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
    (see :mod:`convcost.torch.conventions`); the rows are convcost's exact counts either way.
    """
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
    return report.with_convention(convention, headline)


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
                env[node] = Tensor(self.shape)
            elif node.op == "get_attr":
                tensor = _attr(self.model, node.target)
                env[node] = Tensor(tensor.shape, tensor, node.target) if isinstance(tensor, torch.Tensor) else tensor
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
        if node.op == "call_function":
            rule = FUNCTIONS.get(node.target) or SHAPE_FUNCTIONS.get(node.target)
        else:
            rule = METHODS.get(node.target) or SHAPE_METHODS.get(node.target)
        if not any(isinstance(a, Tensor) for a in _flat(args, kwargs)):  # Python arithmetic on sizes
            if node.op == "call_function" and rule is None:
                return node.target(*args, **kwargs)
        if rule is None:
            if node.op == "call_function" and node.target in (operator.getitem, getattr):
                return self.getitem(node, args)
            return self.unknown(node, args, kwargs, "no convcost rule for this operation")
        try:
            result = rule(args, kwargs)
        except NoRule as why:
            return self.unknown(node, args, kwargs, str(why))
        if isinstance(result, Emit):
            return self.emit(node.name, _label(node), result.spec, result.inputs, result.reads, "function")
        return result

    def getitem(self, node, args):
        obj, key = args
        if node.target is getattr:
            if isinstance(obj, Tensor) and key == "shape":
                return obj.shape
            return self.unknown(node, args, {}, f"attribute {key!r}")
        if isinstance(obj, (tuple, list)):
            return obj[key]
        return self.unknown(node, args, {}, "indexing a tensor")

    def call_module(self, node, module, args, kwargs):
        reader = REGISTRY.reader_for(type(module))
        path = node.target
        if reader is None or len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
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
        return Tensor(row.output_shape)

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
    if isinstance(value, Tensor):
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
        return Tensor(tuple(int(x) for x in value.shape))
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
