"""Application spec validation: every error names the offending field."""

import pytest

from gnnrl.sim import AppSpecError, load_app_spec, save_app_spec
from gnnrl.sim.onlineboutique import derive_calls


def tiny(**over):
    spec = {
        "name": "tiny", "entry": "a", "slo_p95_ms": 100,
        "services": {
            "a": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 50,
                  "service_time_ms": 2, "startup_s": 10},
            "b": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 50,
                  "service_time_ms": 2, "startup_s": 10},
        },
        "calls": [{"from": "a", "to": "b", "per_request": 2}],
    }
    spec.update(over)
    return spec


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["calls"].append({"from": "a", "to": "ghost", "per_request": 1}),
         "calls[1].to: unknown service 'ghost'"),
        (lambda s: s["calls"].append({"from": "b", "to": "a", "per_request": 1}), "cycle"),
        (lambda s: s["services"]["b"].update(capacity_rps=-5),
         "services.b.capacity_rps: must be > 0"),
        (lambda s: s["services"]["a"].update(min_replicas=5, max_replicas=2),
         "services.a.min_replicas: 5 > max_replicas 2"),
        (lambda s: s["services"]["a"].pop("startup_s"), "services.a.startup_s: required"),
        (lambda s: s["services"]["a"].update(colour="red"), "services.a.colour: unknown field"),
        (lambda s: s.update(entry="nope"), "entry: unknown service 'nope'"),
        (lambda s: s["services"]["a"].update(capacity_rps="fast"),
         "services.a.capacity_rps: expected a number"),
        (lambda s: s["calls"][0].update(mtls=3), "calls[0].mtls: must be within 0..1"),
    ],
)
def test_invalid_app_spec_error_names_the_field(mutate, field):
    spec = tiny()
    mutate(spec)
    with pytest.raises(AppSpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_app_spec(spec)


def test_spec_round_trips_through_yaml_and_json(tmp_path):
    app = load_app_spec("onlineboutique")
    for name in ("app.yaml", "app.json"):
        save_app_spec(app, tmp_path / name)
        again = load_app_spec(tmp_path / name)
        assert again.to_dict() == app.to_dict()


def test_missing_spec_file_is_a_clear_error(tmp_path):
    with pytest.raises(AppSpecError, match="no such file"):
        load_app_spec(tmp_path / "nope.yaml")


def test_onlineboutique_has_11_workloads_and_16_edges_from_upstream():
    app = load_app_spec("onlineboutique")
    assert len(app.services) == 11
    assert len(app.calls) == 16  # 15 service edges + loadgenerator -> frontend
    assert app.services["cartservice"].cpu_request_m == 200  # upstream manifest
    assert app.services["adservice"].startup_s > app.services["frontend"].startup_s  # JVM
    checkout = {c.dst for c in app.calls if c.src == "checkoutservice"}
    assert checkout == {"productcatalogservice", "currencyservice", "cartservice",
                        "shippingservice", "paymentservice", "emailservice"}


def test_calls_per_request_follow_the_locust_task_mix():
    calls = derive_calls()
    # 28 frontend requests (redirects followed) per 19 weighted tasks; 1 is a checkout.
    assert calls[("frontend", "checkoutservice")] == pytest.approx(1 / 28, abs=1e-3)
    assert calls[("frontend", "productcatalogservice")] > calls[("frontend", "currencyservice")]
