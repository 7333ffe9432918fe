"""ScalerConfig validation and file loading (S18)."""

from __future__ import annotations

import json

import pytest

from gnnrl.config import ConfigError
from gnnrl.scaler.config import ScalerConfig, load_config


@pytest.mark.parametrize("data, field", [
    ({"services": {"a": {"min_replicas": 0, "max_replicas": 3}}}, "min_replicas"),
    ({"services": {"a": {"min_replicas": 4, "max_replicas": 3}}}, "max_replicas"),
    ({"services": {"a": {"min_replicas": 1, "max_replicas": 3, "x": 1}}}, "unknown field"),
    ({"scale_up_window_s": -5}, "scale_up_window_s"),
    ({"scale_down_window_s": 4000}, "scale_down_window_s"),
    ({"hpa": {"scale_down": {"policies": []}}}, "policies"),
    ({"hpa": {"tolerance": "0.1"}}, "tolerance"),
    ({"hpa": {"scale_up": {"policies": [{"kind": "Pods", "value": 4, "period_s": 0}]}}},
     "period_s"),
    ({"hpa": {}, "tolerance": 0.2}, "not both"),
    ({"tick_deadline_s": 20, "interval_s": 15}, "tick_deadline_s"),
    ({"lease_duration_s": 5, "renew_deadline_s": 10}, "lease_duration_s"),
    ({"source": "graphite"}, "source"),
    ({"api_backoff_s": [1, -1]}, "api_backoff_s"),
    ({"feature_max": [1, 2]}, "feature_max"),
    ({"namespace": ""}, "namespace"),
    ({"recover_after_healthy": 0}, "recover_after_healthy"),
    ({"dial": 1.5}, "dial"), ({"dial": -0.1}, "dial"), ({"dial": float("nan")}, "dial"),
    ({"dial": "0.5"}, "dial"), ({"dial": True}, "dial"), ({"dial": None}, "dial"),
])
def test_invalid_values_are_refused_naming_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        ScalerConfig.from_dict(data)


def test_config_round_trips_through_json_and_cli_overrides_win(tmp_path):
    cfg = ScalerConfig(namespace="shop", services={"cart": {"min_replicas": 2,
                                                           "max_replicas": 8}})
    path = tmp_path / "scaler.json"
    path.write_text(cfg.to_json())
    back = load_config(path, mode="active", model=None)
    assert back.services["cart"].max_replicas == 8 and back.mode == "active"
    assert back.replace(mode="shadow") == cfg


def test_yaml_config_and_unreadable_files(tmp_path):
    (tmp_path / "s.yaml").write_text("namespace: shop\nservices:\n  cart: {max_replicas: 4}\n")
    assert load_config(tmp_path / "s.yaml").services["cart"].max_replicas == 4
    (tmp_path / "bad.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match=r"nope\.json"):
        load_config(tmp_path / "nope.json")


@pytest.mark.parametrize("data, field", [
    ({"api_backoff_s": 1}, "api_backoff_s"),
    ({"api_backoff_s": "1"}, "api_backoff_s"),
    ({"services": "frontend"}, "services"),
    ({"services": ["frontend"]}, "services"),
    ({"services": {"frontend": 3}}, "services.frontend"),
    ({"services": {"frontend": {"min_replicas": "1"}}}, r"services\.frontend: min_replicas"),
    ({"interval_s": "15"}, "interval_s"),
    ({"metrics_port": "9090"}, "metrics_port"),
    ({"namespace": 3}, "namespace"),
    ({"model": None}, "model"),
    ({"feature_max": "abcdef"}, "feature_max"),
    ({"hpa": 3}, "hpa"),
    ({"hpa": {"target_utilization": "x"}}, r"hpa\.target_utilization"),
    ({"kiali": "http://kiali"}, "kiali"),
    ({"kiali": {"timeout_s": "a"}}, r"kiali\.timeout_s"),
    ({"kiali": {"url": "kiali:20001"}}, r"kiali\.url"),
    ({"prometheus": {"token": "t", "token_file": "/f"}}, r"prometheus\.token"),
    ({"mlflow": {"ca_bundle": 3}}, r"mlflow\.ca_bundle"),
    ({"mlflow": {"verify": "no"}}, r"mlflow\.verify"),
    ({"graph_max_payload_bytes": 0}, "graph_max_payload_bytes"),
    ({"graph_max_payload_bytes": "8Mi"}, "graph_max_payload_bytes"),
    ({"slo_p95_ms": 0}, "slo_p95_ms"),
    ({"slo_p95_ms": "250ms"}, "slo_p95_ms"),
    ({"startup_s_default": -1}, "startup_s_default"),
    ({"startup_s_default": float("nan")}, "startup_s_default"),
    ({"services": {"frontend": {"startup_s": -5}}}, r"services\.frontend: startup_s"),
    ({"services": {"frontend": {"startup_s": "30s"}}}, r"services\.frontend: startup_s"),
])
def test_wrong_types_are_config_errors_naming_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        ScalerConfig.from_dict(data)


def test_slo_and_start_up_defaults_follow_onlineboutique_and_round_trip():
    cfg = ScalerConfig.from_dict({"services": {"cart": {"startup_s": 20}}})
    assert (cfg.slo_p95_ms, cfg.startup_s_default) == (250.0, 30.0)
    assert cfg.services["cart"].startup_s == 20.0
    assert ScalerConfig.from_json(cfg.to_json()) == cfg


def test_source_credentials_are_config_and_never_shown():
    cfg = ScalerConfig.from_dict({
        "kiali": {"url": "https://kiali:20001/kiali", "token": "s3cret-kiali",
                  "ca_bundle": "/etc/ca.pem", "timeout_s": 3},
        "prometheus": {"token": "s3cret-prom"}, "mlflow": {"token": "s3cret-mlflow"}})
    assert cfg.kiali.source_settings() == {"token": "s3cret-kiali", "token_file": None,
                                           "verify": "/etc/ca.pem", "timeout_s": 3.0}
    shown = repr(cfg) + json.dumps(cfg.redacted())
    assert "s3cret" not in shown and cfg.redacted()["kiali"]["token"] == "***"
    assert ScalerConfig.from_json(cfg.to_json()) == cfg  # the file keeps them


def test_mlflow_settings_become_the_mlflow_clients_environment(tmp_path):
    from gnnrl.scaler.model_source import mlflow_client_env

    token = tmp_path / "token"
    token.write_text("tok-from-file\n")
    assert mlflow_client_env(token_file=str(token), ca_bundle="/ca.pem", timeout_s=7.0) == {
        "MLFLOW_TRACKING_TOKEN": "tok-from-file", "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "7"}
    assert mlflow_client_env(verify=False)["MLFLOW_TRACKING_INSECURE_TLS"] == "true"


@pytest.mark.parametrize("data, dial", [({}, 0.5), ({"dial": 0}, 0.0), ({"dial": 1}, 1.0),
                                        ({"dial": 0.8}, 0.8)])
def test_the_dial_defaults_to_the_middle_and_round_trips(data, dial):
    cfg = ScalerConfig.from_dict(data)
    assert cfg.dial == dial and isinstance(cfg.dial, float)
    assert ScalerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).dial == dial
