"""`SimPool`: the trainer's batched rollout pool, resumable to the exact step.

`gnnrl.core.envs.vector.BatchedEnvPool` runs the B training episodes as rows of one
batched simulator (one set of numpy operations per step instead of B envs). Its episodes
already follow `gnnrl.core.agents.rollout.episode_seed` (scenario, trace and start state
come from the per-episode seed), but two pieces of randomness are shared by all copies and
live as long as the pool: the simulator's noise generator and the generator of the
one-copy warm start. A resumed run builds a fresh pool, so those would restart from their
seeds and the resumed run would drift from an uninterrupted one.

`SimPool` closes that gap:

* each episode's warm start draws its noise from its own generator, seeded by
  ``(run seed, env index, episode)``, so a reset is a pure function of the episode;
* `noise_state` / `set_noise_state` save and restore the simulator's noise generator
  (``numpy`` bit-generator state, JSON-serialisable), which the trainer stores in every
  checkpoint. Checkpoints are taken when every copy has just been reset, and a reset
  draws nothing from the simulator's generator, so restoring it after the resumed run's
  first `reset` continues the noise exactly where the checkpointed run left it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnnrl.core.envs.vector import BatchedEnvPool

#: stream id mixed into the warm-start seed (distinct from the pool's own 7919 / 104729)
_WARM_STREAM = 15485863


class SimPool(BatchedEnvPool):
    """`BatchedEnvPool` with per-episode warm-start noise and a checkpointable noise state.

    Same constructor and interface as `BatchedEnvPool` (and so as
    `gnnrl.core.agents.rollout.EnvPool`).
    """

    def _reset_one(self, i: int) -> None:
        episode = int(self.episodes[i])
        self._warm.rng = np.random.default_rng([self.run_seed, _WARM_STREAM, i, episode])
        super()._reset_one(i)

    def noise_state(self) -> dict[str, Any]:
        """The simulator's noise generator state (a JSON-serialisable dict)."""
        return dict(self.sim.rng.bit_generator.state)

    def set_noise_state(self, state: dict[str, Any]) -> None:
        """Restore a state from `noise_state` (raises ValueError if it does not fit)."""
        bit_gen = self.sim.rng.bit_generator
        if state.get("bit_generator") != bit_gen.state["bit_generator"]:
            raise ValueError(f"noise state is for {state.get('bit_generator')!r}, the "
                             f"simulator uses {bit_gen.state['bit_generator']!r}")
        bit_gen.state = state
