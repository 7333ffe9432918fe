"""`SimSource`: the simulator seen through the snapshot schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnrl.config import ConfigError
from gnnrl.data.sim_source import SimSource, SimSourceConfig
from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def run(source: SimSource, n: int):
    return [source.fetch(T0 + pd.Timedelta(seconds=30 * k)) for k in range(n)]


def test_sim_snapshot_has_every_service_and_the_client_edge():
    snap = run(SimSource(SimSourceConfig(trace="constant", peak_rps=50)), 1)[0]
    assert list(snap.nodes.columns) == list(NODE_COLUMNS)
    assert list(snap.edges.columns) == list(EDGE_COLUMNS)
    assert len(snap.nodes) == 11 and snap.is_finite()
    client = snap.edges[snap.edges.source == "loadgenerator"].iloc[0]
    assert client.target == "frontend" and client.protocol == "http"
    frontend = snap.nodes.set_index("service").loc["frontend"]
    assert client.qps == pytest.approx(frontend.rps_in)
    redis = snap.edges[snap.edges.target == "redis-cart"].iloc[0]
    assert redis.protocol == "tcp"


def test_hpa_policy_adds_replicas_when_load_ramps_up():
    source = SimSource(SimSourceConfig(trace="ramp", peak_rps=300, trace_steps=40, seed=3))
    snaps = run(source, 40)
    fe = [s.nodes.set_index("service").loc["frontend"] for s in snaps]
    assert fe[-1].replicas > fe[0].replicas
    util = fe[-1].cpu_m / (fe[-1].ready_replicas * source.app.services["frontend"].cpu_request_m)
    assert util < 1.2  # held near the 70 % target, not saturated


def test_static_policy_never_changes_replicas():
    source = SimSource(SimSourceConfig(policy="static", trace="flash", trace_steps=30))
    reps = np.stack([s.nodes.replicas.to_numpy() for s in run(source, 30)])
    assert (reps == reps[0]).all()


def test_same_seed_gives_the_same_snapshots():
    a = run(SimSource(SimSourceConfig(seed=5)), 3)[-1]
    b = run(SimSource(SimSourceConfig(seed=5)), 3)[-1]
    pd.testing.assert_frame_equal(a.nodes, b.nodes)


@pytest.mark.parametrize(("kwargs", "field"), [({"policy": "vpa"}, "policy"),
                                               ({"peak_rps": 0}, "peak_rps"),
                                               ({"trace_steps": 0}, "trace_steps")])
def test_invalid_sim_source_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        SimSourceConfig(**kwargs)
