"""The whole ``trainwright train`` process against a hand-written script doing the same work.

A user waits for the whole command, not the loop. Each side runs as its own process, from the
interpreter's start to its exit: ``trainwright train`` on digits (MLP 64-256-256-10, ReLU, no
dropout, torch's init, batch 64, 30 epochs, Adam lr 1e-3, no early stopping, so both sides train
every epoch) with the estimate, the classical baselines, the report and the diagnosis it always
makes, against ``scripts/digits_torch.py``: import, load, split, standardize, train with a
validation pass per epoch, evaluate on the test split. Where Lightning or Keras 3 is installed
(the ``bench`` extra), ``scripts/digits_lightning.py`` and ``scripts/digits_keras.py`` do the same
work through them.

The commands alternate (hand, trainwright, Lightning, Keras, hand, ...) ``--repeats`` times after
one warm-up round (the file cache), and the ratio reported is trainwright's median wall time over
the hand-written script's (and, beside it, the median over the rounds of the ratio within a
round: a slow minute on a shared machine hits both sides of a round). CPU seconds (user + system,
child processes included) are printed too: on a busy machine they say what each side costs, and
wall time says what a user waits. trainwright fits the classical baselines in a forked process of
their own beside the network, and a worker process writes the preprocessor's files, scores and draws
the report's figures; on a busy machine those extra processes get their own shares of the CPU, which
flatters trainwright's wall time, so its main process's own
CPU seconds (``scripts/trainwright_cpu.py``) are printed too, against the hand-written script's:
that ratio is what an idle machine's wall time would show. The load average is printed before and
after.

Where trainwright's time went comes from what each run records in ``metrics.json["compute"]``:
``stages`` (data, estimate, setup, fit, evaluation, baselines) and ``started_at``; the start-up
(the interpreter and the imports) is the time from launch to ``started_at``; after the last stage,
the files' times tell writing the results (to ``metrics.json``), the diagnosis and report (to
``report.html``) and the exit apart.

    python benchmarks/whole_process.py [--repeats 5] [--epochs 30] [--no-frameworks]

The last line is ``whole process trainwright/hand-written = X.XX`` (median wall times).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
ROOT = HERE.parent

CONFIG = """\
data: {{source: digits}}
model: {{type: mlp, hidden: [256, 256], activation: relu, dropout: 0.0, init: torch}}
train:
  epochs: {epochs}
  batch_size: 64
  seed: 0
  device: cpu
  optimizer: {{name: adam, lr: 0.001}}
  early_stopping: {{enabled: false}}
"""
STAGES = ("data", "estimate", "setup", "fit", "evaluation", "baselines")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, its children included) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--no-frameworks", action="store_true", help="leave Lightning and Keras out (quicker)")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("KERAS_BACKEND", "torch")
    # Each side as installed: Python's default of caching compiled modules (pip compiles a package when it installs
    # it; an environment that sets PYTHONDONTWRITEBYTECODE would make trainwright compile its own modules in every
    # process, while torch and scikit-learn come compiled). The warm-up round writes the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    main_cpus: list[float] = []  # trainwright's main process alone
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "digits.yaml"
        config.write_text(CONFIG.format(epochs=args.epochs))
        env["TRAINWRIGHT_CPU_FILE"] = str(Path(tmp) / "cpu.txt")
        runs = Path(tmp) / "runs"
        commands = {
            "hand-written": [sys.executable, str(SCRIPTS / "digits_torch.py"), str(args.epochs)],
            "trainwright": [sys.executable, str(SCRIPTS / "trainwright_cpu.py"), "train", str(config), "--runs-dir", str(runs)],
        }
        if importlib.util.find_spec("lightning") is not None and not args.no_frameworks:
            commands["Lightning"] = [sys.executable, str(SCRIPTS / "digits_lightning.py"), str(args.epochs)]
        if importlib.util.find_spec("keras") is not None and not args.no_frameworks:
            commands["Keras 3 (torch)"] = [sys.executable, str(SCRIPTS / "digits_keras.py"), str(args.epochs)]
        print(f"digits, MLP 64-256-256-10, batch 64, {args.epochs} epochs, Adam; each side a whole process; "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {load()}", flush=True)
        for command in commands.values():  # warm-up: the file cache
            timed(command, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        breakdowns: list[dict[str, float]] = []
        for i in range(args.repeats):
            for name, command in commands.items():
                launched = time.time()
                wall, cpu = timed(command, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                if name == "trainwright":
                    breakdowns.append(breakdown(runs, launched, wall))
                    main_cpus.append(float(Path(env["TRAINWRIGHT_CPU_FILE"]).read_text()))
            sides = ", ".join(f"{name} {walls[name][-1]:.2f} s ({cpus[name][-1]:.2f} s CPU)" for name in commands)
            print(f"round {i + 1}: {sides}; {load()}", flush=True)

    hand, ours = statistics.median(walls["hand-written"]), statistics.median(walls["trainwright"])
    print(f"\nmedian of {args.repeats} (wall, CPU), {load()}:")
    hand_cpu = statistics.median(cpus["hand-written"])
    for name in commands:
        w, c = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"  {name:18s} {w:6.2f} s  {w / hand:5.2f} x   CPU {c:6.2f} s  {c / hand_cpu:5.2f} x")
    main_cpu = statistics.median(main_cpus)
    print(f"  {'(trainwright main process alone)':18s}            CPU {main_cpu:6.2f} s  {main_cpu / hand_cpu:5.2f} x"
          "   <- wall time on an idle machine, with the baselines on a second core")
    paired = statistics.median(o / h for h, o in zip(walls["hand-written"], walls["trainwright"]))
    print(f"median of the rounds' ratios trainwright/hand-written: {paired:.2f} "
          f"(from {min(o / h for h, o in zip(walls['hand-written'], walls['trainwright'])):.2f} "
          f"to {max(o / h for h, o in zip(walls['hand-written'], walls['trainwright'])):.2f})")
    print("where trainwright's wall time went (median seconds over the runs):")
    for key in breakdowns[0]:
        print(f"  {key:32s} {statistics.median(b[key] for b in breakdowns):6.2f}")
    print(f"whole process trainwright/hand-written = {ours / hand:.2f}")


def breakdown(runs: Path, launched: float, wall: float) -> dict[str, float]:
    """The newest run's recorded stages, with the start-up before them and the rest after them."""
    newest = max(runs.iterdir(), key=lambda path: path.stat().st_mtime)
    compute = json.loads((newest / "metrics.json").read_text())["compute"]
    stages = compute.get("stages", {})
    startup = compute["started_at"] - launched
    out = {"start-up (interpreter, imports)": startup}
    out |= {stage: stages.get(stage, 0.0) for stage in STAGES}
    # After the stages: the results written (metrics.json last), then the diagnosis and the report
    # (report.html), then the exit; told apart by when those files were written.
    written, reported = (newest / "metrics.json").stat().st_mtime, (newest / "report.html").stat().st_mtime
    out["writing the results"] = written - compute["started_at"] - sum(stages.values())
    out["diagnosis and report"] = reported - written
    out["exit"] = launched + wall - reported
    out["(whole process)"] = wall
    return out


if __name__ == "__main__":
    main()
