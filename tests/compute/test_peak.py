"""Device peaks: the nominal table and its names, and the local matmul probe."""

from __future__ import annotations

import pytest
import torch

from trainwright.compute.peak import NOMINAL, matmul_peak, nominal_gpu
from trainwright.errors import TrainwrightError


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("H100", "h100"),
        ("nvidia h100 sxm", "h100"),
        ("H100 PCIe", "h100-pcie"),
        ("A100", "a100"),
        ("NVIDIA L4", "l4"),
        ("RTX 4090", "rtx4090"),
        ("geforce rtx 3090", "rtx3090"),
        ("t4", "t4"),
    ],
)
def test_gpu_names_as_users_write_them(name, key):
    assert nominal_gpu(name) is NOMINAL[key]


def test_unknown_gpu_and_missing_precision():
    assert nominal_gpu("tpu-v5") is None
    assert NOMINAL["h100"].peak("bf16") == pytest.approx(989.4e12)
    assert NOMINAL["a100"].peak("fp32") == pytest.approx(19.5e12)
    with pytest.raises(TrainwrightError, match="T4 has no bf16"):
        NOMINAL["t4"].peak("bf16")


def test_every_entry_is_plausible():
    for gpu in NOMINAL.values():
        assert gpu.fp16 >= gpu.fp32 > 1 and gpu.memory_gb >= 16 and gpu.source


def test_the_probe_measures_a_positive_rate_and_leaves_the_random_stream_alone():
    rng = torch.get_rng_state()
    peak = matmul_peak(torch.device("cpu"), torch.float32, budget=0.02)
    assert peak > 1e7  # FLOP/s; any CPU of this century does far more
    assert torch.equal(rng, torch.get_rng_state())
