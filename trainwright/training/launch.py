"""Starting data-parallel training: torchrun's agent in this process, and what a failed process says.

``launch`` is ``trainwright train ... --nproc-per-node N``: it runs the same command in N processes
through torchrun (``torch.distributed.launcher``), one machine's processes meeting on localhost at
a free port, several machines' at the first one's HOST:PORT (c10d rendezvous). When a process
fails, torchrun's agent stops the others and reports each failure with what the process left in
its error file (``record_failure``); ``failure_message`` makes that one line: which process died
and how, then what the others said (rank 0 names the checkpoint and the command that resumes).

Example:
    >>> launch(["train", "examples/digits.yaml"], nproc_per_node=2)   # the exit code; errors raise
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from trainwright.errors import Interrupted, TrainwrightError
from trainwright.training.distributed import launched


def launch(argv: Sequence[str], nproc_per_node: int, nnodes: int = 1, rdzv_endpoint: str | None = None) -> int:
    """Run ``python -m trainwright ARGV`` in ``nproc_per_node`` processes through torchrun (this process is
    its agent); returns 0 once every process has finished. A process that fails ends the run on every process, and the error
    names it (rank, exit code or signal) with what the failed processes said. Interrupted (SIGINT, SIGTERM),
    it raises ``Interrupted`` saying what this machine's first process said (where its checkpoint holds the
    run), so the command prints one line and exits 128 + the signal, as a single process does."""
    from torch.distributed.elastic.multiprocessing.api import SignalException  # torchrun's machinery, only here
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, get_args_parser

    # One machine: the processes meet on localhost, on a free port; several: at the first machine's HOST:PORT.
    endpoint, run_id = (rdzv_endpoint, "trainwright") if rdzv_endpoint is not None else ("localhost:0", uuid.uuid4().hex)
    # The processes' error files (what each said when it stopped) go to a directory of ours, read on an interrupt.
    logs = Path(tempfile.mkdtemp(prefix="trainwright-torchrun-"))
    options = ["--nproc-per-node", str(nproc_per_node), "--nnodes", str(nnodes), "--max-restarts", "0",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", run_id, "--log-dir", str(logs)]
    # The machine's cores shared out between its processes (torchrun would give each one thread, and say so).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc_per_node)))
    args = get_args_parser().parse_args([*options, "-m", "trainwright", *argv])
    for name in [name for name in logging.root.manager.loggerDict if name.startswith("torch.distributed.elastic")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # its notes on each stop and signal: the error says it
    config, command, command_args = config_from_args(args)
    started = time.monotonic()
    try:
        elastic_launch(config, command)(*command_args)
    except ChildFailedError as failed:
        raise TrainwrightError(failure_message(failed.failures)) from None
    except SignalException as stop:  # Ctrl-C or SIGTERM: the processes got it too; the first says where the run is
        raise Interrupted(int(stop.sigval), said=first_said(logs)) from None
    except RendezvousError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainwrightError(
            f"cannot reach the rendezvous at {rdzv_endpoint or 'localhost'} after {time.monotonic() - started:.0f} s "
            f"({first}); start the same command on every machine with the first machine's address and a port its "
            "firewall lets through"
        ) from None
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


def first_said(logs: Path) -> str:
    """What this machine's first process (local rank 0) recorded in its error file under torchrun's log
    directory ``logs`` (``<logs>/<run id>_*/attempt_<n>/0/error.json``), or '' when it said nothing."""
    for path in sorted(logs.glob("*/attempt_*/0/error.json"), reverse=True):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # none, half written, not torchrun's format
            return recorded_text(json.loads(path.read_text(encoding="utf-8"))["message"])
    return ""


def failure_message(failures: dict) -> str:
    """One line from torchrun's failures (global rank -> ProcessFailure): which process died and how, then
    what the processes that saw it said (rank 0 names the checkpoint and the command that resumes).

    When one process fails, the agent stops the others with SIGTERM: a SIGTERM is named only when no
    process died of anything else or said why, and a process that said why it stopped is quoted instead."""
    real = {rank: said(f) for rank, f in failures.items() if said(f) and not f.error_file_data.get("prerecorded")}
    silent = {rank: f for rank, f in failures.items() if rank not in real}
    killed = {rank: f for rank, f in silent.items() if f.exitcode < 0}
    # The agent's SIGTERM is a consequence of another failure: named only when nothing else explains the stop.
    causes = {rank: f for rank, f in killed.items() if f.exitcode != -signal.SIGTERM} or ({} if real else killed)
    died = [f"process rank {rank} was killed by {signal.Signals(-f.exitcode).name}" for rank, f in sorted(causes.items())]
    died += [f"process rank {rank} exited with code {f.exitcode}" for rank, f in sorted(silent.items()) if f.exitcode > 0]
    if not died and len(set(real.values())) == 1:
        return next(iter(real.values()))  # every process said the same (bad input): once, as one process says it
    quoted = real or {rank: said(f) for rank, f in failures.items() if said(f)}  # else what rank 0 left in advance
    text = "; ".join([*died, "the run stopped on every process"]) if died else "the run stopped on every process"
    return text + "".join(f"; rank {rank}: {message}" for rank, message in sorted(quoted.items()))


def said(failure) -> str:
    """What a failed process recorded in its torchrun error file (``record_failure``), or ''."""
    return recorded_text(failure.message)


def recorded_text(message) -> str:
    """The text of an error file's ``message`` (``record_failure``'s record or a plain string), or '' when it
    is torchrun's own placeholder rather than something the process said."""
    message = str(message.get("message", "") if isinstance(message, dict) else message or "")
    generated = message.startswith("To enable traceback") or (message.startswith("Signal ") and "received by PID" in message)
    return "" if generated else message


def record_failure(message: str, in_advance: bool = False) -> None:
    """Leave ``message`` where torchrun's agent reads a failed process's error (its error file), so the
    launcher's one line can say it; nothing outside torchrun. ``in_advance``: what to say should the process
    be killed without a word (a real error later replaces it)."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or not launched():
        return
    record = {"message": message, "extraInfo": {"timestamp": str(int(time.time()))}}  # torchrun's own format
    with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as file:
        json.dump({"message": record, "prerecorded": in_advance}, file)
