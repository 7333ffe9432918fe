"""Training checkpoints: data only (state_dicts, RNG states, JSON), written atomically.

Layout of ``<out>/checkpoints/``::

    update_000040/model/{weights.pt,config.json}   the policy (PPO_GNN.save)
    update_000040/trainer.pt                        optimizer state, torch RNG states
    update_000040/state.json                        update, step, episode counters, ...
    LATEST                                          name of the newest complete folder

A checkpoint is written only when every env has just started an episode, so together
with the episode counters (episode seeds are a function of them) it captures the whole
run: resuming replays exactly what the uninterrupted run would have done (docs/reliability.md T2).
``LATEST`` is switched only after a folder is complete, so a crash mid-write leaves the
previous checkpoint in charge (and a NaN stop never overwrites it: docs/reliability.md T1).
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gnnrl.config import atomic_write_bytes, atomic_write_text
from gnnrl.core.agents.ppo_gnn import PPO_GNN

LATEST = "LATEST"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete or unreadable."""


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns."""

    path: Path
    model: PPO_GNN
    trainer: dict[str, Any]
    state: dict[str, Any]


def save_checkpoint(root: str | Path, update: int, model: PPO_GNN,
                    trainer: dict[str, Any], state: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``update`` under ``root``, point ``LATEST`` at it, prune old ones.

    ``trainer`` holds tensors / state_dicts (saved with ``torch.save``, loadable with
    ``weights_only=True``); ``state`` must be JSON-serialisable.
    """
    root = Path(root)
    folder = root / f"update_{update:06d}"
    # written whole under a temporary name, then renamed: a kill at any point leaves either
    # the previous checkpoint that LATEST names, or this one complete (never LATEST naming a
    # folder that is being rewritten)
    tmp = root / f".{folder.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save(tmp / "model")
    buf = io.BytesIO()
    torch.save(trainer, buf)
    atomic_write_bytes(tmp / "trainer.pt", buf.getvalue())
    atomic_write_text(tmp / "state.json", json.dumps(state, indent=2, sort_keys=True))
    if folder.exists():  # the same update saved again (a resumed run): replace it
        old = root / f".{folder.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(folder)
    atomic_write_text(root / LATEST, folder.name + "\n")
    done = sorted(p for p in root.glob("update_*") if p.is_dir())
    for old in done[:-keep] if keep > 0 else []:
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(root: str | Path) -> Path | None:
    """The folder ``LATEST`` names, or None when there is no checkpoint yet."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(root) / pointer.read_text().strip()
    if not folder.is_dir():
        raise CheckpointError(f"{pointer} names {folder.name}, which does not exist")
    return folder


def load_checkpoint(folder: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint folder written by `save_checkpoint` (``weights_only=True``)."""
    folder = Path(folder)
    try:
        model = PPO_GNN.load(folder / "model", map_location=map_location)
        trainer = torch.load(folder / "trainer.pt", map_location=map_location,
                             weights_only=True)
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot load checkpoint {folder}: {exc}") from exc
    return Checkpoint(folder, model, trainer, state)
