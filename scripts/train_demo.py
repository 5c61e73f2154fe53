"""Reproduce the bundled demo model: ``.venv/bin/python scripts/train_demo.py``.

1. ``tdn synth`` - the synthetic webcam-like motion dataset: training and validation clips at
   capture rates drawn from 8-30 fps (seed 0), the held-out split at 10, 15, 25 and 30 fps
   (seed 1); each set is skipped when already there,
2. ``tdn train`` - TDN-ResNet18, T = 8, at DEMO_SETTINGS (windows sampled on the live
   scheduler's time grid, fine-tuned from the previous demo model ``INIT``), one process, seeded,
3. packaging - the best epoch stored in half precision as ``weights/demo/tdn_r18_synth.pt``
   with ``labels.txt``,
4. evaluation of the shipped file and of ``INIT`` on the held-out split at each rate (time-grid
   windows, as the live pipeline samples), a real-time check (window latency in bf16), and
   ``weights/demo/CARD.md`` written from those measurements.

``--package-only`` redoes steps 3-4 from an existing run.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tdn import synth  # noqa: E402
from tdn.api import DEMO_WEIGHTS, load_model  # noqa: E402
from tdn.bench import cpu_name  # noqa: E402
from tdn.checkpoint import save_model  # noqa: E402
from tdn.config import load_config  # noqa: E402
from tdn.engines import device_kind  # noqa: E402
from tdn.evaluate import Metrics  # noqa: E402

DATA = REPO / "runs" / "synth-webcam"
RUN = REPO / "runs" / "demo"
COUNTS = {"train": 200, "val": 20}  # clips per class, capture rates drawn from 8-30 fps
TEST_RATES = (10, 15, 25, 30)  # the held-out split: TEST_COUNT clips per class at each of these rates
TEST_COUNT = 50
SEED = 0
TEST_SEED = 1  # the held-out clips come from another seed than training and validation
WORKERS = 2  # processes rendering clips
# The starting point: the previous demo model, and where it came from (its card is in git history).
INIT = REPO / "weights" / "demo" / "init" / "tdn_r18_synth_v6.pt"
INIT_ORIGIN = ("demo model v6: 20 epochs at lr 0.01 (1 warm-up epoch, cosine) on this data by this script at "
               "commit 770f39b, from the first demo model `weights/demo/init/tdn_r18_synth_v1.pt` (trained 43 min "
               "from scratch on 25 fps clips, sampled as TSN)")
# Every setting of the demo run; the same keys work as `tdn train --set KEY=VALUE`.
DEMO_SETTINGS = {
    "model.arch": "resnet18", "model.variant": "tdn", "model.num_segments": 8,
    "model.input_size": 96, "model.resize_short": 112,
    "train.train_list": str(DATA / "train.txt"), "train.val_list": str(DATA / "val.txt"),
    "train.output": str(RUN), "train.epochs": 8, "train.batch_size": 8, "train.lr": 0.003,
    "train.warmup_epochs": 1, "train.dropout": 0.2, "train.workers": 1, "train.seed": SEED,
    "train.flip_swap": synth.FLIP_SWAP, "train.time_grid": True, "train.clip_seconds": 2.0,
    "train.segment_step_s": 0.1,
    "train.init": str(INIT),
}


def test_dir(fps: int) -> Path:
    return DATA / f"test_{fps}fps"


def ensure_data(held_out: bool) -> None:
    """Training and validation clips (random rates), or the held-out split at each of TEST_RATES."""
    if held_out:
        sets = [(test_dir(fps), {"test": TEST_COUNT}, TEST_SEED, synth.ClipSpec(fps=fps)) for fps in TEST_RATES]
    else:
        sets = [(DATA, COUNTS, SEED, synth.ClipSpec())]
    for folder, counts, seed, spec in sets:
        lists = [folder / f"{split}.txt" for split in counts]
        expected = [n * len(synth.CLASSES) for n in counts.values()]
        if all(p.is_file() and len(p.read_text().splitlines()) == n for p, n in zip(lists, expected)):
            print(f"synthetic data already in {folder}")
            continue
        synth.generate(folder, counts, seed=seed, spec=spec, workers=WORKERS)


def window_latency_ms(weights: Path, engine: str, runs: int = 30) -> tuple[float, float, str]:
    """(median, fastest) time in ms of one window (batch 1, T segments) through the shipped model in bf16
    under ``engine`` (``auto``: what the app picks on this CPU), and the engine that ran."""
    model = load_model(weights, precision="bf16", engine=engine)
    size = model.meta.input_size
    x = torch.randn(1, model.cfg.num_segments, 5, 3, size, size)
    times = []
    with torch.inference_mode():
        for i in range(runs + 3):
            start = time.perf_counter()
            model(x)
            if i >= 3:
                times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), min(times), model.engine


def latency_line(latency_ms: dict[str, tuple[float, float, str]]) -> str:
    """``torch: median 42 ms, fastest 38 ms; auto (openvino): ...`` from {asked engine: window_latency_ms(...)}."""
    return "; ".join(f"{asked}{'' if ran == asked else f' ({ran})'}: median {median:.0f} ms, fastest {fastest:.0f} ms"
                     for asked, (median, fastest, ran) in latency_ms.items())


def evaluate_file(weights: Path, list_file: Path, views: str) -> dict:
    cmd = [sys.executable, "-m", "cli", "eval", "--weights", str(weights), "--list", str(list_file),
           "--views", views, "--precision", "bf16", "--json", "--set", "train.workers=1",
           "--set", "train.time_grid=true", "--set", f"pipeline.window_seconds={DEMO_SETTINGS['train.clip_seconds']}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


def confusion_table(result: dict) -> str:
    labels = result["labels"]
    head = "| true \\ predicted | " + " | ".join(str(i) for i in range(len(labels))) + " | recall |"
    rows = [head, "|" + " --- |" * (len(labels) + 2)]
    for i, (name, counts) in enumerate(zip(labels, result["confusion"])):
        recall = result["per_class"][name]
        rows.append(f"| {i} {name} | " + " | ".join(str(c) for c in counts) + f" | {100 * recall:.1f}% |")
    return "\n".join(rows)


def pair_accuracies(result: dict) -> dict[str, float | None]:
    """Two-way accuracy within each opposite pair (``tdn.synth.OPPOSITE_PAIRS``) of an evaluation result."""
    metrics = Metrics(torch.tensor(result["confusion"]), outranks=torch.tensor(result["outranks"]))
    index = {name: i for i, name in enumerate(synth.CLASSES)}
    return {f"{a} / {b}": metrics.pair_accuracy(index[a], index[b]) for a, b in synth.OPPOSITE_PAIRS}


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def rate_table(results: dict[int, dict], previous: dict[int, dict]) -> str:
    """Per-class recall (rows) at each rate (columns), top-1 and the starting model's top-1 on the same clips."""
    rates = list(results)
    rows = ["| class | " + " | ".join(f"{fps} fps" for fps in rates) + " |", "| --- |" + " ---: |" * len(rates)]
    for name in synth.CLASSES:
        rows.append(f"| {name} | " + " | ".join(percent(results[fps]["per_class"][name]) for fps in rates) + " |")
    rows.append("| **top-1** | " + " | ".join(f"**{percent(results[fps]['top1'])}**" for fps in rates) + " |")
    rows.append(f"| starting model (`{INIT.name}`), top-1 | " + " | ".join(percent(previous[fps]["top1"]) for fps in rates) + " |")
    for pair in pair_accuracies(results[rates[0]]):
        rows.append(f"| pair {pair} | " + " | ".join(percent(pair_accuracies(results[fps])[pair]) for fps in rates)
                    + " |")
    return "\n".join(rows)


def confusion_pairs(results: dict[int, dict], top: int = 8) -> str:
    """The most frequent (true -> predicted) mistakes summed over the rates, with the count at each rate."""
    labels = synth.CLASSES
    totals = {}
    for fps, result in results.items():
        for i, row in enumerate(result["confusion"]):
            for j, count in enumerate(row):
                if i != j and count:
                    totals.setdefault((i, j), {})[fps] = count
    worst = sorted(totals.items(), key=lambda item: -sum(item[1].values()))[:top]
    if not worst:
        return "No mistakes at any rate."
    rows = ["| true -> predicted | " + " | ".join(f"{fps} fps" for fps in results) + " |",
            "| --- |" + " ---: |" * len(results)]
    for (i, j), counts in worst:
        rows.append(f"| {labels[i]} -> {labels[j]} | " + " | ".join(str(counts.get(fps, 0)) for fps in results) + " |")
    return "\n".join(rows)


def write_card(results: dict[int, dict], previous: dict[int, dict], latency_ms: dict[str, tuple[float, float, str]],
               note: str = "") -> None:
    log = (RUN / "log.csv").read_text().strip()
    train_minutes = sum(float(line.rsplit(",", 1)[1]) for line in log.splitlines()[1:]) / 60
    size = DEMO_SETTINGS["model.input_size"]
    step = DEMO_SETTINGS["train.segment_step_s"]
    period_ms = 1000 * DEMO_SETTINGS["train.clip_seconds"] / DEMO_SETTINGS["model.num_segments"]
    settings = "\n".join(f"    --set {k}={os.path.relpath(v, REPO) if k == 'train.init' else v}"
                         for k, v in DEMO_SETTINGS.items() if not k.endswith(("_list", ".output")))
    size_mb = DEMO_WEIGHTS.stat().st_size / 1e6
    count = next(iter(results.values()))["count"]
    engine = next(iter(results.values()))["engine"]  # tdn eval's auto engine on this CPU
    lowest = min(results)
    card = f"""# Demo model: TDN-ResNet18, T = 8, synthetic webcam-like motion

`{os.path.relpath(DEMO_WEIGHTS, REPO)}` ({size_mb:.1f} MB, float16 storage, loaded as float32) and
`labels.txt`: what `tdn app`, `tdn predict` and `tdn stream` use when no weights are given.
It recognises 9 motion classes of one object in view - not human actions:
{", ".join(f"`{c}`" for c in synth.CLASSES)}.

## Data
`tdn synth` (`tdn.synth`), seed {SEED}: {COUNTS['train']} training and {COUNTS['val']} validation clips per
class; the held-out split: seed {TEST_SEED}, {TEST_COUNT} clips per class at each of
{", ".join(map(str, TEST_RATES))} fps. 160x120, 2.5 s per clip. One textured object (random shape, texture,
colour, size; an off-centre disc in the opposite colour makes its orientation visible) on a
procedural background, as a webcam captures it: a capture rate drawn from 8-30 fps (training)
with irregular frame times, motion blur over a random exposure (up to 0.9 of a frame period),
exposure and white-balance drift, flicker, sensor noise, camera shake, 0-3 static distractors,
sometimes a static bar occluding part of the scene and a small second object drifting slowly;
H.264 at CRF 20-36. Each clip moves at a pace of {synth.ClipSpec().pace_range[0]}-{synth.ClipSpec().pace_range[1]} of its class's full motion
(zooms from {synth.ZOOM_MIN_PACE}), so speeds span ~3x. Only the object's motion tells the class (directions as the camera captured
them); `still` objects tremble by a fraction of a pixel. See docs/training.md.

## Training
One command, seeded: `.venv/bin/python scripts/train_demo.py` (runs `tdn synth`, then
`tdn train` with these settings, then this card). Settings:

```
{settings}
```
Windows are sampled as the live scheduler samples them (`train.time_grid`): 8 centres 0.25 s
apart by frame time, each segment the captured frame nearest to its centre and 2 neighbours on
each side, the captures nearest to {step:g} s and {2 * step:g} s before and after it
(`train.segment_step_s`, stored with the model; each at least one capture beyond the previous, so
adjacent frames below {1 / step:g} fps): a segment spans about {4 * step:g} s at every rate from
{1 / step:g} fps up. The window is at a random place in the clip (the middle one for validation
and test).
Fine-tuned from `{os.path.relpath(INIT, REPO)}`, {INIT_ORIGIN}; SGD momentum 0.9, weight decay 5e-4, 1 warm-up epoch then cosine,
bf16 autocast on the CPU, horizontal flips that swap left/right and clockwise/counterclockwise
labels. The best validation epoch is shipped. Training took {train_minutes:.0f} min (sum of the epochs'
times in the log) on {platform.machine()}, 2 shared cores, {datetime.date.today().isoformat()}.{" " + note if note else ""}

Per-epoch log (`runs/demo/log.csv`):
```
{log}
```

## Held-out accuracy (the shipped file, {count} clips per rate, 1 view, bf16 under {engine}, time-grid windows)
Recall per class at each capture rate; the window is what the live scheduler hands the model
(2 s, T = 8, nearest frames by time, the model's segment step) from the middle of each clip. The starting model's top-1
is on the same clips and windows.

{rate_table(results, previous)}

Most frequent confusions (true -> predicted, clips out of {TEST_COUNT} per class):

{confusion_pairs(results)}

Confusion matrix at {lowest} fps:

{confusion_table(results[lowest])}

## Speed
One full window (1 x 8 segments x 5 frames x {size}x{size}) through the shipped model in bf16 on
this CPU, {cpu_name()} ({device_kind(torch.device("cpu"))}), over 30 runs (measured by the script):
{latency_line(latency_ms)}
(`auto`: the engine `model.engine: auto` picks on this CPU, what the app runs; docs/engines.md). The live pipeline asks for a window per new segment
centre, every {period_ms:.0f} ms with a 2 s window and T = 8 (and reuses the cached per-segment
features of the other 7): the model keeps up when the window time is below that.

## Limits
Trained on synthetic shapes only: on camera footage it reacts to the dominant motion in view,
and anything else (people, several fast-moving things) is outside what it has seen.
"""
    (DEMO_WEIGHTS.parent / "CARD.md").write_text(card)


def evaluate_rates(weights: Path) -> dict[int, dict]:
    return {fps: evaluate_file(weights, test_dir(fps) / "test.txt", "1x1") for fps in TEST_RATES}


def package(note: str = "") -> None:
    best = load_model(RUN / "best.pt", rewrite=False)  # eval mode, fp32, as defined: savable
    DEMO_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    save_model(DEMO_WEIGHTS, best, half=True)
    (DEMO_WEIGHTS.parent / "labels.txt").write_text("".join(f"{c}\n" for c in synth.CLASSES))
    results = evaluate_rates(DEMO_WEIGHTS)
    previous = evaluate_rates(INIT)
    (RUN / "test_result.json").write_text(json.dumps({"shipped": results, "starting": previous}, indent=1,
                                                     allow_nan=False))
    latency = {engine: window_latency_ms(DEMO_WEIGHTS, engine) for engine in ("torch", "auto")}
    write_card(results, previous, latency, note)
    print(f"shipped {DEMO_WEIGHTS}: test top-1 " + ", ".join(f"{100 * r['top1']:.1f}% at {fps} fps"
                                                            for fps, r in results.items())
          + f"; window (bf16) {latency_line(latency)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package-only", action="store_true", help="skip data and training; package runs/demo")
    parser.add_argument("--note", default="", help="a remark about the run for the card")
    args = parser.parse_args()
    if not args.package_only:
        ensure_data(held_out=False)
        if RUN.exists():
            shutil.rmtree(RUN)
        from tdn.train import train

        train(load_config(REPO / "config.yaml", DEMO_SETTINGS), progress=True)
    ensure_data(held_out=True)
    package(args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
