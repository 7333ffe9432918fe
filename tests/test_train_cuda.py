"""CUDA smoke tests (skipped without a GPU): train, checkpoint, resume and act on CUDA."""

from __future__ import annotations

import pytest
import torch

from gnnrl.core.agents.checkpoint import latest_checkpoint
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.core.agents.train import train
from gnnrl.testing.observation import make_observation
from tests.test_train_loop import _config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_training_on_cuda_checkpoints_resumes_and_gives_a_cpu_loadable_model(tmp_path):
    cfg = _config(tmp_path, updates=3, update_epochs=2).replace(device="cuda")
    out = tmp_path / "run"
    train(cfg, out, progress=False, stop_after_updates=2)
    ck = latest_checkpoint(out / "checkpoints")
    trainer = torch.load(ck / "trainer.pt", map_location="cpu", weights_only=True)
    assert "cuda_rng" in trainer
    model = PPO_GNN.load(train(cfg, out, progress=False))  # resumed on CUDA, loaded on CPU
    assert model.device.type == "cpu"


def test_act_on_cuda_gives_the_cpu_moves():
    torch.manual_seed(0)
    cpu = PPO_GNN(config=_config_policy()).eval()
    gpu = PPO_GNN(config=_config_policy()).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    obs = make_observation([[2, 3, 150, 100, 50, 80], [1, 1, 40, 60, 30, 0]],
                           [(0, 1, 30, 20, 0.0, 1.0)], max_nodes=4, max_edges=4)
    for _ in range(3):  # the TGN memory is carried on each device
        assert (cpu.act(obs, deterministic=True) == gpu.act(obs, deterministic=True)).all()


def _config_policy():
    from gnnrl.core.agents.configs import PolicyConfig

    return PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16)
