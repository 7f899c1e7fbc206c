"""trainwright continual: a task sequence, one strategy, the accuracy matrix beside the joint upper bound.

Tiny budgets (3 epochs a task); the quality bars over seeds 0-2 are ``benchmarks/continual_digits.py``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import expect_clear_error, run_cli
from rich.console import Console

import trainwright as tw
from trainwright.configure import load_config
from trainwright.data.builtin import BUILTINS
from trainwright.errors import TrainwrightError
from trainwright.recipes.continual import run_continual

QUIET = Console(quiet=True)
EXAMPLE = Path(__file__).parents[2] / "examples" / "continual-digits.yaml"
SHORT = ["train.epochs=3"]


def record(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "continual.json").read_text())


def test_split_digits_naive_forgets_what_joint_keeps(tmp_path):
    result = run_cli("continual", str(EXAMPLE), "--strategy", "naive", "--set", SHORT[0], "--runs-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    facts = record(run_dir)
    matrix = facts["matrix"]
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert all(matrix[i][j] is None for i in range(5) for j in range(i + 1, 5))  # not trained on yet: not measured
    assert min(matrix[i][i] for i in range(5)) > 0.9  # every task is learned...
    assert facts["average_accuracy"] < 0.3 and facts["forgetting"] > 0.8  # ...and forgotten at the next one
    assert facts["joint"]["average_accuracy"] > 0.9 and [t["classes"] for t in facts["tasks"]][1] == [2, 3]
    assert f"joint (the upper bound) {facts['joint']['average_accuracy']:.3f}" in result.stdout.replace("\n", " ")
    # The final model is a run's model: every class, the task not given; the report shows the matrix.
    model = tw.load(run_dir)
    assert model.classes == list(range(10)) and model.predict_proba(BUILTINS["digits"].load().head(5)).shape == (5, 10)
    report = (run_dir / "report.html").read_text()
    assert 'id="continual"' in report and 'alt="accuracy matrix' in report and "Not diagnosed" in report


def test_replay_keeps_far_more_than_naive_and_task_incremental_keeps_nearly_all(tmp_path):
    replay = run_continual(load_config(EXAMPLE, [*SHORT, "continual.strategy=replay"]), runs_dir=tmp_path, console=QUIET)
    facts = record(replay.dir)
    assert facts["average_accuracy"] > 0.6 and facts["replay"] == {"share": 0.1, "size": None, "rows": 100, "old_rows": 1009}
    assert [t.get("replayed", {}).get("rows") for t in facts["tasks"]] == [0, 25, 50, 75, 100]  # 10% of the rows before it
    tasks = run_continual(load_config(EXAMPLE, [*SHORT, "continual.strategy=lwf", "continual.scenario=task_incremental"]),
                          runs_dir=tmp_path, console=QUIET)
    assert record(tasks.dir)["average_accuracy"] > 0.9 and record(tasks.dir)["scenario"] == "task_incremental"


def test_a_list_of_tables_is_a_task_sequence(tmp_path):
    table = BUILTINS["digits"].load()
    for name, digits in (("first", [0, 1, 2]), ("second", [3, 4]), ("third", [5, 6])):
        table[table["digit"].isin(digits)].to_csv(tmp_path / f"{name}.csv", index=False)
    raw = {"data": {"source": str(tmp_path / "first.csv"), "target": "digit"}, "model": {"type": "mlp", "hidden": [64]},
           "continual": {"strategy": "ewc", "then": [str(tmp_path / "second.csv"), str(tmp_path / "third.csv")]}}
    run = run_continual(load_config(raw, SHORT), runs_dir=tmp_path, console=QUIET)
    facts = record(run.dir)
    assert [t["name"] for t in facts["tasks"]] == [str(tmp_path / f"{n}.csv") for n in ("first", "second", "third")]
    assert [t["classes"] for t in facts["tasks"]] == [[0, 1, 2], [3, 4], [5, 6]] and len(facts["joint"]["accuracies"]) == 3
    table.assign(ink="blue").to_csv(tmp_path / "other.csv", index=False)
    raw["continual"]["then"] = [str(tmp_path / "other.csv")]
    with pytest.raises(TrainwrightError, match="'ink'"):
        run_continual(load_config(raw, SHORT), runs_dir=tmp_path / "bad", console=QUIET)


def test_bad_continual_settings_are_one_clear_line(tmp_path):
    result = run_cli("continual", "examples/digits.yaml", "--runs-dir", str(tmp_path), cwd=EXAMPLE.parents[1])
    expect_clear_error(result, "no continual: section")
    cases = [({"strategy": "joint"}, {}, "the upper bound every continual run trains"),
             ({"split": {"classes_per_task": 10}}, {}, "a sequence needs two or more"),
             ({"scenario": "task_incremental", "split": {"tasks": [[0, 1], [1, 2]]}}, {}, "no class in two tasks"),
             ({"strategy": "naive"}, {"source": "diabetes"}, "no classes to cut into tasks")]
    for continual, data, fragment in cases:
        with pytest.raises(TrainwrightError, match=fragment):
            run_continual(load_config({"data": {"source": "digits", **data}, "continual": continual}), runs_dir=tmp_path,
                          console=QUIET)
    assert not any(tmp_path.iterdir())  # nothing written
