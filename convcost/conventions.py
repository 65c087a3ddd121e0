"""How other tools count: each tool's headline number, from a report's exact counts.

A convention is a rule per convcost primitive, applied to each row of a
:class:`~convcost.report.Report` (its spec, shapes and exact counts), plus which
rows the tool can see at all (module hooks see no functional call) and how it
treats the batch. Measured on torch 2.13 with the versions in docs/conventions.md:

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
>>> r = Report([Row.of("c", "Conv2d", Conv(C=3, O=32, K=3, P=1), ((1, 3, 32, 32),)),
...             Row.of("bn", "BatchNorm2d", BatchNorm(C=32), ((1, 32, 32, 32),))])
>>> headline(r, "convcost"), headline(r, "torch"), headline(r, "torchinfo"), headline(r, "fvcore")
(884736, 1769472, 917568, 950272)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import sympy

from convcost.arith import div
from convcost.shapes import numel
from convcost.errors import ConvcostError


def _numel(shape):
    return numel(shape)


def _spatial_out(row):
    return _numel(row.output_shape[2:])


def _batch(row):
    return row.output_shape[0] if row.output_shape else 1


def _formula_params(row):
    """The layer's own parameters (by its formula), tied or not: tools that multiply params count them."""
    return row.spec.cost(row.input_shapes[0]).params


def _c(name):
    return lambda row: row.counts[name]


def _sum(*fns):
    return lambda row: sum(f(row) for f in fns)


def _times(k, fn):
    return lambda row: k * fn(row)


_in_numel = lambda row: _numel(row.input_shapes[0])  # noqa: E731
_out_numel = lambda row: _numel(row.output_shape)  # noqa: E731


def _affine(per_elem_affine, per_elem_plain):
    return lambda row: _numel(row.output_shape) * (per_elem_affine if row.spec.affine else per_elem_plain)


def _torchinfo_conv(row):
    return _formula_params(row) * _batch(row) * _spatial_out(row)


def _thop_conv(row):
    spec = row.spec
    taps = sympy.Mul(*(k for k, *_ in spec.axes()))
    return _out_numel(row) * div(spec.C, spec.G) * taps


def _thop_adaptive(row):
    window = div(_numel(row.input_shapes[0][2:]), _numel(row.output_shape[2:]))
    return (window + 1) * _out_numel(row)


@dataclasses.dataclass(frozen=True)
class Convention:
    """A tool's counting rules: a rule per primitive, which rows it sees, how it treats the batch."""

    name: str
    unit: str
    rules: dict
    sees_functions: bool = True
    functional_rules: dict = dataclasses.field(default_factory=dict)  # extra counts of patched functions
    per_sample: bool = False  # divides module counts by the batch (ptflops)

    def row(self, row):
        """What the tool counts for one row (module part, functional part)."""
        name = type(row.spec).__name__
        if row.source == "function":
            if not self.sees_functions:
                return 0, 0
            extra = self.functional_rules.get(row.op)
            base = self.rules.get(name)
            if extra is not None:
                return 0, extra(row)
            return (0, base(row)) if base is not None and self.sees_functions else (0, 0)
        rule: Callable | None = self.rules.get(name)
        module = rule(row) if rule is not None else 0
        extra = self.functional_rules.get(f"module:{name}")
        return module, (extra(row) if extra is not None else 0)

    def headline(self, report):
        module, functional = 0, 0
        for r in report.rows:
            m, f = self.row(r)
            module, functional = module + m, functional + f
        if self.per_sample:
            batch = report.input_shape[0] if report.input_shape else 1
            module = sympy.Rational(1, 1) * module / batch
        total = sympy.sympify(module + functional)
        return int(total) if total.is_Integer else total


_MACS = _c("macs")
_MACS_BIAS = _sum(_c("macs"), _c("bias_ops"))

CONVENTIONS = {
    "convcost": Convention("convcost", "MACs", {"Conv": _MACS, "ConvTranspose": _MACS, "Linear": _MACS}),
    "torch": Convention("torch", "FLOPs (FlopCounterMode)",
                        {"Conv": _times(2, _MACS), "ConvTranspose": _times(2, _MACS), "Linear": _times(2, _MACS)}),
    "fvcore": Convention("fvcore", "flops (= MACs)", {
        "Conv": _MACS, "ConvTranspose": _MACS, "Linear": _MACS, "BatchNorm": _affine(2, 1),
        "AdaptiveAvgPool": _in_numel}),
    "torchinfo": Convention("torchinfo", "mult-adds", {
        "Conv": _torchinfo_conv, "ConvTranspose": _torchinfo_conv,
        "Linear": lambda row: _batch(row) * _formula_params(row),
        "BatchNorm": lambda row: _batch(row) * _formula_params(row)}, sees_functions=False),
    "ptflops": Convention("ptflops", "MACs", {
        "Conv": _MACS_BIAS, "ConvTranspose": _MACS_BIAS, "Linear": _MACS_BIAS, "BatchNorm": _affine(2, 1),
        "Activation": lambda row: _out_numel(row) if row.spec.kind in ("relu", "relu6", "elu", "leaky_relu", "gelu") else 0,
        "MaxPool": _in_numel, "AvgPool": _in_numel, "AdaptiveAvgPool": _in_numel, "AdaptiveMaxPool": _in_numel},
        functional_rules={
            # an nn module whose forward calls a patched function is counted once more
            "module:Activation": lambda row: _out_numel(row) if row.spec.kind in ("relu", "elu", "gelu", "silu") else 0,
            "module:MaxPool": _in_numel, "module:AvgPool": _in_numel, "module:AdaptiveAvgPool": _in_numel,
            "module:AdaptiveMaxPool": _in_numel,
            "F.relu": _out_numel, "F.elu": _out_numel, "F.relu6": _out_numel, "F.gelu": _out_numel,
            "F.silu": _out_numel, "F.max_pool2d": _in_numel, "F.avg_pool2d": _in_numel,
            "F.adaptive_avg_pool2d": _in_numel, "torch.add": _out_numel, "Tensor.add": _out_numel,
            "torch.mul": _out_numel, "Tensor.mul": _out_numel, "torch.matmul": _MACS, "Tensor.matmul": _MACS,
            "torch.mm": _MACS, "torch.bmm": _MACS, "F.linear": lambda row: 0,
            "add": lambda row: 0, "mul": lambda row: 0, "F.conv2d": lambda row: 0},
        per_sample=True),
    "thop": Convention("thop", "MACs", {
        "Conv": _thop_conv, "ConvTranspose": _thop_conv, "Linear": _MACS, "BatchNorm": _affine(4, 2),
        "AdaptiveAvgPool": _thop_adaptive, "AvgPool": _times(2, _out_numel)}, sees_functions=False),
}


def headline(report, convention: str | None = None):
    """The headline number the tool ``convention`` reports for the model of ``report``."""
    name = convention or getattr(report, "convention", "convcost")
    if name not in CONVENTIONS:
        raise ConvcostError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)}")
    return CONVENTIONS[name].headline(report)
