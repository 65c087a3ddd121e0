"""How a whole network's predicted time is corrected: one in-network factor per kernel kind and phase.

A kernel timed alone in a loop and the same kernel inside a network do not take the same time: inside a network
its input comes from the layer before, its weights and code were evicted by the layers before it, and the
framework does work between calls that no single-kernel timing sees. Calibration (``convcost.torch.calibrate``)
times a few small synthetic networks built from ordinary layers (never a model predictions are checked against)
end to end, and fits, per phase (``"inference"``, ``"training"``: a step's forward and backward), one factor per
kernel kind (:data:`convcost.primitives.KINDS`, and ``"view"`` for calls that run no kernel) such that the sum of
the network's per-row predictions, each kernel's time multiplied by its kind's factor, matches the measured
network time (:func:`fit_factors`). A factor never fitted is 1.

The fit is ridge least squares on relative errors (:func:`convcost.least_squares.ridge_toward`) toward one factor
shared by every kind (itself fitted toward 1): a kind the networks barely use keeps a factor near the shared one,
and a busy moment of the machine during one network's timing moves no factor far.

A phase keeps its factors only where they predict networks they were not fitted on clearly better than no factor
(:func:`fit_checked`: each network left out in turn, :data:`CLEARLY`): a few networks against nine kinds can be
fitted closely by factors that describe only those networks (measured, one thread, a training step's: left-out
error 25% with factors, 26% without; its factors, 0.61 to 1.53, put a zoo's plain ResNets and VGG 40-60% over).

>>> parts = [({"dense_conv": 2.0, "elementwise": 1.0}, 0.0, 6.0), ({"dense_conv": 1.0, "elementwise": 2.0}, 0.0, 6.0)]
>>> {k: round(v, 3) for k, v in fit_factors(parts, weight=0.0).items()}
{'dense_conv': 2.0, 'elementwise': 2.0}
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
#: a phase's factors are kept where the networks' mean relative error, each predicted by the factors fitted on the
#: others, is at most this share of their error without factors (:func:`fit_checked`)
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


def fit_factors(samples, weight: float | None = None, bound: float = BOUND) -> dict:
    """Per kind, the factor that makes ``fixed + sum(factor[kind] x parts[kind])`` match the measured seconds of
    every sample ``(parts: kind -> uncorrected seconds, fixed seconds, measured seconds)`` best, relative error
    counted, with a prior of ``weight`` (default :data:`PRIOR_WEIGHT`) per sample toward a shared factor and every
    factor in ``[bound, 1 / bound]``. Only kinds the samples use are returned.

    >>> fit_factors([({"linear": 1.0}, 0.0, 100.0)], weight=0.0)   # no factor goes past its bound
    {'linear': 4.0}
    >>> few = [({"linear": 1.0, "elementwise": 0.01}, 0.0, 1.5)]   # the elementwise share says nearly nothing:
    >>> {k: round(v, 2) for k, v in fit_factors(few).items()}       # it stays near the shared factor
    {'linear': 1.49, 'elementwise': 1.47}
    """
    samples = list(samples)
    weight = PRIOR_WEIGHT if weight is None else weight
    if not samples:
        raise ConvcostError("fit_factors: needs at least one measured network")
    if not (0 < bound <= 1):
        raise ConvcostError(f"fit_factors: bound={bound!r} must be in (0, 1]")
    kinds = [k for k in KEYS if any(parts.get(k, 0) > 0 for parts, _, _ in samples)]
    for parts, _fixed, measured in samples:
        unknown = sorted(set(parts) - set(KEYS))
        if unknown:
            raise ConvcostError(f"fit_factors: unknown kinds {unknown}; known: {', '.join(KEYS)}")
        if not (isinstance(measured, (int, float)) and math.isfinite(measured) and measured > 0):
            raise ConvcostError(f"fit_factors: measured={measured!r} must be a positive number of seconds")
    if not kinds:
        return {}
    a = np.array([[parts.get(k, 0.0) / measured for k in kinds] for parts, _, measured in samples])
    b = np.array([1 - fixed / measured for _, fixed, measured in samples])
    # the prior: one factor shared by every kind (what every network says together), itself held toward 1; each
    # kind then moves from it only as far as the networks pay for it
    shared = ridge_toward(a.sum(axis=1, keepdims=True), b, prior=np.ones(1), weight=weight * len(samples),
                          lower=np.full(1, bound))[0]
    x = ridge_toward(a, b, prior=np.full(len(kinds), min(shared, 1 / bound)), weight=weight * len(samples),
                     lower=np.full(len(kinds), bound))
    return {k: float(min(v, 1 / bound)) for k, v in zip(kinds, x)}


def held_out(samples, groups, weight: float | None = None) -> tuple:
    """``(with factors, without)``: the mean relative error of the samples ``(parts, fixed, measured)`` when each
    group's (``groups[i]``: the network of sample ``i``) are predicted by the factors :func:`fit_factors` fits on the
    other groups' samples, and when predicted with no factor at all.

    >>> same = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 2.0}, 0.0, 4.0)]  # two networks, both twice as slow
    >>> [round(e, 3) for e in held_out(same, ["a", "b"], weight=0.0)]
    [0.0, 0.5]
    """
    samples, groups = list(samples), list(groups)
    if len(samples) != len(groups):
        raise ConvcostError(f"held_out: {len(samples)} samples but {len(groups)} groups")
    fitted, plain = [], []
    for group in dict.fromkeys(groups):
        rest = [s for s, g in zip(samples, groups) if g != group]
        factors = fit_factors(rest, weight) if rest else {}
        for (parts, fixed, measured), g in zip(samples, groups):
            if g == group:
                fitted.append(abs(corrected(parts, fixed, factors) / measured - 1))
                plain.append(abs(corrected(parts, fixed, {}) / measured - 1))
    return float(np.mean(fitted)), float(np.mean(plain))


def fit_checked(samples, groups, weight: float | None = None, bound: float = BOUND) -> dict:
    """:func:`fit_factors` on every sample, if factors fitted without a group predict it clearly better than no
    factor (:func:`held_out`, :data:`CLEARLY`); else ``{}`` (every factor 1). With one group there is nothing to
    hold out: the factors are fitted.

    >>> same = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 2.0}, 0.0, 4.0)]   # what one network says, the other does
    >>> {k: round(v, 6) for k, v in fit_checked(same, ["a", "b"], weight=0.0).items()}
    {'linear': 2.0}
    >>> apart = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 1.0}, 0.0, 0.5)]  # what one network says, the other denies
    >>> fit_checked(apart, ["a", "b"], weight=0.0)
    {}
    """
    samples, groups = list(samples), list(groups)
    if len(set(groups)) > 1:
        with_factors, without = held_out(samples, groups, weight)
        if with_factors > CLEARLY * without:
            return {}
    return fit_factors(samples, weight, bound)


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
