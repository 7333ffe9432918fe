"""The training scenario mix: traffic traces x peak loads x topology changes.

Every env of a training run gets the whole list and draws one scenario per episode from
its own seeded RNG (`OnlineBoutique.reset`), so the policy sees steady days, flash crowds,
ramps and random walks, with services added and removed mid-episode.
"""

from __future__ import annotations

from collections.abc import Sequence

from gnnrl.sim.onlineboutique import reviewservice
from gnnrl.sim.scenario import Scenario, TopologyEvent
from gnnrl.sim.spec import AppSpec

#: topology variants, as (label, [(step fraction of the episode, kind, service)])
TOPOLOGY_VARIANTS: dict[str, tuple[tuple[float, str, str], ...]] = {
    "static": (),
    "add": ((0.3, "add", "reviewservice"),),
    "remove": ((0.5, "remove", "adservice"),),
    "churn": ((0.2, "add", "reviewservice"), (0.6, "remove", "recommendationservice"),
              (0.8, "remove", "reviewservice")),
}


def _events(app: AppSpec, variant: str, max_steps: int) -> tuple[TopologyEvent, ...]:
    events = []
    review, review_calls = reviewservice()
    for frac, kind, name in TOPOLOGY_VARIANTS[variant]:
        step = max(1, int(frac * max_steps))
        if kind == "add":
            if name != review.name:
                raise ValueError(f"no spec for added service {name!r}")
            calls = tuple(c for c in review_calls if c.src in app.services)
            events.append(TopologyEvent(step=step, kind="add", service=review, calls=calls))
        elif name in app.services or name == review.name:
            events.append(TopologyEvent(step=step, kind="remove", service_name=name))
    return tuple(events)


def training_scenarios(app: AppSpec, traces: Sequence[str], peaks: Sequence[float],
                       topology: Sequence[str], max_steps: int) -> list[Scenario]:
    """Every combination of ``traces`` x ``peaks`` x ``topology`` variants.

    Topology variants other than "static" need OnlineBoutique's services (the added
    ``reviewservice`` is called by ``productcatalogservice``); for another app they are
    skipped.
    """
    unknown = sorted(set(topology) - set(TOPOLOGY_VARIANTS))
    if unknown:
        raise ValueError(f"unknown topology variant(s) {unknown}; known: "
                         f"{sorted(TOPOLOGY_VARIANTS)}")
    ob = {"productcatalogservice", "adservice", "recommendationservice"} <= set(app.services)
    out = []
    for trace in traces:
        for peak in peaks:
            for variant in topology:
                if variant != "static" and not ob:
                    continue
                out.append(Scenario(name=f"{trace}-{peak:g}-{variant}", trace=trace,
                                    peak_rps=float(peak),
                                    events=_events(app, variant, max_steps)))
    if not out:
        raise ValueError("the scenario mix is empty")
    return out
