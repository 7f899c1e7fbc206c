"""train.compile on a CPU: the compiled step's matmuls run through oneDNN, with eager's results to rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.profiler import profile

from trainwright.training.compiled import compile_forward

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5))


def test_compiled_step_runs_its_matmuls_through_onednn_with_eager_results():
    x, y = torch.randn(40, 12), torch.randint(0, 5, (40,))
    eager, compiled = _model(), compile_forward(_model())
    F.cross_entropy(compiled(x), y).backward()  # compiles forward and backward
    compiled.zero_grad()

    with profile() as prof:
        compiled_loss = F.cross_entropy(compiled(x), y)
        compiled_loss.backward()
    ops = {event.name for event in prof.events()}
    assert "trainwright::onednn_mm" in ops
    assert not ops & {"aten::mm", "aten::addmm"}  # forward (addmm) and backward (mm) were all rewritten

    eager_loss = F.cross_entropy(eager(x), y)
    eager_loss.backward()
    torch.testing.assert_close(compiled_loss, eager_loss)
    for (name, ours), theirs in zip(compiled.named_parameters(), eager.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad, msg=name)
