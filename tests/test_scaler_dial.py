"""`ScalerConfig.dial` reaches the model: the scaler's tick feeds it the configured dial."""

from __future__ import annotations

import numpy as np
import pytest
from scaler_support import ScriptedPolicy, config, fake_cluster, graph_of, scaler_for
from scaler_support import static_models

from gnnrl.contracts.observation import DIAL_INDEX

SVC = {"cartservice": (1, 10)}


def _seen_globals(kube, **cfg) -> list[np.ndarray]:
    seen: list[np.ndarray] = []

    def record(obs):
        seen.append(np.array(obs["global_feats"], copy=True))
        return np.zeros(len(obs["node_mask"]), dtype=np.int64)

    s = scaler_for(kube, config(SVC, **cfg), models=static_models(ScriptedPolicy(record)),
                   graph=graph_of({"cartservice": 20.0}))
    s.tick()
    return seen


@pytest.mark.parametrize("dial", [0.0, 0.9])
def test_the_scaler_feeds_the_model_its_configured_dial(kube, dial):
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    default = _seen_globals(kube)
    assert default, "the model was not called at the default dial"
    assert default[0][DIAL_INDEX] == pytest.approx(0.5)
    seen = _seen_globals(kube, dial=dial)
    assert seen and seen[0][DIAL_INDEX] == pytest.approx(dial)
