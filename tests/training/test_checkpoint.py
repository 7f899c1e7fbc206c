import pytest
import torch

from trainwright.errors import TrainwrightError
from trainwright.training.checkpoint import load_state, save_state


def test_round_trip_keeps_tensors_numbers_and_structure(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {"epoch": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": torch.get_rng_state(), "history": [{"loss": float("nan")}], "best": float("inf"), "pair": (1, 2)}
    save_state(tmp_path / "c.safetensors", state)
    loaded = load_state(tmp_path / "c.safetensors")
    assert loaded["epoch"] == 3 and loaded["pair"] == (1, 2) and loaded["best"] == float("inf")
    assert loaded["history"][0]["loss"] != loaded["history"][0]["loss"]  # NaN survives
    assert torch.equal(loaded["rng"], state["rng"])
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(loaded["optimizer"])  # integer state keys survive too
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_garbage_is_a_clear_error_and_overwrite_is_atomic(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainwrightError, match="not a trainwright checkpoint"):
        load_state(path)
    save_state(path, {"epoch": 1})
    save_state(path, {"epoch": 2})
    assert load_state(path)["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary files left behind
