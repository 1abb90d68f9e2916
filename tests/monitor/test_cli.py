"""`forwardlab monitor ...` run as a user runs it: JSON out, files written, one-line errors, exit 2."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from forwardlab.monitor.data import PreparedData
from tests.support.cli_runner import run as run_cli


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("monitor", *args, env=env)


def test_help_lists_the_commands_with_examples() -> None:
    out = run("--help").stdout
    for command in ("prepare", "train", "serve"):
        assert command in out
        text = run(command, "--help").stdout
        assert "Example:" in text and f"forwardlab monitor {command} --" in text


@pytest.mark.slow
def test_prepare_then_train(kc_csv: Path, kc_is_real: bool, tmp_path: Path, prepared: PreparedData) -> None:
    data_dir, model_dir = tmp_path / "data", tmp_path / "models"
    prep = run("prepare", "--data", str(kc_csv), "--out", str(data_dir))
    assert prep.returncode == 0, prep.stderr
    summary = json.loads(prep.stdout)
    assert summary["rows_train"] == prepared.summary.rows_train and summary["seed"] == 42
    assert summary["source_sha256"] == hashlib.sha256(kc_csv.read_bytes()).hexdigest()
    assert summary["source_sha256"].startswith("d0875baa") or not kc_is_real
    assert json.loads((data_dir / "summary.json").read_text()) == summary
    trained = run("train", "--data-dir", str(data_dir), "--out", str(model_dir))
    assert trained.returncode == 0, trained.stderr
    meta = json.loads(trained.stdout)
    assert (model_dir / meta["version"] / "model.pkl").is_file()
    assert (model_dir / "LATEST").read_text().strip() == meta["version"]


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, model_dir: Path) -> None:
    cases = [
        (
            ("prepare", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path)),
            {},
            "none.csv: file does not exist",
        ),
        (("train", "--data-dir", str(tmp_path)), {}, "train.csv: file does not exist"),
        (("serve", "--model", str(model_dir), "--port", "0"), {"FORWARDLAB_API_KEYS": ""}, "no API keys"),
        (
            ("serve", "--model", str(tmp_path), "--port", "0"),
            {"FORWARDLAB_API_KEYS": "k"},
            "not a model folder",
        ),
        (
            ("serve", "--model", str(model_dir), "--store", "mysql://x/y", "--port", "0"),
            {"FORWARDLAB_API_KEYS": "k"},
            "unsupported store backend 'mysql'",
        ),
    ]
    for args, env, message in cases:
        result = run(*args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
