"""The named suites hold what docs/evaluation.md says, and never what training sees."""

from __future__ import annotations

import pytest

from gnnrl.config import ConfigError
from gnnrl.contracts.seeds import EVAL_APP_SEEDS, TRAIN_APP_SEEDS
from gnnrl.evaluation.scenarios import APPS_SUITE_APPS, get_suite
from gnnrl.sim.spec import load_app_spec, validate_app_spec


def test_apps_suite_runs_every_app_on_a_real_window_and_a_flash_crowd():
    suite = get_suite("apps")
    apps = {s.app for s in suite.scenarios}
    assert apps == set(APPS_SUITE_APPS)
    for app in apps:
        traces = sorted(s.trace_label for s in suite.scenarios if s.app == app)
        assert traces == ["flash", "wc98-match-day"]
    native = [s for s in suite.scenarios if s.trace == "worldcup98"]
    assert all(s.steps == 2880 and not s.compress for s in native)  # 12 h at 15 s


def test_generated_apps_of_the_apps_suite_come_from_evaluation_only_seeds():
    seeds = [int(a.split("-")[1]) for a in APPS_SUITE_APPS if a.startswith("generated-")]
    assert seeds and all(s in EVAL_APP_SEEDS and s not in TRAIN_APP_SEEDS for s in seeds)
    for app in APPS_SUITE_APPS:
        validate_app_spec(load_app_spec(app))


def test_unknown_suite_lists_the_known_ones():
    with pytest.raises(ConfigError, match="apps"):
        get_suite("nightly")


def test_forecasting_policies_get_the_trace_before_a_real_window(tmp_path):
    import numpy as np

    from gnnrl.evaluation.runner import run_episode
    from gnnrl.evaluation.scenarios import EvalScenario

    class Recorder:
        name = "recorder"

        def reset(self, env, history_rps=None):
            self.history = history_rps

        def act(self, obs, info):
            return np.zeros(len(info["slot_names"]), dtype=np.int64)

    app = load_app_spec("onlineboutique")
    window = EvalScenario("worldcup98", "static", None, 100.0, start="2d", duration="10m")
    policy = Recorder()
    run_episode(policy, window, 1000, app, tmp_path)
    assert policy.history is not None and len(policy.history) == 2 * 86400 // 15
    assert np.all(np.isfinite(policy.history)) and policy.history.min() >= 0
    synthetic = EvalScenario("flash", "static", 8, 100.0)
    run_episode(policy, synthetic, 1000, app, tmp_path)
    assert policy.history is None
    # a wrapped forecaster (SPEC+graph) still gets it
    from gnnrl.baselines.graph_scaleup import GraphScaleUp

    wrapped = GraphScaleUp(Recorder())
    run_episode(wrapped, window, 1000, app, tmp_path)
    assert wrapped.inner.history is not None and len(wrapped.inner.history) == 2 * 86400 // 15


@pytest.mark.parametrize(("suite", "timing"), [
    ("default", "ideal"), ("quick", "ideal"), ("real", "realistic"), ("stress", "realistic"),
    ("apps", "realistic"),
])
def test_real_traffic_suites_run_with_realistic_cluster_timing(suite, timing):
    assert {s.timing for s in get_suite(suite).scenarios} == {timing}


def test_the_timing_switch_returns_the_idealised_timing():
    from gnnrl.evaluation.scenarios import with_timing

    ideal = with_timing(get_suite("apps"), "ideal")
    assert {s.timing for s in ideal.scenarios} == {"ideal"}
    assert all(s.sim_config().timing == "ideal" for s in ideal.scenarios)
    with pytest.raises(ConfigError, match="timing"):
        with_timing(ideal, "fast")
