"""`gnnrl train` as a user runs it (subprocess smoke test with a tiny budget)."""

from __future__ import annotations

import json
import subprocess

from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.testing.cli import run_gnnrl
from gnnrl.testing.observation import make_observation

TINY_APP = {
    "name": "tiny", "entry": "web", "slo_p95_ms": 150,
    "services": {
        "web": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 50,
                "service_time_ms": 5, "startup_s": 5},
        "db": {"cpu_request_m": 100, "mem_request_mi": 64, "capacity_rps": 100,
               "service_time_ms": 5, "startup_s": 5},
    },
    "calls": [{"from": "web", "to": "db", "per_request": 1.0}],
}


def _gnnrl(*args: str) -> subprocess.CompletedProcess:
    return run_gnnrl(*args, timeout=240)


def test_train_help_shows_examples():
    proc = _gnnrl("train", "--help")
    assert proc.returncode == 0
    assert "gnnrl train --config" in proc.stdout and "--total-steps" in proc.stdout


def test_train_command_writes_a_loadable_model(tmp_path):
    app = tmp_path / "tiny.json"
    app.write_text(json.dumps(TINY_APP))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"max_steps": 20, "eval_every": 0, "ppo": {
        "num_steps": 20, "num_minibatches": 2, "update_epochs": 1}}))
    out = tmp_path / "run"
    proc = _gnnrl("train", "--config", str(config), "--app", str(app), "--trace", "constant",
                  "--peaks", "100", "--topology", "static", "--total-steps", "40",
                  "--num-envs", "2", "--seed", "5", "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("model")
    model = PPO_GNN.load(out / "model")
    obs = make_observation([[2, 2, 100, 64, 50, 50], [1, 1, 50, 64, 50, 0]],
                           [(0, 1, 50, 10, 0, 1)])
    assert model.act(obs).shape == (20,)
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert {"approx_kl", "clip_frac", "explained_variance"} <= set(json.loads(rows[0]))


def test_train_command_rejects_a_training_seed_from_the_evaluation_range(tmp_path, capsys):
    from gnnrl.cli import main

    assert main(["train", "--seed", "1000", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "seed" in capsys.readouterr().err


def test_app_and_peaks_flags_replace_the_recipes_app_mix(tmp_path):
    from gnnrl.cli import build_parser
    from gnnrl.commands.train import build_config
    from gnnrl.evaluation.gnnrl_policy import default_model_dir

    recipe = str(default_model_dir() / "train_config.json")
    args = build_parser().parse_args(["train", "--config", recipe, "--app", "socialnetwork",
                                      "--peaks", "80,120", "--out", str(tmp_path)])
    cfg = build_config(args)
    assert (cfg.app, cfg.apps, cfg.peaks, cfg.peak_scales) == (
        "socialnetwork", (), (80.0, 120.0), ())
    kept = build_config(build_parser().parse_args(["train", "--config", recipe,
                                                   "--out", str(tmp_path)]))
    assert kept.apps and kept.peak_scales  # the shipped recipe's mix, untouched


def test_warm_start_teacher_and_dagger_flags_set_the_specialisation(tmp_path, capsys):
    from gnnrl.cli import build_parser, main
    from gnnrl.commands.train import build_config
    from gnnrl.evaluation.gnnrl_policy import default_model_dir

    shipped = str(default_model_dir())
    cfg = build_config(build_parser().parse_args([
        "train", "--config", f"{shipped}/train_config.json", "--warm-start", shipped,
        "--teacher", "headroom@dial", "--dagger", "2", "--out", str(tmp_path)]))
    assert (cfg.warm_start, cfg.bc_teacher, cfg.bc_dagger) == (shipped, "headroom@dial", 2)
    assert not cfg.ppo.served_margins and not cfg.validate_as_deployed
    served = build_config(build_parser().parse_args([
        "train", "--warm-start", shipped, "--served-margins", "--validate-as-deployed",
        "--out", str(tmp_path)]))
    assert served.ppo.served_margins and served.validate_as_deployed
    assert main(["train", "--teacher", "psychic", "--out", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "bc_teacher" in capsys.readouterr().err
    assert main(["train", "--warm-start", str(tmp_path / "nothing"), "--out",
                 str(tmp_path / "y"), "--quiet"]) == 2
    assert "cannot read model" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_an_evaluation_app_in_the_mix_is_refused_before_anything_is_written(tmp_path, capsys):
    from gnnrl.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"apps": ["onlineboutique", "generated-1000"],
                                  "env_pool": "batched"}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet"]) == 2
    assert "evaluation app" in capsys.readouterr().err and not out.exists()
