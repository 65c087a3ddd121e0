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


class Attributes:
    """Every module's own attributes (``vars``) at one moment, and the contents of those that are containers
    (a cache dict filled in place: LeViT's attention-bias cache keyed by device)."""

    def __init__(self, model):
        self.modules = list(model.modules())
        self.before = [{name: (value, _contents(value)) for name, value in vars(m).items()} for m in self.modules]

    def restore(self, left_behind=None) -> None:
        """Put back, or remove, every attribute the forward set or filled; with ``left_behind``, only those now
        holding a value ``left_behind(value)`` recognises."""
        missing = (object(), None)
        for m, kept in zip(self.modules, self.before):
            now = vars(m)
            for name, value in list(now.items()):
                old, contents = kept.get(name, missing)
                if value is old:
                    if contents is not None and _changed(value, contents) and (
                            left_behind is None or holds(value, left_behind)):
                        _refill(value, contents)
                elif left_behind is None or holds(value, left_behind):
                    if old is missing[0]:
                        del now[name]
                    else:
                        now[name] = old
                        if contents is not None and _changed(old, contents):
                            _refill(old, contents)
            if left_behind is None:
                for name in kept.keys() - now.keys():  # deleted by the forward
                    now[name] = kept[name][0]


def _contents(value):
    """A shallow copy of a container's items (None for anything else)."""
    if isinstance(value, dict):
        return list(value.items())
    if type(value) in (list, set):
        return list(value)
    return None


def _changed(value, contents) -> bool:
    now = _contents(value)
    if isinstance(value, dict):
        return len(now) != len(contents) or any(a[0] is not b[0] or a[1] is not b[1] for a, b in zip(now, contents))
    return len(now) != len(contents) or any(a is not b for a, b in zip(now, contents))


def _refill(value, contents) -> None:
    value.clear()
    if isinstance(value, dict):
        value.update(contents)
    elif isinstance(value, list):
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
