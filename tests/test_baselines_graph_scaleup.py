"""Graph-wide scale-up on a hand-built 3-service chain: a -> b -> c."""

from __future__ import annotations

import numpy as np
import pytest

from gnnrl.baselines.graph_scaleup import GraphLoad, GraphScaleUp, GraphScaleUpConfig, latent_load
from gnnrl.config import ConfigError

NAMES = ["a", "b", "c", None]


def chain_obs(received, edge_qps, pods=(2, 2, 2), hpa_desired=(2, 2, 2)):
    """Observation of a -> b -> c (slots 0, 1, 2; slot 3 empty)."""
    svc = np.zeros((4, 6), np.float32)
    for i in range(3):
        svc[i] = [pods[i], hpa_desired[i], 100.0, 64.0, received[i], 0.0]
    edge = np.zeros((3, 7), np.float32)
    edge[0] = [0, 1, 1, edge_qps[0], 20.0, 0.0, 1.0]
    edge[1] = [1, 2, 1, edge_qps[1], 20.0, 0.0, 1.0]
    return {"svc_df": svc, "edge_df": edge, "node_mask": np.array([1, 1, 1, 0], np.int8),
            "edge_mask": np.array([1, 1, 0], np.int8)}


def test_latent_load_follows_the_chain_in_topological_order():
    latent = latent_load(np.array([300.0, 100.0, 50.0]), [(1, 2, 50.0), (0, 1, 100.0)],
                         {(0, 1): 1.0, (1, 2): 0.5})
    assert latent.tolist() == [300.0, 300.0, 150.0]


def test_callees_of_a_throttled_service_are_sized_for_what_it_receives():
    graph = GraphLoad()
    # calm: a receives 100 and serves it all; b gets 1 call per request, c 0.5 per b's
    assert graph.needed_replicas(chain_obs((100, 100, 50), (100, 50)), NAMES).tolist() \
        == [0, 0, 0, 0]
    # surge: a receives 300 but serves only 100 (saturated); b and c look calm
    need = graph.needed_replicas(chain_obs((300, 100, 50), (100, 50)), NAMES)
    # b: 2 pods' worth (HPA formula) for 100 req/s -> 300 req/s coming: 6; c: 150/50 x 2 = 6
    assert need.tolist() == [0, 6, 6, 0]


def test_nothing_is_raised_when_no_caller_is_throttled():
    graph = GraphLoad()
    for load in (100, 150, 220, 90):  # the load moves, but every service serves it all
        need = graph.needed_replicas(chain_obs((load, load, load / 2), (load, load / 2)), NAMES)
        assert not need.any()


def test_the_wrapped_policy_is_raised_never_lowered():
    class Hold:
        name = "hold"

        def reset(self, env):
            pass

        def act(self, obs, info):
            return np.zeros(4, dtype=np.int64)

    policy = GraphScaleUp(Hold())
    info = {"slot_names": NAMES, "min_replicas": [1, 1, 1, 0], "max_replicas": [10, 10, 10, 0]}
    policy.reset(None)
    assert policy.act(chain_obs((100, 100, 50), (100, 50)), info).tolist() == [0, 0, 0, 0]
    moves = policy.act(chain_obs((300, 100, 50), (100, 50)), info)
    assert moves.tolist() == [0, 4, 4, 0] and policy.raised == ["b", "c"]  # +4 pods each
    assert policy.name == "hold+graph"


def test_a_remembered_ratio_fades_when_the_call_pattern_really_changes():
    graph = GraphLoad(GraphScaleUpConfig(decay=0.5))
    graph.needed_replicas(chain_obs((100, 100, 50), (100, 50)), NAMES)
    for _ in range(5):  # a now calls b on a tenth of its requests, unsaturated
        need = graph.needed_replicas(chain_obs((100, 10, 5), (10, 5)), NAMES)
    assert not need.any()


@pytest.mark.parametrize(("field", "value"), [("trigger", 0.9), ("decay", 0.0),
                                              ("min_rps", -1.0)])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        GraphScaleUpConfig(**{field: value})
