"""`CollectJob`: the settings of one collection run, shared by `gnnrl collect` and the
pipeline's collect step (`gnnrl.data.collect_job`)."""

from __future__ import annotations

import pytest

from gnnrl.config import ConfigError
from gnnrl.data.collect_job import CollectJob, CollectResult, collect_dataset, job_source
from gnnrl.data.collector import CollectSummary
from gnnrl.data.reader import read_dataset


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"source": "ftp", "count": 1}, "source"),
        ({"source": "sim", "count": 0}, "count"),
        ({"source": "sim", "count": 1, "interval_s": 0}, "interval_s"),
        ({"source": "sim"}, "count / duration_s"),
        ({"source": "sim", "count": 1, "flush_every": 0}, "flush_every"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_field(settings, field):
    with pytest.raises(ConfigError, match=f"^{field}"):
        CollectJob(**settings)


def test_a_live_source_without_its_url_is_refused_naming_the_flag():
    with pytest.raises(ConfigError, match="--kiali-url"):
        job_source(CollectJob(source="kiali", namespace="shop", count=1))


def test_a_job_round_trips_through_json():
    job = CollectJob(source="prometheus", namespace="shop", url="http://prom:9090",
                     duration_s=3600.0, interval_s=15.0, token_file="/t", seed=3)
    assert CollectJob.from_json(job.to_json()) == job


@pytest.mark.parametrize(
    ("summary", "failure"),
    [
        (CollectSummary(ticks=3, stored=3), None),
        (CollectSummary(ticks=0, stored=0), None),                 # stopped before a tick
        (CollectSummary(ticks=2, stored=0, first_error="E: x"),
         "no snapshot collected in 2 tick(s); first error: E: x"),
        (CollectSummary(ticks=2, stored=1, store_error="disk full"),
         "the dataset could not be written, collection ended: disk full"),
    ],
)
def test_a_run_fails_when_nothing_was_stored_or_the_dataset_could_not_be_written(
        summary, failure):
    assert CollectResult(summary).failure() == failure


def test_a_simulated_run_appends_later_snapshots_on_virtual_time(tmp_path):
    job = CollectJob(source="sim", count=3, interval_s=15.0)
    for _ in range(2):
        result = collect_dataset(job, job_source(job), str(tmp_path))
        assert result.failure() is None and result.stopped_by is None
    ts = read_dataset(tmp_path).nodes.ts.drop_duplicates().sort_values()
    assert len(ts) == 6 and (ts.diff().dropna().dt.total_seconds() == 15).all()
