"""docs/reliability.md T1 and T2 for training: a NaN reward stops the run with a clear error and
keeps the last good checkpoint; a process killed while writing a checkpoint leaves the
previous one loadable (atomic files, `LATEST` switched last)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from gnnrl.core.agents.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from gnnrl.core.agents.configs import PolicyConfig, PPOConfig
from gnnrl.core.agents.ppo import TrainingNaNError
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.core.agents.train import TrainConfig, train
from gnnrl.testing.apps import write_tiny_app


def tiny_config(tmp_path: Path, updates: int) -> TrainConfig:
    app = write_tiny_app(tmp_path)
    return TrainConfig(
        app=str(app), traces=("constant",), peaks=(100.0,), topology=("static",),
        max_steps=20, seed=3, eval_every=0, checkpoint_every=1,
        ppo=PPOConfig(num_envs=2, num_steps=20, num_minibatches=2, update_epochs=1,
                      total_steps=2 * 20 * updates),
        policy=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16, tgn={"memory_dim": 8}),
    )


class NaNRewardInSecondEnv(gym.Wrapper):
    """The second env's reward turns NaN from its 25th step (after update 1 finished)."""

    created = 0

    def __init__(self, env):
        super().__init__(env)
        self.index = NaNRewardInSecondEnv.created
        NaNRewardInSecondEnv.created += 1
        self.steps = 0

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = super().step(action)
        if self.index == 1 and self.steps >= 25:
            reward = float("nan")
        return obs, reward, terminated, truncated, info


def test_nan_reward_stops_training_with_a_clear_error_and_keeps_the_last_good_checkpoint(
        tmp_path):
    NaNRewardInSecondEnv.created = 0
    out = tmp_path / "run"
    with pytest.raises(TrainingNaNError, match=r"step \d+: non-finite reward from env\(s\) \[1\]"):
        train(tiny_config(tmp_path, updates=4), out, progress=False,
              env_wrapper=NaNRewardInSecondEnv)
    latest = latest_checkpoint(out / "checkpoints")
    assert latest.name == "update_000001"  # the update before the NaN
    ck = load_checkpoint(latest)
    assert ck.state["update"] == 1
    assert all(torch.isfinite(p).all() for p in ck.model.state_dict().values())
    assert not (out / "model").exists()  # no final model from a broken run


def small_checkpoint(root: Path, update: int, seed: int) -> Path:
    torch.manual_seed(seed)
    model = PPO_GNN(config=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16))
    return save_checkpoint(root, update, model, {"rng": torch.get_rng_state()},
                           {"update": update}, keep=2)


WRITERS = ("gnnrl.core.agents.ppo_gnn.atomic_write_bytes",
           "gnnrl.core.agents.ppo_gnn.atomic_write_text",
           "gnnrl.core.agents.checkpoint.atomic_write_bytes",
           "gnnrl.core.agents.checkpoint.atomic_write_text")


@pytest.mark.parametrize("fail_at", range(5))  # weights, config, trainer.pt, state, LATEST
def test_a_checkpoint_write_that_dies_midway_leaves_the_previous_one_loadable(
        tmp_path, monkeypatch, fail_at):
    import gnnrl.config

    root = tmp_path / "checkpoints"
    small_checkpoint(root, 1, seed=0)
    calls = []

    def dying(real):
        def write(path, data):
            calls.append(Path(path).name)
            if len(calls) - 1 == fail_at:
                # what a SIGKILL leaves: part of the bytes in a temporary file, no rename
                Path(f"{path}.partial").write_bytes(b"\0" * 10)
                raise KeyboardInterrupt("killed")
            return real(path, data)
        return write

    for name in WRITERS:
        monkeypatch.setattr(name, dying(getattr(gnnrl.config, name.rsplit(".", 1)[1])))
    with pytest.raises(KeyboardInterrupt):
        small_checkpoint(root, 2, seed=1)
    monkeypatch.undo()
    latest = latest_checkpoint(root)
    assert latest.name == "update_000001"
    assert load_checkpoint(latest).state == {"update": 1}


KILL_SCRIPT = """
import sys, torch
from pathlib import Path
from gnnrl.core.agents.checkpoint import save_checkpoint
from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN
root = Path(sys.argv[1])
model = PPO_GNN(config=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16))
big = {"blob": torch.zeros(2_000_000)}  # 8 MB per checkpoint: the kill lands mid-write
for update in range(1, 10_000):
    save_checkpoint(root, update, model, big, {"update": update}, keep=2)
    if update == 1:
        print("first", flush=True)
"""


def test_killed_while_writing_checkpoints_the_latest_one_still_loads(tmp_path):
    root = tmp_path / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(root)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "first"
        time.sleep(0.7)  # several checkpoints later, somewhere inside one
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    latest = latest_checkpoint(root)
    ck = load_checkpoint(latest)
    assert ck.state["update"] >= 1
    assert np.isfinite(ck.trainer["blob"].numpy()).all()
