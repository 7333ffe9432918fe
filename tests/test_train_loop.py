"""Training end to end on a tiny app: it learns, resumes exactly, and stops on NaN."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from gnnrl.config import ConfigError
from gnnrl.core.agents.checkpoint import latest_checkpoint
from gnnrl.core.agents.configs import PolicyConfig, PPOConfig
from gnnrl.core.agents.ppo import TrainingNaNError
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.core.agents.train import TrainConfig, train
from gnnrl.testing.apps import write_tiny_app


def _config(tmp_path: Path, updates: int, **ppo) -> TrainConfig:
    app = write_tiny_app(tmp_path)
    ppo_cfg = {"num_envs": 4, "num_steps": 20, "num_minibatches": 2, "update_epochs": 4,
               "learning_rate": 3e-3, **ppo}
    ppo_cfg["total_steps"] = ppo_cfg["num_envs"] * ppo_cfg["num_steps"] * updates
    return TrainConfig(
        app=str(app), traces=("constant",), peaks=(100.0,), topology=("static",),
        max_steps=20, seed=3, eval_every=0, checkpoint_every=1,
        ppo=PPOConfig(**ppo_cfg),
        policy=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16, tgn={"memory_dim": 8}),
    )


def _returns(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["episode_return"] for r in rows if "episode_return" in r]


def test_short_training_run_improves_the_return_on_an_easy_scenario(tmp_path):
    out = tmp_path / "run"
    model_dir = train(_config(tmp_path, updates=24), out, progress=False)
    returns = _returns(out)
    assert len(returns) == 24
    first, last = np.mean(returns[:4]), np.mean(returns[-4:])
    assert last > first + 0.25 * abs(first), (first, last)
    model = PPO_GNN.load(model_dir)
    assert model.config.max_nodes == 4


def assert_resume_is_exact(cfg: TrainConfig, tmp_path: Path) -> None:
    """Train ``cfg`` whole, and cut after 2 updates then resumed: identical weights."""
    whole = PPO_GNN.load(train(cfg, tmp_path / "whole", progress=False))
    train(cfg, tmp_path / "cut", progress=False, stop_after_updates=2)
    assert latest_checkpoint(tmp_path / "cut" / "checkpoints").name == "update_000002"
    resumed = PPO_GNN.load(train(cfg, tmp_path / "cut", progress=False))
    a, b = whole.state_dict(), resumed.state_dict()
    for key in a:
        if key.startswith("tgn.memory.") and key.endswith(("memory", "last_update", "_assoc")):
            continue  # unused PyG buffers (our memory lives in MemoryBank)
        assert torch.equal(a[key], b[key]), key


def test_resumed_training_ends_where_uninterrupted_training_ends(tmp_path):
    assert_resume_is_exact(_config(tmp_path, updates=4, update_epochs=2), tmp_path)


class _PoisonSecondEnv(gym.ObservationWrapper):
    """Env #1 of the pool returns NaN CPU after 25 steps (a broken metrics source)."""

    created = 0

    def __init__(self, env):
        super().__init__(env)
        self.index = _PoisonSecondEnv.created
        _PoisonSecondEnv.created += 1
        self.steps = 0

    def step(self, action):
        self.steps += 1
        return super().step(action)

    def observation(self, obs):
        if self.index == 1 and self.steps >= 25:
            obs = dict(obs)
            obs["svc_df"] = obs["svc_df"].copy()
            obs["svc_df"][0, 2] = np.nan
        return obs


def test_nan_in_observations_stops_training_naming_step_and_env_and_keeps_checkpoint(tmp_path):
    _PoisonSecondEnv.created = 0
    out = tmp_path / "run"
    with pytest.raises(TrainingNaNError, match=r"step \d+.*svc_df.*\[1\]"):
        train(_config(tmp_path, updates=4), out, progress=False, env_wrapper=_PoisonSecondEnv)
    # update 1 (steps 1..20) completed and was checkpointed before the poison at step 25
    assert latest_checkpoint(out / "checkpoints").name == "update_000001"
    assert not (out / "model").exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"seed": 1000}, "seed"), ({"device": "tpu"}, "device"), ({"topology": ("twist",)},
                                                                "topology"),
     ({"peaks": (0.0,)}, "peaks"), ({"max_steps": 0}, "max_steps"),
     ({"learner_processes": 0}, "learner_processes"),
     ({"bc_learning_rate": -1e-3}, "bc_learning_rate"),
     ({"bc_learning_rate": float("nan")}, "bc_learning_rate"),
     ({"bc_move_weight": 0.5}, "bc_move_weight")],
)
def test_invalid_training_config_names_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**changes)


def test_training_config_round_trips_through_json(tmp_path):
    cfg = _config(tmp_path, updates=2)
    path = tmp_path / "c.json"
    path.write_text(cfg.to_json())
    assert TrainConfig.load(path) == cfg


def test_imitation_warm_start_clones_the_hpa_teacher(tmp_path):
    cfg = _config(tmp_path, updates=1).replace(bc_rounds=2, bc_epochs=40)
    out = tmp_path / "bc"
    train(cfg, out, progress=False)
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["update"] == 0
    assert first["bc_accuracy"] > 0.9
    assert first["bc_move_recall"] > 0.7  # the rare scale moves, not just "hold"


def test_imitation_fits_at_its_own_step_size_not_the_fine_tuning_one(tmp_path):
    """A fine-tuning PPO step (1e-5, so 3e-5 for the fit by the old rule) leaves the clone
    of the HPA teacher far from it after a few epochs; ``bc_learning_rate`` fixes that."""

    def first_row(bc_lr: float, name: str) -> dict:
        cfg = _config(tmp_path, updates=1, learning_rate=1e-5).replace(
            bc_rounds=2, bc_epochs=10, bc_learning_rate=bc_lr)
        train(cfg, tmp_path / name, progress=False)
        return json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])

    slow, own = first_row(0.0, "slow"), first_row(3e-3, "own")
    assert own["bc_nll"] < 0.6 * slow["bc_nll"], (own, slow)
    assert own["bc_move_recall"] > slow["bc_move_recall"]


def test_dagger_labels_the_students_own_states_with_the_teachers_moves(tmp_path):
    """DAgger: after the first fit the student drives; its agreement with the teacher on
    the states it reaches is logged, and the refit on the aggregate keeps the clone good."""
    cfg = _config(tmp_path, updates=1).replace(bc_rounds=2, bc_epochs=40, bc_dagger=1)
    out = tmp_path / "dagger"
    train(cfg, out, progress=False)
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert 0.5 < first["bc_dagger_agreement"] <= 1.0
    assert first["bc_accuracy"] > 0.9


def test_student_driven_collection_executes_the_students_moves(tmp_path):
    from gnnrl.baselines.hpa import HPAPolicy
    from gnnrl.core.agents.imitation import collect_teacher
    from gnnrl.core.agents.ppo import RewardNormalizer
    from gnnrl.core.agents.train import Trainer

    tr = Trainer(_config(tmp_path, updates=1), tmp_path / "t", progress=False)
    with torch.no_grad():  # a student that adds a pod whenever it can: not what HPA does
        tr.model.head.actor[-1].bias.fill_(0.0)
        tr.model.head.actor[-1].bias[1] = 50.0
    teacher = collect_teacher(tr.model, tr.pool, lambda: HPAPolicy(0.7), RewardNormalizer(4, 0.99),
                              0.99, rounds=1)
    assert teacher["agreement"] == 1.0
    student = collect_teacher(tr.model, tr.pool, lambda: HPAPolicy(0.7), RewardNormalizer(4, 0.99),
                              0.99, rounds=1, student_drives=True)
    assert student["agreement"] < 1.0
    assert student["actions"].shape == teacher["actions"].shape


def test_warm_start_from_a_champion_resumes_its_weights(tmp_path):
    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    champion = tmp_path / "champion"
    train(_config(tmp_path, updates=1), champion, progress=False)  # any trained model
    source = PPO_GNN.load(champion / "model")
    # a different architecture asked for: the warm start's own architecture wins
    cfg = _config(tmp_path, updates=1).replace(
        warm_start=str(champion / "model"), eval_every=1,
        policy=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=32, tgn={"memory_dim": 8}))
    out = tmp_path / "nightly"
    train(cfg, out, progress=False, stop_after_updates=0)
    start = PPO_GNN.load(out / "best")  # update 0: the starting point itself
    assert start.config == source.config
    for (name, a), (_, b) in zip(source.state_dict().items(), start.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name  # weights and the feature scaling, unchanged
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["update"] == 0 and first["warm_start"] == 1.0
    assert "bc_accuracy" not in first  # bc_dagger 0: no imitation on top of a champion


def test_warm_start_with_dagger_specialises_the_champion_towards_the_teacher(tmp_path):
    """Nightly retraining on a new app: DAgger from the champion's own weights moves it
    towards the teacher on the states it reaches, and keeps its feature scaling."""
    champion = tmp_path / "champion"  # a clone of a lazy HPA (90 % CPU)
    train(_config(tmp_path, updates=1).replace(bc_rounds=2, bc_epochs=40, bc_teacher="hpa-90"),
          champion, progress=False, stop_after_updates=0)
    source = PPO_GNN.load(champion / "model")
    cfg = _config(tmp_path, updates=1).replace(
        warm_start=str(champion / "model"), eval_every=1, bc_teacher="hpa-40", bc_rounds=2,
        bc_epochs=40, bc_dagger=2, bc_learning_rate=3e-3)
    out = tmp_path / "nightly"
    train(cfg, out, progress=False, stop_after_updates=0)
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["warm_start"] == 1.0
    assert first["bc_dagger_agreement"] > first["bc_warm_agreement"] + 0.05, first
    start = PPO_GNN.load(out / "best")  # update 0: the specialised champion
    for name, value in source.state_dict().items():
        if name.startswith("scaler."):
            assert torch.equal(value, start.state_dict()[name]), name
    assert not torch.equal(source.state_dict()["head.actor.0.weight"],
                           start.state_dict()["head.actor.0.weight"])


def test_validation_as_deployed_scores_what_the_guard_lets_through(tmp_path):
    """``validate_as_deployed`` picks ``best/`` on the model behind the scaler's guard: a
    model that removes a pod every step while it may is scored on the bare decisions by default, and
    as held by the guard's scale-down stabilisation (nothing removed within the first
    window) when asked."""
    from gnnrl.contracts.moves import MAX_STEP
    from gnnrl.core.agents.train import Trainer

    scores = {}
    for deployed in (False, True):
        cfg = _config(tmp_path, updates=1).replace(validate_as_deployed=deployed,
                                                   eval_every=1)
        tr = Trainer(cfg, tmp_path / f"run-{deployed}", progress=False)
        with torch.no_grad():
            last = tr.model.head.actor[-1]
            last.weight.zero_()
            last.bias.fill_(-10.0)
            last.bias[MAX_STEP + 1] = 10.0  # remove a pod, everywhere, every step
        scores[deployed] = tr.evaluate()
        tr.pool.close()
    with pytest.raises(ConfigError, match="validate_as_deployed"):
        TrainConfig(validate_as_deployed="yes")  # type: ignore[arg-type]
    bare, guarded = scores[False], scores[True]
    assert bare["eval_hpa/replica_hours"] == guarded["eval_hpa/replica_hours"]
    assert guarded["eval/replica_hours"] > 1.5 * bare["eval/replica_hours"], (bare, guarded)


def test_the_last_update_is_validated_even_when_the_run_is_shorter_than_eval_every(tmp_path):
    """A run of 2 updates with eval_every 10 (the quick pipeline's) used to validate only
    its start (the imitation student), so best/ could never be the trained weights. The
    start and the last update are validated now; updates between the two are not."""
    out = tmp_path / "run"
    cfg = _config(tmp_path, updates=3).replace(eval_every=10, bc_rounds=1, bc_epochs=1,
                                               bc_teacher="hpa")
    train(cfg, out, progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    validated = [r["update"] for r in rows if "eval/return" in r]
    assert validated == [0, 3]
    picked = 3 if rows[-1]["eval/return"] > rows[0]["eval/return"] else 0
    assert json.loads((out / "best" / "config.json").read_text())["extra"]["update"] == picked
