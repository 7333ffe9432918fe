"""Snapshot data: the versioned Parquet store, the collection loop, calibration.

Modules (one concept each):

* `schema` - the pyarrow schemas and their version; `validate` - row rules (quarantine);
* `store` - `SnapshotWriter` (atomic, batched); `reader` - `read_dataset`;
* `missing` - refuse-or-impute policy for null columns (older schema versions);
* `collector` - `collect` / `run_collection` with retries, gaps and graceful stop;
  `clock` - real and virtual clocks; `sources` - adapters to the sources;
  `sim_source` - the simulator as a source; `duration` - "30s"/"2h" parsing;
* `calibrate` - app spec + trace from snapshots; `fit` - least squares with quality.
* `collect_job`, `calibrate_job` - one collect / calibrate run as ``gnnrl collect`` /
  ``gnnrl calibrate`` and the pipeline's steps both run it.

See docs/data.md.
"""
