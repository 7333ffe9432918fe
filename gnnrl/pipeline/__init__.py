"""The product loop around the policy: pipeline step functions, build options, local runner.

`gnnrl.pipeline.steps` holds what each KFP component calls (the components in
`gnnrl.pipeline.components` only parse inputs); `gnnrl.pipeline.runner` compiles, runs
locally, submits and schedules the DAG in `gnnrl.pipeline.dag`.
"""
