"""What data parallelism adds to a step: the all-reduce of the gradients, and whether it bounds the step.

Each optimizer step, DistributedDataParallel averages the gradients over the N processes with a
ring all-reduce, in which every process sends and receives 2 (N - 1) / N times the gradients'
bytes (NVIDIA nccl-tests, doc/PERFORMANCE.md: "bus bandwidth" = algorithm bandwidth x 2 (n - 1) / n,
so time = bytes x 2 (n - 1) / n / bus bandwidth), plus a fixed latency per bucket (DDP reduces in
buckets of 25 MB). DDP overlaps the all-reduce with the backward pass, so a step takes between
max(compute, communication) and their sum; when communication is the larger, it bounds the step
and more processes do not train faster.

The links' bus bandwidths and latencies are nominal (what the all-reduce sustains, not the wire's
peak), except the CPU's: gloo over loopback TCP was measured on our 2-core machine
(``benchmarks/ddp_throughput.py``, one thread per process).

Example:
    >>> cost = all_reduce(gradient_bytes=6_340_648, processes=2, link=link_for("cpu", machines=1))
    >>> cost.seconds, cost.bytes_per_process
"""

from __future__ import annotations

from dataclasses import dataclass

BUCKET_BYTES = 25 * 1024**2  # DistributedDataParallel's default bucket_cap_mb


@dataclass(frozen=True)
class Link:
    label: str
    bandwidth: float  # bus bandwidth an all-reduce sustains, bytes/s
    latency: float  # seconds per all-reduce (per bucket)
    source: str


LINKS: dict[str, Link] = {
    # Measured here: 2 gloo processes on loopback, one thread each, all-reducing 0.34 MB and 6.34 MB of
    # gradients took 3.8 ms and 10.6 ms (benchmarks/ddp_throughput.py, a busy 2-core machine): ~0.9 GB/s, ~3 ms;
    # on a quieter minute 2.2 ms and 6.8 ms (~1.3 GB/s, ~2 ms). The busier reading is kept: a bound, not a hope.
    "loopback": Link("gloo over loopback (CPU processes on one machine)", 0.9e9, 3e-3, "measured on a busy 2-core machine"),
    # nccl-tests all_reduce_perf bus bandwidth at large sizes: ~450 GB/s on 8 x H100 SXM (NVLink 4), ~230 GB/s
    # on 8 x A100 SXM (NVLink 3); PCIe 4.0 x16 without NVLink: ~20 GB/s. Latency: ~30 us for small messages.
    "nvlink4": Link("NVLink 4 (H100/H200 SXM, nccl)", 450e9, 30e-6, "nominal, nccl-tests bus bandwidth"),
    "nvlink3": Link("NVLink 3 (A100 SXM, nccl)", 230e9, 30e-6, "nominal, nccl-tests bus bandwidth"),
    "pcie": Link("PCIe 4.0 x16 (nccl)", 20e9, 30e-6, "nominal, nccl-tests bus bandwidth"),
    # Between machines the network bounds the ring: 100 Gb/s Ethernet or InfiniBand HDR-100 sustain ~10 GB/s.
    "network": Link("a 100 Gb/s network between machines", 10e9, 100e-6, "nominal, 100 Gb/s at ~80%"),
}


def link_for(device: str, machines: int = 1) -> Link:
    """The link a ring all-reduce runs over: the network between machines, else NVLink or PCIe between GPUs
    (by the GPU's name), else loopback between CPU processes."""
    if machines > 1:
        return LINKS["network"]
    name = device.lower()
    if any(gpu in name for gpu in ("h100", "h200", "gh200")) and "pcie" not in name:
        return LINKS["nvlink4"]
    if "a100" in name and "pcie" not in name:
        return LINKS["nvlink3"]
    if name.startswith("cpu") or name == "auto":
        return LINKS["loopback"]
    return LINKS["pcie"]


@dataclass(frozen=True)
class AllReduce:
    """One optimizer step's gradient all-reduce over ``processes`` processes."""

    gradient_bytes: int
    processes: int
    link: Link

    @property
    def bytes_per_process(self) -> float:
        """What each process sends (and receives) in a ring all-reduce."""
        return 2 * (self.processes - 1) / self.processes * self.gradient_bytes

    @property
    def buckets(self) -> int:
        return max(1, -(-self.gradient_bytes // BUCKET_BYTES))

    @property
    def seconds(self) -> float:
        return self.bytes_per_process / self.link.bandwidth + self.buckets * self.link.latency


def all_reduce(gradient_bytes: int, processes: int, link: Link) -> AllReduce:
    return AllReduce(gradient_bytes, processes, link)
