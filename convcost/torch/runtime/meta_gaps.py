"""What a CPU kernel keeps for its backward beyond what its meta kernel keeps (PyTorch 2.13 to 2.15).

A call convcost has no row for is read by running it on meta tensors under saved-tensor hooks
(:func:`convcost.torch.layouts.simulate`). Where the CPU kernel keeps other tensors than the meta kernel does,
the difference in elements, all int64, is here (:data:`convcost.torch.runtime.facts.FACTS` names the source).

>>> embedding_bag_gap("sum", indices=8, bags=2), embedding_bag_gap("mean", indices=8, bags=2)
(-6, 3)
"""

from __future__ import annotations

import math

from convcost.torch.rules import Tensor, bind_arguments

_EMBEDDING_BAG = ("input", "weight", "offsets", "max_norm", "norm_type", "scale_grad_by_freq", "mode", "sparse",
                  "per_sample_weights", "include_last_offset", "padding_idx")
_EMBEDDING_BAG_DEFAULTS = {"offsets": None, "max_norm": None, "norm_type": 2, "scale_grad_by_freq": False,
                           "mode": "mean", "sparse": False, "per_sample_weights": None, "include_last_offset": False,
                           "padding_idx": None}


def embedding_bag_gap(mode: str, indices: int, bags: int) -> int:
    """``F.embedding_bag`` on the CPU keeps its ``offset2bag`` in mean and max modes only, of ``indices + 1``
    elements (the meta kernel: ``indices`` elements in every mode), and ``max_indices`` of one element per bag in
    sum and mean modes (the meta kernel: none; in max mode both keep one per bag and feature)."""
    offset2bag = 0 if mode == "sum" else indices + 1
    max_indices = 0 if mode == "max" else bags
    return offset2bag - indices + max_indices


def gap(name: str, args, kwargs, output_shape) -> int:
    """The elements the CPU kernel of call ``name`` keeps beyond its meta kernel's (0 for every call but
    ``embedding_bag``), from its arguments (tensors as :class:`Tensor`) and its output's shape."""
    if name != "embedding_bag":
        return 0
    a = bind_arguments(_EMBEDDING_BAG, _EMBEDDING_BAG_DEFAULTS, args, kwargs)
    given = a["input"]
    if not isinstance(given, Tensor) or not output_shape:
        return 0
    return embedding_bag_gap(a["mode"], math.prod(given.shape), output_shape[0])
