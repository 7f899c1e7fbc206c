"""Log a run to MLflow: the resolved config as parameters, the history per epoch, then test metrics and files.

Everything MLflow is asked to do happens in a worker process (``mlflow_worker.py`` through ``pipe.py``,
started after a minute of training or when it ends, at the lowest CPU priority while it trains): the
training process never imports MLflow, and its thread only adds a line per epoch to what waits for the
worker (microseconds), so neither MLflow's import (seconds) nor a slow server holds training up. A server
that cannot be reached is found on first contact (a TCP connection is tried for http(s) URIs, so there are
no minutes of HTTP retries); from then on nothing more is sent, a warning says so once, and ``close`` says
what was not sent. A resumed run keeps logging to the same MLflow run: each run is tagged
``trainwright.run`` with a key made when training starts, which the checkpoint keeps (``state_dict``)
even before MLflow has answered.

Example:
    >>> tracker = MLflowTracking(tracking_uri(True, "runs"), "digits", "digits-mlp-1", cfg.to_dict())
    >>> # callbacks=[..., tracker]; after training: tracker.finish(run_dir, metrics); tracker.close()
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from pathlib import Path

from trainwright.config.track import MLFLOW_DB
from trainwright.tracking.callback import Tracker, TrackingWarning, numbers, require
from trainwright.tracking.pipe import WorkerPipe
from trainwright.training.state import TrainingState

PARAM_LENGTH = 6000  # MLflow's longest parameter value (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH)
WORKER = Path(__file__).with_name("mlflow_worker.py")


def tracking_uri(mlflow: bool | str, runs_dir: str | Path) -> str:
    """The URI ``track.mlflow`` means: true is a SQLite file in the runs directory.

    Example:
        >>> tracking_uri(True, "/work/runs")
        'sqlite:////work/runs/mlflow.db'
    """
    if mlflow is True:
        return f"sqlite:///{(Path(runs_dir) / MLFLOW_DB).resolve()}"
    return str(mlflow)


def params(config: dict) -> dict[str, str]:
    """A nested config as MLflow parameters: dotted keys, values as in YAML/JSON (strings bare).

    Example:
        >>> params({"train": {"optimizer": {"lr": 0.01}, "seed": None}, "data": {"source": "digits"}})
        {'train.optimizer.lr': '0.01', 'train.seed': 'null', 'data.source': 'digits'}
    """
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update({f"{key}.{k}": v for k, v in params(value).items()})
        else:
            flat[key] = (value if isinstance(value, str) else json.dumps(value, default=str))[:PARAM_LENGTH]
    return flat


class MLflowTracking(Tracker):
    """Logs one training run as one MLflow run in ``experiment`` (created when missing).

    ``finish(run_dir, metrics)`` logs the final metrics (nested dicts flattened with ``_``:
    ``test_accuracy``) and every file at the top of the run directory (config, model, report, ...) as
    artifacts; ``close`` after it ends the MLflow run and waits for the worker while it makes progress
    (at most ``timeout`` seconds without any), then warns about anything that was not sent.
    """

    def __init__(self, uri: str, experiment: str, run_name: str, config: dict, timeout: float = 60.0):
        require("mlflow", "track.mlflow")
        self.uri, self.experiment, self.run_name, self.timeout = uri, experiment, run_name, timeout
        self.params = params(config)
        self.key = uuid.uuid4().hex  # tags the MLflow run; a resumed run finds it by this key
        self.status = "FAILED"  # until training ends normally
        self.epoch = 0
        self.warned = self.started = self.finished = False
        self.pipe = WorkerPipe(WORKER)  # started after a minute of training, or at its end: MLflow's import happens there
        self.pipe.put("connect", "", uri=uri, experiment=experiment, artifacts=_artifacts(uri))

    @property
    def run_id(self) -> str | None:
        """The MLflow run's id, once the worker has made (or found) it."""
        return self.pipe.latest.get("run_id")

    # ── the training thread: hand jobs to the worker, never wait ─────────────────────────
    def on_train_begin(self, state: TrainingState) -> None:
        self.epoch = state.epoch
        if not self.started:  # after load_state_dict: a resumed training finds its MLflow run by key
            self.started = True
            self.pipe.put("start", f"the run and its {len(self.params)} parameters", run_name=self.run_name, key=self.key,
                          params=self.params)

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        self.epoch = state.epoch
        stamp = int(time.time() * 1000)
        self.pipe.put("metrics", f"epoch {state.epoch}", values=numbers(logs), step=state.epoch, timestamp=stamp)
        self._warn_once()

    def on_train_end(self, state: TrainingState) -> None:
        self.status = "FINISHED"

    def finish(self, run_dir: str | Path, metrics: dict) -> None:
        """Called by the finish step: the test (and other final) metrics, and the run's files as artifacts."""
        self.finished = True
        self.pipe.hurry()
        stamp = int(time.time() * 1000)
        self.pipe.put("metrics", "the final metrics", values=numbers(metrics, sep="_"), step=self.epoch, timestamp=stamp)
        files = sorted(str(path) for path in Path(run_dir).iterdir() if path.is_file())
        self.pipe.put("artifacts", f"{len(files)} files of {Path(run_dir).name}", files=files)

    def close(self) -> None:
        """After ``finish``: end the MLflow run, wait for the worker, say what was not sent.

        The training loop's close (before ``finish``) leaves the run open for the finish step. A run that
        never gets there (an error, Ctrl-C) is ended as FAILED by the worker when this process's end closes
        the pipe.
        """
        if self.pipe.closed:
            return
        if not self.finished:
            if self.status != "FINISHED":
                self.pipe.hurry()  # training stopped (an error, Ctrl-C): what waits goes now; the worker ends the run as FAILED
            return  # training ended: the finish step comes (and the worker starts then, outside the training's time)
        self.pipe.put("end", "the run's end" if self.started else "", status=self.status)
        self.pipe.close(self.timeout)
        self._warn_once()
        if self.pipe.unsent:
            warnings.warn(f"MLflow ({self.uri}): not sent: {_summary(self.pipe.unsent)}", TrackingWarning, stacklevel=2)

    def summary(self) -> str:
        if self.run_id is None or self.pipe.unsent:
            return ""  # the warnings said what happened
        ui = f" (mlflow ui --backend-store-uri {self.uri})" if self.uri.startswith("sqlite:") else ""
        return f"mlflow: run {self.run_id} in experiment {self.experiment!r} at {self.uri}{ui}"

    def state_dict(self) -> dict:
        return {"run": self.key}

    def load_state_dict(self, state: dict) -> None:
        self.key = state.get("run") or self.key  # a resumed run logs into the same MLflow run

    def _warn_once(self) -> None:
        if self.pipe.failure and not self.warned:
            self.warned = True
            warnings.warn(f"MLflow ({self.uri}) cannot take this run ({self.pipe.failure}); training goes on without it",
                          TrackingWarning, stacklevel=3)


def _artifacts(uri: str) -> str | None:
    """A local SQLite store keeps its artifacts beside it (not in ./mlruns of the working directory); a server decides its own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


def _summary(unsent: list[str]) -> str:
    """``['epoch 1', 'epoch 2', 'epoch 3', 'the final metrics']`` -> 'the metrics of epochs 1-3, the final metrics'."""
    parts, epochs = [], []
    for what in [*unsent, ""]:
        if what.startswith("epoch "):
            epochs.append(what.removeprefix("epoch "))
            continue
        if epochs:
            span = epochs[0] if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
            parts.append(f"the metrics of epoch{'s' if len(epochs) > 1 else ''} {span}")
            epochs = []
        if what:
            parts.append(what)
    return ", ".join(parts)
