"""How a whole network's predicted time is corrected: in-network factors per kernel kind and phase.

A kernel timed alone in a loop and the same kernel inside a network do not take the same time: inside a network
its input comes from the layer before, its weights and code were evicted by the layers before it, and the
framework does work between calls that no single-kernel timing sees. Calibration (``convcost.torch.calibrate``)
times a few small synthetic networks built from ordinary layers (never a model predictions are checked against)
end to end, and fits, per phase (``"inference"``, ``"training"``: a step's forward and backward), one factor per
kernel kind (:data:`convcost.primitives.KINDS`, and ``"view"`` for calls that run no kernel) such that the sum of
the network's per-row predictions, each kernel's time multiplied by its kind's factor, matches the measured
network time (:func:`fit_factors`), or one factor for every kind (:func:`fit_shared`) where that predicts the
networks better, or none (below). A phase without factors predicts each kernel as it is (every factor 1).

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


def corrected(parts: dict, fixed: float, factors: dict) -> float:
    """``fixed + sum(factor[kind] x seconds)`` over ``parts`` (kind -> uncorrected seconds); a kind without a
    factor counts once."""
    return float(fixed) + sum(factors.get(k, 1.0) * s for k, s in parts.items())


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
    a, b = _columns(samples, "fit_shared", bound)
    if a.shape[1] == 0:  # nothing the factor would scale: the prior
        return 1.0
    n = len(b)
    x = ridge_toward(a.sum(axis=1, keepdims=True), b, prior=np.ones(1), weight=_weight(weight) * n,
                     lower=np.full(1, bound))[0]
    return float(min(x, 1 / bound))


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
    a, b = _columns(samples, "fit_factors", bound)
    kinds = _kinds(samples)
    # the prior: one factor shared by every kind (what every network says together, itself held toward 1); each
    # kind then moves from it only as far as the networks pay for it
    shared = fit_shared(samples, weight, bound)
    out = dict.fromkeys(KEYS, shared)
    if kinds:
        x = ridge_toward(a, b, prior=np.full(len(kinds), shared), weight=_weight(weight) * len(b),
                         lower=np.full(len(kinds), bound))
        out.update({k: float(min(v, 1 / bound)) for k, v in zip(kinds, x)})
    return out


def fit(samples, how: str, weight: float | None = None, bound: float = BOUND) -> dict:
    """The factors of the fit ``how`` (:data:`FITS`) on the samples ``(parts, fixed, measured)``: ``"none"``,
    ``{}``; ``"shared"``, :func:`fit_shared`'s factor for every kind (:data:`KEYS`, those the networks do not use
    too: it describes the network around the kernels, not a kind); ``"per_kind"``, :func:`fit_factors`.

    >>> alike = [({"linear": 1.0}, 0.0, 1.25), ({"dense_conv": 2.0}, 0.0, 2.5)]
    >>> shared = fit(alike, "shared", weight=0.0)
    >>> round(shared["linear"], 6), round(shared["conv3d"], 6), fit(alike, "none")
    (1.25, 1.25, {})
    """
    if how not in FITS:
        raise ConvcostError(f"unknown fit {how!r}; known: {', '.join(FITS)}")
    if how == "none":
        _columns(samples, "fit", bound)  # bad samples are an error whichever fit is asked
        return {}
    if how == "shared":
        return dict.fromkeys(KEYS, fit_shared(samples, weight, bound))
    return fit_factors(samples, weight, bound)


def held_out(samples, groups, weight: float | None = None, bound: float = BOUND) -> dict:
    """Per fit of :data:`FITS`, the mean relative error of the samples ``(parts, fixed, measured)`` when each
    group's (``groups[i]``: the network of sample ``i``) are predicted by that fit on the other groups' samples
    (``"none"``: the error with no factor at all).

    >>> same = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 2.0}, 0.0, 4.0)]  # two networks, both twice as slow
    >>> {how: round(e, 3) for how, e in held_out(same, ["a", "b"], weight=0.0).items()}
    {'none': 0.5, 'shared': 0.0, 'per_kind': 0.0}
    """
    samples, groups = list(samples), list(groups)
    if len(samples) != len(groups):
        raise ConvcostError(f"held_out: {len(samples)} samples but {len(groups)} groups")
    _columns(samples, "held_out", bound)
    errors = {how: [] for how in FITS}
    for group in dict.fromkeys(groups):
        rest = [s for s, g in zip(samples, groups) if g != group]
        for how in FITS:
            factors = fit(rest, how, weight, bound) if rest else {}
            errors[how] += [abs(corrected(parts, fixed, factors) / measured - 1)
                            for (parts, fixed, measured), g in zip(samples, groups) if g == group]
    return {how: float(np.mean(e)) for how, e in errors.items()}


def choose(errors: dict) -> str:
    """The fit of :data:`FITS` to keep, given each one's held-out error (:func:`held_out`). A fit with factors is a
    candidate only where its error is at most :data:`CLEARLY` times no factor's (factors earn their place against
    the plain prediction, by a margin wider than a few networks' noise); of the candidates, the lower error wins,
    the simpler on a tie; none without a candidate. Between the two fits with factors no margin is asked: the
    per-kind factors are held toward the shared one (:func:`fit_factors`), so they predict networks left out better
    only by what the kinds really differ in (a zoo run, two threads, rescored: with the per-kind factors it kept,
    median error 18% at batch 1; with one factor of 1.30 to 1.35 for every kind, 23 to 25%).

    >>> choose({"none": 0.12, "shared": 0.05, "per_kind": 0.11})   # every network alike too fast
    'shared'
    >>> choose({"none": 0.12, "shared": 0.05, "per_kind": 0.045})  # and the kinds differ a little besides
    'per_kind'
    >>> choose({"none": 0.10, "shared": 0.09, "per_kind": 0.09})   # nothing clearly better than none
    'none'
    """
    if not (isinstance(errors, dict) and set(errors) == set(FITS)
            and all(isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e) and e >= 0
                    for e in errors.values())):
        raise ConvcostError(f"choose: errors={errors!r} must map every fit ({', '.join(FITS)}) to an error >= 0")
    candidates = [how for how in FITS[1:] if errors[how] <= CLEARLY * errors[FITS[0]]]
    return min(candidates, key=lambda how: errors[how]) if candidates else FITS[0]  # min keeps the first on a tie


def checked(samples, groups, weight: float | None = None, bound: float = BOUND) -> tuple:
    """``(fit, held-out errors, factors)``: the fit :func:`choose` keeps by :func:`held_out`, and its factors
    fitted on every sample (:func:`fit`). With one group there is nothing to hold out: the factors per kind are
    fitted, and the errors are ``{}``.

    >>> slow = [({"linear": 1.0}, 0.0, 1.3), ({"dense_conv": 1.0}, 0.0, 1.2), ({"pooling": 1.0}, 0.0, 1.25)]
    >>> how, errors, factors = checked(slow, ["a", "b", "c"], weight=0.0)   # each network runs one kind
    >>> {k: round(e, 3) for k, e in errors.items()}   # left out, its kind unseen: per kind is the shared factor
    {'none': 0.199, 'shared': 0.041, 'per_kind': 0.041}
    >>> how, round(factors["pooling"], 3)             # a tie: the simpler fit
    ('shared', 1.247)
    """
    samples, groups = list(samples), list(groups)
    if len(samples) != len(groups):
        raise ConvcostError(f"checked: {len(samples)} samples but {len(groups)} groups")
    if len(set(groups)) < 2:
        return "per_kind", {}, fit_factors(samples, weight, bound)
    errors = held_out(samples, groups, weight, bound)
    how = choose(errors)
    return how, errors, fit(samples, how, weight, bound)


def fit_checked(samples, groups, weight: float | None = None, bound: float = BOUND) -> dict:
    """The factors of the fit that predicts each group (a network) from the others clearly better than none, the
    better of two that do (:func:`checked`); ``{}`` (every factor 1) where none does.

    >>> same = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 2.0}, 0.0, 4.0)]   # what one network says, the other does
    >>> round(fit_checked(same, ["a", "b"], weight=0.0)["linear"], 6)
    2.0
    >>> apart = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 1.0}, 0.0, 0.5)]  # what one network says, the other denies
    >>> fit_checked(apart, ["a", "b"], weight=0.0)
    {}
    """
    return checked(samples, groups, weight, bound)[2]


def _weight(weight: float | None) -> float:
    return PRIOR_WEIGHT if weight is None else weight


def _kinds(samples) -> list:
    """The keys (:data:`KEYS`) the samples use, in their order."""
    return [k for k in KEYS if any(parts.get(k, 0) > 0 for parts, _, _ in samples)]


def _columns(samples, where: str, bound: float) -> tuple:
    """``(a, b)``: per sample, each used kind's uncorrected seconds over the measured ones, and ``1 - fixed /
    measured``; a ConvcostError for no sample, an unknown kind, a measured time that is not a positive number or a
    bound outside ``(0, 1]``."""
    samples = list(samples)
    if not samples:
        raise ConvcostError(f"{where}: needs at least one measured network")
    if not (isinstance(bound, (int, float)) and 0 < bound <= 1):
        raise ConvcostError(f"{where}: bound={bound!r} must be in (0, 1]")
    for parts, _fixed, measured in samples:
        unknown = sorted(set(parts) - set(KEYS))
        if unknown:
            raise ConvcostError(f"{where}: unknown kinds {unknown}; known: {', '.join(KEYS)}")
        if not (isinstance(measured, (int, float)) and math.isfinite(measured) and measured > 0):
            raise ConvcostError(f"{where}: measured={measured!r} must be a positive number of seconds")
    kinds = _kinds(samples)
    a = np.array([[parts.get(k, 0.0) / measured for k in kinds] for parts, _, measured in samples]).reshape(
        len(samples), len(kinds))
    b = np.array([1 - fixed / measured for _, fixed, measured in samples])
    return a, b


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
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value > 0):
                raise ConvcostError(f"{where}: network[{phase!r}][{kind!r}]={value!r} must be a positive finite "
                                    "number")
