"""Queueing formulas the simulator uses, vectorised over numpy arrays.

Model of one service (see docs/simulator.md for the justification):

* Kubernetes' ClusterIP routing (kube-proxy iptables/IPVS, or Envoy's default
  round-robin/least-request in Istio) spreads requests over the ready pods; we model the
  ``c`` ready pods as ``c`` independent M/M/1 queues each fed ``lambda / c`` (random
  routing). A pod serves ``mu = capacity_rps`` requests/s.
* A request's time at a pod is a fixed part ``d`` (network, serialisation, I/O:
  ``service_time_ms``) plus the M/M/1 sojourn, which is exponential with rate
  ``mu - lambda / c`` (Kleinrock, Queueing Systems Vol. 1, 3.2).
* Above saturation the fluid backlog (requests waiting beyond the step's capacity) adds
  ``backlog / (c * mu)`` seconds of delay; the stationary term is evaluated at a utilisation
  capped at `RHO_CAP` so the two do not double count.
* A caller's response time adds its callees' response times (the OnlineBoutique services
  call their dependencies sequentially), ``calls_per_request`` times each. We track the
  deterministic part and the mean/variance of the random part separately and read the p95
  from a gamma distribution with those moments (Wilson-Hilferty approximation of its
  quantile). For a single M/M/1 hop the gamma is exact (shape 1).
"""

from __future__ import annotations

import numpy as np

#: Utilisation at which the stationary M/M/1 term stops growing; beyond it the fluid
#: backlog carries the delay. 0.98 keeps the stationary mean below 50 service times.
RHO_CAP = 0.98
#: Standard normal 95th percentile.
Z95 = 1.6448536269514722


def mm1_sojourn_moments(lam_per_pod: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (s, s^2) of an M/M/1 sojourn time at utilisation min(lam/mu, RHO_CAP).

    Shapes: lam_per_pod, mu: (...,) req/s -> mean (...,) s, var (...,) s^2.
    """
    rho = np.minimum(lam_per_pod / mu, RHO_CAP)
    mean = 1.0 / (mu * (1.0 - rho))
    return mean, mean * mean


def gamma_p95(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """95th percentile of a gamma distribution with the given mean and variance.

    Wilson-Hilferty: for shape k, Q(p) ~= k*theta*(1 - 1/(9k) + z_p*sqrt(1/(9k)))^3.
    Zero mean gives zero. Shapes: (...,) -> (...,), same units as `mean`.
    """
    mean = np.asarray(mean, dtype=float)
    if mean.ndim == 0 and np.ndim(var) == 0:
        return gamma_p95(mean.reshape(1), np.reshape(var, 1)).reshape(())
    safe_mean = np.maximum(mean, 1e-12)
    # computed in place on temporaries (same formula, fewer allocations)
    k = np.divide(safe_mean * safe_mean, np.maximum(var, 1e-18))
    np.maximum(k, 1e-3, out=k)
    k *= 9.0
    a = np.divide(1.0, k, out=k)  # 1 / (9k)
    r = np.sqrt(a)
    r *= Z95
    r += 1.0
    r -= a
    np.maximum(r, 0.0, out=r)
    q = r * r
    q *= r
    q *= safe_mean
    return np.where(mean > 0, q, 0.0)
