"""The 15 per-service moves and conversions between moves and replica counts.

Move ``0`` does nothing, ``1..7`` add 1..7 replicas, ``8..14`` remove 1..7 replicas.
"""

from __future__ import annotations

import numpy as np

from gnnrl.contracts.moves import MAX_STEP, NUM_MOVES


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


def move_bounds(current: np.ndarray, min_replicas: np.ndarray, max_replicas: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) replica change a valid move may make; shapes (..., n) each.

    A move with delta d is valid iff d == 0 or lowest <= d <= highest. Inside [min, max]
    that is [min - cur, max - cur]; below min, any increase up to max (1 .. max - cur);
    above max, any decrease down to min (min - cur .. -1). One formula covers all three:
    lowest = min(min - cur, 1), highest = max(max - cur, -1).
    """
    cur = np.asarray(current, np.int64)
    lowest = np.minimum(np.asarray(min_replicas, np.int64) - cur, 1)
    highest = np.maximum(np.asarray(max_replicas, np.int64) - cur, -1)
    return lowest, highest


def _valid_table() -> np.ndarray:
    """(9, 9, 15) bool: valid moves for clip(lowest, -7, 1) + 7 and clip(highest, -1, 7) + 1.

    Index (8, 0) (lowest 1, highest -1) allows only "nothing": the row of inactive slots.
    """
    lowest = np.arange(-MAX_STEP, 2)[:, None, None]
    highest = np.arange(-1, MAX_STEP + 1)[None, :, None]
    return ((DELTAS >= lowest) & (DELTAS <= highest)) | (DELTAS == 0)


#: `valid_moves` as a lookup table over `move_bounds` (see `_valid_table`).
VALID_TABLE = _valid_table()
VALID_TABLE.flags.writeable = False
#: Row of VALID_TABLE.reshape(81, 15) for a slot that allows only "nothing".
ONLY_NOTHING = 8 * 9 + 0


def valid_moves(current: np.ndarray, min_replicas: np.ndarray, max_replicas: np.ndarray,
                active: np.ndarray) -> np.ndarray:
    """(..., n, 15) bool, True where a move keeps replicas within [min, max].

    "Nothing" is always valid; inactive slots allow only "nothing". A service already
    outside its bounds may move towards them (any move that ends closer is valid).
    """
    return VALID_TABLE.reshape(81, NUM_MOVES)[valid_row(current, min_replicas, max_replicas,
                                                        active)]


def valid_row(current: np.ndarray, min_replicas: np.ndarray, max_replicas: np.ndarray,
              active: np.ndarray | None = None) -> np.ndarray:
    """(..., n) int64 row of ``VALID_TABLE.reshape(81, 15)`` holding each slot's valid moves."""
    lowest, highest = move_bounds(current, min_replicas, max_replicas)
    row = (np.minimum(np.maximum(lowest, -MAX_STEP), 1) + MAX_STEP) * 9 \
        + np.minimum(highest, MAX_STEP) + 1
    if active is not None:
        row = np.where(np.asarray(active, bool), row, ONLY_NOTHING)
    return row


#: (81, 15) int8, 1 = INVALID: the action-mask polarity of the observation.
INVALID_TABLE = (~VALID_TABLE.reshape(81, NUM_MOVES)).astype(np.int8)
INVALID_TABLE.flags.writeable = False


def validated_moves(action: np.ndarray, invalid_action_mask: np.ndarray
                    ) -> tuple[np.ndarray, int]:
    """The moves an action really makes, and how many of its moves were replaced.

    Args:
        action: (n,) int64 one move per slot.
        invalid_action_mask: (n * 15,) the observation's mask, service-major
            (``slot * 15 + move``), 1 = invalid.

    Returns:
        ((n,) int64 moves with out-of-range and masked ones replaced by "nothing", the
        number replaced).
    """
    moves = np.minimum(np.maximum(action, 0), NUM_MOVES - 1)
    bad = action != moves
    # one gather finds each slot's entry of the service-major mask
    bad |= invalid_action_mask.take(np.arange(len(moves)) * NUM_MOVES + moves) != 0
    moves[bad] = 0
    return moves, int(np.count_nonzero(bad))
