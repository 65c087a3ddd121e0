"""Blocks of the efficient-CNN papers as the model zoos build them, named by convcost's variants.

A model built from timm's ``GhostModule``, ``MixedConv2d``, ``CondConv2d``, ``RepVggBlock`` or ``Partial_conv3``,
or from torchvision's ``CNBlock``, is profiled like any other (its rows are the operations it runs); each
such block is also named by the convcost variant it is (``GhostModule(C=16, O=32)``,
``ConvNeXtBlock(C=96)``, the experts' convolution ``ExpertConv(...)``), with its spec read from the module.
A block is named only when the variant's exact params and MACs on the block's input equal what its rows
add up to; a configuration the variant does not model (another activation count, a non-depthwise
MixedConv2d) is simply not named, never mis-named.

Classes are recognised by their module path and name, so neither library is ever imported here: a model
that uses them has imported them already.

>>> sorted(name for _, name in READERS)
['CNBlock', 'CondConv2d', 'GhostModule', 'MixedConv2d', 'Partial_conv3', 'RepVggBlock']
"""

from __future__ import annotations

from convcost.errors import ConvcostError


def _pair_first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _ghost(m):
    from convcost.efficient import GhostModule

    primary, cheap = m.primary_conv[0], m.cheap_operation[0]
    init, new = primary.out_channels, cheap.out_channels
    if new % init:
        raise ConvcostError("the cheap operation is not a multiple of the primary channels")
    return GhostModule(C=primary.in_channels, O=m.out_chs, K=_pair_first(primary.kernel_size), s=new // init + 1,
                       d=_pair_first(cheap.kernel_size), S=_pair_first(primary.stride))


def _mixed(m):
    from convcost.efficient import MixConv

    convs = list(m.values())
    if any(c.groups != c.in_channels or c.in_channels != c.out_channels for c in convs):
        raise ConvcostError("not a depthwise mixed convolution")
    return MixConv(C=m.in_channels, kernels=tuple(_pair_first(c.kernel_size) for c in convs),
                   S=_pair_first(convs[0].stride))


def _cond(m):
    from convcost.primitives import ExpertConv

    padding = m.padding if not getattr(m, "dynamic_padding", False) else None
    if padding is None:
        raise ConvcostError("padding decided by the input ('same')")
    return ExpertConv(C=m.in_channels, O=m.out_channels, K=_pair_first(m.kernel_size), S=_pair_first(m.stride),
                      P=_pair_first(padding), G=m.groups, experts=m.num_experts)


def _repvgg(m):
    from convcost.efficient import RepVGGBlock

    if m.reparam_conv is not None:
        c = m.reparam_conv
        return RepVGGBlock(C=c.in_channels, O=c.out_channels, K=_pair_first(c.kernel_size), S=_pair_first(c.stride),
                           G=c.groups, deploy=True)
    conv = m.conv_kxk.conv
    return RepVGGBlock(C=conv.in_channels, O=conv.out_channels, K=_pair_first(conv.kernel_size),
                       S=_pair_first(conv.stride), G=conv.groups)


def _partial(m):
    from convcost.efficient import PartialConv

    dim = m.dim_conv3 + m.dim_untouched
    if dim % m.dim_conv3:
        raise ConvcostError("the convolved channels do not divide the channels")
    return PartialConv(C=dim, n_div=dim // m.dim_conv3, K=_pair_first(m.partial_conv3.kernel_size))


def _cnblock(m):
    from convcost.efficient import ConvNeXtBlock

    dw, expand = m.block[0], m.block[3]
    return ConvNeXtBlock(C=dw.in_channels, K=_pair_first(dw.kernel_size),
                         expansion=expand.out_features // dw.in_channels)


#: (module path of the class, class name) -> what reads the block as a convcost spec
READERS = {
    ("timm.models.ghostnet", "GhostModule"): _ghost,
    ("timm.layers.mixed_conv2d", "MixedConv2d"): _mixed,
    ("timm.layers.cond_conv2d", "CondConv2d"): _cond,
    ("timm.models.byobnet", "RepVggBlock"): _repvgg,
    ("timm.models.fasternet", "Partial_conv3"): _partial,
    ("torchvision.models.convnext", "CNBlock"): _cnblock,
}


def reader(module):
    """The reader of ``module``'s class, or None when it is no block convcost names."""
    cls = type(module)
    return READERS.get((cls.__module__, cls.__name__))


def name_blocks(rows, inputs: dict, modules: dict) -> dict:
    """``{path: spec}`` for every known block of the model whose variant's exact params and MACs on its input
    equal the sum of its ``rows``; ``inputs`` holds each block's input shapes by path."""
    named = {}
    for path, shapes in inputs.items():
        module = modules.get(path)
        read = reader(module) if module is not None else None
        inside = [r for r in rows if r.node == path or r.node.startswith(path + ".")]
        if read is None or not inside:
            continue
        try:
            spec = read(module)
            c = spec.cost_of_inputs(shapes)
        except (ConvcostError, AttributeError, IndexError, TypeError, ValueError):
            continue  # a configuration the variant does not model: not named
        if (c.params, c.macs) == (sum(r.params for r in inside), sum(r.macs for r in inside)):
            named[path] = spec
    return named

