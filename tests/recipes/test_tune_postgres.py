"""Many workers on one PostgreSQL study: a real server from Debian's postgresql package (initdb into a
temporary directory as an unprivileged user, a Unix socket only), 4 worker processes for 6 trials, one
SIGKILLed in the middle of a trial; the study ends with 6 finished trials, the dead one failed by its heartbeat and
retried exactly once.

Its time is rounds of trials: each trial is a whole run directory with its report (seconds, however few epochs, and
the first in each worker takes longest). 6 trials are two rounds of the 3 live workers, the second holding the retry;
fewer would still take two. The dead trial is found once its heartbeat is grace_seconds (10) old, by a worker between
trials, which on this test's machines is after the first round; the live trials' heartbeats were never more than 3.1 s
apart, with two CPU hogs beside the test too, so none is taken for dead."""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import TRAINWRIGHT

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
TRIALS, WORKERS = 6, 4


def as_postgres_user(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: as root, run its tools as ``nobody``."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "nobody", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=120, **kwargs)


@pytest.fixture
def postgres():
    if not BIN:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it when it runs as root)")
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("the PostgreSQL driver is not installed (pip install 'trainwright[tune]'; make test installs it)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    bin_dir = Path(BIN[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="trainwright-pg-"))
    base.chmod(0o755)
    data, sockets = base / "data", base / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in (base, data, sockets):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    port = "5433"
    try:
        as_postgres_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tw", "--no-sync"])
        as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                          f"-k {sockets} -p {port} -c listen_addresses='' -c fsync=off", "start"],
                         cwd=str(base))
        as_postgres_user([str(bin_dir / "createdb"), "-h", str(sockets), "-p", port, "-U", "tw", "studies"])
        yield f"postgresql://tw@/studies?host={sockets}&port={port}"
    finally:
        subprocess.run(["runuser", "-u", "nobody", "--"] * (os.geteuid() == 0) + [str(bin_dir / "pg_ctl"), "-D", str(data),
                       "-m", "immediate", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_four_workers_one_killed_mid_trial_end_with_every_trial(postgres, tmp_path):
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "iris"}, "model": {"type": "mlp", "hidden": [8], "dropout": 0.0},
        "train": {"epochs": 2}, "evaluate": {"baseline": False},
        "tune": {"space": {"train.optimizer.lr": {"log_uniform": [1e-3, 1e-1]}}, "pruner": "none",
                 "heartbeat_seconds": 1, "grace_seconds": 10},
    }))
    env = {**os.environ, "COLUMNS": "120"}
    command = [str(TRAINWRIGHT), "tune", str(config), "--trials", str(TRIALS), "--storage", postgres, "--name", "shared",
               "--runs-dir", str(tmp_path)]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(WORKERS)]
    storage = optuna.storages.RDBStorage(postgres.replace("postgresql://", "postgresql+psycopg://"))
    victim, killed = workers[0], None
    deadline = time.monotonic() + 300
    # Wait until the victim is inside a trial, then kill it (a victim that ends without one fails the test at once).
    while killed is None and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.1)
        try:
            study = optuna.load_study(study_name="shared", storage=storage)
        except KeyError:
            continue
        running = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                   if t.user_attrs.get("pid") == victim.pid]
        if running:
            time.sleep(0.3)
            victim.send_signal(signal.SIGKILL)
            killed = running[0].number
    assert killed is not None, "the victim never started a trial"
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert victim.returncode == -signal.SIGKILL
    for worker, (out, err) in zip(workers[1:], outputs[1:]):
        assert worker.returncode == 0, err

    study = optuna.load_study(study_name="shared", storage=storage)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == TRIALS
    dead = next(t for t in trials if t.number == killed)
    assert dead.state == optuna.trial.TrialState.FAIL  # found by the heartbeat, not left running
    # Its parameters ran again, to the end, exactly once. (On a very busy machine a live worker's heartbeat can lag past
    # the grace period: then that retry is failed as stale and retried again, still under the killed trial's number.)
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    done = [t for t in retry if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 1 and done[0].params == dead.params
    assert all(t.state == optuna.trial.TrialState.FAIL for t in retry if t is not done[0])
    # Any other failed trial is one a worker gave back for want of budget, never one left unrun.
    assert all(t.user_attrs.get("excess") for t in trials if t.state == optuna.trial.TrialState.FAIL
               and t.number != killed and t.number not in {r.number for r in retry})
    assert not [t for t in trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)]
