import torch

from trainwright.data.batches import TensorBatches


def test_every_row_once_per_epoch_in_a_seeded_order():
    x = torch.arange(10).float().unsqueeze(1)
    batches = TensorBatches(x, torch.arange(10), batch_size=4)
    assert len(batches) == 3
    first = torch.cat([yb for _, yb in batches.epoch(torch.Generator().manual_seed(0))])
    again = torch.cat([yb for _, yb in batches.epoch(torch.Generator().manual_seed(0))])
    assert sorted(first.tolist()) == list(range(10))
    assert torch.equal(first, again) and not torch.equal(first, torch.arange(10))
    for xb, yb in batches.epoch(torch.Generator().manual_seed(1)):
        assert torch.equal(xb.squeeze(1).long(), yb)  # rows stay paired with their labels


def test_full_batch_and_stochastic():
    x, y = torch.randn(5, 2), torch.zeros(5)
    assert [len(xb) for xb, _ in TensorBatches(x, y, "full").epoch(torch.Generator())] == [5]
    assert [len(xb) for xb, _ in TensorBatches(x, y, 1).epoch(torch.Generator())] == [1] * 5


def test_batch_norm_never_gets_a_single_sample():
    batches = TensorBatches(torch.randn(9, 2), torch.zeros(9), 4, drop_singleton=True)
    assert [len(xb) for xb, _ in batches.epoch(torch.Generator())] == [4, 4]
    assert len(batches) == 2


def test_a_tuple_of_targets_stays_aligned_with_its_rows():
    x = torch.arange(12).float().unsqueeze(1)
    labels, teacher = torch.arange(12), torch.arange(12).float() * 10
    for xb, (yb, tb) in TensorBatches(x, (labels, teacher), 5).epoch(torch.Generator().manual_seed(3)):
        assert torch.equal(xb.squeeze(1).long(), yb) and torch.equal(tb, yb.float() * 10)


def test_large_data_is_gathered_per_batch_with_the_same_order(monkeypatch):
    from trainwright.data import batches as module

    x, y = torch.arange(20).float().unsqueeze(1), torch.arange(20)
    whole = [yb for _, yb in TensorBatches(x, y, 6).epoch(torch.Generator().manual_seed(3))]
    monkeypatch.setattr(module, "WHOLE_GATHER_BYTES", 0)  # as if x were a multi-gigabyte memory-mapped cache
    per_batch = list(TensorBatches(x, y, 6).epoch(torch.Generator().manual_seed(3)))
    assert [yb.tolist() for _, yb in per_batch] == [yb.tolist() for yb in whole]
    assert all(torch.equal(xb.squeeze(1).long(), yb) for xb, yb in per_batch)


def test_transform_maps_x_only():
    x, y = torch.zeros(6, 2), torch.arange(6)
    out = list(TensorBatches(x, y, 4, transform=lambda xb: xb + 1).epoch(torch.Generator().manual_seed(0)))
    assert all(torch.equal(xb, torch.ones_like(xb)) for xb, _ in out)
    assert sorted(torch.cat([yb for _, yb in out]).tolist()) == list(range(6))


def test_streamed_batches_match_device_batches_in_order_and_content():
    from trainwright.data.batches import StreamedBatches

    x, labels = torch.arange(50).float().unsqueeze(1), torch.arange(50)
    targets = (labels, labels.float() * 10)
    resident = list(TensorBatches(x, targets, 8, drop_singleton=True).epoch(torch.Generator().manual_seed(5)))
    for workers in (0, 2):  # 2: worker processes gather the batches
        streamed = list(StreamedBatches(x, targets, 8, drop_singleton=True, device=torch.device("cpu"), workers=workers)
                        .epoch(torch.Generator().manual_seed(5)))
        assert len(streamed) == len(resident) == 7  # 50 rows: 6 of 8, then 2
        for (xa, (ya, ta)), (xb, (yb, tb)) in zip(resident, streamed):
            assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ta, tb)


def test_streamed_training_is_bit_identical_to_device_resident_training(tmp_path):
    from rich.console import Console

    import trainwright as tw

    quiet = Console(quiet=True)
    base = {"data": {"source": "iris"}, "model": {"hidden": [16]}, "evaluate": {"baseline": False},
            "train": {"epochs": 3, "batch_size": 16, "device": "cpu"}}
    runs = {}
    for placement in ("device", "stream"):
        cfg = {**base, "train": {**base["train"], "data_placement": placement, "loader_workers": 0}}
        runs[placement] = tw.train(cfg, runs_dir=tmp_path, name=placement, console=quiet)
    def losses(run):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in run.history]

    assert losses(runs["stream"]) == losses(runs["device"])
    assert runs["stream"].metrics["test"] == runs["device"].metrics["test"]
