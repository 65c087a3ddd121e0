"""What a reading's forward leaves on a model, undone.

A forward may keep something it made on its module (``self.rel_indices = ...``, a cache keyed by the
input size). Run on shapes or on meta tensors, that would be a shape-only value or a meta tensor, and
the model would no longer run on real data. :class:`Attributes` remembers every module's attributes
(and the items of those that are dicts, lists or sets) before a forward and puts back the ones that now
hold such a value; :func:`convcost.torch.profile` puts back everything a forward wrote, whatever it holds.

>>> import torch, torch.nn as nn
>>> m = nn.Linear(2, 2)
>>> m.biases = {}
>>> kept = Attributes(m)
>>> m.cache = torch.empty(3, device="meta")
>>> m.biases["cpu"] = torch.empty(3, device="meta")
>>> kept.restore(lambda v: isinstance(v, torch.Tensor) and v.is_meta)
>>> hasattr(m, "cache"), m.biases
(False, {})
"""

from __future__ import annotations

from collections import OrderedDict
from operator import is_


class Attributes:
    """Every module's own attributes (``vars``) at one moment, and the contents of those that are containers
    (a cache dict filled in place: LeViT's attention-bias cache keyed by device)."""

    def __init__(self, model, named=None):
        # on every module of the model (hundreds, ~20 attributes each) at every profile: plain copies at C
        # speed, and the identity checks in restore() below, keep it to a millisecond or two
        #: ``dict(model.named_modules())``, taken once (the caller's, when given) for whoever else needs it
        self.named = dict(model.named_modules()) if named is None else named
        self.modules = list(self.named.values())
        self.before = [_snapshot(vars(m)) for m in self.modules]

    def restore(self, left_behind=None) -> None:
        """Put back, or remove, every attribute the forward set or filled; with ``left_behind``, only those now
        holding a value ``left_behind(value)`` recognises."""
        for m, (kept, empty, contents) in zip(self.modules, self.before):
            now = vars(m)
            if (now.keys() == kept.keys() and all(map(is_, now.values(), kept.values()))
                    and not any(map(len, empty.values()))
                    and not any(_changed(now[name], old) for name, old in contents.items())):
                continue  # what almost every module of almost every forward looks like
            self._restore_one(now, kept, {**dict.fromkeys(empty, ()), **contents}, left_behind)

    @staticmethod
    def _restore_one(now, kept, contents, left_behind) -> None:
        missing = object()
        for name, value in list(now.items()):
            old = kept.get(name, missing)
            if value is old:
                if name in contents and _changed(value, contents[name]) and (
                        left_behind is None or holds(value, left_behind)):
                    _refill(value, contents[name])
            elif left_behind is None or holds(value, left_behind):
                if old is missing:
                    del now[name]
                else:
                    now[name] = old
                    if name in contents and _changed(old, contents[name]):
                        _refill(old, contents[name])
        if left_behind is None:
            for name in kept.keys() - now.keys():  # deleted by the forward
                now[name] = kept[name]


_CONTAINERS = frozenset({dict, OrderedDict, list, set})
_SCALARS = frozenset({bool, int, float, str, tuple, type(None)})  # most attributes: no isinstance needed


def _snapshot(attributes):
    """The attributes (a copy of ``vars``), the containers among them that are empty (most are: a module's
    hook dicts), and a shallow copy of the items of every other container."""
    empty, contents = {}, {}
    for name, value in attributes.items():
        kind = type(value)
        if kind in _CONTAINERS or (kind not in _SCALARS and isinstance(value, dict)):
            if not value:
                empty[name] = value
            elif isinstance(value, dict):
                contents[name] = dict(value)
            else:
                contents[name] = list(value)
    return attributes.copy(), empty, contents


def _changed(value, contents) -> bool:
    if len(value) != len(contents):
        return True
    if not contents:
        return False
    if isinstance(value, dict):
        return not (all(map(is_, value.keys(), contents.keys())) and all(map(is_, value.values(), contents.values())))
    return not all(map(is_, value, contents))


def _refill(value, contents) -> None:
    value.clear()
    if isinstance(value, list):
        value.extend(contents)
    else:
        value.update(contents)


def holds(value, found) -> bool:
    """Whether ``value``, or anything in the tuples, lists and dicts it holds, is what ``found`` recognises."""
    if found(value):
        return True
    if type(value) in (tuple, list):
        return any(holds(v, found) for v in value)
    if type(value) is dict:
        return any(holds(v, found) for v in value.values())
    return False
