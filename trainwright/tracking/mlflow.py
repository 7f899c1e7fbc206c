"""Log a run to MLflow: the resolved config as parameters, the history per epoch, then test metrics and files.

Everything MLflow is asked to do happens on one worker thread, fed by a queue: the training thread
only puts a few numbers on it per epoch (microseconds), and a slow server never holds training up.
The worker starts when the callback is made: MLflow's import (~4 s) and opening the store (a new
SQLite store's tables take ~10 s to create) overlap with data preparation when the callback is made
before it; they still take CPU time (and the GIL) from whatever runs meanwhile. A server that cannot be reached is found on
first contact (a TCP connection is tried for http(s) URIs, so there are no minutes of HTTP retries);
from then on nothing more is sent, a warning says so once, and ``close`` says what was not sent.
A resumed run keeps logging to the same MLflow run: each run is tagged ``trainwright.run`` with a key
made when training starts, which the checkpoint keeps (``state_dict``) even before MLflow has answered.

Example:
    >>> tracker = MLflowTracking(tracking_uri(True, "runs"), "digits", "digits-mlp-1", cfg.to_dict())
    >>> # callbacks=[..., tracker]; after training: tracker.finish(run_dir, metrics); tracker.close()
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trainwright.config.track import MLFLOW_DB
from trainwright.tracking.callback import Callback, State, TrackingWarning, numbers, require

PARAM_LENGTH = 6000  # MLflow's longest parameter value (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH)
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000  # log_batch's limits
KEY_TAG = "trainwright.run"
EPOCHS_PER_BATCH = 50  # epochs that piled up while the worker waited go out in one request


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


class MLflowTracking(Callback):
    """Logs one training run as one MLflow run in ``experiment`` (created when missing).

    ``finish(run_dir, metrics)`` logs the final metrics (nested dicts flattened with ``_``:
    ``test_accuracy``) and every file at the top of the run directory (config, model, report, ...) as
    artifacts; ``close`` ends the MLflow run and waits for the worker while it makes progress (at
    most ``timeout`` seconds without any), then warns about anything that was not sent.
    """

    def __init__(self, uri: str, experiment: str, run_name: str, config: dict, timeout: float = 30.0):
        require("mlflow", "track.mlflow")
        self.uri, self.experiment, self.run_name, self.timeout = uri, experiment, run_name, timeout
        self.params = params(config)
        self.key = uuid.uuid4().hex  # tags the MLflow run; a resumed run finds it by this key
        self.client: Any = None  # MLflow's client and the ids below: the worker's alone
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self.resumed = False  # the MLflow run was there already (a resumed training): its parameters too
        self.status = "FAILED"  # until training ends normally
        self.epoch = 0
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.failure: str | None = None  # the first error, set by the worker
        self.warned = False
        self.unsent: list[str] = []  # what could not be sent, in words
        self.in_flight: list[str] = []  # what the worker is sending now
        self.progress = time.monotonic()
        self.started = False
        self.worker = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)
        self.worker.start()
        self._put("connect", "")  # import MLflow, open the store and the experiment, while the run is set up

    # ── the training thread: put jobs on the queue ──────────────────────────────────────
    def on_train_begin(self, state: State) -> None:
        self.epoch = state.epoch
        if not self.started:  # after load_state_dict: a resumed training finds its MLflow run by key
            self.started = True
            self._put("start", f"the run and its {len(self.params)} parameters")

    def on_epoch_end(self, state: State, logs: dict) -> None:
        self.epoch = state.epoch
        self._put("metrics", f"epoch {state.epoch}", numbers(logs), state.epoch, int(time.time() * 1000))
        self._warn_once()

    def on_train_end(self, state: State) -> None:
        self.status = "FINISHED"

    def finish(self, run_dir: str | Path, metrics: dict) -> None:
        """Called by the finish step: the test (and other final) metrics, and the run's files as artifacts."""
        self._put("metrics", "the final metrics", numbers(metrics, sep="_"), self.epoch, int(time.time() * 1000))
        files = sorted(path for path in Path(run_dir).iterdir() if path.is_file())
        self._put("artifacts", f"{len(files)} files of {Path(run_dir).name}", files)

    def close(self) -> None:
        if self.worker is None:
            return
        self._put("end", "the run's end" if self.started else "", self.status)
        while self.worker.is_alive() and time.monotonic() - self.progress < self.timeout:
            self.worker.join(0.05)
        if self.worker.is_alive():  # stuck on the server: what it still holds is not sent
            self.failure = self.failure or f"no answer within {self.timeout:g} s"
            self.unsent += self.in_flight
            while not self.jobs.empty():
                self.unsent += [what for _, what, _ in [self.jobs.get_nowait()] if what]
        self.worker = None
        self._warn_once()
        if self.unsent:
            warnings.warn(f"MLflow ({self.uri}): not sent: {_summary(self.unsent)}", TrackingWarning, stacklevel=2)

    def state_dict(self) -> dict:
        return {"run": self.key}

    def load_state_dict(self, state: dict) -> None:
        self.key = state.get("run") or self.key  # a resumed run logs into the same MLflow run

    def _put(self, kind: str, what: str, *payload: Any) -> None:
        self.jobs.put((kind, what, payload))

    def _warn_once(self) -> None:
        if self.failure and not self.warned:
            self.warned = True
            warnings.warn(f"MLflow ({self.uri}) cannot take this run ({self.failure}); training goes on without it",
                          TrackingWarning, stacklevel=3)

    # ── the worker thread: everything that talks to MLflow ──────────────────────────────
    def _work(self) -> None:
        held = None
        while True:
            jobs = [held or self.jobs.get()]
            held = None
            while jobs[0][0] == "metrics" and len(jobs) < EPOCHS_PER_BATCH:  # epochs queued meanwhile: one request
                try:
                    held = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if held[0] != "metrics":
                    break
                jobs.append(held)
                held = None
            kind = jobs[0][0]
            self.in_flight = [what for _, what, _ in jobs if what]  # connecting sends nothing of the run's
            if self.failure is not None:
                self.unsent += self.in_flight
            else:
                try:
                    self._send(kind, [payload for _, _, payload in jobs])
                except Exception as error:  # noqa: BLE001 - whatever the server or store raises, training must not see it
                    self.failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
                    self.unsent += self.in_flight
            self.in_flight, self.progress = [], time.monotonic()
            if kind == "end":
                return

    def _connect(self) -> None:
        """MLflow's client on the store, and the experiment (created when missing)."""
        url = urlparse(self.uri)
        if url.scheme in ("http", "https"):  # fail in seconds, not after MLflow's retries with backoff
            socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=5).close()
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(self.experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment, artifact_location=_artifacts(self.uri))

    def _start(self) -> None:
        """The MLflow run: the one tagged with this training's key (resumed), or a new one."""
        earlier = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{self.key}'", max_results=1)
        if earlier:
            self.run_id, self.resumed = earlier[0].info.run_id, True
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(self.experiment_id, run_name=self.run_name, tags={KEY_TAG: self.key}).info.run_id

    def _send(self, kind: str, payloads: list[tuple]) -> None:
        """One kind of job: connecting, the start, one or more epochs' metrics, the artifacts, the end."""
        if kind == "connect":
            self._connect()
            return
        from mlflow.entities import Metric, Param

        client = self.client
        if kind == "start":
            self._start()
            items = [] if self.resumed else [Param(k, v) for k, v in self.params.items()]
            for start in range(0, len(items), PARAMS_PER_BATCH):
                client.log_batch(self.run_id, params=items[start : start + PARAMS_PER_BATCH])
        elif kind == "metrics":
            items = [Metric(k, v, stamp, step) for values, step, stamp in payloads for k, v in values.items()]
            for start in range(0, len(items), METRICS_PER_BATCH):
                client.log_batch(self.run_id, metrics=items[start : start + METRICS_PER_BATCH])
        elif kind == "artifacts":
            for path in payloads[0][0]:
                client.log_artifact(self.run_id, str(path))
        elif kind == "end" and self.run_id is not None:  # a training that failed before it began has no run
            client.set_terminated(self.run_id, status=payloads[0][0])


def _artifacts(uri: str) -> str | None:
    """A local SQLite store keeps its artifacts beside it (not in ./mlruns of whatever directory runs); a server decides its own."""
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
            parts.append(f"the metrics of epoch {epochs[0]}" if len(epochs) == 1 else f"the metrics of epochs {epochs[0]}-{epochs[-1]}")
            epochs = []
        if what:
            parts.append(what)
    return ", ".join(parts)
