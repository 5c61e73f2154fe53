"""Training (``tdn train``): TDN-format lists in, this project's model file out.

One process, or ``torchrun --nproc_per_node=N .venv/bin/tdn train ...`` for
DistributedDataParallel (gloo on CPU, NCCL on CUDA). Every epoch writes to ``train.output``:

- ``last.pt``: the full training state (model, optimizer, schedule, scaler, epoch, best
  score); ``train.resume`` continues from it;
- ``best.pt``: the model with the best validation top-1 so far, in this project's format
  (``tdn.load_model`` reads it; labels and preprocessing travel with it);
- ``log.csv``: one row per epoch; ``config.yaml``: the resolved settings of the run.

Recipe: SGD with momentum, linear warm-up then cosine decay per step, gradient-norm clipping,
cross-entropy; mixed precision (bf16 autocast on CPU, fp16 autocast with a gradient scaler on
CUDA) when ``train.amp``. A clip that cannot be read is skipped with a warning naming it
(:func:`tdn.data.collate_clips`). Runs are seeded (``train.seed``): the same command on the same
machine repeats the same sampling and augmentation.
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml

from tdn.checkpoint import load_imagenet_init, load_model_init, read_file, save_model
from tdn.meta import IMAGENET_MEAN, IMAGENET_STD, ModelMeta
from tdn.config import Config
from tdn.data import ClipDataset, clip_seconds_of, collate_clips, parse_flip_swap, read_list
from tdn.evaluate import Metrics, evaluate
from tdn.files import write_atomically
from tdn.labels import load_labels
from tdn.model import TDN, create_model
from tdn.transforms import PreprocessSpec

STATE_FORMAT = "tdn-live-train-state"
LOG_FIELDS = ("epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
              "val_mean_class_accuracy", "seconds")


@dataclass
class TrainResult:
    model: TDN  # the trained model (last epoch), unwrapped, on its training device
    best: Metrics | None  # validation metrics of best.pt
    output: Path


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    """Join the process group torchrun describes in the environment (a no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size())


def _resolve_labels(cfg: Config, records) -> tuple[list[str] | None, int]:
    """Class names (model.labels, else labels.txt beside the training list) and the class count."""
    path = Path(cfg.model.labels) if cfg.model.labels else Path(cfg.train.train_list).parent / "labels.txt"
    labels = load_labels(path) if (cfg.model.labels or path.is_file()) else None
    top = max(r.label for r in records)
    num_classes = len(labels) if labels else top + 1
    if top >= num_classes:
        raise ValueError(f"{cfg.train.train_list} has label {top} but {path} names only {num_classes} classes")
    return labels, num_classes


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 1/warmup to 1, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def _loader(dataset, cfg: Config, *, shuffle: bool, world: _Dist, epoch: int, batch_size: int):
    """A DataLoader whose order and augmentation depend only on (seed, epoch, rank)."""
    generator = torch.Generator().manual_seed(cfg.train.seed * 1000 + epoch)
    if world.world > 1:
        if shuffle:
            sampler = torch.utils.data.DistributedSampler(dataset, world.world, world.rank, shuffle=True,
                                                          seed=cfg.train.seed, drop_last=True)
            sampler.set_epoch(epoch)
        else:  # every clip exactly once over all processes (no padding), so the summed counts are exact
            sampler = list(range(world.rank, len(dataset), world.world))
    else:
        sampler = torch.utils.data.RandomSampler(dataset, generator=generator) if shuffle else None
    generator = torch.Generator().manual_seed(cfg.train.seed * 1000 + epoch * 10 + world.rank)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=shuffle,
                                       num_workers=cfg.train.workers, generator=generator, collate_fn=collate_clips,
                                       persistent_workers=False, pin_memory=torch.cuda.is_available())


def _device(cfg: Config, world: _Dist) -> torch.device:
    from tdn.api import resolve_device

    device = resolve_device(cfg.model.device)
    if device.type == "cuda" and world.world > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def train(cfg: Config, *, progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train as ``cfg`` says; see the module docstring for what is written where.

    ``stop_after``: return after this many epochs in total (the schedule still spans
    ``train.epochs``), to train in chunks with ``train.resume``.
    """
    t = cfg.train
    if t.train_list is None:
        raise ValueError("no training list: set train.train_list (or pass --train-list)")
    device = _device(cfg, _Dist())
    world = _init_distributed(device)
    device = _device(cfg, world)
    torch.manual_seed(t.seed)
    out = Path(t.output)
    train_list = Path(t.train_list)
    records = read_list(train_list, data_format=t.data_format, root=t.root or train_list.parent)
    labels, num_classes = _resolve_labels(cfg, records)
    flip_swap = parse_flip_swap(t.flip_swap, num_classes)
    spec = PreprocessSpec(cfg.model.resize_short, cfg.model.input_size, IMAGENET_MEAN, IMAGENET_STD)
    if t.time_grid:  # the model's windows span what the live scheduler's do
        clip_seconds = t.clip_seconds if t.clip_seconds is not None else cfg.pipeline.window_seconds
    else:
        clip_seconds = t.clip_seconds if t.clip_seconds is not None else (
            clip_seconds_of(records) if t.data_format == "video" else None)
    meta = ModelMeta(labels=labels, input_size=spec.input_size, resize_short=spec.resize_short,
                     mean=spec.mean, std=spec.std, clip_seconds=clip_seconds, segment_step_s=t.segment_step_s)

    common = dict(num_segments=cfg.model.num_segments, spec=spec, data_format=t.data_format,
                  image_template=t.image_template, window_seconds=clip_seconds if t.time_grid else None,
                  segment_step_s=t.segment_step_s)
    train_set = ClipDataset(records, train=True, flip=t.flip, flip_swap=flip_swap, **common)
    val_set = None
    if t.val_list:
        val_list = Path(t.val_list)
        val_records = read_list(val_list, data_format=t.data_format, root=t.root or val_list.parent)
        val_set = ClipDataset(val_records, train=False, views="1x1", limit_mb=cfg.pipeline.clip_memory_mb, **common)

    model = create_model(cfg.model.arch, num_segments=cfg.model.num_segments, num_classes=num_classes,
                         variant=cfg.model.variant, dropout=t.dropout, meta=meta)
    if t.imagenet:
        load_imagenet_init(model, t.imagenet)
    if t.init:
        load_model_init(model, t.init)
    model.to(device, memory_format=torch.channels_last)
    amp_dtype = (torch.float16 if device.type == "cuda" else torch.bfloat16) if t.amp else None
    net = model
    if world.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": t.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=t.lr, momentum=t.momentum)
    steps_per_epoch = len(train_set) // (t.batch_size * world.world)
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_set)} training clips are fewer than one batch ({t.batch_size} x {world.world})")
    total_steps = steps_per_epoch * t.epochs
    warmup = min(steps_per_epoch * t.warmup_epochs, total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, warmup, total_steps))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    start_epoch, best_top1, best = 0, -1.0, None
    if t.resume:
        state = read_file(t.resume)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"{t.resume} is not a training state (last.pt) written by tdn train")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best_top1 = int(state["epoch"]) + 1, float(state["best_top1"])
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        if start_epoch == 0 or not (out / "log.csv").is_file():
            with open(out / "log.csv", "w", newline="") as f:
                csv.writer(f).writerow(LOG_FIELDS)
        print(f"training {model.cfg.arch} {model.cfg.variant} T={model.cfg.num_segments} on {len(train_set)} clips, "
              f"{num_classes} classes, {world.world} process(es), {device}, "
              f"{'fp32' if amp_dtype is None else str(amp_dtype).removeprefix('torch.') + ' autocast'}; "
              f"{steps_per_epoch} steps/epoch x {t.epochs} epochs -> {out}", flush=True)

    for epoch in range(start_epoch, min(t.epochs, stop_after or t.epochs)):
        started = time.time()
        torch.manual_seed(t.seed * 1000 + epoch * 10 + world.rank)  # dropout, augmentation: per (seed, epoch, rank)
        net.train()
        loader = _loader(train_set, cfg, shuffle=True, world=world, epoch=epoch, batch_size=t.batch_size)
        batches = loader
        if progress and world.main:
            from tqdm import tqdm
            batches = tqdm(loader, desc=f"epoch {epoch + 1}/{t.epochs}", unit="batch", mininterval=5.0)
        loss_sum, correct, seen = 0.0, 0, 0
        for clips, target, bad in batches:
            for clip in bad:
                print(f"tdn train: warning: skipped {clip}", file=sys.stderr, flush=True)
            if clips is None:  # no readable clip in the batch
                if world.world > 1:  # the other processes wait for this one's gradients: a step cannot be skipped
                    raise ValueError("a training batch has no readable clip: " + "; ".join(map(str, bad)))
                continue
            clips, target = clips.to(device, non_blocking=True), target.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = net(clips)
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if t.clip_grad > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += float(loss.detach()) * len(target)
            correct += int((logits.argmax(1) == target).sum())
            seen += len(target)
            if progress and world.main:
                batches.set_postfix(loss=f"{loss_sum / seen:.3f}", top1=f"{correct / seen:.3f}", refresh=False)
        metrics = None
        if val_set is not None:
            val_loader = _loader(val_set, cfg, shuffle=False, world=world, epoch=epoch, batch_size=t.batch_size)
            metrics = evaluate(model, val_loader, num_classes, labels=labels, progress=progress and world.main,
                               device=device, autocast_dtype=amp_dtype)
        if world.main:
            score = metrics.top1 if metrics is not None else -float(loss_sum / max(seen, 1))
            if score > best_top1:
                best_top1, best = score, metrics
                save_model(out / "best.pt", model)
            state = {"format": STATE_FORMAT, "epoch": epoch, "best_top1": best_top1, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "scaler": scaler.state_dict()}
            write_atomically(out / "last.pt", lambda partial: torch.save(state, partial))
            row = [epoch + 1, f"{scheduler.get_last_lr()[0]:.6f}", f"{loss_sum / max(seen, 1):.4f}",
                   f"{correct / max(seen, 1):.4f}"]
            row += ([f"{metrics.loss:.4f}", f"{metrics.top1:.4f}", f"{metrics.top5:.4f}",
                     f"{metrics.mean_class_accuracy:.4f}"] if metrics is not None else ["", "", "", ""])
            row.append(f"{time.time() - started:.1f}")
            with open(out / "log.csv", "a", newline="") as f:
                csv.writer(f).writerow(row)
            print(f"epoch {epoch + 1}/{t.epochs}: train loss {row[2]} top-1 {row[3]}"
                  + (f"; val top-1 {metrics.top1:.4f} top-5 {metrics.top5:.4f}" if metrics is not None else "")
                  + f" ({row[-1]} s)", flush=True)
    if world.world > 1:
        dist.barrier()
    return TrainResult(model=model, best=best, output=out)

