"""A model's inputs as PyTorch takes them: a shape, a tensor, or a tuple or list of them (one per
positional input; a list of tensors inside that tuple is one input, as a detection model takes its images), and
keyword inputs.

A shape holds ints or sympy symbols (``(1, 3, H, W)``); a tensor keeps its dtype (and its values, for
a model whose control flow reads them); a floating input takes the model's parameter dtype.

>>> import torch
>>> i = model_inputs(torch.nn.Conv2d(3, 8, 3), (1, 3, 8, 8))
>>> i.shapes, i.symbolic
(((1, 3, 8, 8),), False)
>>> model_inputs(torch.nn.Conv2d(3, 8, 3), [(1, 3, 8, 8), torch.zeros(2, 5, dtype=torch.long)]).shapes
((1, 3, 8, 8), (2, 5))
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import sympy
import torch

from convcost.errors import ConvcostError
from convcost.shapes import as_shape


@dataclasses.dataclass(frozen=True)
class Input:
    """One input: its shape, dtype, and the tensor the caller gave (if any)."""

    shape: tuple
    dtype: object
    tensor: object = None

    def meta(self):
        if isinstance(self.tensor, list):
            return [torch.empty_like(t, device="meta") for t in self.tensor]
        if self.tensor is not None:
            return torch.empty_like(self.tensor, device="meta")
        return torch.zeros(self.shape, dtype=self.dtype, device="meta")

    def real(self, device):
        if self.tensor is not None:
            return self.tensor
        elements = math.prod(self.shape)
        if elements > MAX_REAL_ELEMENTS:  # a real run of a huge input would take seconds and gigabytes
            raise ConvcostError(f"profile: the model cannot run on meta tensors, and an input of shape {self.shape} "
                                f"({elements:,} elements) is over the {MAX_REAL_ELEMENTS:,} it runs on real tensors")
        return torch.zeros(self.shape, dtype=self.dtype, device=device)


#: the most elements of one input profile allocates when a model must run on real tensors
MAX_REAL_ELEMENTS = 2**24


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Every input of one call: positional ones in order and keyword ones by name."""

    positional: tuple
    keywords: dict

    @property
    def all(self) -> tuple:
        return (*self.positional, *self.keywords.values())

    @property
    def shapes(self) -> tuple:
        return tuple(i.shape for i in self.all)

    @property
    def report_shape(self) -> tuple:
        """The shape a report shows as its input (the first input's)."""
        return self.shapes[0] if self.shapes else ()

    @property
    def symbolic(self) -> bool:
        return any(type(x) is not int for s in self.shapes for x in s)

    def meta(self):
        return tuple(i.meta() for i in self.positional), {k: i.meta() for k, i in self.keywords.items()}

    def real(self, device):
        return tuple(i.real(device) for i in self.positional), {k: i.real(device) for k, i in self.keywords.items()}


def model_inputs(model, inputs, kwargs=None, where="profile") -> Inputs:
    """Read ``inputs`` (and keyword inputs ``kwargs``) for ``model`` (see the module docstring)."""
    dtype = next((t.dtype for t in model.parameters() if t.is_floating_point()), torch.get_default_dtype())
    if _is_one(inputs):
        positional = (_one(inputs, dtype, where),)
    elif isinstance(inputs, (tuple, list)) and inputs and all(isinstance(x, numbers.Number) for x in inputs):
        as_shape(tuple(inputs), where)  # one shape with a size that is not one (1, 3, 32.5, 32): say which
        raise ConvcostError(f"{where}: {inputs!r} is not a shape of sizes")  # (as_shape refuses first)
    elif isinstance(inputs, (tuple, list)) and inputs:
        positional = tuple(_one(x, dtype, where) for x in inputs)
    elif isinstance(inputs, dict):
        raise ConvcostError(f"{where}: inputs by name go in kwargs=, e.g. {where}(model, first_input, "
                            f"kwargs={inputs!r}): the positional inputs first, then the named ones")
    else:
        raise ConvcostError(f"{where}: give the input as a shape, a tensor, or a tuple or list of them; got {inputs!r}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConvcostError(f"{where}: kwargs must be a dict of keyword inputs, got {type(kwargs).__name__}")
    keywords = {str(k): _one(v, dtype, where) for k, v in (kwargs or {}).items()}
    return Inputs(positional, keywords)


def tensor_list(value) -> Input:
    """A list of tensors as one input (torchvision's detection models take their images so; they may differ in
    size): its shape is ``(n, *shape)`` where they share one, else ``(n,)``.

    >>> import torch
    >>> same, different = [torch.zeros(3, 4, 5), torch.zeros(3, 4, 5)], [torch.zeros(2), torch.zeros(3)]
    >>> tensor_list(same).shape, tensor_list(different).shape
    ((2, 3, 4, 5), (2,))
    """
    shapes = {tuple(int(x) for x in t.shape) for t in value}
    shape = (len(value), *next(iter(shapes))) if len(shapes) == 1 else (len(value),)
    return Input(shape, value[0].dtype, list(value))


def _is_one(value) -> bool:
    """A tensor, or a shape: a tuple of sizes (ints or sympy expressions), ``()`` included."""
    if isinstance(value, (torch.Tensor, torch.Size)):
        return True
    if isinstance(value, tuple) or isinstance(value, list) and value and all(type(x) is int for x in value):
        return all(isinstance(x, (int, sympy.Expr)) or hasattr(x, "__index__") and not isinstance(x, torch.Tensor)
                   for x in value)
    return False


def _one(value, dtype, where) -> Input:
    if isinstance(value, torch.Tensor):
        return Input(tuple(int(x) for x in value.shape), value.dtype, value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(t, torch.Tensor) for t in value):
        return tensor_list(value)
    if isinstance(value, (list, torch.Size)) and all(isinstance(x, int) for x in value):
        value = tuple(value)
    if not isinstance(value, tuple):
        raise ConvcostError(f"{where}: an input must be a shape (a tuple of sizes) or a tensor, got {value!r}")
    shape = as_shape(value, where)
    return Input(shape, dtype)
