"""The simulator: application specs, traffic traces, topology scenarios and the batched
fluid queueing-network model (`BatchedSim`)."""

from gnnrl.sim.core import BatchedSim, SimConfig, StepMetrics
from gnnrl.sim.scenario import Scenario, TopologyEvent, universe
from gnnrl.sim.spec import (
    AppSpec,
    AppSpecError,
    CallSpec,
    ServiceSpec,
    load_app_spec,
    save_app_spec,
)
from gnnrl.sim.timing import TimingConfig
from gnnrl.sim.traces import TRACE_KINDS, TraceError, load_trace, make_trace, trace_from_spec

__all__ = [
    "TRACE_KINDS", "AppSpec", "AppSpecError", "BatchedSim", "CallSpec", "Scenario",
    "ServiceSpec", "SimConfig", "StepMetrics", "TimingConfig", "TopologyEvent", "TraceError",
    "load_app_spec", "load_trace", "make_trace", "save_app_spec", "trace_from_spec", "universe",
]
