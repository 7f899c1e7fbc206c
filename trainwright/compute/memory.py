"""Peak training memory on the device, item by item, so a user knows whether a run fits.

- parameters: every parameter, at its own dtype (fp32; autocast does not change the weights)
- gradients: one per trainable parameter, same size
- optimizer state: per trainable parameter, as many tensors as the optimizer keeps (``STATE_COPIES``)
- activations: what autograd saves for backward during one batch, measured on the real model
- data: the training split twice (the tensors and each epoch's shuffled copy) plus the validation split

Example:
    >>> memory = training_memory(model, OptimizerConfig(name="adam"), activations=2**20, data=2**22)
    >>> memory.optimizer == 2 * memory.parameters     # Adam keeps two moments per weight
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from trainwright.config import OptimizerConfig


def state_copies(cfg: OptimizerConfig) -> int:
    """Tensors of a parameter's size that the optimizer keeps per parameter (torch.optim's own)."""
    if cfg.name in ("adam", "adamw"):
        return 2  # exp_avg and exp_avg_sq
    if cfg.name == "sgd":
        return 1 if cfg.momentum else 0  # momentum_buffer
    if cfg.name == "rmsprop":
        return 1 + (1 if cfg.momentum else 0)  # square_avg (+ momentum_buffer)
    return 1  # adagrad: sum


@dataclass(frozen=True)
class Memory:
    """Bytes of each item, and their sum as the peak (activations and gradients coexist in backward)."""

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations + self.data

    def items(self) -> list[tuple[str, int]]:
        return [("parameters", self.parameters), ("gradients", self.gradients), ("optimizer state", self.optimizer),
                ("activations", self.activations), ("data", self.data)]


def training_memory(model: nn.Module, optimizer: OptimizerConfig, activations: int, data: int) -> Memory:
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return Memory(params, trainable, state_copies(optimizer) * trainable, activations, data)


def human_bytes(n: float) -> str:
    """``1536 -> "1.5 KB"`` (powers of 1024, as memory is sold and reported)."""
    units = ("B", "KB", "MB", "GB", "TB")
    power = 0
    while n >= 1024 and power < len(units) - 1:
        n, power = n / 1024, power + 1
    return f"{n:.0f} B" if power == 0 else f"{n:.1f} {units[power]}"
