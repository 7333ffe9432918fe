"""Seed ranges, disjoint so that no evaluation replays an episode or an app trained on.

==========================================  ====================  =====================
use                                         reset seeds           generated-app seeds
==========================================  ====================  =====================
training (episodes, the MLP-PPO baseline)   [0, 1000)             `TRAIN_APP_SEEDS`
evaluation (suites, reports, the gate)      [1000, 5000)          `EVAL_APP_SEEDS`
validation during training (checkpoints)    [5000, ...)           (training apps)
==========================================  ====================  =====================

A reset seed draws the episode's trace noise, load and start-up times; an app seed draws a
generated topology (`gnnrl.sim.generator`).
"""

from __future__ import annotations

#: Training episodes draw reset seeds from ``[0, TRAIN_SEED_LIMIT)``.
TRAIN_SEED_LIMIT = 1000
#: First evaluation reset seed (evaluation seeds are ``EVAL_SEED_BASE + i``).
EVAL_SEED_BASE = TRAIN_SEED_LIMIT
#: First validation reset seed of the checks made while training.
VALIDATION_SEED_BASE = 5000

#: Seeds of generated apps a policy may be trained on.
TRAIN_APP_SEEDS = range(0, 1000)
#: Seeds of generated apps held out for evaluation only: never train on these, so that a
#: result on them measures generalisation to unseen topologies.
EVAL_APP_SEEDS = range(1000, 1100)
