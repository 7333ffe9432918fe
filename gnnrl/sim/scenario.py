"""Scenarios: a traffic trace plus topology events (services added or removed mid-episode)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from gnnrl.sim.spec import AppSpec, AppSpecError, CallSpec, ServiceSpec


@dataclasses.dataclass(frozen=True)
class TopologyEvent:
    """At control step `step`, add `service` (with its `calls`) or remove `service_name`.

    Removing a service also removes every call to and from it (its callers stop calling
    it, as when a feature is switched off). Adding one activates it with its calls and
    ``min_replicas`` Ready pods (rolled out before its callers are switched to it).
    """

    step: int
    kind: Literal["add", "remove"]
    service: ServiceSpec | None = None
    calls: tuple[CallSpec, ...] = ()
    service_name: str | None = None

    def __post_init__(self) -> None:
        if self.step < 0:
            raise AppSpecError(f"events.step: must be >= 0, got {self.step}")
        if self.kind == "add" and self.service is None:
            raise AppSpecError("events.service: an 'add' event needs a ServiceSpec")
        if self.kind == "remove" and not self.service_name:
            raise AppSpecError("events.service_name: a 'remove' event needs a service name")
        if self.kind not in ("add", "remove"):
            raise AppSpecError(f"events.kind: must be 'add' or 'remove', got {self.kind!r}")

    @property
    def name(self) -> str:
        return self.service.name if self.service is not None else str(self.service_name)

    def describe(self) -> str:
        return f"{self.kind} {self.name}"


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named trace + topology events. `trace` is a trace kind or a replay file path."""

    name: str = "default"
    trace: str = "diurnal"
    peak_rps: float = 100.0
    events: tuple[TopologyEvent, ...] = ()

    def __post_init__(self) -> None:
        if self.peak_rps <= 0:
            raise AppSpecError(f"scenario.peak_rps: must be > 0, got {self.peak_rps}")


def universe(app: AppSpec, events: Sequence[TopologyEvent]) -> tuple[AppSpec, set[str]]:
    """The app extended with every service any event adds, and the set initially inactive.

    Returns:
        (spec over all services that ever exist, names inactive at step 0)
    """
    services = dict(app.services)
    calls = list(app.calls)
    initially_inactive: set[str] = set()
    for ev in events:
        if ev.kind == "add":
            assert ev.service is not None
            if ev.service.name not in services:
                services[ev.service.name] = ev.service
                initially_inactive.add(ev.service.name)
            known = {(c.src, c.dst) for c in calls}
            calls.extend(c for c in ev.calls if (c.src, c.dst) not in known)
        elif ev.service_name not in services:
            raise AppSpecError(f"events: cannot remove unknown service {ev.service_name!r}")
    return app.with_services(services, tuple(calls)), initially_inactive
