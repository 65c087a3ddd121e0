"""What a reading's forward leaves on a model, undone.

A forward may keep something it made on its module (``self.rel_indices = ...``, a cache keyed by the
input size). Run on shapes or on meta tensors, that would be a shape-only value or a meta tensor, and
the model would no longer run on real data. :class:`Attributes` remembers every module's attributes
(and the items of those that are dicts, lists or sets) before a forward and puts back the ones that now
hold such a value; :func:`convcost.torch.profile` puts back everything a forward wrote, whatever it holds.
The shape reading remembers only the modules its forward reaches, as it reaches them (``lazy``).

A forward run on real tensors also writes into what the model holds (batch norm's running statistics in
training mode, a step counter) and draws from the random state (dropout): :func:`values_kept` puts both back.

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

import contextlib
from collections import OrderedDict
from operator import is_

from convcost.torch.tree import Tree


class Attributes:
    """Every module's own attributes (``vars``) at one moment, and the contents of those that are containers
    (a cache dict filled in place: LeViT's attention-bias cache keyed by device).

    ``lazy``: a module is remembered when :meth:`touch` is first called on it, not before; the shape reading
    touches a module before the forward can reach it (:func:`convcost.torch.runtime.private.module_calls`), so
    that a forward which reaches 31 of a model's 823 modules pays for 31. ``training``: the flag each module
    gets once remembered (None: left as it is); :meth:`restore` puts it back with the rest.
    """

    def __init__(self, model, tree=None, *, lazy=False, training=None):
        #: the model's :class:`~convcost.torch.tree.Tree`, walked once (the caller's, when given)
        self.tree = Tree(model) if tree is None else tree
        #: ``dict(model.named_modules())``, for whoever else needs it
        self.named = self.tree.named
        self.training = training
        self.before = {}  # id(module) -> (module, its snapshot)
        if not lazy:
            self.touch_all()

    def touch(self, module) -> None:
        """Remember ``module`` as it is now, then give it the training flag; nothing if remembered already."""
        if id(module) in self.before:
            return
        self.before[id(module)] = (module, _snapshot(vars(module)))
        if self.training is not None:  # a plain attribute: nn.Module's __setattr__ checks are slow
            object.__setattr__(module, "training", self.training)

    def touch_all(self) -> None:
        """Remember every module of the model (a reading that does not say which modules it reaches)."""
        for module in self.named.values():
            self.touch(module)

    def restore(self, left_behind=None) -> None:
        """Put back, or remove, every attribute the forward set or filled; with ``left_behind``, only those now
        holding a value ``left_behind(value)`` recognises."""
        for m, (kept, empty, contents) in self.before.values():
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


@contextlib.contextmanager
def values_kept(model):
    """Run a forward of ``model`` on real tensors and leave no value behind: every buffer's contents copied
    before and written back after (in place, so that whoever holds the buffer sees it restored), and torch's
    random state (the CPU's, and each CUDA device's the model is on) forked for the forward's draws.

    >>> import torch, torch.nn as nn
    >>> bn = nn.BatchNorm1d(2).train()
    >>> with values_kept(bn):
    ...     _ = bn(torch.randn(4, 2))
    >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
    ([0.0, 0.0], 0)
    """
    import torch

    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    devices = sorted({t.device.index or 0 for t in model.parameters() if t.is_cuda})
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)


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
