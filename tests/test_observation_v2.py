"""Observation schema v2: each appended column on hand-built graphs, and old models and
observations refused with a message that says what to do."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gnnrl.contracts.observation import (
    DIAL_INDEX,
    GLOBAL,
    GLOBAL_COLUMNS,
    NODE,
    NODE_COLUMNS,
    OBSERVATION_SCHEMA_VERSION,
)
from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN, ObservationSchemaError
from gnnrl.core.envs import DynamicGraphSpace
from gnnrl.core.envs.cluster_view import ClusterView, build_observation
from gnnrl.core.envs.obs_extras import LoadHistory, ObservationContext
from gnnrl.encoders.features import GLOBAL_DIM, NODE_DIM, FeatureScaler
from gnnrl.encoders.graph_batch import ObservationError, obs_to_tensors

SLO = 200.0


def chain(rps=(10.0, 20.0, 5.0), replicas=(2.0, 3.0, 1.0), ready=(2.0, 1.0, 1.0),
          p95=(40.0, 90.0), e2e=150.0, unserved=(0.0, 0.25, 0.0),
          protocol_bc_requests: bool = True) -> ClusterView:
    """a -> b -> c, a is the entry; b has two pods starting."""
    return ClusterView(
        ("a", "b", "c"), replicas=np.array(replicas), ready=np.array(ready),
        cpu_m=np.array([100.0, 300.0, 20.0]), mem_mi=np.array([64.0, 96.0, 32.0]),
        rps_in=np.array(rps), cpu_request_m=np.array([100.0, 200.0, 50.0]),
        min_replicas=np.array([1.0, 1.0, 1.0]), max_replicas=np.array([5.0, 10.0, 3.0]),
        edge_src=np.array([0, 1]), edge_dst=np.array([1, 2]),
        edge_qps=np.array([20.0, 5.0]), edge_p95_ms=np.array(p95),
        edge_err=np.array([0.0, 0.0]), edge_mtls=np.array([1.0, 1.0]),
        edge_requests=np.array([True, protocol_bc_requests]),
        cpu_limit_m=np.array([200.0, 0.0, 100.0]), startup_s=np.array([5.0, 40.0, 12.0]),
        unserved=np.array(unserved), e2e_p95_ms=e2e).check()


def observe(view: ClusterView, context: ObservationContext | None = None,
            history: LoadHistory | None = None, space: DynamicGraphSpace | None = None):
    space = space or DynamicGraphSpace()
    obs, _ = build_observation(view, space, context=context or ObservationContext(SLO),
                               history=history)
    rows = {n: obs["svc_df"][space.node_mapping[n]] for n in view.services}
    return obs, rows


def test_the_layout_is_the_seed_columns_then_the_v2_ones():
    assert OBSERVATION_SCHEMA_VERSION == 2
    assert NODE_COLUMNS[:6] == ("num_pods", "desired_replicas", "cpu_m", "mem_mi", "rx_rps",
                                "tx_rps")
    assert GLOBAL_COLUMNS[:4] == ("total_pods", "avg_cpu_m", "avg_mem_mi", "entry_rps")
    obs, _ = observe(chain())
    assert obs["svc_df"].shape == (20, len(NODE_COLUMNS))
    assert obs["global_feats"].shape == (len(GLOBAL_COLUMNS),)
    assert obs["svc_df"].dtype == obs["global_feats"].dtype == np.float32


def test_ready_and_starting_pods_are_counted_apart():
    _, row = observe(chain())
    assert row["b"][NODE["num_pods"]] == 3
    assert row["b"][NODE["ready"]] == 1 and row["b"][NODE["starting"]] == 2
    assert row["a"][NODE["starting"]] == 0


def test_spec_columns_carry_startup_request_limit_and_bounds():
    _, row = observe(chain())
    b = row["b"]
    assert b[NODE["startup_s"]] == 40 and b[NODE["cpu_request_m"]] == 200
    assert b[NODE["cpu_limit_m"]] == 0  # no limit
    assert (b[NODE["min_replicas"]], b[NODE["max_replicas"]]) == (1, 10)
    assert row["c"][NODE["cpu_limit_m"]] == 100


def test_a_service_without_bounds_shows_its_own_count_as_both_bounds():
    view = chain()
    view = ClusterView(**{**view.__dict__, "min_replicas": np.array([1.0, np.nan, 1.0]),
                          "max_replicas": np.array([5.0, np.nan, 3.0])})
    _, row = observe(view)
    assert row["b"][NODE["min_replicas"]] == row["b"][NODE["max_replicas"]] == 3


def test_unserved_share_is_what_the_service_did_not_serve():
    _, row = observe(chain(unserved=(0.0, 0.25, 1.5)))
    assert row["b"][NODE["unserved"]] == pytest.approx(0.25)
    assert row["c"][NODE["unserved"]] == 1.0  # a share: clipped to 1


def test_slo_share_is_the_largest_incoming_p95_and_the_entry_gets_the_end_to_end():
    _, row = observe(chain(p95=(40.0, 90.0), e2e=150.0))
    assert row["a"][NODE["slo_share"]] == pytest.approx(150 / SLO)
    assert row["b"][NODE["slo_share"]] == pytest.approx(40 / SLO)
    assert row["c"][NODE["slo_share"]] == pytest.approx(90 / SLO)


def test_a_tcp_callee_has_no_request_latency_to_share():
    # Istio records bytes on TCP, not requests: c shows 0 req/s and no latency
    _, row = observe(chain(rps=(10.0, 20.0, 0.0), protocol_bc_requests=False))
    assert row["c"][NODE["slo_share"]] == 0


def test_load_trend_compares_now_with_1_4_and_16_intervals_ago():
    history = LoadHistory()
    trend = [NODE["trend_1"], NODE["trend_4"], NODE["trend_16"]]
    rows = []
    for t in range(17):
        _, row = observe(chain(rps=(10.0 + t, 20.0, 5.0)), history=history)
        rows.append(row)
    np.testing.assert_allclose(rows[0]["a"][trend], [1, 1, 1])  # no past: 1
    np.testing.assert_allclose(rows[1]["a"][trend], [12 / 11, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(rows[16]["a"][trend], [27 / 26, 27 / 23, 27 / 11], rtol=1e-6)
    np.testing.assert_allclose(rows[16]["b"][trend], [1, 1, 1])  # steady


def test_a_service_that_just_appeared_has_no_trend_yet():
    history = LoadHistory()
    space = DynamicGraphSpace()
    observe(chain(), history=history, space=space)
    three = chain()
    four = ClusterView(**{**three.__dict__, "services": ("a", "b", "c", "d"),
                          **{k: np.append(getattr(three, k), v) for k, v in (
                              ("replicas", 1.0), ("ready", 1.0), ("cpu_m", 5.0),
                              ("mem_mi", 10.0), ("rps_in", 50.0), ("cpu_request_m", 50.0),
                              ("min_replicas", 1.0), ("max_replicas", 2.0),
                              ("cpu_limit_m", 0.0), ("startup_s", 1.0), ("unserved", 0.0))}})
    _, row = observe(four, history=history, space=space)
    assert row["d"][NODE["trend_1"]] == 1.0


def test_globals_carry_slack_dial_slo_interval_and_time_of_day():
    context = ObservationContext(SLO, interval_s=30.0, dial=0.8, time_of_day_s=6 * 3600.0)
    obs, _ = observe(chain(e2e=300.0), context=context)
    g = obs["global_feats"]
    assert g[GLOBAL["slo_slack"]] == pytest.approx(1.5)
    assert g[DIAL_INDEX] == pytest.approx(0.8)
    assert (g[GLOBAL["slo_ms"]], g[GLOBAL["interval_s"]]) == (SLO, 30.0)
    assert g[GLOBAL["tod_sin"]] == pytest.approx(1.0)
    assert g[GLOBAL["tod_cos"]] == pytest.approx(0.0, abs=1e-6)


def test_an_unknown_end_to_end_p95_stays_unknown():
    obs, _ = observe(chain(e2e=math.nan))
    assert math.isnan(obs["global_feats"][GLOBAL["slo_slack"]])


@pytest.mark.parametrize("dial", [-0.1, 1.5, math.nan])
def test_a_dial_outside_zero_to_one_is_refused(dial):
    with pytest.raises(ValueError, match="dial"):
        ObservationContext(SLO, dial=dial)


def test_the_model_scales_every_v2_column_into_its_inputs():
    obs, _ = observe(chain())
    t, _ = obs_to_tensors(obs)
    scaler = FeatureScaler()
    assert scaler.node(t["svc_df"]).shape == (1, 20, NODE_DIM)
    assert scaler.glob(t["global_feats"]).shape == (1, GLOBAL_DIM)
    assert torch.isfinite(scaler.node(t["svc_df"])).all()


def test_a_v1_observation_is_refused_naming_the_schema():
    obs, _ = observe(chain())
    old = {**obs, "svc_df": obs["svc_df"][:, :6], "global_feats": obs["global_feats"][:4]}
    with pytest.raises(ObservationError, match="schema v2"):
        obs_to_tensors(old)


def test_a_v1_model_is_refused_with_what_to_do(tmp_path):
    PPO_GNN(config=PolicyConfig(hidden_dim=16)).save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["observation_schema_version"] = 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ObservationSchemaError, match=r"schema v1.*reads schema v2.*retrain"):
        PPO_GNN.load(tmp_path / "m")
