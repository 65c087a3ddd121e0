"""Specs: frozen dataclasses whose fields are ints or sympy expressions.

A spec describes a layer. Its fields are declared with one of the field
kinds below, which say what a value may be; values are checked and
normalised when the spec is made (a number becomes a Python ``int``, a
symbolic value stays a sympy expression), so every formula downstream can
rely on them and runs on plain integers when every field is bound. A spec class is declared with
:func:`spec`, which also turns Python's ``TypeError`` for an unknown or
missing keyword into :class:`ConvcostError`.

>>> from convcost.primitives import Conv
>>> Conv(C=6, O=9, K=3)
Conv(C=6, O=9, K=3)
>>> Conv(C=6, O=9, K=3, colour=2)
Traceback (most recent call last):
...
convcost.errors.ConvcostError: Conv got an unknown keyword 'colour'; its fields are C, O, K, S, P, D, G, bias, dims
>>> Conv(C=6, O=9, K=0)
Traceback (most recent call last):
...
convcost.errors.ConvcostError: Conv(C=6, O=9, K=0): K=0 must be a positive integer
"""

from __future__ import annotations

import dataclasses
import functools
import numbers

import sympy

from convcost.errors import ConvcostError
from convcost.symbols import GLOSSARY
from convcost.validate import field_value, kind_of, number


def size(default=dataclasses.MISSING, *, per_axis: bool = False):
    """A positive integer field (channels, kernel, stride ...); ``per_axis`` allows a tuple."""
    return dataclasses.field(default=default, metadata={"kind": "size", "per_axis": per_axis})


def count(default=0, *, per_axis: bool = False):
    """A non-negative integer field (padding, output padding)."""
    return dataclasses.field(default=default, metadata={"kind": "count", "per_axis": per_axis})


def padding(default=0):
    """Padding: a non-negative integer per axis, or ``"same"`` / ``"valid"`` as in PyTorch."""
    return dataclasses.field(default=default, metadata={"kind": "padding", "per_axis": True})


def flag(default: bool):
    """A boolean field (``bias`` ...)."""
    return dataclasses.field(default=default, metadata={"kind": "flag"})


def choice(default: str, options: tuple[str, ...]):
    """One of a fixed set of strings."""
    return dataclasses.field(default=default, metadata={"kind": "choice", "options": options})


def real(default=dataclasses.MISSING):
    """A positive real (width and resolution multipliers); floats become exact rationals."""
    return dataclasses.field(default=default, metadata={"kind": "real"})


def layer(default=dataclasses.MISSING):
    """A nested layer (bodies of compositions)."""
    return dataclasses.field(default=default, metadata={"kind": "layer"})


def spec(cls):
    """Declare a spec class: a frozen dataclass with checked, normalised fields."""
    cls = dataclasses.dataclass(frozen=True, repr=False)(cls)
    init = cls.__init__
    fields = dataclasses.fields(cls)
    names = frozenset(f.name for f in fields)
    listed = ", ".join(f.name for f in fields)
    least = {"size": 1, "count": 0, "padding": 0}
    cls._checked_fields = tuple(
        (f.name, f, least.get(f.metadata["kind"])) for f in fields if f.metadata.get("kind") is not None
    )
    #: fields of no kind whose default is a tuple (axes such as ``dims``): a tuple is what they take
    cls._tuple_fields = tuple(f.name for f in fields
                              if f.metadata.get("kind") is None and isinstance(f.default, tuple))
    #: the flag fields (True or False is all they take: checked without a call)
    cls._flag_fields = frozenset(f.name for f in fields if f.metadata.get("kind") == "flag")

    @functools.wraps(init)
    def checked_init(*args, **kwargs):
        # ``self`` comes positionally, so a user's keyword called "self" is just an unknown field
        self, args = args[0], args[1:]
        for k in kwargs:
            if k not in names:
                raise ConvcostError(f"{cls.__name__} got an unknown keyword {k!r}; its fields are {listed}") from None
        if len(args) > len(names):
            raise ConvcostError(f"{cls.__name__} takes at most {len(names)} values, got {len(args)}")
        try:
            init(self, *args, **kwargs)
        except TypeError as exc:
            raise ConvcostError(f"{cls.__name__}: {exc}") from None

    cls.__init__ = checked_init
    return cls


class Spec:
    """Base of every spec: field checking, readable ``repr``, the general form."""

    #: ``(name, field, least int)`` of every field with a kind, set by :func:`spec` (checked in this order)
    _checked_fields: tuple = ()
    _tuple_fields: tuple = ()
    _flag_fields: frozenset = frozenset()

    def __post_init__(self):
        values = self.__dict__
        for name, f, least in self._checked_fields:
            value = values[name]
            if type(value) is int and least is not None and value >= least:
                continue  # the common case, decided without a call: reading a model builds thousands of specs
            if type(value) is bool and name in self._flag_fields:
                continue
            object.__setattr__(self, name, _normalise(self, f, value))
        for name in self._tuple_fields:
            object.__setattr__(self, name, _axes(self, name, values[name]))
        self.validate()

    def validate(self) -> None:
        """Checks of one spec beyond single fields (overridden where needed)."""

    @classmethod
    def general(cls):
        """The spec with every field that names a canonical symbol left symbolic.

        (Fields whose default already is their symbol, like ``C``, are not repeated in the repr.)

        >>> from convcost.variants import StandardConv
        >>> StandardConv.general()
        StandardConv(S=S, P=P, D=D, G=G, N=N)
        """
        kept = cls._kept_in_general
        values = {
            f.name: GLOSSARY[f.name]
            for f in dataclasses.fields(cls)
            if f.name in GLOSSARY and f.init and f.name not in kept
        }
        return cls(**values)

    def replace(self, /, **changes):
        """A copy with some fields changed (checked like a new spec)."""
        return dataclasses.replace(self, **changes)

    def fields(self) -> dict:
        """The spec's fields and values, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    #: fields that keep their default in the general form (they decide the structure)
    _kept_in_general: tuple = ()

    #: fields shown at the end of the repr (a variant's input size)
    _shown_last: tuple = ()

    def __repr__(self) -> str:
        shown = []
        last = self._shown_last
        for f in sorted(dataclasses.fields(self), key=lambda f: f.name in last):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and _same(value, f.default):
                continue
            shown.append(f"{f.name}={_show(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _axes(where, name, value) -> tuple:
    """A tuple field's value: a tuple (a list becomes one), numpy integers in it as ints; a lone number or an
    array is refused by name (numpy's ``==`` on it would broadcast, not compare)."""
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple):
        raise ConvcostError(f"{type(where).__name__}: {name}={value!r} must be a tuple, e.g. {name}=(1,) or (2, 3)")
    return tuple(int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v) is not int else v
                 for v in value)


def _same(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return value is default
    if isinstance(default, tuple) is not isinstance(value, tuple):
        return False  # a scalar (a numpy integer among them) is never a tuple default: no broadcast compare
    if isinstance(default, (int, str, tuple, sympy.Basic)) or default is None:
        try:
            return bool(value == default)
        except (TypeError, ValueError):  # an array's comparison has no single truth: not the default
            return False
    return False


def _show(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def _normalise(owner, f: dataclasses.Field, value):
    kind = f.metadata["kind"]
    where = lambda: _partial_repr(owner)  # noqa: E731 - deferred: only built for an error
    field_value(type(owner).__name__, f.name, value)
    if kind == "flag":
        if not isinstance(value, bool):
            raise ConvcostError(f"{where()}: {f.name}={value!r} must be True or False")
        return value
    if kind == "choice":
        options = f.metadata["options"]
        if value not in options:
            raise ConvcostError(f"{where()}: {f.name}={value!r} must be one of {', '.join(map(repr, options))}")
        return value
    if kind == "layer":
        if value is not None and not (isinstance(value, Spec) and hasattr(value, "cost")):
            raise ConvcostError(f"{where()}: {f.name}={value!r} must be a convcost layer")
        return value
    if kind == "real":
        return _real(where, f.name, value)
    if kind == "padding" and isinstance(value, str):
        if value not in ("same", "valid"):
            raise ConvcostError(f"{where()}: {f.name}={value!r} must be an integer, 'same' or 'valid'")
        return value
    if isinstance(value, (tuple, list)):
        if not f.metadata.get("per_axis"):
            raise ConvcostError(f"{where()}: {f.name}={value!r} must be a single value, not a tuple")
        if not value:
            raise ConvcostError(f"{where()}: {f.name}=() must not be empty")
        return tuple(_integer(where, f.name, v, positive=(kind == "size")) for v in value)
    return _integer(where, f.name, value, positive=(kind == "size"))


def _integer(where, name, value, *, positive: bool):
    rule = "a positive integer" if positive else "a non-negative integer"
    if type(value) is int or type(value) is sympy.Integer:
        # the common case, decided in plain integers: reading a model builds thousands of specs
        if int(value) > 0 or (int(value) == 0 and not positive):
            return int(value)
        raise ConvcostError(f"{where()}: {name}={value} must be {rule}")
    if isinstance(value, bool) or isinstance(value, str):
        raise ConvcostError(f"{where()}: {name}={value!r} must be {rule}")
    if isinstance(value, numbers.Integral):
        value = sympy.Integer(int(value))
    elif isinstance(value, sympy.Basic) and isinstance(value, sympy.Expr):
        pass
    else:
        raise ConvcostError(f"{where()}: {name}={value!r} must be {rule} or a sympy expression")
    if value.is_number:
        if value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo) or not value.is_integer \
                or (value <= 0 if positive else value < 0):
            raise ConvcostError(f"{where()}: {name}={value} must be {rule}")
        return int(value)
    if (positive and value.is_positive is False) or value.is_negative:
        raise ConvcostError(f"{where()}: {name}={value} must be {rule}")
    return value


def _real(where, name, value):
    if isinstance(value, bool) or isinstance(value, str):
        raise ConvcostError(f"{where()}: {name}={value!r} must be a positive number")
    if kind_of(value) == "non-finite number":
        raise ConvcostError(f"{where()}: {name}={value!r} must be a finite positive number")
    if kind_of(value) in ("int", "numpy integer", "float", "numpy float", "fraction"):
        # exact decimal reading: 0.75 is 3/4, not 0.75000000000000001 (numpy floats too)
        value = number(where(), name, value)
    elif not isinstance(value, sympy.Expr):
        raise ConvcostError(f"{where()}: {name}={value!r} must be a positive number or a sympy expression")
    if value.is_positive is False:
        raise ConvcostError(f"{where()}: {name}={value} must be positive")
    return value


def _partial_repr(owner) -> str:
    """The spec as far as its fields are set, for messages raised while checking them."""
    shown = []
    for f in dataclasses.fields(owner):
        if f.name not in owner.__dict__:
            continue
        value = owner.__dict__[f.name]
        if f.default is not dataclasses.MISSING and _same(value, f.default):
            continue
        shown.append(f"{f.name}={_show(value)}")
    return f"{type(owner).__name__}({', '.join(shown)})"
