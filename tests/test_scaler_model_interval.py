"""A model trained at one control interval, served by a scaler that ticks at another, is
flagged: the interval is one of its inputs and its load trends count intervals back."""

from __future__ import annotations

import json

import pytest
from scaler_support import config, fake_cluster, save_tiny_model, scaler_for

from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.scaler.clock import FakeClock
from gnnrl.scaler.model_source import ModelSource, load_model_dir

SVC = {"cartservice": (1, 10)}


def test_a_saved_model_records_the_interval_it_was_trained_at(tmp_path):
    model = PPO_GNN.load(save_tiny_model(tmp_path / "m"))
    assert model.trained_interval_s == 15.0
    model.trained_interval_s = 30.0
    model.save(tmp_path / "m30")
    assert json.loads((tmp_path / "m30" / "config.json").read_text())[
        "control_interval_s"] == 30.0
    assert PPO_GNN.load(tmp_path / "m30").trained_interval_s == 30.0


def test_a_model_saved_before_the_field_existed_reads_as_trained_at_15_s(tmp_path):
    path = save_tiny_model(tmp_path / "old")
    meta = json.loads((path / "config.json").read_text())
    del meta["control_interval_s"]
    (path / "config.json").write_text(json.dumps(meta))
    assert load_model_dir(path).policy.trained_interval_s == 15.0


def _mismatch_events(scaler) -> list[tuple[str, str]]:
    return [(kind, message) for kind, reason, _, message in scaler.events.recorded
            if reason == "ModelIntervalMismatch"]


@pytest.mark.parametrize("interval_s", [15.0, 30.0])
def test_the_scaler_warns_when_it_ticks_at_another_interval_than_the_model_learned(
        kube, tmp_path, caplog, interval_s):
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    path = save_tiny_model(tmp_path / "model")
    cfg = config(SVC, interval_s=interval_s, model=str(path))
    clock = FakeClock()
    with caplog.at_level("WARNING", logger="gnnrl.scaler"):
        scaler = scaler_for(kube, cfg, clock, models=ModelSource(cfg.model, "", clock))
        scaler.tick()
        scaler.tick()
    events = _mismatch_events(scaler)
    if interval_s == 15.0:
        assert events == []
        return
    assert len(events) == 1, "one warning per model loaded, not one per tick"
    kind, message = events[0]
    assert kind == "Warning"
    assert "trained at a 15 s control interval" in message
    assert "ticks every 30 s" in message and "interval_s: 15" in message
    assert any("trained at a 15 s" in r.getMessage() for r in caplog.records)
