"""What a reading's forward leaves on a model, undone.

A forward may keep something it made on its module (``self.rel_indices = ...``, a cache keyed by the
input size). Run on shapes or on meta tensors, that would be a shape-only value or a meta tensor, and
the model would no longer run on real data. :class:`Attributes` remembers every module's attributes
before a forward and puts back the ones that now hold such a value.

>>> import torch, torch.nn as nn
>>> m = nn.Linear(2, 2)
>>> kept = Attributes(m)
>>> m.cache = torch.empty(3, device="meta")
>>> kept.restore(lambda v: isinstance(v, torch.Tensor) and v.is_meta)
>>> hasattr(m, "cache")
False

A cache the forward fills in place (LeViT's ``self.ab = {}``, then ``self.ab[key] = ...`` in eval mode) is
the same dict before and after: its contents are remembered too, and put back.

>>> m.ab = {}
>>> kept = Attributes(m)
>>> m.ab["(4, 4)"] = torch.empty(3, device="meta")
>>> kept.restore(lambda v: isinstance(v, torch.Tensor) and v.is_meta)
>>> m.ab
{}
"""

from __future__ import annotations


class Attributes:
    """Every module's own attributes (``vars``) at one moment."""

    def __init__(self, model):
        self.modules = list(model.modules())
        self.before = [dict(vars(m)) for m in self.modules]
        # the contents of the plain dicts and lists a module holds, which a forward may fill in place
        self.contents = {id(v): (v, v.copy()) for kept in self.before for v in kept.values() if type(v) in (dict, list)}

    def restore(self, left_behind) -> None:
        """Put back, or remove, every attribute the forward set to a value ``left_behind(value)`` recognises."""
        missing = object()
        for m, kept in zip(self.modules, self.before):
            for name, value in list(vars(m).items()):
                old = kept.get(name, missing)
                if value is not old and holds(value, left_behind):
                    if old is missing:
                        delattr(m, name)
                    else:
                        setattr(m, name, old)
                elif id(value) in self.contents and holds(value, left_behind):
                    container, was = self.contents[id(value)]
                    if container is value:  # filled in place: its contents as they were
                        value.clear()
                        if type(value) is dict:
                            value.update(was)
                        else:
                            value.extend(was)


def holds(value, found) -> bool:
    """Whether ``value``, or anything in the tuples, lists and dicts it holds, is what ``found`` recognises."""
    if found(value):
        return True
    if type(value) in (tuple, list):
        return any(holds(v, found) for v in value)
    if type(value) is dict:
        return any(holds(v, found) for v in value.values())
    return False
