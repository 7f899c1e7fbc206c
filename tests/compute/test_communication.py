"""The data-parallel estimate: the gradients' ring all-reduce, and whether it bounds a step."""

from __future__ import annotations

import pytest
from rich.console import Console

import trainwright as tw
from trainwright.compute.communication import LINKS, Link, all_reduce, link_for


def test_a_ring_all_reduce_sends_2_n_minus_1_over_n_of_the_gradients_per_process():
    link = Link("test", bandwidth=1e9, latency=1e-3, source="test")
    two, eight = all_reduce(100_000_000, 2, link), all_reduce(100_000_000, 8, link)
    assert two.bytes_per_process == 100_000_000 and eight.bytes_per_process == 175_000_000
    assert two.buckets == 4  # DDP's 25 MiB buckets, a latency each
    assert two.seconds == pytest.approx(0.1 + 4e-3)


def test_the_link_follows_the_devices_and_machines():
    assert link_for("cpu") is LINKS["loopback"]
    assert link_for("NVIDIA H100 80GB HBM3") is LINKS["nvlink4"] and link_for("A100 80GB") is LINKS["nvlink3"]
    assert link_for("L4") is LINKS["pcie"] and link_for("H100 SXM", machines=2) is LINKS["network"]


def test_estimate_on_two_processes_adds_the_all_reduce_and_says_what_bounds_a_step():
    iris = {"data": {"source": "iris"}, "train": {"epochs": 3, "device": "cpu"}}
    est = tw.estimate(iris, processes=2, console=Console(quiet=True))
    parallel = est.parallel
    assert parallel is not None and parallel.local_batch == 32 and parallel.reduce.processes == 2
    assert parallel.reduce.gradient_bytes == est.memory.gradients  # fp32 gradients of every trainable weight
    lines = "\n".join(est.lines())
    assert "all-reduce per optimizer step" in lines
    # A tiny model: the all-reduce's latency alone outlasts its compute.
    assert parallel.communication_bound and "communication bounds each step" in lines
    big = tw.estimate(iris, processes=2, device="H100", console=Console(quiet=True))
    assert big.parallel.reduce.link is LINKS["nvlink4"]
