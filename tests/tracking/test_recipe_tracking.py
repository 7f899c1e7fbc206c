"""``track:`` through the command line: a trained run, and one whose loss became NaN, read back with MLflow's
client (the local SQLite store beside the runs) and TensorBoard's event reader."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from helpers import run_cli

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("tensorboard") is None,
    reason="the track extra (mlflow, tensorboard) is not installed",
)


@pytest.fixture
def runs(tmp_path, tmp_path_factory):
    """A runs folder whose MLflow store already has its tables (a new store's migrations take seconds)."""
    from mlflow.tracking import MlflowClient  # imported here: seconds, only where these tests run

    empty = tmp_path_factory.getbasetemp() / "empty-mlflow.db"
    if not empty.exists():
        MlflowClient(tracking_uri=f"sqlite:///{empty}").search_experiments()
    (tmp_path / "runs").mkdir()
    shutil.copy(empty, tmp_path / "runs" / "mlflow.db")
    return tmp_path / "runs"


def test_a_cli_run_is_logged_to_mlflow_and_tensorboard_and_a_diverged_one_ends_failed(runs):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    track = ["--set", "track.mlflow=true", "--set", "track.tensorboard=true", "--set", "track.experiment=iris"]
    result = run_cli("train", "--data", "iris", "--set", "train.epochs=3", *track, "--runs-dir", str(runs), "--name", "ok")
    assert result.returncode == 0, result.stderr
    assert "mlflow: run " in result.stdout and "tensorboard: tensorboard --logdir" in result.stdout
    assert "INFO" not in result.stderr + result.stdout  # MLflow's own log lines stay quiet

    client = MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("iris")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = json.loads((runs / "ok" / "metrics.json").read_text())
    assert run.info.run_name == "ok" and run.info.status == "FINISHED"
    assert run.data.params["data.source"] == "iris" and run.data.params["train.epochs"] == "3"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2, 3]
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "model.safetensors", "report.html", "history.csv"} <= artifacts

    events = EventAccumulator(str(runs / "ok" / "tensorboard"))
    events.Reload()
    history = (runs / "ok" / "history.csv").read_text().splitlines()
    assert [e.step for e in events.Scalars("val_loss")] == [1, 2, 3] and len(history) == 4
    assert any(tag.startswith("grad_norm/") for tag in events.Tags()["histograms"]) and events.Tags()["graph"]

    diverged = run_cli("train", "--data", "iris", "--set", "train.optimizer={name: sgd, lr: 1.0e+6}", *track,
                       "--runs-dir", str(runs), "--name", "nan")
    assert diverged.returncode == 2, diverged.stdout
    (failed,) = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'nan'")
    assert failed.info.status == "FAILED"
    assert "report.html" in {f.path for f in client.list_artifacts(failed.info.run_id)}  # the finish step still logged it
