"""The one table of what convcost knows about a function or tensor method beyond its binding's rule.

Every call a reading sees is classified here, by one key per operation (:func:`key`): ``x + y``
(``operator.add``), ``x.__add__(y)``, ``x.add(y)`` and ``torch.add(x, y)`` are the same operation, so
a classification cannot depend on how the forward spelled the call or which reading saw it. An
:class:`Op` says whether the call only views, moves or queries tensors (no work, no row), makes a new
tensor of another's shape, holds no multiply-accumulates (listed, but never making a model inexact), is
dropout (the identity at inference, a mask in a training step), is read by its parts in a training step,
returns its first argument's shape, and how its output shape follows from its inputs' (``shape``,
``rule(args, kwargs)`` on :class:`~convcost.torch.rules.Tensor` values).

The table is keyed by the function objects themselves. An operation spelled in a namespace the table does not
hold (``torch.linalg.norm``) or defined by a library convcost does not import (timm's ``drop_path``) is
classified by its name (:data:`NAMED`).

>>> import operator, torch
>>> key("function", operator.add) is key("method", "__add__") is key("method", "add") is torch.add
True
>>> key("function", torch.multiply) is key("method", "multiply") is torch.mul
True
>>> op_of("method", "view").view, op_of("function", torch.exp).no_macs, op_of("function", torch.exp).view
(True, True, False)
>>> op_of("method", "transpose").shape((Tensor((2, 3, 4)), 0, 2), {}).shape
(4, 3, 2)
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable

import sympy
import torch
import torch.nn.functional as F

from convcost.errors import ConvcostError
from convcost.torch.rules import NoRule, Tensor, bind_arguments


@dataclasses.dataclass(frozen=True)
class Op:
    """What one operation is, beside its binding's rule (see the module docstring)."""

    view: bool = False  # only views, moves, creates or queries tensors: no arithmetic, no row
    creates: bool = False  # a new tensor of another's shape (new_zeros, ones_like): no view of it, no gradient
    no_macs: bool = False  # element-wise or reduction work: listed when it has no rule, never a MAC
    uncounted: str = ""  # the work a no-MAC call does where it is not element-wise or reduction work (an FFT)
    dropout: bool = False  # the identity at inference; a mask in a training step
    by_parts: bool = False  # a training reading reads the function's own body, call by call
    same_shape: bool = False  # returns a tensor of its first argument's shape and dtype
    unary: bool = False  # element-wise on one tensor (and numbers): a floating operand's shape and dtype
    casts: bool = False  # converts its input to another dtype (``.float()``, ``.to(dtype)``): its shape rule's dtype
    picks: bool = False  # picks each element from one of its operands (where, masked_fill): in a training step a
    #                      new tensor, needing a gradient when any operand does, keeping what autograd keeps
    floating: bool = False  # PyTorch refuses an integer or boolean input (var, std): so does every reading
    shape: Callable | None = None  # the output of a view, from its arguments


# -- shape rules of the views ---------------------------------------------------------------------------


def _sizes(args, kwargs, *names):
    for name in names:
        if name in kwargs:
            return list(kwargs[name])
    return list(args[1:]) if len(args) > 2 or not isinstance(args[1], (tuple, list, torch.Size)) else list(args[1])


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _int(x):
    if type(x) is int:
        return x
    if isinstance(x, Tensor) and isinstance(x.tensor, torch.Tensor) and x.tensor.dim() == 0:
        return int(x.tensor)  # a size computed as a 0-d tensor: torch.div(n, 2, rounding_mode="trunc") (LED)
    x = sympy.sympify(x)
    return int(x) if x.is_Integer else x


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


def _cast_to(target):
    """The shape rule of a cast to ``target`` (``.float()``, ``.long()``)."""
    return lambda args, kwargs: _cast(args[0], target)


def _to(args, kwargs):
    """``x.to(dtype)``, ``x.to(device, dtype)``, ``x.to(other)``, ``x.to(device)``: the dtype it names, else x's."""
    named = kwargs.get("dtype") or next((a for a in args[1:] if isinstance(a, (torch.dtype, Tensor))), None)
    if named is None:
        return args[0]
    return _cast(args[0], named.dtype if isinstance(named, Tensor) else named, open_float=isinstance(named, Tensor))


def _type_as(args, kwargs):
    other = args[1] if len(args) > 1 else kwargs["other"]
    return _cast(args[0], other.dtype if isinstance(other, Tensor) else getattr(other, "dtype", None), open_float=True)


def _cast(x, target, open_float=False):
    """``x`` cast to ``target``, in that dtype (``.float()`` of a bfloat16 tensor is float32; an integer, boolean or
    complex one cast to a floating dtype is no index); ``open_float``: a target of None is the floating dtype left
    open (``type_as`` a hidden state)."""
    if target is None:
        return Tensor(x.shape, dtype=None if open_float else x.dtype)
    return Tensor(x.shape, dtype=target)


# -- one key per operation --------------------------------------------------------------------------------

_NAMESPACES = (torch, F, torch.Tensor, operator)


def _canonical() -> dict:
    """Every spelling of an operation mapped to one object: ``torch.<name>`` where it exists (``Tensor.add``,
    ``Tensor.__add__``, ``Tensor.__radd__``, ``operator.add``, ``operator.iadd`` are ``torch.add``)."""
    found = {}
    for name in dir(torch.Tensor):
        method = getattr(torch.Tensor, name, None)
        bare = name.strip("_") if name.startswith("__") else name
        bare = bare[1:] if name.startswith("__r") and hasattr(operator, bare[1:]) and not hasattr(operator, bare) \
            else bare
        bare = bare[1:] if name.startswith("__i") and hasattr(operator, bare[1:]) and bare[1:] != "nv" else bare
        target = getattr(torch, {"truediv": "div", "floordiv": "floor_divide", "mod": "remainder",
                                 "invert": "bitwise_not", "and": "bitwise_and", "or": "bitwise_or",
                                 "xor": "bitwise_xor", "lshift": "bitwise_left_shift",
                                 "rshift": "bitwise_right_shift"}.get(bare, bare), None)
        if callable(method) and callable(target) and not isinstance(target, type):
            found[method] = target
            for spelling in (bare, f"i{bare}", f"__{bare}__", f"__i{bare}__"):
                if name.startswith("__") and callable(getattr(operator, spelling, None)):
                    found[getattr(operator, spelling)] = target
    return found


_KEYS: dict = {}


def key(kind: str, target):
    """The one object that names the operation of a call (``kind`` "function" or "method"; a method by
    name), whichever way it was spelled."""
    method = getattr(torch.Tensor, target, target) if kind == "method" else target
    try:
        return _KEYS.get(method, method)
    except TypeError:  # an unhashable callable: its own key
        return method


# -- the table ----------------------------------------------------------------------------------------------

#: calls that only view, move, create or query tensors: no arithmetic, no row
_VIEW = """
view reshape permute transpose t contiguous size dim flatten unflatten unsqueeze squeeze expand expand_as repeat
chunk split split_with_sizes tensor_split unbind __getitem__ __setitem__ narrow select index_select gather take
setitem stack hstack vstack cat concat concatenate clone detach detach_ to type type_as float double half bfloat16 int
long bool
numel __len__ __iter__ __reversed__ fill_ zero_ copy_ unfold roll flip fliplr flipud movedim moveaxis swapaxes
swapdims view_as reshape_as item tolist view_as_complex view_as_real real imag
is_contiguous stride data_ptr storage_offset requires_grad_ __bool__ __index__ __int__ __float__ __format__
__repr__ __hash__ __contains__ __array__ is_floating_point is_complex element_size nelement arange zeros ones empty
full tensor as_tensor from_numpy linspace rand randn randint randperm eye meshgrid broadcast_to broadcast_tensors
atleast_1d atleast_2d atleast_3d diag diagonal tril triu repeat_interleave tile masked_select nonzero
argmax argmin argsort eq ne lt le gt ge __eq__ __ne__ __lt__ __le__ __gt__ __ge__ isnan isinf isfinite any all
greater greater_equal less less_equal not_equal
equal allclose is_nonzero _is_all_true _is_any_true channel_shuffle native_channel_shuffle
_has_compatible_shallow_copy_type
is_grad_enabled get_default_dtype dequantize cpu cuda pin_memory
as_strided set_ resize_ share_memory_ register_hook retain_grad backward __deepcopy__ __reduce_ex__ __setstate__
logical_not logical_and logical_or logical_xor bitwise_and bitwise_or bitwise_not bitwise_xor __and__ __or__ __invert__
__xor__ __iand__ __ior__ __ixor__ unique unique_consecutive where
masked_fill masked_fill_ index_fill index_fill_ scatter scatter_ index_put index_put_ sort topk kthvalue
""".split()

#: calls that pick each element from one of their operands, or a number (no arithmetic): in a training step the
#: gradient flows to every tensor operand, and autograd keeps the mask (the condition) it picked by (``topk``, ``sort``
#: and ``kthvalue``: the indices, which carry no gradient; ``gather``, ``index_select``, ``take`` and
#: ``masked_select``: the index or mask they select by, and for some the input; what each keeps comes from the call
#: run on meta tensors)
_PICKS = """where masked_fill masked_fill_ index_fill index_fill_ masked_scatter masked_scatter_ topk sort kthvalue
scatter scatter_ index_put index_put_ index_copy index_copy_ gather index_select take masked_select""".split()

#: calls that make a new tensor of another one's shape (no view of it, no gradient)
_CREATES = """new_zeros new_ones new_empty new_full new_tensor zeros_like ones_like empty_like full_like rand_like
randn_like randint_like""".split()

#: element-wise calls on one tensor, whose other arguments are numbers: a floating tensor's shape and dtype (the
#: shape reading gives it without running the call on meta tensors; an integer operand may change dtype)
_UNARY = """exp exp2 expm1 log log2 log10 log1p sqrt rsqrt pow __pow__ square neg __neg__ abs erf erfc erfinv sin
cos tan atan asin acos sinh cosh reciprocal sign floor ceil round trunc frac clamp clamp_min clamp_max clip
softplus logsigmoid softsign tanhshrink hardshrink softshrink celu selu sigmoid tanh""".split()

#: reductions PyTorch refuses on an integer or boolean tensor ("std and var only support floating point and complex
#: dtypes"), which their meta kernels accept
_FLOATING = "var std var_mean std_mean".split()

_DROPOUT = "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout".split()

#: element-wise or reduction work convcost does not count: listed, but it holds no multiply-accumulates
_NO_MACS = """
exp exp_ exp2 expm1 log log_ log2 log10 log1p sqrt sqrt_ rsqrt rsqrt_ pow pow_ __pow__ __rpow__ square neg neg_
__neg__ abs abs_ clamp clamp_ clamp_min clamp_min_ clamp_max clamp_max_ clip clip_ erf erf_ erfc erfinv sin cos tan
atan atan2 asin acos sinh cosh reciprocal reciprocal_ sign floor ceil round trunc frac fmod remainder __mod__
softplus mish mish_ logsigmoid softsign softshrink hardshrink tanhshrink threshold threshold_ rrelu rrelu_ celu selu
selu_ glu prelu silu_ hardsigmoid_ hardswish_ gelu_ leaky_relu_ elu_ relu6_ hardtanh_ max min maximum minimum fmax
fmin cumsum cumprod var std var_mean std_mean norm frobenius_norm nuclear_norm logsumexp prod nansum nanmean
median mode quantile normalize softmin lerp addcmul addcdiv dist lgamma digamma sigmoid_ logit xlogy cross_entropy
diff cummax cummin logcumsumexp vector_norm linalg_vector_norm _weight_norm norm_except_dim nll_loss mse_loss
l1_loss binary_cross_entropy binary_cross_entropy_with_logits kl_div smooth_l1_loss cosine_similarity
pairwise_distance local_response_norm embedding embedding_bag one_hot grid_sample affine_grid fold lp_pool1d
lp_pool2d lp_pool3d fractional_max_pool2d fractional_max_pool3d adaptive_max_pool1d_with_indices
adaptive_max_pool2d_with_indices max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices
upsample_nearest upsample_bilinear hardtanh pad interpolate upsample mean sum amax amin softmax log_softmax
batch_norm layer_norm group_norm instance_norm rms_norm max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d
avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d
adaptive_max_pool3d max_unpool1d max_unpool2d max_unpool3d pixel_shuffle pixel_unshuffle add add_ sub mul mul_ div
relu relu_ sigmoid tanh silu gelu hardswish leaky_relu elu relu6 bernoulli bernoulli_ uniform_ normal_ random_
exponential_ geometric_ cauchy_ log_normal_ multinomial normal poisson histc bincount bucketize searchsorted
floor_divide floor_divide_ __floordiv__ __ifloordiv__
__rfloordiv__ polar index_add index_add_ scatter_add scatter_add_ scatter_reduce scatter_reduce_
""".split()

#: Fourier transforms (FNet's token mixing): arithmetic, but no multiply-accumulates of a weight, which FlopCounterMode
#: counts as nothing too; listed, never a MAC, what autograd keeps of them read as for any no-MAC call
_FFT = """fft ifft fft2 ifft2 fftn ifftn rfft irfft rfft2 irfft2 rfftn irfftn hfft ihfft hfft2 ihfft2 hfftn
ihfftn""".split()
_FFT_WORK = "a Fourier transform: arithmetic convcost does not count (FlopCounterMode counts none either)"

#: functions whose output has their first argument's shape and dtype (normalisations, activations)
_SAME_SHAPE = (F.batch_norm, torch.batch_norm, F.layer_norm, torch.layer_norm, F.group_norm, torch.group_norm,
               F.instance_norm, torch.instance_norm, F.rms_norm, F.relu, torch.relu, F.relu6, F.silu, F.gelu,
               F.hardswish, F.hardsigmoid, F.sigmoid, torch.sigmoid, F.hardtanh, F.leaky_relu, F.elu, F.mish,
               torch.tanh)

#: the tensor methods that cast to one dtype (``x.float()``), by name
CAST_DTYPES = {"float": torch.float32, "double": torch.float64, "half": torch.float16, "bfloat16": torch.bfloat16,
               "long": torch.int64, "int": torch.int32, "bool": torch.bool}

#: the shape rules of views, by function object and by tensor method name
_SHAPES = {
    torch.reshape: _view, torch.permute: _permute, torch.transpose: _transpose, torch.chunk: _chunk,
    torch.split: _split, torch.unsqueeze: _unsqueeze, torch.squeeze: _squeeze, torch.stack: _stack,
    torch.t: _t, torch.clone: _same,
    "view": _view, "reshape": _view, "permute": _permute, "transpose": _transpose, "contiguous": _same,
    "size": _size, "dim": _dim, "chunk": _chunk, "split": _split, "unsqueeze": _unsqueeze, "squeeze": _squeeze,
    "expand": _expand, "t": _t, "clone": _same, "detach": _same, "to": _to, "type_as": _type_as,
    "cpu": _same,  # on the CPU, the tensor itself (a view in a training step: no copy)
    **{name: _cast_to(dtype) for name, dtype in CAST_DTYPES.items()},
}

#: the casts among the views (their shape rule says the dtype)
_CASTS = "to type_as float double half bfloat16 long int bool".split()

#: names of views of other libraries, which convcost does not import (timm's drop_path, torchvision's
#: stochastic_depth) or of torch internals (``__set__``: ``param.data = ...``, as ``Module.to`` in a forward does)
_FOREIGN_VIEWS = """stochastic_depth drop_path drop_block_2d pad_sequence identity is_scripting _get_tracing_state
_set_grad_enabled __get__ __set__ split_""".split()


def _objects(name):
    """The function objects spelled ``name`` (in torch, torch.nn.functional, as a tensor method, in operator)."""
    found = []
    for namespace in _NAMESPACES:
        f = getattr(namespace, name, None)
        if callable(f) and not isinstance(f, type) and key("function", f) not in found:
            found.append(key("function", f))
    return found


def _table() -> dict:
    entries: dict = {}

    def add(name_or_object, **flags):
        objects = _objects(name_or_object) if isinstance(name_or_object, str) else [key("function", name_or_object)]
        for obj in objects:
            entries[obj] = dataclasses.replace(entries.get(obj, Op()), **flags)

    for name in _VIEW:
        add(name, view=True)
    for name in _CREATES:
        add(name, view=True, creates=True)
    for name in _PICKS:
        add(name, view=True, picks=True)
    for name in _DROPOUT:
        add(name, view=True, dropout=True)
        add(getattr(F, name), shape=_same)
    for name in _NO_MACS:
        add(name, no_macs=True)
    for name in _FFT:
        add(getattr(torch.fft, name), no_macs=True, uncounted=_FFT_WORK)
    for f in _SAME_SHAPE:
        add(f, same_shape=True)
    for name in _UNARY:
        add(name, unary=True)
    for name in _FLOATING:
        add(name, floating=True)
    for spelled, rule in _SHAPES.items():
        add(getattr(torch.Tensor, spelled) if isinstance(spelled, str) else spelled, shape=rule)
    for name in _CASTS:
        add(getattr(torch.Tensor, name), casts=True)
    add(F.multi_head_attention_forward, by_parts=True)
    return entries


def _named() -> dict:
    """The same classification by a function's name, for an operation spelled in a namespace the table does not
    hold (``torch.linalg.norm``, ``torch.special.erf``) or defined by a library convcost does not import."""
    entries: dict = {}
    for names, flags in ((_VIEW + _FOREIGN_VIEWS, {"view": True}), (_CREATES, {"view": True, "creates": True}),
                         (_DROPOUT, {"view": True, "dropout": True}), (_NO_MACS, {"no_macs": True}),
                         (_PICKS, {"view": True, "picks": True})):
        for name in names:
            entries[name] = dataclasses.replace(entries.get(name, Op()), **flags)
    for name in _FFT:  # torch.fft.fftn is named fft_fftn
        entries[f"fft_{name}"] = Op(no_macs=True, uncounted=_FFT_WORK)
    return entries


_KEYS.update(_canonical())
#: PyTorch's other names of one operation (``torch.multiply`` is ``torch.mul``), in every spelling
_ALIASES = {"multiply": "mul", "divide": "div", "true_divide": "div", "subtract": "sub"}
for _alias, _name in _ALIASES.items():
    for _spelled in (getattr(torch, _alias), getattr(torch.Tensor, _alias)):
        _KEYS[_spelled] = getattr(torch, _name)
    _KEYS[getattr(torch.Tensor, f"{_alias}_")] = getattr(torch.Tensor, f"{_name}_")
#: the table, by the key of each operation
OPS: dict = _table()
#: ... and by name, where the object is not in it (see :func:`_named`)
NAMED: dict = _named()
_NONE = Op()


def op_of(kind: str, target) -> Op:
    """The table's entry for a call (an empty :class:`Op` where it has none); asked several times per call a
    forward makes, so each answer is kept (a few hundred operations at most: the functions and method names
    of torch and operator)."""
    try:
        return _SEEN[kind, target]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: looked up at each call
        return _op_of(kind, target)
    found = _op_of(kind, target)
    if len(_SEEN) < _SEEN_AT_MOST:  # (a forward that makes a new callable at each call fills no memory)
        _SEEN[kind, target] = found
    return found


def _op_of(kind: str, target) -> Op:
    found = OPS.get(key(kind, target))
    if found is None:
        found = NAMED.get(target if isinstance(target, str) else getattr(target, "__name__", ""), _NONE)
    return found


_SEEN: dict = {}
_SEEN_AT_MOST = 4096
