"""The GNNRL policy as an MLflow pyfunc model (weights + JSON config as artifacts).

Why pyfunc and not ``mlflow.pytorch``: its default ``pt2`` export traces a stateless graph,
and the policy's TGN memory is state carried from tick to tick. Here the artifact is the
trained model folder itself (``state_dict`` + JSON config, loaded with
``weights_only=True`` by `PPO_GNN.load`), and ``predict`` replays the rows of a batch as
*consecutive ticks* of one episode, so the memory evolves exactly as in the scaler loop.

Input (a dict of numpy arrays; T = number of consecutive ticks, N = max_nodes,
E = max_edges, float32 unless said):

    svc_df (T, N, 18), edge_df (T, E, 7), global_feats (T, 10) (observation schema v2,
    `gnnrl.contracts.observation`), node_mask (T, N) int8,
    edge_mask (T, E) int8, num_nodes (T,) int64, invalid_action_mask (T, N*15) int8 (1=invalid)

Output: (T, N) int64 moves in 0..14 (0 nothing, 1..7 add k, 8..14 remove k-7).
Params: ``reset`` (bool, default True) forgets the temporal memory before the first row;
``slot_names`` (list of str, "" = empty slot) remaps the memory to a new slot -> service
layout first, as the scaler does when services come and go; ``dial`` (float in [0, 1],
default 0.5: 0 = cheapest, 1 = safest) is written into every row's ``global_feats`` dial
column before inference, as the scaler writes ``ScalerConfig.dial``.
"""

from __future__ import annotations

import json
import os
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from gnnrl.contracts.moves import NUM_MOVES
from gnnrl.contracts.observation import (
    DEFAULT_DIAL,
    EDGE_DIM_RAW,
    GLOBAL_DIM_RAW,
    NODE_DIM_RAW,
    OBS_KEYS,
)
from gnnrl.core.agents.dial import with_dial

with warnings.catch_warnings():  # mlflow's import-time type-hint notices are not ours
    warnings.simplefilter("ignore", UserWarning)
    from mlflow.pyfunc import PythonModel

#: The registered model name of the GNNRL policy.
MODEL_NAME = "gnnrl-scaler"
#: Artifact key under which the trained model folder is stored.
MODEL_DIR_ARTIFACT = "model_dir"


def _load_policy(model_dir: str | os.PathLike[str]) -> Any:
    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    return PPO_GNN.load(Path(model_dir))


def _reset_policy(policy: Any) -> None:
    """Forget temporal state (TGN memory) before a new episode."""
    reset = getattr(policy, "reset_memory", None)
    if callable(reset):
        reset()


def act_sequence(policy: Any, batch: dict[str, np.ndarray], reset: bool = True,
                 slot_names: list[str | None] | None = None,
                 dial: float = DEFAULT_DIAL) -> np.ndarray:
    """Run ``policy`` over T consecutive observations at ``dial``; return (T, N) int64 moves.

    Shapes:
        batch: see the module docstring; every array's first axis is T (not changed).
        slot_names: (N,) service name per slot (None/"" = empty), or None to keep the layout.

    Raises:
        ValueError: a dial outside [0, 1], or another than the default on schema-v1 rows.
    """
    if reset:
        _reset_policy(policy)
    if slot_names is not None and hasattr(policy, "update_node_mapping"):
        policy.update_node_mapping([n or None for n in slot_names])
    lengths = {k: len(np.asarray(batch[k])) for k in OBS_KEYS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"observation arrays differ in length (ticks): {lengths}")
    out = []
    for t in range(next(iter(lengths.values()))):
        obs = {k: np.asarray(batch[k])[t] for k in OBS_KEYS}
        obs["num_nodes"] = int(obs["num_nodes"])
        action = policy.act(with_dial(obs, dial), deterministic=True)
        if isinstance(action, tuple):  # (action, log_prob, value) style return
            action = action[0]
        if hasattr(action, "detach"):
            action = action.detach().cpu().numpy()
        out.append(np.asarray(action, dtype=np.int64).reshape(-1))
    return np.stack(out) if out else np.zeros((0, 0), dtype=np.int64)


class GnnrlPolicyModel(PythonModel):
    """`mlflow.pyfunc.PythonModel` wrapping a trained `PPO_GNN` folder."""

    # The model declares an explicit tensor signature (see `signature`); MLflow's type-hint
    # based input wrapping (mlflow/pyfunc/model.py, __init_subclass__) is not wanted.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        self._policy = _load_policy(context.artifacts[MODEL_DIR_ARTIFACT])

    def predict(self, context, model_input, params=None):
        """(T, ...) observations -> (T, N) int64 moves; see the module docstring."""
        params = params or {}
        reset = bool(params.get("reset", True))
        names = params.get("slot_names")
        names = [str(n) for n in names] if names is not None and any(names) else None
        if not isinstance(model_input, dict):
            raise TypeError(
                f"GNNRL pyfunc expects a dict of numpy arrays keyed by {OBS_KEYS}, "
                f"got {type(model_input).__name__}"
            )
        return act_sequence(self._policy, model_input, reset=reset, slot_names=names,
                            dial=float(params.get("dial", DEFAULT_DIAL)))


def model_dims(model_dir: str | os.PathLike[str]) -> tuple[int, int]:
    """(max_nodes, max_edges) the model was trained with, read from its JSON config."""
    for name in ("config.json", "model.json", "gnnrl_model.json"):
        path = Path(model_dir) / name
        if path.is_file():
            cfg = json.loads(path.read_text())
            found = _find_key(cfg, "max_nodes"), _find_key(cfg, "max_edges")
            if found[0] is not None:
                nodes = int(found[0])
                return nodes, int(found[1]) if found[1] is not None else nodes * nodes
    return 20, 400  # DynamicGraphConfig defaults (docs/internals.md, Observation)


def _find_key(tree: Any, key: str) -> Any:
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def signature(max_nodes: int, max_edges: int) -> Any:
    """The model signature: named tensors with a free leading tick axis, plus the params
    ``reset``, ``slot_names`` and ``dial``."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    f32, i8, i64 = np.dtype("float32"), np.dtype("int8"), np.dtype("int64")
    inputs = Schema(
        [
            TensorSpec(f32, (-1, max_nodes, NODE_DIM_RAW), "svc_df"),
            TensorSpec(f32, (-1, max_edges, EDGE_DIM_RAW), "edge_df"),
            TensorSpec(f32, (-1, GLOBAL_DIM_RAW), "global_feats"),
            TensorSpec(i8, (-1, max_nodes), "node_mask"),
            TensorSpec(i8, (-1, max_edges), "edge_mask"),
            TensorSpec(i64, (-1,), "num_nodes"),
            TensorSpec(i8, (-1, max_nodes * NUM_MOVES), "invalid_action_mask"),
        ]
    )
    outputs = Schema([TensorSpec(i64, (-1, max_nodes), "moves")])
    params = ParamSchema([
        ParamSpec("reset", "boolean", True),
        ParamSpec("slot_names", "string", [""] * max_nodes, (-1,)),
        ParamSpec("dial", "double", DEFAULT_DIAL),
    ])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def pip_requirements() -> list[str]:
    """Exact pins of what loading the model needs (the project image provides them)."""
    reqs = []
    for dist in ("gnnrl", "torch", "torch-geometric", "numpy", "mlflow"):
        try:
            version = metadata.version(dist).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
        reqs.append(f"{dist}=={version}")
    return reqs


def to_batch(observations: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Stack T observation dicts (the env's) into the pyfunc input with the signature dtypes."""
    dtypes = {
        "svc_df": np.float32,
        "edge_df": np.float32,
        "global_feats": np.float32,
        "node_mask": np.int8,
        "edge_mask": np.int8,
        "num_nodes": np.int64,
        "invalid_action_mask": np.int8,
    }
    return {
        k: np.stack([np.asarray(o[k]) for o in observations]).astype(dtypes[k]) for k in OBS_KEYS
    }


def log_pyfunc(model_dir: str | os.PathLike[str], name: str = "model") -> Any:
    """Log ``model_dir`` as a pyfunc model in the active MLflow run; return its ModelInfo."""
    import mlflow.pyfunc

    nodes, edges = model_dims(model_dir)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=GnnrlPolicyModel(),
        artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
        signature=signature(nodes, edges),
        pip_requirements=pip_requirements(),
    )


def download_model_dir(model_uri: str, dest: str | os.PathLike[str], tracking_uri: str) -> Path:
    """Download a registered GNNRL pyfunc (e.g. ``models:/gnnrl-scaler/3``) into ``dest``;
    return the trained model folder inside it (what `PPO_GNN.load` accepts).

    The folder is located through the ``MLmodel`` file: MLflow stores a pyfunc artifact under
    its source folder's base name, not under the artifact key.
    """
    import mlflow.artifacts
    import yaml

    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=model_uri, dst_path=str(dest), tracking_uri=tracking_uri
    ))
    try:
        meta = yaml.safe_load((local / "MLmodel").read_text())
        rel = meta["flavors"]["python_function"]["artifacts"][MODEL_DIR_ARTIFACT]["path"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise FileNotFoundError(f"{model_uri} is not a GNNRL pyfunc model: {exc}") from exc
    folder = local / rel
    if not folder.is_dir():
        raise FileNotFoundError(f"{model_uri}: artifact folder {rel} is missing")
    return folder
