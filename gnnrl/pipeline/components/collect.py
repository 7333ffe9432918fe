"""Collect graph snapshots (simulator, Kiali or Prometheus) into a Parquet dataset."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from gnnrl.pipeline.components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def collect_op(
    snapshots: Output[Dataset],
    source: str = "sim",
    count: int = 240,
    interval_s: float = 15.0,
    namespace: str = "online-boutique",
    kiali_url: str = "",
    prometheus_url: str = "",
    seed: int = 0,
) -> None:
    """Write ``count`` snapshots from ``source`` to the ``snapshots`` dataset folder."""
    from gnnrl.pipeline.steps import collect_step

    collect_step(
        out_dir=snapshots.path,
        source=source,
        count=count,
        interval_s=interval_s,
        namespace=namespace,
        kiali_url=kiali_url,
        prometheus_url=prometheus_url,
        seed=seed,
    )
    snapshots.metadata["source"] = source
    snapshots.metadata["count"] = count
