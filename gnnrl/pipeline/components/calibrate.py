"""Fit an application spec and a traffic trace from collected snapshots."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from gnnrl.pipeline.components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def calibrate_op(
    snapshots: Input[Dataset],
    app_spec: Output[Dataset],
    trace: Output[Dataset],
) -> None:
    """Snapshots -> ``app_spec`` (YAML application spec) and ``trace`` (CSV of req/s)."""
    from gnnrl.pipeline.steps import calibrate_step

    calibrate_step(snapshots.path, app_spec_out=app_spec.path, trace_out=trace.path)
    app_spec.metadata["format"] = "yaml"
    trace.metadata["format"] = "csv"
