"""`DynamicGraphSpace`: stable slots for services that come and go, and padding.

Services are followed by *name*: a service keeps its slot for as long as it exists, a
removed service frees its slot, and a new service takes the lowest free slot. The
temporal memory (`DynamicTGNEncoder`) and the policy's per-slot outputs rely on this.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

from gnnrl.contracts.observation import (
    EDGE_DIM_RAW,
    GLOBAL_DIM_RAW,
    NODE_DIM_RAW,
    OBSERVATION_SCHEMA_VERSION,
)
from gnnrl.config import ConfigError, JsonConfig

NODE_FEATURES = ("num_pods", "desired_replicas", "cpu_usage", "mem_usage",
                 "received_traffic", "transmit_traffic")
EDGE_FEATURES = ("src", "dst", "active", "qps", "p95", "err_rate", "mtls")
GLOBAL_FEATURES = ("total_pods", "avg_cpu", "avg_mem", "total_traffic")


class TooManyServicesError(ValueError):
    """More services than `max_nodes` (or edges than `max_edges`) with overflow="error"."""


@dataclasses.dataclass
class DynamicGraphConfig(JsonConfig):
    """Sizes of the padded observation.

    Attributes:
        max_nodes: service slots (20 in the seed design).
        max_edges: edge slots (max_nodes**2 by default).
        node_dim / edge_dim / global_dim: feature widths (fixed by the observation contract,
            `gnnrl.contracts.observation`: 18 / 7 / 10 in schema v2).
        overflow: what to do with more services than slots. ``"error"`` (default) raises
            TooManyServicesError; ``"ignore_new"`` leaves the newest services out of the
            mapping (they are not observed or scaled), warns once per service and counts
            them in `DynamicGraphSpace.overflowed`.
    """

    max_nodes: int = 20
    max_edges: int = 400
    node_dim: int = NODE_DIM_RAW
    edge_dim: int = EDGE_DIM_RAW
    global_dim: int = GLOBAL_DIM_RAW
    overflow: Literal["error", "ignore_new"] = "error"

    def __post_init__(self) -> None:
        if self.max_nodes < 1:
            raise ConfigError(f"max_nodes: must be >= 1, got {self.max_nodes}")
        if self.max_edges < 1:
            raise ConfigError(f"max_edges: must be >= 1, got {self.max_edges}")
        contract = (NODE_DIM_RAW, EDGE_DIM_RAW, GLOBAL_DIM_RAW)
        if (self.node_dim, self.edge_dim, self.global_dim) != contract:
            raise ConfigError("node_dim/edge_dim/global_dim: the observation contract "
                              f"(schema v{OBSERVATION_SCHEMA_VERSION}) fixes them at "
                              f"{'/'.join(map(str, contract))}")
        if self.overflow not in ("error", "ignore_new"):
            raise ConfigError(f"overflow: must be 'error' or 'ignore_new', got {self.overflow!r}")


class DynamicGraphSpace:
    """Maps service names to node slots and (src, dst) pairs to edge slots.

    Attributes:
        node_mapping: service name -> slot in 0..max_nodes-1.
        edge_mapping: (src name, dst name) -> slot in 0..max_edges-1.
        overflowed: names left out under ``overflow="ignore_new"``.
    """

    def __init__(self, config: DynamicGraphConfig | None = None) -> None:
        self.config = config or DynamicGraphConfig()
        self.node_mapping: dict[str, int] = {}
        self.edge_mapping: dict[tuple[str, str], int] = {}
        self.overflowed: set[str] = set()

    @property
    def max_nodes(self) -> int:
        return self.config.max_nodes

    @property
    def max_edges(self) -> int:
        return self.config.max_edges

    def reset(self) -> None:
        self.node_mapping.clear()
        self.edge_mapping.clear()
        self.overflowed.clear()

    def slot_names(self) -> list[str | None]:
        """(max_nodes,) the service in each slot, None for a free slot."""
        names: list[str | None] = [None] * self.max_nodes
        for name, slot in self.node_mapping.items():
            names[slot] = name
        return names

    def update_node_mapping(self, service_names: Iterable[str]) -> dict[str, list[str]]:
        """Make the mapping hold exactly `service_names` (order decides new slots only).

        Returns:
            {"added": [...], "removed": [...]} names whose slot changed state.

        Raises:
            TooManyServicesError: more services than slots and overflow="error".
        """
        wanted = list(dict.fromkeys(service_names))
        wanted_set = set(wanted)
        removed = [n for n in self.node_mapping if n not in wanted_set]
        for n in removed:
            del self.node_mapping[n]
        self.overflowed &= wanted_set
        free = sorted(set(range(self.max_nodes)) - set(self.node_mapping.values()))
        added: list[str] = []
        new = [n for n in wanted if n not in self.node_mapping and n not in self.overflowed]
        if len(new) > len(free):
            if self.config.overflow == "error":
                raise TooManyServicesError(
                    f"{len(self.node_mapping) + len(new)} services do not fit max_nodes="
                    f"{self.max_nodes}: raise DynamicGraphConfig.max_nodes or set "
                    "overflow='ignore_new' (the newest services are then left unobserved)")
            for n in new[len(free):]:
                warnings.warn(f"service {n!r} left out: max_nodes={self.max_nodes} reached",
                              stacklevel=2)
                self.overflowed.add(n)
            new = new[: len(free)]
        for n, slot in zip(new, free, strict=False):
            self.node_mapping[n] = slot
            added.append(n)
        if removed:
            self.edge_mapping = {k: v for k, v in self.edge_mapping.items()
                                 if k[0] in self.node_mapping and k[1] in self.node_mapping}
        return {"added": added, "removed": removed}

    def update_edge_mapping(self, edges: Iterable[tuple[str, str]]) -> None:
        """Give every (src, dst) pair between mapped services a stable edge slot.

        Pairs with an unmapped endpoint are ignored. Edges no longer present keep their
        slot until one of their endpoints disappears (so an edge that goes quiet for a
        moment does not move).
        """
        used = set(self.edge_mapping.values())
        nxt = 0
        for src, dst in edges:
            if (src, dst) in self.edge_mapping:
                continue
            if src not in self.node_mapping or dst not in self.node_mapping:
                continue
            while nxt in used:
                nxt += 1
            if nxt >= self.max_edges:
                if self.config.overflow == "error":
                    raise TooManyServicesError(
                        f"more than max_edges={self.max_edges} edges: raise "
                        "DynamicGraphConfig.max_edges")
                return
            self.edge_mapping[(src, dst)] = nxt
            used.add(nxt)

    def pad_node_features(self, features: np.ndarray, num_nodes: int | None = None,
                          names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pad node features to (max_nodes, F) with a mask.

        Args:
            features: (n, F) rows; row i belongs to ``names[i]`` when `names` is given
                (placed at that service's slot), else to slot i.
            num_nodes: rows to use (default all).

        Returns:
            (features (max_nodes, F) float32, mask (max_nodes,) int8 with 1 = real node).
        """
        features = np.asarray(features, dtype=np.float32)
        n = features.shape[0] if num_nodes is None else num_nodes
        out = np.zeros((self.max_nodes, features.shape[1]), dtype=np.float32)
        mask = np.zeros(self.max_nodes, dtype=np.int8)
        if names is None:
            if n > self.max_nodes:
                raise TooManyServicesError(f"{n} nodes do not fit max_nodes={self.max_nodes}")
            out[:n] = features[:n]
            mask[:n] = 1
            return out, mask
        for i in range(n):
            slot = self.node_mapping.get(names[i])
            if slot is not None:
                out[slot] = features[i]
                mask[slot] = 1
        return out, mask

    def pad_edge_features(self, edges: np.ndarray, num_edges: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
        """Pad edge rows ``[src, dst, active, qps, p95, err, mtls]`` to (max_edges, 7).

        Rows whose (src, dst) slot pair is in the edge mapping go to that edge's slot;
        others fill the lowest free slots.

        Returns:
            (edges (max_edges, 7) float32, mask (max_edges,) int8 with 1 = real edge).
        """
        edges = np.asarray(edges, dtype=np.float32).reshape(-1, 7)
        m = edges.shape[0] if num_edges is None else num_edges
        if m > self.max_edges:
            raise TooManyServicesError(f"{m} edges do not fit max_edges={self.max_edges}")
        out = np.zeros((self.max_edges, 7), dtype=np.float32)
        mask = np.zeros(self.max_edges, dtype=np.int8)
        slot_names = self.slot_names()
        taken: set[int] = set()
        pending: list[int] = []
        for i in range(m):
            s, d = int(edges[i, 0]), int(edges[i, 1])
            key = (slot_names[s], slot_names[d]) if max(s, d) < self.max_nodes else None
            slot = self.edge_mapping.get(key) if key and None not in key else None  # type: ignore[arg-type]
            if slot is None or slot in taken:
                pending.append(i)
                continue
            out[slot] = edges[i]
            mask[slot] = 1
            taken.add(slot)
        free = (k for k in range(self.max_edges) if k not in taken
                and k not in set(self.edge_mapping.values()))
        for i in pending:
            slot = next(free)
            out[slot] = edges[i]
            mask[slot] = 1
        return out, mask
