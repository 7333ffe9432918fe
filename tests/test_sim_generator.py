"""Generated applications: valid by construction, seeded, sized to serve the design peak,
and resolvable by name."""

import numpy as np
import pytest

from gnnrl.config import ConfigError
from gnnrl.contracts.seeds import EVAL_APP_SEEDS, TRAIN_APP_SEEDS
from gnnrl.core.envs import OnlineBoutique
from gnnrl.sim import AppSpecError, BatchedSim, SimConfig, load_app_spec
from gnnrl.sim.generator import (
    GeneratorConfig,
    generate_app,
    model_latency_ms,
    unloaded_latency_ms,
)
from gnnrl.sim.spec import validate_app_spec

SEEDS = range(200)


@pytest.fixture(scope="module")
def apps():
    return [generate_app(s) for s in SEEDS]


def reachable(app):
    seen, todo = {app.entry}, [app.entry]
    while todo:
        s = todo.pop()
        for c in app.calls:
            if c.src == s and c.dst not in seen:
                seen.add(c.dst)
                todo.append(c.dst)
    return seen


def test_every_generated_app_validates_and_reaches_every_service(apps):
    for app in apps:
        assert validate_app_spec(app) is app
        assert reachable(app) == set(app.services), app.name


def test_sizes_span_4_to_20_services(apps):
    sizes = {len(a.services) for a in apps}
    assert min(sizes) == 4 and max(sizes) == 20
    assert len(sizes) == 17


def test_same_seed_gives_an_equal_spec_and_other_seeds_differ():
    assert generate_app(7) == generate_app(7)
    assert generate_app(7).to_dict() == generate_app(7).to_dict()
    assert generate_app(7).to_dict() != generate_app(8).to_dict()


def test_slo_is_within_1_3_to_3_times_the_unloaded_latency(apps):
    for app in apps:
        p95, _ = unloaded_latency_ms(app)
        assert 1.3 * p95 * (1 - 1e-9) <= app.slo_p95_ms <= 3.0 * p95 * (1 + 1e-9), app.name


def test_startups_are_5_to_60_seconds(apps):
    startups = [s.startup_s for a in apps for s in a.services.values()]
    assert min(startups) >= 5.0 and max(startups) <= 60.0


def test_replica_bounds_and_resources_are_consistent(apps):
    for app in apps:
        for s in app.services.values():
            assert 1 <= s.min_replicas <= s.max_replicas <= 30
            assert s.cpu_limit_m >= s.cpu_request_m > 0


def test_unloaded_latency_matches_the_simulator_at_near_zero_load(apps):
    for app in apps[:20]:
        sim = BatchedSim(app, 1, SimConfig(arrival_noise=False, metric_noise=0.0), seed=0)
        sim.reset()
        m = sim.step(np.array([1e-9]))
        p95, mean = unloaded_latency_ms(app)
        assert m.e2e_p95_ms[0] == pytest.approx(p95, rel=1e-6)
        assert m.e2e_mean_ms[0] == pytest.approx(mean, rel=1e-6)


def test_every_app_meets_its_slo_at_the_design_peak_with_max_replicas(apps):
    peak = GeneratorConfig().peak_rps
    for app in apps:
        sim = BatchedSim(app, 1, SimConfig(arrival_noise=False, metric_noise=0.0), seed=0)
        sim.reset(sim.max_replicas)
        m = sim.step(np.array([peak]))
        assert m.e2e_err_rate[0] == 0.0, app.name
        assert m.e2e_p95_ms[0] <= app.slo_p95_ms, app.name
        model, _ = model_latency_ms(app, peak, {s: x.max_replicas
                                                for s, x in app.services.items()})
        assert m.e2e_p95_ms[0] == pytest.approx(model, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 3, 11, 1000])
def test_generated_apps_run_through_the_env_without_nan(seed):
    env = OnlineBoutique(app=f"generated-{seed}", trace="fluctuating", peak_rps=150.0,
                         max_steps=60)
    obs, _ = env.reset(seed=seed)
    assert obs["num_nodes"] == len(env.app.services)
    for _ in range(60):
        obs, reward, terminated, truncated, info = env.step(np.zeros(20, dtype=np.int64))
        assert np.isfinite(reward) and np.isfinite(info["e2e_p95_ms"])
        assert all(np.isfinite(v).all() for v in obs.values() if isinstance(v, np.ndarray))
        if terminated or truncated:
            break


def test_generated_names_resolve_through_load_app_spec():
    assert load_app_spec("generated-3") == generate_app(3)
    assert load_app_spec("generated-3").name == "generated-3"


@pytest.mark.parametrize("name", ["nosuchapp", "generated-x", "generated--1"])
def test_unknown_name_error_lists_the_built_ins(name):
    with pytest.raises(AppSpecError, match="onlineboutique, socialnetwork, generated-<seed>"):
        load_app_spec(name)


def test_train_and_eval_seeds_do_not_overlap():
    assert not set(TRAIN_APP_SEEDS) & set(EVAL_APP_SEEDS)
    assert len(EVAL_APP_SEEDS) > 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_services": 1}, "min_services"),
        ({"min_services": 8, "max_services": 5}, "min_services"),
        ({"peak_rps": 0.0}, "peak_rps"),
        ({"target_util": 1.0}, "target_util"),
        ({"slo_factor": (0.9, 2.0)}, "slo_factor"),
        ({"startup_s": (30.0, 10.0)}, "startup_s"),
    ],
)
def test_bad_generator_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        GeneratorConfig(**kwargs)


def test_negative_seed_is_rejected():
    with pytest.raises(ConfigError, match="seed"):
        generate_app(-1)
