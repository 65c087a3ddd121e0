"""The base of everything that has a cost: primitives, compositions, variants.

A layer describes an operation; the input it is applied to is an argument of
its cost, so a composition can hand each part the shape the previous part
produced. ``layer.cost()`` without an input uses the layer's default input
(batch 1, symbolic spatial size) where it has one.
"""

from __future__ import annotations

import dataclasses
import inspect

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.shapes import as_shape
from convcost.spec import Spec
from convcost.validate import kind_of


@dataclasses.dataclass(frozen=True)
class Grad:
    """What needs a gradient in a training step: the layer's input, and its parameters (``trainable``)."""

    input: bool = True
    trainable: bool = True

    def __post_init__(self):
        for name, shown in (("input", "input_grad"), ("trainable", "trainable")):
            if not isinstance(getattr(self, name), bool):
                raise ConvcostError(f"{shown}={getattr(self, name)!r} must be True or False")


#: the default: the input needs a gradient (a layer inside a network) and every parameter is trained
TRAINING = Grad()


def _declared_training_counts(cls, least: int) -> None:
    """Refuse a class that claims training counts (the default) while its ``_cost`` cannot take the flags.

    The class says whether it has them (``training_counts``); its signature is only checked against that, once,
    when the class is made, so a layer written before training counts fails at once, not with a silent zero."""
    if not cls.__dict__.get("training_counts", cls.training_counts) or "_cost" not in cls.__dict__:
        return
    try:
        parameters = inspect.signature(cls._cost).parameters
    except (TypeError, ValueError):  # a builtin or a wrapped callable: its declaration is taken as written
        return
    takes = len(parameters) >= least or any(p.kind is p.VAR_POSITIONAL for p in parameters.values())
    if not takes:
        raise ConvcostError(f"{cls.__name__}: its _cost takes no training flags, so it has no training counts; "
                            f"say so in the class body: training_counts = False")


class Operation(Spec):
    """What a layer (one input) and a merge (several) share, for code that takes either: a cost on a list of
    input shapes, whether it takes several, and whether it has training counts.

    >>> from convcost.primitives import Add, Conv
    >>> [op.cost_of_inputs([(1, 4, 8, 8), (1, 4, 8, 8)][:n]).output_shape for op, n in ((Conv(C=4, O=2, K=1), 1),
    ...                                                                               (Add(), 2))]
    [(1, 2, 8, 8), (1, 4, 8, 8)]
    """

    abstract_base = True
    #: whether ``_cost`` gives a training step's counts (every convcost class's does). One whose ``_cost``
    #: counts only the forward says ``training_counts = False``: its costs then name it in ``untrained`` and a
    #: step's memory is refused, never a silent zero.
    training_counts = True
    #: whether its cost takes a list of input shapes (a merge) rather than one shape (a layer)
    several_inputs = False

    def cost_of_inputs(self, input_shapes, input_grads=None, trainable: bool = True) -> Cost:
        """The cost on ``input_shapes`` (a list, one shape for a layer), ``input_grads`` one flag per input
        (None: every input needs a gradient), ``trainable`` whether its parameters are trained."""
        raise NotImplementedError

    # -- mixed precision (convcost.precision): what torch.autocast does to it, declared with the operation ----
    def autocast_rule(self) -> str | None:
        """How PyTorch's CPU autocast (torch 2.13's lists) treats this operation: ``"lower"`` (casts its inputs
        to the low dtype and computes in it), ``"fp32"``, ``"promote"`` (to the widest input dtype) or
        ``"keep"`` (runs in its inputs' dtype). None (the default): not declared, so a step is not priced in
        mixed precision (:mod:`convcost.precision` refuses rather than guess)."""
        return None

    def autocast_weight(self, cost: Cost, input_grads: tuple):
        """Elements of the low-precision weight copy autocast makes for a ``"lower"`` operation and the step
        keeps for the backward (0: none), given its ``cost`` and which inputs needed a gradient."""
        return 0

    def private_dtype(self, operand: str, params: str) -> str:
        """The dtype of what a step keeps beside the operation's operands and output (batch norm's statistics),
        given its (cast) operand's dtype and the parameters' dtype; indices are int64 whatever this says."""
        return operand

    def precision_rows(self, cost: Cost, inputs: list, graph) -> tuple:
        """Add this operation's storages, as it was costed (``cost``), to ``graph`` (a
        :class:`convcost.precision.Graph`) on ``inputs`` (``(key, shape, needs grad)`` each); returns its
        output the same way. One operation is one row; a composition adds its parts' rows."""
        return graph.leaf(self, cost, inputs)


class Layer(Operation):
    """Something with an exact cost on an input shape."""

    #: set in the body of a base class that describes no layer by itself (read from the class's own dict)
    abstract_base = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _declared_training_counts(cls, 3)

    def cost_of_inputs(self, input_shapes, input_grads=None, trainable: bool = True) -> Cost:
        shapes = tuple(input_shapes)
        if len(shapes) != 1:
            raise ConvcostError(f"{self!r}: takes one input, got {len(shapes)} shapes")
        grad = True if input_grads is None else tuple(input_grads)[0]
        return self.cost(shapes[0], input_grad=grad, trainable=trainable)

    def cost(self, input_shape=None, *, input_grad: bool = True, trainable: bool = True) -> Cost:
        """The exact cost of applying this layer to a tensor of ``input_shape``.

        The training counts (``backward_macs``, ``saved_elements``) assume a step in which the input needs
        a gradient (``input_grad``; False for a network's first layer fed data) and the parameters are
        trained (``trainable``; False for frozen ones: no weight gradient, no optimizer state).

        >>> from convcost.primitives import Conv
        >>> c = Conv(C=3, O=8, K=3, bias=False)
        >>> c.cost((1, 3, 6, 6)).macs      # 8 filters x 4x4 positions x 27 taps
        3456
        >>> c.cost((1, 3, 6, 6)).backward_macs, c.cost((1, 3, 6, 6), input_grad=False).backward_macs
        (6912, 3456)
        """
        shape = self.default_input() if input_shape is None else as_shape(input_shape, self)
        if input_grad is True and trainable is True:  # the common case: no Grad built, old _cost signatures work
            c = self._cost(shape)
            if not self.training_counts:
                return _untrained(c.with_spec(self, shape), self)
        else:
            if not self.training_counts:
                raise ConvcostError(f"{self!r}: {type(self).__name__} has no training counts yet (training_counts "
                                    "= False), so input_grad/trainable cannot be applied to it")
            c = self._cost(shape, Grad(input=input_grad, trainable=trainable))
        c = c.with_spec(self, shape)
        c.__dict__["input_grads"] = (input_grad,)  # a fresh copy from with_spec
        if trainable is not True:
            c.__dict__["trainable"] = False  # a fresh copy from with_spec
        return c

    def output_shape(self, input_shape=None) -> tuple:
        """Shape of the output for ``input_shape``."""
        return self.cost(input_shape).output_shape

    def default_input(self) -> tuple:
        """The input shape ``cost()`` uses when none is given."""
        raise ConvcostError(f"{self!r}: give an input shape, e.g. {type(self).__name__}(...).cost((1, 3, 32, 32))")

    def _cost(self, shape: tuple, grad: Grad = TRAINING) -> Cost:
        raise NotImplementedError


def _untrained(c: Cost, layer) -> Cost:
    """``c`` marked as lacking training counts (its class's ``_cost`` takes no training flags)."""
    if not c.untrained:
        c.__dict__["untrained"] = (type(layer).__name__,)  # a fresh copy from with_spec
    return c


def _takes_grad(cls) -> bool:
    """Whether a layer or merge class gives training counts (its declared ``training_counts``)."""
    return cls.training_counts


class Merge(Operation):
    """An operation that combines several inputs into one (add, multiply, concatenate)."""

    abstract_base = True
    several_inputs = True
    #: the fewest inputs it takes (multi-head attention takes one: the query that is also key and value)
    min_inputs = 2
    #: an axis along which an input may be empty (size 0), as PyTorch allows it there; None: nowhere
    empty_axis = None
    #: whether it holds parameters a step trains (CondConv's experts, a deformable convolution's weight,
    #: attention's projections): its ``_cost`` then takes ``trainable=``
    has_parameters = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _declared_training_counts(cls, 3)
        if "_cost" in cls.__dict__ and cls.training_counts:
            takes = "trainable" in inspect.signature(cls._cost).parameters
            if takes != cls.has_parameters:
                raise ConvcostError(f"{cls.__name__}: has_parameters = {cls.has_parameters} but its _cost "
                                    f"{'takes' if takes else 'takes no'} trainable=; declare what it does")

    def cost(self, input_shapes, *, input_grads=None, trainable: bool = True) -> Cost:
        """The exact cost of combining tensors of the given shapes; ``input_grads`` says which need a gradient
        (all by default), ``trainable`` whether its parameters are trained (a merge with parameters: CondConv's
        experts, a deformable convolution's weight, attention's projections). The cost's ``saves_input`` is a
        tuple: which operands autograd saves; its ``input_grads`` the flags it was costed with."""
        if kind_of(input_shapes) != "sequence":
            raise ConvcostError(f"{self!r}: give a list of input shapes, got {input_shapes!r}")
        shapes = tuple(as_shape(s, self, self.empty_axis) for s in input_shapes)
        if len(shapes) < self.min_inputs:
            raise ConvcostError(f"{self!r}: needs at least {self.min_inputs} "
                                f"input{'s' if self.min_inputs > 1 else ''}, "
                                f"got {len(shapes)}")
        grads = (True,) * len(shapes) if input_grads is None else tuple(input_grads)
        if len(grads) != len(shapes) or not all(isinstance(g, bool) for g in grads):
            raise ConvcostError(f"{self!r}: input_grads={input_grads!r} must be one True or False per input")
        if not isinstance(trainable, bool):
            raise ConvcostError(f"{self!r}: trainable={trainable!r} must be True or False")
        if not self.training_counts:
            if input_grads is not None or trainable is not True:
                raise ConvcostError(f"{self!r}: {type(self).__name__} has no training counts yet, so input_grads "
                                    "and trainable cannot be applied to it")
            return _untrained(self._cost(shapes).with_spec(self, shapes[0]), self)
        if self.has_parameters:
            c = self._cost(shapes, grads, trainable=trainable).with_spec(self, shapes[0])
        else:  # no parameters: nothing to train
            c = self._cost(shapes, grads).with_spec(self, shapes[0])
        c.__dict__["input_grads"] = grads  # a fresh copy from with_spec
        if trainable is not True:
            c.__dict__["trainable"] = False
        return c

    def cost_of_inputs(self, input_shapes, input_grads=None, trainable: bool = True) -> Cost:
        return self.cost(list(input_shapes), input_grads=input_grads, trainable=trainable)

    def _cost(self, shapes: tuple, grads: tuple) -> Cost:
        raise NotImplementedError
