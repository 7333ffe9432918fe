"""Typed errors of the data layer (snapshot store, collector, calibration).

Callers decide by type, never by message text; messages name the file, column or service.
"""

from __future__ import annotations


class DataError(Exception):
    """Base class of every error raised by `gnnrl.data`."""


class SnapshotShapeError(DataError):
    """A `GraphSnapshot` handed to the writer lacks a column or has the wrong type."""


class WriterBusyError(DataError):
    """Another `SnapshotWriter` (this or another process) has the dataset folder open."""


class SchemaVersionError(DataError):
    """A Parquet file was written by a newer schema version than this code understands."""


class MissingDataError(DataError):
    """Columns a consumer needs are null (e.g. read from an older schema version) and the
    consumer's config says to refuse rather than impute."""


class CalibrationError(DataError):
    """The collected data cannot support a fit (too few points, no load variation, poor R^2,
    no entry service...). The message says which service and why."""


class StoreWriteError(DataError):
    """A flush could not be written (disk full, file too large, read-only or vanished
    folder: the `OSError` is the cause). Nothing of the flush became visible and the
    writer still holds what it buffered (`SnapshotWriter.pending_snapshots`)."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class DatasetFileError(DataError):
    """A Parquet file of the dataset lacks a column nothing can stand in for (``ts`` of a
    node or edge row, ``start`` of a gap, a row's key): reading it would give rows that
    belong to no time or no service. The message names the file and the column."""


class UnreadableFileWarning(UserWarning):
    """A file in a dataset folder was skipped: not Parquet, truncated, or with a column of
    another type than the schema's (e.g. numbers stored as text). The message names it."""
