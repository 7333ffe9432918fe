"""Test fakes at the process boundary (HTTP-level), reusable by every area's tests.

`gnnrl.testing.k8s_fake.FakeKubernetes` is a threaded HTTP server that the official
`kubernetes` client talks to as if it were a kube-apiserver.
"""
