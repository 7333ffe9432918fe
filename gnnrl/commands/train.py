"""Train the PPO_GNN policy in the simulator (PPO, vectorised envs, TGN memory).

Examples:
  # the shipped default model (about 30 minutes on 2 CPU cores)
  gnnrl train --config gnnrl/assets/models/default/train_config.json --out runs/default

  # a quick run on one trace with topology changes
  gnnrl train --total-steps 20000 --num-envs 4 --trace flash --topology static,churn \\
      --out runs/quick

  # resume an interrupted run (same --out): continues from the last checkpoint
  gnnrl train --config my.json --out runs/a

  # roll out on the batched simulator (same episodes, faster envs; not bit-identical)
  gnnrl train --env-pool batched --total-steps 200000 --out runs/fast

  # share each PPO update between two processes (a second CPU core; resumes exactly)
  gnnrl train --env-pool batched --learner-processes 2 --out runs/fast2

  # specialise the shipped model to your app (what the pipeline does nightly): two DAgger
  # iterations towards the headroom rule from its weights, then PPO on the decision as
  # served, keeping an update only if the model as deployed validates better
  gnnrl train --config gnnrl/assets/models/default/train_config.json \
      --warm-start gnnrl/assets/models/default --app my-app.yaml \
      --teacher headroom@dial --dagger 2 --served-margins --validate-as-deployed \
      --total-steps 96000 --out runs/mine

Output: DIR/model (the final policy: weights.pt + config.json), DIR/best (best evaluation
return), DIR/checkpoints, DIR/metrics.jsonl. With MLFLOW_TRACKING_URI set, parameters and
metrics are logged to MLflow too. Training seeds must be < 1000 (evaluation uses 1000+).
"""

from __future__ import annotations

import argparse
import sys

from gnnrl.config import ConfigError


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TrainConfig JSON (flags override it)")
    parser.add_argument("--total-steps", type=int, help="env steps over all envs")
    parser.add_argument("--num-envs", type=int, help="vectorised envs")
    parser.add_argument("--app", help="built-in app name or app spec path (YAML/JSON)")
    parser.add_argument("--trace", "--traces", dest="traces", type=_csv,
                        help="comma-separated trace kinds or replay files "
                             "(constant, diurnal, flash, ramp, fluctuating)")
    parser.add_argument("--peaks", type=lambda s: tuple(float(x) for x in _csv(s)),
                        help="comma-separated peak req/s of the traces")
    parser.add_argument("--topology", type=_csv,
                        help="comma-separated topology variants: static, add, remove, churn")
    parser.add_argument("--goal", choices=("latency", "cost"), help="reward preset")
    parser.add_argument("--seed", type=int, help="run seed, 0..999")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default 1)")
    parser.add_argument("--no-tgn", action="store_true", help="structural GNN only")
    parser.add_argument("--env-pool", choices=("single", "batched"),
                        help="rollout envs: one Gymnasium env each (single, the default) or "
                             "rows of one batched simulator (batched: faster)")
    parser.add_argument("--learner-processes", type=int,
                        help="processes sharing each PPO update (1, the default: this one; "
                             "2: a data-parallel learner on a second core, CPU only)")
    parser.add_argument("--warm-start", metavar="DIR",
                        help="start from this saved model's weights and feature scaling "
                             "(its architecture wins over the config's)")
    parser.add_argument("--teacher", help="imitation teacher: hpa, hpa-NN, headroom, oracle, "
                                          "or one of them @dial")
    parser.add_argument("--dagger", type=int, metavar="N",
                        help="DAgger iterations (with --warm-start: from its weights)")
    parser.add_argument("--served-margins", action="store_true", default=None,
                        help="PPO draws moves with the model's hold margins applied, so it "
                             "improves the decision as served (ppo.served_margins)")
    parser.add_argument("--validate-as-deployed", action="store_true", default=None,
                        help="pick best/ on the model behind the scaler's guard, as "
                             "deployed (validate_as_deployed)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore checkpoints in --out and start over")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace):
    """The TrainConfig from --config and the flags (flags win)."""
    from gnnrl.core.agents.train import TrainConfig

    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    top = {"app": args.app, "traces": args.traces, "peaks": args.peaks,
           "topology": args.topology, "goal_reward": args.goal, "seed": args.seed,
           "device": args.device, "torch_threads": args.threads,
           "env_pool": args.env_pool, "learner_processes": args.learner_processes,
           "warm_start": args.warm_start, "bc_teacher": args.teacher,
           "bc_dagger": args.dagger, "validate_as_deployed": args.validate_as_deployed}
    cfg = cfg.replace(**{k: v for k, v in top.items() if v is not None})
    # --app and --peaks replace a config's app mix and per-app relative peaks (which
    # would otherwise take precedence over them)
    if args.app is not None:
        cfg = cfg.replace(apps=())
    if args.peaks is not None:
        cfg = cfg.replace(peak_scales=())
    ppo = {"total_steps": args.total_steps, "num_envs": args.num_envs,
           "served_margins": args.served_margins}
    ppo = {k: v for k, v in ppo.items() if v is not None}
    if ppo:
        cfg = cfg.replace(ppo=cfg.ppo.replace(**ppo))
    if args.no_tgn:
        cfg = cfg.replace(policy=cfg.policy.replace(use_tgn=False))
    return cfg


def check_inputs(cfg) -> None:
    """Read the app spec and every trace the run will use, before anything is written to
    --out (a bad input then leaves no half-made run folder behind).

    Raises:
        AppSpecError: the spec is missing, unparsable or invalid (a cycle, ...).
        TraceError: a trace file is missing or has the wrong columns.
        ModelLoadError: the warm start is not a loadable model folder.
        ValueError: an unknown topology variant.
    """
    from gnnrl.core.agents.scenario_mix import (
        check_training_traces,
        expand_apps,
        training_scenarios,
    )
    from gnnrl.sim import load_app_spec
    from gnnrl.sim.traces import trace_from_spec

    check_training_traces(cfg.traces)
    for name in expand_apps(cfg.apps or (cfg.app,), cfg.seed):
        training_scenarios(load_app_spec(name), cfg.traces, cfg.peaks, cfg.topology,
                           cfg.max_steps)
    for trace in cfg.traces:
        trace_from_spec(trace, steps=cfg.max_steps, peak_rps=max(cfg.peaks))
    if cfg.warm_start:
        from gnnrl.core.agents.ppo_gnn import PPO_GNN

        PPO_GNN.load(cfg.warm_start)  # a missing or v1 model is refused here


def _one_line(exc: BaseException) -> str:
    """The message on one line (a YAML parser's message spans several)."""
    return " ".join(str(exc).split())


def run(args: argparse.Namespace) -> int:
    from gnnrl.core.agents.ppo import TrainingNaNError
    from gnnrl.core.agents.ppo_gnn import ModelLoadError
    from gnnrl.core.agents.train import train
    from gnnrl.registry.tracking import training_tracker
    from gnnrl.sim import AppSpecError, TraceError

    try:
        cfg = build_config(args)
        check_inputs(cfg)
    except (ConfigError, AppSpecError, TraceError, ModelLoadError, ValueError) as exc:
        print(f"gnnrl train: invalid input: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unreadable --config file
        print(f"gnnrl train: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"gnnrl train: {cfg.to_json(indent=None)}", file=sys.stderr)
    try:
        path = train(cfg, args.out, resume=not args.fresh, progress=not args.quiet,
                     tracker=training_tracker)
    except TrainingNaNError as exc:
        print(f"gnnrl train: stopped: {exc}; the last good checkpoint is kept in "
              f"{args.out}/checkpoints", file=sys.stderr)
        return 1
    except (ConfigError, AppSpecError, TraceError) as exc:
        print(f"gnnrl train: invalid input: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(path)
    return 0
