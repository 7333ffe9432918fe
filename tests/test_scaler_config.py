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
