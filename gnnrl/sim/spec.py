"""Application specs: the services, their resources and the call graph the simulator runs.

The format (YAML or JSON) is the one in the README ("Application spec"); calibration
(`gnnrl calibrate`) writes it, the simulator reads it. Every field is validated here, and
an error names the field, e.g. ``services.cartservice.capacity_rps: must be > 0``.

Units: millicores, MiB, requests/s, milliseconds, seconds, replicas.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gnnrl.config import atomic_write_text


class AppSpecError(ValueError):
    """An application spec is invalid. The message starts with the offending field's path."""


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """One scalable workload.

    Attributes:
        name: workload (Deployment) name.
        cpu_request_m: CPU request per pod, millicores (what HPA's utilisation is relative to
            and what cost counts).
        mem_request_mi: memory request per pod, MiB.
        capacity_rps: requests/s one ready pod serves when CPU-bound at its CPU limit.
        service_time_ms: latency of one request at zero load that does not queue for this
            pod's CPU (network, serialisation, I/O), ms. Downstream calls are added on top.
        startup_s: seconds from pod creation until it is Ready and serves traffic.
        min_replicas / max_replicas: bounds the policies must respect.
        cpu_limit_m: CPU limit per pod, millicores (CFS quota: the pod cannot use more).
            Defaults to 2x the request, as in the OnlineBoutique manifests.
        idle_cpu_m: CPU a pod burns with no traffic (probes, GC, runtime), millicores.
        mem_base_mi: working set of an idle pod, MiB; mem_per_rps_mi: extra MiB per req/s.
        req_kb / resp_kb: mean request and response sizes, KiB (network features).
        timeout_ms: a request queued longer than this fails (counted as an error).
    """

    name: str
    cpu_request_m: float
    mem_request_mi: float
    capacity_rps: float
    service_time_ms: float
    startup_s: float
    min_replicas: int = 1
    max_replicas: int = 10
    cpu_limit_m: float | None = None
    idle_cpu_m: float | None = None
    mem_base_mi: float | None = None
    mem_per_rps_mi: float = 0.05
    req_kb: float = 1.0
    resp_kb: float = 2.0
    timeout_ms: float = 15_000.0

    def __post_init__(self) -> None:
        # Fill derived defaults (frozen dataclass: use object.__setattr__).
        if self.cpu_limit_m is None:
            object.__setattr__(self, "cpu_limit_m", 2.0 * self.cpu_request_m)
        if self.idle_cpu_m is None:
            object.__setattr__(self, "idle_cpu_m", 0.05 * self.cpu_request_m)
        if self.mem_base_mi is None:
            object.__setattr__(self, "mem_base_mi", 0.6 * self.mem_request_mi)

    @property
    def cpu_per_request_m(self) -> float:
        """Millicore-seconds of CPU one request costs (the saturated pod uses its limit)."""
        limit, idle = self.cpu_limit_m, self.idle_cpu_m
        assert limit is not None and idle is not None  # filled in by __post_init__
        return (float(limit) - float(idle)) / self.capacity_rps

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("name")
        return d


@dataclasses.dataclass(frozen=True)
class CallSpec:
    """caller -> callee: `per_request` calls to `dst` for every request `src` serves."""

    src: str
    dst: str
    per_request: float
    mtls: float = 1.0
    protocol: str = "grpc"

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.src, "to": self.dst, "per_request": self.per_request,
                "mtls": self.mtls, "protocol": self.protocol}


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """A whole application: services, call graph, entry point and SLO.

    Attributes:
        name: application name.
        entry: the service that receives the traffic trace's requests/s.
        slo_p95_ms: end-to-end p95 latency objective at the entry, ms.
        services: name -> ServiceSpec (insertion order is the canonical order).
        calls: the call graph; must be acyclic; every endpoint is a service or a client.
        clients: traffic sources that are not scaled and not part of the observation graph
            (e.g. OnlineBoutique's loadgenerator); their calls to the entry are implied.
    """

    name: str
    entry: str
    slo_p95_ms: float
    services: Mapping[str, ServiceSpec]
    calls: tuple[CallSpec, ...]
    clients: tuple[str, ...] = ()

    @property
    def service_names(self) -> list[str]:
        return list(self.services)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entry": self.entry,
            "slo_p95_ms": self.slo_p95_ms,
            "clients": list(self.clients),
            "services": {n: s.to_dict() for n, s in self.services.items()},
            "calls": [c.to_dict() for c in self.calls],
        }

    def with_services(self, services: Mapping[str, ServiceSpec], calls: tuple[CallSpec, ...]):
        """A copy with other services/calls, validated."""
        return validate_app_spec(dataclasses.replace(self, services=dict(services),
                                                     calls=tuple(calls)))


def _num(path: str, value: Any, *, positive: bool = False, nonneg: bool = False,
         integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AppSpecError(f"{path}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise AppSpecError(f"{path}: must be finite, got {value!r}")
    if integer and int(value) != value:
        raise AppSpecError(f"{path}: must be an integer, got {value!r}")
    if positive and value <= 0:
        raise AppSpecError(f"{path}: must be > 0, got {value!r}")
    if nonneg and value < 0:
        raise AppSpecError(f"{path}: must be >= 0, got {value!r}")
    return value


_SERVICE_FIELDS = {f.name for f in dataclasses.fields(ServiceSpec)} - {"name"}
_REQUIRED_SERVICE_FIELDS = ("cpu_request_m", "mem_request_mi", "capacity_rps",
                            "service_time_ms", "startup_s")


def _parse_service(name: str, raw: Any) -> ServiceSpec:
    path = f"services.{name}"
    if not isinstance(raw, Mapping):
        raise AppSpecError(f"{path}: expected a mapping of fields")
    unknown = sorted(set(raw) - _SERVICE_FIELDS)
    if unknown:
        raise AppSpecError(f"{path}.{unknown[0]}: unknown field")
    for key in _REQUIRED_SERVICE_FIELDS:
        if key not in raw:
            raise AppSpecError(f"{path}.{key}: required field missing")
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None and key in ("cpu_limit_m", "idle_cpu_m", "mem_base_mi"):
            continue
        integer = key in ("min_replicas", "max_replicas")
        positive = key in ("cpu_request_m", "mem_request_mi", "capacity_rps", "timeout_ms",
                           "cpu_limit_m")
        kw[key] = _num(f"{path}.{key}", value, positive=positive, nonneg=True, integer=integer)
        if integer:
            kw[key] = int(value)
    spec = ServiceSpec(name=name, **kw)
    if spec.min_replicas > spec.max_replicas:
        raise AppSpecError(f"{path}.min_replicas: {spec.min_replicas} > max_replicas "
                           f"{spec.max_replicas}")
    if spec.max_replicas < 1:
        raise AppSpecError(f"{path}.max_replicas: must be >= 1")
    assert spec.cpu_limit_m is not None and spec.idle_cpu_m is not None  # __post_init__
    if float(spec.cpu_limit_m) <= float(spec.idle_cpu_m):
        raise AppSpecError(f"{path}.cpu_limit_m: must exceed idle_cpu_m")
    return spec


def _parse_call(i: int, raw: Any) -> CallSpec:
    path = f"calls[{i}]"
    if isinstance(raw, CallSpec):
        return raw
    if not isinstance(raw, Mapping):
        raise AppSpecError(f"{path}: expected a mapping with from/to/per_request")
    for key in ("from", "to", "per_request"):
        if key not in raw:
            raise AppSpecError(f"{path}.{key}: required field missing")
    unknown = sorted(set(raw) - {"from", "to", "per_request", "mtls", "protocol"})
    if unknown:
        raise AppSpecError(f"{path}.{unknown[0]}: unknown field")
    mtls = _num(f"{path}.mtls", raw.get("mtls", 1.0), nonneg=True)
    if mtls > 1:
        raise AppSpecError(f"{path}.mtls: must be within 0..1, got {mtls}")
    return CallSpec(
        src=str(raw["from"]),
        dst=str(raw["to"]),
        per_request=_num(f"{path}.per_request", raw["per_request"], nonneg=True),
        mtls=float(mtls),
        protocol=str(raw.get("protocol", "grpc")),
    )


def topological_order(services: list[str], calls: tuple[CallSpec, ...]) -> list[str]:
    """Services ordered callers-first. Raises AppSpecError naming a cycle if there is one."""
    children: dict[str, list[str]] = {s: [] for s in services}
    indeg = dict.fromkeys(services, 0)
    for c in calls:
        if c.src in children and c.dst in indeg:
            children[c.src].append(c.dst)
            indeg[c.dst] += 1
    order = [s for s in services if indeg[s] == 0]
    i = 0
    while i < len(order):
        for d in children[order[i]]:
            indeg[d] -= 1
            if indeg[d] == 0:
                order.append(d)
        i += 1
    if len(order) != len(services):
        cyclic = sorted(s for s in services if indeg[s] > 0)
        raise AppSpecError(f"calls: the call graph has a cycle through {', '.join(cyclic)}")
    return order


def validate_app_spec(spec: AppSpec) -> AppSpec:
    """Check cross-field rules (entry exists, callees known, no cycle, SLO positive)."""
    if not spec.services:
        raise AppSpecError("services: at least one service is required")
    _num("slo_p95_ms", spec.slo_p95_ms, positive=True)
    if spec.entry not in spec.services:
        raise AppSpecError(f"entry: unknown service {spec.entry!r}")
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(spec.calls):
        if c.src not in spec.services and c.src not in spec.clients:
            raise AppSpecError(f"calls[{i}].from: unknown service {c.src!r}")
        if c.dst not in spec.services:
            raise AppSpecError(f"calls[{i}].to: unknown service {c.dst!r}")
        if c.src == c.dst:
            raise AppSpecError(f"calls[{i}]: a service cannot call itself ({c.src})")
        if (c.src, c.dst) in seen:
            raise AppSpecError(f"calls[{i}]: duplicate call {c.src} -> {c.dst}")
        seen.add((c.src, c.dst))
    topological_order(list(spec.services), spec.calls)
    return spec


def app_spec_from_dict(data: Mapping[str, Any]) -> AppSpec:
    """Parse and validate the dict form (as loaded from YAML/JSON)."""
    if not isinstance(data, Mapping):
        raise AppSpecError(f"<root>: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - {"name", "entry", "slo_p95_ms", "services", "calls", "clients"})
    if unknown:
        raise AppSpecError(f"{unknown[0]}: unknown top-level field")
    for key in ("name", "entry", "slo_p95_ms", "services"):
        if key not in data:
            raise AppSpecError(f"{key}: required field missing")
    raw_services = data["services"]
    if not isinstance(raw_services, Mapping):
        raise AppSpecError("services: expected a mapping name -> fields")
    services = {str(n): _parse_service(str(n), raw) for n, raw in raw_services.items()}
    raw_calls = data.get("calls") or []
    if not isinstance(raw_calls, list | tuple):
        raise AppSpecError("calls: expected a list")
    calls = tuple(_parse_call(i, c) for i, c in enumerate(raw_calls))
    clients = tuple(str(c) for c in (data.get("clients") or ()))
    spec = AppSpec(
        name=str(data["name"]),
        entry=str(data["entry"]),
        slo_p95_ms=_num("slo_p95_ms", data["slo_p95_ms"], positive=True),
        services=services,
        calls=calls,
        clients=clients,
    )
    return validate_app_spec(spec)


def load_app_spec(source: str | os.PathLike[str] | Mapping[str, Any] | AppSpec) -> AppSpec:
    """Load an application spec.

    Args:
        source: a built-in name (``"onlineboutique"``, ``"socialnetwork"``,
            ``"generated-<seed>"``), a path to a ``.yaml``/``.yml``/
            ``.json`` file, a dict in the documented format, or an AppSpec (returned as is).

    Raises:
        AppSpecError: the spec is invalid (the message names the field) or the file is
            missing / unparsable.
    """
    if isinstance(source, AppSpec):
        return validate_app_spec(source)
    if isinstance(source, Mapping):
        return app_spec_from_dict(source)
    # the built-ins are specs themselves (they import this module): import on use
    from gnnrl.sim.builtin import builtin_app, builtin_names

    if isinstance(source, str):
        app = builtin_app(source)
        if app is not None:
            return app
    path = Path(source)
    if not path.exists():
        raise AppSpecError(
            f"{path}: no such file (built-in apps: {', '.join(builtin_names())})")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise AppSpecError(f"{path}: cannot parse: {exc}") from exc
    try:
        return app_spec_from_dict(data)
    except AppSpecError as exc:
        raise AppSpecError(f"{path}: {exc}") from exc


def save_app_spec(spec: AppSpec, path: str | os.PathLike[str]) -> None:
    """Write `spec` as YAML (or JSON for a ``.json`` path), atomically."""
    path = Path(path)
    d = spec.to_dict()
    if path.suffix == ".json":
        atomic_write_text(path, json.dumps(d, indent=2))
    else:
        atomic_write_text(path, yaml.safe_dump(d, sort_keys=False))
