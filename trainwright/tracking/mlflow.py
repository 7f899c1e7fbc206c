"""Log a run to MLflow: the resolved config as parameters, the history per epoch, then test metrics and files.

Everything MLflow is asked to do happens in a worker process (``mlflow_worker.py``, started when the
callback is made, at the lowest CPU priority), fed JSON lines through a pipe: the training process never
imports MLflow, and its thread only writes a line per epoch without waiting (microseconds), so neither
MLflow's import nor a slow server holds training up. A server that cannot be reached is found on first
contact (a TCP connection is tried for http(s) URIs, so there are no minutes of HTTP retries); from then
on nothing more is sent, a warning says so once, and ``close`` says what was not sent. A resumed run
keeps logging to the same MLflow run: each run is tagged ``trainwright.run`` with a key made when
training starts, which the checkpoint keeps (``state_dict``) even before MLflow has answered.

Example:
    >>> tracker = MLflowTracking(tracking_uri(True, "runs"), "digits", "digits-mlp-1", cfg.to_dict())
    >>> # callbacks=[..., tracker]; after training: tracker.finish(run_dir, metrics); tracker.close()
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

from trainwright.config.track import MLFLOW_DB
from trainwright.tracking.callback import Tracker, TrackingWarning, numbers, require
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
        self.run_id: str | None = None  # once the worker has made (or found) the run
        self.status = "FAILED"  # until training ends normally
        self.epoch = 0
        self.jobs: list[str] = []  # what each job sent carries, in words, by id ("" for connecting: nothing of the run's)
        self.answered: set[int] = set()
        self.unsent: list[str] = []  # what could not be sent
        self.failure: str | None = None  # the worker's first error
        self.warned = self.started = self.finished = False
        self.outbox, self.inbox = bytearray(), bytearray()
        self.progress = time.monotonic()
        # Its own process: MLflow's import and its work never take the training thread's GIL. No stderr: the
        # worker reports through its answers, and MLflow's own log lines are not the user's business.
        self.worker: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0
        )
        os.set_blocking(self.worker.stdin.fileno(), False)  # a full pipe must never block a training step
        os.set_blocking(self.worker.stdout.fileno(), False)
        self._put("connect", "", uri=uri, experiment=experiment, artifacts=_artifacts(uri))  # while the run is set up

    # ── the training thread: write jobs, read answers, never wait ────────────────────────
    def on_train_begin(self, state: TrainingState) -> None:
        self.epoch = state.epoch
        if not self.started:  # after load_state_dict: a resumed training finds its MLflow run by key
            self.started = True
            self._put("start", f"the run and its {len(self.params)} parameters", run_name=self.run_name, key=self.key,
                      params=self.params)

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        self.epoch = state.epoch
        self._put("metrics", f"epoch {state.epoch}", values=numbers(logs), step=state.epoch, timestamp=int(time.time() * 1000))
        self._warn_once()

    def on_train_end(self, state: TrainingState) -> None:
        self.status = "FINISHED"

    def finish(self, run_dir: str | Path, metrics: dict) -> None:
        """Called by the finish step: the test (and other final) metrics, and the run's files as artifacts."""
        self.finished = True
        self._put("metrics", "the final metrics", values=numbers(metrics, sep="_"), step=self.epoch,
                  timestamp=int(time.time() * 1000))
        files = sorted(str(path) for path in Path(run_dir).iterdir() if path.is_file())
        self._put("artifacts", f"{len(files)} files of {Path(run_dir).name}", files=files)

    def close(self) -> None:
        """After ``finish``: end the MLflow run, wait for the worker, say what was not sent.

        The training loop's close (before ``finish``) leaves the run open for the finish step. A run that
        never gets there (an error, Ctrl-C) is ended as FAILED by the worker when this process's end closes the pipe.
        """
        if self.worker is None or not self.finished:
            return
        self._put("end", "the run's end" if self.started else "", status=self.status)
        while self._pending() and time.monotonic() - self.progress < self.timeout:
            if not self._pump(wait=0.05):
                break  # the worker is gone
        worker, self.worker = self.worker, None
        worker.stdin.close()  # the worker's input ends: it exits
        try:
            worker.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stuck on the server: what it still holds is not sent
            worker.kill()
            self.failure = self.failure or f"no answer within {self.timeout:g} s"
        worker.stdout.close()
        self.unsent += [what for i, what in enumerate(self.jobs) if i not in self.answered and what]
        self._warn_once()
        if self.unsent:
            warnings.warn(f"MLflow ({self.uri}): not sent: {_summary(self.unsent)}", TrackingWarning, stacklevel=2)

    def summary(self) -> str:
        if self.run_id is None or self.unsent:
            return ""  # the warnings said what happened
        ui = f" (mlflow ui --backend-store-uri {self.uri})" if self.uri.startswith("sqlite:") else ""
        return f"mlflow: run {self.run_id} in experiment {self.experiment!r} at {self.uri}{ui}"

    def state_dict(self) -> dict:
        return {"run": self.key}

    def load_state_dict(self, state: dict) -> None:
        self.key = state.get("run") or self.key  # a resumed run logs into the same MLflow run

    # ── the pipe ─────────────────────────────────────────────────────────────────────────
    def _put(self, kind: str, what: str, **payload) -> None:
        if self.worker is None:
            return
        self.outbox += (json.dumps({"id": len(self.jobs), "kind": kind, **payload}) + "\n").encode()
        self.jobs.append(what)
        self._pump()

    def _pending(self) -> bool:
        return len(self.answered) < len(self.jobs)

    def _pump(self, wait: float = 0.0) -> bool:
        """Write what the pipe takes, read what the worker answered (waiting at most ``wait`` s); False once it is gone."""
        stdin, stdout = self.worker.stdin, self.worker.stdout
        try:
            while self.outbox:
                written = os.write(stdin.fileno(), self.outbox)
                del self.outbox[:written]
        except BlockingIOError:
            pass  # the pipe is full: the rest goes with a later call
        except BrokenPipeError:
            return self._gone()
        if wait and not select.select([stdout], [], [], wait)[0]:
            return True
        while True:
            try:
                chunk = os.read(stdout.fileno(), 1 << 16)
            except BlockingIOError:
                return True
            if not chunk:
                return self._gone()
            self.inbox += chunk
            *lines, rest = self.inbox.split(b"\n")
            self.inbox = bytearray(rest)
            for line in lines:
                self._take(json.loads(line))

    def _take(self, answer: dict) -> None:
        if "failure" in answer:
            self.failure = self.failure or answer["failure"]
            return
        self.progress = time.monotonic()
        self.run_id = answer.get("run_id", self.run_id)
        for i in answer["done"]:
            self.answered.add(i)
            if not answer["sent"] and self.jobs[i]:
                self.unsent.append(self.jobs[i])

    def _gone(self) -> bool:
        code = self.worker.poll()
        self.failure = self.failure or f"the MLflow worker process stopped (exit code {code})"
        return False

    def _warn_once(self) -> None:
        if self.failure and not self.warned:
            self.warned = True
            warnings.warn(f"MLflow ({self.uri}) cannot take this run ({self.failure}); training goes on without it",
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
