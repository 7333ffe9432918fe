"""The GNNRL retraining DAG: collect -> calibrate -> train (xN seeds) -> evaluate -> register
-> (if promoted) deploy. Only wiring lives here; every step calls ``gnnrl.*``.

`build_pipeline(options)` returns the pipeline function for the compile-time
`BuildOptions` (GPU request, node selector, toleration, secrets, fan-out width); the
run-time knobs are its parameters, with defaults, so a run can be started from the KFP
UI by filling the form. ``dial`` (0 = cheapest .. 1 = safest) leaves training alone (the
model learns the whole trade-off); evaluation and the gate judge the candidates at it, the
registered version records it, and deploy writes it into the scaler's config.

`gnnrl.pipeline.runner` compiles it (the committed copy is ``gnnrl_pipeline.yaml`` beside
this file), runs it locally, submits and schedules it.
"""

from kfp import dsl, kubernetes

from gnnrl.pipeline.components.calibrate import calibrate_op
from gnnrl.pipeline.components.collect import collect_op
from gnnrl.pipeline.components.deploy import deploy_op
from gnnrl.pipeline.components.evaluate import evaluate_op
from gnnrl.pipeline.components.register import register_op
from gnnrl.pipeline.components.train import train_op
from gnnrl.pipeline.options import BuildOptions

PIPELINE_NAME = "gnnrl-retrain"
#: where the Kiali/Prometheus token Secret is mounted (gnnrl.pipeline.steps.TOKEN_FILE)
KIALI_TOKEN_DIR = "/var/run/secrets/gnnrl-kiali"


def _mlflow_credentials(task: dsl.PipelineTask, options: BuildOptions) -> None:
    if options.mlflow_secret:
        kubernetes.use_secret_as_env(
            task,
            secret_name=options.mlflow_secret,
            secret_key_to_env={
                "username": "MLFLOW_TRACKING_USERNAME",
                "password": "MLFLOW_TRACKING_PASSWORD",
            },
            optional=True,
        )


def _gpu(task: dsl.PipelineTask, options: BuildOptions) -> None:
    task.set_cpu_request(options.train_cpu).set_memory_request(options.train_memory)
    if not options.gpu:
        return
    task.set_accelerator_type(options.accelerator_type)
    task.set_accelerator_limit(options.accelerator_limit)
    selector = options.node_selector_pair()
    if selector:
        kubernetes.add_node_selector(task, label_key=selector[0], label_value=selector[1])
    toleration = options.toleration_pair()
    if toleration:
        kubernetes.add_toleration(
            task, key=toleration[0], operator="Exists", effect=toleration[1]
        )


def build_pipeline(options: "BuildOptions | None" = None):
    """The pipeline function compiled with ``options`` (defaults: one GPU per train task)."""
    opts = options or BuildOptions()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Collect graph snapshots, calibrate the simulator, train PPO_GNN over "
        "seeds, evaluate against the champion and HPA, gate, and deploy the scaler.",
    )
    def gnnrl_pipeline(
        source: str = "sim",
        namespace: str = "online-boutique",
        kiali_url: str = "http://kiali.istio-system.svc:20001/kiali",
        prometheus_url: str = "http://prometheus.istio-system.svc:9090",
        snapshot_count: int = 240,
        snapshot_interval_s: float = 15.0,
        train_seeds: list = [0, 1, 2],  # noqa: B006 (KFP reads literal defaults)
        train_steps: int = 200000,
        episode_steps: int = 240,
        train_traces: str = "calibrated,diurnal,flash,ramp",
        train_warm_start: str = "champion",
        train_teacher: str = "headroom@dial",
        eval_suite: str = "default",
        eval_seeds: int = 5,
        gate_slo_margin: float = 0.0,
        gate_cost_margin: float = 0.0,
        gate_hpa_slo_margin: float = 0.0,
        gate_hpa_cost_margin: float = 0.0,
        gate_min_confidence: float = 0.9,
        baseline_policy: str = "hpa",
        dial: float = 0.5,
        mlflow_uri: str = "http://mlflow.mlflow.svc:5000",
        scaler_namespace: str = "online-boutique",
        scaler_mode: str = "shadow",
        scaler_image: str = "",
    ):
        collect = collect_op(
            source=source,
            count=snapshot_count,
            interval_s=snapshot_interval_s,
            namespace=namespace,
            kiali_url=kiali_url,
            prometheus_url=prometheus_url,
        )
        collect.set_caching_options(False)  # live data: never reuse yesterday's snapshots
        if opts.collect_retries:
            collect.set_retry(
                num_retries=opts.collect_retries, backoff_duration="30s", backoff_factor=2.0
            )
        if opts.kiali_secret:
            # a file, not an env var: the collector re-reads it at every request, so a
            # rotated token is picked up (gnnrl collect --token-file)
            kubernetes.use_secret_as_volume(
                collect,
                secret_name=opts.kiali_secret,
                mount_path=KIALI_TOKEN_DIR,
                optional=True,
            )

        calibrate = calibrate_op(snapshots=collect.outputs["snapshots"])

        with dsl.ParallelFor(train_seeds, parallelism=opts.parallelism) as seed:
            train = train_op(
                app_spec=calibrate.outputs["app_spec"],
                trace=calibrate.outputs["trace"],
                seed=seed,
                total_steps=train_steps,
                episode_steps=episode_steps,
                traces=train_traces,
                mlflow_uri=mlflow_uri,
                warm_start=train_warm_start,
                teacher=train_teacher,
            )
            _gpu(train, opts)
            _mlflow_credentials(train, opts)

        evaluate = evaluate_op(
            candidates=dsl.Collected(train.outputs["model"]),
            app_spec=calibrate.outputs["app_spec"],
            trace=calibrate.outputs["trace"],
            suite=eval_suite,
            seeds=eval_seeds,
            baseline=baseline_policy,
            mlflow_uri=mlflow_uri,
            dial=dial,
        )
        _mlflow_credentials(evaluate, opts)

        register = register_op(
            model=evaluate.outputs["best_model"],
            summary=evaluate.outputs["summary"],
            best_policy=evaluate.outputs["best_policy"],
            champion_version=evaluate.outputs["champion_version"],
            slo_margin=gate_slo_margin,
            cost_margin=gate_cost_margin,
            hpa_slo_margin=gate_hpa_slo_margin,
            hpa_cost_margin=gate_hpa_cost_margin,
            baseline_policy=baseline_policy,
            mlflow_uri=mlflow_uri,
            dial=dial,
            min_confidence=gate_min_confidence,
        )
        register.set_caching_options(False)  # registry state changes between runs
        _mlflow_credentials(register, opts)

        with dsl.If(register.outputs["Output"] == True, name="promoted"):  # noqa: E712
            deploy = deploy_op(
                registered=register.outputs["registered"],
                namespace=scaler_namespace,
                scaler_mode=scaler_mode,
                mlflow_uri=mlflow_uri,
                image=scaler_image,
                dial=dial,
            )
            deploy.set_caching_options(False)
            _mlflow_credentials(deploy, opts)

    return gnnrl_pipeline
