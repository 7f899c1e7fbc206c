"""The TensorBoard worker: a process of its own that writes the event files ``TensorBoard`` hands it.

Run as a script (``python tensorboard_worker.py``, see ``pipe.py``), it imports tensorboard's event
writer and protocol buffers, not torch nor trainwright. Jobs on stdin, one JSON line each:
``{"kind": "open", "log_dir", "purge_step", "layers"}``, then per epoch ``{"kind": "epoch", "step",
"scalars": {tag: value}, "norms": [[per layer] per sampled step]}`` (NaN: that layer had no gradient).
Each is answered ``{"done": [ids], "sent": bool}``. At the end of its input it closes the file and exits.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import warnings

from worker_priority import priority  # a sibling file, found before the folder leaves the path below

# Run as a script, Python puts this file's folder first on the path, where trainwright's own mlflow.py
# and tensorboard.py would stand in for the packages of those names.
sys.path = [p for p in sys.path if os.path.realpath(p or ".") != os.path.realpath(os.path.dirname(__file__))]

BUCKETS = 20  # per layer and epoch: the sampled steps are tens at most


def histogram(values: list[float], buckets: int = BUCKETS) -> dict | None:
    """TensorBoard's histogram fields for one layer's sampled norms (non-finite ones left out); None without any.

    ``buckets`` equal buckets from the smallest to the largest value, each named by its right edge.

    Example:
        >>> histogram([1.0, 3.0, float("nan")], buckets=2)["bucket"]
        [1.0, 1.0]
    """
    seen = [v for v in values if v is not None and math.isfinite(v)]
    if not seen:
        return None
    lo, hi = min(seen), max(seen)
    width = max(hi - lo, 1e-12) / buckets  # one value: all in the first bucket
    counts = [0.0] * buckets
    for v in seen:
        counts[min(int((v - lo) / width), buckets - 1)] += 1
    return {"min": lo, "max": hi, "num": float(len(seen)), "sum": sum(seen), "sum_squares": sum(v * v for v in seen),
            "bucket_limit": [lo + width * (i + 1) for i in range(buckets)], "bucket": counts}


class Writer:
    def __init__(self) -> None:
        self.file = None
        self.layers: list[str] = []

    def open(self, log_dir: str, purge_step: int | None, layers: list[str]) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.file, self.layers = EventFileWriter(log_dir, flush_secs=5), layers  # on disk within 5 s: live curves
        if purge_step is not None:  # a resumed run: TensorBoard drops what an earlier file holds from this step on
            self.file.add_event(Event(step=purge_step, wall_time=time.time(), session_log=SessionLog(status=SessionLog.START)))

    def epoch(self, step: int, scalars: dict[str, float], norms: list[list[float]]) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary

        values = [Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
        for i, name in enumerate(self.layers):
            found = histogram([row[i] for row in norms])
            if found is not None:
                values.append(Summary.Value(tag=f"grad_norm/{name}", histo=HistogramProto(**found)))
        self.file.add_event(Event(step=step, wall_time=time.time(), summary=Summary(value=values)))


def answer(message: dict) -> None:
    try:
        print(json.dumps(message), flush=True)
    except OSError:
        pass  # the training process has ended (its exit handed over the last jobs): the files are still written


def main() -> None:
    if "--low" in sys.argv[1:]:  # started while the run trains
        priority(lowest=True)
    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    writer, failure = Writer(), None
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        if job["kind"] == "hurry":
            priority(lowest=False)
        sent = failure is None
        if sent:
            try:
                if job["kind"] == "open":
                    writer.open(job["log_dir"], job["purge_step"], job["layers"])
                elif job["kind"] == "epoch":
                    writer.epoch(job["step"], job["scalars"], job["norms"])
            except Exception as error:  # noqa: BLE001 - a disk or library error must not reach the run
                failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
                answer({"failure": failure})
                sent = False
        answer({"done": [job["id"]], "sent": sent})
    if writer.file is not None:
        writer.file.close()  # flushes


if __name__ == "__main__":
    main()
