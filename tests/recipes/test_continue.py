"""trainwright continue: a trained table run meets new data; what each strategy keeps, and bad input.

The bar run: the old run learned digits 0-8 (sklearn's digits as a table, ``data.classes``); the new
data are the 180 rows of digit 9. Its numbers over seeds 0-2 are ``benchmarks/continue_table.py``'s.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers import expect_clear_error, penguins_like, run_cli
from rich.console import Console

import trainwright as tw
from trainwright.continual.buffer import ReplayBuffer
from trainwright.data.builtin import BUILTINS
from trainwright.errors import TrainwrightError
from trainwright.recipes.continue_run import continue_run

QUIET = Console(quiet=True)
# Every epoch of a fixed budget, as continual-learning papers train a task (the benchmark: 100 epochs, and early stopping too).
FIXED = ["train.early_stopping.enabled=false", "train.epochs=30"]


def fingerprint(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def record(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "continual.json").read_text())


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("continue")
    table = BUILTINS["digits"].load()
    table[table["digit"] == 9].to_csv(root / "digits-9.csv", index=False)
    raw = {"data": {"source": "digits", "classes": list(range(9))}, "evaluate": {"baseline": False}}
    old = tw.train(raw, runs_dir=root / "runs", name="digits-0-8", console=QUIET)
    return root, old.dir


@pytest.fixture(scope="module")
def penguins(tmp_path_factory) -> tuple[Path, Path]:
    """A small table run on a CSV file (its data can be taken away), trained on Adelie and Gentoo only."""
    root = tmp_path_factory.mktemp("penguins")
    frame = penguins_like(360, seed=1).dropna(subset=["species"]).drop_duplicates()
    frame[frame["species"] != "Chinstrap"].to_csv(root / "old.csv", index=False)
    frame[frame["species"] == "Chinstrap"].to_csv(root / "chinstrap.csv", index=False)
    old = tw.train({"data": {"source": str(root / "old.csv"), "target": "species"}, "train": {"epochs": 30}},
                   runs_dir=root / "runs", name="two-species", console=QUIET)
    return root, old.dir


def test_replay_keeps_the_old_accuracy_where_naive_fine_tuning_loses_it(digits):
    root, old = digits
    before = fingerprint(old)
    replay = run_cli("continue", str(old), "--data", str(root / "digits-9.csv"), "--strategy", "replay", "--set",
                     "continual.replay.share=0.2", *(f"--set={o}" for o in FIXED), "--runs-dir", str(root / "runs"),
                     "--name", "replay")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.strip().splitlines()[-1] == str(root / "runs" / "replay")  # the last line is the new run
    console = Console(record=True, width=200)
    naive = continue_run(old, root / "digits-9.csv", strategy="naive", overrides=FIXED, runs_dir=root / "runs", console=console)
    kept, lost = record(root / "runs" / "replay"), record(naive.dir)
    old_accuracy = json.loads((old / "metrics.json").read_text())["test"]["accuracy"]
    assert kept["old_test_accuracy"]["before"] == pytest.approx(old_accuracy)  # the old splits were made again exactly
    assert kept["new_classes"] == [9] and kept["tasks"][1]["test"] == 27
    # The bar: replay keeps the old test accuracy within 3 points and learns the new class...
    assert kept["old_test_accuracy"]["change"] >= -0.03 and kept["new_test_accuracy"]["after"] >= 0.9
    # ...where naive fine-tuning learns it too but forgets most of the old classes, and says so.
    assert lost["old_test_accuracy"]["change"] <= -0.3 and lost["new_test_accuracy"]["after"] >= 0.9
    change = lost["old_test_accuracy"]
    assert (f"old test accuracy {change['before']:.4f} -> {change['after']:.4f} ({100 * change['change']:+.1f} points)"
            in console.export_text())
    assert fingerprint(old) == before  # the old run is only read

    # The new run is a run: predict loads it with the tenth class; the buffer is kept for the next update.
    model = tw.load(root / "runs" / "replay")
    assert model.classes == list(range(10)) and model.task == "multiclass"
    assert (model.predict(root / "digits-9.csv")["prediction"] == 9).mean() > 0.9
    buffer = ReplayBuffer.load(root / "runs" / "replay" / "replay.safetensors")
    assert len(buffer) == int(0.2 * (1131 + 126)) and sorted(buffer.y.unique().tolist()) == list(range(10))
    report = (root / "runs" / "replay" / "report.html").read_text()
    assert 'id="continual"' in report and "Accuracy matrix" not in report  # figures are images, with alt text
    assert report.count('alt="accuracy matrix') == 1 and report.count('alt="accuracy on each task') == 1


def test_a_binary_run_gains_a_class_or_stays_binary(tmp_path):
    iris = BUILTINS["iris"].load()
    iris[iris["species"] == "virginica"].to_csv(tmp_path / "virginica.csv", index=False)
    iris[iris["species"] != "virginica"].sample(40, random_state=0).to_csv(tmp_path / "more.csv", index=False)
    old = tw.train({"data": {"source": "iris", "classes": ["setosa", "versicolor"]}, "train": {"epochs": 30}},
                   runs_dir=tmp_path, name="binary", console=QUIET)
    grown = continue_run(old.dir, tmp_path / "virginica.csv", strategy="lwf", overrides=["train.epochs=10"], runs_dir=tmp_path,
                         console=QUIET)
    model = tw.load(grown.dir)
    assert model.task == "multiclass" and model.classes == ["setosa", "versicolor", "virginica"]
    assert model.predict_proba(tmp_path / "virginica.csv").shape == (50, 3)
    # New rows of the old two classes: trained as two softmax logits, saved as the one logit a binary run has.
    same = continue_run(old.dir, tmp_path / "more.csv", strategy="naive", overrides=["train.epochs=10"], runs_dir=tmp_path,
                        console=QUIET)
    model = tw.load(same.dir)
    assert model.task == "binary" and json.loads((same.dir / "model.json").read_text())["out_features"] == 1
    assert record(same.dir)["new_classes"] == [] and same.metrics["test"]["accuracy"] > 0.9


@pytest.fixture(scope="module")
def continued(penguins) -> Path:
    """The penguins run continued with replay on the new species (a run that was itself continued, with a buffer)."""
    root, old = penguins
    return continue_run(old, root / "chinstrap.csv", strategy="replay", overrides=["train.epochs=5", "continual.replay.size=40"],
                        runs_dir=root / "runs", name="continued", console=QUIET).dir


def test_a_continued_run_continues_with_its_own_and_the_earlier_updates_data(penguins, continued, tmp_path):
    root, _ = penguins
    second = continue_run(continued, root / "chinstrap.csv", strategy="naive", overrides=["train.epochs=2"], runs_dir=tmp_path,
                          console=QUIET)
    first_tasks, tasks = record(continued)["tasks"], record(second.dir)["tasks"]
    assert record(second.dir)["old_data"] == "available" and record(second.dir)["new_classes"] == []
    assert tasks[0]["train"] == first_tasks[0]["train"] + first_tasks[1]["train"]  # the old rows and the first update's
    sources = json.loads((second.dir / "data.json").read_text())["continued"]["sources"]
    assert [s["source"] for s in sources] == [str(root / "chinstrap.csv")] * 2


def test_without_the_old_data_lwf_runs_ewc_cannot_and_replay_uses_the_saved_buffer(tmp_path):
    frame = penguins_like(300, seed=3).dropna(subset=["species"]).drop_duplicates()
    frame[frame["species"] != "Chinstrap"].to_csv(tmp_path / "old.csv", index=False)
    frame[frame["species"] == "Chinstrap"].to_csv(tmp_path / "new.csv", index=False)
    settings = ["train.epochs=5", "continual.replay.size=40"]
    old = tw.train({"data": {"source": str(tmp_path / "old.csv"), "target": "species"}, "train": {"epochs": 10}},
                   runs_dir=tmp_path, name="old", console=QUIET).dir
    first = continue_run(old, tmp_path / "new.csv", strategy="replay", overrides=settings, runs_dir=tmp_path, console=QUIET)
    (tmp_path / "old.csv").unlink()  # the old data are gone

    lwf = continue_run(old, tmp_path / "new.csv", strategy="lwf", overrides=settings, runs_dir=tmp_path, console=QUIET)
    facts = json.loads(json.dumps(record(lwf.dir)))
    assert "cannot be read" in facts["old_data"] and facts["old_test_accuracy"]["after"] is None  # not scored: no rows
    result = run_cli("continue", str(old), "--data", str(tmp_path / "new.csv"), "--strategy", "ewc", "--runs-dir", str(tmp_path))
    expect_clear_error(result, "ewc needs the old data's statistics", "old.csv", "--strategy lwf")

    # The continued run saved its buffer: a later update replays it without the old data.
    before = fingerprint(first.dir)
    again = continue_run(first.dir, tmp_path / "new.csv", strategy="replay", overrides=settings, runs_dir=tmp_path, console=QUIET)
    assert record(again.dir)["replay"]["rows"] == 40 and "cannot be read" in record(again.dir)["old_data"]
    assert fingerprint(first.dir) == before
    assert tw.load(again.dir).classes == ["Adelie", "Gentoo", "Chinstrap"]  # a new class comes after the old ones


def test_bad_new_data_is_one_clear_line(penguins, tmp_path):
    root, old = penguins
    frame = penguins_like(120, seed=2).dropna(subset=["species"])
    frame.assign(colour="red").to_csv(tmp_path / "extra.csv", index=False)
    result = run_cli("continue", str(old), "--data", str(tmp_path / "extra.csv"), "--runs-dir", str(tmp_path / "runs"))
    expect_clear_error(result, "'colour'", "drop it")
    before = fingerprint(old)

    frame.drop(columns=["body_mass_g"]).to_csv(tmp_path / "fewer.csv", index=False)
    frame.assign(island="Atlantis").to_csv(tmp_path / "unseen.csv", index=False)
    (tmp_path / "images" / "cat").mkdir(parents=True)
    cases = [(tmp_path / "fewer.csv", [], "lack column 'body_mass_g'"),
             (tmp_path / "unseen.csv", [], "'island': 'Atlantis'"),
             (tmp_path / "images", [], "are images, but the run was trained on a table"),
             (root / "chinstrap.csv", ["data.source=other.csv"], "keeps the old run's data"),
             (root / "chinstrap.csv", ["continual.scenario=task_incremental"], "class_incremental"),
             (root / "chinstrap.csv", ["continual.strategy=gem"], "continual.strategy"),
             (root / "chinstrap.csv", ["continual.replay.size=100000"], "larger than the old training data")]
    for data, overrides, fragment in cases:
        with pytest.raises(TrainwrightError, match=fragment.replace("(", r"\(")):
            continue_run(old, data, overrides=overrides, runs_dir=tmp_path / "runs", console=QUIET)
    assert not (tmp_path / "runs").exists() and fingerprint(old) == before  # nothing written, the old run untouched


def test_a_regression_run_cannot_be_continued(tmp_path):
    old = tw.train({"data": {"source": "diabetes"}, "train": {"epochs": 2}}, runs_dir=tmp_path, name="regression", console=QUIET)
    with pytest.raises(TrainwrightError, match="does regression"):
        continue_run(old.dir, "diabetes", runs_dir=tmp_path, console=QUIET)


def test_train_refuses_a_continual_config_and_resuming_a_continued_run(continued, tmp_path):
    with pytest.raises(TrainwrightError, match="trainwright continual CONFIG"):
        tw.train({"data": {"source": "digits"}, "continual": {"strategy": "naive"}}, runs_dir=tmp_path, console=QUIET)
    with pytest.raises(TrainwrightError, match="cannot be resumed"):
        tw.train(resume=continued, console=QUIET)
