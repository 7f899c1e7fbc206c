"""Device peaks: the nominal table and its names, the local matmul probe and its per-machine cache."""

from __future__ import annotations

import json

import pytest
import torch

from trainwright.cache import cache_dir
from trainwright.compute.peak import NOMINAL, device_peak, matmul_peak, nominal_gpu, peak_key
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


def test_a_measured_peak_is_kept_per_machine_and_read_back(tmp_path):
    cpu = torch.device("cpu")
    peak, source = device_peak(cpu, torch.float32, tmp_path)
    assert source == "measured by a matmul probe" and peak > 1e7
    stored = json.loads((tmp_path / "peaks.json").read_text())
    key = peak_key(cpu, torch.float32)
    assert stored[key]["flops_per_second"] == peak
    assert f"threads={torch.get_num_threads()}" in key and f"torch={torch.__version__}" in key and "float32" in key
    stored[key]["flops_per_second"] = 123.0  # what the next run reads, without probing again
    (tmp_path / "peaks.json").write_text(json.dumps(stored))
    cached = (123.0, f"measured by a matmul probe on {stored[key]['measured']}, cached")
    assert device_peak(cpu, torch.float32, tmp_path) == cached


def test_another_thread_count_measures_its_own_peak(tmp_path):
    cpu, threads = torch.device("cpu"), torch.get_num_threads()
    (tmp_path / "peaks.json").write_text(json.dumps({peak_key(cpu, torch.float32): {"flops_per_second": 1.0, "measured": "x"}}))
    torch.set_num_threads(threads + 1)
    try:
        peak, source = device_peak(cpu, torch.float32, tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert peak > 1.0 and "cached" not in source
    assert len(json.loads((tmp_path / "peaks.json").read_text())) == 2  # both thread counts kept


def test_no_cache_measures_every_time_and_a_damaged_one_is_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINWRIGHT_CACHE_DIR", "off")
    assert cache_dir() is None
    monkeypatch.setenv("TRAINWRIGHT_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert device_peak(torch.device("cpu"), torch.float32, None)[1] == "measured by a matmul probe"
    (tmp_path / "peaks.json").write_text("{not json")
    assert "cached" not in device_peak(torch.device("cpu"), torch.float32, tmp_path)[1]
    assert peak_key(torch.device("cpu"), torch.float32) in json.loads((tmp_path / "peaks.json").read_text())
