"""One model trained by several processes, GPUs or machines: torch.distributed and DDP.

torchrun starts one process per GPU (or per CPU slot) and gives each RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT (vae/settings.py reads the first three); `start` joins
them into one process group: gloo on the CPU, nccl on CUDA, each process on the GPU of its
local rank. `fit` sees the group through `current()` and trains with DistributedDataParallel.

How N processes give the weights one process gets with the same global batch:
- every rank draws the same permutation (same seed) and takes its slice of every global batch;
- the VAE's noise eps is drawn for the whole global batch from one shared-seed generator and
  sliced the same way (`GlobalBatchNoise`), so each image meets the eps it would meet alone;
- the loss is a per-image mean over the local slice and DDP averages the gradients over the
  ranks, which is the mean over the global batch (the models have no batch norm or any other
  layer that looks across the batch);
- only rank 0 evaluates on the test set; it then broadcasts the test numbers and the noise
  generator's state (the evaluation draws from it too), so every rank goes on from the same state.

A NaN or a stop on any rank is agreed at the same checkpoints on every rank (one all_reduce of
the running sums and a stop flag), so all stop together and say the same thing. A rank that
dies or hangs makes the others' next collective fail, after at most the process group's
timeout, as a `DistributedError`; torchrun also notices a dead worker and ends the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vae.core.errors import LatentExplorerError
from vae.core.models import LatentModel
from vae.settings import settings

DEFAULT_TIMEOUT_S = 600.0  # longest a rank waits for the others in one collective (rank 0's test evaluation included)
FINGERPRINT_ELEMENTS = 1 << 22  # values hashed per tensor to check that every rank loaded the same data


class DistributedError(LatentExplorerError):
    """The training processes could not start together, or lost one another."""


@dataclass(frozen=True)
class Group:
    """This process's place in the process group."""

    rank: int
    world_size: int
    device: torch.device  # where collective tensors live: the GPU for nccl, the CPU for gloo

    @property
    def main(self) -> bool:
        return self.rank == 0


def current() -> Group | None:
    """The process group `fit` trains in, or None for a single process (also a group of one)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    nccl = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    return Group(dist.get_rank(), dist.get_world_size(), device)


def is_main() -> bool:
    """True for a single process and for rank 0: the one that evaluates, reports and saves."""
    group = current()
    return group is None or group.main


def wanted() -> bool:
    """Whether a launcher (torchrun) started this process as one of several."""
    return settings().world_size > 1


def training_device(requested: str | None) -> torch.device:
    """The device of this rank: the local rank's GPU where CUDA is asked for or present, else the CPU."""
    s = settings()
    if requested is not None and torch.device(requested).type not in ("cpu", "cuda"):
        raise DistributedError(f"device: training on several processes runs on cpu or cuda, not {requested!r}")
    if requested is not None and torch.device(requested).index is not None:
        raise DistributedError(
            f"device: each process uses the GPU of its local rank (cuda:<LOCAL_RANK>); pass --device cuda, not {requested!r}"
        )
    if requested == "cpu" or (requested is None and not torch.cuda.is_available()):
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if s.local_rank >= count:
        raise DistributedError(
            f"rank {s.rank}: local rank {s.local_rank} needs cuda:{s.local_rank} but this machine has {count} GPU(s); "
            f"start at most {count} processes per machine (--nproc_per_node)"
        )
    return torch.device("cuda", s.local_rank)


def start(device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S, init_method: str = "env://") -> Group:
    """Join the other processes (RANK and WORLD_SIZE from the launcher): nccl for a GPU, gloo for the CPU."""
    s = settings()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(
            backend, init_method=init_method, rank=s.rank, world_size=s.world_size, timeout=timedelta(seconds=timeout_s)
        )
    except (ValueError, RuntimeError) as exc:  # no MASTER_ADDR, a rendezvous that timed out, a port in use
        raise DistributedError(f"rank {s.rank}: could not join the other {s.world_size - 1} training process(es): {_first_line(exc)}") from None
    group = current()
    assert group is not None
    return group


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def lost_contact(group: Group, exc: BaseException) -> DistributedError:
    """The one message for a collective that failed: another rank died, hung or was stopped."""
    return DistributedError(
        f"rank {group.rank}: lost contact with the other training processes ({_first_line(exc)}); "
        f"one of them stopped, crashed or hung. Nothing was saved"
    )


def is_collective_failure(exc: BaseException) -> bool:
    """A failed collective: gloo says so only in its message (a closed connection, a timeout)."""
    text = str(exc).lower()
    return "gloo" in text or "nccl" in text or "connection closed by peer" in text


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


class GlobalBatchNoise(nn.Module):
    """The model's forward pass on a rank's slice of a global batch, with the slice of the
    global batch's noise: eps is drawn as LatentModel.sample_z draws it for the whole batch
    (one randn of (global_n, D)), then cut to rows lo:hi. The module DDP wraps."""

    def __init__(self, model: LatentModel) -> None:
        super().__init__()
        self.model = model
        self.global_n, self.lo, self.hi = 0, 0, 0

    def take(self, global_n: int, lo: int, hi: int) -> None:
        """The next forward sees rows lo:hi of a global batch of global_n images."""
        self.global_n, self.lo, self.hi = global_n, lo, hi

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        mu, logvar = self.model.encode(x)
        if logvar is None:
            z = mu
        else:
            eps = torch.randn((self.global_n, mu.shape[1]), generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps[self.lo : self.hi]  # LatentModel.sample_z on the global batch
        return self.model.decode_logits(z), mu, logvar, z


def wrap(model: LatentModel, device: torch.device) -> DistributedDataParallel:
    """DDP over GlobalBatchNoise(model): rank 0's weights are broadcast, gradients averaged."""
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(GlobalBatchNoise(model), device_ids=ids, output_device=device if ids else None)


def local_rows(group: Group, global_n: int) -> tuple[int, int]:
    """Rows lo:hi of a global batch of global_n that this rank trains on: an even share
    (the last batch of an epoch may split unevenly, even leave a rank none)."""
    return group.rank * global_n // group.world_size, (group.rank + 1) * global_n // group.world_size


def all_sum(group: Group, values: torch.Tensor) -> torch.Tensor:
    """The sum of `values` over all ranks (a new tensor on values' device)."""
    t = values.to(group.device, copy=True)
    dist.all_reduce(t)
    return t.to(values.device)


def from_main(group: Group, values: torch.Tensor) -> torch.Tensor:
    """Rank 0's `values` on every rank (same shape and dtype everywhere)."""
    t = values.to(group.device, copy=True)
    dist.broadcast(t, src=0)
    return t.to(values.device)


def share_generator(group: Group, generator: torch.Generator) -> None:
    """Give every rank rank 0's generator state."""
    state = from_main(group, generator.get_state())
    generator.set_state(state.cpu())


def check_same_data(group: Group, tensors: list[torch.Tensor]) -> None:
    """Refuse to train when the ranks loaded different data (say a stale copy on one node):
    shapes and a hash of an evenly spaced sample of the values must agree."""
    digest = hashlib.sha256()
    for t in tensors:
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // FINGERPRINT_ELEMENTS)
        digest.update(repr(tuple(t.shape)).encode())
        digest.update(flat[::step].to("cpu", torch.float32).contiguous().numpy().tobytes())
    mine = torch.tensor([int.from_bytes(digest.digest()[:7], "little")], dtype=torch.int64)
    high = mine.to(group.device, copy=True)
    low = mine.to(group.device, copy=True)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    if not (high == low).all():
        raise DistributedError(
            f"rank {group.rank}: the training processes loaded different data; every machine needs the same "
            f"copy of the dataset (a shared folder, or identical copies at the same path)"
        )
