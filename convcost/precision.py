"""Mixed precision in closed form: the bytes a training step keeps under a precision recipe.

A recipe says which dtype each part of a step is held in (:data:`RECIPES`):

- ``"fp32"``: everything float32, indices int64 (the one-dtype rule, ``dtype="float32"``);
- ``"bf16-autocast"``, ``"fp16-autocast"``: a float32 model trained under ``torch.autocast`` in that dtype:
  parameters, gradients and optimizer state float32 (master weights), saved tensors as below;
- ``"bf16"``, ``"fp16"``: a model and its input cast to that dtype (``model.to(torch.bfloat16)``): parameters,
  gradients, optimizer state and saved tensors in it (Adam's step scalars float32, indices int64).

Under autocast each operation keeps what PyTorch's CPU autocast gives it (torch 2.13's lists; every
primitive declares its rule with :meth:`convcost.layers.Operation.autocast_rule`, and a test holds each
declaration against the PyTorch backend's reading of the same lists):

- ``"lower"`` (convolution, transposed convolution, linear): its input is cast to the low dtype (a new
  storage where it was float32, which the step keeps in place of the input) and it computes in it; the
  low-precision copy of its weight is kept too (a convolution's whenever it records a backward, a linear
  layer's when its input needs a gradient: :meth:`~convcost.layers.Operation.autocast_weight`);
- ``"fp32"`` (the 3-D pools, reflection and replication padding): its input is cast to float32;
- ``"promote"`` (concatenation): its inputs are cast to the widest dtype among them;
- ``"keep"`` (batch and layer norm, activations, 2-D pools, views, add, multiply): it runs in its inputs' dtype,
  promoted as PyTorch promotes (a bfloat16 tensor added to a float32 one gives float32).

What an operation keeps beside its operands has the dtype :meth:`~convcost.layers.Operation.private_dtype`
gives (batch norm's statistics take its parameters' and running statistics' dtype, float32 under autocast,
even without affine weights; layer norm's its weight's, or the input's without one); indices are int64. Each
storage counts once, in its own dtype, as ``saved_tensors_hooks`` sees it. A primitive that declares no rule
(matrix products, attention, einsum, an LSTM, layer scale ...) is refused under a mixed recipe, never priced by
a guess.

>>> from convcost import SeparableConv
>>> c = SeparableConv(C=8, O=16, K=3, H=8, W=8).cost(input_grad=False)
>>> c.saved_elements, c.saved_indices
(800, 0)
>>> saved_by_dtype(c, "bf16-autocast")     # the input's bf16 copy, the depthwise output, both weight copies
{'bfloat16': 2000}
>>> 2 * (8 * 8 * 8 + 8 * 9 + 8 * 6 * 6 + 16 * 8)
2000
>>> saved_by_dtype(c, "fp8")
Traceback (most recent call last):
...
convcost.errors.ConvcostError: unknown precision 'fp8'; known: fp32, bf16-autocast, fp16-autocast, bf16, fp16
"""

from __future__ import annotations

import dataclasses

from convcost.arith import total
from convcost.errors import ConvcostError
from convcost.shapes import numel
from convcost.storages import saved_storages

#: bytes per element of each dtype a recipe names
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8}


@dataclasses.dataclass(frozen=True)
class Precision:
    """A precision recipe: ``compute`` is the low dtype (autocast's, or the cast model's), ``params`` the dtype
    of the parameters, their gradients and the optimizer's state, ``autocast`` whether ``torch.autocast`` casts
    per operation (else every tensor is in ``compute``).

    >>> precision("bf16-autocast")
    Precision(name='bf16-autocast', compute='bfloat16', params='float32', autocast=True)
    """

    name: str
    compute: str
    params: str
    autocast: bool

    @property
    def input(self) -> str:
        """The dtype of the data fed to the model: float32 under autocast, the cast model's own otherwise."""
        return "float32" if self.autocast else self.compute


#: the recipes by name
RECIPES = {r.name: r for r in (
    Precision("fp32", "float32", "float32", False),
    Precision("bf16-autocast", "bfloat16", "float32", True),
    Precision("fp16-autocast", "float16", "float32", True),
    Precision("bf16", "bfloat16", "bfloat16", False),
    Precision("fp16", "float16", "float16", False),
)}

#: the rules an operation may declare (see the module docstring)
RULES = ("lower", "fp32", "promote", "keep")


def precision(recipe) -> Precision:
    """The recipe ``recipe`` names (a :class:`Precision` is taken as it is), or one error listing the names.

    >>> precision("bf16").params
    'bfloat16'
    >>> precision(16)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: unknown precision 16; known: fp32, bf16-autocast, fp16-autocast, bf16, fp16
    """
    if isinstance(recipe, Precision):
        return recipe
    if not isinstance(recipe, str) or recipe not in RECIPES:
        raise ConvcostError(f"unknown precision {recipe!r}; known: {', '.join(RECIPES)}")
    return RECIPES[recipe]


def promoted(*dtypes: str) -> str:
    """The floating dtype PyTorch's type promotion gives operands of ``dtypes`` (bfloat16 with float16 is
    float32).

    >>> promoted("bfloat16", "float32"), promoted("bfloat16", "float16"), promoted("float16", "float16")
    ('float32', 'float32', 'float16')
    """
    wide = max(dtypes, key=ITEMSIZE.__getitem__)
    if any(d != wide and ITEMSIZE[d] == ITEMSIZE[wide] for d in dtypes):
        return "float32"
    return wide


def saved_by_dtype(cost, recipe) -> dict:
    """Bytes of the tensors a step of ``cost`` saves under ``recipe``, by dtype name (each storage once).

    ``cost`` is a layer's cost (``layer.cost(shape)``; its layer tells the storages apart), its training
    flags bound (a condition still open, such as ``Residual(when=Eq(S, 1))``, is refused: bind it).
    """
    recipe = precision(recipe)
    if cost.untrained:
        raise ConvcostError(f"saved bytes: convcost has no training counts yet for {', '.join(cost.untrained)}")
    if cost.spec is None:
        raise ConvcostError("saved bytes under a precision recipe: give a layer's cost (layer.cost(shape)); a sum "
                            "of costs made by hand does not say which tensors are shared")
    if cost.spec.several_inputs:  # its cost holds the first operand's shape only
        raise ConvcostError(f"saved bytes under a precision recipe: {cost.spec!r} takes several inputs; price a "
                            "layer that holds it")
    graph = Graph(recipe)
    grad = cost.input_grads[0] if cost.input_grads else True
    cost.spec.precision_rows(cost, [(graph.new(cost.input_shape, recipe.input), cost.input_shape, grad)], graph)
    return graph.bytes()


class Graph:
    """The storages of one step under a recipe, built by the layers' :meth:`precision_rows` hooks: each
    operation is a row that reads operand storages and writes an output storage (or a view of its input)."""

    def __init__(self, recipe: Precision):
        self.recipe = recipe
        self.rows = []  # (cost, [(key, shape)], output key, private dtype)
        self.elements, self.dtypes = {}, {}
        self.copies = []  # (elements, dtype): weight copies autocast made and the step keeps

    def new(self, shape, dtype: str) -> int:
        """A new storage of ``shape`` in ``dtype``."""
        key = len(self.elements)
        self.elements[key], self.dtypes[key] = numel(shape), dtype
        return key

    def leaf(self, layer, cost, inputs) -> tuple:
        """One operation ``layer`` costing ``cost`` on ``inputs`` (``(key, shape, needs grad)`` each): its row,
        with the casts autocast makes; returns its output as ``(key, shape, needs grad)``."""
        recipe = self.recipe
        rule = layer.autocast_rule()
        if rule is None:
            raise ConvcostError(f"{layer!r}: convcost does not know which dtype {type(layer).__name__} runs in under "
                                f"precision {recipe.name!r} (no autocast rule declared), so its saved bytes are not "
                                "priced; use precision='fp32' or the one-dtype rule (dtype=...)")
        if rule not in RULES:
            raise ConvcostError(f"{layer!r}: autocast_rule() gave {rule!r}; known: {', '.join(RULES)}")
        if not recipe.autocast:
            rule = "keep"
        operands = [self.dtypes[key] for key, _, _ in inputs]
        target = {"lower": recipe.compute, "fp32": "float32", "promote": promoted(*operands)}.get(rule)
        kept = []
        for (key, shape, _), dtype in zip(inputs, operands):
            if target is not None and dtype != target:
                key = self.new(shape, target)  # autocast's cast: a new storage, kept in place of the operand
            kept.append((key, shape))
        out_dtype = target or promoted(*(self.dtypes[k] for k, _ in kept))
        if cost.output_view is True:
            out = kept[0][0]
        elif cost.output_view is False:
            out = self.new(cost.output_shape, out_dtype)
        else:
            raise ConvcostError(f"{layer!r}: whether its output is a view of its input is undecided; bind it")
        private = layer.private_dtype(self.dtypes[kept[0][0]], recipe.params)
        self.rows.append((cost, kept, out, private))
        if rule == "lower" and recipe.params != recipe.compute:
            weight = layer.autocast_weight(cost, tuple(g for _, _, g in inputs))
            if weight is not None and weight != 0:
                self.copies.append((weight, recipe.compute))
        return out, cost.output_shape, cost.output_grad

    def bytes(self) -> dict:
        """Bytes by dtype name: each saved storage once in its dtype, what rows keep beside their operands in
        their private dtype (indices int64), and the weight copies."""
        by, keys = {}, set()

        def add(dtype, n):
            by[dtype] = total((by.get(dtype, 0), ITEMSIZE[dtype] * n))

        for cost, kept, out, private in self.rows:
            own, found = saved_storages([(cost, kept, out)])
            keys |= found
            add(private, own - cost.saved_indices)
            add("int64", cost.saved_indices)
        for key in sorted(keys):
            add(self.dtypes[key], self.elements[key])
        for n, dtype in self.copies:
            add(dtype, n)
        return {k: v for k, v in sorted(by.items()) if v != 0}

