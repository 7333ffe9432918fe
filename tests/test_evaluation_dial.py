"""The operator's dial on the serving side: ``gnnrl[:PATH]@D`` specs, the dial written into
a copy of the observation, and ``--dial-sweep`` rows drawing GNNRL's curve."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gnnrl.baselines.hpa import HPAPolicy
from gnnrl.config import ConfigError
from gnnrl.contracts.observation import DEFAULT_DIAL, DIAL_INDEX, GLOBAL_DIM_RAW
from gnnrl.core.agents.dial import NoDialColumnError, dial_label, with_dial
from gnnrl.core.agents.gnnrl_policy import GNNRLPolicy
from gnnrl.evaluation import gnnrl_policy as eval_gnnrl_policy
from gnnrl.evaluation.frontier import frontier_table, matched_table
from gnnrl.baselines.guarded import GuardedPolicy
from gnnrl.evaluation.policies import (
    GNNRLSpec,
    dial_sweep_specs,
    parse_policies,
    make_policy,
    parse_gnnrl_spec,
)


def v2_obs(batch: bool = False) -> dict:
    """A hand-built schema-v2-shaped observation (only what the dial touches is real)."""
    g = np.arange(GLOBAL_DIM_RAW, dtype=np.float32) + 10.0
    return {"svc_df": np.ones((4, 18), np.float32), "num_nodes": 3,
            "global_feats": np.stack([g, g]) if batch else g}


# ------------------------------------------------------------------ spec parsing
@pytest.mark.parametrize("spec, expected, name", [
    ("gnnrl", GNNRLSpec("gnnrl"), "gnnrl"),
    ("gnnrl@0.5", GNNRLSpec("gnnrl", None, 0.5), "gnnrl@0.5"),
    ("gnnrl@0.25", GNNRLSpec("gnnrl", None, 0.25), "gnnrl@0.25"),
    ("gnnrl@1", GNNRLSpec("gnnrl", None, 1.0), "gnnrl@1"),
    ("gnnrl@0", GNNRLSpec("gnnrl", None, 0.0), "gnnrl@0"),
    ("gnnrl:runs/x/best@0.8", GNNRLSpec("gnnrl", "runs/x/best", 0.8), "gnnrl@0.8"),
    ("gnnrl:runs/x/best", GNNRLSpec("gnnrl", "runs/x/best"), "gnnrl"),
    ("gnnrl:runs/a@b/best@0.2", GNNRLSpec("gnnrl", "runs/a@b/best", 0.2), "gnnrl@0.2"),
    ("gnnrl-raw@0.75", GNNRLSpec("gnnrl-raw", None, 0.75), "gnnrl-raw@0.75"),
    ("gnnrl:m@0.3+graph", GNNRLSpec("gnnrl", "m", 0.3, graph=True), "gnnrl@0.3+graph"),
    ("gnnrl-raw+graph", GNNRLSpec("gnnrl-raw", graph=True), "gnnrl-raw+graph"),
    ("gnnrl~120-360-50%/60s@0.25", GNNRLSpec("gnnrl", None, 0.25, guard="120-360-50%/60s"),
     "gnnrl~120-360-50%/60s@0.25"),
    ("gnnrl:m~300.0-360", GNNRLSpec("gnnrl", "m", guard="300-360"), "gnnrl~300-360@0.5"),
    ("gnnrl~120-360-last1/300s@0", GNNRLSpec("gnnrl", None, 0.0, guard="120-360-last1/300s"),
     "gnnrl~120-360-last1/300s@0"),
    ("gnnrl:~/m@0.5", GNNRLSpec("gnnrl", "~/m", 0.5), "gnnrl@0.5"),
    ("hpa", None, None), ("mlp:models/a@b.zip", None, None), ("oracle", None, None),
])
def test_gnnrl_specs_parse_to_kind_path_dial_and_row_name(spec, expected, name):
    parsed = parse_gnnrl_spec(spec)
    assert parsed == expected
    if expected is not None:
        assert parsed.name == name
        assert parse_gnnrl_spec(parsed.spec()) == parsed  # the spec text round-trips


@pytest.mark.parametrize("spec, says", [
    ("gnnrl@1.5", "[0, 1]"), ("gnnrl@-0.1", "[0, 1]"), ("gnnrl@x", "'x'"),
    ("gnnrl@", "''"), ("gnnrl@nan", "[0, 1]"), ("gnnrl@inf", "[0, 1]"),
    ("gnnrl@0.5@0.7", "gnnrl[:PATH][~G][@D]"), ("hpa@0.5", "only gnnrl and gnnrl-raw"),
    ("gnnrl:runs/a@b/best", "a PATH holding one needs an explicit dial"),
    ("mine=gnnrl@2", "'gnnrl@2'"),
])
def test_a_bad_dial_is_a_config_error_naming_spec_and_dial(spec, says):
    with pytest.raises(ConfigError, match=r"dial|gnnrl") as err:
        make_policy(spec)
    assert says in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("dial, label", [(0.0, "0"), (1.0, "1"), (0.25, "0.25"),
                                         (0.5, "0.5"), (1e-5, "0.00001"), (1 / 3, "0.333333")])
def test_dial_labels_are_fixed_point(dial, label):
    assert dial_label(dial) == label


# ------------------------------------------------------------------ the observation copy
@pytest.mark.parametrize("batch", [False, True])
def test_the_dial_is_written_into_a_copy_and_the_callers_observation_is_untouched(batch):
    obs = v2_obs(batch)
    before = {k: np.array(v, copy=True) for k, v in obs.items()}
    out = with_dial(obs, 0.9)
    assert np.all(out["global_feats"][..., DIAL_INDEX] == np.float32(0.9))
    others = [k for k in range(GLOBAL_DIM_RAW) if k != DIAL_INDEX]
    np.testing.assert_array_equal(out["global_feats"][..., others],
                                  before["global_feats"][..., others])
    assert out["global_feats"].dtype == np.float32
    for key, value in obs.items():  # every array of the caller's dict is as it was
        np.testing.assert_array_equal(value, before[key])
    assert out["global_feats"] is not obs["global_feats"]


@pytest.mark.parametrize("dial", [DEFAULT_DIAL, 0.8])
def test_an_observation_without_a_dial_column_is_refused(dial):
    obs = {"global_feats": np.array([1, 2, 3, 4], np.float32)}
    with pytest.raises(NoDialColumnError, match="no dial column"):
        with_dial(obs, dial)


@pytest.mark.parametrize("dial", [1.5, -1.0, float("nan")])
def test_with_dial_refuses_a_dial_outside_0_1(dial):
    with pytest.raises(ValueError, match="dial"):
        with_dial(v2_obs(), dial)


class RecordingModel:
    """Stands for PPO_GNN at the model boundary: records the observations it is given."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def eval(self) -> RecordingModel:
        return self

    def reset_memory(self) -> None:
        pass

    def update_node_mapping(self, names: list) -> None:
        pass

    def act(self, obs: dict, deterministic: bool = False) -> np.ndarray:
        self.seen.append(obs)
        return np.zeros(4, np.int64)


@pytest.mark.parametrize("dial, expected", [(None, DEFAULT_DIAL), (0.0, 0.0), (1.0, 1.0),
                                            (0.3, 0.3)])
def test_the_gnnrl_policy_feeds_the_model_its_dial(dial, expected):
    model = RecordingModel()
    policy = GNNRLPolicy(model) if dial is None else GNNRLPolicy(model, dial=dial)
    obs = v2_obs()
    policy.act(obs, {"slot_names": ["a", "b", "c", None]})
    assert model.seen[0]["global_feats"][DIAL_INDEX] == pytest.approx(expected)
    assert obs["global_feats"][DIAL_INDEX] == DIAL_INDEX + 10.0  # the caller's copy


def test_a_gnnrl_policy_refuses_a_dial_outside_0_1():
    with pytest.raises(ValueError, match="dial"):
        GNNRLPolicy(RecordingModel(), dial=1.2)


@pytest.fixture
def stub_models(monkeypatch):
    """`GNNRLPolicy.load` without a model file: a recording model; returns the loads."""
    loads: list[dict] = []

    def load(cls, path=None, deterministic=True, name="gnnrl", dial=DEFAULT_DIAL):
        loads.append({"path": path, "name": name, "dial": dial})
        return cls(RecordingModel(), deterministic, name, dial)

    monkeypatch.setattr(eval_gnnrl_policy.GNNRLPolicy, "load", classmethod(load))
    return loads


@pytest.mark.parametrize("spec, row, dial, guarded", [
    ("gnnrl", "gnnrl", DEFAULT_DIAL, True),
    ("gnnrl@0.25", "gnnrl@0.25", 0.25, True),
    ("gnnrl:runs/x/best@0.8", "gnnrl@0.8", 0.8, True),
    ("mine=gnnrl:runs/x/best@0.8", "mine", 0.8, True),
    ("gnnrl@1+graph", "gnnrl@1+graph", 1.0, True),
    ("gnnrl-raw@0", "gnnrl-raw@0", 0.0, False),
])
def test_specs_build_the_deployed_policy_at_their_dial(stub_models, spec, row, dial, guarded):
    policy = make_policy(spec)
    assert policy.name == row
    assert isinstance(policy, GuardedPolicy) == guarded
    inner = policy
    while not isinstance(inner, GNNRLPolicy):
        inner = inner.inner
    assert inner.dial == dial
    assert stub_models[-1]["path"] == ("runs/x/best" if "runs/x" in spec else None)


def test_a_guarded_spec_runs_the_model_behind_that_guard_and_reads_as_one_family(stub_models):
    from gnnrl.evaluation.frontier import policy_family
    from gnnrl.hpa import ScalingPolicy

    policy = make_policy("gnnrl~120-360-25%/60s@0.75")
    assert policy.name == "gnnrl~120-360-25%/60s@0.75"
    assert policy.model_guard.scale_down_policy == ScalingPolicy("Percent", 25, 60.0)
    assert make_policy("gnnrl").model_guard.scale_down_policy is None
    assert policy_family(policy.name) == ("gnnrl~120-360-25%/60s", 0.75)
    assert dial_sweep_specs(["gnnrl~300-360"], [0, 0.5]) == ["gnnrl~300-360@0"]
    assert [p.name for p in parse_policies("gnnrl~300-360,gnnrl~300-360@0")] == [
        "gnnrl~300-360@0.5", "gnnrl~300-360@0"]


@pytest.mark.parametrize("spec, says", [
    ("gnnrl-raw~120-360", "only gnnrl (as deployed) takes a model guard"),
    ("gnnrl~120", "expected WINDOW-DELAY[-CAP]"), ("gnnrl~120-360-50/60s", "CAP as P%/Ts"),
    ("gnnrl~120-360-0%/60s", "policies.value"),
])
def test_a_bad_guard_is_a_config_error_naming_the_spec(spec, says):
    with pytest.raises(ConfigError) as err:
        make_policy(spec)
    assert spec in str(err.value) and says in str(err.value)


# ------------------------------------------------------------------ the dial sweep
@pytest.mark.parametrize("policies, rows", [
    (["hpa", "gnnrl"], ["gnnrl@0=gnnrl@0", "gnnrl@1=gnnrl@1"]),
    (["gnnrl:m"], ["gnnrl@0=gnnrl:m@0", "gnnrl@1=gnnrl:m@1"]),
    (["mine=gnnrl:m"], ["mine@0=gnnrl:m@0", "mine@0.5=gnnrl:m@0.5", "mine@1=gnnrl:m@1"]),
    (["gnnrl+graph"], ["gnnrl@0+graph=gnnrl@0+graph", "gnnrl@1+graph=gnnrl@1+graph"]),
    (["gnnrl@0.8", "gnnrl-raw"], ["gnnrl-raw@0=gnnrl-raw@0", "gnnrl-raw@1=gnnrl-raw@1"]),
])
def test_a_dial_sweep_adds_one_row_per_dial_to_every_gnnrl_spec_without_one(policies, rows):
    assert dial_sweep_specs(policies, [0, 0.5, 1]) == rows


@pytest.mark.parametrize("policies, sweep, says", [
    (["hpa"], [0.5], "no gnnrl policy"), (["gnnrl@0.3"], [0.5], "no gnnrl policy"),
    (["gnnrl"], [0.5, 1.5], "dial_sweep: dial must be in [0, 1]"),
])
def test_a_dial_sweep_without_a_gnnrl_row_or_with_a_bad_dial_is_refused(policies, sweep, says):
    with pytest.raises(ConfigError, match=r"dial_sweep") as err:
        dial_sweep_specs(policies, sweep)
    assert says in str(err.value)


class DialStub:
    """A stand-in for the model at the policy boundary: an HPA whose CPU target falls as
    the dial rises (0 -> 90 %, 1 -> 40 %), i.e. a real cost/SLO trade-off along the dial."""

    supports_topology_change = True
    use_graph = True

    def __init__(self, model, deterministic=True, name="gnnrl", dial=DEFAULT_DIAL):
        self.name, self.dial = name, dial
        self.hpa = HPAPolicy(0.9 - 0.5 * dial)

    @classmethod
    def load(cls, path=None, deterministic=True, name="gnnrl", dial=DEFAULT_DIAL):
        return cls(None, deterministic, name, dial)

    def reset(self, env=None):
        self.hpa.reset(env)

    def act(self, obs, info=None):
        return self.hpa.act(obs, info)


def test_dial_sweep_rows_are_gnnrls_curve_in_frontier_and_matched(monkeypatch, tmp_path):
    monkeypatch.setattr(eval_gnnrl_policy, "GNNRLPolicy", DialStub)
    from gnnrl.evaluation.runner import evaluate

    summary = evaluate(["hpa", "gnnrl"], "quick", seeds=1, out_dir=tmp_path, steps=20,
                       hpa_sweep=[50, 90], dial_sweep=[0, 0.5, 1], progress=False)
    assert set(summary["policy"]) == {"hpa", "hpa-50", "hpa-90", "gnnrl", "gnnrl@0",
                                      "gnnrl@1", "oracle"}
    frontier = pd.read_csv(tmp_path / "frontier.csv")
    gnnrl = frontier[frontier["family"] == "gnnrl"]
    assert gnnrl["knob"].tolist() == [0.0, 0.5, 1.0]
    # the safest dial buys more capacity than the cheapest (the stub's trade-off)
    assert gnnrl["replica_hours"].iloc[-1] > gnnrl["replica_hours"].iloc[0]
    matched = pd.read_csv(tmp_path / "matched.csv")
    overall = matched[matched["scenario"] == "all"].set_index("policy")
    # HPA-70's SLO read off GNNRL's dial curve: the cheapest dial point at that SLO
    # (no violations anywhere in 20 steps: the flat curve's cheapest vertex)
    assert overall.loc["hpa", "gnnrl_replica_hours_at_slo"] == pytest.approx(
        min(gnnrl["replica_hours"]))
    md = (tmp_path / "results.md").read_text()
    assert "GNNRL replica-h at same viol." in md
    # every ratio comes with its bootstrap interval (the quick suite has 5 scenarios)
    assert "x HPA at matched SLO (95 % interval)" in md and "P(cheaper than HPA)" in md
    assert (tmp_path / "plots" / "matched_intervals.png").stat().st_size > 1000
    assert "matched_intervals.png" in (tmp_path / "report.html").read_text()
    gnnrl_rows = overall.loc[["gnnrl@0", "gnnrl", "gnnrl@1"]]
    defined = gnnrl_rows["replica_hours_vs_hpa"].notna()
    assert defined.any()
    assert (gnnrl_rows.loc[defined, "replica_hours_vs_hpa_lo"]
            <= gnnrl_rows.loc[defined, "replica_hours_vs_hpa_hi"]).all()
    assert not (tmp_path / "rules.csv").exists()  # no rule ran


def test_rule_settings_next_to_gnnrls_dials_write_the_rules_table(monkeypatch, tmp_path):
    monkeypatch.setattr(eval_gnnrl_policy, "GNNRLPolicy", DialStub)
    from gnnrl.evaluation.runner import evaluate

    evaluate(["headroom", "headroom-50", "gnnrl"], "quick", seeds=1, out_dir=tmp_path,
             steps=20, dial_sweep=[0, 1], progress=False)
    rules = pd.read_csv(tmp_path / "rules.csv")
    assert set(rules["rule"]) == {"headroom"}
    assert set(rules["policy"]) == {"gnnrl@0", "gnnrl", "gnnrl@1"}
    # a later run in the same folder without rules leaves no stale table behind
    evaluate(["hpa", "gnnrl"], "quick", seeds=1, out_dir=tmp_path, steps=20,
             dial_sweep=[0, 1], progress=False, report=False)
    assert not (tmp_path / "rules.csv").exists()


def test_gnnrls_curve_is_read_at_each_policys_violation_rate():
    # GNNRL's dial curve (0, 12) -> (0.04, 6); HPA-70 at 0.02 -> 9 replica-hours there
    points = {"hpa": (0.02, 10.0), "hpa-50": (0.0, 14.0), "gnnrl@0": (0.04, 6.0),
              "gnnrl": (0.02, 9.5), "gnnrl@1": (0.0, 12.0), "mlp": (0.08, 5.0)}
    summary = pd.DataFrame([{"policy": p, "scenario": "a", "seed": s,
                             "slo_violation_rate": v, "replica_hours": c}
                            for p, (v, c) in points.items() for s in (1000, 1001)])
    m = matched_table(summary).set_index("policy")
    assert m.loc["hpa", "gnnrl_replica_hours_at_slo"] == pytest.approx(9.0)
    assert m.loc["hpa-50", "gnnrl_replica_hours_at_slo"] == pytest.approx(12.0)
    assert math.isnan(m.loc["mlp", "gnnrl_replica_hours_at_slo"])
    assert "GNNRL dial curve" in m.loc["mlp", "note"]
    # violations at HPA-70's cost (10) off the dial curve: 0.04 * (12 - 10) / 6
    assert m.loc["gnnrl", "slo_violation_rate_at_hpa70_cost"] == pytest.approx(0.04 / 3)
    f = frontier_table(summary)
    assert f[f["family"] == "gnnrl"]["knob"].tolist() == [0.0, 0.5, 1.0]


def test_without_a_dial_sweep_there_is_no_gnnrl_curve_to_read():
    summary = pd.DataFrame([{"policy": p, "scenario": "a", "seed": 1000,
                             "slo_violation_rate": v, "replica_hours": c}
                            for p, (v, c) in {"hpa": (0.02, 10.0), "gnnrl": (0.01, 9.0)}.items()])
    m = matched_table(summary).set_index("policy")
    assert m["gnnrl_replica_hours_at_slo"].isna().all()
    assert "GNNRL" not in " ".join(m["note"])


def test_the_registered_pyfunc_model_serves_at_its_dial_param():
    from gnnrl.registry.pyfunc_model import OBS_KEYS, act_sequence

    model = RecordingModel()
    batch = {k: np.zeros((3, 4), np.float32) for k in OBS_KEYS}
    batch["global_feats"] = np.ones((3, GLOBAL_DIM_RAW), np.float32)
    batch["num_nodes"] = np.full(3, 4)
    act_sequence(model, batch, dial=0.2)
    assert [o["global_feats"][DIAL_INDEX] for o in model.seen] == pytest.approx([0.2] * 3)
    assert (batch["global_feats"] == 1.0).all()
