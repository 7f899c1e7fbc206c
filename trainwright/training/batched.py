"""Many small fits as one: K members of one architecture, each with its own rows, trained together.

Ten folds (or trials) of a small network are ten runs of a loop bound by per-operator overhead,
not by arithmetic. Here the members' parameters are stacked (``torch.func.stack_module_state``)
and one ``vmap``-ed forward and backward serve all of them: (K, B, features) in, (K, B, outputs)
out. Each member keeps what makes it its own fit:

- its rows: member k's batch at step s is rows s*B..(s+1)*B of its own shuffle (a generator per
  member, seeded as a single run's is); shorter training sets end their epoch early, and a partial
  last batch is padded and masked out of the loss;
- its optimizer state and schedule: each member's ``nn.Module`` holds parameters that are views into
  the stacked tensors, and a torch optimizer (the same fused kernels a single run uses) updates only
  the members that had rows in the step and are still training: the others' gradients are None,
  which torch's optimizers skip, so their weights, moments and step counts stay as they were. When
  every member has the same optimizer settings and an epoch-clocked schedule (none, step,
  exponential, cosine, warmup), one optimizer over all members' views does this in one call per
  step; otherwise (per-member learning rates, ``one_cycle``, ``plateau``) each member has its own;
- its early stopping and callbacks (``EarlyStopping``, ``HistoryCSV``, pruning), which see the
  member as a ``TrainingState``: a member that stops is no longer updated.

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

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from trainwright.config import TrainConfig
from trainwright.training.callbacks import Callback, CallbackList
from trainwright.training.optim import Schedule, build_optimizer

EPOCH_CLOCKED = ("none", "step", "exponential", "cosine")  # the same lr for every member at a given epoch

# (K, B, outputs) outputs and (K, B, ...) targets -> (K, B) per-row losses, each the row's share of
# what the single-run loss (``training/losses.py``) averages.
ROW_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "bce": lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(-1), y.to(out.dtype), reduction="none"),
    "cross_entropy": lambda out, y: F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(y.shape),
    "mse": lambda out, y: F.mse_loss(out, y, reduction="none").flatten(2).mean(2),
    "mae": lambda out, y: F.l1_loss(out, y, reduction="none").flatten(2).mean(2),
    "huber": lambda out, y: F.huber_loss(out, y, reduction="none").flatten(2).mean(2),
}


@dataclass
class Member:
    """One fit inside a batched fit: the ``TrainingState`` its callbacks see."""

    model: nn.Module  # its parameters are views into the batched fit's stacked tensors
    optimizer: torch.optim.Optimizer  # its own, or one shared by every member (see the module docstring)
    schedule: Schedule
    callbacks: CallbackList
    cfg: TrainConfig
    x_train: torch.Tensor
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


def batchable(cfg: TrainConfig, module: nn.Module, transform, backbone: bool) -> str | None:
    """Why members of this configuration cannot be batched, or None when they can."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        return "the model has batch norm (a padded partial batch would enter its batch statistics)"
    reasons = {
        "augmentation runs per batch": transform is not None,
        f"train.precision is {cfg.precision}": cfg.precision != "fp32",
        "train.accumulate > 1": cfg.accumulate > 1,
        "train.compile is on": cfg.compile,
        "train.data_placement is stream": cfg.data_placement == "stream",
        "model.backbone unfreezes by callback": backbone,
    }
    return next((reason for reason, applies in reasons.items() if applies), None)


@dataclass
class BatchedFit:
    members: list[Member]
    base: nn.Module  # the architecture, on the meta device: functional_call fills in each member's tensors
    params: dict[str, torch.Tensor]  # name -> (K, ...) leaf tensors requiring grad
    buffers: dict[str, torch.Tensor]
    row_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    task: str
    x_val: torch.Tensor  # (K, V, ...) padded
    y_val: torch.Tensor
    val_mask: torch.Tensor  # (K, V) bool
    batch_sizes: list[int]
    shared: bool  # one optimizer and schedule for every member
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
        params, buffers = stack_module_state(modules)  # (K, ...) copies
        params = {name: p.detach().requires_grad_(p.requires_grad) for name, p in params.items()}
        for k, module in enumerate(modules):
            _alias(module, params, buffers, k)  # member k's tensors become views into the stacks
        trainable = [[p for p in module.parameters() if p.requires_grad] for module in modules]
        sizes = [len(p[0]) if c.batch_size == "full" else min(int(c.batch_size), len(p[0])) for c, p in zip(cfgs, parts)]
        steps = [math.ceil(len(p[0]) / size) for p, size in zip(parts, sizes)]
        shared = len({(c.optimizer, c.schedule, c.epochs) for c in cfgs}) == 1 and cfgs[0].schedule.name in EPOCH_CLOCKED
        if shared:  # one optimizer over every member's views: one fused call a step
            optimizer = build_optimizer(cfgs[0].optimizer, [p for params_k in trainable for p in params_k])
            schedule = Schedule(cfgs[0].schedule, optimizer, cfgs[0].epochs, steps[0])
        members = []
        for k, (module, c) in enumerate(zip(modules, cfgs)):
            if not shared:
                optimizer = build_optimizer(c.optimizer, trainable[k])
                schedule = Schedule(c.schedule, optimizer, c.epochs, steps[k])
            generator = torch.Generator(device=device).manual_seed(c.seed)
            members.append(Member(module, optimizer, schedule, CallbackList(callbacks(k)), c, parts[k][0].to(device),
                                  parts[k][1].to(device), generator, params=trainable[k]))
        x_val, val_mask = _pad([p[2] for p in parts])
        y_val, _ = _pad([p[3] for p in parts])
        base = with_rand_dropout(copy.deepcopy(modules[0]).to("meta"))
        return cls(members, base, params, buffers, ROW_LOSSES[loss], task, x_val.to(device), y_val.to(device),
                   val_mask.to(device), sizes, shared)

    # ── the loop ───────────────────────────────────────────────────────────────────────────
    def fit(self) -> BatchedFit:
        """Train every member until each has run its epochs or been stopped by its callbacks."""
        members, cfg = self.members, self.members[0].cfg
        epochs = max(m.cfg.epochs for m in members)
        forward = vmap(self._forward, in_dims=(0, 0, 0), randomness="different")
        trained = [name for name, p in self.params.items() if p.requires_grad]
        for m in members:
            m.optimizer.zero_grad(set_to_none=True)
            m.callbacks.on_train_begin(m)
        optimizers = list({id(m.optimizer): m for m in members}.values())  # one member per distinct optimizer
        started_all = time.perf_counter()
        try:
            for epoch in range(1, epochs + 1):
                active = [k for k, m in enumerate(members) if m.training]
                if not active:
                    break
                started = time.perf_counter()
                self.base.train()
                # Only members still training are computed: a stopped member's slice leaves the batch.
                index = None if len(active) == len(members) else torch.tensor(active, device=self.x_val.device)
                xb_all, yb_all, mask_all, steps = self._epoch_batches(active)  # (A, S, B, ...), (A, S, B)
                loss_sum = torch.zeros(len(active), device=self.x_val.device)
                for step in range(max(steps[k] for k in active)):
                    xb, yb, mask = xb_all[:, step], yb_all[:, step], mask_all[:, step]
                    params, buffers = self._gather(index)
                    out = forward(params, buffers, xb)  # (A, B, outputs)
                    counts = mask.sum(1).clamp_min(1)  # (A,)
                    member_loss = (self.row_loss(out, yb) * mask).sum(1) / counts  # (A,): each member's batch mean
                    objective = member_loss.sum() + self._penalty(cfg, params)  # members share no parameter: sum separates
                    grads = torch.autograd.grad(objective, [params[name] for name in trained])
                    # vmap's backward can return a weight's gradient in transposed memory order; the fused
                    # optimizer kernels read a gradient in its parameter's order, so lay it out that way.
                    grads = [g.contiguous() for g in grads]
                    stepping = [k for k in active if step < steps[k]]
                    for j, k in enumerate(active):
                        if step < steps[k]:
                            self._give(members[k], [g[j] for g in grads])
                    for m in optimizers if self.shared else [members[k] for k in stepping]:
                        m.optimizer.step()  # members without gradients (no rows this step, or stopped) are skipped
                        m.optimizer.zero_grad(set_to_none=True)
                        m.schedule.step_batch()
                    loss_sum += member_loss.detach() * mask.sum(1)
                self._end_epoch(epoch, active, index, loss_sum, started)
        finally:
            for m in members:
                m.callbacks.on_train_end(m)
                m.callbacks.close()
            self.seconds = time.perf_counter() - started_all
        return self

    def _gather(self, index: torch.Tensor | None) -> tuple[dict, dict]:
        """The stacks, or (some members stopped) copies of the training members' slices, as leaves of their own."""
        if index is None:
            return self.params, self.buffers
        params = {name: p.detach()[index].requires_grad_(p.requires_grad) for name, p in self.params.items()}
        return params, {name: b[index] for name, b in self.buffers.items()}

    def _forward(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def _give(self, member: Member, grads: list[torch.Tensor]) -> None:
        """Member k's slice of the gradients (views: no copy) on its parameters, clipped as its config says."""
        for p, g in zip(member.params, grads):
            p.grad = g
        c = member.cfg
        if c.clip_grad_value is not None:
            nn.utils.clip_grad_value_(member.params, c.clip_grad_value)
        if c.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(member.params, c.clip_grad_norm)

    def _penalty(self, cfg: TrainConfig, params: dict[str, torch.Tensor]) -> torch.Tensor | float:
        """``train.l1`` / ``train.l2`` on the weight matrices (stacked: ndim > 2), as ``optim.weight_penalty``."""
        if not (cfg.l1 or cfg.l2):
            return 0.0
        weights = [p for p in params.values() if p.ndim > 2 and p.requires_grad]
        penalty = 0.0
        if cfg.l1:
            penalty = penalty + cfg.l1 * sum(w.abs().sum() for w in weights)
        if cfg.l2:
            penalty = penalty + cfg.l2 * sum(w.pow(2).sum() for w in weights)
        return penalty

    def _epoch_batches(self, active: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
        """The ``active`` members' shuffled batches for one epoch, padded to one shape (A, steps, B): member k's
        step s holds rows s*B_k..(s+1)*B_k of its shuffle, as ``TensorBatches`` would give it; steps per member."""
        members = self.members
        steps = [math.ceil(len(m.x_train) / size) for m, size in zip(members, self.batch_sizes)]
        most, widest = max(steps[k] for k in active), max(self.batch_sizes[k] for k in active)
        xs, ys, masks = [], [], []
        for m, size in ((members[k], self.batch_sizes[k]) for k in active):
            n, device = len(m.x_train), m.x_train.device
            perm = torch.randperm(n, generator=m.generator, device=m.generator.device).to(device) if size < n else None
            place = torch.arange(most, device=device)[:, None] * size + torch.arange(widest, device=device)[None, :]
            valid = (torch.arange(widest, device=device) < size)[None, :] & (place < n)  # (steps, B)
            place = place.clamp(max=n - 1)
            index = perm[place] if perm is not None else place
            xs.append(m.x_train[index])  # (steps, B, ...)
            ys.append(m.y_train[index])
            masks.append(valid)
        x, y, mask = torch.stack(xs), torch.stack(ys), torch.stack(masks)
        return x, y, mask.to(x.dtype), steps

    @torch.no_grad()
    def _validate(self, index: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Each training member's validation loss and metric on its own rows, as ``setup.make_validate`` computes
        them: (A,) each."""
        self.base.eval()
        params, buffers = self._gather(index)
        x_val, y_val, val_mask = (self.x_val, self.y_val, self.val_mask) if index is None else (
            self.x_val[index], self.y_val[index], self.val_mask[index])
        out = vmap(self._forward, in_dims=(0, 0, 0), randomness="different")(params, buffers, x_val)
        mask = val_mask.to(out.dtype)  # (A, V)
        counts = mask.sum(1).clamp_min(1)
        logs = {"val_loss": (self.row_loss(out, y_val) * mask).sum(1) / counts}
        if self.task == "regression":
            y, m = y_val.flatten(2).to(out.dtype), mask[:, :, None]  # (A, V, outputs)
            mean = (y * m).sum((1, 2)) / (counts * y.shape[2])
            residual = ((out.flatten(2) - y).pow(2) * m).sum((1, 2))
            logs["val_r2"] = 1 - residual / ((y - mean[:, None, None]).pow(2) * m).sum((1, 2)).clamp_min(1e-12)
        elif self.task == "binary":
            logs["val_accuracy"] = (((out.squeeze(-1) > 0).long() == y_val).to(out.dtype) * mask).sum(1) / counts
        else:
            logs["val_accuracy"] = ((out.argmax(-1) == y_val).to(out.dtype) * mask).sum(1) / counts
        return logs

    def _end_epoch(self, epoch: int, active: list[int], index: torch.Tensor | None, loss_sum: torch.Tensor,
                   started: float) -> None:
        """Read every training member's numbers in one transfer, then let each one's callbacks decide."""
        logs = self._validate(index)
        rows = torch.tensor([len(self.members[k].x_train) for k in active], device=loss_sum.device, dtype=loss_sum.dtype)
        names = ["train_loss", *logs]
        values = torch.stack([loss_sum / rows, *logs.values()]).tolist()  # the one sync per epoch
        seconds = time.perf_counter() - started
        for j, k in enumerate(active):
            m = self.members[k]
            numbers = {name: values[i][j] for i, name in enumerate(names)}
            if not math.isfinite(numbers["train_loss"]):
                m.diverged = {"epoch": epoch, "loss": numbers["train_loss"], "lr": m.optimizer.param_groups[0]["lr"]}
                m.request_stop(f"the training loss became {numbers['train_loss']} in epoch {epoch}")
                continue
            entry = {"epoch": epoch, **numbers, "lr": m.optimizer.param_groups[0]["lr"]}
            if not self.shared:
                m.schedule.step_epoch(entry["val_loss"])
            entry["seconds"] = seconds  # the batched epoch's time, shared by its members
            m.epoch = epoch
            m.history.append(entry)
            m.callbacks.on_epoch_end(m, entry)
        if self.shared:
            self.members[0].schedule.step_epoch(0.0)  # epoch-clocked: the same for every member, after the lr is logged


class RandDropout(nn.Module):
    """Dropout drawn with ``torch.rand`` (same distribution: keep with probability 1 - p, scale by 1 / (1 - p)).
    torch's CPU dropout draws through ``bernoulli_``, about 3x slower per element than ``rand`` here, and a
    batched fit draws K members' masks at once."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p) / (1 - self.p)


def with_rand_dropout(module: nn.Module) -> nn.Module:
    """``module`` with each ``nn.Dropout`` replaced by ``RandDropout`` (in place; returns it)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Dropout:
            setattr(module, name, RandDropout(child.p))
        else:
            with_rand_dropout(child)
    return module


def _alias(module: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], k: int) -> None:
    """Make ``module``'s parameters and buffers views of member ``k``'s slice of the stacked tensors,
    so its optimizer's in-place updates and ``load_state_dict`` write into the stacks."""
    for name, stacked in params.items():
        owner, _, leaf = name.rpartition(".")
        target = module.get_submodule(owner) if owner else module
        target._parameters[leaf] = nn.Parameter(stacked.detach()[k], requires_grad=stacked.requires_grad)
    for name, stacked in buffers.items():
        owner, _, leaf = name.rpartition(".")
        target = module.get_submodule(owner) if owner else module
        target._buffers[leaf] = stacked[k]


def _pad(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors of different lengths: (K, longest, ...) zero-padded, and (K, longest) True on real rows."""
    longest = max(len(t) for t in tensors)
    padded = torch.zeros(len(tensors), longest, *tensors[0].shape[1:], dtype=tensors[0].dtype)
    mask = torch.zeros(len(tensors), longest, dtype=torch.bool)
    for k, t in enumerate(tensors):
        padded[k, : len(t)] = t
        mask[k, : len(t)] = True
    return padded, mask


def vmap_problem(module: nn.Module, x: torch.Tensor) -> str | None:
    """Why ``vmap`` cannot run ``module``'s forward and backward on two stacked copies, or None when it can."""
    try:
        params, buffers = stack_module_state([module, module])
        base = copy.deepcopy(module).to("meta")
        out = vmap(lambda p, b, xb: functional_call(base, (p, b), (xb,)), randomness="different")(
            params, buffers, torch.stack([x, x])
        )
        out.float().sum().backward()
    except Exception as error:  # noqa: BLE001 - any failure means: fit these one after another
        return f"vmap cannot run this model ({type(error).__name__})"
    return None
