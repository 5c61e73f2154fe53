"""``tdn eval``: a model's accuracy on a TDN-format list (:func:`tdn.evaluate.evaluate`)."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch

from cli.options import add_setting_flags, bounded, config_from_args
from cli.predict import engine_line
from tdn.config import SETTINGS
from tdn.evaluate import PREDICTION_COLUMNS, clip_predictions, evaluate
from tdn.files import write_atomically
from tdn.registry import VIEWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, "model.weights", "train.val_list", "train.root", "train.data_format", "model.precision",
                      "model.device", "model.engine", rename={"train.val_list": "--list"})
    parser.add_argument("--views", default="1x1", choices=VIEWS,
                        help="test views: temporal clips x crops (default: %(default)s)")
    parser.add_argument("--batch-size", type=bounded(int, SETTINGS["train.batch_size"].range), default=4,
                        help="clips per model call (default: %(default)s)")
    parser.add_argument("--predictions", type=Path, metavar="FILE.csv",
                        help="also write one row per clip of the list: true and predicted class, the prediction's "
                             "probability, whether it is right, or why the clip could not be read")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def main(args: argparse.Namespace) -> int:
    from tdn.api import DEMO_WEIGHTS, load_model
    from tdn.data import ClipDataset, collate_clips, read_list
    from tdn.transforms import PreprocessSpec

    cfg = config_from_args(args)
    if cfg.train.val_list is None:
        raise ValueError("no list to evaluate: pass --list FILE (or set train.val_list)")
    if args.predictions is not None and args.predictions.is_dir():  # said now, not after the whole evaluation
        raise ValueError(f"--predictions {args.predictions} is a directory; give a file name such as "
                         f"{args.predictions / 'predictions.csv'}")
    model = load_model(cfg.model.weights or DEMO_WEIGHTS, num_segments=cfg.model.num_segments,
                       device=cfg.model.device, precision=cfg.model.precision, labels=cfg.model.labels,
                       engine=cfg.model.engine)
    print(f"tdn eval: {engine_line(model)}", file=sys.stderr, flush=True)
    list_path = Path(cfg.train.val_list)
    root = cfg.train.root or list_path.parent
    records = read_list(list_path, data_format=cfg.train.data_format, root=root)
    num_classes = model.cfg.num_classes
    bad = sorted({r.label for r in records if r.label >= num_classes})
    if bad:
        raise ValueError(f"{list_path} has labels {bad[:5]} but the model has {num_classes} classes")
    dataset = ClipDataset(records, num_segments=model.cfg.num_segments, spec=PreprocessSpec.from_meta(model.meta),
                          train=False, views=args.views, data_format=cfg.train.data_format,
                          image_template=cfg.train.image_template, limit_mb=cfg.pipeline.clip_memory_mb,
                          window_seconds=cfg.pipeline.window_seconds if cfg.train.time_grid else None,
                          segment_step_s=model.meta.segment_step_s)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, num_workers=cfg.train.workers,
                                         collate_fn=collate_clips)
    metrics = evaluate(model, loader, num_classes, labels=model.meta.labels, progress=not args.json,
                       device=model.device)
    if metrics.count == 0:
        shown = "; ".join(map(str, metrics.skipped[:5])) + ("; ..." if len(metrics.skipped) > 5 else "")
        raise ValueError(f"no clip of {list_path} could be read ({len(metrics.skipped)} tried): {shown}")
    if metrics.skipped and args.json:
        print(f"tdn eval: warning: skipped {len(metrics.skipped)} unreadable clip(s): "
              + "; ".join(map(str, metrics.skipped)), file=sys.stderr)
    if args.json:
        print(json.dumps({"weights": str(cfg.model.weights or DEMO_WEIGHTS), "list": str(list_path),
                          "views": args.views, "engine": model.engine, "precision": model.precision,
                          "engine_choice": model.engine_choice, **metrics.to_dict()}, allow_nan=False))
    else:
        print(metrics.format())
    if args.predictions:  # after the results are out: a file that cannot be written loses nothing else
        write_predictions(args.predictions, clip_predictions(records, metrics))
    return 0


def write_predictions(path: Path, rows: list[dict]) -> None:
    """:func:`tdn.evaluate.clip_predictions`'s rows as CSV (empty cells where a clip could not be read)."""
    def write(partial: Path) -> None:
        with open(partial, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=PREDICTION_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)
