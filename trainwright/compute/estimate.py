"""How long training will take, before it starts, and how fast it really went, after.

The classic arithmetic: FLOPs per step (counted on the real model) x steps / sustained FLOP/s,
where sustained = the device's matmul peak x an efficiency factor. On a device that is here, the
peak is measured by a matmul probe at the run's precision and the efficiency by timing a few real
training steps on a throwaway copy; for a GPU named from the table, the peak is its datasheet
figure and the efficiency is assumed (``ASSUMED_EFFICIENCY``), and the output says so. Validation
adds its forward passes once per epoch.

Example:
    >>> est = estimate_training(cfg, data, model, torch.device("cpu"))
    >>> est.total_seconds, est.flops_per_step, est.memory.total
    >>> print("\\n".join(est.lines()))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from trainwright.compute import compiling
from trainwright.compute.communication import AllReduce, all_reduce, link_for
from trainwright.compute.compiling import CONFIG_OFF, CompileChoice
from trainwright.compute.flops import StepProfile, profile_step
from trainwright.compute.memory import Memory, human_bytes, state_copies, training_memory
from trainwright.compute.peak import GPU, device_label, device_memory, device_peak
from trainwright.compute.timing import STEPS_PER_ROUND, StepTiming, time_compiled, time_steps, time_validation
from trainwright.config import Config, TrainConfig
from trainwright.data.batches import TensorBatches, fits_on
from trainwright.data.prepare import Prepared
from trainwright.training.losses import LossFn, build_loss, resolve_loss
from trainwright.training.precision import DTYPES, autocast

# Without a device to time on, the share of the nominal peak a training step sustains is assumed.
# Large, well-fed models reach 30-50% (PaLM: 46% model-FLOPs utilization, Chowdhery et al. 2022, table 3);
# small models reach far less (per-step overheads dominate), so for them the time predicted is a lower bound.
ASSUMED_EFFICIENCY = 0.30
# ... and a step cannot be faster than the host needs to dispatch its operators: eager PyTorch spends a few
# microseconds of CPU time per operator (dispatch and kernel launch), which bounds small models on any GPU.
ASSUMED_SECONDS_PER_OPERATOR = 5e-6


@dataclass(frozen=True)
class Estimate:
    """The prediction, and every number it was made from."""

    device: str  # "cpu (2 threads)", "cuda:0 (NVIDIA H100 80GB HBM3)", or "H100 SXM (nominal)"
    precision: str
    epochs: int
    batch_size: int
    steps_per_epoch: int  # batches per epoch (a partial last batch counts as a step)
    train_rows: int
    val_rows: int
    step: StepProfile  # FLOPs of one forward + backward, per layer; activation bytes
    peak_flops_per_second: float
    peak_source: str  # how the peak was obtained
    seconds_per_step: float
    step_source: str  # "measured over N steps" or "assumed"
    validation_seconds: float  # one validation pass (once per epoch)
    memory: Memory
    device_memory: int | None  # bytes available on the device, where known
    notes: tuple[str, ...] = ()
    parallel: DataParallelEstimate | None = None  # the same on several processes (estimate --nproc-per-node)
    compile: CompileChoice = CONFIG_OFF  # train.compile, decided (compute/compiling.py)

    @property
    def flops_per_step(self) -> int:
        return self.step.total

    @property
    def sustained_flops_per_second(self) -> float:
        return self.flops_per_step / self.seconds_per_step

    @property
    def efficiency(self) -> float:
        """The share of the peak a training step sustains (model-FLOPs utilization of a step)."""
        return self.sustained_flops_per_second / self.peak_flops_per_second

    @property
    def epoch_seconds(self) -> float:
        return self.steps_per_epoch * self.seconds_per_step + self.validation_seconds

    @property
    def total_seconds(self) -> float:
        return self.epochs * self.epoch_seconds

    def seconds_for(self, epochs: int) -> float:
        """The estimate for ``epochs`` epochs (an early stop trains fewer than planned); data-parallel, on its processes."""
        return epochs * (self.parallel.epoch_seconds if self.parallel is not None else self.epoch_seconds)

    def summary(self) -> str:
        """One line, printed before training."""
        return (
            f"estimate: {_si(self.flops_per_step)}FLOP/step x {self.steps_per_epoch} steps x {self.epochs} epochs "
            f"at {_si(self.sustained_flops_per_second)}FLOP/s ({_percent(self.efficiency)} of the "
            f"{_si(self.peak_flops_per_second)}FLOP/s "
            f"{self.precision} peak) + validation = {_duration(self.total_seconds)}; memory {human_bytes(self.memory.total)}"
            + (self.parallel.summary() if self.parallel is not None else "")
        )

    def lines(self) -> list[str]:
        """The whole arithmetic in plain terms, as ``trainwright estimate`` prints it."""
        step, epoch_flops = self.step, self.flops_per_step * self.steps_per_epoch
        train_seconds = self.steps_per_epoch * self.seconds_per_step
        lines = [
            (
                f"steps: {self.train_rows} training rows / batch {self.batch_size} = {self.steps_per_epoch} steps per epoch; "
                f"{self.val_rows} validation rows once per epoch"
            ),
            (
                f"FLOPs per step: {_si(step.total)}FLOP = forward {_si(step.forward)}FLOP + backward {_si(step.backward)}FLOP "
                f"(batch {step.batch_size}, counted by torch's FlopCounterMode)"
            ),
            f"device: {self.device}, {self.precision}: matmul peak {_si(self.peak_flops_per_second)}FLOP/s ({self.peak_source})",
            (
                f"efficiency: {_percent(self.efficiency)} of peak = {_si(self.sustained_flops_per_second)}FLOP/s sustained "
                f"({self.step_source}: {_duration(self.seconds_per_step)} per step)"
            ),
            (
                f"per epoch: {_si(self.flops_per_step)}FLOP x {self.steps_per_epoch} steps = {_si(epoch_flops)}FLOP "
                f"/ {_si(self.sustained_flops_per_second)}FLOP/s = {_duration(train_seconds)} training "
                f"+ {_duration(self.validation_seconds)} validation = {_duration(self.epoch_seconds)}"
            ),
            f"total: {self.epochs} epochs x {_duration(self.epoch_seconds)} = {_duration(self.total_seconds)}",
            "memory: "
            + " + ".join(f"{name} {human_bytes(size)}" for name, size in self.memory.items() if size)
            + f" = {human_bytes(self.memory.total)}"
            + self._fits(),
        ]
        lines += [self.compile.line()] if self.compile.decided_by == "auto" else []
        return lines + list(self.notes) + (self.parallel.lines() if self.parallel is not None else [])

    def _fits(self) -> str:
        if self.device_memory is None:
            return ""
        share = self.memory.total / self.device_memory
        verdict = "fits" if share <= 0.9 else "does NOT fit; lower train.batch_size or the model size"
        return f" of {human_bytes(self.device_memory)} ({_percent(share)}: {verdict})"


def estimate_training(cfg: Config, data: Prepared, model: nn.Module, device: torch.device | GPU,
                      peak_cache: Path | None = None) -> Estimate:
    """Predict the training time and memory of ``model`` on ``data`` as ``cfg.train`` says.

    ``device`` is a ``torch.device`` here (measured: matmul probe, timed steps) or a ``GPU`` from
    the nominal table (datasheet peak, assumed efficiency). ``peak_cache``: the directory whose
    ``peaks.json`` keeps this machine's measured peaks (``cache.cache_dir()``; None: measure). The
    model and the global RNG are left exactly as they were.
    """
    tc = cfg.train
    local = isinstance(device, torch.device)
    where = device if local else torch.device("cpu")  # FLOPs do not depend on the device: count them here
    loss_fn = build_loss(resolve_loss(data.task, tc.loss))
    batches = TensorBatches(data.x_train, data.y_train, tc.batch_size)
    batch = batches.batch_size
    # Data that would be streamed (too big for the device) is timed on its first batches only.
    rows = len(data.x_train) if fits_on(where, data.x_train) else batch * 4 * STEPS_PER_ROUND
    x, y, x_val = data.x_train[:rows].to(where), data.y_train[:rows].to(where), data.x_val.to(where)
    with torch.random.fork_rng(devices=[where.index or 0] if where.type == "cuda" else []):
        model_here = model.to(where) if local else _cpu_copy(model)
        step = profile_step(model_here, x[:batch], y[:batch], loss_fn, autocast(where, tc.precision), tc.optimizer)
        notes: list[str] = []
        if local:
            peak, peak_source = device_peak(where, DTYPES[tc.precision], peak_cache)
            timing = time_steps(tc, model_here, x, y, loss_fn, batch, transform=data.train_transform)  # augmentation included
            seconds_per_step, step_source = timing.seconds_per_step, f"measured over {timing.steps} steps"
            choice = _compile_choice(tc, model_here, x, y, loss_fn, batch, timing, len(batches) * tc.epochs, step.operators,
                                     data.train_transform)
            if choice.decided_by == "auto" and choice.compiled_step_s is not None:
                seconds_per_step = choice.compiled_step_s if choice.enabled else choice.eager_step_s
                step_source = f"measured in alternation, {'compiled' if choice.enabled else 'eager'}"
            validation = time_validation(model_here, x_val, cfg.evaluate.batch_size)
            if tc.compile is True:
                notes.append(
                    f"note: torch.compile warm-up took {_duration(timing.warmup_seconds)} on the timing copy; "
                    "the run compiles again on its first steps (cached, usually faster)"
                )
            if tc.precision != "fp32":
                fp32, _ = device_peak(where, torch.float32, peak_cache)
                if fp32 > peak:
                    notes.append(
                        f"note: {tc.precision} matmuls run at {_si(peak)}FLOP/s here, fp32 at {_si(fp32)}FLOP/s: "
                        f"this device has no fast {tc.precision}; train.precision: fp32 would be faster"
                    )
            label, capacity = device_label(where), device_memory(where)
        else:
            peak, peak_source = device.peak(tc.precision), f"nominal, {device.source}"
            # The larger of the FLOP time at the assumed efficiency and the operators' host time.
            sustained, host = peak * ASSUMED_EFFICIENCY, ASSUMED_SECONDS_PER_OPERATOR
            seconds_per_step = max(step.total / sustained, step.operators * host)
            step_source = (
                f"assumed, nothing timed: {ASSUMED_EFFICIENCY:.0%} of peak, or at least {step.operators} operators "
                f"x {host * 1e6:.0f} us of host time per step when that is longer"
            )
            val_batches = -(-len(x_val) // cfg.evaluate.batch_size)
            validation = max(step.forward / batch * len(x_val) / sustained, val_batches * step.forward_operators * host)
            label, capacity = f"{device.label} (nominal)", int(device.memory_gb * 1024**3)
            choice = (compiling.by_config(tc.compile, "inductor") if tc.compile != "auto"
                      else CompileChoice("eager", "auto", "no device here to time compiled steps on"))
    resident = 2 * _nbytes(data.x_train, data.y_train) if rows == len(data.x_train) else 0  # streamed data stays on the host
    data_bytes = resident + _nbytes(x_val, data.y_val)  # training split + each epoch's shuffled copy
    memory = training_memory(model, tc.optimizer, step.saved_bytes, data_bytes)
    if state_copies(tc.optimizer):
        notes.insert(0, f"note: optimizer state is {state_copies(tc.optimizer)} x the trainable parameters ({tc.optimizer.name})")
    return Estimate(
        device=label,
        precision=tc.precision,
        epochs=tc.epochs,
        batch_size=batch,
        steps_per_epoch=len(batches),
        train_rows=len(data.x_train),
        val_rows=len(x_val),
        step=step,
        peak_flops_per_second=peak,
        peak_source=peak_source,
        seconds_per_step=seconds_per_step,
        step_source=step_source,
        validation_seconds=validation,
        memory=memory,
        device_memory=capacity,
        notes=tuple(notes),
        compile=choice,
    )


def _compile_choice(tc: TrainConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, batch: int,
                    timing: StepTiming, steps: int, operators: int, transform) -> CompileChoice:
    """``train.compile`` decided: by config, or (auto) from eager and compiled steps timed in alternation, only
    when the run is long enough that compiling could pay (``compute/compiling.py``)."""
    if tc.compile is True:
        return compiling.by_config(True, "inductor", timing.seconds_per_step, timing.warmup_seconds)
    if tc.compile is False:
        return compiling.by_config(False, "inductor")
    if not compiling.worth_measuring(steps, timing.seconds_per_step):
        return compiling.too_short(steps, timing.seconds_per_step)
    mode = compiling.compile_mode(x.device.type, timing.seconds_per_step, operators)
    if mode is None:
        return CompileChoice("eager", "auto", f"auto does not compile on {x.device.type} (torch.compile's support is partial)",
                             eager_step_s=timing.seconds_per_step)
    try:
        paired = time_compiled(tc, model, x, y, loss_fn, batch, mode, transform=transform)
    except Exception as error:  # noqa: BLE001 - any compiler failure: train eagerly and say why
        return compiling.failed(mode, error, timing.seconds_per_step)
    return compiling.decide(steps, paired.eager_step_s, paired.compiled_step_s, paired.compile_s, mode)


@dataclass(frozen=True)
class DataParallelEstimate:
    """The same training on ``processes`` processes: each computes its share of every global batch (timed
    here at that share, on its share of the CPU's threads), then the gradients are all-reduced."""

    single: Estimate  # one process, the whole batch
    processes: int
    machines: int
    local_batch: int
    local_step_seconds: float  # one process's forward + backward + update on its share of a batch
    local_source: str
    reduce: AllReduce
    optimizer_steps_per_epoch: int  # the all-reduce runs once per optimizer step (train.accumulate groups batches)

    @property
    def communication_bound(self) -> bool:
        """The all-reduce takes longer than the compute between two of them."""
        return self.reduce.seconds > self.local_step_seconds * self.single.steps_per_epoch / self.optimizer_steps_per_epoch

    @property
    def epoch_seconds(self) -> float:
        """Compute and communication added up (DDP overlaps them in part: an upper bound), plus each
        process's share of the validation rows."""
        single = self.single
        return (single.steps_per_epoch * self.local_step_seconds + self.optimizer_steps_per_epoch * self.reduce.seconds
                + single.validation_seconds / self.processes)

    @property
    def total_seconds(self) -> float:
        return self.single.epochs * self.epoch_seconds

    def summary(self) -> str:
        """The one-line estimate's data-parallel part."""
        bound = "communication" if self.communication_bound else "compute"
        return (f"; on {self.processes * self.machines} processes, {self.local_batch} rows each: "
                f"{_duration(self.total_seconds)} with a {_duration(self.reduce.seconds)} all-reduce per step ({bound}-bound)")

    def lines(self) -> list[str]:
        single, reduce = self.single, self.reduce
        where = f"{self.processes} processes" + (f" on {self.machines} machines" if self.machines > 1 else "")
        compute = single.steps_per_epoch * self.local_step_seconds
        talk = self.optimizer_steps_per_epoch * reduce.seconds
        speedup = single.epoch_seconds / self.epoch_seconds
        lines = [
            (f"data-parallel: {where}, each takes {self.local_batch} rows of every global batch of {single.batch_size}: "
             f"{_duration(self.local_step_seconds)} per step ({self.local_source})"),
            (f"all-reduce per optimizer step: {human_bytes(reduce.gradient_bytes)} of gradients, 2 x ({self.processes} - 1) / "
             f"{self.processes} x that = {human_bytes(int(reduce.bytes_per_process))} sent by each process over "
             f"{reduce.link.label} at {_si(reduce.link.bandwidth)}B/s + {reduce.buckets} x {_duration(reduce.link.latency)} "
             f"latency = {_duration(reduce.seconds)} ({reduce.link.source})"),
            (f"per epoch: {single.steps_per_epoch} steps x {_duration(self.local_step_seconds)} compute = {_duration(compute)} "
             f"+ {self.optimizer_steps_per_epoch} all-reduces = {_duration(talk)} + validation "
             f"{_duration(single.validation_seconds / self.processes)} = {_duration(self.epoch_seconds)}; total "
             f"{single.epochs} epochs = {_duration(self.total_seconds)}, {speedup:.2f}x one process"),
        ]
        if self.communication_bound:
            lines.append(
                f"communication bounds each step: the all-reduce ({_duration(reduce.seconds)}) takes longer than a process's "
                f"compute between two of them ({_duration(compute / self.optimizer_steps_per_epoch)}); more processes will not "
                "train faster. Fewer, larger steps help: a larger train.batch_size, or train.accumulate"
            )
        else:
            between = compute / self.optimizer_steps_per_epoch  # one process's compute between two all-reduces
            lines.append(f"compute bounds each step: the all-reduce is {reduce.seconds / (reduce.seconds + between):.0%} of it")
        return lines


def estimate_data_parallel(cfg: Config, data: Prepared, model: nn.Module, device: torch.device | GPU, single: Estimate,
                           processes: int, machines: int = 1, share_threads: bool = True) -> DataParallelEstimate:
    """``single`` (the one-process estimate) on ``processes`` processes per machine x ``machines``: each
    process's step timed at its share of the batch (on a CPU with its share of the threads, unless this
    process already has only its share: ``share_threads=False``), plus the gradients' all-reduce over the
    link between them (``compute/communication.py``)."""
    tc, world = cfg.train, processes * machines
    local_batch = max(1, -(-single.batch_size // world))
    gradient_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    if isinstance(device, torch.device):
        threads = torch.get_num_threads()
        share = max(1, threads // processes) if device.type == "cpu" and share_threads else threads
        loss_fn = build_loss(resolve_loss(data.task, tc.loss))
        rows = min(len(data.x_train), local_batch * 4 * STEPS_PER_ROUND)
        x, y = data.x_train[:rows].to(device), data.y_train[:rows].to(device)
        torch.set_num_threads(share)
        try:
            with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
                timing = time_steps(tc, model, x, y, loss_fn, local_batch, transform=data.train_transform)
        finally:
            torch.set_num_threads(threads)
        local, source = timing.seconds_per_step, f"measured over {timing.steps} steps"
        if device.type == "cpu":
            local_source = f"{source}, {share} thread{'s' if share > 1 else ''} each"
        else:
            local_source = source
        label = "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device)
    else:
        share_of_flops = local_batch / single.batch_size
        local = max(single.seconds_per_step * share_of_flops, single.step.operators * ASSUMED_SECONDS_PER_OPERATOR)
        local_source, label = "assumed: the one-process step's FLOPs shared out, or its operators' host time", device.label
    reduce = all_reduce(gradient_bytes, world, link_for(label, machines))
    return DataParallelEstimate(single, processes, machines, local_batch, local, local_source, reduce,
                                -(-single.steps_per_epoch // tc.accumulate))


def compute_metrics(est: Estimate, train_seconds: float, epochs: int) -> dict:
    """``metrics.json["compute"]``: what the run achieved against what was estimated.

    FLOPs per sample are the step's FLOPs / batch size (exact for models linear in the batch:
    MLPs, CNNs, RNNs), so a partial last batch is not over-counted.
    """
    samples, steps = epochs * est.train_rows, epochs * est.steps_per_epoch
    achieved = est.flops_per_step / est.batch_size * samples / train_seconds
    return {
        "estimated_seconds": est.seconds_for(epochs),
        "train_seconds": train_seconds,
        "samples_per_second": samples / train_seconds,
        "steps_per_second": steps / train_seconds,
        "flops_per_step": est.flops_per_step,
        "achieved_flops_per_second": achieved,
        "peak_flops_per_second": est.peak_flops_per_second,
        "mfu": achieved / est.peak_flops_per_second,
        "device": est.device,
        "compile": est.compile.metrics(),  # train.compile, decided: mode, decided_by, the step times and the saving
    }


def compute_summary(compute: dict, epochs: int) -> str:
    """One line, printed after training."""
    ratio = compute["train_seconds"] / compute["estimated_seconds"]
    return (
        f"trained {epochs} epochs in {_duration(compute['train_seconds'])} (estimated {_duration(compute['estimated_seconds'])}, "
        f"actual/estimate {ratio:.2f}): {compute['samples_per_second']:,.0f} samples/s, "
        f"{_si(compute['achieved_flops_per_second'])}FLOP/s, MFU {_percent(compute['mfu'])} of the measured peak"
    )


def _cpu_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to("cpu")


def _nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _si(value: float) -> str:
    """``1.5e9 -> "1.50 G"``: a number and an SI prefix, to put before a unit."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g} "


def _percent(share: float) -> str:
    """Two significant digits below 1% (``0.0031 -> "0.31%"``), one decimal above."""
    return f"{share:.1%}" if share >= 0.01 else f"{share * 100:.2g}%"


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
