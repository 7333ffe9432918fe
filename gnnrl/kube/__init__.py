"""Kubernetes I/O: the one place GNNRL talks to the Kubernetes API.

* `gnnrl.kube.errors`: typed errors (`K8sConflict` 409, `K8sTooManyRequests` 429 with
  `retry_after_s`, `K8sForbidden`, `K8sNotFound`, `K8sUnavailable`, `K8sMalformed`) and the
  mapping of the official client's exceptions onto them;
* `gnnrl.kube.quantities`: quantities (CPU -> millicores, memory -> MiB), Go durations,
  timestamps;
* `gnnrl.kube.client`: `call_api`, `load_api_client`, and `KubeClient` (Deployments, the
  scale subresource read and written with its resourceVersion, pods, metrics.k8s.io);
* `gnnrl.kube.pods`: a pod's CPU request and limit and its start-up time.

Its users: the Kubernetes data source (`gnnrl.sources.kubernetes`), the real-cluster env
backend (`gnnrl.core.envs.k8s_backend`) and the scaler (`gnnrl.scaler.kube`, its leader
election and events). The layer sits above `gnnrl.sim` and below `gnnrl.sources`.
"""
