"""train.compile: auto's choice, on numbers (compiling itself is timed in tests/training/test_loop.py)."""

from __future__ import annotations

from trainwright.compute.compiling import MARGIN, MIN_RUN_SECONDS, by_config, compile_mode, decide, too_short, worth_measuring


def test_a_run_too_short_to_repay_a_compile_is_not_measured():
    assert not worth_measuring(steps=100, eager_step_s=0.01)  # 1 s of training
    assert worth_measuring(steps=2000, eager_step_s=MIN_RUN_SECONDS / 2000)
    choice = too_short(100, 0.01)
    assert (choice.mode, choice.decided_by, choice.enabled) == ("eager", "auto", False)
    assert "100 steps x 10 ms = 1 s of training, under the 120 s" in choice.line()


def test_compiles_only_when_the_projected_saving_exceeds_the_compile_time_with_a_margin():
    # 20 ms saved per step x 1000 steps = 20 s, against a 10 s compile: pays.
    pays = decide(steps=1000, eager_step_s=0.10, compiled_step_s=0.08, compile_s=10.0, mode="inductor")
    assert pays.enabled and pays.mode == "inductor" and pays.torch_mode is None
    assert abs(pays.projected_saving_s - 20.0) < 1e-9
    assert pays.line().startswith("compile: compiled (inductor), 100 ms eager vs 80 ms compiled per step x 1000 steps = 20 s")
    # The same saving against a compile that takes longer than saving / MARGIN: eager.
    close = decide(steps=1000, eager_step_s=0.10, compiled_step_s=0.08, compile_s=20.0 / MARGIN + 0.1, mode="inductor")
    assert not close.enabled and close.mode == "eager" and "not more than" in close.reason
    # A compiled step that is slower never compiles.
    slower = decide(steps=10**6, eager_step_s=0.10, compiled_step_s=0.11, compile_s=1.0, mode="inductor")
    assert not slower.enabled and slower.projected_saving_s < 0
    assert set(pays.metrics()) == {"mode", "decided_by", "reason", "eager_step_s", "compiled_step_s", "compile_s",
                                   "projected_saving_s"}


def test_cuda_graphs_for_host_bound_steps_inductor_otherwise():
    assert compile_mode("cpu", 0.1, operators=50) == "inductor"
    assert compile_mode("cuda", 100e-6, operators=50) == "reduce-overhead"  # 2 us per operator: waits on launches
    assert compile_mode("cuda", 0.1, operators=50) == "inductor"
    assert compile_mode("mps", 0.1, operators=50) is None
    forced = decide(steps=10**5, eager_step_s=1e-3, compiled_step_s=2e-4, compile_s=30.0, mode="reduce-overhead")
    assert forced.torch_mode == "reduce-overhead"


def test_true_and_false_decide_by_config():
    assert not by_config(False, "inductor").enabled
    on = by_config(True, "inductor", compiled_step_s=0.05, compile_s=7.0)
    assert on.enabled and on.decided_by == "config" and on.compile_s == 7.0
