"""The fast reading: a ``torch.fx`` graph walked with convcost's own shape formulas, nothing executed.

Called modules whose exact type has a reader are leaves, read through the registry; every other module
(a ``Conv2d`` subclass, ``nn.LayerNorm`` ...) is traced through, so it is read by what it calls.
Functions and tensor methods go through the rules of :mod:`convcost.torch.bindings`; views cost
nothing and make no row. An operation without a rule is listed, and its output shape comes from running
it alone on meta tensors. Symbols in the input sizes give closed forms.

Tracing patches ``nn.Module.__call__`` for the whole process while it runs, so it is done under the
exclusive side of :data:`convcost.torch.locks.TRACING` (no forward of a profile runs meanwhile).
"""

from __future__ import annotations

import operator
import threading
import weakref

import sympy
import torch
import torch.fx
import torch.nn.functional as F

from convcost import primitives
from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.torch import layouts
from convcost.torch.binding import BINDINGS, FUNCTIONS, METHODS
from convcost.torch.bindings.recurrent import input_reading
from convcost.torch.leftovers import holds
from convcost.torch.locks import TRACING
from convcost.torch.record import Recorder
from convcost.torch.registry import REGISTRY
from convcost.torch.rules import WITH_INDICES, Emit, NoRule, Tensor, bind_arguments

#: module types read as one leaf: those whose binding is a primitive (containers are traced through)
LEAF_TYPES = frozenset(m for layer, b in BINDINGS.items() if layer in primitives.PRIMITIVES for m in b.modules)


class _Unknown:
    """The value of an operation whose output convcost could not determine."""

    __slots__ = ("op",)

    def __init__(self, op):
        self.op = op


# -- shape-only operations (no work, no row) ------------------------------------------------------------


def _sizes(args, kwargs, *names):
    for name in names:
        if name in kwargs:
            return list(kwargs[name])
    return list(args[1:]) if len(args) > 2 or not isinstance(args[1], (tuple, list, torch.Size)) else list(args[1])


def _view(args, kwargs):
    x = args[0]
    sizes = _sizes(args, kwargs, "shape", "size")
    if -1 in sizes:
        known = [s for s in sizes if s != -1]
        if all(type(s) is int for s in (*known, *x.shape)):
            sizes[sizes.index(-1)] = _numel(x.shape) // max(_numel(known), 1)
        else:
            sizes[sizes.index(-1)] = sympy.simplify(sympy.Mul(*x.shape) / sympy.Mul(*known))
    out = tuple(_int(s) for s in sizes)
    if all(type(s) is int for s in (*out, *x.shape)) and _numel(out) != _numel(x.shape):
        # PyTorch refuses it; a shape reading must not carry on with a size the model never has
        raise ConvcostError(f"shape {list(out)} is invalid for an input of {_numel(x.shape)} elements {tuple(x.shape)}")
    return Tensor(out)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _int(x):
    if type(x) is int:
        return x
    x = sympy.sympify(x)
    return int(x) if x.is_Integer else x


def _permute(args, kwargs):
    x = args[0]
    order = kwargs.get("dims") or _sizes(args, kwargs)
    return Tensor(tuple(x.shape[int(i)] for i in order))


def _transpose(args, kwargs):
    x, a, b = args[0], int(args[1]), int(args[2])
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return Tensor(tuple(shape))


def _t(args, kwargs):
    return Tensor(tuple(reversed(args[0].shape)))


def _size(args, kwargs):
    x = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    return x.shape if dim is None else x.shape[int(dim)]


def _dim(args, kwargs):
    return len(args[0].shape)


def _chunk(args, kwargs):
    a = bind_arguments(("input", "chunks", "dim"), {"dim": 0}, args, kwargs)
    x, n, dim = a["input"], int(a["chunks"]), int(a["dim"])
    length = x.shape[dim]
    if not isinstance(length, int):
        raise NoRule("chunk of a symbolic axis")
    piece = -(-length // n)
    return _pieces(x, dim, [min(piece, length - start) for start in range(0, length, piece)])


def _split(args, kwargs):
    a = bind_arguments(("input", "split_size_or_sections", "dim"), {"dim": 0}, args, kwargs)
    x, size, dim = a["input"], a.get("split_size_or_sections", a.get("split_size")), int(a["dim"])
    length = x.shape[dim]
    if isinstance(size, (tuple, list)):
        return _pieces(x, dim, [int(s) for s in size])
    if not isinstance(length, int):
        raise NoRule("split of a symbolic axis")
    size = int(size)
    return _pieces(x, dim, [min(size, length - start) for start in range(0, length, size)])


def _pieces(x, dim, lengths):
    out = []
    for n in lengths:
        shape = list(x.shape)
        shape[dim] = n
        out.append(Tensor(tuple(shape)))
    return tuple(out)


def _unsqueeze(args, kwargs):
    x, dim = args[0], int(args[1] if len(args) > 1 else kwargs["dim"])
    shape = list(x.shape)
    shape.insert(dim % (len(shape) + 1), 1)
    return Tensor(tuple(shape))


def _squeeze(args, kwargs):
    x = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None:
        return Tensor(tuple(s for s in x.shape if s != 1))
    dims = {int(d) % len(x.shape) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
    return Tensor(tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def _expand(args, kwargs):
    x, sizes = args[0], _sizes(args, kwargs, "size")
    lead = len(sizes) - len(x.shape)
    return Tensor(tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes)))


def _stack(args, kwargs):
    a = bind_arguments(("tensors", "dim"), {"dim": 0}, args, kwargs)
    first = a["tensors"][0].shape
    dim = int(a["dim"]) % (len(first) + 1)
    return Tensor((*first[:dim], len(a["tensors"]), *first[dim:]))


def _same(args, kwargs):
    return args[0]


#: calls that only change how a tensor is viewed: no work, no row
SHAPE_FUNCTIONS = {
    torch.reshape: _view, torch.permute: _permute, torch.transpose: _transpose, torch.chunk: _chunk,
    torch.split: _split, torch.unsqueeze: _unsqueeze, torch.squeeze: _squeeze, torch.stack: _stack,
    torch.t: _t, F.dropout: _same, F.dropout1d: _same, F.dropout2d: _same, F.dropout3d: _same,
    F.alpha_dropout: _same, F.feature_alpha_dropout: _same,
    torch.clone: _same,
}
SHAPE_METHODS = {
    "view": _view, "reshape": _view, "permute": _permute, "transpose": _transpose, "contiguous": _same,
    "size": _size, "dim": _dim, "chunk": _chunk, "split": _split, "unsqueeze": _unsqueeze, "squeeze": _squeeze,
    "expand": _expand, "t": _t, "clone": _same, "detach": _same, "float": _same, "to": _same, "type_as": _same,
}


# -- the trace ------------------------------------------------------------------------------------------


class LeafTracer(torch.fx.Tracer):
    """fx's tracer with convcost's leaves: a module is a leaf when its exact type reads as a primitive."""

    def is_leaf_module(self, m, qualname):
        return type(m) in LEAF_TYPES

    # fx looks a parameter up by scanning every parameter of the model at each use (quadratic: 50 s on
    # timm's densenet264d); the same first names, found once
    def _names(self, kind):
        maps = self.__dict__.setdefault("_convcost_names", {})
        key = (id(self.root), kind)
        if key not in maps:
            named = self.root.named_parameters() if kind == "params" else self.root.named_buffers()
            maps[key] = {}
            for n, t in named:
                maps[key].setdefault(id(t), n)
        return maps[key]

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        for kind, wanted in (("params", isinstance(attr_val, torch.nn.Parameter)),
                             ("buffers", self.proxy_buffer_attributes and isinstance(attr_val, torch.Tensor))):
            name = self._names(kind).get(id(attr_val)) if wanted else None
            if name is not None and not self.param_shapes_constant:
                if name not in parameter_proxy_cache:
                    parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
                return parameter_proxy_cache[name]
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_arg(self, a):
        if isinstance(a, torch.nn.Parameter):
            name = self._names("params").get(id(a))
            if name is not None:
                return self.create_node("get_attr", name, (), {})
        return super().create_arg(a)


_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TRACES_LOCK = threading.Lock()


def trace(model):
    """The fx graph of ``model`` (cached per model object while its submodules stay the same)."""
    fingerprint = tuple((id(m), m.training) for m in model.modules())
    with _TRACES_LOCK:
        cached = _TRACES.get(model)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    with TRACING.exclusive():
        graph = LeafTracer().trace(model)
    with _TRACES_LOCK:
        _TRACES[model] = (fingerprint, graph)
    return graph


class Walk:
    """One pass over the graph: shapes from convcost's formulas, a row per costed node."""

    def __init__(self, model, inputs, symbolic, training=False):
        self.model, self.inputs, self.symbolic = model, inputs, symbolic
        self.record = Recorder(model, training)
        self.training = training
        self.modules = dict(model.named_modules())

    def input_tensor(self, given) -> Tensor:
        """A model input: its shape, and in a training reading its storage and whether it needs a gradient
        (a tensor given with ``requires_grad=True``; data given as a shape needs none) and its layout (a
        channels-last tensor is read as one)."""
        grad = bool(getattr(given.tensor, "requires_grad", False))
        storage = self.record.new_storage(given.shape) if self.training else None
        real = given.tensor
        layout = layouts.meta_of(Tensor(given.shape, real)) if self.training and isinstance(real, torch.Tensor) \
            and not real.is_contiguous() else None
        return Tensor(given.shape, dtype=given.dtype, grad=grad, storage=storage, layout=layout)

    def run(self, graph):
        if type(self.model) in LEAF_TYPES and len(self.inputs.positional) == 1 and not self.inputs.keywords:
            return self.bare_layer()
        env = {}
        positional = list(self.inputs.positional)
        for node in graph.nodes:
            if node.op == "placeholder":
                env[node] = self.placeholder(node, positional)
            elif node.op == "get_attr":
                tensor = _attr(self.model, node.target)
                env[node] = Tensor(tensor.shape, tensor, node.target, tensor.dtype, grad=tensor.requires_grad) \
                    if isinstance(tensor, torch.Tensor) else tensor
            elif node.op == "output":
                continue
            else:
                args = torch.fx.node.map_arg(node.args, env.__getitem__)
                kwargs = torch.fx.node.map_arg(node.kwargs, env.__getitem__)
                env[node] = self.call(node, args, kwargs)
        if positional:
            raise ConvcostError(f"profile: {type(self.model).__name__}.forward takes fewer inputs than the "
                                f"{len(self.inputs.positional)} given")
        return self.record

    def bare_layer(self):
        """A model that is one layer reads as that module (as every tool sees it), not as its calls."""
        node = torch.fx.Node(torch.fx.Graph(), "root", "call_module", "", (), {})
        out = self.call_module(node, self.model, (self.input_tensor(self.inputs.positional[0]),), {})
        if isinstance(out, _Unknown):
            raise ConvcostError(f"profile: {type(self.model).__name__} cannot be read as one layer")
        return self.record

    def placeholder(self, node, positional):
        name = node.target.lstrip("*")
        if name in self.inputs.keywords:
            return self.input_tensor(self.inputs.keywords[name])
        if positional and not node.target.startswith("**"):
            return self.input_tensor(positional.pop(0))
        if node.args:
            return node.args[0]  # the argument's default
        raise ConvcostError(f"profile: {type(self.model).__name__}.forward needs an input {name!r} that was not given")

    # -- one node -------------------------------------------------------------------------------
    def path(self, node) -> str:
        if node.op == "call_module":
            return node.target
        stack = node.meta.get("nn_module_stack") or {}
        context = next(reversed(stack.values()))[0] if stack else ""
        short = _label(node).rpartition(".")[2]
        return f"{context}.{short}" if context else short

    def call(self, node, args, kwargs):
        flat = _flat(args, kwargs)
        up = next((a for a in flat if isinstance(a, _Unknown)), None)
        if up is not None:
            self.record.skip(_label(node), self.path(node), f"its input comes from unsupported {up.op}")
            return _Unknown(_label(node))
        if node.op == "call_module":
            return self.call_module(node, self.modules[node.target], args, kwargs)
        if node.op == "call_function":
            rule = FUNCTIONS.get(node.target) or SHAPE_FUNCTIONS.get(node.target)
        else:
            rule = METHODS.get(node.target) or SHAPE_METHODS.get(node.target)
        if not any(isinstance(a, Tensor) for a in flat):  # Python arithmetic on sizes
            if node.op == "call_function" and (rule is None or node.target in _PYTHON_ARITHMETIC):
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
            operands = weights = None
            if self.training:
                operands, weights = self.record.split(result, [t for t in flat if isinstance(t, Tensor)])
            if self.training and node.target is F.scaled_dot_product_attention:
                self.attention_options(node, args, kwargs, result.spec, operands)
            if self.training:
                function = getattr(torch.Tensor, node.target, None) if node.op == "call_method" else node.target
                self.record.call = (function, _tracked(args, self.record), _tracked(kwargs or {}, self.record))
            try:
                return self.record.emit(self.record.unique(self.path(node)), _label(node), result, "function",
                                        operands, weights, self.training and _in_place(node, args, kwargs))
            finally:
                self.record.call = None
        source = args[0] if args else None
        if isinstance(source, Tensor) and source.dtype is not None:  # a view keeps its dtype (an index, a mask)
            result = _with_dtype(result, source.dtype)
        if self.training and isinstance(source, (tuple, list)) and isinstance(result, Tensor):
            # torch.stack: a new tensor (its backward keeps nothing), needing a gradient when a part does
            parts = [self.record.tracked(t) for t in source if isinstance(t, Tensor)]
            return Tensor(result.shape, dtype=result.dtype, grad=any(t.grad for t in parts),
                          storage=self.record.new_storage(result.shape))
        if self.training:
            result = self.dropout(result, source, node, args, kwargs) if _label(node).rpartition(".")[2] in _DROPOUT \
                else self.view_of(result, source, node, args, kwargs)
        return result

    def attention_options(self, node, args, kwargs, spec, operands):  # noqa: PLR0913 - the call and its row
        """What ``F.scaled_dot_product_attention``'s options change in a training step on the CPU (PyTorch
        2.13): a causal mask nothing (the fused kernel runs and keeps the same tensors); an additive mask that
        needs no gradient is kept by the fused kernel (a boolean one as a float copy), the math path keeps
        nothing more; a mask that needs a gradient sends the step down the math path, and so does dropout
        (``Attention(dropout=True)``); grouped heads are the spec's ``kv_groups``."""
        a = bind_arguments(("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
                           {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None,
                            "enable_gqa": False}, args, kwargs)
        if a["dropout_p"]:  # the CPU's fused kernel takes no dropout: the math path, dropping the weights
            self.record.options["dropout"] = True
        mask = a["attn_mask"]
        if not isinstance(mask, Tensor):
            return
        mask = self.record.tracked(mask)
        fused = self.record.attention(spec, operands).fused([t.shape for t in operands])
        if mask.grad:
            if not (operands[0].grad or operands[1].grad):  # the scores' gradient, for the mask's alone
                self.record.untrack(_label(node), self.path(node), "a mask that needs a gradient when the query "
                                    "and key do not: not modelled")
            else:
                self.record.options["kernel"] = "math"
        elif fused and mask.dtype is torch.bool:  # converted to an additive float mask, kept
            self.record.extra_saved.append(_numel(mask.shape))
        elif fused and isinstance(mask.dtype, torch.dtype) or fused and mask.tensor is not None:
            self.record.graph.append((Cost(output_shape=(), saved_elements=_numel(mask.shape), saves_input=(True,)),
                                      [(mask.storage, mask.shape)], None))
        elif fused:
            self.record.untrack(_label(node), self.path(node), "a mask of unknown dtype: whether it is kept as it is "
                                "or as a float copy is not known")

    def dropout(self, result, source, node, args, kwargs):  # noqa: PLR0913 - the walk's call signature
        """Dropout in a training step: a new tensor, and autograd keeps the noise it was multiplied by when the
        input needs a gradient (PyTorch 2.13 on the CPU: one element per input element, or per channel for
        ``dropout1d/2d/3d`` and feature alpha dropout); at p = 0 or outside training, the input itself."""
        a = bind_arguments(("input", "p", "training", "inplace"), {"p": 0.5, "training": True, "inplace": False},
                           args, kwargs)
        if not isinstance(source, Tensor) or not a["training"] or not a["p"]:
            return result
        name = _label(node).rpartition(".")[2]
        if source.grad:  # the noise it multiplied by: one per element, or one per channel (N, C, 1 ...)
            whole = name in ("dropout", "alpha_dropout")
            self.record.extra_saved.append(_numel(source.shape if whole else source.shape[:2]))
        inplace = a["inplace"] and source.storage is not None
        storage = source.storage if inplace else self.record.new_storage(source.shape)
        return Tensor(source.shape, dtype=source.dtype, grad=source.grad, storage=storage,
                      layout=layouts.like(source))

    def view_of(self, result, source, node, args=(), kwargs=None):
        """In a training reading, what a shape-only call returns: a view of its input (same storage, same
        gradient flag, its own strides), or a fresh copy (``clone``; ``reshape`` or ``contiguous`` of a view
        they cannot express). The call itself runs on meta tensors to learn which (:mod:`.layouts`); where
        it cannot (symbolic sizes), only ``clone`` copies."""
        if not isinstance(source, Tensor):
            return result
        if result is source:  # contiguous(), clone(), to() ...: a view or a copy, as the call on meta says
            result = Tensor(source.shape, source.tensor, source.name, source.dtype)
        source = self.record.tracked(source)  # a view of a parameter is the parameter's storage
        function = getattr(torch.Tensor, node.target, None) if node.op == "call_method" else node.target
        meta, base = layouts.run_view(function, args, kwargs) if args and args[0] is not None else (None, None)
        name = _label(node).rpartition(".")[2]
        if name == "detach":  # the same storage, outside autograd
            source = Tensor(source.shape, source.tensor, source.name, source.dtype, storage=source.storage,
                            layout=source.layout)
        return self._viewed(result, source, meta, base, name == "clone")

    def _viewed(self, result, source, meta, base, clone):
        if isinstance(result, Tensor) and result is not source and result.storage is None:
            if meta is None or not isinstance(meta, torch.Tensor):
                copy, layout = clone, None
            else:
                copy, layout = not layouts.is_view(meta, base), layouts.layout_of(meta)
            storage = self.record.new_storage(result.shape) if copy else source.storage
            return Tensor(result.shape, result.tensor, result.name, result.dtype, grad=source.grad, storage=storage,
                          layout=layout)
        if type(result) is tuple and result and all(isinstance(t, Tensor) for t in result):  # chunk, split
            metas = meta if isinstance(meta, (tuple, list)) and len(meta) == len(result) else (None,) * len(result)
            return tuple(self._viewed(t, source, m, base, clone) for t, m in zip(result, metas))
        return result

    def getitem(self, node, args):
        obj, key = args
        if node.target is getattr:
            if isinstance(obj, Tensor) and key == "shape":
                return obj.shape
            if isinstance(obj, Tensor) and not self.symbolic:  # dtype, device, T ...: from a meta tensor
                return self.unknown(node, args, {}, "", listed=False)
            return self.unknown(node, args, {}, f"attribute {key!r}")
        if isinstance(obj, (tuple, list)):
            return obj[key]
        if isinstance(obj, Tensor) and not self.symbolic:
            return self.unknown(node, args, {}, "", listed=False)  # indexing: a view, its shape from meta
        return self.unknown(node, args, {}, "indexing a tensor")

    def call_module(self, node, module, args, kwargs, spec=None):
        """The row of a leaf module (``spec``: what its reader made of it, when the caller read it already)."""
        path = node.target
        if self.training and isinstance(module, torch.nn.modules.dropout._DropoutNd) and args:
            # not the identity in a training step: what F.dropout does
            name = {"Dropout": "dropout", "AlphaDropout": "alpha_dropout"}.get(type(module).__name__, "dropout2d")
            return self.dropout(args[0], args[0], _DropoutCall(name, path), (args[0], module.p, True, module.inplace), {})
        if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
            return self.unknown(node, args, kwargs, "called with several inputs", module=module)
        if spec is None:
            try:
                spec = REGISTRY.read(module)
            except ConvcostError as why:
                return self.unknown(node, args, kwargs, str(why), module=module)
        output = WITH_INDICES if getattr(module, "return_indices", False) else None
        shape = args[0].shape
        if isinstance(spec, primitives.LSTM):  # (output, (h_n, c_n))
            h, c = spec.states(shape)
            output = (Tensor(spec.cost(shape).output_shape), (Tensor(h), Tensor(c)))
        if isinstance(spec, (primitives.Conv, primitives.ConvTranspose)) and len(shape) == spec.dims + 1:
            emit = Emit(spec, [(1, *shape)], own_parameters(module), "unbatched")
        else:
            emit = Emit(spec, [shape], own_parameters(module), output)
        operands = [self.record.tracked(args[0])] if self.training else None
        if self.training and operands[0].layout is not None:  # what a strided input changes: the module, on meta
            # (an LSTM by what the CPU does with its input: a meta run takes neither of the CPU's paths)
            reading = input_reading(module) if isinstance(spec, primitives.LSTM) else _on_meta(module)
            self.record.call = (reading, (operands[0],), {})
        unique = self.record.unique(path)
        if self.training and isinstance(spec, primitives.LSTM) and spec.layers > 1 and module.dropout:
            self.record.untrack(type(module).__name__, unique, "dropout between an LSTM's layers: its noise and the "
                                "dropped copies it keeps are not modelled")
        try:
            return self.record.emit(unique, type(module).__name__, emit, "module", operands,
                                    inplace=getattr(module, "inplace", False) is True)
        finally:
            self.record.call = None

    def unknown(self, node, args, kwargs, reason, module=None, listed=True):
        """List the node as unsupported; its output shape from running it alone on meta tensors."""
        label = type(module).__name__ if module is not None else _label(node)
        if module is None and _label(node).rpartition(".")[2] in _shape_only():
            listed = False  # a view or a no-op at inference (stochastic depth): its shape from meta, no row
        if listed:
            path = self.path(node)
            params = self.record.hold(path, module.parameters()) if module is not None else 0
            name = _label(node).rpartition(".")[2] if module is None else ""
            self.record.skip(label, path, reason, params=params, macs=module is not None or _may_macs(name))
        if self.symbolic:
            return _Unknown(label)
        try:
            meta_args, meta_kwargs = _to_meta(args), _to_meta(kwargs)
            with torch.no_grad():
                if module is not None:
                    out = _on_meta(module)(*meta_args, **meta_kwargs)
                elif node.op == "call_method":
                    out = getattr(meta_args[0], node.target)(*meta_args[1:], **meta_kwargs)
                else:
                    out = node.target(*meta_args, **meta_kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the shape unknown, and says so
            if not listed:
                self.record.skip(label, self.path(node), "its output shape is unknown")
            self.record.forget(label, f"{reason}; its output shape is unknown ({first_line(exc)})")
            return _Unknown(label)
        result = _from_meta(out)
        if self.training:
            result = self.unknown_output(result, node, args, kwargs, label, listed, module)
        return result

    def unknown_output(self, result, node, args, kwargs, label, listed, module):
        """In a training reading, what an operation without a rule returns: a view when it only reshapes or
        selects (``x[:, :3]``), else new tensors, and the step is marked as not fully counted when the
        operation takes part in the backward (what it saves is not known)."""
        tensors = [t for t in _flat(args, kwargs) if isinstance(t, Tensor)]
        source = tensors[0] if tensors else None
        if module is None and _label(node).rpartition(".")[2] in _CREATING:  # a new tensor, needing no gradient
            return _fresh(result, self.record, False)
        gather = module is None and _label(node).rpartition(".")[2] in ("getitem", "__getitem__") and len(args) > 1 \
            and holds(args[1], lambda v: isinstance(v, (Tensor, torch.Tensor)))
        if not listed and source is not None and module is None and not gather:
            return self.view_of(result, source, node, args, kwargs)
        grad = any(t.grad for t in tensors) or module is not None and any(p.requires_grad for p in module.parameters())
        if grad and module is None and (gather or not _may_macs(_label(node).rpartition(".")[2])):
            simulated = self.simulated(result, node, args, kwargs)
            if simulated is not None:
                return simulated
        if grad:
            self.record.untrack(label, self.path(node), "no rule: what it saves for backward is not known")
        return _fresh(result, self.record, grad)

    def simulated(self, result, node, args, kwargs):
        """A call convcost has no row for but knows holds no multiply-accumulates (``exp``, ``clamp``,
        ``F.normalize``, an in-place ``addcmul_``): what autograd keeps of it, from the call run on meta tensors
        laid out as the model's (:func:`convcost.torch.layouts.simulate`), its backward no MACs. None when
        it cannot run there."""
        function = getattr(torch.Tensor, node.target, None) if node.op == "call_method" else node.target
        if function is None:
            return None
        run = layouts.simulate(function, _tracked(args, self.record), _tracked(kwargs or {}, self.record))
        flat = [t for t in (result if isinstance(result, (tuple, list)) else (result,)) if isinstance(t, Tensor)]
        if run is None or not run.outputs or len(run.outputs) != len(flat):
            return None
        if run.fresh and self.symbolic:
            return None  # the sizes of what it keeps come from the meta run, at generic stand-ins
        outputs = []
        for t, (meta, owner) in zip(flat, run.outputs):
            storage = run.operands[owner].storage if owner is not None else self.record.new_storage(t.shape)
            outputs.append(Tensor(t.shape, t.tensor, t.name, t.dtype, grad=bool(meta.requires_grad), storage=storage,
                                  layout=layouts.layout_of(meta)))
        first, view = outputs[0], run.outputs[0][1] is not None
        saved = run.saved_elements(first.shape, output_view=view)
        indices = run.fresh_indices + sum(_numel(t.shape) for t, kept in zip(run.operands, run.kept)  # an index kept
                                          if kept and t.dtype == torch.int64 and not self.record.is_parameter(t.storage))
        cost = Cost(output_shape=first.shape, saved_elements=saved, saved_indices=indices,
                    saves_input=tuple(run.kept), saves_output=run.saves_output, output_view=view)
        self.record.graph.append((cost, [(t.storage, t.shape) for t in run.operands], first.storage))
        if not isinstance(result, (tuple, list)):
            return first
        it = iter(outputs)
        return type(result)(next(it) if isinstance(t, Tensor) else t for t in result)


def own_parameters(module) -> tuple:
    """``tuple(module.parameters())``, without walking the module tree when the module has no children
    (nearly every leaf: a convolution, a norm), which is most of a large model's reading time otherwise."""
    if not module._modules:
        return tuple(p for p in module._parameters.values() if p is not None)
    return tuple(module.parameters())


class _DropoutCall:
    """A dropout module's call as the walk reads a function call (its label, its place)."""

    op = "call_function"

    def __init__(self, name, path):
        self.target = getattr(F, name)
        self.meta = {"nn_module_stack": {path: (path, None)}}


_DROPOUT = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"})

_PYTHON_ARITHMETIC = frozenset({operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
                                operator.mod, operator.pow, operator.neg, operator.iadd, operator.imul})


def _shape_only():
    from convcost.torch.record import SHAPE_ONLY

    return SHAPE_ONLY


def _may_macs(name) -> bool:
    from convcost.torch.record import NO_MACS, SHAPE_ONLY

    return name not in NO_MACS and name not in SHAPE_ONLY


def first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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


#: calls that make a new tensor of another one's shape (no view of it, no gradient)
_CREATING = frozenset({"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "zeros_like", "ones_like",
                       "empty_like", "full_like", "rand_like", "randn_like", "randint_like"})

_SIGNATURES: dict = {}


def _in_place(node, args, kwargs) -> bool:
    """Whether a call writes its output into its first argument (``F.relu(x, inplace=True)``, ``x.relu_()``,
    ``x += y``)."""
    target = node.target
    if node.op == "call_method":
        return target.endswith("_") and not target.endswith("__")
    if target in (operator.iadd, operator.imul, operator.isub, operator.itruediv):
        return True
    if getattr(target, "__name__", "").endswith("_") and not getattr(target, "__name__", "").endswith("__"):
        return True
    if "inplace" in kwargs:
        return kwargs["inplace"] is True
    signature = _SIGNATURES.get(target, False)
    if signature is False:
        import inspect

        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            signature = None
        _SIGNATURES[target] = signature
    if signature is None or "inplace" not in signature.parameters:
        return False
    try:
        return signature.bind(*args, **kwargs).arguments.get("inplace") is True
    except TypeError:
        return False


def _on_meta(module):
    """``module``'s forward as a function of its inputs, run with meta copies of its parameters and buffers."""

    def call(*args, **kwargs):
        state = {name: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad) if t.is_floating_point()
                 else torch.empty_like(t, device="meta")
                 for name, t in module.state_dict(keep_vars=True).items()}
        return torch.func.functional_call(module, state, args, kwargs)

    return call


def _tracked(value, record):
    """``value`` with every :class:`Tensor` in it given its storage (see :meth:`Recorder.tracked`)."""
    if isinstance(value, Tensor):
        return record.tracked(value)
    if isinstance(value, torch.Tensor):  # a constant, parameter or buffer passed as it is (an index)
        return record.tracked(Tensor(tuple(value.shape), value, dtype=value.dtype))
    if isinstance(value, (tuple, list)):
        return type(value)(_tracked(v, record) for v in value)
    if isinstance(value, slice):
        return slice(_tracked(value.start, record), _tracked(value.stop, record), _tracked(value.step, record))
    if isinstance(value, dict):
        return {k: _tracked(v, record) for k, v in value.items()}
    return value


def _fresh(value, record, grad):
    if isinstance(value, Tensor):
        return Tensor(value.shape, value.tensor, value.name, value.dtype, grad=grad, storage=record.new_storage(value.shape))
    if isinstance(value, (tuple, list)):
        return type(value)(_fresh(v, record, grad) for v in value) if type(value) in (tuple, list) else value
    return value


def _with_dtype(value, dtype):
    if isinstance(value, Tensor) and value.dtype is None:
        return Tensor(value.shape, value.tensor, value.name, dtype)
    if type(value) is tuple and value and isinstance(value[0], Tensor):
        return tuple(_with_dtype(v, dtype) for v in value)
    return value


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
        return torch.empty(value.shape, dtype=value.dtype, device="meta")
    if isinstance(value, tuple):
        return tuple(_to_meta(v) for v in value)
    if isinstance(value, list):
        return [_to_meta(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


def _from_meta(value):
    if isinstance(value, torch.Tensor):
        return Tensor(tuple(int(x) for x in value.shape), dtype=value.dtype)
    if isinstance(value, torch.Size):
        return tuple(int(x) for x in value)
    if isinstance(value, (tuple, list)):
        return type(value)(_from_meta(v) for v in value) if isinstance(value, tuple) else [_from_meta(v) for v in value]
    return value
