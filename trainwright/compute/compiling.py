"""``train.compile: auto``: compile the training step only where the run is long enough to repay it.

A run whose projected training (eager, from the estimate's timed steps) is under ``MIN_RUN_SECONDS``
never pays a compile: nothing more is measured and it trains eagerly. A longer run times eager and
compiled steps in alternation on throwaway copies (``compute.timing.time_compiled``) and compiles
when the projected saving, steps x (eager - compiled seconds per step), exceeds ``MARGIN`` x the
compile time measured there (the run's own compile hits torch's cache and is usually shorter).
On a CPU the compiler is inductor; on a CUDA GPU a host-bound step (a small model: the GPU waits on
the launches) is compiled with CUDA graphs (``mode="reduce-overhead"``).

``train.compile: true`` / ``false`` decide by config; the choice is printed, and recorded in
``metrics.json["compute"]["compile"]``.

Example:
    >>> choice = decide(steps=1350, eager_step_s=0.10, compiled_step_s=0.08, compile_s=8.0, mode="inductor")
    >>> choice.enabled, choice.line()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MIN_RUN_SECONDS = 120.0  # projected eager training below this is not measured: a compile takes seconds, its timing more
MARGIN = 1.5  # the saving must exceed the compile time by half again: timings on a busy machine are noisy
HOST_BOUND_SECONDS_PER_OPERATOR = 10e-6  # a CUDA step under this x its operators waits on the host: CUDA graphs pay

MODES = {"inductor": None, "reduce-overhead": "reduce-overhead"}  # our name -> torch.compile's mode


@dataclass(frozen=True)
class CompileChoice:
    """Whether the run compiles its training step, and every number the choice was made from."""

    mode: str  # "eager", "inductor" or "reduce-overhead" (inductor with CUDA graphs)
    decided_by: str  # "config" (train.compile: true/false) or "auto"
    reason: str
    eager_step_s: float | None = None
    compiled_step_s: float | None = None
    compile_s: float | None = None
    projected_saving_s: float | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "eager"

    @property
    def torch_mode(self) -> str | None:
        """``torch.compile``'s ``mode`` argument."""
        return MODES.get(self.mode)

    def line(self) -> str:
        """One line, printed before training."""
        chose = f"compiled ({self.mode})" if self.enabled else "eager"
        return f"compile: {chose}, {self.reason}"

    def metrics(self) -> dict:
        return asdict(self)


CONFIG_OFF = CompileChoice("eager", "config", "train.compile: false")


def by_config(compile_: bool, mode: str, compiled_step_s: float | None = None, compile_s: float | None = None) -> CompileChoice:
    """``train.compile: true`` or ``false``."""
    if not compile_:
        return CONFIG_OFF
    return CompileChoice(mode, "config", "train.compile: true", compiled_step_s=compiled_step_s, compile_s=compile_s)


def worth_measuring(steps: int, eager_step_s: float) -> bool:
    """A run shorter than ``MIN_RUN_SECONDS`` of eager training cannot repay a compile and its measurement."""
    return steps * eager_step_s >= MIN_RUN_SECONDS


def too_short(steps: int, eager_step_s: float) -> CompileChoice:
    return CompileChoice(
        "eager", "auto",
        f"{steps} steps x {_ms(eager_step_s)} = {_s(steps * eager_step_s)} of training, under the {MIN_RUN_SECONDS:.0f} s "
        "a compile needs to pay (not measured)",
        eager_step_s=eager_step_s,
    )


def compile_mode(device_type: str, eager_step_s: float, operators: int) -> str | None:
    """The compiler for this device, or None where auto does not compile (MPS: torch.compile's support is partial)."""
    if device_type == "cuda":
        host_bound = eager_step_s < operators * HOST_BOUND_SECONDS_PER_OPERATOR
        return "reduce-overhead" if host_bound else "inductor"
    return "inductor" if device_type == "cpu" else None


def decide(steps: int, eager_step_s: float, compiled_step_s: float, compile_s: float, mode: str) -> CompileChoice:
    """Compile when steps x (eager - compiled) exceeds ``MARGIN`` x the compile time."""
    saving = steps * (eager_step_s - compiled_step_s)
    numbers = (
        f"{_ms(eager_step_s)} eager vs {_ms(compiled_step_s)} compiled per step x {steps} steps = {_s(saving)} "
        f"projected saving, against a {_s(compile_s)} compile"
    )
    pays = saving > MARGIN * compile_s
    verdict = f"more than {MARGIN} x the compile" if pays else f"not more than {MARGIN} x the compile"
    return CompileChoice(mode if pays else "eager", "auto", f"{numbers} ({verdict})", eager_step_s, compiled_step_s, compile_s,
                         saving)


def failed(mode: str, error: Exception, eager_step_s: float) -> CompileChoice:
    """torch.compile failed on the timing copy: the run trains eagerly and says why."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return CompileChoice("eager", "auto", f"torch.compile ({mode}) failed on the timing copy: {type(error).__name__}: {detail}",
                         eager_step_s=eager_step_s)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _s(seconds: float) -> str:
    return f"{seconds:.3g} s"
