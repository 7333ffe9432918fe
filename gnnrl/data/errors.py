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
