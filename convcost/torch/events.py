"""One call a model's forward makes, as every reading hands it to the walker.

A reading (on shapes, :mod:`convcost.torch.trace_shapes`; through a ``torch.fx`` graph,
:mod:`convcost.torch.trace_fx`; call by call on tensors, :mod:`convcost.torch.trace_calls`) only turns what
the model does into :class:`Event` values; :class:`convcost.torch.walker.Walk` turns each into rows.

An event's operation (the key of :mod:`convcost.torch.ops`) is one whatever the spelling: ``operator.add``,
``Tensor.__add__``, ``Tensor.add`` and ``torch.add`` classify alike. Its label is how the forward spelled the
call (``add`` for ``x + y``, ``Tensor.add`` for ``x.add(y)``, ``torch.add``), because the tools whose
conventions convcost reproduces count by spelling (ptflops patches ``torch.add`` and ``Tensor.add``, not the
``+`` operator); every reading sees the spelling (the call-by-call one from the calling frame), so a
convention keyed by the label gives the same number under every reading.

>>> import operator, torch
>>> Event("function", operator.add, (), {}, "block").label, Event("method", "add", (), {}, "").label
('add', 'Tensor.add')
>>> Event("function", torch.nn.functional.relu, (), {}, "block").path
'block.relu'
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: an event's kinds
FUNCTION, METHOD, MODULE = "function", "method", "module"


class Event:
    """One call: ``kind`` (function, method or module), ``target`` (the function object, the tensor method's
    name, or the module), its arguments (tensors as :class:`convcost.torch.rules.Tensor`), and ``where``: the
    module's own path for a module call, else the path of the module that made the call."""

    # (``_label``, ``_path``: the label and path once asked, as the walker asks for them several times a call)
    __slots__ = ("kind", "target", "args", "kwargs", "where", "_label", "_path")

    def __init__(self, kind, target, args, kwargs, where: str):
        self.kind, self.target, self.args, self.kwargs, self.where = kind, target, args, kwargs or {}, where
        self._label = self._path = None

    @property
    def label(self) -> str:
        """The call as the forward spelled it (a module: its class name)."""
        if self._label is None:
            if self.kind == MODULE:
                self._label = type(self.target).__name__
            elif self.kind == METHOD:
                self._label = f"Tensor.{self.target}"
            else:
                self._label = function_label(self.target)
        return self._label

    @property
    def name(self) -> str:
        """The function's or method's own name (``relu`` for ``F.relu``)."""
        return self.label.rpartition(".")[2]

    @property
    def path(self) -> str:
        """The row's path: a module's own, or the calling module's path and the call's name."""
        if self._path is None:
            if self.kind == MODULE:
                self._path = self.where
            else:
                self._path = f"{self.where}.{self.name}" if self.where else self.name
        return self._path

    @property
    def function(self):
        """What runs the call: the function, or the tensor method (None for a module)."""
        if self.kind == MODULE:
            return None
        return getattr(torch.Tensor, self.target, None) if self.kind == METHOD else self.target


def function_label(target) -> str:
    """``F.relu``, ``torch.bmm``, ``add`` (an operator), or the function's own name; asked several times per
    call a forward makes, so each answer is kept (torch's and operator's functions: a few hundred at most)."""
    try:
        return _LABELS[target]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: labelled at each call
        return _label(target)
    found = _label(target)
    if len(_LABELS) < _LABELS_AT_MOST:  # (a forward that makes a new callable at each call fills no memory)
        _LABELS[target] = found
    return found


_LABELS: dict = {}
_LABELS_AT_MOST = 4096


def _label(target) -> str:
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    if module in ("_operator", "operator"):
        # ``x += y`` is labelled as ``x + y``, as every reading labelled it before reading it in place (torch.fx's
        # proxies still spell it so): a convention keyed by the label counts it alike in every reading
        return _IN_PLACE_LABELS.get(name, name)
    if module.startswith("torch.nn.functional") or getattr(F, name, None) is target:
        return f"F.{name}"
    return f"torch.{name}" if module.startswith("torch") else name


#: the in-place operators read as such, labelled as their operator
_IN_PLACE_LABELS = {"iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "truediv"}
