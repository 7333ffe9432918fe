"""The scaler during a graph-source outage: the HPA rule must still write within the tick.

The fallback exists for exactly this case (Kiali slow, throttling or down), so a graph
request may only use what is left of the tick's deadline (minus one API timeout kept for
the writes), never retries past it, and never sleeps through a `Retry-After` longer than
what is left. The tick runs on the real clock here (the HTTP waits are real); the deadlines
are small so each test waits about a second at most.
"""

from __future__ import annotations

import argparse
import json
import time

import pytest
from scaler_support import NS, config, fake_cluster, scaler_for

from gnnrl.commands.scaler import _graph_source
from gnnrl.scaler.clock import FakeClock, MonotonicClock
from gnnrl.sources.errors import PayloadTooLarge, SourceUnavailable
from gnnrl.sources.kiali import KialiClient

SVC = {"cartservice": (1, 10)}
#: a tick of 1.5 s with a 0.3 s API timeout: the graph gets at most ~1.2 s
FAST_TICK = {"interval_s": 2.0, "tick_deadline_s": 1.5, "api_timeout_s": 0.3}


@pytest.fixture
def kiali(kiali):
    kiali.set_graph(NS, {"elements": {"nodes": [], "edges": []}})
    return kiali


def kiali_scaler(kube, fake, **kw):
    """An active scaler whose graph comes from the fake Kiali through the CLI's wiring
    (`_graph_source`: the ScalerConfig's kiali settings, the payload cap, the deadline)."""
    cfg = config(SVC, **{**FAST_TICK, **kw})
    args = argparse.Namespace(kiali_url=fake.url, prometheus_url=None)
    graph = _graph_source(args, cfg, kube.api_client())
    return scaler_for(kube, cfg, MonotonicClock(), graph=graph)


def test_slow_graph_source_cannot_stop_the_hpa_rule_from_writing(kube, kiali):
    fake_cluster(kube, {"cartservice": (2, 1.4)})  # twice the target: the rule says 4
    kiali.inject(status=None, delay_s=5.0, times=5)  # answers after 5 s, timeout 10 s
    s = kiali_scaler(kube, kiali, kiali={"timeout_s": 10.0})
    report = s.tick()
    assert report.mode == "rule"
    assert report.services["cartservice"].result.status == "written"
    assert kube.scale_writes() == [(NS, "cartservice", 4)]
    assert len(kiali.requests) == 1  # no retry past the deadline
    assert s.metrics.value("gnnrl_scaler_graph_errors_total",
                           {"kind": "SourceUnavailable"}) == 1
    assert s.live()


def test_graph_answering_503_with_a_long_retry_after_is_not_waited_for(kube, kiali):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    kiali.inject(status=503, times=10, headers={"Retry-After": "30"})
    s = kiali_scaler(kube, kiali)
    report = s.tick()
    assert report.services["cartservice"].result.status == "written"
    assert kube.scale_writes() == [(NS, "cartservice", 4)]
    assert len(kiali.requests) == 1  # 30 s is past the deadline: not waited, not retried


def test_graph_retry_after_that_fits_the_deadline_is_waited_then_retried(kiali):
    kiali.inject(status=503, times=1, headers={"Retry-After": "0"})
    client = KialiClient(kiali.url, retries=3, backoff_s=0.0, backoff_jitter_s=0.0)
    assert "elements" in client.fetch_graph(NS, deadline=time.monotonic() + 5.0)
    assert len(kiali.requests) == 2


def test_graph_request_never_outlives_its_deadline(kiali):
    kiali.inject(status=None, delay_s=3.0, times=5)
    client = KialiClient(kiali.url, timeout_s=30.0, retries=3, backoff_s=0.0)
    with pytest.raises(SourceUnavailable):
        client.fetch_graph(NS, deadline=time.monotonic() + 0.5)
    assert len(kiali.requests) == 1


def test_graph_answer_above_the_cap_is_refused_while_streaming(kube, kiali):
    """No Content-Length announced: the client learns the size only by reading, and stops
    reading at the cap (a typed error, before any JSON parsing); the rule still writes."""
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    big = json.dumps({"elements": {"nodes": [], "edges": []},
                      "pad": "x" * (1 << 20)}).encode()
    kiali.inject(status=None, body=big, chunked=True, times=2)
    with pytest.raises(PayloadTooLarge, match="max_payload_bytes=65536"):
        KialiClient(kiali.url, max_payload_bytes=65536, retries=0).fetch_graph(NS)
    s = kiali_scaler(kube, kiali, graph_max_payload_bytes=65536)
    report = s.tick()
    assert report.services["cartservice"].result.status == "written"
    assert s.metrics.value("gnnrl_scaler_graph_errors_total",
                           {"kind": "PayloadTooLarge"}) == 1


def test_default_graph_payload_cap_fits_a_1_gib_pod():
    from gnnrl.scaler.config import ScalerConfig

    assert ScalerConfig().graph_max_payload_bytes == 8 * 1024 * 1024


def test_liveness_follows_completed_ticks(kube):
    fake_cluster(kube, {"cartservice": (2, 0.7)})
    clock = FakeClock()
    s = scaler_for(kube, config(SVC), clock)
    assert s.live()  # started, no tick due yet
    clock.advance(3 * 15.0 + 1)
    assert not s.live()  # started but no tick finished for three intervals: wedged
    s.tick()
    assert s.live()
    clock.advance(3 * 15.0 + 1)
    assert not s.live()


def test_graph_is_not_fetched_when_the_reads_used_up_the_tick(kube):
    fake_cluster(kube, {"cartservice": (2, 1.4)})
    clock = FakeClock()
    calls = []

    def graph(deadline):
        calls.append(deadline)

    s = scaler_for(kube, config(SVC, tick_deadline_s=5.0, api_timeout_s=5.0), clock,
                   graph=graph)
    s.tick()
    assert calls == []  # nothing left once one API timeout is kept for the writes
    assert s.metrics.value("gnnrl_scaler_graph_errors_total", {"kind": "deadline"}) == 1
