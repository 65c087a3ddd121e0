"""How a whole network's predicted time is corrected: in-network factors per kernel kind and seconds per call.

A kernel timed alone in a loop and the same kernel inside a network do not take the same time: inside a network
its input comes from the layer before, its weights and code were evicted by the layers before it, and the
framework does work between calls that no single-kernel timing sees. Calibration (``convcost.torch.calibrate``)
times a few small synthetic networks built from ordinary layers (never a model predictions are checked against)
end to end, and fits, per phase (``"inference"``, ``"training"``: a step's forward and backward), one factor per
kernel kind (:data:`convcost.primitives.KINDS`, and ``"view"`` for calls that run no kernel) such that the sum of
the network's per-row predictions, each kernel's time multiplied by its kind's factor, matches the measured
network time (:func:`fit_factors`), or one factor for every kind (:func:`fit_shared`) where that predicts the
networks better, or none (below). A phase without factors predicts each kernel as it is (every factor 1).

Besides the factors, a phase may keep seconds per call: each row of a profile that runs a kernel (one call of a
module or function: what :mod:`convcost.model_latency` predicts one time for; a view, none) adds ``call`` seconds
inside a network, whatever its kind and size. A factor scales a kernel's time; the framework's work between calls
does not grow with the kernel, and a network of many small calls (a mobile net) pays it more often than one of few
large ones (the last zoo run, one thread, batch 1: measured over predicted 1.29 to 1.54 on the mobile nets, 0.88 to
1.17 on the plain ones; ``1.056 x prediction + 17 us per row`` fitted on it, 4.2% median error). A sample is then
``(parts, fixed, measured, calls)``, its rows counted (``(parts, fixed, measured)``: no count, no per-call fit), and
each factor fit is tried with and without the term (:data:`CALL_FITS`), the term held toward 0 and never negative;
it is kept only where that fit predicts networks left out better than every fit without it.

The fit is ridge least squares on relative errors (:func:`convcost.least_squares.ridge_toward`) toward one factor
shared by every kind (itself fitted toward 1): a kind the networks barely use keeps a factor near the shared one,
and a busy moment of the machine during one network's timing moves no factor far.

A phase's factors are chosen by how well they predict networks they were not fitted on (:func:`fit_checked`:
each network left out in turn, :func:`held_out`), among three nested fits (:data:`FITS`): no factor, one factor
shared by every kind (:func:`fit_shared`), one factor per kind held toward it (:func:`fit_factors`). Factors are
kept only where they predict the networks left out clearly better than none (:data:`CLEARLY`), the better of the
two where both do (:func:`choose`). A few networks against nine kinds can be fitted closely by per-kind factors
that describe only those networks (measured, one thread, a training step's: left-out error 25% with factors, 26%
without; its factors, 0.61 to 1.53, put a zoo's plain ResNets and VGG 40-60% over). Every network predicted alike
too fast or too slow is no such overfitting but what one shared factor says, and checking per-kind factors alone
against none threw it away (measured, one thread, inference: the networks predicted at 0.77 to 0.96 of their
time, per-kind factors 11% off on a network left out against 12% without, so no factor was kept, and a zoo's
models at batch 1 came out 24% under at the median).

>>> parts = [({"dense_conv": 2.0, "elementwise": 1.0}, 0.0, 6.0), ({"dense_conv": 1.0, "elementwise": 2.0}, 0.0, 6.0)]
>>> factors = fit_factors(parts, weight=0.0)
>>> round(factors["dense_conv"], 3), round(factors["elementwise"], 3)
(2.0, 2.0)
>>> corrected({"dense_conv": 2.0, "view": 1.0}, 0.5, {"dense_conv": 1.5})
4.5
>>> corrected({"dense_conv": 2.0}, 0.0, {}, call=0.25, calls=4)   # four rows of 0.25 s each on top
3.0
"""

from __future__ import annotations

import math

import numpy as np

from convcost.errors import ConvcostError
from convcost.least_squares import ridge_toward
from convcost.primitives import KINDS

#: the phases a factor belongs to: inference, and a training step (its forward and backward)
PHASES = ("inference", "training")
#: the key of calls that run no kernel (views)
VIEW = "view"
#: the keys a phase's factors may have
KEYS = (*KINDS, VIEW)
#: the prior's weight per network against the networks' squared relative errors: a factor moves from 1 only as
#: far as the networks pay for it (the fit must stay stable on a busy machine); per network, so that more networks
#: do not drown the prior
PRIOR_WEIGHT = 0.01
#: no factor is fitted below this or above its inverse: a kind cannot vanish, nor take over the network
BOUND = 0.25
#: the fits :func:`fit_checked` chooses among, simplest first: no factor, one factor shared by every kind, one
#: factor per kind
FITS = ("none", "shared", "per_kind")
#: the same fits with seconds per call (per row of a profile) besides their factors, each tried where the samples
#: count their calls; a fit with the term follows the one without it, so that a tie keeps the term out
CALL_FITS = tuple(f"{how}+call" for how in FITS)
#: the name of the per-call term in :func:`fit_call`'s answers and :func:`check_call`'s errors
CALL = "call"
#: factors are kept only where the networks' mean relative error, each predicted by the factors fitted on the
#: others, is at most this share of their error without factors (:func:`choose`)
CLEARLY = 0.8


def factor(network: dict, phase: str, kind: str) -> float:
    """The factor of ``kind`` (or of an operation ``"kind/Name"``: its kind's) in ``phase``; 1 where none was fitted.

    >>> factor({"inference": {"depthwise_conv": 1.4}}, "inference", "depthwise_conv/Conv-strided")
    1.4
    >>> factor({}, "training", "linear")
    1.0
    """
    if phase not in PHASES:
        raise ConvcostError(f"unknown network phase {phase!r}; known: {', '.join(PHASES)}")
    return float(network.get(phase, {}).get(str(kind).split("/")[0], 1.0))


def corrected(parts: dict, fixed: float, factors: dict, call: float = 0.0, calls: int = 0) -> float:
    """``fixed + sum(factor[kind] x seconds) + call x calls`` over ``parts`` (kind -> uncorrected seconds); a kind
    without a factor counts once."""
    return float(fixed) + sum(factors.get(k, 1.0) * s for k, s in parts.items()) + call * calls


def fit_shared(samples, weight: float | None = None, bound: float = BOUND) -> float:
    """The one factor ``f`` that makes ``fixed + f x sum(parts.values())`` match the measured seconds of every sample
    ``(parts: kind -> uncorrected seconds, fixed seconds, measured seconds)`` best, relative error counted, with a
    prior of ``weight`` (default :data:`PRIOR_WEIGHT`) per sample toward 1 and ``f`` in ``[bound, 1 / bound]``: what
    every network says together, whatever its kinds.

    >>> alike = [({"linear": 1.0, "elementwise": 1.0}, 0.0, 2.5), ({"dense_conv": 2.0}, 0.0, 2.5)]
    >>> round(fit_shared(alike, weight=0.0), 6)                 # both networks 1.25x their prediction
    1.25
    >>> fit_shared([({"linear": 1.0}, 0.0, 100.0)], weight=0.0)  # never past its bound
    4.0
    """
    return _shared(samples, weight, bound, False, "fit_shared")[0]


def fit_factors(samples, weight: float | None = None, bound: float = BOUND) -> dict:
    """Per kind, the factor that makes ``fixed + sum(factor[kind] x parts[kind])`` match the measured seconds of
    every sample ``(parts: kind -> uncorrected seconds, fixed seconds, measured seconds)`` best, relative error
    counted, with a prior of ``weight`` (default :data:`PRIOR_WEIGHT`) per sample toward the shared factor
    (:func:`fit_shared`) and every factor in ``[bound, 1 / bound]``. Every kind of :data:`KEYS` is returned: one
    the samples do not use at the shared factor, as one they barely use lands near it (a network's slowdown that
    no kind explains is the best guess for a kind no network ran; 1 there would make a network left out of the
    fit, the only one running its kind, look as if no factor were fitted).

    >>> fit_factors([({"linear": 1.0}, 0.0, 100.0)], weight=0.0)["linear"]   # no factor goes past its bound
    4.0
    >>> few = [({"linear": 1.0, "elementwise": 0.01}, 0.0, 1.5)]   # the elementwise share says nearly nothing:
    >>> factors = fit_factors(few)                                  # it stays near the shared factor, and a kind
    >>> {k: round(factors[k], 2) for k in ("linear", "elementwise", "pooling")}   # never run is at it
    {'linear': 1.49, 'elementwise': 1.47, 'pooling': 1.47}
    """
    return _per_kind(samples, weight, bound, False, "fit_factors")[0]


def fit(samples, how: str, weight: float | None = None, bound: float = BOUND) -> dict:
    """The factors of the fit ``how`` (:data:`FITS`) on the samples ``(parts, fixed, measured)``: ``"none"``,
    ``{}``; ``"shared"``, :func:`fit_shared`'s factor for every kind (:data:`KEYS`, those the networks do not use
    too: it describes the network around the kernels, not a kind); ``"per_kind"``, :func:`fit_factors`. A fit with
    a per-call term (:data:`CALL_FITS`) is :func:`fit_call`'s: its factors alone would predict less than it does.

    >>> alike = [({"linear": 1.0}, 0.0, 1.25), ({"dense_conv": 2.0}, 0.0, 2.5)]
    >>> shared = fit(alike, "shared", weight=0.0)
    >>> round(shared["linear"], 6), round(shared["conv3d"], 6), fit(alike, "none")
    (1.25, 1.25, {})
    """
    if how not in FITS:
        raise ConvcostError(f"unknown fit {how!r}; known: {', '.join(FITS)} (with a per-call term: fit_call)")
    return fit_call(samples, how, weight, bound)[0]


def fit_call(samples, how: str, weight: float | None = None, bound: float = BOUND) -> tuple:
    """``(factors, seconds per call)`` of the fit ``how`` (:data:`FITS`: its factors, no per-call term; or
    :data:`CALL_FITS`: the same factors fitted together with seconds per call, ``measured ~ fixed + sum(factor[kind]
    x parts[kind]) + call x calls``) on the samples ``(parts, fixed, measured, calls)``. The term is never below 0
    and held toward 0 as a factor is toward 1: its column counts each call as the samples' mean measured seconds
    per call, so that the prior (:data:`PRIOR_WEIGHT` per sample) weighs a term of that size as it weighs a factor
    of 2. Samples without a count (three fields), or with no call at all, fit no term (0).

    >>> rows = [({"linear": 1.0}, 0.0, 1.0 + 0.1 * n, n) for n in (2, 5, 9)]   # 0.1 s per call on top
    >>> factors, call = fit_call(rows, "shared+call", weight=0.0)
    >>> round(factors["linear"], 6), round(call, 6)
    (1.0, 0.1)
    >>> factors, call = fit_call(rows, "none+call", weight=0.0)
    >>> factors, round(call, 6)
    ({}, 0.1)
    >>> fit_call(rows, "shared", weight=0.0)[1]   # a fit without the term
    0.0
    """
    if how not in FITS + CALL_FITS:
        raise ConvcostError(f"unknown fit {how!r}; known: {', '.join(FITS + CALL_FITS)}")
    base, call = how.removesuffix("+call"), how.endswith("+call")
    if base == "none":
        _columns(samples, "fit", bound)  # bad samples are an error whichever fit is asked
        return {}, _none(samples, weight, bound) if call else 0.0
    if base == "shared":
        shared, seconds = _shared(samples, weight, bound, call, "fit")
        return dict.fromkeys(KEYS, shared), seconds
    return _per_kind(samples, weight, bound, call, "fit")


def held_out(samples, groups, weight: float | None = None, bound: float = BOUND) -> dict:
    """Per fit of :data:`FITS` (and of :data:`CALL_FITS` where a sample counts its calls), the mean relative error
    of the samples ``(parts, fixed, measured[, calls])`` when each group's (``groups[i]``: the network of sample
    ``i``) are predicted by that fit on the other groups' samples (``"none"``: the error with no factor at all).

    >>> same = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 2.0}, 0.0, 4.0)]  # two networks, both twice as slow
    >>> {how: round(e, 3) for how, e in held_out(same, ["a", "b"], weight=0.0).items()}
    {'none': 0.5, 'shared': 0.0, 'per_kind': 0.0}
    """
    samples, groups = list(samples), list(groups)
    if len(samples) != len(groups):
        raise ConvcostError(f"held_out: {len(samples)} samples but {len(groups)} groups")
    _columns(samples, "held_out", bound)
    fits = FITS + (CALL_FITS if any(_calls(s) for s in samples) else ())
    errors = {how: [] for how in fits}
    for group in dict.fromkeys(groups):
        rest = [s for s, g in zip(samples, groups) if g != group]
        for how in fits:
            factors, call = fit_call(rest, how, weight, bound) if rest else ({}, 0.0)
            errors[how] += [abs(corrected(s[0], s[1], factors, call, _calls(s)) / s[2] - 1)
                            for s, g in zip(samples, groups) if g == group]
    return {how: float(np.mean(e)) for how, e in errors.items()}


def choose(errors: dict) -> str:
    """The fit of :data:`FITS` (and :data:`CALL_FITS`, where they were tried) to keep, given each one's held-out
    error (:func:`held_out`). A fit with factors or a per-call term is a candidate only where its error is at most
    :data:`CLEARLY` times no factor's (a correction earns its place against the plain prediction, by a margin wider
    than a few networks' noise); of the candidates, the lower error wins, the simpler on a tie (a fit without the
    per-call term before the same fit with it); none without a candidate. Between candidates no margin is asked:
    the per-kind factors are held toward the shared one (:func:`fit_factors`) and the per-call term toward 0
    (:func:`fit_call`), so they predict networks left out better only by what the kinds, or the calls, really
    differ in (a zoo run, two threads, rescored: with the per-kind factors it kept, median error 18% at batch 1;
    with one factor of 1.30 to 1.35 for every kind, 23 to 25%).

    >>> choose({"none": 0.12, "shared": 0.05, "per_kind": 0.11})   # every network alike too fast
    'shared'
    >>> choose({"none": 0.12, "shared": 0.05, "per_kind": 0.045})  # and the kinds differ a little besides
    'per_kind'
    >>> choose({"none": 0.10, "shared": 0.09, "per_kind": 0.09})   # nothing clearly better than none
    'none'
    >>> calls = {"none+call": 0.08, "shared+call": 0.03, "per_kind+call": 0.04}
    >>> choose({"none": 0.12, "shared": 0.05, "per_kind": 0.045, **calls})   # many small calls pay more
    'shared+call'
    """
    known = [how for how in FITS + CALL_FITS if how in errors] if isinstance(errors, dict) else []
    if not (isinstance(errors, dict) and set(errors) in (set(FITS), set(FITS + CALL_FITS))
            and all(_number(e) and e >= 0 for e in errors.values())):
        raise ConvcostError(f"choose: errors={errors!r} must map every fit ({', '.join(FITS)}, and "
                            f"{', '.join(CALL_FITS)} or none of them) to an error >= 0")
    candidates = [how for how in known[1:] if errors[how] <= CLEARLY * errors[FITS[0]]]
    return min(candidates, key=lambda how: errors[how]) if candidates else FITS[0]  # min keeps the first on a tie


def checked(samples, groups, weight: float | None = None, bound: float = BOUND) -> tuple:
    """``(fit, held-out errors, factors, seconds per call)``: the fit :func:`choose` keeps by :func:`held_out`, and
    its factors and per-call term fitted on every sample (:func:`fit_call`; 0 for a fit without the term). With one
    group there is nothing to hold out: the factors per kind are fitted, no per-call term, and the errors are
    ``{}``.

    >>> slow = [({"linear": 1.0}, 0.0, 1.3), ({"dense_conv": 1.0}, 0.0, 1.2), ({"pooling": 1.0}, 0.0, 1.25)]
    >>> how, errors, factors, call = checked(slow, ["a", "b", "c"], weight=0.0)   # each network runs one kind
    >>> {k: round(e, 3) for k, e in errors.items()}   # left out, its kind unseen: per kind is the shared factor
    {'none': 0.199, 'shared': 0.041, 'per_kind': 0.041}
    >>> how, round(factors["pooling"], 3), call       # a tie: the simpler fit
    ('shared', 1.247, 0.0)
    """
    samples, groups = list(samples), list(groups)
    if len(samples) != len(groups):
        raise ConvcostError(f"checked: {len(samples)} samples but {len(groups)} groups")
    if len(set(groups)) < 2:
        return "per_kind", {}, fit_factors(samples, weight, bound), 0.0
    errors = held_out(samples, groups, weight, bound)
    how = choose(errors)
    return (how, errors, *fit_call(samples, how, weight, bound))


def fit_checked(samples, groups, weight: float | None = None, bound: float = BOUND) -> dict:
    """The factors of the fit that predicts each group (a network) from the others clearly better than none, the
    better of two that do (:func:`checked`, which also gives the per-call term kept with them); ``{}`` (every factor
    1) where none does.

    >>> same = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 2.0}, 0.0, 4.0)]   # what one network says, the other does
    >>> round(fit_checked(same, ["a", "b"], weight=0.0)["linear"], 6)
    2.0
    >>> apart = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 1.0}, 0.0, 0.5)]  # what one network says, the other denies
    >>> fit_checked(apart, ["a", "b"], weight=0.0)
    {}
    """
    return checked(samples, groups, weight, bound)[2]


def _number(value) -> bool:
    """A finite int or float (not a bool): what a factor, a time or an error must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _weight(weight: float | None) -> float:
    return PRIOR_WEIGHT if weight is None else weight


def _calls(sample) -> int:
    """A sample's count of calls (0 for one of three fields, which counts none)."""
    return sample[3] if len(sample) > 3 else 0


def _unit(samples) -> float:
    """The samples' mean measured seconds per call (0 where none counts a call): the per-call term's scale."""
    per_call = [s[2] / _calls(s) for s in samples if _calls(s)]
    return float(np.mean(per_call)) if per_call else 0.0


def _none(samples, weight, bound) -> float:
    """Seconds per call that best make ``fixed + sum(parts) + call x calls`` match the measured seconds (no
    factor), held toward 0."""
    a, b, d = _columns(samples, "fit", bound)
    unit = _unit(samples)
    if not unit:
        return 0.0
    x = ridge_toward((d * unit)[:, None], b - a.sum(axis=1), prior=np.zeros(1), weight=_weight(weight) * len(b))
    return float(x[0] * unit)


def _shared(samples, weight, bound, call: bool, where: str) -> tuple:
    """``(factor, seconds per call)``: :func:`fit_shared`'s factor, fitted with the per-call term where ``call``
    (and the samples count calls; else 0)."""
    a, b, d = _columns(samples, where, bound)
    unit = _unit(samples) if call else 0.0
    columns = ([a.sum(axis=1)] if a.shape[1] else []) + ([d * unit] if unit else [])
    if not columns:  # nothing the factor would scale, nor any call: the prior
        return 1.0, 0.0
    prior = [1.0] * bool(a.shape[1]) + [0.0] * bool(unit)
    lower = [bound] * bool(a.shape[1]) + [0.0] * bool(unit)
    x = ridge_toward(np.column_stack(columns), b, prior=np.array(prior), weight=_weight(weight) * len(b),
                     lower=np.array(lower))
    shared = float(min(x[0], 1 / bound)) if a.shape[1] else 1.0
    return shared, float(x[-1] * unit) if unit else 0.0


def _per_kind(samples, weight, bound, call: bool, where: str) -> tuple:
    """``(factors, seconds per call)``: :func:`fit_factors`'s factors, fitted with the per-call term where ``call``
    (held toward the shared fit's term, as each factor is toward its factor)."""
    a, b, d = _columns(samples, where, bound)
    kinds = _kinds(samples)
    # the prior: one factor shared by every kind (what every network says together, itself held toward 1); each
    # kind then moves from it only as far as the networks pay for it
    shared, seconds = _shared(samples, weight, bound, call, where)
    unit = _unit(samples) if call else 0.0
    out = dict.fromkeys(KEYS, shared)
    if kinds or unit:
        columns = np.column_stack([a] + ([d * unit] if unit else [])) if unit else a
        prior = [shared] * len(kinds) + ([seconds / unit] if unit else [])
        lower = [bound] * len(kinds) + ([0.0] if unit else [])
        x = ridge_toward(columns, b, prior=np.array(prior), weight=_weight(weight) * len(b), lower=np.array(lower))
        out.update({k: float(min(v, 1 / bound)) for k, v in zip(kinds, x)})
        seconds = float(x[-1] * unit) if unit else 0.0
    return out, seconds


def _kinds(samples) -> list:
    """The keys (:data:`KEYS`) the samples use, in their order."""
    return [k for k in KEYS if any(s[0].get(k, 0) > 0 for s in samples)]


def _columns(samples, where: str, bound: float) -> tuple:
    """``(a, b, d)``: per sample, each used kind's uncorrected seconds over the measured ones, ``1 - fixed /
    measured``, and its calls over the measured seconds; a ConvcostError for no sample, a sample that is not
    ``(parts, fixed, measured[, calls])``, an unknown kind, a measured time that is not a positive number, a count
    of calls that is not an integer >= 0, or a bound outside ``(0, 1]``."""
    samples = list(samples)
    if not samples:
        raise ConvcostError(f"{where}: needs at least one measured network")
    if not (isinstance(bound, (int, float)) and 0 < bound <= 1):
        raise ConvcostError(f"{where}: bound={bound!r} must be in (0, 1]")
    for sample in samples:
        if not (isinstance(sample, (tuple, list)) and len(sample) in (3, 4) and isinstance(sample[0], dict)):
            raise ConvcostError(f"{where}: sample {sample!r} must be (parts: kind -> seconds, fixed seconds, "
                                "measured seconds[, calls])")
        parts, _fixed, measured = sample[:3]
        unknown = sorted(set(parts) - set(KEYS))
        if unknown:
            raise ConvcostError(f"{where}: unknown kinds {unknown}; known: {', '.join(KEYS)}")
        if not (isinstance(measured, (int, float)) and math.isfinite(measured) and measured > 0):
            raise ConvcostError(f"{where}: measured={measured!r} must be a positive number of seconds")
        calls = _calls(sample)
        if not (isinstance(calls, (int, np.integer)) and not isinstance(calls, bool) and calls >= 0):
            raise ConvcostError(f"{where}: calls={calls!r} must be a count of calls, an integer >= 0")
    kinds = _kinds(samples)
    a = np.array([[s[0].get(k, 0.0) / s[2] for k in kinds] for s in samples]).reshape(len(samples), len(kinds))
    b = np.array([1 - s[1] / s[2] for s in samples])
    d = np.array([_calls(s) / s[2] for s in samples], dtype=float)
    return a, b, d


def check(where: str, network) -> None:
    """A ConvcostError unless ``network`` maps phases (:data:`PHASES`) to kinds (:data:`KEYS`) to positive factors.

    >>> check("m", {"inference": {"linear": 0}})
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: m: network['inference']['linear']=0 must be a positive finite number
    """
    if not isinstance(network, dict):
        raise ConvcostError(f"{where}: network={network!r} must be a dict phase -> kind -> factor")
    for phase, factors in network.items():
        if phase not in PHASES:
            raise ConvcostError(f"{where}: network phase {phase!r} unknown; known: {', '.join(PHASES)}")
        if not isinstance(factors, dict):
            raise ConvcostError(f"{where}: network[{phase!r}]={factors!r} must be a dict kind -> factor")
        for kind, value in factors.items():
            if kind not in KEYS:
                raise ConvcostError(f"{where}: network[{phase!r}]: unknown kind {kind!r}; known: {', '.join(KEYS)}")
            if not (_number(value) and value > 0):
                raise ConvcostError(f"{where}: network[{phase!r}][{kind!r}]={value!r} must be a positive finite "
                                    "number")


def check_call(where: str, network_call) -> None:
    """A ConvcostError unless ``network_call`` maps phases (:data:`PHASES`) to seconds per call (per row of a
    profile), each a finite number >= 0 (a call inside a network cannot give time back).

    >>> check_call("m", {"inference": 1.7e-05})
    >>> check_call("m", {"inference": -1e-06})
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: m: network_call['inference']=-1e-06 must be a finite number of seconds per call >= 0
    """
    if not isinstance(network_call, dict):
        raise ConvcostError(f"{where}: network_call={network_call!r} must be a dict phase -> seconds per call")
    for phase, seconds in network_call.items():
        if phase not in PHASES:
            raise ConvcostError(f"{where}: network_call phase {phase!r} unknown; known: {', '.join(PHASES)}")
        if not (_number(seconds) and seconds >= 0):
            raise ConvcostError(f"{where}: network_call[{phase!r}]={seconds!r} must be a finite number of seconds "
                                "per call >= 0")
