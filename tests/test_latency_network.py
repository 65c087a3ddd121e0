"""The in-network correction: its least-squares solver, its fit, where its factors live and how they apply."""

import numpy as np
import pytest

from convcost.errors import ConvcostError
from convcost.latency import Machine
from convcost.latency_network import CLEARLY, corrected, factor, fit_checked, fit_factors, held_out
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
    assert fitted == pytest.approx(truth, rel=1e-6)
    # with the prior, the factors shrink toward one shared factor (these networks are much alike), in order
    held = fit_factors(samples)
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
    with_factors, without = held_out(consistent, groups, weight=0.0)
    assert with_factors == pytest.approx(0.0, abs=1e-9) and without > 0.4
    assert fit_checked(consistent, groups, weight=0.0) == pytest.approx(truth, rel=1e-6)
    # each network its own story, by hand: fitted on the others, the factors miss it further than none does
    apart = [({"linear": 1.0}, 0.0, 2.0), ({"linear": 1.0}, 0.0, 0.5), ({"linear": 1.0}, 0.0, 1.0)]
    with_factors, without = held_out(apart, ["a", "b", "c"], weight=0.0)
    assert with_factors > CLEARLY * without
    assert fit_checked(apart, ["a", "b", "c"], weight=0.0) == {}
    # one group: nothing to hold out, the factors are fitted
    assert fit_checked(apart[:1], ["a"], weight=0.0) == pytest.approx({"linear": 2.0})
    with pytest.raises(ConvcostError, match="3 samples but 2 groups"):
        held_out(apart, ["a", "b"])


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
    parts, fixed = network_parts(report, m)
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


def test_every_synthetic_network_profiles_exactly():
    from convcost.torch import networks, profile

    assert set(networks.QUICK_NETWORKS) <= set(networks.NETWORKS)
    for name in networks.NETWORKS:
        report = profile(networks.build(name), (1, 3, 32, 32))
        assert report.exact, name
    with pytest.raises(ConvcostError, match="unknown synthetic network 'resnet18'"):
        networks.build("resnet18")
