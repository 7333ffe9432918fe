"""Evaluate every candidate, the current champion and HPA on one suite; pick the best."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from gnnrl.pipeline.components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_op(
    candidates: Input[list[Model]],
    app_spec: Input[Dataset],
    trace: Input[Dataset],
    best_model: Output[Model],
    summary: Output[Dataset],
    report: Output[HTML],
    report_md: Output[Markdown],
    metrics: Output[Metrics],
    suite: str = "default",
    seeds: int = 5,
    baseline: str = "hpa",
    mlflow_uri: str = "",
    dial: float = 0.5,
) -> NamedTuple("EvaluateOutputs", best_policy=str, champion_version=str):
    """Same scenarios and ``seeds`` evaluation seeds for all policies (``suite``: default,
    quick or calibrated), every model at ``dial`` (0 = cheapest .. 1 = safest);
    ``best_model`` is the best candidate by SLO, then cost."""
    from collections import namedtuple

    from gnnrl.pipeline.steps import evaluate_step

    # the report is an HTML page: give it the extension, so that a download from the KFP UI
    # or the artifact store opens in a browser (KFP keeps a URI the component changed)
    if not report.uri.endswith(".html"):
        report.uri += ".html"
    result = evaluate_step(
        candidates=[c.path for c in candidates],
        app_spec=app_spec.path,
        trace=trace.path,
        suite=suite,
        seeds=seeds,
        out_dir=summary.path,
        best_model_out=best_model.path,
        report_html_out=report.path,
        report_md_out=report_md.path,
        mlflow_uri=mlflow_uri,
        baseline=baseline,
        dial=dial,
    )
    for key, value in result.metrics.items():
        metrics.log_metric(key, value)
    best_model.metadata["policy"] = result.best_policy
    best_model.metadata["dial"] = dial
    outputs = namedtuple("EvaluateOutputs", ["best_policy", "champion_version"])
    return outputs(result.best_policy, result.champion_version)
