"""fit(): train a VAE or AE on a Dataset with tensor-resident minibatches.

The whole training set sits on the device as one tensor; each epoch draws a seeded
permutation and gathers batches from it, so there is no per-sample DataLoader overhead.
Progress leaves through a callback; the caller (CLI progress bar, Streamlit page) renders it.

Speed (bench/train.py measures it against a conventional DataLoader loop): a step should be
the model's own work and little else. Adam runs fused (one kernel over all parameters
instead of ~10 tensor ops per parameter); batches are gathered with index_select (a row
copy, several times faster than advanced indexing on the CPU); the running sums are read
back, and checked for NaN, once every `report_every` steps rather than every step, so no
step waits on a device-to-host copy.

Several processes (torchrun): when a process group is running (vae/core/distributed.py), the
same loop trains one model with DistributedDataParallel. config.batch_size is the global
batch; each rank takes its rows of every global batch (and of its noise), so the weights are
those of one process; the running sums and a stop flag are all-reduced at the same report
steps, so a NaN or a stop on any rank ends all of them alike; rank 0 alone evaluates, takes
the map snapshots and calls the callback.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.distributed as dist

from vae.core import distributed
from vae.core.config import TrainConfig
from vae.core.data import Dataset
from vae.core.device import pick_device
from vae.core.errors import ConfigError, TrainingDiverged
from vae.core.losses import elbo_terms
from vae.core.models import LatentModel
from vae.core.projection import default_points


@dataclass
class Progress:
    """One report to the callback. kind 'step' carries running means of the current epoch so
    far; kind 'epoch' carries the finished epoch's `record` (one row of the history)."""

    kind: str  # "step" or "epoch"
    step: int  # optimizer steps done in total
    total_steps: int
    epoch: int  # 1-based epoch in progress (or just finished)
    epochs: int
    recon: float  # mean log p(x|z) per image, nats
    kl: float  # mean KL per image, nats
    elbo: float  # mean ELBO per image, nats
    images_per_s: float
    record: dict[str, float] | None = None
    snapshot: torch.Tensor | None = None  # (P, 2) default map of the snapshot points after this epoch (projection.default_points)

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total_steps)


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one row per finished epoch
    snapshots: torch.Tensor | None = None  # (epochs + 1, P, 2): the map before training and after each epoch
    snapshot_index: torch.Tensor | None = None  # (P,) indices into the test set
    # (epochs + 1, K, C, H, W) uint8: the reconstructions decode(mu(x)) of the first K snapshot
    # images at the same moments, so the replay shows the decoder learning beside the map
    snapshot_decodes: torch.Tensor | None = None
    stopped: bool = False  # True when should_stop() ended training early
    seconds: float = 0.0


@torch.no_grad()
def evaluate_elbo(
    model: LatentModel, x: torch.Tensor, batch_size: int = 1024, generator: torch.Generator | None = None
) -> dict[str, float]:
    """Mean recon, KL and ELBO per image over x (one posterior sample each)."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, device=x.device)
    for i in range(0, x.shape[0], batch_size):
        t = elbo_terms(model, x[i : i + batch_size], generator)
        totals += torch.stack([t.recon.sum(), t.kl.sum(), t.elbo.sum()])
    model.train(was_training)
    recon, kl, elbo = (totals / x.shape[0]).tolist()
    return {"recon": recon, "kl": kl, "elbo": elbo}


def fit(
    model: LatentModel,
    data: Dataset,
    config: TrainConfig,
    callback: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: torch.device | str | None = None,
    report_every: int = 10,
) -> FitResult:
    """Train `model` in place on data.x_train; evaluate on data.x_test after every epoch.

    Raises TrainingDiverged on a NaN/inf loss, after restoring the weights of the last epoch
    that finished with finite values. Same seed, same data, same device: same weights.
    """
    config.validate()
    if tuple(model.config.image_shape) != data.image_shape:
        raise ConfigError(
            f"image_shape: the model expects {model.config.image_shape} images but dataset "
            f"{data.name!r} has {data.image_shape}; build the model for this dataset"
        )
    if not config.max_threads or config.max_threads == torch.get_num_threads():
        return _fit(model, data, config, callback, should_stop, device, report_every)
    # torch's intra-op thread count is process-wide: set it for this run and put it back, so a
    # server that trains once (first run) does not keep the training setting for everything after.
    previous = torch.get_num_threads()
    torch.set_num_threads(config.max_threads)
    try:
        return _fit(model, data, config, callback, should_stop, device, report_every)
    finally:
        torch.set_num_threads(previous)


def _fit(
    model: LatentModel,
    data: Dataset,
    config: TrainConfig,
    callback: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    device: torch.device | str | None,
    report_every: int,
) -> FitResult:
    group = distributed.current()  # None: one process; else DDP over the group (vae/core/distributed.py)
    world = group.world_size if group is not None else 1
    if config.world_size != world:
        raise ConfigError(
            f"world_size: the config says {config.world_size} training process(es) but {world} are running; "
            f"set TrainConfig.world_size to the number torchrun starts"
        )
    if group is None:
        return _train(model, data, config, callback, should_stop, device, report_every, None)
    try:
        return _train(model, data, config, callback if group.main else None, should_stop, device, report_every, group)
    except RuntimeError as exc:  # gloo raises plain RuntimeErrors, nccl DistErrors
        if isinstance(exc, dist.DistError) or distributed.is_collective_failure(exc):
            raise distributed.lost_contact(group, exc) from None  # another rank died, hung past the timeout or left
        raise


def _train(
    model: LatentModel,
    data: Dataset,
    config: TrainConfig,
    callback: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    device: torch.device | str | None,
    report_every: int,
    group: distributed.Group | None,
) -> FitResult:
    dev = torch.device(device) if device is not None else pick_device()
    main = group is None or group.main  # the process that evaluates, snapshots and reports
    world = group.world_size if group is not None else 1
    model.to(dev).train()
    x_train = _to_device(data.x_train, dev)
    x_test = _to_device(data.x_test, dev)
    if group is not None:
        distributed.check_same_data(group, [data.x_train, data.x_test])
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    shuffle_gen = torch.Generator().manual_seed(config.seed)  # randperm on the CPU is the portable choice
    # several processes: the DDP module draws the global batch's noise and keeps this rank's rows
    ddp = distributed.wrap(model, dev) if group is not None else None
    net = cast(LatentModel, ddp if ddp is not None else model)
    optimizer = _adam(model, config.lr, dev)
    beta = config.beta if model.stochastic else 0.0
    autocast = functools.partial(torch.autocast, dev.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")

    n = x_train.shape[0]
    batch = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    total_steps = steps_per_epoch * config.epochs
    result = FitResult()

    snap_x = None
    snaps: list[torch.Tensor] = []
    snap_decodes: list[torch.Tensor] = []
    if config.snapshot_points:
        p = min(config.snapshot_points, x_test.shape[0])
        result.snapshot_index = torch.arange(p)
        snap_x = x_test[:p]
        if main:
            points, decodes = _snapshot(model, snap_x)
            snaps.append(points)
            snap_decodes.append(decodes)

    good_state = copy.deepcopy(model.state_dict())
    good_optim = copy.deepcopy(optimizer.state_dict())

    def diverged(where: str) -> TrainingDiverged:
        model.load_state_dict(good_state)
        optimizer.load_state_dict(good_optim)
        return TrainingDiverged(
            f"the loss became non-finite {where} (lr={config.lr}); the weights of the last good "
            f"epoch were kept. Try a smaller learning rate"
        )

    check_every = max(1, report_every)
    step = 0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        perm = _to_device(torch.randperm(n, generator=shuffle_gen), dev)
        # running sums of recon, KL, ELBO over the epoch; a NaN/inf in any step's loss makes
        # them non-finite for good, so reading them now and then is enough to catch it
        sums = torch.zeros(3, device=dev)
        seen = 0  # images of the global batches so far (all ranks together)
        asked_stop = False  # should_stop() said so on this rank (several processes: agreed at the next check)
        checked = step  # the steps up to here are known to be finite
        for i in range(steps_per_epoch):
            rows = perm[i * batch : (i + 1) * batch]
            global_n = rows.shape[0]
            if ddp is not None and group is not None:
                lo, hi = distributed.local_rows(group, global_n)
                ddp.module.take(global_n, lo, hi)
                rows = rows[lo:hi]
            xb = x_train.index_select(0, rows)
            with autocast():
                terms = elbo_terms(net, xb, gen)
                loss = terms.loss(beta)
                if group is not None:
                    # DDP averages gradients over the ranks: weigh each rank's mean by its share so
                    # that the average is the global batch's mean, even for an uneven last batch
                    loss = loss * (xb.shape[0] * world / global_n) if xb.shape[0] else terms.elbo.sum() * 0.0
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                sums += torch.stack((terms.recon, terms.kl, terms.elbo)).float().sum(1)
            seen += global_n
            asked_stop = asked_stop or (should_stop is not None and should_stop())
            check = step % check_every == 0 or i == steps_per_epoch - 1
            if group is None and not (check or asked_stop):
                continue
            if group is not None and not check:
                continue
            stop = asked_stop
            if group is None:
                recon, kl, elbo = (sums / seen).tolist()
            else:  # one all_reduce agrees on the global running means and on a stop asked by any rank
                agreed = distributed.all_sum(group, torch.cat((sums, sums.new_tensor([float(asked_stop)]))))
                recon, kl, elbo = (agreed[:3] / seen).tolist()
                stop = bool(agreed[3].item() > 0)
            if not all(math.isfinite(v) for v in (recon, kl, elbo)):
                raise diverged(f"at epoch {epoch}, between steps {checked + 1} and {step}")
            checked = step
            if callback is not None:
                rate = seen / max(1e-9, time.perf_counter() - epoch_start)
                callback(Progress("step", step, total_steps, epoch, config.epochs, recon, kl, elbo, rate))
            if stop:
                result.stopped = True
                break
        if result.stopped and seen < n:
            break  # stopped inside the epoch: a partial epoch gets no row
        train_recon, train_kl, train_elbo = recon, kl, elbo  # the last check came on the epoch's last step
        seconds = time.perf_counter() - epoch_start
        test = evaluate_elbo(model, x_test, generator=gen) if main else {"recon": 0.0, "kl": 0.0, "elbo": 0.0}
        if group is not None:
            # rank 0's test numbers for every rank's history, and its noise generator (the test
            # evaluation drew from it) so every rank goes on from the state one process would have
            shared = distributed.from_main(group, torch.tensor([test["recon"], test["kl"], test["elbo"]], dtype=torch.float64))
            test = dict(zip(("recon", "kl", "elbo"), shared.tolist(), strict=True))
            distributed.share_generator(group, gen)
        if not all(math.isfinite(v) for v in (train_elbo, *test.values())):
            raise diverged(f"on the test set after epoch {epoch}")
        good_state = copy.deepcopy(model.state_dict())
        good_optim = copy.deepcopy(optimizer.state_dict())
        record = {
            "epoch": epoch,
            "train_recon": train_recon,
            "train_kl": train_kl,
            "train_elbo": train_elbo,
            "test_recon": test["recon"],
            "test_kl": test["kl"],
            "test_elbo": test["elbo"],
            "seconds": seconds,
            "images_per_s": seen / max(1e-9, seconds),
        }
        result.history.append(record)
        snapshot = None
        if snap_x is not None and main:
            snapshot, decodes = _snapshot(model, snap_x)
            snaps.append(snapshot)
            snap_decodes.append(decodes)
        if callback is not None:
            callback(
                Progress(
                    "epoch", step, total_steps, epoch, config.epochs, train_recon, train_kl, train_elbo,
                    record["images_per_s"], record=record, snapshot=snapshot,
                )
            )
        if result.stopped:
            break  # the stop came on the epoch's last step: the epoch finished and kept its row
    model.eval()
    result.seconds = time.perf_counter() - start
    if snaps:
        result.snapshots = torch.stack(snaps).cpu()
        result.snapshot_decodes = torch.stack(snap_decodes).cpu()
    return result


def _to_device(t: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """Host to device; to a GPU from pinned memory without blocking the host."""
    if dev.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)


def _adam(model: LatentModel, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam; fused where torch has the fused kernel for this device (cpu, cuda).

    Same update rule as the default (for-each-parameter) implementation, but one pass over
    the memory per step instead of about a dozen tensor ops per parameter: on the 2-core
    dev machine the 784-400-20 VAE's optimizer step went from about 3.5 ms to 1.2 ms
    (bench/RESULTS.md has the whole-loop numbers).
    """
    params = list(model.parameters())
    if device.type in ("cpu", "cuda") and all(p.dtype == torch.float32 for p in params):
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr)


REPLAY_DECODES = 8  # reconstructions kept per snapshot (uint8: 8 x 28 x 28 = 6 kB an epoch for MNIST)


@torch.no_grad()
def _snapshot(model: LatentModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The snapshot images' map points (P, 2) and the first REPLAY_DECODES reconstructions
    (K, C, H, W) uint8, both taken in eval mode (mu, no sampling)."""
    was_training = model.training
    model.eval()
    mu, _ = model.encode(x)
    decodes = (model.decode(mu[:REPLAY_DECODES]).float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    model.train(was_training)
    # the points of Explore's default map of these means (identity up to 2-D, PCA above)
    return torch.from_numpy(default_points(mu.float().cpu().numpy())), decodes
