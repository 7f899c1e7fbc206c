"""MLflow tracking, read back with MLflow's own client from a local SQLite store; an unreachable server."""

from __future__ import annotations

import importlib.util
import shutil
import warnings
from pathlib import Path

import pytest
from callback_loop import LoopState, mlp, run_loop
from pydantic import ValidationError
from safetensors.torch import save_file

from trainwright.config.track import TrackConfig
from trainwright.errors import TrainwrightError
from trainwright.tracking.callback import TrackingWarning, require
from trainwright.tracking.mlflow import MLflowTracking, params, tracking_uri

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="the track extra (mlflow) is not installed")

CONFIG = {"data": {"source": "synthetic", "features": None}, "model": {"type": "mlp", "hidden": [16, 16]},
          "train": {"epochs": 4, "optimizer": {"name": "sgd", "lr": 0.05}}}


def client_of(uri: str):
    from mlflow.tracking import MlflowClient  # imported here: 4 s, only where these tests run

    return MlflowClient(tracking_uri=uri)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """A SQLite store with MLflow's tables, made once: its migrations take seconds, a copy of the file none."""
    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    client_of(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return tracking_uri(True, tmp_path)


def finished_run_dir(tmp_path, model):
    run = tmp_path / "digits-mlp-1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.safetensors").write_bytes(b"resume state, not an artifact")
    (run / "config.yaml").write_text("data: {source: synthetic}\n")
    (run / "report.html").write_text("<html></html>")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(run / "model.safetensors"))
    return run


def test_config_history_test_metrics_and_files_are_read_back_by_mlflows_client(tmp_path, store):
    tracker = MLflowTracking(store, "tests", "digits-mlp-1", CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)  # nothing may go unsent to a working store
        state = run_loop([tracker], mlp(), epochs=4)
        run_dir = finished_run_dir(tmp_path, state.modules["model"])
        tracker.finish(run_dir, {"test": {"mse": 0.25, "r2": 0.9, "classes": None}, "epochs": 4})
        tracker.close()

    client = client_of(store)
    experiment = client.get_experiment_by_name("tests")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "digits-mlp-1" and run.info.status == "FINISHED" and run.info.run_id == tracker.run_id
    assert run.data.params == {"data.source": "synthetic", "data.features": "null", "model.type": "mlp",
                               "model.hidden": "[16, 16]", "train.epochs": "4", "train.optimizer.name": "sgd",
                               "train.optimizer.lr": "0.05"}
    for key in ("train_loss", "val_loss", "lr"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert logged == [(epoch, pytest.approx(logs[key])) for epoch, logs in enumerate(state.history, start=1)]
    assert run.data.metrics["test_mse"] == 0.25 and run.data.metrics["test_r2"] == 0.9 and run.data.metrics["epochs"] == 4
    assert {f.path for f in client.list_artifacts(run.info.run_id)} == {"config.yaml", "model.safetensors", "report.html"}
    assert (tmp_path / "mlartifacts").is_dir()  # beside the store, not in ./mlruns of the working directory
    weights = client.download_artifacts(run.info.run_id, "model.safetensors", str(tmp_path / "back"))
    assert Path(weights).read_bytes() == (run_dir / "model.safetensors").read_bytes()


def test_a_resumed_run_goes_on_in_the_same_mlflow_run(tmp_path, store):
    first = MLflowTracking(store, "tests", "resumable", CONFIG)
    model = mlp()
    state = run_loop([first], model, epochs=2)
    saved = first.state_dict()  # as the checkpoint keeps it, maybe before MLflow has answered
    first.close()  # the loop's close: the finish step never comes, the process dies (Ctrl-C)
    first.pipe.abandon()  # as at the process's exit: the worker gets what waits, then ends the run as FAILED
    assert first.pipe.process.wait(timeout=60) == 0
    client = client_of(store)
    (died,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert died.info.status == "FAILED" and died.data.tags["trainwright.run"] == saved["run"]

    again = MLflowTracking(store, "tests", "resumable", CONFIG)
    again.load_state_dict(saved)
    resumed = LoopState(model, state.optimizers["model"], epoch=2, history=state.history)
    run_loop([again], model, epochs=2, state=resumed)
    again.close()
    again.finish(finished_run_dir(tmp_path, model), {"test": {"mse": 0.2}})
    again.close()
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert [r.info.run_id for r in runs] == [died.info.run_id] == [again.run_id] and runs[0].info.status == "FINISHED"
    assert [m.step for m in sorted(client.get_metric_history(again.run_id, "val_loss"), key=lambda m: m.step)] == [1, 2, 3, 4]


def test_an_unreachable_server_warns_once_never_raises_nor_slows_and_says_what_was_not_sent(tmp_path):
    tracker = MLflowTracking("http://127.0.0.1:1", "tests", "offline", CONFIG, timeout=5)  # loopback: nothing listens on port 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = run_loop([tracker], mlp(), epochs=5)
        tracker.finish(finished_run_dir(tmp_path, state.modules["model"]), {"test": {"mse": 0.3}})
        tracker.close()
    # each epoch end only puts numbers on a queue (~1 ms); sending inline would retry the refused connection for seconds
    assert max(state.epoch_end_seconds) < 0.5
    messages = [str(w.message) for w in caught if w.category is TrackingWarning]
    assert len([m for m in messages if "cannot take this run" in m]) == 1, messages
    assert "http://127.0.0.1:1" in messages[0] and "training goes on without it" in messages[0]
    assert messages[-1] == ("MLflow (http://127.0.0.1:1): not sent: the run and its 7 parameters, the metrics of epochs 1-5, "
                            "the final metrics, 3 files of digits-mlp-1, the run's end")
    assert len(messages) == 2


def test_track_config_and_helpers():
    assert TrackConfig().mlflow is False and TrackConfig(mlflow=True, tensorboard=True, experiment="x").experiment == "x"
    assert TrackConfig(mlflow="http://mlflow:5000").mlflow == "http://mlflow:5000"
    with pytest.raises(ValidationError, match="tracking URI such as"):
        TrackConfig(mlflow="mlflow:5000")
    with pytest.raises(ValidationError, match="extra"):
        TrackConfig(mlflw=True)
    assert tracking_uri("http://mlflow:5000", "runs") == "http://mlflow:5000"
    assert tracking_uri(True, "/work/runs") == "sqlite:////work/runs/mlflow.db"
    assert params({"a": {"b": [1, 2], "c": "x", "d": {}}, "e": True}) == {"a.b": "[1, 2]", "a.c": "x", "a.d": "{}", "e": "true"}
    assert len(params({"long": "v" * 10_000})["long"]) == 6000  # MLflow's limit for a parameter value
    with pytest.raises(TrainwrightError, match=r"track.mlflow needs the no_such_tracker package; .*'trainwright\[track\]'"):
        require("no_such_tracker", "track.mlflow")
