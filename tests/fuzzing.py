"""Shared machinery of the fuzz tests: hostile values, and one guarded call.

Every public entry point must answer a hostile value with a result or one
:class:`~convcost.errors.ConvcostError`, within :data:`TIME_LIMIT_S` seconds.
:func:`attempt` makes one call and fails the test on anything else; with
``CONVCOST_FUZZ_CENSUS=FILE`` set it counts instead of failing, and writes the
tally (calls, errors by entry point and class) to ``FILE`` at exit.
"""

from __future__ import annotations

import atexit
import collections
import json
import math
import os
import signal
import time
from fractions import Fraction

import numpy as np
import sympy
from hypothesis import strategies as st

from convcost.errors import ConvcostError
from convcost.symbols import C, H, K, O

#: no call may take longer (seconds); the issue's limit
TIME_LIMIT_S = float(os.environ.get("CONVCOST_FUZZ_LIMIT_S", "5"))

THOROUGH = os.environ.get("CONVCOST_PROFILE", "quick") == "thorough"


def examples(quick: int, thorough: int) -> int:
    """Examples of one fuzz test in the active profile."""
    return thorough if THOROUGH else quick


_CENSUS_FILE = os.environ.get("CONVCOST_FUZZ_CENSUS")
CENSUS: dict = {"calls": 0, "slow": collections.Counter(), "errors": collections.Counter(), "samples": {}}


def _write_census():
    data = {"calls": CENSUS["calls"], "slow": dict(CENSUS["slow"]), "errors": dict(CENSUS["errors"]),
            "samples": CENSUS["samples"]}
    with open(_CENSUS_FILE, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)


if _CENSUS_FILE:
    atexit.register(_write_census)


class Overtime(BaseException):
    """A call ran past the time limit (a BaseException, so no library code swallows it)."""


def _alarm(signum, frame):
    raise Overtime()


class Failed(AssertionError):
    """A call answered with something other than a result or a ConvcostError."""


ERROR = object()  # what attempt() returns when the call raised ConvcostError


def attempt(name: str, fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)``: its result, or :data:`ERROR` when it raised ConvcostError.

    Any other exception, or a call longer than the limit, fails the test (or is counted, in a census).
    """
    CENSUS["calls"] += 1
    previous = signal.signal(signal.SIGALRM, _alarm)
    # the alarm stops a hang; the measured time decides (the alarm fires a little late on a loaded machine)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S * 3)
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except ConvcostError:
        result = ERROR
    except Overtime:
        return _fail(name, "overtime", fn, args, kwargs, f"ran past {TIME_LIMIT_S * 3:.0f} s and was stopped")
    except Exception as exc:  # noqa: BLE001 - the point of the test
        return _fail(name, type(exc).__name__, fn, args, kwargs, f"{type(exc).__name__}: {exc}", exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - start
    if elapsed > TIME_LIMIT_S:
        if _CENSUS_FILE:
            CENSUS["slow"][name] += 1
            CENSUS["samples"].setdefault(f"{name}: slow", _show(fn, args, kwargs) + f" {elapsed:.1f}s")
            return result
        raise Failed(f"{name}: {_show(fn, args, kwargs)} took {elapsed:.1f} s (limit {TIME_LIMIT_S} s)")
    return result


def _fail(name, kind, fn, args, kwargs, message, exc=None):
    if _CENSUS_FILE:
        CENSUS["errors"][f"{name}: {kind}"] += 1
        CENSUS["samples"].setdefault(f"{name}: {kind}", _show(fn, args, kwargs) + " -> " + message[:300])
        return ERROR
    raise Failed(f"{name}: {_show(fn, args, kwargs)} -> {message}") from exc


def _show(fn, args, kwargs) -> str:
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{getattr(fn, '__qualname__', fn)}({', '.join(parts)})"


def _short(value) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001
        text = f"<unprintable {type(value).__name__}: {exc}>"
    return text if len(text) < 120 else text[:117] + "..."


# -- hostile values ---------------------------------------------------------------------------------------------
class IntSubclass(int):
    """An int that is not exactly an int."""


class Exploding:
    """An object whose every comparison and conversion raises."""

    def __eq__(self, other):
        raise RuntimeError("exploding __eq__")

    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __hash__ = object.__hash__

    def __index__(self):
        raise RuntimeError("exploding __index__")

    def __int__(self):
        raise RuntimeError("exploding __int__")

    def __float__(self):
        raise RuntimeError("exploding __float__")

    def __repr__(self):
        return "<Exploding>"


CODE = [
    "__import__('os').system('echo pwned')",
    "exec('x = 1')",
    "lambda: 0",
    "1+1",
    "2**6",
    "C**2",
    "C",
    "K",
    "H",
    "x",
    "",
    " ",
    "nan",
    "inf",
    "oo",
    "zoo",
    "same",
    "valid",
    "params",
    "macs",
    "float32",
    "meta",
    "cpu",
    "concat",
    "add",
    "mul",
    "relu",
    "3",
    "-1",
    "3,3",
]

SYMBOLIC = [
    sympy.Symbol("x"),
    C,
    K,
    H,
    O,
    sympy.Symbol("neg", negative=True),
    sympy.Symbol("z", real=True),
    sympy.Symbol("C"),  # named like a canonical symbol, without its assumptions
    C + 1,
    K**2,
    C / 2,
    C - O,
    sympy.sqrt(C),
    C**40,
    sympy.Rational(1, 2),
    sympy.Integer(3),
    sympy.Integer(0),
    sympy.Integer(-2),
    sympy.Integer(10**30),
    sympy.Float(2.0),
    sympy.Float(2.5),
    sympy.oo,
    -sympy.oo,
    sympy.zoo,
    sympy.nan,
    sympy.I,
    sympy.pi,
    sympy.E,
    sympy.Eq(C, 1),
    sympy.Gt(K, 2),
    sympy.true,
    sympy.false,
    sympy.Piecewise((C, C > 2), (1, True)),
    sympy.Max(C, K),
    sympy.floor(C / 2),
    sympy.Mod(C, 4),
    sympy.Matrix([1, 2]),
    sympy.Tuple(1, 2),
]

NUMBERS = [
    0,
    -1,
    1,
    2,
    3,
    10**30,
    -(10**30),
    2**63,
    2**31 - 1,
    float("nan"),
    float("inf"),
    float("-inf"),
    0.0,
    -0.0,
    0.5,
    3.0,
    1e308,
    5e-324,
    Fraction(1, 2),
    Fraction(4, 1),
    Fraction(-1, 3),
    1 + 2j,
    IntSubclass(3),
]

NUMPY = [
    np.int64(3),
    np.int32(-2),
    np.uint8(7),
    np.int64(2**62),
    np.uint64(2**64 - 1),
    np.float64(2.0),
    np.float32(0.5),
    np.float64("nan"),
    np.float32("inf"),
    np.bool_(True),
    np.bool_(False),
    np.complex64(1j),
]

ARRAYS = [
    np.arange(1, 4),
    np.arange(1, 6),
    np.array([]),
    np.array([[1, 2], [3, 4]]),
    np.array([1.5, float("nan")]),
    np.array([float("inf")]),
    np.array(["a", "b"]),
    np.array([C, K], dtype=object),
    np.array([None, None]),
    np.ones(3, dtype=bool),
    np.array(3),
    np.array([10**18, 2]),
    np.array([-1, 0, 1]),
    np.arange(1, 4, dtype=np.float32),
    np.zeros((0, 3)),
]

MISC = [
    None,
    True,
    False,
    (),
    (3,),
    (3, 1),
    [3, 3],
    (0, 1),
    (float("nan"),),
    ((3,),),
    [C, K],
    (1, 3, 8, 8),
    [1, 3, 8, 8],
    (1, 3, 8),
    (1, 3, 0, 8),
    (1, -3, 8, 8),
    {},
    {"C": 3},
    {3},
    b"C",
    bytearray(b"K"),
    range(3),
    Ellipsis,
    object(),
    Exploding(),
    int,
    str,
    type,
    len,
    lambda: 0,
]


def hostile_values():
    """One hostile value: any of the kinds above, a small int, a float, text, or a short list of them."""
    return _HOSTILE


def _hostile_values():
    atoms = st.one_of(
        st.integers(min_value=-3, max_value=12),
        st.sampled_from(NUMBERS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(CODE),
        st.text(max_size=6),
        st.sampled_from(SYMBOLIC),
        st.sampled_from(NUMPY),
        st.sampled_from(ARRAYS),
        st.sampled_from(MISC),
    )
    return st.one_of(atoms, st.lists(atoms, max_size=3), st.lists(atoms, max_size=3).map(tuple))


_HOSTILE = _hostile_values()  # built once: building the strategy costs more than drawing from it

#: keyword names a hostile caller tries beside the real ones
ODD_KEYWORDS = ["self", "cls", "general", "spec", "metric", "values", "limit", "x", "__class__", "C ", "1", "shape"]


def finite(x) -> bool:
    """Whether ``x`` is a finite real number (for assertions on results)."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError, OverflowError):
        return False


def torch_state() -> tuple:
    """PyTorch's global settings a call must leave as it found them."""
    import torch

    return (torch.get_default_dtype(), torch.is_grad_enabled(), torch.is_inference_mode_enabled(),
            str(torch.get_default_device()), torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
