"""What a consumer does with null columns (docs/reliability.md C5): refuse, or impute by config.

Rows read from an older schema version have nulls where that version had no column
(`gnnrl.data.schema.ADDED_IN_V1`); a source may also not know a value (Kiali knows no CPU).
Training and calibration never fill those silently: they call `resolve_missing` with a
`MissingPolicy`, which either raises `MissingDataError` naming the columns and schema
versions, or imputes with the named strategy and reports how many values it filled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.data.errors import MissingDataError

ACTIONS = ("refuse", "impute")
STRATEGIES = ("zero", "ffill", "median")


@dataclasses.dataclass
class MissingPolicy(JsonConfig):
    """How to treat nulls in required columns.

    Attributes:
        action: ``"refuse"`` (default: raise `MissingDataError`) or ``"impute"``.
        strategy: for ``impute``: ``"zero"`` (0), ``"ffill"`` (last known value of the same
            service/edge, then 0) or ``"median"`` (the column's median per service/edge).
    """

    action: str = "refuse"
    strategy: str = "ffill"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"MissingPolicy.action must be one of {ACTIONS}, got "
                              f"{self.action!r}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"MissingPolicy.strategy must be one of {STRATEGIES}, got "
                              f"{self.strategy!r}")


def resolve_missing(
    df: pd.DataFrame,
    columns: Sequence[str],
    policy: MissingPolicy,
    *,
    group_by: Sequence[str] = (),
    what: str = "data",
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Check `columns` of `df` for nulls and apply `policy`.

    Args:
        df: a frame from `read_dataset` (sorted by time).
        columns: the columns the consumer needs.
        policy: refuse or impute.
        group_by: key columns for ``ffill`` / ``median`` (e.g. ``["service"]``).
        what: the consumer's name, used in the error message.

    Returns:
        (frame with the columns filled, {column: number of values imputed}); the frame is
        `df` itself when nothing is missing.

    Raises:
        MissingDataError: a column is absent or has nulls and ``policy.action == "refuse"``.
    """
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise MissingDataError(f"{what}: column(s) {', '.join(absent)} not in the dataset")
    counts = {c: int(df[c].isna().sum()) for c in columns}
    counts = {c: n for c, n in counts.items() if n}
    if not counts:
        return df, {}
    if policy.action == "refuse":
        versions = sorted(int(v) for v in df.loc[df[list(counts)].isna().any(axis=1),
                                                  "schema_version"].unique()) \
            if "schema_version" in df.columns else []
        detail = ", ".join(f"{c} ({n} nulls)" for c, n in counts.items())
        raise MissingDataError(
            f"{what}: missing values in {detail}, in rows of schema version(s) {versions}; "
            "re-collect, or impute explicitly (MissingPolicy(action='impute', "
            "strategy='zero'|'ffill'|'median'), CLI --impute-missing STRATEGY)"
        )
    out = df.copy()
    keys = list(group_by)
    for col in counts:
        if policy.strategy == "zero":
            out[col] = out[col].fillna(0.0)
        elif policy.strategy == "ffill":
            filled = out.groupby(keys)[col].ffill() if keys else out[col].ffill()
            out[col] = filled.fillna(0.0)
        else:
            med = out.groupby(keys)[col].transform("median") if keys else out[col].median()
            out[col] = out[col].fillna(med).fillna(0.0)
    return out, counts
