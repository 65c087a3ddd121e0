"""A model's module tree, walked once: what ``named_modules`` and ``named_parameters`` give, at a fraction of
their cost.

``profile`` needs the tree several times (each module's path, the report's module types, the parameters no
call read). ``nn.Module.named_modules`` is a recursive generator: every module is handed up through every
generator above it, which on a model of hundreds of modules costs more than the forward a reading runs. One
loop over a stack gives the same paths in the same order (depth first, parents before children, a module
reached twice kept at its first path).

>>> import torch.nn as nn
>>> shared = nn.Linear(2, 2)
>>> net = nn.Sequential(nn.Sequential(shared, nn.ReLU()), shared)
>>> tree = Tree(net)
>>> list(tree.named) == [name for name, _ in net.named_modules()]
True
>>> [name for name, _ in named_parameters(tree.named)] == [name for name, _ in net.named_parameters()]
True
>>> tree.paths[id(shared)]
'0.0'
"""

from __future__ import annotations


class Tree:
    """``named``: path -> module, as ``dict(model.named_modules())``; ``paths``: id(module) -> its path."""

    __slots__ = ("named", "paths")

    def __init__(self, model):
        named, paths = {}, {}
        stack = [("", model)]
        pop, push = stack.pop, stack.append
        while stack:
            prefix, module = pop()
            key = id(module)
            if key in paths:  # reached again (a shared module): its first path is its path
                continue
            paths[key] = prefix
            named[prefix] = module
            children = module._modules
            if children:  # pushed last first, so that the first child is walked next
                if prefix:
                    prefix += "."
                for name, child in reversed(children.items()):
                    if child is not None:
                        push((prefix + name, child))
        self.named, self.paths = named, paths


def named_parameters(named) -> list:
    """``(name, parameter)`` as ``model.named_parameters()`` gives them, from ``named`` (:attr:`Tree.named`)."""
    seen, out = set(), []
    for prefix, module in named.items():
        own = module._parameters
        if not own:
            continue
        dot = prefix + "." if prefix else ""
        for name, tensor in own.items():
            if tensor is not None and id(tensor) not in seen:
                seen.add(id(tensor))
                out.append((dot + name, tensor))
    return out
