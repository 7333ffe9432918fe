"""Train one PPO_GNN candidate (one seed) on the calibrated simulator; log it to MLflow."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from gnnrl.pipeline.components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_op(
    app_spec: Input[Dataset],
    trace: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    seed: int = 0,
    total_steps: int = 20000,
    episode_steps: int = 240,
    traces: str = "calibrated,diurnal,flash",
    mlflow_uri: str = "",
    warm_start: str = "champion",
    teacher: str = "headroom@dial",
) -> None:
    """Train with ``seed`` for ``total_steps`` env steps on ``traces`` (comma-separated kinds;
    ``calibrated`` = the calibrated trace); ``model`` is the model folder. ``warm_start``:
    champion (default; the shipped model when there is none), shipped or none. ``teacher``:
    the rule the candidate imitates (DAgger) before PPO."""
    from gnnrl.pipeline.steps import train_step

    result = train_step(
        app_spec=app_spec.path,
        trace=trace.path,
        out_dir=model.path,
        seed=seed,
        total_steps=total_steps,
        episode_steps=episode_steps,
        traces=traces,
        mlflow_uri=mlflow_uri,
        warm_start=warm_start,
        teacher=teacher,
    )
    model.metadata["seed"] = seed
    model.metadata["mlflow_run_id"] = result.run_id
    for key, value in result.metrics.items():
        metrics.log_metric(key, value)
