"""Least-squares fits with their quality, as calibration reports them."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class LinearFit:
    """``y ~= X @ coef`` (no intercept) and how well it fits.

    Attributes:
        coef: (k,) coefficients, in the units of y per unit of each column.
        n: points used.
        r2: coefficient of determination, ``1 - SS_res / SS_tot`` (SS_tot about the mean of
            y); 1 is perfect, <= 0 is no better than the mean.
        rmse: root mean square residual, units of y.
        rel_rmse: rmse / mean(|y|).
        max_abs_residual: largest |residual|, units of y.
        cond: condition number of X (large: the columns are nearly collinear, so the split
            between coefficients is not determined by the data).
    """

    coef: np.ndarray
    n: int
    r2: float
    rmse: float
    rel_rmse: float
    max_abs_residual: float
    cond: float


def fit_linear(X: np.ndarray, y: np.ndarray, relative: bool = False) -> LinearFit:
    """Least squares without intercept.

    With ``relative=True`` the *relative* residuals ``(y - X c) / y`` are minimised
    (weighted least squares with weights 1/y^2): the right estimator when the noise is
    multiplicative, as for CPU and memory readings (the simulator's are log-normal, and
    cAdvisor's rate over a window scales with the value). Rows with y <= 0 are then ignored.
    R^2 and the residual statistics are always on the original scale.

    Shapes: X (n, k), y (n,) -> LinearFit with coef (k,).

    Raises:
        ValueError: fewer rows than columns.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, k = X.shape
    if n < k:
        raise ValueError(f"{n} points cannot determine {k} coefficients")
    if relative:
        pos = y > 0
        X, y = X[pos], y[pos]
        n = len(y)
        if n < k:
            raise ValueError(f"{n} positive points cannot determine {k} coefficients")
        coef, *_ = np.linalg.lstsq(X / y[:, None], np.ones(n), rcond=None)
    else:
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    ss_res = float(resid @ resid)
    centred = y - y.mean()
    ss_tot = float(centred @ centred)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else -np.inf)
    rmse = float(np.sqrt(ss_res / n))
    scale = float(np.mean(np.abs(y))) or 1.0
    sv = np.linalg.svd(X, compute_uv=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
    return LinearFit(coef=coef, n=n, r2=float(r2), rmse=rmse, rel_rmse=rmse / scale,
                     max_abs_residual=float(np.max(np.abs(resid))) if n else 0.0, cond=cond)
