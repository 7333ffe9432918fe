"""Data sources: a namespace's service graph and node usage as `GraphSnapshot`s.

* `gnnrl.sources.kiali` (`KialiClient`, `parse_graph`): Kiali's graph API.
* `gnnrl.sources.prometheus` (`PrometheusSource`): Istio standard metrics + cAdvisor.
* `gnnrl.sources.kubernetes` (`KubernetesSource`): replicas, pod usage, requests.
* `gnnrl.sources.errors`: the typed errors Kiali and Prometheus raise (retry on the type);
  the Kubernetes API's are `gnnrl.kube.errors` (the calls themselves are `gnnrl.kube`'s).
* `gnnrl.testing.istio_exporter` / `sim_driver`: a simulated mesh for Prometheus.

See docs/sources.md. Submodules are imported explicitly (no heavy imports here).
"""
