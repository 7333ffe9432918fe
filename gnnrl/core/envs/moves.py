"""The 15 per-service moves and conversions between moves and replica counts.

Move ``0`` does nothing, ``1..7`` add 1..7 replicas, ``8..14`` remove 1..7 replicas.
"""

from __future__ import annotations

import numpy as np

NUM_MOVES = 15
MAX_STEP = 7


def move_deltas() -> np.ndarray:
    """(15,) int64 replica change of each move: [0, 1..7, -1..-7]."""
    return np.concatenate([[0], np.arange(1, MAX_STEP + 1), -np.arange(1, MAX_STEP + 1)])


DELTAS = move_deltas()


def moves_to_replicas(current: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """Replica counts after applying `moves` to `current`. Shapes: (..., n) -> (..., n)."""
    return np.asarray(current, dtype=np.int64) + DELTAS[np.asarray(moves, dtype=np.int64)]


def replicas_to_moves(current: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """The move that goes from `current` towards `desired`, at most 7 replicas per step.

    Shapes: (..., n) -> (..., n) int64 in 0..14.
    """
    delta = np.clip(np.asarray(desired, np.int64) - np.asarray(current, np.int64),
                    -MAX_STEP, MAX_STEP)
    return np.where(delta > 0, delta, np.where(delta < 0, MAX_STEP - delta, 0)).astype(np.int64)


def valid_moves(current: np.ndarray, min_replicas: np.ndarray, max_replicas: np.ndarray,
                active: np.ndarray) -> np.ndarray:
    """(..., n, 15) bool, True where a move keeps replicas within [min, max].

    "Nothing" is always valid; inactive slots allow only "nothing". A service already
    outside its bounds may move towards them (any move that ends closer is valid).
    """
    cur = np.asarray(current, np.int64)[..., None]
    after = cur + DELTAS
    lo = np.asarray(min_replicas, np.int64)[..., None]
    hi = np.asarray(max_replicas, np.int64)[..., None]
    inside = (after >= lo) & (after <= hi)
    # towards the bounds from outside them
    towards = ((cur < lo) & (after > cur) & (after <= hi)) | ((cur > hi) & (after < cur)
                                                            & (after >= lo))
    ok = inside | towards
    ok[..., 0] = True
    ok &= np.asarray(active, bool)[..., None] | (np.arange(NUM_MOVES) == 0)
    return ok
