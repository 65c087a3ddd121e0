"""The small ``nn.Module`` classes that compositions become; their submodules keep the part names.

``Parallel`` holds each branch under its part name and merges the outputs
(``"concat"`` along channels, ``"add"``, or ``"mul"`` with broadcasting, as
squeeze-and-excitation scales a feature map by a ``(N, C, 1, 1)`` gate);
``Residual`` holds ``body`` and ``shortcut``; ``When`` holds ``layer``.

>>> import torch, torch.nn as nn
>>> p = Parallel({"left": nn.Identity(), "right": nn.Identity()}, merge="concat")
>>> p(torch.zeros(1, 2, 3, 3)).shape
torch.Size([1, 4, 3, 3])
>>> [name for name, _ in p.named_children()]
['left', 'right']
"""

from __future__ import annotations

import torch
from torch import nn

from convcost.errors import ConvcostError

MERGES = ("concat", "add", "mul")


def merge(kind: str, outputs: list):
    """Combine branch outputs the way :class:`convcost.compose.Parallel` does."""
    if kind == "concat":
        return torch.cat(outputs, dim=1)
    out = outputs[0]
    for other in outputs[1:]:
        out = out + other if kind == "add" else out * other
    return out


class Parallel(nn.Module):
    """Branches applied to the same input, merged by ``merge``."""

    def __init__(self, branches: dict, merge: str = "concat"):
        super().__init__()
        if merge not in MERGES:
            raise ConvcostError(f"Parallel: merge={merge!r} must be one of {', '.join(map(repr, MERGES))}")
        for name, branch in branches.items():
            _add(self, name, branch)
        self.branch_names = tuple(branches)
        self.merge = merge

    def forward(self, x):
        return merge(self.merge, [getattr(self, name)(x) for name in self.branch_names])

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"


class Residual(nn.Module):
    """``body(x) + shortcut(x)``, or ``body(x)`` alone when the addition is switched off."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, add: bool = True):
        super().__init__()
        self.body = body
        self.add = add
        if add:
            self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x):
        out = self.body(x)
        return out + self.shortcut(x) if self.add else out

    def extra_repr(self) -> str:
        return "" if self.add else "add=False"


class When(nn.Module):
    """A layer kept where its condition held when the module was built; the input passes otherwise."""

    def __init__(self, layer: nn.Module | None):
        super().__init__()
        self.layer = layer if layer is not None else nn.Identity()
        self.kept = layer is not None

    def forward(self, x):
        return self.layer(x)

    def extra_repr(self) -> str:
        return "" if self.kept else "kept=False"


class Merge(nn.Module):
    """A stand-alone merge (``Add``, ``Mul``, ``Concat`` spec): ``forward(*inputs)``."""

    def __init__(self, kind: str, dim: int = 1):
        super().__init__()
        if kind not in MERGES:
            raise ConvcostError(f"Merge: kind={kind!r} must be one of {', '.join(map(repr, MERGES))}")
        self.kind, self.dim = kind, dim

    def forward(self, *inputs):
        if self.kind == "concat":
            return torch.cat(inputs, dim=self.dim)
        return merge(self.kind, list(inputs))

    def extra_repr(self) -> str:
        return repr(self.kind) + (f", dim={self.dim}" if self.kind == "concat" else "")


class Narrow(nn.Module):
    """``x.narrow(dim, start, length)`` as a module (``torch`` has none): a view, no work."""

    def __init__(self, dim: int, start: int, length: int):
        super().__init__()
        self.dim, self.start, self.length = dim, start, length

    def forward(self, x):
        return x.narrow(self.dim, self.start, self.length)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, start={self.start}, length={self.length}"


def _add(owner: nn.Module, name: str, module: nn.Module) -> None:
    try:
        owner.add_module(name, module)
    except KeyError as exc:  # a part named like an nn.Module attribute ("training", "forward" ...)
        raise ConvcostError(f"{type(owner).__name__}: part name {name!r} cannot name a submodule: "
                            f"{exc.args[0]}") from None
