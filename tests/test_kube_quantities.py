"""Kubernetes quantity, duration and timestamp strings as numbers (apimachinery's
resource.Quantity grammar, Go's time.ParseDuration, RFC 3339)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrl.kube.quantities import (
    QuantityError,
    cpu_millicores,
    go_duration_s,
    memory_mib,
    timestamp_s,
)

CPU = [  # (quantity, millicores)
    ("250m", 250.0),
    ("1", 1000.0),
    ("0.5", 500.0),
    (".5", 500.0),
    ("2", 2000.0),
    ("123456789n", 123.456789),      # metrics-server reports nanocores
    ("1500000u", 1500.0),
    ("1e3", 1_000_000.0),
    ("1E-3", 1.0),
    ("1.5e-1", 150.0),
    ("1k", 1_000_000.0),
    ("0", 0.0),
    (3, 3000.0),
    (0.25, 250.0),
]
MEMORY = [  # (quantity, MiB)
    ("64Mi", 64.0),
    ("1Gi", 1024.0),
    ("65536Ki", 64.0),              # metrics-server reports Ki
    ("1Ti", 1024.0 * 1024),
    ("134217728", 128.0),
    ("128M", 128e6 / 2**20),
    ("1e9", 1e9 / 2**20),
    ("1G", 1e9 / 2**20),
    ("1.5Gi", 1536.0),
    ("2E", 2e18 / 2**20),           # bare E is exa, not an exponent
]


@pytest.mark.parametrize(("quantity", "millicores"), CPU)
def test_cpu_quantities_parse_to_millicores(quantity, millicores):
    assert cpu_millicores(quantity) == pytest.approx(millicores)


@pytest.mark.parametrize(("quantity", "mib"), MEMORY)
def test_memory_quantities_parse_to_mib(quantity, mib):
    assert memory_mib(quantity) == pytest.approx(mib)


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1Kb", "1 Gi", "Mi", "1e", "-1", "-250m",
                                 "1e999999999", True, None, [1]])
def test_non_quantities_raise_a_typed_error_quoting_them(bad):
    with pytest.raises(QuantityError):
        cpu_millicores(bad, path="spec.containers.server.requests.cpu")


def test_error_names_the_field():
    with pytest.raises(QuantityError, match=r"spec\.x\.memory: not a Kubernetes quantity: '12Qi'"):
        memory_mib("12Qi", path="spec.x.memory")


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789.eE+-numkKMGTPEi ", max_size=12), st.text(max_size=6)))
def test_any_string_is_a_number_or_a_quantity_error(text):
    try:
        value = cpu_millicores(text)
    except QuantityError:
        return
    assert math.isfinite(value) and value >= 0


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "m", "k", "Ki", "Mi"]))
def test_suffixes_scale_exactly(number, suffix):
    factor = {"": 1, "m": 1e-3, "k": 1e3, "Ki": 1024, "Mi": 1024**2}[suffix]
    assert cpu_millicores(f"{number}{suffix}") == pytest.approx(number * factor * 1000)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("1m0s", 60.0), ("10.5s", 10.5), ("1h2m3s", 3723.0), ("500ms", 0.5),
    ("", 0.0), (None, 0.0),
])
def test_metrics_windows_parse_as_go_durations(text, seconds):
    assert go_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["30", "s", "1d", "30 s", "-1s"])
def test_a_window_that_is_not_a_duration_raises_a_quantity_error(bad):
    with pytest.raises(QuantityError, match="window"):
        go_duration_s(bad, path="items[0].window")


def test_timestamps_read_as_utc_epoch_seconds():
    import datetime as dt

    assert timestamp_s("1970-01-01T00:01:00Z") == 60.0
    assert timestamp_s(dt.datetime(1970, 1, 1, 0, 2)) == 120.0   # naive = UTC
    assert timestamp_s(None) is None
    with pytest.raises(QuantityError, match="creationTimestamp"):
        timestamp_s("yesterday", path="metadata.creationTimestamp")
