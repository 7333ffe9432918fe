"""A tiny application spec for fast training and validation tests.

Two services, ``web -> db``; at the training warm start (5 + 3 pods, p95 ~130 ms) the
SLO (150 ms) holds, and the cost term rewards giving replicas back until the SLO is about
to break. Written as a JSON spec file, since training configs name apps by path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_APP: dict[str, Any] = {
    "name": "tiny", "entry": "web", "slo_p95_ms": 150,
    "services": {
        "web": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 50,
                "service_time_ms": 5, "startup_s": 5, "min_replicas": 1, "max_replicas": 10},
        "db": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 100,
               "service_time_ms": 5, "startup_s": 5, "min_replicas": 1, "max_replicas": 10},
    },
    "calls": [{"from": "web", "to": "db", "per_request": 1.0}],
}


def write_tiny_app(folder: Path) -> Path:
    """`TINY_APP` as ``folder/tiny.json``; returns its path."""
    path = Path(folder) / "tiny.json"
    path.write_text(json.dumps(TINY_APP))
    return path
