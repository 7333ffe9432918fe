"""The GNNRL Kubeflow pipeline (the DAG only; see gnnrl.pipeline for the runner)."""
