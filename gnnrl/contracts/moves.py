"""The action contract: every step, each service slot gets one of `NUM_MOVES` moves.

Move ``0`` does nothing, ``1..MAX_STEP`` add 1..7 replicas, ``MAX_STEP+1..2*MAX_STEP``
remove 1..7 replicas. The policy's output head, the invalid-action mask
(``(max_nodes * NUM_MOVES,)``, service-major), the MLflow signature and the scaler's
step limit all use these two numbers; `gnnrl.core.envs.moves` converts moves to replica
counts and back.
"""

from __future__ import annotations

#: The most replicas one move adds or removes.
MAX_STEP = 7
#: Moves per service: nothing, +1..+7, -1..-7.
NUM_MOVES = 2 * MAX_STEP + 1
