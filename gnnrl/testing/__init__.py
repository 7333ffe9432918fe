"""Test doubles, one per service GNNRL talks to, reusable by every area's tests (nothing
in the product imports this package).

==========================  ===========================================================
module                      stands in for
==========================  ===========================================================
`k8s_fake.FakeKubernetes`   the kube-apiserver (HTTP; the official client talks to it):
                            Deployments, scale, pods, metrics, leases, events, discovery,
                            server-side apply; injectable 409/429/timeouts
`kiali_fake.FakeKiali`      Kiali's graph API (HTTP): stored payloads, faults, scripts
`prometheus_fake`           Prometheus: the real binary on loopback (`PrometheusServer`),
                            or one canned answer (`CannedPrometheus`)
`istio_exporter`            the metrics Istio's sidecars and cAdvisor expose (scraped
                            by the real Prometheus); `sim_driver` moves it with the sim
`mlflow_fake`               MLflow: the real ``mlflow server`` (`MlflowServer`) and a
                            proxy refusing chosen calls or all of them (`MlflowProxy`)
`kfp_fake.FakeKfp`          the Kubeflow Pipelines v2beta1 API (HTTP)
`clock.TickingClock`        ``time.monotonic`` where code takes a bare ``clock()``
`cli.run_gnnrl`             a user running ``gnnrl ...`` in a child process
`observation`               observation dicts built by hand (schema of the env)
`apps.write_tiny_app`       an application: two services, for fast training tests
==========================  ===========================================================

`loopback.LoopbackServer` / `base.LoopbackFake` are what the HTTP fakes share.
"""
