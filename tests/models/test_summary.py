from torch import nn

from trainwright.models.mlp import MLPConfig, build
from trainwright.models.summary import layer_summary


def test_layer_table_counts_parameters_shapes_and_flops():
    model = build(MLPConfig(hidden=[16, 8], dropout=0.1, batch_norm=True), (5,), 3)
    summary = layer_summary(model, (5,))
    layers = {layer["name"]: layer for layer in summary["layers"]}
    assert layers["0"] == {"name": "0", "type": "Linear", "output_shape": [16], "parameters": 5 * 16, "flops": 2 * 5 * 16}
    assert layers["1"]["type"] == "BatchNorm1d" and layers["1"]["parameters"] == 2 * 16
    assert layers["8"]["output_shape"] == [3] and layers["8"]["parameters"] == 8 * 3 + 3
    assert summary["flops_per_row"] == 2 * (5 * 16 + 16 * 8 + 8 * 3)
    assert sum(layer["parameters"] for layer in summary["layers"]) == sum(p.numel() for p in model.parameters())
    assert model.training  # the summary put the model back in the mode it found it in


def test_a_users_own_module_is_summarized_too():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 6), nn.GELU())
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            return self.head(self.body(x))

    summary = layer_summary(Net(), (4,))
    assert [layer["name"] for layer in summary["layers"]] == ["body.0", "body.1", "head"]
    assert summary["flops_per_row"] == 2 * (4 * 6 + 6 * 2)
