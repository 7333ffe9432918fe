"""One calibration run, as ``gnnrl calibrate`` and the pipeline's calibrate step both run
it: read a snapshot dataset (`read_snapshots`), fit the application spec and the entry
traffic trace (`gnnrl.data.calibrate.calibrate`) and write them (`calibrate_to_files`).
See docs/data.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from gnnrl.config import atomic_write_text
from gnnrl.data.calibrate import CalibrateConfig, Calibration, calibrate
from gnnrl.data.errors import DataError, UnreadableFileWarning
from gnnrl.data.reader import SnapshotData, read_dataset
from gnnrl.sim.spec import save_app_spec


class NoSnapshotsError(DataError):
    """The dataset folder holds no usable snapshot (empty, or every file skipped)."""


def read_snapshots(root: str | Path, warn: Callable[[str], None] | None = None
                   ) -> SnapshotData:
    """The snapshots under `root` to calibrate from.

    Files that cannot be read (not Parquet, truncated, a column of another type) are
    skipped; `warn` gets one line per skipped file, once the dataset was read.

    Raises:
        FileNotFoundError: `root` does not exist.
        DataError: the dataset cannot be read (`gnnrl.data.reader.read_dataset`);
            `NoSnapshotsError` when no usable snapshot is left.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnreadableFileWarning)
        data = read_dataset(root)
    for w in caught:
        if warn is not None:
            warn(str(w.message))
    if data.nodes.empty:
        raise NoSnapshotsError(f"no usable snapshot in {root}"
                               + (f" ({len(caught)} file(s) skipped)" if caught else "")
                               + "; collect some with `gnnrl collect --out DIR`")
    return data


def calibrate_to_files(data: SnapshotData, config: CalibrateConfig, app_out: str | Path,
                       trace_out: str | Path | None = None) -> Calibration:
    """Fit `data` (`calibrate`), write the app spec to `app_out` (.yaml or .json) and, when
    given, the entry trace to `trace_out` (CSV ``t_s,rps``, atomically).

    Raises:
        ConfigError: a bad setting in `config`.
        DataError, AppSpecError: the data cannot support a fit (the message says why).
    """
    result = calibrate(data, config)
    save_app_spec(result.app, app_out)
    if trace_out:
        atomic_write_text(trace_out, result.trace.to_csv(index=False))
    return result
