"""Render the scaler manifests for the promoted model version; apply them in-cluster."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from gnnrl.pipeline.components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def deploy_op(
    registered: Input[Artifact],
    manifests: Output[Artifact],
    namespace: str = "online-boutique",
    scaler_mode: str = "shadow",
    mlflow_uri: str = "",
    image: str = "",
    dial: float = 0.5,
) -> str:
    """Returns what was done: ``applied`` (in-cluster) or ``rendered`` (written only); the
    scaler's config gets ``dial``, the dial the model was judged at."""
    from gnnrl.pipeline.steps import deploy_step

    result = deploy_step(
        registered=registered.path,
        out_dir=manifests.path,
        namespace=namespace,
        mode=scaler_mode,
        mlflow_uri=mlflow_uri,
        image=image,
        dial=dial,
    )
    manifests.metadata["action"] = result.action
    manifests.metadata["model_uri"] = result.model_uri
    return result.action
