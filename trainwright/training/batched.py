"""Many small fits as one: K members of one architecture, each with its own rows, trained together.

Ten folds (or trials) of a small network are ten runs of a loop bound by per-operator overhead,
not by arithmetic. Here the members' parameters are stacked (``torch.func.stack_module_state``)
and one forward and backward serve all of them: (K, B, features) in, (K, B, outputs) out, as
grouped matmuls for an MLP and through ``vmap`` otherwise (``training/batched_forward.py``). Each
member keeps what makes it its own fit:

- its rows: member k's batch at step s is rows s*B..(s+1)*B of its own shuffle (a generator per
  member, seeded as a single run's is); shorter training sets end their epoch early, and a partial
  last batch is padded and masked out of the loss;
- its optimizer state and schedule: members that take the same steps with the same settings (the
  optimizer, schedule, epochs, steps per epoch and clipping) form a group, and a group's rows of
  the stacks are one torch optimizer's parameters, so one call (the fused kernel a single run
  uses) updates the whole group, each member's moments in its own rows and their step count the
  same because they take the same steps. A group with fewer steps per epoch sits out the steps it
  has no rows for. ``plateau`` follows each member's own loss, so there each member is a group;
- its early stopping and callbacks (``EarlyStopping``, ``HistoryCSV``, pruning), which see the
  member as a ``TrainingState``: its ``nn.Module`` holds parameters that are views of its rows of
  the stacks, so they read and write its current weights. A member that stops leaves the stacks at
  the end of the epoch (its module keeps a copy of its own), with its rows of the optimizer state,
  so the members still training compute and update only themselves.

So a member's fit equals the same fit run alone, up to floating-point summation order, when the
model has no dropout (with dropout each member draws its own masks from one stream, with
``torch.rand`` rather than torch's slower ``bernoulli_``, so it matches a single run in
distribution, not number by number). Not batched (``batchable`` says why, and the
caller fits one after another): batch norm (padded rows would enter its batch statistics),
augmentation, mixed precision, gradient accumulation, torch.compile, streamed data, transfer
learning's unfreezing, and models whose forward ``vmap`` cannot run (packed recurrent sequences).
The per-step callback hooks (per-layer gradient norms, the progress bar) do not run per member.

Example:
    >>> batched = BatchedFit.build(cfg.train, modules, parts, task="multiclass", loss="cross_entropy",
    ...                            device=torch.device("cpu"), callbacks=lambda k: [EarlyStopping(cfg.train.early_stopping)])
    >>> batched.fit()
    >>> batched.members[3].history[-1]["val_loss"]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import stack_module_state
from torch.nn import functional as F

from trainwright.config import TrainConfig
from trainwright.training.batched_forward import StackedForward
from trainwright.training.callbacks import Callback, CallbackList
from trainwright.training.optim import Schedule, build_optimizer

# (K, B, outputs) outputs and (K, B, ...) targets -> (K, B) per-row losses, each the row's share of
# what the single-run loss (``training/losses.py``) averages.
ROW_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "bce": lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(-1), y.to(out.dtype), reduction="none"),
    "cross_entropy": lambda out, y: F.cross_entropy(out.mT, y, reduction="none"),  # classes in dim 1: (K, C, B)
    "mse": lambda out, y: F.mse_loss(out, y, reduction="none").flatten(2).mean(2),
    "mae": lambda out, y: F.l1_loss(out, y, reduction="none").flatten(2).mean(2),
    "huber": lambda out, y: F.huber_loss(out, y, reduction="none").flatten(2).mean(2),
}


@dataclass
class Member:
    """One fit inside a batched fit: the ``TrainingState`` its callbacks see."""

    model: nn.Module  # while it trains, its parameters are views of its rows of the batched fit's stacks
    optimizer: torch.optim.Optimizer  # its group's (see the module docstring)
    schedule: Schedule
    callbacks: CallbackList
    cfg: TrainConfig
    x_train: torch.Tensor  # its rows: a view of the batched fit's padded stack
    y_train: torch.Tensor
    generator: torch.Generator  # shuffles this member's rows
    params: list[nn.Parameter] = field(default_factory=list)  # its trainable parameters, in the stacks' order
    epoch: int = 0
    saved_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    stop_reason: str | None = None
    diverged: dict | None = None  # {"epoch", "loss", "lr"} when its training loss became NaN or infinite

    @property
    def max_epochs(self) -> int:
        return self.cfg.epochs

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.optimizer}

    @property
    def training(self) -> bool:
        return self.stop_reason is None and self.epoch < self.cfg.epochs

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


@dataclass
class Group:
    """Members that step together, in consecutive rows of the stacks: their optimizer's parameters are those rows."""

    members: list[int]
    cfg: TrainConfig  # the first member's: the optimizer, schedule, epochs and clipping are the same for all
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    steps: int  # optimizer steps per epoch
    start: int  # its first row in the stacks
    params: list[nn.Parameter]  # views of rows start:start + len(members) of the trained stacks

    @property
    def rows(self) -> slice:
        return slice(self.start, self.start + len(self.members))


def batchable(cfg: TrainConfig, module: nn.Module, transform, backbone: bool) -> str | None:
    """Why members of this configuration cannot be batched, or None when they can."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        return "the model has batch norm (a padded partial batch would enter its batch statistics)"
    reasons = {
        "augmentation runs per batch": transform is not None,
        f"train.precision is {cfg.precision}": cfg.precision != "fp32",
        "train.class_weight is balanced (each fold weighs its own classes)": cfg.class_weight != "none",
        "train.accumulate > 1": cfg.accumulate > 1,
        "train.compile is on": cfg.compile is True,
        "train.data_placement is stream": cfg.data_placement == "stream",
        "model.backbone unfreezes by callback": backbone,
    }
    return next((reason for reason, applies in reasons.items() if applies), None)


@dataclass
class BatchedFit:
    members: list[Member]
    forward: StackedForward
    order: list[int]  # the member in each row of the stacks: the members still training, each group's together
    params: dict[str, torch.Tensor]  # name -> (A, ...) leaf tensors, one row per member in ``order``
    buffers: dict[str, torch.Tensor]
    groups: list[Group]
    row_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    task: str
    x_train: torch.Tensor  # (K, N, ...) every member's training rows, zero-padded, in member order
    y_train: torch.Tensor
    x_val: torch.Tensor  # (A, V, ...) padded, rows as ``order``
    y_val: torch.Tensor
    val_mask: torch.Tensor  # (A, V) bool
    batch_sizes: list[int]  # per member
    seconds: float = 0.0

    @classmethod
    def build(cls, cfg: TrainConfig | list[TrainConfig], modules: list[nn.Module], parts: list[tuple[torch.Tensor, ...]], *,
              task: str, loss: str, device: torch.device, callbacks: Callable[[int], list[Callback]]) -> BatchedFit:
        """``modules`` (built and seeded as single runs would be), ``parts`` per member: (x_train, y_train, x_val,
        y_val) on the CPU; ``cfg`` one TrainConfig or one per member (optimizer, schedule, batch size, epochs, seed
        and clipping may differ; the loss and the l1/l2 penalties are the first member's); ``callbacks(k)``: member
        k's callbacks."""
        cfgs = cfg if isinstance(cfg, list) else [cfg] * len(modules)
        modules = [m.to(device) for m in modules]
        sizes = [len(p[0]) if c.batch_size == "full" else min(int(c.batch_size), len(p[0])) for c, p in zip(cfgs, parts)]
        steps = [math.ceil(len(p[0]) / size) for p, size in zip(parts, sizes)]
        # Members that take the same steps with the same settings share an optimizer; plateau follows each one's loss.
        grouped: dict[tuple, list[int]] = {}
        for k, (c, s) in enumerate(zip(cfgs, steps)):
            alone = k if c.schedule.name == "plateau" else None
            grouped.setdefault((c.optimizer, c.schedule, c.epochs, s, c.clip_grad_value, c.clip_grad_norm, alone), []).append(k)
        order = [k for ks in grouped.values() for k in ks]
        params, buffers = stack_module_state([modules[k] for k in order])  # (K, ...) copies
        params = {name: p.detach().requires_grad_(p.requires_grad) for name, p in params.items()}
        groups, start = [], 0
        for ks in grouped.values():
            c, views = cfgs[ks[0]], _rows(params, slice(start, start + len(ks)))
            optimizer = build_optimizer(c.optimizer, views)
            groups.append(Group(ks, c, optimizer, Schedule(c.schedule, optimizer, c.epochs, steps[ks[0]]), steps[ks[0]],
                                start, views))
            start += len(ks)
        group_of = {k: g for g in groups for k in g.members}
        x_train, _ = _pad([p[0] for p in parts])  # one stack, so an epoch's batches are one gather
        y_train, _ = _pad([p[1] for p in parts])
        x_train, y_train = x_train.to(device), y_train.to(device)
        members = [Member(module, group_of[k].optimizer, group_of[k].schedule, CallbackList(callbacks(k)), c,
                          x_train[k, :len(p[0])], y_train[k, :len(p[0])], torch.Generator(device=device).manual_seed(c.seed))
                   for k, (module, c, p) in enumerate(zip(modules, cfgs, parts))]
        for row, k in enumerate(order):
            members[k].params = _alias(members[k].model, params, buffers, row)
        x_val, val_mask = _pad([parts[k][2] for k in order])
        y_val, _ = _pad([parts[k][3] for k in order])
        return cls(members, StackedForward(modules[0]), order, params, buffers, groups, ROW_LOSSES[loss], task,
                   x_train, y_train, x_val.to(device), y_val.to(device), val_mask.to(device), sizes)

    # ── the loop ───────────────────────────────────────────────────────────────────────────
    def fit(self) -> BatchedFit:
        """Train every member until each has run its epochs or been stopped by its callbacks."""
        members = self.members
        for m in members:
            m.callbacks.on_train_begin(m)
        started_all = time.perf_counter()
        try:
            for epoch in range(1, max(m.cfg.epochs for m in members) + 1):
                self._drop_stopped()  # members that stopped leave the stacks
                if not self.order:
                    break
                started = time.perf_counter()
                self.forward.train()
                x_all, y_all, weight_all, rows = self._epoch_batches()  # (S, A, B, ...), (S, A, B), (A, S)
                trained = [p for p in self.params.values() if p.requires_grad]
                losses = []
                for step in range(max(g.steps for g in self.groups)):
                    out = self.forward(self.params, self.buffers, x_all[step])  # (A, B, outputs)
                    member_loss = (self.row_loss(out, y_all[step]) * weight_all[step]).sum(1)  # (A,): batch means
                    objective = member_loss.sum() + self._penalty(members[0].cfg)  # members share no parameter: sum separates
                    # The backward of a matmul against a transposed weight gives its gradient in transposed memory
                    # order; the fused optimizer kernels read a gradient in its parameter's order, so lay it out so.
                    grads = [g.contiguous() for g in torch.autograd.grad(objective, trained)]
                    for group in self.groups:
                        if step < group.steps:  # a group with fewer steps this epoch sits the last ones out
                            self._step(group, grads)
                    losses.append(member_loss.detach())
                self._end_epoch(epoch, (torch.stack(losses, 1) * rows).sum(1) / rows.sum(1), started)
        finally:
            for k in self.order:
                _own(members[k].model)  # every member's module its own weights again
            for m in members:
                m.callbacks.on_train_end(m)
                m.callbacks.close()
            self.seconds = time.perf_counter() - started_all
        return self

    def _step(self, group: Group, grads: list[torch.Tensor]) -> None:
        """The group's rows of the gradients on its parameters, clipped as its config says, then one optimizer step."""
        for p, g in zip(group.params, grads):
            p.grad = g[group.rows]
        c = group.cfg
        if c.clip_grad_value is not None:  # elementwise: clipping the rows together is clipping each member's
            nn.utils.clip_grad_value_(group.params, c.clip_grad_value)
        if c.clip_grad_norm is not None:  # each member by its own norm, as its fit alone would
            for row, k in enumerate(group.members, start=group.start):
                member = self.members[k]
                for p, g in zip(member.params, grads):
                    p.grad = g[row]  # a view: clipping scales the group's gradient in place
                nn.utils.clip_grad_norm_(member.params, c.clip_grad_norm)
                member.model.zero_grad(set_to_none=True)
        group.optimizer.step()
        group.optimizer.zero_grad(set_to_none=True)
        group.schedule.step_batch()

    def _penalty(self, cfg: TrainConfig) -> torch.Tensor | float:
        """``train.l1`` / ``train.l2`` on the weight matrices (stacked: ndim > 2), as ``optim.weight_penalty``."""
        if not (cfg.l1 or cfg.l2):
            return 0.0
        weights = [p for p in self.params.values() if p.ndim > 2 and p.requires_grad]
        penalty = 0.0
        if cfg.l1:
            penalty = penalty + cfg.l1 * sum(w.abs().sum() for w in weights)
        if cfg.l2:
            penalty = penalty + cfg.l2 * sum(w.pow(2).sum() for w in weights)
        return penalty

    def _epoch_batches(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training members' shuffled batches for one epoch, padded to one shape (steps, A, B): member k's step s
        holds rows s*B_k..(s+1)*B_k of its shuffle, as ``TensorBatches`` would give it; each row's weight in its
        batch's mean (0 on padding); and (A, steps) the rows in each batch."""
        members = [self.members[k] for k in self.order]
        sizes = [self.batch_sizes[k] for k in self.order]
        most = max(math.ceil(len(m.x_train) / size) for m, size in zip(members, sizes))
        widest, device = max(sizes), self.x_train.device
        places, masks = [], []
        for m, size in zip(members, sizes):
            n = len(m.x_train)
            perm = torch.randperm(n, generator=m.generator, device=m.generator.device).to(device) if size < n else None
            place = torch.arange(most, device=device)[:, None] * size + torch.arange(widest, device=device)[None, :]
            masks.append((torch.arange(widest, device=device) < size)[None, :] & (place < n))  # (steps, B)
            place = place.clamp(max=n - 1)
            places.append(perm[place] if perm is not None else place)  # (steps, B): positions in its own rows
        longest = self.x_train.shape[1]
        index = (torch.stack(places, 1) + torch.tensor(self.order, device=device)[None, :, None] * longest).flatten()
        x, y = (t.flatten(0, 1).index_select(0, index).view(most, len(sizes), widest, *t.shape[2:])  # (steps, A, B, ...)
                for t in (self.x_train, self.y_train))
        mask = torch.stack(masks, 1).to(next(iter(self.params.values())).dtype)  # (steps, A, B)
        rows = mask.sum(2)  # (steps, A)
        return x, y, mask / rows.clamp_min(1)[:, :, None], rows.T

    @torch.no_grad()
    def _validate(self) -> dict[str, torch.Tensor]:
        """Each training member's validation loss and metric on its own rows, as ``setup.make_validate`` computes
        them: (A,) each."""
        self.forward.train(False)
        out = self.forward(self.params, self.buffers, self.x_val).contiguous()  # (A, V, outputs)
        mask = self.val_mask.to(out.dtype)  # (A, V)
        counts = mask.sum(1).clamp_min(1)
        logs = {"val_loss": (self.row_loss(out, self.y_val) * mask).sum(1) / counts}
        if self.task == "regression":
            y, m = self.y_val.flatten(2).to(out.dtype), mask[:, :, None]  # (A, V, outputs)
            mean = (y * m).sum((1, 2)) / (counts * y.shape[2])
            residual = ((out.flatten(2) - y).pow(2) * m).sum((1, 2))
            logs["val_r2"] = 1 - residual / ((y - mean[:, None, None]).pow(2) * m).sum((1, 2)).clamp_min(1e-12)
        elif self.task == "binary":
            logs["val_accuracy"] = (((out.squeeze(-1) > 0).long() == self.y_val).to(out.dtype) * mask).sum(1) / counts
        else:
            logs["val_accuracy"] = ((out.argmax(-1) == self.y_val).to(out.dtype) * mask).sum(1) / counts
        return logs

    def _end_epoch(self, epoch: int, train_loss: torch.Tensor, started: float) -> None:
        """Read every training member's numbers in one transfer, then let each one's callbacks decide."""
        logs = self._validate()
        names = ["train_loss", *logs]
        values = torch.stack([train_loss, *logs.values()]).tolist()  # the one sync per epoch
        seconds = time.perf_counter() - started
        val_loss = {}
        for row, k in enumerate(self.order):
            m = self.members[k]
            numbers = {name: values[i][row] for i, name in enumerate(names)}
            val_loss[k] = numbers["val_loss"]
            if not math.isfinite(numbers["train_loss"]):
                m.diverged = {"epoch": epoch, "loss": numbers["train_loss"], "lr": m.optimizer.param_groups[0]["lr"]}
                m.request_stop(f"the training loss became {numbers['train_loss']} in epoch {epoch}")
                continue
            entry = {"epoch": epoch, **numbers, "lr": m.optimizer.param_groups[0]["lr"], "seconds": seconds}
            m.epoch = epoch  # "seconds": the batched epoch's time, shared by its members
            m.history.append(entry)
            m.callbacks.on_epoch_end(m, entry)
        for group in self.groups:  # after the lr is logged; plateau: a group of one member, on its own loss
            group.schedule.step_epoch(val_loss[group.members[0]])

    def _drop_stopped(self) -> None:
        """Members no longer training leave the stacks, with their rows of the optimizer state: each keeps its module,
        now with its own copy of its weights, and the others move up."""
        keep = [row for row, k in enumerate(self.order) if self.members[k].training]
        if len(keep) == len(self.order):
            return
        for k in self.order:
            if not self.members[k].training:
                _own(self.members[k].model)
        index = torch.tensor(keep, dtype=torch.long, device=self.x_val.device)
        self.params = {name: p.detach()[index].requires_grad_(p.requires_grad) for name, p in self.params.items()}
        self.buffers = {name: b[index] for name, b in self.buffers.items()}
        self.x_val, self.y_val, self.val_mask = self.x_val[index], self.y_val[index], self.val_mask[index]
        self.order = [self.order[row] for row in keep]
        groups, start = [], 0
        for group in self.groups:
            staying = [j for j, k in enumerate(group.members) if self.members[k].training]
            if not staying:
                continue
            views = _rows(self.params, slice(start, start + len(staying)))
            _move_state(group.optimizer, group.params, views, torch.tensor(staying, device=index.device))
            group.members, group.start, group.params = [group.members[j] for j in staying], start, views
            groups.append(group)
            start += len(staying)
        self.groups = groups
        for row, k in enumerate(self.order):
            self.members[k].params = _alias(self.members[k].model, self.params, self.buffers, row)


def _rows(params: dict[str, torch.Tensor], rows: slice) -> list[nn.Parameter]:
    """Parameters that are views of ``rows`` of the trainable stacks (an optimizer's updates land in the stacks)."""
    return [nn.Parameter(p.detach()[rows]) for p in params.values() if p.requires_grad]


def _move_state(optimizer: torch.optim.Optimizer, old: list[nn.Parameter], new: list[nn.Parameter],
                staying: torch.Tensor) -> None:
    """Point ``optimizer`` at ``new`` parameters, each keeping the ``staying`` rows of its ``old`` one's state
    (moments and other per-element state; a scalar such as Adam's step count is the group's)."""
    for before, after in zip(old, new):
        state = optimizer.state.pop(before, None)
        if state is not None:
            optimizer.state[after] = {key: value[staying] if torch.is_tensor(value) and value.shape == before.shape
                                      else value for key, value in state.items()}
    optimizer.param_groups[0]["params"] = new


def _alias(module: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
           row: int) -> list[nn.Parameter]:
    """Make ``module``'s parameters and buffers views of ``row`` of the stacked tensors, so its callbacks read
    and write its weights there (``load_state_dict`` too); returns its trainable parameters."""
    for name, stacked in params.items():
        owner, _, leaf = name.rpartition(".")
        target = module.get_submodule(owner) if owner else module
        target._parameters[leaf] = nn.Parameter(stacked.detach()[row], requires_grad=stacked.requires_grad)
    for name, stacked in buffers.items():
        owner, _, leaf = name.rpartition(".")
        target = module.get_submodule(owner) if owner else module
        target._buffers[leaf] = stacked[row]
    return [p for p in module.parameters() if p.requires_grad]


def _own(module: nn.Module) -> None:
    """Give ``module`` its own copy of each parameter and buffer (they were views of a batched fit's stacks)."""
    for sub in module.modules():
        for leaf, p in sub._parameters.items():
            if p is not None:
                sub._parameters[leaf] = nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)
        for leaf, b in sub._buffers.items():
            if b is not None:
                sub._buffers[leaf] = b.clone()


def _pad(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors of different lengths: (K, longest, ...) zero-padded, and (K, longest) True on real rows."""
    longest = max(len(t) for t in tensors)
    padded = torch.zeros(len(tensors), longest, *tensors[0].shape[1:], dtype=tensors[0].dtype)
    mask = torch.zeros(len(tensors), longest, dtype=torch.bool)
    for k, t in enumerate(tensors):
        padded[k, : len(t)] = t
        mask[k, : len(t)] = True
    return padded, mask
