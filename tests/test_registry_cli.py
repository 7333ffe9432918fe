"""`gnnrl registry list|show|promote` against a SQLite registry."""

from __future__ import annotations

import shutil

import pytest

from gnnrl.cli import main
from gnnrl.registry.promote import CHAMPION, alias_version, register_and_gate, show_version
from tests.registry_support import make_model, summary


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Two registered versions (v1 champion, v2 rejected challenger), built once."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    _, first = make_model(root, 0)
    _, second = make_model(root, 1)
    register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=uri)
    register_and_gate(second, summary((0.30, 9.0), champion=(0.01, 9.0)), "cand",
                      champion_policy="champion", champion_version_evaluated="1",
                      tracking_uri=uri)
    return root / "mlflow.db"


@pytest.fixture
def registry(template, tmp_path, monkeypatch):
    """A private copy of the registry database (artifacts stay shared, read-only)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copyfile(template, tmp_path / "mlflow.db")
    summary((0.0, 5.0), champion=(0.01, 9.0)).to_csv(tmp_path / "summary.csv", index=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path


def test_list_shows_versions_aliases_and_gate_decisions(registry, capsys):
    uri, _ = registry
    assert main(["registry", "--mlflow-uri", uri, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["2", "challenger", "rejected"]
    assert lines[2].split()[:3] == ["1", "champion", "promoted"]


def test_show_resolves_an_alias_and_prints_the_gate_numbers(registry, capsys):
    uri, _ = registry
    assert main(["registry", "--mlflow-uri", uri, "show", "champion"]) == 0
    out = capsys.readouterr().out
    assert "models:/gnnrl-scaler/1" in out
    assert "gate.challenger.slo_violation_rate = 0.01" in out


def test_promote_reruns_the_gate_on_a_summary(registry, capsys):
    uri, tmp_path = registry
    rc = main(["registry", "--mlflow-uri", uri, "promote", "2",
               "--summary", str(tmp_path / "summary.csv"), "--policy", "cand"])
    assert rc == 0, capsys.readouterr().err
    assert alias_version(uri, CHAMPION) == "2"
    assert show_version("2", uri)["tags"]["gate.previous_champion"] == "1"


def test_promote_refuses_a_version_that_fails_the_gate(registry, capsys, tmp_path):
    uri, _ = registry
    summary((0.5, 20.0), champion=(0.01, 9.0)).to_csv(tmp_path / "bad.csv", index=False)
    rc = main(["registry", "--mlflow-uri", uri, "promote", "2",
               "--summary", str(tmp_path / "bad.csv"), "--policy", "cand"])
    assert rc == 1
    assert "FAIL: vs baseline" in capsys.readouterr().out
    assert alias_version(uri, CHAMPION) == "1"


def test_forced_promotion_needs_a_reason_and_records_it(registry, capsys):
    uri, _ = registry
    assert main(["registry", "--mlflow-uri", uri, "promote", "2", "--force"]) == 2
    assert alias_version(uri, CHAMPION) == "1"
    assert main(["registry", "--mlflow-uri", uri, "promote", "2", "--force",
                 "--reason", "rollback drill"]) == 0
    tags = show_version("2", uri)["tags"]
    assert (tags["gate.decision"], tags["gate.reason"]) == ("promoted-manually", "rollback drill")


def test_unreachable_tracking_server_is_a_clear_error(capsys):
    assert main(["registry", "--mlflow-uri", "http://127.0.0.1:9", "list"]) == 2
    assert "'http://127.0.0.1:9' is unreachable" in capsys.readouterr().err


def test_registry_list_from_another_folder_refuses_and_creates_no_database(tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["registry", "list"]) == 2
    err = capsys.readouterr().err
    assert f"no MLflow registry at {tmp_path / 'mlflow.db'} (the default)" in err
    assert "--mlflow-uri" in err
    assert not (tmp_path / "mlflow.db").exists()
    missing = tmp_path / "elsewhere" / "mlflow.db"
    assert main(["registry", "--mlflow-uri", f"sqlite:///{missing}", "show", "1"]) == 2
    assert "(--mlflow-uri)" in capsys.readouterr().err and not missing.exists()
