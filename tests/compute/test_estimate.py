"""The estimate before training, and the measured compute after it."""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

import trainwright as tw
from trainwright.compute.estimate import ASSUMED_EFFICIENCY, ASSUMED_SECONDS_PER_OPERATOR, estimate_training
from trainwright.data.tabular import prepare_tabular
from trainwright.models.registry import build_model

QUIET = Console(quiet=True)
COMPUTE_KEYS = {"estimated_seconds", "train_seconds", "samples_per_second", "steps_per_second", "flops_per_step",
                "achieved_flops_per_second", "peak_flops_per_second", "mfu", "device", "compile", "stages", "started_at"}


def iris(**train) -> dict:
    return {
        "data": {"source": "iris"},
        "model": {"hidden": [32]},
        "train": {"epochs": 10, "batch_size": 16, "device": "cpu", **train},
    }


@pytest.fixture
def one_thread():
    """Time on one thread: two OpenMP threads on a machine shared with other jobs wait on each other
    unpredictably (10-40x swings), which no estimate made a second earlier can foresee."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_local_estimate_arithmetic_adds_up():
    est = tw.estimate(iris(), console=QUIET)
    # 104: iris's one repeated row is kept, on its twin's side of the split (data.clean.duplicates)
    assert (est.train_rows, est.batch_size, est.steps_per_epoch, est.epochs) == (104, 16, 7, 10)
    # MLP 4-32-3 on batch 16: forward 2·16·(4·32 + 32·3); backward: the first layer has no input gradient.
    assert est.step.forward == 2 * 16 * (4 * 32 + 32 * 3)
    assert est.step.backward == 2 * 16 * 4 * 32 + 2 * 2 * 16 * 32 * 3
    assert est.flops_per_step == est.step.total
    assert est.efficiency == pytest.approx(est.flops_per_step / est.seconds_per_step / est.peak_flops_per_second)
    assert est.epoch_seconds == pytest.approx(7 * est.seconds_per_step + est.validation_seconds)
    assert est.total_seconds == pytest.approx(10 * est.epoch_seconds)
    assert "measured" in est.peak_source and est.step_source.startswith("measured over")
    assert est.memory.parameters == (4 * 32 + 32 + 32 * 3 + 3) * 4 and est.memory.optimizer == 2 * est.memory.parameters
    text = "\n".join(est.lines())
    for fragment in ("7 steps per epoch", "FLOPs per step", "matmul peak", "sustained", "total: 10 epochs", "fits"):
        assert fragment in text


def test_named_gpu_uses_its_datasheet_and_says_the_efficiency_is_assumed():
    est = tw.estimate(iris(precision="bf16"), device="A100", console=QUIET)
    assert est.device == "A100 80GB (nominal)" and est.peak_flops_per_second == pytest.approx(312e12)
    assert est.step_source.startswith("assumed")
    floor = est.step.operators * ASSUMED_SECONDS_PER_OPERATOR
    assert est.seconds_per_step == pytest.approx(max(est.flops_per_step / (312e12 * ASSUMED_EFFICIENCY), floor))
    assert est.device_memory == 80 * 1024**3
    with pytest.raises(tw.TrainwrightError, match="unknown device 'abacus'"):
        tw.estimate(iris(), device="abacus", console=QUIET)


def test_estimating_leaves_the_model_and_the_random_stream_as_they_were():
    cfg = tw.load_config(iris(precision="bf16", compile=False))
    data = prepare_tabular(cfg.data)
    model = build_model(cfg.model, data.input_shape, data.preprocessor.n_outputs)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    estimate_training(cfg, data, model, torch.device("cpu"))
    assert torch.equal(rng, torch.get_rng_state())  # so a seeded run stays bit-for-bit the same (tests/test_api.py)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_every_run_records_its_compute(tmp_path):
    run = tw.train(iris(epochs=5), runs_dir=tmp_path, name="iris", console=QUIET)
    compute = json.loads((run.dir / "metrics.json").read_text())["compute"]
    assert set(compute) == COMPUTE_KEYS
    assert list(compute["stages"]) == ["data", "estimate", "setup", "fit", "evaluation", "baselines"]
    assert compute["stages"]["fit"] >= compute["train_seconds"] > 0 and compute["started_at"] <= time.time()
    epochs, seconds = run.metrics["epochs"], compute["train_seconds"]
    assert seconds == run.metrics["train_seconds"]
    assert compute["samples_per_second"] == pytest.approx(epochs * 104 / seconds)
    assert compute["steps_per_second"] == pytest.approx(epochs * 7 / seconds)
    assert compute["achieved_flops_per_second"] == pytest.approx(compute["flops_per_step"] / 16 * epochs * 104 / seconds)
    assert compute["mfu"] == pytest.approx(compute["achieved_flops_per_second"] / compute["peak_flops_per_second"])
    assert compute["device"].startswith("cpu") and compute["estimated_seconds"] > 0


# The target, the estimate within +-25% of the measured time for an MLP, a CNN and a sequence model
# (issue #6), is a timing claim: benchmarks/estimate_accuracy.py checks it on a quiet machine (`make bench`).
# Here each workload runs the whole path (estimate, then train) and only a gross error fails: in CI the suite's
# other process and the shared machine swung single runs from 0.43 to 2.49.
BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "estimate_accuracy.py"
_spec = importlib.util.spec_from_file_location("estimate_accuracy", BENCHMARK)
_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_benchmark)
WORKLOADS = _benchmark.WORKLOADS  # the benchmark's own three, so both time the same runs


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_estimate_predicts_the_measured_training_time_within_a_factor_of_three(tmp_path, one_thread, name):
    # Up to three runs, spread out: the one closest to its estimate must be within a factor of 3 (an estimate
    # that misses a term, e.g. validation or augmentation, or counts steps wrongly is off by more every time).
    # A run within the factor of 3 settles it (the best run can only be closer), so no further run is made.
    ratios = []
    for attempt in range(3):
        if attempt:
            time.sleep(2.0 * attempt)
        compute = tw.train(WORKLOADS[name], runs_dir=tmp_path, console=QUIET).metrics["compute"]
        ratios.append(compute["train_seconds"] / compute["estimated_seconds"])
        if 1 / 3 <= ratios[-1] <= 3:
            break
    best = min(ratios, key=lambda r: abs(math.log(r)))
    assert 1 / 3 <= best <= 3, f"{name}: actual/estimated time per run: {', '.join(f'{r:.2f}' for r in ratios)}"
