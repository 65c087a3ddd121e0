"""The general form of a layer: its formula for every value of its numeric fields and input sizes.

A report row shows *why* its numbers are what they are: the main count of the
row's layer class written over symbols, one formula for every kernel, stride,
padding, dilation and group count. It is built from the same ``layer.cost``
code as the numbers (the numeric fields and the input sizes replaced by
symbols), on first use for each structure, and cached; counting never waits on it.

What stays part of the structure: the layer's class, its flags and text fields
(``padding="same"``), the rank of each input and which of its axes are 1.
Fields that change no count (an activation's kind) are not part of it.

>>> from convcost.primitives import Conv, Linear
>>> formula(Conv(C=3, O=8, K=3, S=2), [(1, 3, 32, 32)])
'macs = C*K**2*O*(floor((-D*(K - 1) + H + 2*P - 1)/S) + 1)*(floor((-D*(K - 1) + 2*P + W - 1)/S) + 1)/G'
>>> formula(Linear(C=96, O=384, bias=False), [(1, 56, 56, 96)])
'macs = C*H*O*W'
"""

from __future__ import annotations

import dataclasses
import threading

import sympy

from convcost.costs import METRICS
from convcost.errors import ConvcostError
from convcost.symbols import GLOSSARY

_SIZE = {"integer": True, "positive": True}
_COUNT = {"integer": True, "nonnegative": True}
_CHANNELS_FIRST = {1: ("N",), 2: ("N", "C"), 3: ("N", "C", "L"), 4: ("N", "C", "H", "W"), 5: ("N", "C", "T", "H", "W")}

_CACHE: dict = {}
_LOCK = threading.Lock()


def formula(layer, input_shapes) -> str:
    """The main count of ``layer``'s general form on inputs like ``input_shapes`` (one shape per input), as
    text; ``""`` when the input sizes are symbolic already (the row's counts are the formula)."""
    shapes = [tuple(s) for s in input_shapes]
    if not all(type(x) is int for s in shapes for x in s):
        return ""
    key = structure_key(layer, shapes)
    found = _CACHE.get(key)
    if found is None:
        text = _general_text(layer, shapes)
        with _LOCK:  # two threads may build the same text; both agree, the first is kept
            found = _CACHE.setdefault(key, text)
    return found


def structure_key(layer, shapes) -> tuple:
    """What the general form depends on: the class, the non-numeric fields, and each input's unit axes."""
    key = [type(layer)]
    for name, kind in _field_kinds(type(layer)):
        value = getattr(layer, name)
        key.append(_placeholder(value) if _numeric(value, kind) else value)
    for shape in shapes:
        key.append(tuple(x == 1 for x in shape))
    return tuple(key)


def _field_kinds(cls) -> tuple:
    free = set(getattr(cls, "count_free_fields", ()))
    return tuple((f.name, f.metadata.get("kind")) for f in dataclasses.fields(cls) if f.name not in free)


def _numeric(value, kind) -> bool:
    if kind not in ("size", "count", "padding"):
        return False
    if type(value) is int:
        return True
    return isinstance(value, tuple) and all(type(v) is int for v in value)


def _placeholder(value) -> str:
    return f"#{len(value)}" if isinstance(value, tuple) else "#"


def _symbol(name: str, kind: str):
    if name in GLOSSARY:
        return GLOSSARY[name]
    return sympy.Symbol(name, **(_SIZE if kind == "size" else _COUNT))


def _general_text(layer, shapes) -> str:
    fields = {}
    for name, kind in _field_kinds(type(layer)):
        value = getattr(layer, name)
        if _numeric(value, kind):
            if isinstance(value, tuple):
                fields[name] = tuple(_symbol(f"{name}_{i}", kind) for i in range(len(value)))
            else:
                fields[name] = _symbol(name, kind)
    try:
        general = layer.replace(**fields) if fields else layer
        general_shapes = _general_shapes(layer, shapes)
        c = general.cost_of_inputs(general_shapes)
    except ConvcostError:
        # no general form (a field must be a number to decide the structure): the layer's own numbers
        c = layer.cost_of_inputs(shapes)
    main = next((m for m in METRICS[1:7] if getattr(c, m) != 0), None)
    return f"{main} = {getattr(c, main)}" if main else "no arithmetic"


def _general_shapes(layer, shapes) -> list:
    out = []
    for j, shape in enumerate(shapes):
        names = layer.axis_names(len(shape)) if hasattr(layer, "axis_names") else _channels_first(len(shape))
        made = []
        for i, x in enumerate(shape):
            if x == 1:
                made.append(1)
                continue
            same = j == 0 or (i < len(shapes[0]) and shapes[0][i] == x)  # equal sizes share a symbol
            made.append(_symbol(names[i] if same else f"{names[i]}_{j}", "size"))
        out.append(tuple(made))
    return out


def _channels_first(rank: int) -> tuple:
    return _CHANNELS_FIRST.get(rank) or ("N", "C", *(f"d{i}" for i in range(rank - 2)))
