"""The in-network correction: its least-squares solver, its fit, where its factors live and how they apply."""

import numpy as np
import pytest

from convcost.errors import ConvcostError
from convcost.latency import Machine
from convcost.latency_network import (
    CALL_FITS,
    CLEARLY,
    FITS,
    KEYS,
    check_call,
    checked,
    choose,
    corrected,
    factor,
    fit,
    fit_call,
    fit_checked,
    fit_factors,
    fit_shared,
    held_out,
)
from convcost.least_squares import nnls, ridge_toward


def test_nnls_finds_a_known_answer_and_respects_its_bounds():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 1.0, size=(12, 3))
    truth = np.array([0.5, 2.0, 3.0])
    assert np.allclose(nnls(a, a @ truth), truth)
    # an answer below the bound: the bound holds, the other coefficients refit
    b = a @ np.array([-1.0, 2.0, 3.0])
    x = nnls(a, b, lower=np.array([0.25, 0.0, 0.0]))
    assert x[0] == pytest.approx(0.25) and (x >= [0.25, 0, 0]).all()
    free = np.linalg.lstsq(a[:, 1:], b - 0.25 * a[:, 0], rcond=None)[0]
    assert np.allclose(x[1:], free)  # the rest is the unconstrained fit with the first one fixed


def test_ridge_toward_a_prior_by_hand():
    # min (x - 4)^2 + w (x - 1)^2: x = (4 + w) / (1 + w); an unseen column keeps its prior
    a = np.array([[1.0, 0.0]])
    for w in (0.0, 1.0, 3.0):
        x = ridge_toward(a, np.array([4.0]), prior=np.array([1.0, 2.0]), weight=w)
        assert x[0] == pytest.approx((4 + w) / (1 + w))
        if w:
            assert x[1] == pytest.approx(2.0)
    with pytest.raises(ConvcostError, match="weight=-1"):
        ridge_toward(a, np.array([4.0]), prior=np.ones(2), weight=-1)


def test_fit_factors_recovers_known_factors():
    rng = np.random.default_rng(1)
    truth = {"dense_conv": 1.3, "depthwise_conv": 1.8, "elementwise": 2.5, "view": 1.0}
    samples = []
    for _ in range(20):
        parts = {k: float(rng.uniform(1e-3, 1e-2)) for k in truth}
        fixed = float(rng.uniform(0, 1e-3))
        samples.append((parts, fixed, corrected(parts, fixed, truth)))
    fitted = fit_factors(samples, weight=0.0)
    assert {k: fitted[k] for k in truth} == pytest.approx(truth, rel=1e-6)
    # a kind no network runs: the shared factor, what the networks say of everything they run
    assert set(fitted) == set(KEYS) and fitted["pooling"] == fitted["conv3d"] == fit_shared(samples, weight=0.0)
    # with the prior, the factors shrink toward one shared factor (these networks are much alike), in order
    held = {k: v for k, v in fit_factors(samples).items() if k in truth}
    assert sorted(held, key=held.get) == sorted(truth, key=truth.get)
    assert all(min(truth.values()) < held[k] < max(truth.values()) for k in truth)
    assert all(abs(held[k] - truth[k]) < abs(1.0 - truth[k]) + 0.5 for k in truth)


def test_fit_factors_holds_a_kind_the_networks_barely_see_near_the_shared_factor():
    # every network 1.5x its prediction; the linear share is tiny, so only the prior speaks for it
    samples = [({"dense_conv": t, "linear": 1e-4 * t}, 0.0, 1.5 * t * (1 + 1e-4)) for t in (1.0, 2.0, 3.0)]
    fitted = fit_factors(samples)
    assert fitted["dense_conv"] == pytest.approx(1.5, rel=0.02)
    assert 1.3 < fitted["linear"] < 1.6  # not dragged to 1, nor anywhere the data cannot see
    with pytest.raises(ConvcostError, match="unknown kinds \\['convolution'\\]"):
        fit_factors([({"convolution": 1.0}, 0.0, 1.0)])
    with pytest.raises(ConvcostError, match="measured=0"):
        fit_factors([({"linear": 1.0}, 0.0, 0)])


def test_factors_are_kept_only_where_they_predict_a_network_left_out():
    rng = np.random.default_rng(2)
    truth = {"dense_conv": 1.3, "depthwise_conv": 1.8, "elementwise": 2.5}

    def networks(noise):  # ten networks of two settings each, measured at the true factors, then scattered
        out, groups = [], []
        for n in range(10):
            for _ in range(2):
                parts = {k: float(rng.uniform(1e-3, 1e-2)) for k in truth}
                out.append((parts, 0.0, corrected(parts, 0.0, truth) * float(rng.lognormal(0.0, noise))))
                groups.append(f"net{n}")
        return out, groups

    # what every network says: the factors predict one left out as well as those they were fitted on, and stay
    consistent, groups = networks(0.0)
    errors = held_out(consistent, groups, weight=0.0)
    assert errors["per_kind"] == pytest.approx(0.0, abs=1e-9) and errors["none"] > 0.4
    assert errors["shared"] > 0.01 and checked(consistent, groups, weight=0.0)[0] == "per_kind"  # 1.3 is not 2.5
    kept = fit_checked(consistent, groups, weight=0.0)
    assert {k: kept[k] for k in truth} == pytest.approx(truth, rel=1e-6)
    # each network its own story, by hand: fitted on the others, no factor predicts it better than none does
    apart = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 1.0}, 0.0, 0.5), ({"linear": 1.0}, 0.0, 1.0)]
    errors = held_out(apart, ["a", "b", "c"], weight=0.0)
    assert errors["shared"] > CLEARLY * errors["none"] and errors["per_kind"] > CLEARLY * errors["none"]
    assert checked(apart, ["a", "b", "c"], weight=0.0)[0] == "none"
    assert fit_checked(apart, ["a", "b", "c"], weight=0.0) == {}
    # one group: nothing to hold out, the factors are fitted
    assert fit_checked(apart[:1], ["a"], weight=0.0)["linear"] == pytest.approx(2.0)
    with pytest.raises(ConvcostError, match="3 samples but 2 groups"):
        held_out(apart, ["a", "b"])


#: the kinds of :func:`_one_kind_each`'s networks, one each
OWN = ("dense_conv", "pointwise_conv", "depthwise_conv", "grouped_conv", "linear", "pooling")


def _one_kind_each(rng, slower):
    """A network per kind of :data:`OWN` (two settings each), each running its own kind and a little elementwise
    work and a view, measured ``slower`` times its uncorrected prediction (and 3% timing noise): the synthetic
    networks are built so, one family of kinds each (a linear head, pooled branches, strided depthwise)."""
    samples, groups = [], []
    for kind in OWN:
        for _ in range(2):
            parts = {kind: float(rng.uniform(1e-3, 1e-2)), "elementwise": float(rng.uniform(1e-4, 1e-3)),
                     "view": 2e-5}
            samples.append((parts, 0.0, slower * sum(parts.values()) * float(rng.lognormal(0.0, 0.03))))
            groups.append(kind)
    return samples, groups


@pytest.mark.parametrize("slower", [1.25, 0.8])
def test_every_network_alike_too_slow_or_too_fast_keeps_its_factor(slower):
    # a network left out runs a kind no other network runs: the per-kind factors fitted without it knew nothing of
    # its kind, and checked against none alone (the rule before) they were dropped with the slowdown they carried
    samples, groups = _one_kind_each(np.random.default_rng(1), slower)
    errors = held_out(samples, groups)
    assert errors["none"] == pytest.approx(abs(1 / slower - 1), rel=0.15)
    assert errors["shared"] < 0.05 and errors["shared"] <= CLEARLY * errors["none"]
    how, same_errors, factors, call = checked(samples, groups)
    assert how != "none" and same_errors == errors and call == 0.0  # no sample counts its calls: no per-call term
    # every kind at the slowdown, the kinds no network runs too: what a whole model's prediction is scaled by
    assert set(factors) == set(KEYS)
    assert all(v == pytest.approx(slower, rel=0.08) for v in factors.values()), factors
    assert fit_checked(samples, groups) == factors
    shared = fit(samples, "shared")
    assert set(shared.values()) == {fit_shared(samples)} and set(shared) == set(KEYS)


def test_networks_that_disagree_keep_no_factor():
    # the same networks, half 1.6x slower than predicted and half 1.6x faster: no factor says that
    samples, groups = _one_kind_each(np.random.default_rng(2), 1.0)
    apart = [(p, f, m * (1.6 if OWN.index(g) % 2 else 1 / 1.6)) for (p, f, m), g in zip(samples, groups)]
    errors = held_out(apart, groups)
    assert errors["shared"] > CLEARLY * errors["none"] and errors["per_kind"] > CLEARLY * errors["none"]
    assert checked(apart, groups)[0] == "none" and fit_checked(apart, groups) == {}


def test_choose_keeps_factors_only_clearly_better_than_none_then_the_better_of_them():
    assert FITS == ("none", "shared", "per_kind")
    e = lambda none, shared, per_kind: {"none": none, "shared": shared, "per_kind": per_kind}  # noqa: E731
    assert choose(e(0.12, 0.05, 0.11)) == "shared"      # per kind 11% and none 12%, as in the last run: shared
    assert choose(e(0.12, 0.05, 0.045)) == "per_kind"   # both clearly better than none: the better one
    assert choose(e(0.12, 0.05, 0.05)) == "shared"      # a tie: the simpler
    assert choose(e(0.10, 0.09, 0.08)) == "per_kind"    # at most CLEARLY times none's: a candidate
    assert choose(e(0.10, 0.09, 0.09)) == "none"        # neither clearly better than none
    assert choose(e(0.0, 0.0, 0.0)) == "shared"         # no error at all: factors cost nothing, the simpler
    for bad in ({"none": 0.1, "shared": 0.1}, e(0.1, -0.1, 0.1), e(0.1, float("nan"), 0.1), e(0.1, True, 0.1)):
        with pytest.raises(ConvcostError, match="must map every fit"):
            choose(bad)
    with pytest.raises(ConvcostError, match="unknown fit 'kinds'"):
        fit([({"linear": 1.0}, 0.0, 1.0)], "kinds")
    with pytest.raises(ConvcostError, match="fit: measured=0"):
        fit([({"linear": 1.0}, 0.0, 0)], "none")
    with pytest.raises(ConvcostError, match="fit_shared: needs at least one"):
        fit_shared([])
    with pytest.raises(ConvcostError, match="bound=2"):
        fit_shared([({"linear": 1.0}, 0.0, 1.0)], bound=2)
    with pytest.raises(ConvcostError, match="checked: 2 samples but 1 groups"):
        checked([({"linear": 1.0}, 0.0, 1.0)] * 2, ["a"])


#: seconds each call adds inside a network in :func:`_networks_with_calls` (what the last zoo run suggested: 17 us)
PER_CALL = 20e-6


def _networks_with_calls(rng, per_call, noise=0.03):
    """Eight networks of two settings each, mobile-like (many small calls) to plain (few large ones), every kind
    1.1x its prediction, plus ``per_call`` seconds per call, and ``noise`` (relative) of timing noise."""
    samples, groups = [], []
    for n in range(8):
        calls_per_ms = rng.uniform(5, 60)  # a plain net's few large calls to a mobile net's many small ones
        for scale in (1.0, float(rng.uniform(2, 4))):
            parts = {"dense_conv": float(rng.uniform(1e-3, 4e-3)) * scale,
                     "depthwise_conv": float(rng.uniform(1e-4, 1e-3)) * scale,
                     "elementwise": float(rng.uniform(3e-4, 1e-3)) * scale, "view": 2e-5}
            calls = int(calls_per_ms * 1e3 * sum(parts.values()) / scale)  # a larger input: the same calls
            measured = (1.1 * sum(parts.values()) + per_call * calls) * float(rng.lognormal(0.0, noise))
            samples.append((parts, 0.0, measured, calls))
            groups.append(f"net{n}")
    return samples, groups


def test_a_known_per_call_cost_is_recovered_and_kept():
    samples, groups = _networks_with_calls(np.random.default_rng(3), PER_CALL)
    errors = held_out(samples, groups)
    assert set(errors) == set(FITS + CALL_FITS)
    # a factor alone cannot say it: a network of many calls is slower than one of few, whatever their kinds
    assert min(errors[how] for how in CALL_FITS) < 0.5 * min(errors[how] for how in FITS[1:])
    how, _, factors, call = checked(samples, groups)
    assert how in CALL_FITS and call == pytest.approx(PER_CALL, rel=0.15)
    assert factors["dense_conv"] == pytest.approx(1.1, rel=0.1)
    # without noise, exactly
    exact, groups = _networks_with_calls(np.random.default_rng(4), PER_CALL, noise=0.0)
    factors, call = fit_call(exact, "shared+call", weight=0.0)
    assert call == pytest.approx(PER_CALL, rel=1e-6) and factors["linear"] == pytest.approx(1.1, rel=1e-6)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_no_per_call_cost_keeps_no_per_call_term(seed):
    samples, groups = _networks_with_calls(np.random.default_rng(seed), 0.0)
    how, errors, factors, call = checked(samples, groups)
    # the term is kept only where it predicts networks left out better; fitted on noise it is near 0 besides
    assert how not in CALL_FITS or call * max(s[3] for s in samples) < 0.03 * min(s[2] for s in samples)
    assert call < 0.1 * PER_CALL and factors["dense_conv"] == pytest.approx(1.1, rel=0.05)
    assert fit_call(samples, "none+call", weight=0.0)[1] > 0  # it is fitted: 1.1x shows as calls where no factor is


def test_a_tie_keeps_the_fit_without_the_per_call_term_and_bad_counts_are_errors():
    # networks 1.25x as slow whatever their calls: the term is 0, and its fit ties with the one without it
    samples = [({"linear": t}, 0.0, 1.25 * t, 0) for t in (1.0, 2.0)] + [({"dense_conv": 1.0}, 0.0, 1.25, 10)]
    assert fit_call(samples, "shared+call", weight=0.0)[1] == pytest.approx(0.0, abs=1e-12)
    # on a tie, the fit without the term wins (and of those, the simpler)
    e = dict.fromkeys(FITS + CALL_FITS, 0.1) | {"none": 0.2}
    assert choose(e) == "shared" and choose(e | {"none+call": 0.09}) == "none+call"
    assert choose(e | {"none+call": 0.17}) == "shared"   # not better than the others
    for bad in ({"none": 0.1, "shared": 0.1, "per_kind": 0.1, "shared+call": 0.05}, None, [0.1]):  # some call fits
        with pytest.raises(ConvcostError, match="must map every fit"):
            choose(bad)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ConvcostError, match=f"calls={bad!r} must be a count of calls, an integer >= 0"):
            fit_call([({"linear": 1.0}, 0.0, 1.0, bad)], "shared+call")
    with pytest.raises(ConvcostError, match="must be \\(parts"):
        held_out([({"linear": 1.0}, 0.0)], ["a"])
    with pytest.raises(ConvcostError, match="unknown fit 'per_call'"):
        fit_call(samples, "per_call")
    with pytest.raises(ConvcostError, match="unknown fit 'shared\\+call'.*fit_call"):
        fit(samples, "shared+call")


def test_the_per_call_term_is_checked_and_round_trips(tmp_path):
    m = Machine("m", 1e9, 1e9, network_call={"inference": 1.7e-5, "training": 0.0})
    m.save(tmp_path / "m.json")
    assert Machine.load(tmp_path / "m.json") == m and Machine("m", 1e9, 1e9).network_call == {}
    for bad, rule in (({"inference": -1e-6}, "\\['inference'\\]=-1e-06 must be a finite number of seconds"),
                      ({"inference": float("nan")}, "=nan must be a finite number"),
                      ({"inference": True}, "=True must be"),
                      ({"backward": 1e-6}, "network_call phase 'backward' unknown"),
                      ([1e-6], "network_call=\\[1e-06\\] must be a dict")):
        with pytest.raises(ConvcostError, match=rule):
            Machine("m", 1e9, 1e9, network_call=bad)
        with pytest.raises(ConvcostError, match=rule):
            check_call("where", bad)


def test_machine_network_factors_are_checked_and_round_trip(tmp_path):
    m = Machine("m", 1e9, 1e9, network={"inference": {"dense_conv": 1.2, "view": 1.5}, "training": {"linear": 0.9}})
    path = tmp_path / "m.json"
    m.save(path)
    assert Machine.load(path) == m and Machine.load(path).network["inference"]["view"] == 1.5
    assert factor(m.network, "inference", "dense_conv") == 1.2 and factor(m.network, "training", "dense_conv") == 1.0
    with pytest.raises(ConvcostError, match="network phase 'backward' unknown"):
        Machine("m", 1e9, 1e9, network={"backward": {}})
    with pytest.raises(ConvcostError, match="unknown kind 'conv'"):
        Machine("m", 1e9, 1e9, network={"inference": {"conv": 1.0}})
    with pytest.raises(ConvcostError, match="\\['linear'\\]=-1"):
        Machine("m", 1e9, 1e9, network={"training": {"linear": -1}})


def test_a_single_layer_and_its_analyses_take_no_in_network_term():
    from convcost import SeparableConv, StandardConv
    from convcost.latency import predict_latency
    from convcost.latency_analysis import break_even_latency, compare_latency

    m = Machine("toy", 1e11, 1e10, overhead=1e-6, efficiency={"depthwise_conv": 0.1})
    inside = m.replace(network={"inference": {"dense_conv": 2.0}}, network_call={"inference": PER_CALL})
    shared = dict(C=64, O=64, K=3, P=1, H=56, W=56)
    layer = SeparableConv(**shared)
    assert predict_latency(layer, inside).seconds == predict_latency(layer, m).seconds
    a, b = compare_latency(StandardConv, SeparableConv, m, shared), compare_latency(StandardConv, SeparableConv,
                                                                                   inside, shared)
    assert (a.value_a, a.value_b, a.cheaper) == (b.value_a, b.value_b, b.cheaper)
    free = {k: v for k, v in shared.items() if k != "C"}
    assert [break_even_latency(StandardConv, SeparableConv, x, "C", free).holds(C=c)
            for x in (m, inside) for c in (1, 64)] == [False, True, False, True]


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("training", [False, True])
def test_a_networks_predicted_time_is_the_corrected_sum_of_its_rows(training):
    from convcost.frontdoor import predict_latency
    from convcost.model_latency import network_parts
    from convcost.torch import networks, profile

    plain = Machine("toy", 1e10, 1e10, overhead=1e-6, view_overhead=5e-7)
    phase = "training" if training else "inference"
    factors = {"dense_conv": 1.3, "pointwise_conv": 0.8, "depthwise_conv": 2.0, "elementwise": 1.7, "linear": 1.1,
               "pooling": 1.4, "view": 3.0}
    m = plain.replace(network={phase: factors})
    report = profile(networks.build("separable"), (2, 3, 32, 32), training=training)
    parts, fixed, calls = network_parts(report, m)
    # the calls that run a kernel: every row but the head's flatten, a view (it pays no per-call term)
    assert calls == len(report.rows) - 1 and [r.op for r in report.rows].count("Flatten") == 1
    assert set(parts) == {"dense_conv", "pointwise_conv", "depthwise_conv", "elementwise", "linear", "view"}
    lat, raw = predict_latency(report, m), predict_latency(report, plain)
    assert lat.seconds == pytest.approx(corrected(parts, fixed, factors), rel=1e-12)
    assert raw.seconds == pytest.approx(sum(parts.values()) + fixed, rel=1e-12)
    # row by row: each row's time is its own uncorrected time times its kind's factor
    for row, before in zip(lat.rows, raw.rows):
        kind = row.kinds[0] if row.kinds else "view"
        assert row.seconds == pytest.approx(factors[kind] * before.seconds, rel=1e-12)
    # the other phase's factors do not apply
    other = plain.replace(network={("inference" if training else "training"): factors})
    assert predict_latency(report, other).seconds == pytest.approx(raw.seconds, rel=1e-12)
    # one shared factor (what calibration keeps where every network is alike too slow): every kernel and view
    # scaled by it
    shared = plain.replace(network={phase: fit([(parts, fixed, 1.25 * sum(parts.values()) + fixed)], "shared",
                                               weight=0.0)})
    assert list(shared.network[phase].values()) == pytest.approx([1.25] * len(KEYS), rel=1e-9)
    assert predict_latency(report, shared).seconds == pytest.approx(1.25 * sum(parts.values()) + fixed, rel=1e-9)


@pytest.mark.parametrize("training", [False, True])
def test_the_per_call_term_adds_to_every_row_and_the_rows_sum_to_the_total(training):
    from convcost.frontdoor import predict_latency
    from convcost.model_latency import network_parts
    from convcost.torch import networks, profile

    plain = Machine("toy", 1e10, 1e10, overhead=1e-6, view_overhead=5e-7)
    phase = "training" if training else "inference"
    factors = {"dense_conv": 1.3, "elementwise": 1.7, "view": 3.0}
    m = plain.replace(network={phase: factors}, network_call={phase: PER_CALL})
    report = profile(networks.build("separable"), (2, 3, 32, 32), training=training)
    parts, fixed, calls = network_parts(report, m)
    lat, without = predict_latency(report, m), predict_latency(report, m.replace(network_call={}))
    # the total: the factors' prediction and the term once per row that runs a kernel (a view, the flatten, none)
    kernels = [r for r in lat.rows if r.kinds]
    assert calls == len(kernels) == len(lat.rows) - 1
    assert lat.seconds == pytest.approx(corrected(parts, fixed, factors, PER_CALL, calls), rel=1e-12)
    assert lat.seconds - without.seconds == pytest.approx(PER_CALL * calls, rel=1e-9)
    assert lat.call_seconds == pytest.approx(PER_CALL * calls, rel=1e-12)
    # per row, and the rows (and the top modules) sum to the total less the optimizer's update
    assert all(r.call == (PER_CALL if r.kinds else 0.0) and r.seconds == pytest.approx(w.seconds + r.call, rel=1e-12)
               for r, w in zip(lat.rows, without.rows))
    assert sum(r.seconds for r in lat.rows) == pytest.approx(lat.seconds - lat.optimizer_seconds, rel=1e-12)
    top = {k: v for k, v in lat.by_module().items() if "." not in k}
    assert sum(top.values()) == pytest.approx(lat.seconds - lat.optimizer_seconds, rel=1e-12)
    d = lat.as_dict()
    assert d["call_seconds"] == lat.call_seconds and d["rows"][0]["call_seconds"] == PER_CALL
    assert ("calls" in lat.summary()) == training
    # the other phase's term does not apply
    other = m.replace(network_call={("inference" if training else "training"): PER_CALL})
    assert predict_latency(report, other).seconds == pytest.approx(without.seconds, rel=1e-12)


def test_every_synthetic_network_profiles_exactly():
    from convcost.torch import networks, profile

    assert set(networks.QUICK_NETWORKS) <= set(networks.NETWORKS)
    for name in networks.NETWORKS:
        report = profile(networks.build(name), (1, 3, 32, 32))
        assert report.exact, name
    with pytest.raises(ConvcostError, match="unknown synthetic network 'resnet18'"):
        networks.build("resnet18")
