"""Register the best candidate as gnnrl-scaler, run the promotion gate, move the aliases."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from gnnrl.pipeline.components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_op(
    model: Input[Model],
    summary: Input[Dataset],
    registered: Output[Artifact],
    gate_metrics: Output[Metrics],
    best_policy: str,
    champion_version: str,
    slo_margin: float = 0.0,
    cost_margin: float = 0.0,
    hpa_slo_margin: float = 0.0,
    hpa_cost_margin: float = 0.0,
    baseline_policy: str = "hpa",
    mlflow_uri: str = "",
    dial: float = 0.5,
    min_confidence: float = 0.0,
) -> bool:
    """Returns True only when the gate moved ``champion`` to the new version; the version
    records the ``dial`` it was judged at (tag ``gnnrl.dial``).

    ``registered`` holds ``registered.json`` (version, model URI, decision, reasons); the
    single boolean output keeps the deploy condition simple for every KFP backend.
    """
    from gnnrl.pipeline.steps import register_step

    result = register_step(
        model_dir=model.path,
        summary=summary.path,
        best_policy=best_policy,
        champion_version=champion_version,
        slo_margin=slo_margin,
        cost_margin=cost_margin,
        hpa_slo_margin=hpa_slo_margin,
        hpa_cost_margin=hpa_cost_margin,
        baseline_policy=baseline_policy,
        mlflow_uri=mlflow_uri,
        run_id=model.metadata.get("mlflow_run_id", ""),
        record_out=registered.path,
        dial=dial,
        min_confidence=min_confidence,
    )
    registered.metadata["version"] = result.version
    registered.metadata["model_uri"] = result.model_uri
    registered.metadata["promoted"] = result.promoted
    gate_metrics.log_metric("promoted", float(result.promoted))
    for key, value in result.decision.as_tags().items():
        if key.endswith(("slo_violation_rate", "replica_hours", "confidence")):
            gate_metrics.log_metric(key, float(value))
    return result.promoted
