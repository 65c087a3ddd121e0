"""Hostile input over every public entry point: a result or a ConvcostError, never anything else.

Each test draws hostile values (numbers of every kind, nan and inf, huge and
negative ints, text holding code, sympy symbols and relations, numpy scalars
and arrays, containers, objects whose comparisons raise) and feeds them to one
entry point; :func:`fuzzing.attempt` fails on any exception but ConvcostError
and on any call over 5 s. The quick profile runs a few hundred examples per
entry point; ``CONVCOST_PROFILE=thorough`` runs over 100,000 calls in all.
``profile`` has its own file, tests/test_fuzz_profile.py.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import io
import subprocess
import sys

import numpy as np
import pytest
import sympy
from fuzzing import ERROR, ODD_KEYWORDS, attempt, examples, hostile_values
from hypothesis import given, settings
from hypothesis import strategies as st

from convcost import (
    VARIANTS,
    AsymmetricConv,
    Cost,
    FactorizedConv,
    Layer,
    SeparableConv,
    StandardConv,
    break_even,
    compare,
    cost,
    derive,
)
from convcost.breakeven import BreakEven
from convcost.comparison import Comparison
from convcost.derivation import Derivation
from convcost.errors import ConvcostError
from convcost.latency import Latency, Machine, predict_latency
from convcost.primitives import PRIMITIVES
from convcost.symbols import H


def _layer_classes() -> list:
    """Every layer class convcost defines (variants, primitives, compositions, abstract bases), by import."""
    import importlib
    import pkgutil

    import convcost
    from convcost.layers import Merge

    for found in pkgutil.walk_packages(convcost.__path__, "convcost."):
        if not any(part in found.name for part in (".torch", ".cli", "__main__", ".plot", ".testing")):
            importlib.import_module(found.name)

    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted({*below(Layer), *below(Merge), Layer, Merge}, key=lambda c: (c.__module__, c.__qualname__))


CLASSES = _layer_classes()


def _fields(cls) -> list:
    return [f.name for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else []


@st.composite
def layer_and_fields(draw):
    """A layer class (or an instance, or something else) and hostile keyword values for some of its fields."""
    cls = draw(st.sampled_from(CLASSES))
    names = _fields(cls) + ODD_KEYWORDS
    keys = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    fields = {k: draw(hostile_values()) for k in keys}
    # mostly sane values elsewhere, so that the hostile one is what the call meets
    sane = draw(st.sampled_from([{}, {"C": 4, "O": 8, "K": 3}, {"C": 4, "O": 8, "K": 3, "H": 8, "W": 8}]))
    sane = {k: v for k, v in sane.items() if k in _fields(cls)}
    spec = draw(st.one_of(st.just(cls), st.just(cls), hostile_values()))
    return spec, {**sane, **fields}


@settings(max_examples=examples(300, 25000))
@given(layer_and_fields(), st.one_of(st.just(False), st.just(True), hostile_values()))
def test_cost(case, general):
    spec, fields = case
    kwargs = dict(fields)
    if general is not False:
        kwargs["general"] = general
    result = attempt("cost", cost, spec, **kwargs)
    assert result is ERROR or isinstance(result, Cost)
    if result is not ERROR and not result.free_symbols:
        assert all(type(getattr(result, m)) is int for m in ("params", "macs"))


BASES = [
    StandardConv(C=4, O=8, K=3).cost(),
    SeparableConv().cost(),
    StandardConv.general().cost(),
    StandardConv(C=4, O=8, K=3, H=8, W=8).cost(),
]
SUBS_KEYS = ["H", "W", "C", "K", "O", "S", "P", "G", "N", "x", "alpha", *ODD_KEYWORDS]


@st.composite
def bindings(draw):
    keys = draw(st.lists(st.one_of(st.sampled_from(SUBS_KEYS), st.sampled_from(list(BASES[2].free_symbols))),
                         max_size=3, unique=True))
    return {k: draw(hostile_values()) for k in keys}


@settings(max_examples=examples(300, 20000))
@given(st.sampled_from(BASES), bindings(), st.booleans())
def test_subs(base, values, as_mapping):
    named = {k: v for k, v in values.items() if isinstance(k, str)}
    if as_mapping or len(named) != len(values):
        result = attempt("Cost.subs", base.subs, values)
    else:
        result = attempt("Cost.subs", base.subs, **named)
    assert result is ERROR or isinstance(result, Cost)


@settings(max_examples=examples(200, 5000))
@given(st.sampled_from(BASES), st.one_of(st.sampled_from(BASES), hostile_values()),
       st.one_of(st.sampled_from(["params", "macs", "flops", "memory"]), hostile_values()))
def test_ratio(base, other, metric):
    result = attempt("Cost.ratio", base.ratio, other, metric)
    assert result is ERROR or isinstance(result, (int, sympy.Expr))


SIDES = [StandardConv, SeparableConv, AsymmetricConv, FactorizedConv, StandardConv(K=5), SeparableConv(C=4),
         BASES[0], BASES[2]]
METRIC_NAMES = ["params", "macs", "flops", "memory", "act_ops"]


@st.composite
def shared_values(draw):
    keys = draw(st.lists(st.sampled_from(["C", "O", "K", "H", "W", "P", "G", "x", "bias", *ODD_KEYWORDS]),
                         max_size=3, unique=True))
    return {k: draw(hostile_values()) for k in keys}


@settings(max_examples=examples(200, 8000))
@given(st.one_of(st.sampled_from(SIDES), hostile_values()), st.one_of(st.sampled_from(SIDES), hostile_values()),
       st.one_of(st.sampled_from(METRIC_NAMES), hostile_values()), shared_values())
def test_compare(a, b, metric, shared):
    result = attempt("compare", compare, a, b, metric, **shared)
    assert result is ERROR or isinstance(result, Comparison)


@settings(max_examples=examples(100, 2000))
@given(st.sampled_from(SIDES[:4]), st.sampled_from(SIDES[:4]), st.sampled_from(METRIC_NAMES[:3]),
       st.one_of(st.sampled_from(["K", "C", "O", "H"]), hostile_values()), shared_values())
def test_break_even(a, b, metric, solve_for, shared):
    result = attempt("break_even", break_even, a, b, metric, solve_for, **shared)
    assert result is ERROR or isinstance(result, BreakEven)


@settings(max_examples=examples(100, 1000))
@given(st.one_of(st.sampled_from(SIDES), hostile_values()), st.one_of(st.sampled_from(SIDES), hostile_values()),
       st.one_of(st.sampled_from(METRIC_NAMES[:2]), hostile_values()), hostile_values())
def test_break_even_arguments(a, b, metric, solve_for):
    result = attempt("break_even", break_even, a, b, metric, solve_for)
    assert result is ERROR or isinstance(result, BreakEven)


BREAK_EVENS = [
    break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K"),
    break_even(StandardConv, SeparableConv, metric="macs", solve_for="K"),
    break_even(StandardConv, FactorizedConv, metric="params", solve_for="K"),
    break_even(StandardConv, SeparableConv, metric="params", solve_for="O", K=3),
]


@st.composite
def point(draw, be, arrays=False):
    names = [s.name for s in be.variables]
    keys = draw(st.lists(st.sampled_from(names + ["x", "limit", *ODD_KEYWORDS[:3]]), max_size=len(names) + 1,
                         unique=True))
    keys = list(dict.fromkeys(draw(st.sampled_from([names, keys]))))
    sane = st.integers(min_value=1, max_value=64)
    if arrays:
        sane = st.one_of(sane, st.lists(st.integers(1, 64), min_size=1, max_size=5).map(np.array))
    return {k: draw(st.one_of(sane, sane, hostile_values())) for k in keys}


@settings(max_examples=examples(200, 10000))
@given(st.data())
def test_holds(data):
    be = data.draw(st.sampled_from(BREAK_EVENS))
    result = attempt("BreakEven.holds", be.holds, **data.draw(point(be)))
    assert result is ERROR or type(result) is bool


@settings(max_examples=examples(200, 10000))
@given(st.data())
def test_region(data):
    be = data.draw(st.sampled_from(BREAK_EVENS))
    grids = data.draw(point(be, arrays=True))
    result = attempt("BreakEven.region", be.region, **grids)
    if result is not ERROR:
        assert isinstance(result, np.ndarray) and result.dtype == bool
        assert result.shape == np.broadcast_shapes(*(np.shape(v) for v in grids.values()))


@settings(max_examples=examples(200, 6000))
@given(st.data())
def test_threshold_at(data):
    be = data.draw(st.sampled_from(BREAK_EVENS))
    values = data.draw(point(be))
    values.pop(be.symbol.name, None)
    result = attempt("BreakEven.threshold_at", be.threshold_at, **values)
    assert result is ERROR or isinstance(result, tuple)


@settings(max_examples=examples(200, 4000))
@given(st.one_of(st.sampled_from([*SIDES, *BREAK_EVENS[:2], *BASES, StandardConv(C=4, O=8, K=3, H=8, W=8)]),
                 hostile_values()),
       st.one_of(st.none(), st.sampled_from(METRIC_NAMES), hostile_values()))
def test_derive(spec, metric):
    result = attempt("derive", derive, spec, metric)
    assert result is ERROR or isinstance(result, Derivation)


MACHINE = Machine("toy", peak_flops=1e11, bandwidth=1e10, overhead=1e-5)


@settings(max_examples=examples(200, 4000))
@given(st.one_of(st.sampled_from([StandardConv(C=4, O=8, K=3, H=8, W=8), BASES[3], *BASES]), hostile_values()),
       st.one_of(st.just(MACHINE), hostile_values()),
       st.one_of(st.sampled_from(["float32", "float16"]), hostile_values()))
def test_predict_latency(spec, machine, dtype):
    result = attempt("predict_latency", predict_latency, spec, machine, dtype)
    assert result is ERROR or isinstance(result, Latency)


@settings(max_examples=examples(200, 4000))
@given(st.data())
def test_machine(data):
    fields = {f.name: data.draw(hostile_values()) for f in dataclasses.fields(Machine)
              if data.draw(st.booleans())}
    fields.setdefault("name", "m")
    fields.setdefault("peak_flops", 1e9)
    fields.setdefault("bandwidth", 1e9)
    result = attempt("Machine", Machine, **fields)
    assert result is ERROR or isinstance(result, Machine)


LAYERS = [StandardConv(C=4, O=8, K=3), SeparableConv(), FactorizedConv(C=2, O=2, K=5), *[
    cls(**{k: v for k, v in {"C": 4, "O": 8, "K": 3}.items() if k in _fields(cls)}) for cls in PRIMITIVES
    if not {f.name for f in dataclasses.fields(cls) if f.init and f.default is dataclasses.MISSING} - {"C", "O", "K"}]]


@settings(max_examples=examples(200, 4000))
@given(st.sampled_from(LAYERS), st.one_of(st.sampled_from([(1, 4, 8, 8), [(1, 4, 8, 8), (1, 4, 8, 8)], (2, 4),
                                                          (1, 4, 10**30, 8), (1, 4, H, 8)]), hostile_values()))
def test_layer_cost(layer, shape):
    result = attempt("Layer.cost", layer.cost, shape)
    assert result is ERROR or isinstance(result, Cost)


@settings(max_examples=examples(200, 4000))
@given(st.sampled_from(BASES), st.one_of(st.sampled_from(BASES), hostile_values()),
       st.one_of(st.sampled_from(["float32", "int8"]), hostile_values()), hostile_values())
def test_cost_methods(base, other, dtype, fmt):
    try:
        total = base + other
    except TypeError:  # an operand Cost does not add: a TypeError, by Python's operator protocol
        pass
    except ConvcostError:
        pass
    else:
        assert isinstance(total, (Cost, np.ndarray))
    for name, call in (("Cost.bytes", lambda: base.bytes(dtype)), ("Cost.as_dict", lambda: base.as_dict(numeric=fmt)),
                       ("Derivation.render", lambda: derive(base).render(fmt))):
        result = attempt(name, call)
        assert result is ERROR or isinstance(result, (dict, str))


# -- the command line -----------------------------------------------------------------------------------------
ARGV_WORDS = ["cost", "compare", "breakeven", "derive", "list", "StandardConv", "SeparableConv", "AsymmetricConv",
              "Layer", "C=64", "K=3", "H=h", "C=0", "C=-1", "C=1e3", "C=nan", "C=inf", "K=3,1", "K=", "=3",
              "P=same", "P=full", "bias=maybe", "x=1", "C=__import__('os')", "C=2**6", "C=10000000000000000000000000",
              "--json", "--metric", "params", "--metric=nan", "--solve-for", "x", "--solve-for=K", "--format", "md",
              "--all", "--range", "K=1:nan", "K=a:b", "--y", "C", "--document", "\x00", "é", "-", "--", ""]


@settings(max_examples=examples(200, 4000))
@given(st.lists(st.sampled_from(ARGV_WORDS), min_size=1, max_size=6))
def test_cli_in_process(argv):
    from convcost.cli import main

    out, err = io.StringIO(), io.StringIO()

    def run():
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return main(argv)
        except SystemExit as exc:  # argparse's usage errors: status 2
            return exc.code

    status = attempt("cli", run)
    assert status in (0, 2), (argv, status, err.getvalue()[-500:])
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), (argv, err.getvalue())
    if status == 2:
        assert err.getvalue().strip(), argv


@pytest.mark.parametrize("argv", [
    ["cost", "StandardConv", "C=__import__('os').system('echo pwned')"],
    ["cost", "StandardConv", "C=10000000000000000000000000000", "H=nan"],
    ["breakeven", "StandardConv", "AsymmetricConv", "--solve-for", "x"],
    ["compare", "Layer", "StandardConv"],
    ["derive", "AdaptiveAvgPool"],
    ["cost", "StandardConv", "K=0"],
])
def test_cli_subprocess_prints_one_line(argv):
    done = subprocess.run([sys.executable, "-m", "convcost.cli", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "pwned" not in done.stdout


# -- threads ----------------------------------------------------------------------------------------------------
THREAD_CASES = [(cls, fields) for cls in VARIANTS.values()
                for fields in ({}, {"C": 8, "O": 16, "K": 3, "H": 16, "W": 16}) if set(fields) <= set(_fields(cls))]


def _counts(cls, fields):
    try:
        c = cost(cls, **fields)
    except Exception as exc:  # noqa: BLE001 - compared between runs, not judged here
        return type(exc).__name__
    return tuple(str(getattr(c, m)) for m in ("params", "macs", "activation_elements", "memory_access")) + (
        str(c.output_shape),)


def test_cost_from_threads_agrees_with_sequential():
    sequential = [_counts(cls, fields) for cls, fields in THREAD_CASES]
    rounds = 3 if not examples(False, True) else 20
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(rounds):
            concurrent_ = list(pool.map(lambda case: _counts(*case), THREAD_CASES * 2))
            assert concurrent_ == sequential * 2


# -- the PyTorch backend (profile: tests/test_fuzz_profile.py) --------------------------------------------------
torch = pytest.importorskip("torch")
from fuzzing import torch_state

from convcost.torch import Measured, from_torch, measure, to_torch

SPECS = [StandardConv(C=4, O=8, K=3), SeparableConv(C=4, O=8, K=3), StandardConv.general(),
         StandardConv(C=4, O=8, K=3, H=8, W=8), FactorizedConv(C=2, O=2, K=5)]
MODULES = [torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2),
           torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1), torch.nn.ReLU()),
           torch.nn.BatchNorm2d(3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Conv1d(2, 2, 3).to("meta"),
           torch.nn.Identity(), torch.nn.Flatten(), torch.nn.Dropout(0.5)]
# PyTorch's first FlopCounterMode run loads its machinery (seconds); that is not the call under test
measure(torch.nn.Conv2d(3, 4, 3), (1, 3, 8, 8))

SHAPES = [(1, 3, 8, 8), (1, 4, 8, 8), (2, 4), (1, 2, 5, 5), (1, 3, 0, 8), (1, 2, 9), [(1, 3, 8, 8)]]


@settings(max_examples=examples(200, 4000))
@given(st.one_of(st.sampled_from(SPECS), hostile_values()), st.one_of(st.none(), st.sampled_from(SHAPES),
       hostile_values()), st.one_of(st.none(), st.just("meta"), hostile_values()))
def test_to_torch(layer, shape, device):
    before = torch_state()
    result = attempt("to_torch", to_torch, layer, shape, device=device)
    assert result is ERROR or isinstance(result, torch.nn.Module)
    assert torch_state() == before


@settings(max_examples=examples(200, 3000))
@given(st.one_of(st.sampled_from(MODULES), hostile_values()))
def test_from_torch(module):
    result = attempt("from_torch", from_torch, module)
    assert result is ERROR or isinstance(result, Layer)


def _fingerprint(module):
    return ([(n, t.device.type, t.dtype, t.requires_grad, tuple(t.shape),
              None if t.is_meta else t.detach().clone())
             for n, t in [*module.named_parameters(), *module.named_buffers()]],
            [m.training for m in module.modules()])


def _same_fingerprint(a, b) -> bool:
    (ta, ma), (tb, mb) = a, b
    return ma == mb and len(ta) == len(tb) and all(
        x[:5] == y[:5] and (x[5] is None) == (y[5] is None) and (x[5] is None or torch.equal(x[5], y[5]))
        for x, y in zip(ta, tb))


@settings(max_examples=examples(200, 4000))
@given(st.sampled_from(range(len(MODULES))), st.booleans(),
       st.one_of(st.sampled_from(SHAPES), hostile_values()))
def test_measure_leaves_state(index, training, shape):
    module = MODULES[index]
    module.train(training)
    before, state = _fingerprint(module), torch_state()
    result = attempt("measure", measure, module, shape)
    assert result is ERROR or isinstance(result, Measured)
    assert _same_fingerprint(_fingerprint(module), before)
    assert torch_state() == state


@settings(max_examples=examples(100, 2000))
@given(hostile_values(), hostile_values())
def test_measure_arguments(module, shape):
    result = attempt("measure", measure, module, shape)
    assert result is ERROR
