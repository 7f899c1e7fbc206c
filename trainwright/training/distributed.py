"""Data-parallel training on torch.distributed: the processes that train one model together.

torchrun (``python -m torch.distributed.run``) starts one process per device and tells each its
place through the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). ``Replicas.join(device)`` reads it, joins the process group (gloo on the CPU,
nccl on CUDA) and is then what the loop asks about the others:

- **data**: every process draws the same shuffle and takes its share of each global batch
  (``TensorBatches.shard``), so the global batch, and the learning rate that goes with it, stay
  what one process uses; validation and test rows are split in contiguous shards and their
  outputs gathered back without duplicates (``shard_rows``, ``gather_rows``);
- **gradients**: the model runs wrapped in ``DistributedDataParallel`` (``wrap``), which averages
  them across processes during the backward pass; ``no_sync`` skips that on all but the last
  batch of an accumulation group; the checkpoint, the callbacks and the finish step see the plain
  module, so checkpoints hold plain weights and a run resumes on any number of processes;
- **sharding** (``train.strategy: fsdp``): ``wrap`` shards the module in place with FSDP2
  (``fully_shard``: each layer's parameters, their gradients and so the optimizer's state split across
  the processes, gathered layer by layer for the forward and backward passes, gradients reduce-scattered);
  ``full_state`` gathers plain full weights and optimizer state for a checkpoint (``load_full_state``
  shards them again), and ``whole`` holds the weights gathered while a process predicts its share of
  rows, so processes with different numbers of batches wait for no collective;
- **decisions**: the loss is summed across processes (``sum``), and whether to checkpoint (time,
  a signal on any process) and whether to stop are agreed (``any``, ``from_rank0``), so every
  process takes the same branch and none waits forever in a collective the others skipped.

One process alone is ``Replicas()``: every method is then a no-op, so one code path serves both
(torchtune's rule). Only rank 0 writes the run directory (``rundir.is_writer``).

Another recipe's loop joins the same way (the supervised and distillation recipes do; the GAN's steps, whose
penalties and frozen discriminator DistributedDataParallel cannot follow, sum their gradients themselves with
``sum_gradients``, see ``training/gan_step.py``):
``replicas = Replicas.join(device)`` once per process, ``batches.shard(replicas.rank, replicas.size)``,
``replicas.wrap(module)`` for each trained module (its step calls the wrapper; a second wrapper's
``no_sync`` is its own), each share's loss weighted by ``len(share) * replicas.size / len(global
batch)``, ``replicas.sum`` on what it logs, ``replicas.from_rank0`` on its stop decision,
``Checkpoint(..., replicas=replicas)``, and ``replicas.close()`` at the end.

Example (inside a process torchrun started):
    >>> replicas = Replicas.join(torch.device("cpu"))      # rank 1 of 2, gloo
    >>> model = replicas.wrap(module)                      # DistributedDataParallel(module)
    >>> replicas.sum(torch.tensor(1.0))                    # tensor(2.)
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
import sys
from dataclasses import dataclass, field

import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from trainwright.errors import TrainwrightError

# How long a process waits for the others: to join the process group (a rendezvous that cannot be reached),
# in a collective, and at the end for rank 0 to finish writing the results.
TIMEOUT = datetime.timedelta(minutes=30)


def launched() -> bool:
    """Whether torchrun (or another launcher that follows its contract) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def world_size() -> int:
    """How many processes torchrun started for this run (1 when it did not)."""
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


@dataclass
class Replicas:
    """This process's place among the processes training one model; ``Replicas()`` is one process alone."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1  # processes on this machine
    wrapper: nn.Module | None = field(default=None, repr=False)  # the DistributedDataParallel the step runs
    strategy: str = "ddp"  # or "fsdp": the module itself sharded (``wrap``)

    @classmethod
    def join(cls, device: torch.device) -> Replicas:
        """Join the process group torchrun set up (gloo on the CPU, nccl on CUDA); one process alone when
        torchrun did not start this one (or started one process)."""
        if not launched():
            return cls()
        rank, size, local = (int(os.environ[key]) for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
        if size == 1:
            return cls()
        if device.type == "cuda":
            torch.cuda.set_device(local)  # this process's own GPU
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
            try:
                dist.init_process_group(backend, timeout=TIMEOUT, rank=rank, world_size=size)
            except (RuntimeError, ValueError) as error:  # DistNetworkError, DistStoreError: no rendezvous
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise TrainwrightError(
                    f"process rank {rank} cannot reach the rendezvous at {where} ({first}); start the same command on "
                    "every machine with the first machine's address and a port its firewall lets through"
                ) from None
        return cls(rank, size, local, local_size)

    @property
    def active(self) -> bool:
        return self.size > 1

    def resume_command(self, run: object) -> str:
        """The command that continues ``run`` on as many processes (any number would do)."""
        if self.size == self.local_size:
            return f"trainwright train --resume {run} --nproc-per-node {self.size}"
        return f"torchrun <the same options on every machine> -m trainwright train --resume {run}"

    def device(self, device: torch.device) -> torch.device:
        """A process's own GPU (``cuda:LOCAL_RANK``) when the run trains on CUDA."""
        return torch.device("cuda", self.local_rank) if self.active and device.type == "cuda" else device

    # ── the model ────────────────────────────────────────────────────────────────────────
    def wrap(self, module: nn.Module, strategy: str = "ddp") -> nn.Module:
        """The module the training step runs: ``module`` itself, or its ``DistributedDataParallel`` wrapper
        (which starts by copying rank 0's weights to every process). ``module`` stays what checkpoints hold.
        ``strategy="fsdp"``: ``module`` itself, sharded in place (build its optimizer after this)."""
        if not self.active:
            return module
        if self.rank:  # its own dropout masks (rank 0 keeps the stream one process would draw from)
            torch.manual_seed(torch.initial_seed() + self.rank)
        if strategy == "fsdp":
            # torch's FSDP, DTensor and distributed checkpoint modules load sympy and torch's sharding ops (about a
            # second): loaded by a run that shards, not by every process that imports this module.
            from torch.distributed.fsdp import fully_shard

            # Every process built the same seeded weights. One unit per layer that holds parameters (it is gathered
            # for its own forward and backward only), then the rest (the root).
            for layer in [m for m in module.modules() if m is not module and any(True for _ in m.parameters(recurse=False))]:
                fully_shard(layer)
            fully_shard(module)
            self.wrapper, self.strategy = module, strategy
            return module
        ids = [module_device(module).index] if module_device(module).type == "cuda" else None
        if ids is not None:  # batch statistics over the whole global batch, as one process computes them
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        self.wrapper = DistributedDataParallel(module, device_ids=ids)
        return self.wrapper

    def no_sync(self, unless: bool) -> contextlib.AbstractContextManager:
        """Skip the gradient all-reduce for this batch's backward, ``unless`` it ends an accumulation group
        (it then carries every batch's gradients of the group)."""
        if self.wrapper is None or unless:
            return contextlib.nullcontext()
        if _sharded(self.wrapper):
            return _gradient_sync_off(self.wrapper)
        return self.wrapper.no_sync()

    def whole(self, module: nn.Module) -> contextlib.AbstractContextManager:
        """FSDP: ``module``'s weights gathered for the block (each process predicts its own share of rows, in
        as many batches as it has, with no collective); nothing to do otherwise."""
        return _gathered(module) if _sharded(module) else contextlib.nullcontext()

    def full_state(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """``module``'s and ``optimizer``'s states as one process holds them (plain full tensors, the optimizer's
        by parameter index), for a checkpoint: under FSDP gathered on rank 0 (the writer; {} elsewhere)."""
        if not _sharded(module):
            return module.state_dict(), optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict  # see wrap

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        by_name = get_optimizer_state_dict(module, optimizer, options=options)  # keyed by parameter name
        weights = self.full_weights(module)
        if not by_name:
            return weights, {}
        index = {name: i for i, name in enumerate(name for group in by_name["param_groups"] for name in group["params"])}
        return weights, {"state": {index[name]: value for name, value in by_name["state"].items()},
                         "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in by_name["param_groups"]]}

    def full_weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``module``'s weights as plain full tensors (under FSDP gathered on rank 0, {} elsewhere: call it on every
        process)."""
        if not _sharded(module):
            return module.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict  # see wrap

        return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_full_state(self, module: nn.Module, optimizer: torch.optim.Optimizer, weights: dict, state: dict) -> None:
        """Load what ``full_state`` returned (on any number of processes): under FSDP each process keeps its shards."""
        if not _sharded(module):
            module.load_state_dict(weights)
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import (  # see wrap
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(module, weights, options=options)
        names = {id(p): name for name, p in module.named_parameters()}
        order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
        by_name = {"state": {order[int(i)]: value for i, value in state["state"].items()},
                   "param_groups": [{**g, "params": [order[int(i)] for i in g["params"]]} for g in state["param_groups"]]}
        set_optimizer_state_dict(module, optimizer, by_name, options=options)

    def sum_gradients(self, params: list[nn.Parameter]) -> None:
        """The gradients of ``params`` summed over every process, in place: one all-reduce of them all, flattened
        (one bucket of DistributedDataParallel's, for a step it cannot wrap: a GAN's discriminator step takes
        gradients with respect to its inputs for a penalty, and its generator step runs the discriminator frozen).
        Parameters without a gradient are left out: every process must have the same ones (the same step)."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.active or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads]).to(self._collective_device(grads[0].device))
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        for grad, summed in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            grad.copy_(summed.view_as(grad))

    # ── numbers every process must agree on ──────────────────────────────────────────────
    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over every process (a new tensor; ``tensor`` itself is left as it was)."""
        if not self.active:
            return tensor
        total = tensor.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    def each(self, value: torch.Tensor) -> torch.Tensor:
        """Every process's 0-dim ``value``, by rank: (size,); ``value`` itself on one process."""
        if not self.active:
            return value
        return self.gather_rows(value.detach().reshape(1), self.size)

    def own_share(self, values: torch.Tensor) -> torch.Tensor:
        """This process's part of what ``each`` gathered when as many processes go on with it (each sums on
        from its own, so a resumed run adds up in the same order); else rank 0 carries the total."""
        if values.ndim == 1 and len(values) == self.size:
            return values[self.rank].clone()
        total = values.sum()
        return total if self.rank == 0 else torch.zeros_like(total)

    def any(self, *flags: float) -> list[float]:
        """Each of ``flags`` as its largest value over every process: one small all-reduce."""
        if not self.active:
            return list(flags)
        values = torch.tensor(flags, dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return values.tolist()

    def from_rank0(self, value):
        """Rank 0's ``value`` (any picklable object) on every process."""
        return from_rank0(value) if self.active else value

    # ── rows split across processes ───────────────────────────────────────────────────────
    def shard_rows(self, n: int) -> slice:
        """This process's contiguous share of ``n`` rows (shares differ by at most one row; none repeats)."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    def gather_rows(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """Every process's ``local`` rows (its ``shard_rows(n)``), in order: (n, ...) on every process."""
        if not self.active:
            return local
        sizes = [n * (r + 1) // self.size - n * r // self.size for r in range(self.size)]
        device = self._collective_device(local.device)
        padded = torch.zeros((max(sizes), *local.shape[1:]), dtype=local.dtype, device=device)
        padded[: len(local)] = local.to(device)
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)  # equal shapes; the padding is cut off below, so no row counts twice
        return torch.cat([part[:size] for part, size in zip(parts, sizes)]).to(local.device)

    def _collective_device(self, device: torch.device | None = None) -> torch.device:
        return collective_device(device)

    def close(self) -> None:
        """Leave the process group together, once rank 0 has written the results (the end of a run).

        The DistributedDataParallel wrapper goes first: its reducer holds the group and its last
        all-reduce's work, and gloo's threads freeing that work while the interpreter shuts down abort
        the process (pytorch PR #179291). Drop every other reference to the wrapper before this."""
        if self.active and dist.is_initialized():
            self.wrapper = None
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()


def _sharded(module) -> bool:
    """Whether ``module`` is sharded by FSDP (which has loaded its module then: see ``Replicas.wrap``)."""
    fsdp = sys.modules.get("torch.distributed.fsdp")
    return fsdp is not None and isinstance(module, fsdp.FSDPModule)


def _dtensor() -> type | tuple:
    """FSDP's sharded tensor type, once FSDP has loaded it; () before (``isinstance(x, ())`` is False)."""
    return getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", ())


@contextlib.contextmanager
def _gradient_sync_off(module):
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


@contextlib.contextmanager
def _gathered(module):
    units = [m for m in module.modules() if _sharded(m)]  # each layer's own unit, and the root
    for unit in units:
        unit.unshard()  # an all-gather of its parameters, on every process at once
    module.set_reshard_after_forward(False)
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
        module.set_reshard_after_forward(True)


def plain(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded tensor (FSDP's DTensor) gathered whole on every process (a collective); any other as it is."""
    return tensor.full_tensor() if isinstance(tensor, _dtensor()) else tensor


def like(full: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """``full`` sharded as ``current`` is (FSDP), to load into it; ``full`` itself when ``current`` is plain."""
    if not isinstance(current, _dtensor()):
        return full
    from torch.distributed.tensor import distribute_tensor  # loaded already: current is a DTensor

    return distribute_tensor(full.to(current.device), current.device_mesh, current.placements)


def from_rank0(value):
    """Rank 0's ``value`` (any picklable object) on every process of the group; ``value`` when there is none."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=collective_device())
    return box[0]


def collective_device(device: torch.device | None = None) -> torch.device:
    """Where a collective's tensors must be: nccl moves CUDA tensors only, gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu") if device is None or device.type != "cpu" else device


def peer_lost(error: BaseException) -> bool:
    """Whether ``error`` is a collective failing because another process of the group is gone."""
    text = str(error).lower()
    return dist.is_initialized() and (
        isinstance(error, dist.DistError) or any(s in text for s in ("connection closed", "connection reset", "gloo", "nccl"))
    )


def module_device(module: nn.Module) -> torch.device:
    return next(module.parameters(), torch.empty(0)).device
