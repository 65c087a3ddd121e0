"""The proof: every formula equals what PyTorch measures, on fuzzed valid configurations.

Profiles (tests/conftest.py): quick by default, CONVCOST_PROFILE=thorough for 2000 examples a test.
"""

import dataclasses

import pytest
import sympy
from hypothesis import find, given
from hypothesis import strategies as st

from convcost import METRICS, VARIANTS
from convcost import primitives as p
from convcost.layers import Layer, Merge
from convcost.symbols import GLOSSARY, SPATIAL, N
from convcost.testing import (
    CALL_CASES,
    MERGE_CASES,
    PRIMITIVE_CASES,
    RECURRENT_CASES,
    VARIANT_CASES,
    assert_matches_torch,
    cases,
    composition_cases,
    primitive_cases,
)
from convcost.torch import from_torch, measure, to_torch

PRIMITIVES = list(PRIMITIVE_CASES)
NAMED = list(VARIANT_CASES)


def _ids(classes):
    return [c.__name__ for c in classes]


def _integers(values) -> tuple:
    assert all(sympy.sympify(v).is_Integer for v in values), values
    return tuple(int(v) for v in values)


def _check(case):
    """convcost's params, MACs and output shape against PyTorch's, spelled out (and per part)."""
    layer, shape = case
    predicted = layer.cost(shape)
    measured = measure(to_torch(layer, shape, device="meta"), shape)
    assert _integers((predicted.params, predicted.macs)) == (measured.params, measured.macs)
    assert _integers(predicted.output_shape) == measured.output_shape
    assert_matches_torch(layer, shape)  # the same, and every named part on its own input


# -- formula == measured ---------------------------------------------------------------


@pytest.mark.parametrize("cls", PRIMITIVES, ids=_ids(PRIMITIVES))
@given(data=st.data())
def test_primitive_matches_pytorch(cls, data):
    _check(data.draw(cases(cls)))


@pytest.mark.parametrize("cls", NAMED, ids=_ids(NAMED))
@given(data=st.data())
def test_named_variant_matches_pytorch(cls, data):
    _check(data.draw(cases(cls)))


@given(composition_cases())
def test_composition_matches_pytorch(case):
    _check(case)


# -- symbolic subs == numeric -----------------------------------------------------------


def _symbolic_twin(layer, shape):
    """The layer with each scalar field named in the glossary made a symbol, the input likewise.

    Returns ``(twin, symbolic_shape, values)``; a field that must stay concrete (FactorizedConv's K)
    stays a number.
    """
    values = {}
    for f in dataclasses.fields(layer):
        value = getattr(layer, f.name)
        if f.name in GLOSSARY and isinstance(value, sympy.Integer):
            try:
                layer = layer.replace(**{f.name: GLOSSARY[f.name]})
            except Exception:  # noqa: BLE001 - a field that must stay a number
                continue
            values[f.name] = int(value)
    names = {f.name for f in dataclasses.fields(layer)}
    if {"H", "W"} <= names or names & {"N"}:  # a variant: its input is its N, (T), H, W fields
        return layer, None, values
    shape = list(shape)
    channels_first = not isinstance(layer, (p.Linear, p.Activation, p.Flatten, p.Identity, p.Narrow))
    keep_spatial = isinstance(layer, p.AdaptiveAvgPool)  # symbolic bins are exact only where they tile
    if channels_first:
        values["N"], shape[0] = shape[0], N
        if "C" in values:
            shape[1] = GLOSSARY["C"]
        if not keep_spatial and len(shape) - 2 in SPATIAL:
            for i, sym in enumerate(SPATIAL[len(shape) - 2], start=2):
                values[sym.name], shape[i] = shape[i], sym
    elif isinstance(layer, p.Linear) and "C" in values:
        shape[-1] = GLOSSARY["C"]
    return layer, tuple(shape), values


def _subs_equals_numeric(case):
    layer, shape = case
    numeric = layer.cost(shape)
    twin, twin_shape, values = _symbolic_twin(layer, shape)
    symbolic = twin.cost(twin_shape)
    if values:
        assert symbolic.free_symbols, (twin, twin_shape)  # the twin really is symbolic
    bound = symbolic.subs(**values)
    for metric in METRICS:
        assert _integers([getattr(bound, metric)]) == _integers([getattr(numeric, metric)]), metric
    assert _integers(bound.output_shape) == _integers(numeric.output_shape)


@pytest.mark.parametrize("cls", PRIMITIVES, ids=_ids(PRIMITIVES))
@given(data=st.data())
def test_primitive_symbolic_subs_equals_numeric(cls, data):
    _subs_equals_numeric(data.draw(cases(cls)))


@pytest.mark.parametrize("cls", NAMED, ids=_ids(NAMED))
@given(data=st.data())
def test_variant_symbolic_subs_equals_numeric(cls, data):
    _subs_equals_numeric(data.draw(cases(cls)))


# -- composition == sum of parts ------------------------------------------------------------


def _sum_of_parts(case):
    layer, shape = case
    total = layer.cost(shape)
    assert total.parts, layer
    for metric in METRICS:
        if metric == "saved_elements":  # each storage once: less than the sum where parts share one (test_training)
            continue
        assert getattr(total, metric) == sympy.Add(*(getattr(c, metric) for _, c in total.parts)), metric
    # and PyTorch agrees that the whole costs what its parts cost, measured one by one
    module = to_torch(layer, shape, device="meta")
    whole = measure(module, shape)
    pieces = [measure(module.get_submodule(name), _integers(c.input_shape)) for name,
              c in total.parts if c.macs or c.params]
    assert whole.macs == sum(m.macs for m in pieces)
    assert whole.params == sum(m.params for m in pieces)


@pytest.mark.parametrize("cls", NAMED, ids=_ids(NAMED))
@given(data=st.data())
def test_variant_cost_is_sum_of_parts(cls, data):
    _sum_of_parts(data.draw(cases(cls)))


@given(composition_cases())
def test_composition_cost_is_sum_of_parts(case):
    _sum_of_parts(case)


# -- spec -> torch -> spec ---------------------------------------------------------------


def _round_trip(case):
    layer, shape = case
    module = to_torch(layer, shape)
    back = from_torch(module)
    assert back.cost(shape) == layer.cost(shape)
    assert repr(to_torch(back, shape)) == repr(module)
    return back


@given(primitive_cases())
def test_primitive_round_trips(case):
    back = _round_trip(case)
    if isinstance(case.layer, p.LayerNorm):  # one layer norm: nn.LayerNorm reads back as the class that built it
        assert back == case.layer


@given(composition_cases())
def test_composition_round_trips(case):
    _round_trip(case)


# -- the strategies reach what they promise ------------------------------------------------------


def test_every_named_variant_and_primitive_has_a_strategy():
    assert set(VARIANTS.values()) <= set(VARIANT_CASES), set(VARIANTS.values()) - set(VARIANT_CASES)
    exported = {v for v in vars(p).values() if isinstance(v, type) and v.__module__.startswith(p.__name__ + ".")}
    layers = {v for v in exported if issubclass(v, Layer)}
    merges = {v for v in exported if issubclass(v, Merge)}
    assert len(layers) > 20 and len(merges) > 8  # the primitives are found (their classes live in submodules)
    covered = set(PRIMITIVE_CASES) | set(CALL_CASES) | set(RECURRENT_CASES)
    assert layers <= covered, layers - covered
    assert merges <= set(MERGE_CASES), merges - set(MERGE_CASES)


@pytest.mark.parametrize(
    "what, strategy, condition",
    [
        ("1-D conv", cases(p.Conv), lambda c: c.layer.dims == 1),
        ("3-D conv", cases(p.Conv), lambda c: c.layer.dims == 3),
        ("same padding", cases(p.Conv), lambda c: c.layer.P == "same"),
        ("per-axis padding", cases(p.Conv), lambda c: isinstance(c.layer.P, tuple)),
        ("strided dilated groups", cases(p.Conv), lambda c: c.layer.S != 1 and c.layer.D != 1 and c.layer.G > 1),
        ("batch > 1", cases(p.Conv), lambda c: c.input_shape[0] > 1),
        ("output padding", cases(p.ConvTranspose), lambda c: c.layer.output_padding != 0),
        ("ceil mode", cases(p.MaxPool), lambda c: c.layer.ceil_mode),
        ("depth multiplier", cases(VARIANTS["DepthwiseConv"]), lambda c: c.layer.M > 1),
        ("inverted residual with the add", cases(VARIANTS["InvertedResidual"]),
         lambda c: c.layer.S == 1 and c.layer.C == c.layer.O),
        ("flatten then batch norm 1-D", composition_cases(), lambda c: "head_bn" in dict(c.layer.parts)),
    ],
)
def test_strategies_reach(what, strategy, condition):
    assert condition(find(strategy, condition))
