"""The MLflow worker: a process of its own that does everything ``MLflowTracking`` asks of MLflow.

Run as a script (``python mlflow_worker.py``), it imports nothing of trainwright nor torch: only MLflow,
which takes seconds of CPU to import and holds Python's GIL while it works. In the training process
that would slow every step of an overhead-bound loop; here it does not, and the worker runs at the
lowest CPU priority (SCHED_IDLE) so it takes only CPU time training leaves idle.

Jobs come as JSON lines on stdin: ``{"id": n, "kind": "connect" | "start" | "metrics" | "artifacts" | "end", ...}``.
Each is answered on stdout with ``{"done": [ids], "sent": true | false}``; the first error is said once as
``{"failure": "..."}``, and from then on nothing more is sent (every later job is answered unsent).
Epochs that queued up while a request was in flight go out in one ``log_batch``. At the end of its
input (the training process closed the pipe, or ended) the worker ends a run that no ``end`` job ended
as FAILED, and exits.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import sys
import threading
import warnings
from urllib.parse import urlparse

from worker_priority import priority  # a sibling file, found before the folder leaves the path below

# Run as a script, Python puts this file's folder first on the path, where trainwright's own mlflow.py
# and tensorboard.py would stand in for the packages of those names.
sys.path = [p for p in sys.path if os.path.realpath(p or ".") != os.path.realpath(os.path.dirname(__file__))]

KEY_TAG = "trainwright.run"
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000  # log_batch's limits
EPOCHS_PER_BATCH = 50  # epochs that piled up while the worker waited go out in one request
EOF = {"kind": "eof"}  # the end of the input


class Worker:
    def __init__(self) -> None:
        self.client = None
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self.ended = False
        self.failure: str | None = None

    def connect(self, uri: str, experiment: str, artifacts: str | None) -> None:
        """MLflow's client on the store, and the experiment (created when missing)."""
        url = urlparse(uri)
        if url.scheme in ("http", "https"):  # fail in seconds, not after MLflow's retries with backoff
            socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=5).close()
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifacts)
        else:
            self.experiment_id = found.experiment_id

    def start(self, run_name: str, key: str, params: dict[str, str]) -> None:
        """The MLflow run tagged with this training's key (a resumed training), or a new one with its parameters."""
        from mlflow.entities import Param

        earlier = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
        if earlier:
            self.run_id = earlier[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        self.run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags={KEY_TAG: key}).info.run_id
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + PARAMS_PER_BATCH])

    def metrics(self, jobs: list[dict]) -> None:
        from mlflow.entities import Metric

        items = [Metric(k, v, job["timestamp"], job["step"]) for job in jobs for k, v in job["values"].items()]
        for start in range(0, len(items), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=items[start : start + METRICS_PER_BATCH])

    def do(self, kind: str, jobs: list[dict]) -> None:
        job = jobs[0]
        if kind == "connect":
            self.connect(job["uri"], job["experiment"], job.get("artifacts"))
        elif kind == "start":
            self.start(job["run_name"], job["key"], job["params"])
        elif self.run_id is None:  # a training that failed before it began has no run
            return
        elif kind == "metrics":
            self.metrics(jobs)
        elif kind == "artifacts":
            for path in job["files"]:
                self.client.log_artifact(self.run_id, path)
        elif kind == "end":
            self.client.set_terminated(self.run_id, status=job["status"])
            self.ended = True


def answer(message: dict) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except OSError:
        pass  # the training process has ended (its exit handed over the last jobs): the work goes on unanswered


def read_jobs(jobs: queue.SimpleQueue) -> None:
    """stdin's lines onto the queue, then ``EOF``; ``hurry`` at once (the main thread may be in a long job)."""
    for line in sys.stdin:
        if line.strip():
            job = json.loads(line)
            if job["kind"] == "hurry":
                priority(lowest=False, threads=(threading.main_thread().native_id, threading.get_native_id()))
            jobs.put(job)
    jobs.put(EOF)


def main() -> None:
    if "--low" in sys.argv[1:]:  # started while the run trains
        priority(lowest=True)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines are not the user's business
    logging.getLogger("alembic").setLevel(logging.WARNING)  # nor a new store's migrations
    warnings.simplefilter("ignore")
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=read_jobs, args=(jobs,), daemon=True).start()
    worker, held = Worker(), None
    while True:
        batch = [held or jobs.get()]
        held = None
        if batch[0] is EOF:
            break
        while batch[0]["kind"] == "metrics" and len(batch) < EPOCHS_PER_BATCH:  # epochs queued meanwhile: one request
            try:
                held = jobs.get_nowait()
            except queue.Empty:
                break
            if held["kind"] != "metrics":
                break
            batch.append(held)
            held = None
        sent = worker.failure is None
        if sent:
            try:
                worker.do(batch[0]["kind"], batch)
            except Exception as error:  # noqa: BLE001 - whatever the server or store raises, the run must not see it
                text = str(error).splitlines()[0] if str(error) else ""
                worker.failure = f"{type(error).__name__}: {text}".rstrip(": ")
                answer({"failure": worker.failure})
                sent = False
        done = {"done": [job["id"] for job in batch], "sent": sent}
        answer({**done, "run_id": worker.run_id} if batch[0]["kind"] == "start" and sent else done)
    if worker.run_id is not None and not worker.ended and worker.failure is None:
        try:  # the training process ended without finishing the run: an error, or Ctrl-C
            worker.client.set_terminated(worker.run_id, status="FAILED")
        except Exception:  # noqa: BLE001, S110 - nobody is left to tell
            pass


if __name__ == "__main__":
    main()
