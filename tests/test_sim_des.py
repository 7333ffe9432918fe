"""The fluid model agrees with a discrete-event simulation of the same network."""

import pytest

from gnnrl.sim import load_app_spec
from gnnrl.sim.des import compare

pytest.importorskip("simpy")

APP = {
    "name": "chain", "entry": "a", "slo_p95_ms": 200,
    "services": {s: {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 100,
                     "service_time_ms": 2, "startup_s": 10} for s in "abc"},
    "calls": [{"from": "a", "to": "b", "per_request": 2},
              {"from": "b", "to": "c", "per_request": 1},
              {"from": "a", "to": "c", "per_request": 0.5}],
}


@pytest.mark.parametrize("entry_rps", [20, 90])  # busiest service at 13 % and 60 %
def test_fluid_latency_is_close_to_discrete_event_simulation(entry_rps):
    r = compare(load_app_spec(APP), {"a": 2, "b": 3, "c": 4}, entry_rps, steps=4)
    assert abs(r["mean_err"]) < 0.08, r
    assert abs(r["p95_err"]) < 0.12, r
