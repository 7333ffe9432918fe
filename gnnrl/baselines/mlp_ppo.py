"""MLP-PPO in the style of gym-hpa: a peer implementation GNNRL must beat.

gym-hpa (Santos et al., "gym-hpa: Efficient Auto-Scaling via Reinforcement Learning for
Complex Microservice-based Applications in Kubernetes", NOMS 2023) trains Stable-Baselines3
PPO / MaskablePPO with an MLP on a flat vector of per-deployment metrics. Here:
sb3-contrib ``MaskablePPO("MlpPolicy")`` on `OnlineBoutique(use_graph=False)` (the
initial services' 6 node features, flattened), with invalid moves masked through
``env.action_masks()``, trained on the same simulator, reward and traces as GNNRL
(static topology; seeds below 1000, so never on evaluation traces).

Observations are passed through ``log1p`` (features span 0..10^4: pods, millicores,
req/s), a fixed transform saved with the model, so no running statistics are needed.

Its input is a fixed-size vector of the services it was trained on: it cannot take a
service added or removed (the evaluation reports ``n/a`` for those scenarios).

Train (documented command)::

    python -m gnnrl.baselines.mlp_ppo --total-steps 200000 --out models/mlp

writes ``models/mlp/mlp_ppo.zip`` (SB3 format, parameters loaded with
``weights_only=True``), ``mlp_ppo.json`` (config) and ``learning_curve.csv``
(``env_steps, return, slo_violation_rate`` per episode) for the report's learning curves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np

from gnnrl.config import ConfigError, JsonConfig, atomic_write_text
from gnnrl.contracts.seeds import EVAL_SEED_BASE, TRAIN_SEED_LIMIT

if TYPE_CHECKING:
    from gnnrl.core.envs import OnlineBoutique

#: Where a trained model is shipped (``mlp`` without a path loads it).
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models" / "mlp_ppo"
MODEL_FILE = "mlp_ppo.zip"
CONFIG_FILE = "mlp_ppo.json"
CURVE_FILE = "learning_curve.csv"
TRAIN_TRACES = ("diurnal", "flash", "ramp", "fluctuating")


@dataclasses.dataclass
class MLPPPOConfig(JsonConfig):
    """Training settings (SB3 PPO defaults unless said; gym-hpa used the defaults too).

    Attributes:
        total_steps: environment steps to train for.
        seed: training seed (< 1000: evaluation seeds start at 1000).
        episode_steps: control steps per training episode.
        peak_rps: trace peak; None = the evaluation suite's default for the app.
        app: application spec name or path.
        goal_reward: "latency" or "cost" (the env's reward preset).
        n_steps, batch_size, learning_rate, gamma, ent_coef: PPO hyperparameters.
        net_arch: hidden layer sizes of the policy and value MLPs.
    """

    total_steps: int = 200_000
    seed: int = 0
    episode_steps: int = 240
    peak_rps: float | None = None
    app: str = "onlineboutique"
    goal_reward: str = "latency"
    n_steps: int = 2048
    batch_size: int = 64
    learning_rate: float = 3e-4
    gamma: float = 0.99
    ent_coef: float = 0.01
    net_arch: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ConfigError(f"total_steps must be >= 1, got {self.total_steps}")
        if not (0 <= self.seed < TRAIN_SEED_LIMIT):
            raise ConfigError(f"seed must be in 0..{TRAIN_SEED_LIMIT - 1} (evaluation uses "
                              f"{EVAL_SEED_BASE}+), got {self.seed}")
        if self.episode_steps < 8:
            raise ConfigError(f"episode_steps must be >= 8, got {self.episode_steps}")
        if self.n_steps < 2 or self.batch_size < 2:
            raise ConfigError("n_steps and batch_size must be >= 2")
        if self.goal_reward not in ("latency", "cost"):
            raise ConfigError(f"goal_reward must be 'latency' or 'cost', got {self.goal_reward!r}")
        if not self.net_arch or any(int(h) < 1 for h in self.net_arch):
            raise ConfigError(f"net_arch must be positive sizes, got {self.net_arch}")


class Log1pObservation(gym.ObservationWrapper):
    """``log1p`` of the flat observation; forwards ``action_masks`` (gymnasium >= 1.0
    wrappers do not forward unknown attributes)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(0.0, np.log1p(np.float32(3e38)), space.shape,
                                                np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.log1p(np.maximum(observation, 0.0)).astype(np.float32)

    def action_masks(self) -> np.ndarray:
        # wraps the OnlineBoutique env of make_train_env / the evaluation
        return cast("OnlineBoutique", self.env.unwrapped).action_masks()


def make_train_env(cfg: MLPPPOConfig) -> gym.Env:
    """The training env: static-topology scenarios of every synthetic trace kind."""
    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.sim import Scenario, load_app_spec
    from gnnrl.sim.capacity import default_peak_rps

    app = load_app_spec(cfg.app)
    peak = cfg.peak_rps or default_peak_rps(app)
    scenarios = [Scenario(name=k, trace=k, peak_rps=peak) for k in TRAIN_TRACES]
    env = OnlineBoutique(use_graph=False, app=app, scenario=scenarios,
                         max_steps=cfg.episode_steps, goal_reward=cfg.goal_reward)
    return Log1pObservation(env)


class _CurveLogger:
    """Collects (env_steps, return, slo_violation_rate) per finished episode."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float]] = []
        self._ret = 0.0
        self._viol: list[bool] = []

    def callback(self):
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class _Cb(BaseCallback):
            def _on_step(self) -> bool:
                info = self.locals["infos"][0]
                outer._ret += float(self.locals["rewards"][0])
                outer._viol.append(bool(info.get("slo_violated", False)))
                if self.locals["dones"][0]:
                    outer.rows.append((self.num_timesteps, outer._ret,
                                       float(np.mean(outer._viol))))
                    outer._ret, outer._viol = 0.0, []
                return True

        return _Cb()

    def csv(self) -> str:
        lines = ["env_steps,return,slo_violation_rate"]
        lines += [f"{s},{r:.6f},{v:.6f}" for s, r, v in self.rows]
        return "\n".join(lines) + "\n"


def train(cfg: MLPPPOConfig, out: str | Path, progress: bool = True) -> Path:
    """Train MaskablePPO with an MLP; write the model, its config and the learning curve.

    Returns:
        Path of the saved ``mlp_ppo.zip``.
    """
    import torch
    from sb3_contrib import MaskablePPO

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    env = make_train_env(cfg)
    env.reset(seed=cfg.seed)
    model = MaskablePPO(
        "MlpPolicy", env, seed=cfg.seed, n_steps=cfg.n_steps, batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, gamma=cfg.gamma, ent_coef=cfg.ent_coef,
        policy_kwargs={"net_arch": list(cfg.net_arch)}, verbose=0, device="cpu",
    )
    print(f"mlp_ppo: training with {cfg.to_json(indent=None)}", file=sys.stderr)
    log = _CurveLogger()
    model.learn(total_timesteps=cfg.total_steps, callback=log.callback(),
                progress_bar=progress and _has_rich())
    path = out / MODEL_FILE
    model.save(str(path))
    base = cast("OnlineBoutique", env.unwrapped)  # make_train_env's
    meta = {"format": "gnnrl-mlp-ppo", "config": cfg.to_dict(),
            "services": list(base.app.service_names), "observation": "log1p(flat use_graph=False)"}
    atomic_write_text(out / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True))
    atomic_write_text(out / CURVE_FILE, log.csv())
    return path


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class MLPPPOPolicy:
    """A trained MLP-PPO model as a `Policy` (flat observation, fixed set of services)."""

    use_graph = False
    supports_topology_change = False

    def __init__(self, model: Any, services: list[str], name: str = "mlp") -> None:
        self.model = model
        self.services = services
        self.name = name

    @classmethod
    def load(cls, path: str | Path | None, name: str = "mlp") -> MLPPPOPolicy:
        """Load ``mlp_ppo.zip`` (or the directory holding it) written by `train`;
        None = the model shipped in ``gnnrl/assets/models/mlp_ppo``.

        Raises:
            ConfigError: no path given and none shipped, or the files are missing.
        """
        from sb3_contrib import MaskablePPO

        if path is None:
            if not (SHIPPED_DIR / MODEL_FILE).exists():
                raise ConfigError(
                    "policies: mlp needs a model: mlp:PATH (train one with "
                    "python -m gnnrl.baselines.mlp_ppo --total-steps N --out DIR)")
            path = SHIPPED_DIR
        p = Path(path)
        zip_path = p / MODEL_FILE if p.is_dir() else p
        if not zip_path.exists():
            raise ConfigError(f"policies: mlp model {zip_path} does not exist")
        meta_path = zip_path.with_name(CONFIG_FILE)
        services = json.loads(meta_path.read_text())["services"] if meta_path.exists() else []
        model = MaskablePPO.load(str(zip_path), device="cpu")
        return cls(model, services, name=name)

    def reset(self, env: Any) -> None:
        self.env = env
        app = env.unwrapped.app
        if self.services and list(app.service_names) != self.services:
            raise ConfigError(
                f"mlp: trained on services {self.services}, the environment has "
                f"{list(app.service_names)}: the MLP's input cannot change")

    def act(self, obs: Any, info: dict) -> np.ndarray:
        """Shapes: obs (services*6,) float32 -> (max_nodes,) int64 in 0..14."""
        x = np.log1p(np.maximum(np.asarray(obs, dtype=np.float32), 0.0))
        masks = self.env.unwrapped.action_masks()
        action, _ = self.model.predict(x, action_masks=masks, deterministic=True)
        return np.asarray(action, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    """``python -m gnnrl.baselines.mlp_ppo --total-steps N --out DIR``."""
    p = argparse.ArgumentParser(prog="python -m gnnrl.baselines.mlp_ppo",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--total-steps", type=int, default=MLPPPOConfig.total_steps)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episode-steps", type=int, default=240)
    p.add_argument("--peak-rps", type=float, default=None)
    p.add_argument("--app", default="onlineboutique")
    p.add_argument("--goal-reward", choices=("latency", "cost"), default="latency")
    p.add_argument("--n-steps", type=int, default=2048)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    try:
        cfg = MLPPPOConfig(total_steps=a.total_steps, seed=a.seed, episode_steps=a.episode_steps,
                           peak_rps=a.peak_rps, app=a.app, goal_reward=a.goal_reward,
                           n_steps=a.n_steps, batch_size=min(64, a.n_steps))
    except ConfigError as exc:
        print(f"mlp_ppo: error: {exc}", file=sys.stderr)
        return 2
    path = train(cfg, a.out, progress=not a.no_progress)
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
