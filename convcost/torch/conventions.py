"""How other tools count: each tool's headline number, from a report's exact counts.

A convention is a rule per convcost primitive, applied to each row of a
:class:`~convcost.report.Report` (its spec, shapes and exact counts), plus which
rows the tool can see at all (module hooks see no functional call) and how it
treats the batch. Each primitive's rules live in its binding
(:mod:`convcost.torch.bindings`), keyed by tool name; this module holds the
tools and the rule helpers they share. Measured on torch 2.13 with the versions in docs/conventions.md:

=============  =========================================================================
convcost       MACs of conv, transposed conv, linear, matmul; bias excluded
torch          ``FlopCounterMode``: 2 x MACs, nothing else
fvcore         MACs (bias excluded) + batch norm 2/elem (affine) + global/adaptive
               average pool: input numel; functional calls seen (jit trace)
torchinfo      modules only; conv (and, wrongly, transposed conv): (weight + bias numel)
               x N x output spatial size; linear and batch norm: N x params (so a Linear
               on (N, H, W, C) counts N C O, not N H W C O)
ptflops        modules: conv/convT/linear MACs + 1 per biased output, BN 2/elem, ReLU/ELU/
               GELU 1/elem, pools input numel, all divided by the batch; patched functions
               (F.relu, pools, F.silu, torch.add/mul, matmul ...) add numel again, not divided
thop           modules only; conv formula on the *output* (wrong for transposed conv), no
               bias; BN 4/elem (affine); adaptive avg pool (window + 1)/out; avg pool 2/out
=============  =========================================================================

>>> from convcost.report import Report, Row
>>> from convcost.primitives import Conv, BatchNorm
>>> import convcost.torch
>>> r = Report([Row.of("c", "Conv2d", Conv(C=3, O=32, K=3, P=1), ((1, 3, 32, 32),)),
...             Row.of("bn", "BatchNorm2d", BatchNorm(C=32), ((1, 32, 32, 32),))])
>>> headline(r, "convcost"), headline(r, "torch"), headline(r, "torchinfo"), headline(r, "fvcore")
(884736, 1769472, 917568, 950272)
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost.arith import div, prod, total
from convcost.errors import ConvcostError
from convcost.shapes import numel
from convcost.torch.binding import BINDINGS, hooks_of


def spatial_out(row):
    return numel(row.output_shape[2:])


def batch(row):
    return row.output_shape[0] if row.output_shape else 1


def formula_params(row):
    """The layer's own parameters (by its formula), tied or not: tools that multiply params count them."""
    return row.spec.cost(row.input_shapes[0]).params


def count(name):
    """The row's own exact count ``name``."""
    return lambda row: row.counts[name]


def plus(*fns):
    return lambda row: sum(f(row) for f in fns)


def times(k, fn):
    return lambda row: k * fn(row)


def in_numel(row):
    return numel(row.input_shapes[0])


def out_numel(row):
    return numel(row.output_shape)


def per_element(affine, plain):
    """``affine`` ops per output element when the layer is affine, else ``plain``."""
    return lambda row: numel(row.output_shape) * (affine if row.spec.affine else plain)


def torchinfo_module(call):
    """torchinfo's ``LayerInfo.calculate_macs`` for any leaf module, from its parameters' names and numel:
    ``weight``/``bias`` times batch x output spatial size when the class name holds "Conv", else times the
    batch; other parameters whose names hold "weight" or "bias" times the output's first two sizes."""
    out = call.output_shape
    macs = 0
    for name, n in call.params:
        if name in ("weight", "bias"):
            macs += n * (prod(out[:1]) * numel(out[2:]) if "Conv" in call.type_name else (out[0] if out else 1))
        elif "weight" in name or "bias" in name:
            macs += n * prod(out[:2])
    return macs


def torchinfo_conv(row):
    return formula_params(row) * batch(row) * spatial_out(row)


def thop_conv(row):
    spec = row.spec
    taps = prod(k for k, *_ in spec.axes())
    return out_numel(row) * div(spec.C, spec.G) * taps


def thop_adaptive(row):
    window = div(numel(row.input_shapes[0][2:]), numel(row.output_shape[2:]))
    return (window + 1) * out_numel(row)


MACS = count("macs")
MACS_BIAS = plus(count("macs"), count("bias_ops"))
FLOPS = times(2, MACS)
#: the rules of a layer whose counted work every tool agrees on: conv, transposed conv, linear
MACS_EVERYWHERE = {"convcost": MACS, "torch": FLOPS, "fvcore": MACS, "ptflops": MACS_BIAS}


def torch_backward_macs(c):
    """``FlopCounterMode``'s backward MACs (torch 2.13) for a cost: convcost's ``backward_macs`` where the two
    agree, the binding's ``torch_backward`` where they do not (the ``G - 1`` extra weight gradients it counts for
    every grouped (transposed) convolution whose weights are trained), summed over a composition's parts, so
    that the two tools can be reconciled row by row.

    >>> from convcost import SeparableConv
    >>> c = SeparableConv(C=4, O=8, K=3, bias=False).cost((1, 4, 10, 10), input_grad=False)
    >>> c.backward_macs, torch_backward_macs(c)
    (6400, 13312)
    """
    counted = hooks_of(c.spec).torch_backward(c)
    if counted is not None:
        return counted
    if not c.parts:
        return c.backward_macs
    return total(torch_backward_macs(part) for _, part in c.parts)


@dataclasses.dataclass(frozen=True)
class Convention:
    """A tool's counting rules: which rows it sees, how it treats the batch, what patched functions add.

    The rule for each primitive is the binding's ``conventions[name]``; ``conventions[name + "/patched"]``
    is what the tool adds again when a module of that primitive calls a function the tool patches.
    """

    name: str
    unit: str
    sees_functions: bool = True
    functional_rules: dict = dataclasses.field(default_factory=dict)  # by the op label of a patched function
    per_sample: bool = False  # divides module counts by the batch (ptflops)
    #: what the tool counts for a childless module convcost read by its calls (``report.module_calls``)
    module_call: object = None

    def _rule(self, row, suffix=""):
        binding = BINDINGS.get(type(row.spec))
        return binding.conventions.get(self.name + suffix) if binding is not None else None

    def row(self, row):
        """What the tool counts for one row (module part, functional part)."""
        base = self._rule(row)
        if row.source == "function":
            if not self.sees_functions:
                return 0, 0
            extra = self.functional_rules.get(row.op)
            if extra is not None:
                return 0, extra(row)
            return (0, base(row)) if base is not None else (0, 0)
        module = base(row) if base is not None else 0
        extra = self._rule(row, "/patched")
        return module, (extra(row) if extra is not None else 0)

    def headline(self, report):
        module, functional = 0, 0
        for r in report.rows:
            m, f = self.row(r)
            module, functional = module + m, functional + f
        if self.module_call is not None:
            for call in getattr(report, "module_calls", ()):
                module = module + self.module_call(call)
        if self.per_sample:
            size = report.input_shape[0] if report.input_shape else 1
            module = div(module, size)
        total = sympy.sympify(module + functional)
        return int(total) if total.is_Integer else total


_NOTHING = lambda row: 0  # noqa: E731 - ptflops patches these but its count comes from the module rule

CONVENTIONS = {
    "convcost": Convention("convcost", "MACs"),
    "torch": Convention("torch", "FLOPs (FlopCounterMode)"),
    "fvcore": Convention("fvcore", "flops (= MACs)"),
    "torchinfo": Convention("torchinfo", "mult-adds", sees_functions=False, module_call=torchinfo_module),
    "ptflops": Convention("ptflops", "MACs", functional_rules={
        "F.relu": out_numel, "F.elu": out_numel, "F.relu6": out_numel, "F.gelu": out_numel,
        "F.silu": out_numel, "F.max_pool2d": in_numel, "F.avg_pool2d": in_numel,
        "F.adaptive_avg_pool2d": in_numel, "torch.add": out_numel, "Tensor.add": out_numel,
        "torch.mul": out_numel, "Tensor.mul": out_numel, "torch.matmul": MACS, "Tensor.matmul": MACS,
        "torch.mm": MACS, "torch.bmm": MACS, "F.linear": _NOTHING,
        "add": _NOTHING, "mul": _NOTHING, "F.conv2d": _NOTHING}, per_sample=True),
    "thop": Convention("thop", "MACs", sees_functions=False),
}


def headline(report, convention: str | None = None):
    """The headline number the tool ``convention`` reports for the model of ``report``."""
    name = getattr(report, "convention", "convcost") if convention is None else convention
    if not isinstance(name, str) or name not in CONVENTIONS:
        raise ConvcostError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)}")
    return CONVENTIONS[name].headline(report)
