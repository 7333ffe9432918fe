"""Real traces: format detection, counts -> req/s, resampling, windows, built-in traces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnrl.sim.trace_io import (
    TraceError,
    parse_duration,
    read_trace,
    resample,
)
from gnnrl.sim.traces import (
    load_trace,
    make_trace,
    parse_trace_spec,
    trace_from_spec,
    window_trace,
)


def _minutes(counts, path, start="2024-01-01 00:00", freq="min", header=("minute", "count")):
    t = pd.date_range(start, periods=len(counts), freq=freq)
    df = pd.DataFrame({header[0]: t.strftime("%Y-%m-%d %H:%M:%S"), header[1]: counts})
    if str(path).endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("header, fmt", [
    ("minute,count", "minute,count"),
    ("timestamp,value", "timestamp,value"),
    (" Minute , COUNT ", "minute,count"),
    ("t_s,rps", "t_s,rps"),
    ("t_s,rps,extra", "t_s,rps"),
])
def test_trace_format_is_detected_from_the_header(tmp_path, header, fmt):
    path = tmp_path / "t.csv"
    first = "0" if "t_s" in header else "2024-01-01 00:00:00"
    second = "60" if "t_s" in header else "2024-01-01 00:01:00"
    extra = ",x" if "extra" in header else ""
    path.write_text(f"{header}\n{first},5{extra}\n{second},7{extra}\n")
    assert read_trace(path).format == fmt


def test_unknown_trace_header_names_the_file_and_the_columns_found(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("when,hits\n2024-01-01,3\n")
    with pytest.raises(TraceError, match=r"odd\.csv: unknown trace format: columns when, hits"):
        read_trace(path)


def test_counts_per_minute_become_req_per_s_interpolated_between_bucket_centres(tmp_path):
    raw = read_trace(_minutes([60, 120], tmp_path / "m.csv"))
    assert raw.bucket_s == 60.0
    np.testing.assert_allclose(raw.rps, [1.0, 2.0])
    # 15 s intervals centred at 7.5 ... 112.5 s; bucket centres at 30 s and 90 s
    np.testing.assert_allclose(resample(raw, 15.0),
                               [1, 1, 1.125, 1.375, 1.625, 1.875, 2, 2])


def test_five_minute_buckets_become_req_per_s_without_one_interval_jumps(tmp_path):
    path = _minutes([300, 600, 300], tmp_path / "elb.csv", freq="5min",
                    header=("timestamp", "value"))
    rps = load_trace(path, interval_s=15.0)
    assert rps.shape == (60,)
    # the 600-count bucket's centre (450 s) falls between the intervals' (442.5, 457.5 s)
    assert rps[0] == pytest.approx(1.0) and rps.max() == pytest.approx(2.0 - 1.0 / 40)
    assert rps.mean() == pytest.approx(4 / 3, rel=0.02)  # 1200 requests in 900 s
    # holding buckets would jump by 1 req/s in one interval; interpolation spreads it
    assert np.abs(np.diff(rps)).max() == pytest.approx(1.0 / 20)


def test_t_s_rps_at_the_control_interval_passes_through(tmp_path):
    values = [3.0, 5.5, 4.25, 8.0, 1.0]
    path = tmp_path / "p.csv"
    pd.DataFrame({"t_s": np.arange(5) * 15.0, "rps": values}).to_csv(path, index=False)
    np.testing.assert_array_equal(load_trace(path, interval_s=15.0), values)


def test_t_s_rps_finer_than_the_interval_is_averaged(tmp_path):
    path = tmp_path / "fine.csv"
    pd.DataFrame({"t_s": np.arange(30), "rps": np.r_[np.full(15, 2.0), np.full(15, 4.0)]}
                 ).to_csv(path, index=False)
    np.testing.assert_allclose(load_trace(path, interval_s=15.0), [2.0, 4.0])


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_csv_gz_and_parquet_read_the_same(tmp_path, suffix):
    counts = [120, 240, 180, 60]
    rps = load_trace(_minutes(counts, tmp_path / f"t{suffix}"), interval_s=15.0)
    ref = load_trace(_minutes(counts, tmp_path / "ref.csv"), interval_s=15.0)
    np.testing.assert_array_equal(rps, ref)


def test_missing_buckets_are_interpolated(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("minute,count\n2024-01-01 00:00,60\n2024-01-01 00:01,60\n"
                    "2024-01-01 00:03,180\n2024-01-01 00:04,180\n")
    rps = load_trace(path, interval_s=60.0)
    np.testing.assert_allclose(rps, [1, 1, 2, 3, 3])


@pytest.mark.parametrize("text, seconds", [
    ("45s", 45), ("90m", 5400), ("12h", 43200), ("1d", 86400), ("294h", 294 * 3600),
    ("1562h30m", 1562.5 * 3600), ("1.5h", 5400), ("2D", 172800),
])
def test_durations_read_units_s_m_h_d(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["12", "12x", "h", "", "-1h", "1h 30m", "1w"])
def test_bad_duration_units_are_a_clear_error(text):
    with pytest.raises(TraceError, match=r"start: cannot read .* units? s, m, h or d"):
        parse_duration(text, "start")


def _ramp(tmp_path, minutes=60):
    path = tmp_path / "ramp.csv"  # rps = seconds since the start, 1 s samples
    pd.DataFrame({"t_s": np.arange(minutes * 60), "rps": np.arange(minutes * 60.0)}
                 ).to_csv(path, index=False)
    return path


def test_window_starts_at_its_offset_and_lasts_its_duration(tmp_path):
    rps = window_trace(_ramp(tmp_path), start="10m", duration="30m")
    assert rps.shape == (120,)
    assert rps[0] == pytest.approx(600 + 7)  # mean of seconds 600..614
    assert rps[-1] == pytest.approx(2400 - 8)


def test_window_is_rescaled_so_its_own_maximum_is_the_peak(tmp_path):
    rps = window_trace(_ramp(tmp_path), start="10m", duration="30m", peak_rps=100.0,
                       steps=200)
    assert rps[:120].max() == pytest.approx(100.0)
    assert rps[120:].max() > 100.0  # the trace goes on past the window (look-ahead)


@pytest.mark.parametrize("start, duration, match", [
    ("2h", "10m", r"start 2h is beyond the trace, which spans 1h"),
    ("50m", "20m", r"window 50m \+ 20m ends beyond the trace, which spans 1h"),
    ("10m", "0s", r"duration must be > 0"),
    ("10q", "5m", r"start: cannot read '10q'"),
])
def test_window_beyond_the_trace_or_with_bad_units_is_refused(tmp_path, start, duration,
                                                             match):
    with pytest.raises(TraceError, match=match):
        window_trace(_ramp(tmp_path), start=start, duration=duration)


def test_compress_squeezes_the_window_into_the_steps(tmp_path):
    rps = window_trace(_ramp(tmp_path), start="0s", duration="1h", steps=4, compress=True)
    np.testing.assert_allclose(rps, [449.5, 1349.5, 2249.5, 3149.5])


def test_a_short_episode_in_a_long_window_starts_at_a_seeded_offset_inside_it(tmp_path):
    path = _ramp(tmp_path)
    a = window_trace(path, start="0s", duration="1h", steps=8, seed=3)
    b = window_trace(path, start="0s", duration="1h", steps=8, seed=3)
    c = window_trace(path, start="0s", duration="1h", steps=8, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert 0 <= a[0] and a[-1] < 3600
    np.testing.assert_array_equal(window_trace(path, duration="1h", steps=8)[:1], [7.0])


def test_twelve_hours_of_worldcup98_replay_as_2880_steps_peaking_at_peak_rps():
    rps = window_trace("worldcup98", start="1622h30m", duration="12h", peak_rps=225.0)
    assert rps.shape == (2880,)
    assert rps.max() == pytest.approx(225.0)
    # the 1998-07-07 evening surge climbs over minutes: no 15 s step above 5 % of peak
    assert np.abs(np.diff(rps)).max() < 0.05 * 225.0


@pytest.mark.parametrize("spec, source, start, duration", [
    ("worldcup98@294h+12h", "worldcup98", "294h", "12h"),
    ("aws-elb@11d", "aws-elb", "11d", None),
    ("aws-elb", "aws-elb", None, None),
    ("diurnal", "diurnal", None, None),
])
def test_trace_specs_carry_a_window(spec, source, start, duration):
    p = parse_trace_spec(spec)
    assert (p.source, p.start, p.duration) == (source, start, duration)


def test_built_in_traces_work_wherever_a_trace_spec_is_accepted():
    whole = trace_from_spec("aws-elb", 100, peak_rps=50.0)
    assert whole.shape == (100,) and whole.max() <= 50.0 + 1e-9
    win = trace_from_spec("aws-elb@11d+2d", 200, peak_rps=50.0, seed=1)
    assert win.shape == (200,) and 0 < win.max() <= 50.0 + 1e-9


def test_surge_is_a_tenfold_jump_in_one_interval():
    rps = make_trace("surge", 240, peak_rps=100.0, seed=0, noise=0.0)
    assert rps.min() == pytest.approx(10.0) and rps.max() == pytest.approx(100.0)
    assert np.diff(rps).max() == pytest.approx(90.0)


def test_training_env_draws_episodes_inside_a_training_window():
    from gnnrl.core.envs.online_boutique import OnlineBoutique
    from gnnrl.sim.trace_windows import TRAIN_WINDOWS

    env = OnlineBoutique(trace=TRAIN_WINDOWS[1].spec, max_steps=16, peak_rps=100.0)
    env.reset(seed=1)
    first = env.unwrapped.future_entry_rps(16)
    env.reset(seed=2)
    second = env.unwrapped.future_entry_rps(16)
    assert first.shape == (16,) and not np.array_equal(first, second)
    assert 0 < first.max() <= 100.0 + 1e-9
    env.step(np.zeros(env.action_space.shape, dtype=np.int64))
