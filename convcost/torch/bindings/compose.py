"""The torch side of :mod:`convcost.compose`: ``nn.Sequential`` and the modules of :mod:`convcost.torch.modules`.

Containers are read part by part through the same registry, and built part by part.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from convcost import primitives as p
from convcost.compose import Parallel, Residual, Sequential, When
from convcost.errors import ConvcostError
from convcost.torch import modules
from convcost.torch.binding import binds
from convcost.torch.build import build, rank_after
from convcost.torch.registry import from_torch


@binds(Sequential, modules=(nn.Sequential,))
class SequentialBinding:
    read_through = True

    def read(m):
        if len(m) == 0:
            raise ConvcostError("cannot read an empty nn.Sequential")
        return Sequential(**{name: from_torch(child) for name, child in m.named_children()})

    def build(layer, rank):
        built = OrderedDict()
        for name, part in layer.parts:
            built[name] = build(part, rank)
            rank = rank_after(part, rank)
        try:
            return nn.Sequential(built)
        except KeyError as exc:
            raise ConvcostError(f"{layer!r}: a part name cannot name a submodule: {exc.args[0]}") from None

    def rank_after(layer, rank):
        for _, part in layer.parts:
            rank = rank_after(part, rank)
        return rank


@binds(Parallel, modules=(modules.Parallel,))
class ParallelBinding:
    read_through = True

    def read(m):
        return Parallel(**{name: from_torch(getattr(m, name)) for name in m.branch_names}, merge=m.merge)

    def build(layer, rank):
        return modules.Parallel({name: build(part, rank) for name, part in layer.parts}, merge=layer.merge)

    def rank_after(layer, rank):
        return rank_after(layer.parts[0][1], rank)


@binds(Residual, modules=(modules.Residual,))
class ResidualBinding:
    read_through = True

    def read(m):
        if not m.add:
            return Residual(from_torch(m.body), when=False)
        shortcut = None if isinstance(m.shortcut, nn.Identity) else from_torch(m.shortcut)
        return Residual(from_torch(m.body), shortcut)

    def build(layer, rank):
        shortcut = build(layer.shortcut, rank) if layer.shortcut is not None else None
        return modules.Residual(build(layer.body, rank), shortcut, add=bool(layer.when))

    def rank_after(layer, rank):
        return rank_after(layer.body, rank)


@binds(When, modules=(modules.When,))
class WhenBinding:
    read_through = True

    def read(m):
        return When(True, from_torch(m.layer)) if m.kept else When(False, p.Identity())

    def build(layer, rank):
        return modules.When(build(layer.layer, rank) if bool(layer.condition) else None)

    def rank_after(layer, rank):
        return rank_after(layer.layer, rank) if bool(layer.condition) else rank
