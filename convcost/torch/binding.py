"""One home per primitive on the PyTorch side: everything torch-specific about a layer class, together.

A *binding* says, for one convcost layer class, which ``nn.Module`` types read
as it (``read``), which functional calls and tensor methods a traced model makes
that are it (``functions``, ``methods``), which module it builds (``build``),
and how each other tool's convention counts it (``conventions``, by tool name).
Everything else the backend decides per layer class is an optional *hook* of
its binding, with a default that fits most layers (:class:`Binding` lists them):
what a functional call passes it, what autograd keeps of it in place, how its
output lies in memory, which kernel a training step runs and what that keeps,
how ``FlopCounterMode`` counts its backward, the rank of its output. No code
outside :mod:`convcost.torch.bindings` asks which class a layer is (a test
enforces it). A binding is declared once, with :func:`binds`, beside the other bindings of its
family in :mod:`convcost.torch.bindings`; adding a primitive means its core class
and its binding, nothing else. Everything is keyed by class or by function
object, never by a class-name string, and a second registration of the same
module type, function, method or layer class is an error.

>>> import torch.nn as nn
>>> from convcost.primitives import Conv
>>> binding_of(Conv).modules
(<class 'torch.nn.modules.conv.Conv1d'>, <class 'torch.nn.modules.conv.Conv2d'>, <class 'torch.nn.modules.conv.Conv3d'>)
>>> sorted(binding_of(Conv).conventions)
['convcost', 'fvcore', 'ptflops', 'thop', 'torch', 'torchinfo']
>>> binding_of(Conv).passes_weights, hooks_of(Conv(C=2, O=2, K=1)).rank_after(Conv(C=2, O=2, K=1), 4)
(True, 4)
>>> hooks_of(object()).output_layout(None, (), ())   # a class without a binding: every default
(None, False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from convcost.errors import ConvcostError
from convcost.torch.registry import REGISTRY


def _as_it_is(spec, operands):
    return spec


def _same_rank(layer, rank):
    return rank


def _contiguous_output(spec, operands, output_shape):
    return None, False


def _never(spec) -> bool:
    return False


def _nothing(*args):
    return None


def _as_called(spec, operands, call):
    return call


def _operand_dtype(spec, shapes, operand, weight, buffers):
    return operand


@dataclasses.dataclass(frozen=True)
class Binding:
    """The PyTorch side of one convcost layer class (see the module docstring).

    The fields after ``conventions`` are hooks: each has a default, and a binding sets one by defining a
    class attribute of that name (:func:`binds`). ``spec`` is the layer a row costs, ``operands`` the
    row's input :class:`~convcost.torch.rules.Tensor` objects in a training reading (shape, storage, gradient
    flag, layout), ``call`` the function call being read as ``(function, args, kwargs)`` or None.
    """

    layer: type
    modules: tuple = ()
    read: Callable | None = None
    build: Callable | None = None
    functions: dict = dataclasses.field(default_factory=dict)
    methods: dict = dataclasses.field(default_factory=dict)
    conventions: dict = dataclasses.field(default_factory=dict)
    # -- hooks: what the backend decides per layer class, each with its default ----------------------
    #: a functional call passes the layer its weights (``F.conv2d(x, w, b)``): a weight computed in the forward
    #: (weight standardisation, a kernel made by a network) is kept by autograd as it keeps any tensor, and
    #: that is found by running the call on meta tensors; False: such a weight is listed as not modelled
    passes_weights: bool = False
    #: ``inplace_clone(spec) -> bool``: in place (``silu_``), autograd keeps a copy of the input the call
    #: overwrites, because the backward reads that input; default: it keeps what the formula says
    inplace_clone: Callable = _never
    #: ``kernel(spec, operands) -> spec``: the layer as a training step runs it on these operands, where the
    #: kernel PyTorch chooses depends on their strides (the CPU's fused attention needs a unit stride on the
    #: last axis); default: ``spec`` itself
    kernel: Callable = _as_it_is
    #: ``step_call(spec, operands, call) -> (function, args, kwargs) | None``: what a training step runs on
    #: strided operands, run on meta tensors as laid out and contiguously to find the copies it keeps instead
    #: of its operands (:func:`convcost.torch.layouts.simulate`); None: strides change nothing it keeps;
    #: default: the call as the reading found it
    step_call: Callable = _as_called
    #: ``step_cost(spec, shapes, grads, operands, call) -> Cost | None``: the cost of a training step when the
    #: formula's plan cannot say what it keeps (an einsum's pairwise products on the model's layouts); None
    #: (the default): the formula's ``spec.cost(shapes, input_grads=grads)``
    step_cost: Callable = _nothing
    #: ``output_layout(spec, operands, output_shape) -> (layout, copied)``: how the output of a training
    #: step's row lies in memory when an operand is strided (a meta tensor, None: contiguous), and whether a
    #: layer modelled as a view had to copy; default: a new contiguous tensor
    #: (:mod:`convcost.torch.layouts` holds the shared rules: like the input, channels last kept, a view)
    output_layout: Callable = _contiguous_output
    #: the output may be strided though every operand is contiguous (an einsum returns its pairwise product
    #: permuted into the equation's output order), so ``output_layout`` is asked whatever the operands'
    #: layouts; default False: contiguous operands give a contiguous output
    strided_output: bool = False
    #: ``torch_backward(cost) -> macs | None``: ``FlopCounterMode``'s backward MACs for a cost of this layer
    #: where they differ from convcost's ``backward_macs`` (a grouped convolution's weight gradient counted
    #: ``G`` times); None (the default): convcost's own, or its parts' summed
    torch_backward: Callable = _nothing
    #: ``rank_after(layer, rank) -> int``: the rank of the output for an input of ``rank`` (what
    #: :func:`~convcost.torch.to_torch` builds the next layer for); default: ``rank``
    rank_after: Callable = _same_rank
    #: a module of ``modules`` is read through its children (a composition: a ``Sequential``, a dynamic
    #: kernel's two networks), not as one row; default: one row, its children unread
    read_through: bool = False
    # -- hooks of the walker (convcost.torch.walker): None is the default -------------------------------------
    #: ``(module, args, kwargs) -> [Tensor, ...] | None``: the tensors a module call reads as one row (default:
    #: its one positional tensor); None when the call cannot be one row
    module_inputs: Callable | None = None
    #: ``(spec, shape) -> Emit.output``: what a module call returns beside its row's output (an LSTM's states)
    module_output: Callable | None = None
    #: ``(spec) -> int``: the rank of an input without its batch axis, costed as a batch of one (a convolution)
    unbatched_rank: Callable | None = None
    #: ``(module) -> function``: what a training step runs on a strided input of the module, on meta tensors
    #: (default: the module's own forward with meta copies of its parameters)
    input_reading: Callable | None = None
    #: ``(module, spec) -> str | None``: why a module's training step is not fully counted, if it is not
    step_untracked: Callable | None = None
    #: its calls work element by element on operands whose dtypes PyTorch checks as it runs (an activation, an
    #: addition, a product): what PyTorch refuses of them, and the dtype it gives an integer operand's result, are
    #: asked of PyTorch (:mod:`convcost.torch.refusals`); default False: the rule's dtype stands
    element_wise: bool = False
    # -- hooks of mixed precision (a step under ``torch.autocast``, or a model in a low-precision dtype) ---------
    #: ``autocast_op(spec) -> str | None``: the aten operator the layer is under ``torch.autocast`` (``"conv2d"``),
    #: whose cast policy is the running release's (:mod:`convcost.torch.runtime.autocast`); None (the default):
    #: one autocast lets through, run in its inputs' dtype (a layer with MACs and no operator is listed)
    autocast_op: Callable = _nothing
    #: ``weight_copies(spec, reads, grads) -> tuple | None``: the parameters among ``reads`` whose low-precision
    #: copies, made by autocast, the step keeps for the backward (a convolution's weight always, a linear
    #: layer's when its input needs a gradient); None (the default): not modelled, listed where autocast
    #: copies a weight
    weight_copies: Callable = _nothing
    #: ``private_dtype(spec, shapes, operand, weight, buffers) -> torch.dtype``: the dtype of what the layer
    #: keeps beside its operands and output (batch norm's mean and invstd: its parameters' or running
    #: statistics' dtype; the fused attention's log-sum-exp: float32), given its operand's dtype, its
    #: parameters' (None without) and the model's buffers' (its floating dtype); default: the operand's
    private_dtype: Callable = _operand_dtype
    #: ``computes_in(spec, shapes, dtype) -> torch.dtype | None``: the dtype the layer computes in when its
    #: operands are of ``dtype``, where it casts them itself (the CPU's math-path attention runs a bfloat16
    #: call in float32, keeping float32 copies); None (the default): ``dtype``
    computes_in: Callable = _nothing


_FIELDS = [f.name for f in dataclasses.fields(Binding)]
#: the hook names a binding may define (every field after ``conventions``)
HOOKS = tuple(_FIELDS[_FIELDS.index("conventions") + 1:])


#: bindings by exact convcost layer class
BINDINGS: dict[type, Binding] = {}
#: functional rules by the function object a traced model calls (``F.conv2d``, ``operator.add`` ...)
FUNCTIONS: dict = {}
#: rules by tensor method name (``x.relu()``, ``x.add(y)`` ...)
METHODS: dict = {}
#: the layer class whose binding reads each module type (exact types)
MODULE_BINDINGS: dict = {}


def binds(layer: type, *, modules: tuple = ()):
    """Class decorator: the decorated class's ``read``, ``build``, ``functions``, ``methods`` and
    ``conventions`` are the torch side of ``layer``, and so is each hook it defines (:class:`Binding`).

    ``read(module) -> Layer`` is registered for each of ``modules`` in the one reader registry
    (:mod:`convcost.torch.registry`); ``build(layer, rank) -> nn.Module`` is what :func:`~convcost.torch.to_torch`
    makes; ``functions`` maps function objects and ``methods`` method names to functional rules
    (:mod:`convcost.torch.rules`); ``conventions`` maps a tool name to ``rule(row) -> count``.
    """

    def decorate(namespace):
        if layer in BINDINGS:
            raise ConvcostError(f"{layer.__name__} already has a torch binding; a layer class is bound once")
        known = ("read", "build", "functions", "methods", "conventions", *HOOKS)
        unknown = [k for k in vars(namespace) if not k.startswith("__") and k not in known]
        if unknown:  # a misspelt hook would silently keep its default
            raise ConvcostError(f"the binding of {layer.__name__} defines {unknown[0]!r}, which is no part of a "
                                f"binding (one of {', '.join(known)})")
        found = {k: getattr(namespace, k) for k in known if k in vars(namespace)}
        read, build = found.get("read"), found.get("build")
        functions, methods = dict(found.get("functions", {})), dict(found.get("methods", {}))
        taken = [f for f in functions if f in FUNCTIONS] + [m for m in methods if m in METHODS]
        if taken:
            raise ConvcostError(f"{taken[0]!r} already has a functional rule; a function is read by one binding")
        if modules:
            if read is None:
                raise ConvcostError(f"the binding of {layer.__name__} names module types but no read()")
            REGISTRY.register(*modules)(read)
        FUNCTIONS.update(functions)
        METHODS.update(methods)
        MODULE_BINDINGS.update(dict.fromkeys(modules, layer))
        BINDINGS[layer] = Binding(layer, tuple(modules), read, build, functions, methods,
                                  dict(found.get("conventions", {})), **{k: found[k] for k in HOOKS if k in found})
        return namespace

    return decorate


def binding_of(layer) -> Binding | None:
    """The binding of a layer class (or of an instance's exact class), or ``None``."""
    cls = layer if isinstance(layer, type) else type(layer)
    return BINDINGS.get(cls)


_DEFAULTS = Binding(object)


def hooks_of(layer) -> Binding:
    """The binding of a layer's exact class, or every hook's default for a class without one (a variant)."""
    return BINDINGS.get(layer if isinstance(layer, type) else type(layer), _DEFAULTS)


def module_binding(module) -> Binding | None:
    """The binding whose ``modules`` hold ``module``'s exact type (what reads it as one row), or ``None``.

    >>> import torch.nn as nn
    >>> b = module_binding(nn.Conv2d(3, 4, 3))
    >>> b.layer.__name__, b.module_inputs   # one positional tensor: the default
    ('Conv', None)
    """
    layer = MODULE_BINDINGS.get(type(module))
    return None if layer is None else BINDINGS[layer]
