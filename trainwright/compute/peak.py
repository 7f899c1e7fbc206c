"""What a device can do: peak matmul FLOP/s (measured here, or nominal for a named GPU) and memory.

The local peak is measured, not looked up: square matmuls at the run's dtype, grown until one
takes a few milliseconds, the best of a few timed rounds. A CPU's rate depends on its cores,
vector units and what else is running, and a CPU without native bf16 runs bf16 matmuls tens of
times slower than fp32; a probe sees all of that.

A measured peak is kept in ``peaks.json`` in the cache directory (``trainwright/cache.py``), keyed
by the device, the dtype, the thread count and the torch version, so later runs on this machine
skip the probe; a run with another thread count (or torch) measures its own.

For a GPU that is not here, ``NOMINAL`` holds the dense (no 2:4 sparsity) peaks from NVIDIA's
datasheets. fp32 means plain FP32 (PyTorch does not use TF32 for matmuls unless told to);
bf16/fp16 mean tensor cores with fp32 accumulation, which is what autocast uses.

Example:
    >>> matmul_peak(torch.device("cpu"), torch.float32)   # FLOP/s, e.g. 7.1e10 on 2 cores
    >>> NOMINAL["h100"].peak("bf16")                        # 9.894e14
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from trainwright.errors import TrainwrightError
from trainwright.files import atomic_write

TERA = 1e12


@dataclass(frozen=True)
class GPU:
    label: str
    fp32: float  # TFLOP/s, dense
    bf16: float | None  # None: no bfloat16 on this architecture
    fp16: float
    memory_gb: float
    source: str

    def peak(self, precision: str) -> float:
        """FLOP/s at ``precision``; a precision the GPU lacks is a clear error."""
        value = {"fp32": self.fp32, "bf16": self.bf16, "fp16": self.fp16}[precision]
        if value is None:
            raise TrainwrightError(f"{self.label} has no {precision} support; use fp16 (with loss scaling) or fp32")
        return value * TERA


# Dense peaks in TFLOP/s (the datasheets' headline tensor numbers are "with sparsity": twice these).
NOMINAL: dict[str, GPU] = {
    # NVIDIA H100 Tensor Core GPU datasheet (2023): SXM 67 FP32, 989 BF16/FP16; PCIe 51 FP32, 756 BF16/FP16.
    "h100": GPU("H100 SXM", 67.0, 989.4, 989.4, 80, "NVIDIA H100 datasheet"),
    "h100-pcie": GPU("H100 PCIe", 51.0, 756.0, 756.0, 80, "NVIDIA H100 datasheet"),
    # NVIDIA H200 datasheet (2024): same compute as H100 SXM, 141 GB HBM3e.
    "h200": GPU("H200 SXM", 67.0, 989.4, 989.4, 141, "NVIDIA H200 datasheet"),
    # NVIDIA A100 Tensor Core GPU datasheet (2021): 19.5 FP32, 312 BF16/FP16; 40 or 80 GB.
    "a100": GPU("A100 80GB", 19.5, 312.0, 312.0, 80, "NVIDIA A100 datasheet"),
    "a100-40gb": GPU("A100 40GB", 19.5, 312.0, 312.0, 40, "NVIDIA A100 datasheet"),
    # NVIDIA L4 datasheet (2023): 30.3 FP32, 121 BF16/FP16 (242 with sparsity), 24 GB.
    "l4": GPU("L4", 30.3, 121.0, 121.0, 24, "NVIDIA L4 datasheet"),
    # NVIDIA L40S datasheet (2023): 91.6 FP32, 362 BF16/FP16 (733 with sparsity), 48 GB.
    "l40s": GPU("L40S", 91.6, 362.0, 362.0, 48, "NVIDIA L40S datasheet"),
    # NVIDIA A10 datasheet (2021): 31.2 FP32, 125 BF16/FP16, 24 GB.
    "a10": GPU("A10", 31.2, 125.0, 125.0, 24, "NVIDIA A10 datasheet"),
    # NVIDIA T4 datasheet (2019, Turing: no bf16): 8.1 FP32, 65 FP16 mixed precision, 16 GB.
    "t4": GPU("T4", 8.1, None, 65.0, 16, "NVIDIA T4 datasheet"),
    # NVIDIA V100 datasheet (2020, Volta: no bf16): SXM2 15.7 FP32, 125 FP16 tensor; 16 or 32 GB.
    "v100": GPU("V100 SXM2", 15.7, None, 125.0, 32, "NVIDIA V100 datasheet"),
    # NVIDIA Ada Lovelace architecture whitepaper (2023), RTX 4090: 82.6 FP32, 165.2 FP16/BF16 tensor with FP32 accumulate.
    "rtx4090": GPU("GeForce RTX 4090", 82.6, 165.2, 165.2, 24, "NVIDIA Ada architecture whitepaper"),
    # NVIDIA Ampere GA102 whitepaper (2020), RTX 3090: 35.6 FP32, 71 FP16/BF16 tensor with FP32 accumulate.
    "rtx3090": GPU("GeForce RTX 3090", 35.6, 71.0, 71.0, 24, "NVIDIA Ampere GA102 whitepaper"),
}


def nominal_gpu(name: str) -> GPU | None:
    """The table entry for a GPU name as a user writes it ("H100", "nvidia a100", "RTX 4090"), or None."""
    key = name.lower().replace("nvidia", "").replace("geforce", "").replace(" ", "").replace("_", "-").strip("-")
    key = {"h100-sxm": "h100", "h100sxm": "h100", "h100pcie": "h100-pcie", "a100-80gb": "a100", "a10040gb": "a100-40gb",
           "rtx-4090": "rtx4090", "rtx-3090": "rtx3090", "4090": "rtx4090", "3090": "rtx3090"}.get(key, key)
    return NOMINAL.get(key)


def device_peak(device: torch.device, dtype: torch.dtype, cache: Path | None = None) -> tuple[float, str]:
    """The matmul peak FLOP/s of ``device`` at ``dtype``, and how it was obtained.

    With a ``cache`` directory, a peak this machine measured before (same device, dtype, thread
    count and torch version) is read from its ``peaks.json``; otherwise it is measured now
    (``matmul_peak``) and stored there. Example: ``device_peak(torch.device("cpu"), torch.float32, cache_dir())``.
    """
    path, key = (cache / "peaks.json" if cache is not None else None), peak_key(device, dtype)
    known = _read_peaks(path)
    if key in known:
        return float(known[key]["flops_per_second"]), f"measured by a matmul probe on {known[key]['measured']}, cached"
    peak = matmul_peak(device, dtype)
    if path is not None:
        try:  # a cache that cannot be written (read-only home, full disk) only means measuring again next time
            known = _read_peaks(path)  # again: another run may have added its own meanwhile
            known[key] = {"flops_per_second": peak, "measured": time.strftime("%Y-%m-%d")}
            atomic_write(path, json.dumps(known, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass
    return peak, "measured by a matmul probe"


def peak_key(device: torch.device, dtype: torch.dtype) -> str:
    """``"cpu:AMD EPYC 7B13|torch.float32|threads=2|torch=2.13.0|probe=2"``: what a measured peak depends on
    (probe 2: the faster of the BLAS and oneDNN matmuls on a CPU; peaks cached by probe 1 are measured again)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name() if device.type == "cpu" else ""
    return f"{device.type}:{name}|{dtype}|threads={torch.get_num_threads()}|torch={torch.__version__}|probe=2"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        if names:
            return names[0]
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read_peaks(path: Path | None) -> dict:
    """The cached peaks (``{key: {"flops_per_second", "measured"}}``); {} when absent or unreadable."""
    if path is None or not path.is_file():
        return {}
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged cache is measured again and rewritten
    return known if isinstance(known, dict) else {}


def matmul_peak(device: torch.device, dtype: torch.dtype, budget: float = 0.1, product_seconds: float = 0.01,
                onednn: bool = True) -> float:
    """Best measured FLOP/s of an n x n matmul at ``dtype`` on ``device`` (about ``budget`` seconds); on a
    CPU in fp32, the faster of the BLAS matmul (``a @ b``, what eager calls) and oneDNN's (``onednn=False``:
    the BLAS one alone).

    n doubles from 128 until one product takes ``product_seconds`` and the rate has stopped
    growing (it stops anyway at 10x that time, and at n = 2048 on a CPU, 8192 on a GPU): large
    enough that the multiply, not call overhead or a CPU thread waiting for a busy core, is timed,
    and no larger, so a slow dtype is not probed for seconds. That size is then timed in rounds and
    the best round counts.
    """
    largest = 2048 if device.type == "cpu" else 8192
    n, rate = 128, 0.0
    values = torch.Generator().manual_seed(0)  # its own stream: the run's random draws stay as they were
    while True:
        a = torch.randn(n, n, generator=values).to(device, dtype)
        b = torch.randn(n, n, generator=values).to(device, dtype)
        product = lambda a=a, b=b: a @ b  # bound now: each size times its own pair
        _time(product, device, 1)  # the first product at a size sets up kernels and caches
        seconds = _time(product, device, 1)
        previous, rate = rate, 2 * n**3 / seconds  # n^3 multiply-adds
        if (seconds >= product_seconds and rate < 1.25 * previous) or seconds >= 10 * product_seconds or n >= largest:
            break
        n *= 2
    products = [lambda: a @ b]
    if onednn and device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available():
        # oneDNN's fp32 matmul, which a compiled step uses (training/onednn.py): where it beats the BLAS that
        # eager calls (twice as fast on an AMD EPYC), the machine's peak is its rate, so MFU stays under 100%.
        b_t = b.t().contiguous()
        products.append(lambda: torch.ops.mkldnn._linear_pointwise(a, b_t, None, "none", [], ""))
        _time(products[1], device, 1)
    best = seconds
    repeats = max(1, int(0.01 / max(seconds, 1e-6)))  # >= 10 ms a round, so timer resolution does not matter
    rounds = max(2, min(50, int(budget / max(seconds * repeats * len(products), 1e-6))))
    for _ in range(rounds):
        for product in products:  # alternating: a busy moment hits both
            best = min(best, _time(product, device, repeats))
    return 2 * n**3 / best


def _time(fn, device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn``, synchronizing an asynchronous device before and after."""
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - started) / repeats


def synchronize(device: torch.device) -> None:
    """Wait for an asynchronous device (CUDA, MPS) to finish queued work; a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` (the machine's RAM for the CPU), or None where unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu" and hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def device_label(device: torch.device) -> str:
    """"cpu (2 threads)" or "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    return str(device)
