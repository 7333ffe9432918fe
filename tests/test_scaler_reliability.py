"""docs/reliability.md rows S1-S20, end to end: the scaler's tick against the HTTP-level fake
Kubernetes API (`gnnrl.testing.k8s_fake`) that the official client talks to, with a fake
clock. One test (or a few) per row, named after the behaviour."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scaler_support import (
    NS,
    ScriptedPolicy,
    StaticModels,
    config,
    edit_model_config,
    fake_cluster,
    graph_of,
    hold,
    nan_output,
    save_tiny_model,
    scale_requests,
    scaler_for,
    static_models,
)

from gnnrl.config import ConfigError
from gnnrl.scaler.clock import FakeClock
from gnnrl.scaler.leader import LeaseElector
from gnnrl.scaler.model_source import ModelSource
from gnnrl.testing.k8s_fake import Fault, FakeKubernetes
from gnnrl.testing.mlflow_fake import MlflowProxy

SVC = {"cartservice": (1, 10)}


class Payload:
    """Stands for code smuggled into a pickle."""


def event_reasons(kube: FakeKubernetes) -> list[str]:
    return [e["reason"] for e in kube.events]


# --------------------------------------------------------------------- S1 - S3: the model
def test_corrupt_model_falls_back_to_hpa_rule_and_keeps_scaling(kube, tmp_path):
    model = save_tiny_model(tmp_path / "m")
    (model / "weights.pt").write_bytes(b"not a torch file")
    fake_cluster(kube, {"cartservice": (2, 1.4)})  # twice the target: the rule scales up
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock, models=ModelSource(str(model), "", clock))
    report = s.tick()
    assert s.metrics.value("gnnrl_scaler_fallback_active", {"reason": "model_load"}) == 1
    assert report.mode == "rule"
    assert kube.scale_writes() == [(NS, "cartservice", 4)]


def test_model_whose_hash_differs_from_the_recorded_one_is_refused(kube, tmp_path):
    model = save_tiny_model(tmp_path / "m")
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock, models=ModelSource(str(model), "ab" * 32, clock))
    s.tick()
    assert s.models.current is None
    assert "sha256" in str(s.models.error)
    assert s.metrics.value("gnnrl_scaler_fallback_active", {"reason": "model_load"}) == 1


def test_model_that_needs_unpickling_of_code_is_refused_by_weights_only(kube, tmp_path):
    import hashlib
    import io

    import torch

    model = save_tiny_model(tmp_path / "m")
    buf = io.BytesIO()
    torch.save({"x": Payload()}, buf)  # an arbitrary object: weights_only refuses to build it
    (model / "weights.pt").write_bytes(buf.getvalue())
    edit_model_config(model, weights_sha256=hashlib.sha256(buf.getvalue()).hexdigest())
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock, models=ModelSource(str(model), "", clock))
    for _ in range(3):
        s.tick()  # never crash-loops
        clock.advance(15)
    assert s.models.current is None and s.models.error.reason == "model_load"
    assert s.metrics.value("gnnrl_scaler_fallback_active", {"reason": "model_load"}) == 1


def test_registry_unreachable_at_start_runs_on_hpa_rule_retries_with_backoff_and_is_ready(
        kube, monkeypatch):
    down = MlflowProxy().start()  # the registry answers 503 to everything
    hits = down.refused
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    try:
        from gnnrl.scaler.model_source import RegistryResolver

        uri = down.url
        fake_cluster(kube, {"cartservice": (2, 1.4)})
        clock = FakeClock()
        models = ModelSource("models:/gnnrl-scaler@champion", "", clock, poll_s=60,
                             backoff_s=(5.0, 300.0),
                             resolver_factory=lambda: RegistryResolver(uri))
        s = scaler_for(kube, config(SVC), clock, models=models)
        assert s.started  # ready on the HPA rule
        assert s.metrics.value("gnnrl_scaler_fallback_active", {"reason": "model_missing"}) == 1
        s.tick()
        assert kube.scale_writes() == [(NS, "cartservice", 4)]
        first = len(hits)
        assert first >= 1
        s.tick()  # within the 5 s backoff: no new attempt
        assert len(hits) == first
        clock.advance(5.0)
        s.tick()
        assert len(hits) > first  # retried after the backoff
    finally:
        down.stop()


def test_model_with_another_observation_schema_is_refused_and_says_why(kube, tmp_path):
    model = save_tiny_model(tmp_path / "m")
    edit_model_config(model, observation_schema_version=999)
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock, models=ModelSource(str(model), "", clock))
    s.tick()
    assert s.models.error.reason == "schema"
    assert "999" in str(s.models.error)
    assert s.metrics.value("gnnrl_scaler_fallback_active", {"reason": "schema"}) == 1


# --------------------------------------------------------------------- S4 - S7: inputs
@pytest.mark.parametrize("rps, reason", [(float("nan"), "non_finite"),
                                         (1e12, "out_of_range")])
def test_bad_features_skip_the_model_and_use_the_hpa_rule(kube, rps, reason):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    policy = ScriptedPolicy(hold)
    s = scaler_for(kube, config(SVC, recover_after_healthy=1), models=static_models(policy),
                   graph=graph_of({"cartservice": rps}))
    report = s.tick()
    assert policy.calls == 0
    assert report.mode == "rule" and report.invalid_observation == reason
    assert s.metrics.value("gnnrl_scaler_invalid_observations_total", {"reason": reason}) == 1
    assert kube.scale_writes() == [(NS, "cartservice", 4)]  # the HPA rule for that tick


def test_bad_features_with_missing_metrics_hold_replicas(kube):
    fake_cluster(kube, {"cartservice": (2, None)})
    policy = ScriptedPolicy(hold)
    s = scaler_for(kube, config(SVC), models=static_models(policy),
                   graph=graph_of({"cartservice": float("nan")}))
    s.tick()
    assert policy.calls == 0 and kube.scale_writes() == []


@pytest.mark.parametrize("output", [nan_output, lambda o: np.full(len(o["node_mask"]), 99),
                                    lambda o: np.zeros(3), lambda o: "garbage"])
def test_policy_output_outside_the_action_space_holds_replicas_that_tick(kube, output):
    fake_cluster(kube, {"cartservice": (3, 1.4)})  # the HPA rule would scale up
    s = scaler_for(kube, config(SVC), models=static_models(ScriptedPolicy(output)),
                   graph=graph_of({"cartservice": 50.0}))
    s.fallback.mode, s.fallback.reason = "model", None  # the model is in charge
    report = s.tick()
    assert report.mode == "hold" and report.fallback_reason == "model_output"
    assert report.services["cartservice"].skipped == "model_output"
    assert kube.scale_writes() == []
    assert s.tick().mode == "rule"  # fallen back (N=1): the HPA rule decides from now on
    assert kube.scale_writes() == [(NS, "cartservice", 6)]


def test_model_writes_stay_within_bounds_and_the_rate_limit(kube):
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    add7 = lambda o: np.full(len(o["node_mask"]), 7)  # noqa: E731 - "add 7" everywhere
    clock = FakeClock()
    s = scaler_for(kube, config({"cartservice": (1, 5)}, recover_after_healthy=1), clock,
                   models=static_models(ScriptedPolicy(add7)),
                   graph=graph_of({"cartservice": 50.0}))
    s.fallback.mode, s.fallback.reason = "model", None
    for _ in range(6):
        s.tick()
        clock.advance(15)
    written = [r for _, _, r in kube.scale_writes()]
    assert written and all(1 <= r <= 5 for r in written)
    assert written[0] <= 2 + 4  # scale-up policy: max(4 pods, 100 %) per 15 s


def test_pods_without_metrics_never_reverse_the_direction(kube):
    kube.add_deployment("cartservice", NS, replicas=4)
    pods = [p["metadata"]["name"] for p in kube.pods(NS)]
    # two pods far above target, two without samples: scale-up with missing pods at 0 %
    for pod in pods[:2]:
        kube.set_pod_usage(pod, NS, {"server": {"cpu": "150m"}, "istio-proxy": {"cpu": "4m"}})
    s = scaler_for(kube, config(SVC))
    report = s.tick()
    assert report.services["cartservice"].desired == 4  # 2 x 154/110 over 4 pods < target
    assert kube.scale_writes() == []


def test_pods_without_metrics_count_at_target_on_scale_down(kube):
    kube.add_deployment("cartservice", NS, replicas=4)
    pods = [p["metadata"]["name"] for p in kube.pods(NS)]
    for pod in pods[:2]:  # two idle pods, two without samples (counted at 100 %)
        kube.set_pod_usage(pod, NS, {"server": {"cpu": "6m"}, "istio-proxy": {"cpu": "5m"}})
    s = scaler_for(kube, config(SVC, scale_down_window_s=0.0))
    report = s.tick()
    assert report.services["cartservice"].desired == 4  # (11+11+110+110)/440 = 55 % -> hold
    assert kube.scale_writes() == []


def test_all_metrics_missing_holds_replicas_and_reports_unable_to_compute(kube):
    fake_cluster(kube, {"cartservice": (3, None)})
    s = scaler_for(kube, config(SVC))
    for _ in range(3):
        report = s.tick()
    assert report.services["cartservice"].skipped == "no_metrics"
    assert kube.scale_writes() == []
    assert event_reasons(kube).count("FailedGetResourceMetric") == 1


# --------------------------------------------------------------------- S8 - S10: the guard
def test_scale_down_is_held_by_stabilization_window(kube):
    fake_cluster(kube, {"cartservice": (4, 0.7)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock)
    kube.set_usage("cartservice", NS, cpu_m_per_pod=0.2 * 110 - 5, mem_mi_per_pod=80)
    for step in (150, 145, 4.9):  # 300 s of low load: down is held (the start seeded 4)
        s.tick()
        clock.advance(step)
    s.tick()  # 299.9 s after the start
    assert kube.scale_writes() == []
    clock.advance(0.1)
    s.tick()  # the seed is now as old as the 300 s window: dropped
    assert kube.scale_writes() == [(NS, "cartservice", 2)]


def test_scale_down_then_up_within_window_never_writes_the_dip(kube):
    fake_cluster(kube, {"cartservice": (4, 0.7)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock)
    for util in (0.2, 0.2, 0.7, 0.7):
        kube.set_usage("cartservice", NS, cpu_m_per_pod=util * 110 - 5, mem_mi_per_pod=80)
        s.tick()
        clock.advance(15)
    assert kube.scale_writes() == []


def _model_write_times(kube, script, ticks=40, replicas=6, **kw):
    """(seconds after the start, replicas) of each write of a scripted model's scaler."""
    fake_cluster(kube, {"cartservice": (replicas, 0.7)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC, recover_after_healthy=1, **kw), clock,
                   models=static_models(ScriptedPolicy(*script)),
                   graph=graph_of({"cartservice": 50.0}))
    s.fallback.mode, s.fallback.reason = "model", None
    times = []
    for tick in range(ticks):
        before = len(kube.scale_writes())
        s.tick()
        times += [(15 * tick, r) for _, _, r in kube.scale_writes()[before:]]
        clock.advance(15)
    return times


@pytest.mark.parametrize("hpa_window_s, model_guard, first_drop_s", [
    (60.0, None, 300),  # the model guard's default window, not the HPA object's 60 s
    (300.0, {"scale_down_window_s": 120.0}, 120),  # an operator's shorter one
])
def test_a_model_s_scale_down_follows_the_model_guard_s_window(kube, hpa_window_s,
                                                                model_guard, first_drop_s):
    remove1 = lambda o: np.full(len(o["node_mask"]), 8)  # noqa: E731 - "remove 1" everywhere
    extra = {"model_guard": model_guard} if model_guard else {}
    times = _model_write_times(kube, [remove1], scale_down_window_s=hpa_window_s, **extra)
    assert times[0] == (first_drop_s, 5)


def test_a_model_s_scale_down_to_its_last_pod_waits_the_last_pods_window(kube):
    remove1 = lambda o: np.full(len(o["node_mask"]), 8)  # noqa: E731
    guard = {"scale_down_window_s": 120.0, "last_pods": 1, "last_pods_window_s": 300.0}
    times = _model_write_times(kube, [remove1], replicas=3, model_guard=guard)
    # 3 -> 2 after 120 s; 2 -> 1 only 300 s after the model last asked for 2 (at 120 s)
    assert times[:2] == [(120, 2), (420, 1)]


def test_a_model_s_scale_down_waits_out_the_delay_after_its_scale_up(kube):
    add1 = lambda o: np.full(len(o["node_mask"]), 1)  # noqa: E731
    remove1 = lambda o: np.full(len(o["node_mask"]), 8)  # noqa: E731
    times = _model_write_times(kube, [add1, remove1])
    assert times[0] == (0, 7)
    assert times[1] == (360, 6)  # held 360 s after the scale-up, then one pod goes


def test_deployment_scaled_to_zero_by_hand_is_left_alone_and_logged_once(kube, caplog):
    fake_cluster(kube, {"cartservice": (0, 1.4)})
    s = scaler_for(kube, config(SVC))
    with caplog.at_level(logging.WARNING, logger="gnnrl.scaler"):
        for _ in range(4):
            report = s.tick()
    assert report.services["cartservice"].skipped == "scaling_disabled"
    assert kube.scale_writes() == []
    assert sum("scaling disabled" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("replicas, expected, reason", [(25, 10, "above_max"),
                                                        (1, 3, "below_min")])
def test_replicas_outside_bounds_move_to_the_bound_next_tick(kube, replicas, expected, reason):
    fake_cluster(kube, {"cartservice": (replicas, 0.7)})
    s = scaler_for(kube, config({"cartservice": (3, 10)}))
    report = s.tick()
    assert kube.scale_writes() == [(NS, "cartservice", expected)]
    assert report.services["cartservice"].reasons == (reason,)


# --------------------------------------------------------------------- S11 - S14: the API
def test_conflict_rereads_the_scale_and_recomputes_from_the_fresh_count(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    apps = __import__("kubernetes").client.AppsV1Api(kube.api_client())

    def graph(deadline):  # someone scales by hand between our read and our write
        apps.patch_namespaced_deployment_scale("cartservice", NS, {"spec": {"replicas": 6}})
        return None

    s = scaler_for(kube, config(SVC), graph=graph)
    s.tick()
    patches = scale_requests(kube, "PATCH", "cartservice")
    ours = [r for r in patches if "metadata" in (r.body or {})]
    assert [r.status for r in ours] == [409, 200]
    # re-decided from the fresh 6 pods at 2x the target (not from the stale 2): 12, clamped
    # to max 10
    assert ours[-1].body["spec"]["replicas"] == 10


def test_second_conflict_in_a_tick_is_not_retried(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    kube.inject(Fault(status=409, method="PATCH", path="/scale$", times=2))
    s = scaler_for(kube, config(SVC))
    report = s.tick()
    assert len(scale_requests(kube, "PATCH")) == 2
    assert report.services["cartservice"].result.status == "conflict"
    assert kube.scale_writes() == []


def test_429_waits_at_least_retry_after_before_retrying(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    kube.inject(Fault(status=429, retry_after_s=7, method="PATCH", path="/scale$"))
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock)
    s.tick()
    assert clock.slept and clock.slept[0] >= 7
    assert kube.scale_writes() == [(NS, "cartservice", 4)]


def test_429_longer_than_the_deadline_abandons_the_write_without_a_tight_loop(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    kube.inject(Fault(status=429, retry_after_s=30, method="PATCH", path="/scale$", times=-1))
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock)
    report = s.tick()
    assert len(scale_requests(kube, "PATCH")) == 1
    assert report.services["cartservice"].result.status == "deadline"


@pytest.mark.parametrize("fault", [Fault(status=503, method="PATCH", path="/scale$", times=-1),
                                   Fault(status=None, delay_s=0.6, method="PATCH",
                                         path="/scale$", times=-1)],
                         ids=["5xx", "timeout"])
def test_timeouts_and_5xx_are_retried_with_bounded_backoff(kube, fault):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    kube.inject(fault)
    clock = FakeClock()
    s = scaler_for(kube, config(SVC, api_backoff_s=(0.1, 0.2)), clock)
    report = s.tick()
    assert len(scale_requests(kube, "PATCH")) == 3  # first try + one per backoff
    assert clock.slept == [0.1, 0.2]
    assert report.services["cartservice"].result.status == "unavailable"


def test_backoff_stops_at_the_tick_deadline(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    kube.inject(Fault(status=503, method="PATCH", path="/scale$", times=-1))
    clock = FakeClock()
    s = scaler_for(kube, config(SVC, api_backoff_s=(5.0, 5.0, 5.0, 5.0)), clock)
    report = s.tick()  # deadline 12 s: two waits of 5 s fit, the third does not
    assert clock.slept == [5.0, 5.0]
    assert report.services["cartservice"].result.status == "deadline"


def test_forbidden_target_is_skipped_without_retries_until_config_changes(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    kube.inject(Fault(status=403, method="PATCH", path="/scale$", times=-1))
    clock = FakeClock()
    cfg = config(SVC)
    s = scaler_for(kube, cfg, clock)
    for _ in range(5):
        s.tick()
        clock.advance(15)
    assert len(scale_requests(kube, "PATCH")) == 1  # no retry storm
    assert len(scale_requests(kube, "GET")) == 1
    assert "FailedRescale" in event_reasons(kube)
    kube.clear_faults()
    # RBAC fixed, config re-applied
    s.update_config(cfg.replace(hpa=cfg.hpa.replace(tolerance=0.05)))
    s.tick()
    assert kube.scale_writes() == [(NS, "cartservice", 4)]


# --------------------------------------------------------------------- S15 - S20: the loop
def test_restart_seeds_history_so_no_scale_down_in_the_first_window(kube):
    fake_cluster(kube, {"cartservice": (5, 0.1)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock)
    for step in (15, 135, 149.9):
        s.tick()
        clock.advance(step)
    s.tick()  # 299.9 s after the start: every recommendation of the window counts the seed
    assert kube.scale_writes() == []
    clock.advance(0.1)
    s.tick()  # 300 s after the start
    assert kube.scale_writes() == [(NS, "cartservice", 1)]


def _elector(kube, clock, who):
    return LeaseElector(kube.api_client(), NS, "gnnrl-scaler", who, clock,
                        lease_duration_s=15, renew_deadline_s=10)


def test_only_the_lease_holder_writes(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    clock = FakeClock()
    a, b = _elector(kube, clock, "a"), _elector(kube, clock, "b")
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    sa = scaler_for(kube, config(SVC), clock, elector=a)
    sb = scaler_for(kube, config(SVC), clock, elector=b)
    rb = sb.tick()
    assert rb.services["cartservice"].skipped == "not_leader" and kube.scale_writes() == []
    sa.tick()
    assert kube.scale_writes() == [(NS, "cartservice", 4)]
    assert kube.lease("gnnrl-scaler", NS)["spec"]["holderIdentity"] == "a"


def test_writes_stop_within_the_renew_deadline_after_losing_the_lease(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    clock = FakeClock()
    a, b = _elector(kube, clock, "a"), _elector(kube, clock, "b")
    assert a.try_acquire_or_renew()
    sa = scaler_for(kube, config(SVC), clock, elector=a)
    kube.inject(Fault(status=503, path="/leases/", times=-1))  # a cannot renew any more
    clock.advance(9)
    assert not a.try_acquire_or_renew() or a.is_leader()  # still inside the deadline
    clock.advance(1.5)  # 10.5 s since the last renew > renew deadline 10 s
    assert not a.is_leader()
    report = sa.tick()
    assert report.services["cartservice"].skipped == "not_leader"
    assert kube.scale_writes() == []
    kube.clear_faults()
    assert not b.try_acquire_or_renew()  # b first observes the record...
    clock.advance(15.1)
    assert b.try_acquire_or_renew()  # ...and takes it once unchanged for the lease duration
    assert kube.lease("gnnrl-scaler", NS)["spec"]["holderIdentity"] == "b"
    assert kube.lease("gnnrl-scaler", NS)["spec"]["leaseTransitions"] == 1


def test_shadow_mode_writes_nothing_and_exports_what_it_would_do(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    s = scaler_for(kube, config(SVC, mode="shadow"))
    report = s.tick()
    assert [r for r in kube.requests if r.method != "GET"] == []
    assert report.services["cartservice"].guarded == 4
    assert report.services["cartservice"].skipped == "shadow"
    assert s.metrics.value("gnnrl_scaler_desired_replicas", {"service": "cartservice"}) == 4
    assert s.metrics.value("gnnrl_scaler_decisions_total",
                           {"service": "cartservice", "source": "rule", "direction": "up"}) == 1


@pytest.mark.parametrize("services, extra, field", [
    ({"cartservice": (5, 2)}, {}, "min_replicas"),
    (SVC, {"scale_down_window_s": -1}, "scale_down_window_s"),
    (SVC, {"mode": "activ"}, "mode"),
    (SVC, {"interval_s": 0}, "interval_s"),
    (SVC, {"max_step": 9}, "max_step"),
    (SVC, {"model_guard": {"scale_down_delay_after_up_s": -5}},
     r"model_guard\.scale_down_delay_after_up_s"),
    (SVC, {"model_guard": {"scale_down_windw_s": 60}}, r"model_guard.*scale_down_windw_s"),
])
def test_invalid_config_refuses_to_start_naming_the_field(services, extra, field):
    with pytest.raises(ConfigError, match=field):
        config(services, **extra)


def test_config_naming_an_unknown_service_refuses_to_start(kube):
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    with pytest.raises(ConfigError, match=r"unknown service.*nosuchservice"):
        scaler_for(kube, config({"cartservice": (1, 5), "nosuchservice": (1, 5)}))


def test_the_same_tick_twice_writes_once(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    s = scaler_for(kube, config(SVC))
    s.tick()
    kube.set_usage("cartservice", NS, cpu_m_per_pod=0.7 * 110 - 5, mem_mi_per_pod=80)
    s.tick()
    assert kube.scale_writes() == [(NS, "cartservice", 4)]


def test_fallback_is_entered_after_n_failures_and_left_after_m_healthy_ticks(kube):
    fake_cluster(kube, {"cartservice": (3, 0.7)})
    policy = ScriptedPolicy(hold, nan_output, nan_output, hold)
    s = scaler_for(kube, config(SVC, fallback_after_failures=2, recover_after_healthy=3),
                   models=static_models(policy), graph=graph_of({"cartservice": 40.0}))
    s.fallback.mode, s.fallback.reason = "model", None
    modes = [s.tick().mode for _ in range(7)]
    # tick 2: one failure (hold that tick); tick 3: second failure -> fallback (and hold);
    # ticks 4-6: healthy x3 -> back to the model from tick 6 on
    assert modes == ["model", "hold", "hold", "rule", "rule", "model", "model"]
    assert event_reasons(kube) == ["FallbackEntered", "FallbackLeft"]
    assert s.metrics.value("gnnrl_scaler_fallback_active", {"reason": "model_output"}) == 0


def test_missing_model_never_recovers_without_a_model(kube):
    fake_cluster(kube, {"cartservice": (3, 0.7)})
    s = scaler_for(kube, config(SVC, recover_after_healthy=1), models=StaticModels(None))
    for _ in range(3):
        assert s.tick().mode == "rule"


def test_a_tick_that_raises_is_logged_counted_and_the_loop_goes_on(kube, caplog):
    from gnnrl.scaler.loop import run_forever

    fake_cluster(kube, {"cartservice": (2, 1.4)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock)
    real_read = s.cluster.read_service
    calls = {"n": 0}

    def flaky_read(scale):  # a bug in the read path on the first tick only
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real_read(scale)

    s.cluster.read_service = flaky_read
    with caplog.at_level(logging.ERROR, logger="gnnrl.scaler"):
        assert run_forever(s, clock, lambda: False, max_ticks=2) == 2
    assert s.metrics.value("gnnrl_scaler_tick_failures_total") == 1
    assert any("tick failed" in r.getMessage() for r in caplog.records)
    assert kube.scale_writes() == [(NS, "cartservice", 4)]  # the second tick worked


def test_config_without_services_refuses_to_start(kube):
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    with pytest.raises(ConfigError, match="services: empty"):
        scaler_for(kube, config({}))
