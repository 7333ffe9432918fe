"""Row validation for the snapshot dataset: which rows are written, which are quarantined.

A row that breaks a rule is not written to `nodes/` or `edges/`; it goes to
`quarantine/<dataset>/` with the rule's name in ``reason``, so a bad scrape never poisons the
training data and never disappears without trace. Null (NaN) numbers are allowed: they mean
"the source does not know". Present numbers must be finite and in range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Rule = tuple[str, Callable[[pd.DataFrame], np.ndarray]]


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _missing_key(col: str) -> Rule:
    def bad(df: pd.DataFrame) -> np.ndarray:
        s = df[col]
        return (s.isna() | (s.astype("string").fillna("").str.len() == 0)).to_numpy(dtype=bool)

    return (f"{col} missing", bad)


def _not_finite(col: str) -> Rule:
    def bad(df: pd.DataFrame) -> np.ndarray:
        v = _num(df, col)
        return np.isinf(v)

    return (f"{col} not finite", bad)


def _negative(col: str) -> Rule:
    def bad(df: pd.DataFrame) -> np.ndarray:
        v = _num(df, col)
        with np.errstate(invalid="ignore"):
            return v < 0

    return (f"{col} negative", bad)


def _above(col: str, limit: float) -> Rule:
    def bad(df: pd.DataFrame) -> np.ndarray:
        v = _num(df, col)
        with np.errstate(invalid="ignore"):
            return v > limit

    return (f"{col} above {limit:g}", bad)


def _not_integer(col: str) -> Rule:
    def bad(df: pd.DataFrame) -> np.ndarray:
        v = _num(df, col)
        finite = np.isfinite(v)
        out = np.zeros(len(v), dtype=bool)
        out[finite] = v[finite] != np.round(v[finite])
        out[finite] |= np.abs(v[finite]) > 2**31 - 1
        return out

    return (f"{col} not an integer", bad)


def _numeric(col: str) -> list[Rule]:
    return [_not_finite(col), _negative(col)]


#: Rules per dataset, checked in order; a row's ``reason`` lists every rule it broke.
NODE_RULES: list[Rule] = [
    _missing_key("service"),
    *_numeric("replicas"), _not_integer("replicas"),
    *_numeric("ready_replicas"), _not_integer("ready_replicas"),
    *_numeric("cpu_m"),
    *_numeric("mem_mi"),
    *_numeric("rx_kbps"),
    *_numeric("tx_kbps"),
    *_numeric("rps_in"),
]

EDGE_RULES: list[Rule] = [
    _missing_key("source"),
    _missing_key("target"),
    _missing_key("protocol"),
    *_numeric("qps"),
    *_numeric("p95_ms"),
    *_numeric("err_rate"), _above("err_rate", 1.0),
    *_numeric("mtls"), _above("mtls", 1.0),
]

RULES: dict[str, list[Rule]] = {"nodes": NODE_RULES, "edges": EDGE_RULES}


def check_rows(name: str, df: pd.DataFrame) -> pd.Series:
    """Return, per row of `df` (a `nodes` or `edges` frame), the reasons it is invalid.

    Returns:
        Series aligned with ``df.index``: ``""`` for a valid row, otherwise the broken
        rules joined with ``"; "`` (e.g. ``"replicas negative; cpu_m not finite"``).
    """
    reasons = np.full(len(df), "", dtype=object)
    for label, bad in RULES[name]:
        mask = bad(df)
        if mask.any():
            hit = reasons[mask]
            reasons[mask] = np.where(hit == "", label, hit + "; " + label)
    return pd.Series(reasons, index=df.index, dtype=object)
