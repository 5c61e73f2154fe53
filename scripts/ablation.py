"""Ablation of TDN's temporal modules on the synthetic motion data: ``.venv/bin/python scripts/ablation.py``.

Trains the ``tsn``, ``stdm``, ``ltdm`` and ``tdn`` variants of ResNet18, T = 8 with one recipe
and one budget (the demo's recipe, ABLATION_OVERRIDES applied to all four: fewer epochs, from
scratch, since the demo's starting point is a TDN), evaluates each best epoch on the held-out
split at ABLATION_RATE fps (1 view, time-grid windows as the live pipeline samples), and writes

- ``docs/ablation_results.json`` - every number, confusion matrices included, and where and when
  each variant ran (variants may run in separate processes or sessions: ``--variants``),
- the table between the ``ablation`` markers in ``docs/training.md``,
- ``docs/ablation_confusion.png`` - the four confusion matrices side by side.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from tdn import synth  # noqa: E402
from tdn.api import load_model  # noqa: E402
from tdn.bench import cpu_name  # noqa: E402
from tdn.config import load_config  # noqa: E402
from tdn.data import ClipDataset, collate_clips, read_list  # noqa: E402
from tdn.evaluate import evaluate  # noqa: E402
from tdn.train import train  # noqa: E402
from tdn.transforms import PreprocessSpec  # noqa: E402
from train_demo import DATA, DEMO_SETTINGS, ensure_data, pair_accuracies, test_dir  # noqa: E402

VARIANTS = ("tsn", "stdm", "ltdm", "tdn")
OUT = REPO / "runs" / "ablation"
DOC = REPO / "docs" / "training.md"
FIGURE = REPO / "docs" / "ablation_confusion.png"
RESULTS = REPO / "docs" / "ablation_results.json"
# The same budget for every variant: the demo's recipe with fewer epochs, from scratch at the
# from-scratch learning rate (the demo fine-tunes a TDN, which the other variants cannot load).
ABLATION_OVERRIDES = {"train.epochs": 8, "train.init": None, "train.lr": 0.01}
ABLATION_RATE = 25  # fps of the held-out split the variants are compared on
MARK_START, MARK_END = "<!-- ablation:start -->", "<!-- ablation:end -->"


def run_variant(variant: str) -> dict:
    settings = {**DEMO_SETTINGS, **ABLATION_OVERRIDES, "model.variant": variant,
                "train.output": str(OUT / variant)}
    start = time.time()
    train(load_config(REPO / "config.yaml", settings), progress=True)
    trained_on = {"cpu": cpu_name(), "cores": os.cpu_count(),
                  "finished_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")}
    return {**evaluate_variant(variant, time.time() - start), **trained_on}


def evaluate_variant(variant: str, train_seconds: float) -> dict:
    """The held-out metrics of ``runs/ablation/<variant>/best.pt``; ValueError if a clip cannot be read."""
    model = load_model(OUT / variant / "best.pt", precision="bf16", engine="torch")
    test_list = test_dir(ABLATION_RATE) / "test.txt"
    records = read_list(test_list, root=test_list.parent)
    dataset = ClipDataset(records, num_segments=model.cfg.num_segments, spec=PreprocessSpec.from_meta(model.meta),
                          train=False, window_seconds=DEMO_SETTINGS["train.clip_seconds"],
                          segment_step_s=model.meta.segment_step_s)
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=1, collate_fn=collate_clips)
    metrics = evaluate(model, loader, model.cfg.num_classes, labels=model.meta.labels)
    result = {"variant": variant, "train_seconds": train_seconds, **metrics.to_dict(),
              # per clip of test.txt, in its order: 1 right, 0 wrong (the paired comparison between variants)
              "correct": "".join("1" if predicted == target else "0" for target, predicted, _ in metrics.outcomes)}
    if result["count"] != len(records):
        raise ValueError(f"{variant}: only {result['count']} of the {len(records)} clips in {test_list} were "
                         f"scored; the first one skipped: {result['skipped'][0]}")
    return result


def table(results: list[dict]) -> str:
    pair_names = [f"{a} / {b}" for a, b in synth.OPPOSITE_PAIRS]
    short = ["left/right", "up/down", "cw/ccw", "approach/recede"]
    lines = ["| variant | temporal modules | test top-1 | mean class acc. | " + " | ".join(short) + " | train time |",
             "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in short) + " | ---: |"]
    modules = {"tsn": "none (frame average)", "stdm": "S-TDM", "ltdm": "L-TDM", "tdn": "S-TDM + L-TDM + temporal conv"}
    done = {r["variant"]: r for r in results}
    for variant in VARIANTS:
        r = done.get(variant)
        if r is None:
            lines.append(f"| `{variant}` | {modules[variant]} | not run yet (ablation_results.json has no entry) | | "
                         + " | ".join("" for _ in short) + " | |")
            continue
        pairs = " | ".join("-" if r["pairs"][p] is None else f"{100 * r['pairs'][p]:.1f}%"
                           for p in pair_names)
        lines.append(f"| `{r['variant']}` | {modules[r['variant']]} | {100 * r['top1']:.1f}% | "
                     f"{100 * r['mean_class_accuracy']:.1f}% | {pairs} | {r['train_seconds'] / 60:.0f} min |")
    return "\n".join(lines)


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant clips (right under one model only)."""
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n) if n else 1.0


def paired(results: list[dict]) -> str:
    """``tdn`` against each other variant on the same clips: where only one of the two is right, and the
    exact McNemar test of that split (empty when ``tdn`` or the per-clip results are missing)."""
    done = {r["variant"]: r for r in results if "correct" in r}
    if "tdn" not in done:
        return ""
    parts = []
    for variant in (v for v in VARIANTS if v != "tdn" and v in done):
        pairs = list(zip(done["tdn"]["correct"], done[variant]["correct"]))
        only_tdn, only_other = pairs.count(("1", "0")), pairs.count(("0", "1"))
        parts.append(f"`{variant}`: right where `tdn` is wrong on {only_other} clips, wrong where `tdn` is right on "
                     f"{only_tdn} (p = {mcnemar_p(only_tdn, only_other):.2g})")
    return ("Paired, clip by clip on the same held-out clips (exact McNemar test, two-sided): "
            + "; ".join(parts) + ".")


def figure(results: list[dict], path: Path, cell: int = 26) -> None:
    """The confusion matrices (row-normalised) side by side, drawn with OpenCV."""
    k = len(synth.CLASSES)
    margin, gap, title = 30, 40, 28
    panel = k * cell
    canvas = np.full((title + panel + margin + 10, margin + len(results) * (panel + gap), 3), 255, np.uint8)
    for p, r in enumerate(results):
        conf = np.array(r["confusion"], dtype=np.float64)
        conf /= np.maximum(conf.sum(1, keepdims=True), 1)
        x0 = margin + p * (panel + gap)
        cv2.putText(canvas, f"{r['variant']}  top-1 {100 * r['top1']:.0f}%", (x0, 20), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(k):
            for j in range(k):
                shade = int(255 * (1 - conf[i, j]))
                y, x = title + i * cell, x0 + j * cell
                cv2.rectangle(canvas, (x, y), (x + cell - 1, y + cell - 1), (255, shade, shade), -1)
            cv2.putText(canvas, str(i), (x0 - 14, title + i * cell + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
            cv2.putText(canvas, str(i), (x0 + i * cell + 9, title + panel + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1)
    cv2.imwrite(str(path), canvas)


def provenance(results: list[dict]) -> str:
    """Where and when each variant finished; train times compare only between runs on one machine."""
    machines: dict[str, list[str]] = {}
    for r in results:
        machines.setdefault(f"{r['cpu']}, {r['cores']} cores", []).append(f"`{r['variant']}` {r['finished_utc']} UTC")
    return "Trained on " + "; ".join(f"{where}: {', '.join(runs)}" for where, runs in machines.items()) + "."


def write_doc(results: list[dict]) -> None:
    budget = {**DEMO_SETTINGS, **ABLATION_OVERRIDES}
    body = (f"{MARK_START}\n"
            "Produced by `scripts/ablation.py` (every number in `ablation_results.json`): "
            f"ResNet18, T = {budget['model.num_segments']}, "
            f"{budget['model.input_size']} px, {budget['train.epochs']} epochs of the "
            f"{len(read_list(DATA / 'train.txt'))}-clip training split each, seed {budget['train.seed']}; "
            f"held-out split at {ABLATION_RATE} fps, {results[0]['count']} clips, 1 view, bf16 under torch, "
            "time-grid windows "
            f"with the demo's segment step ({budget['train.segment_step_s']:g} s). "
            "From scratch (no starting model). Pair columns: two-way accuracy within a "
            "mirror/reverse pair - of the test clips of either class, the fraction that score their own "
            "class above the other one (50% = cannot tell them apart).\n\n"
            f"{table(results)}\n\n{paired(results)}\n\n{provenance(results)}\n\n"
            f"![confusion matrices](ablation_confusion.png)\n\n"
            "Rows: true class, columns: predicted class, in label order "
            + ", ".join(f"{i} {c}" for i, c in enumerate(synth.CLASSES)) + f".\n{MARK_END}")
    text = DOC.read_text()
    pattern = re.compile(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{DOC} has no {MARK_START} ... {MARK_END} block to fill")
    DOC.write_text(pattern.sub(lambda _: body, text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--report-only", action="store_true", help="rewrite the table and figure from docs/ablation_results.json")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the trained runs/ablation/<variant>/best.pt again (train times kept)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    def finished() -> dict[str, dict]:  # re-read each time: variants may run in separate processes
        return {r["variant"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.is_file() else {}

    untrained = [v for v in args.variants if v not in finished()]
    if args.evaluate_only and untrained:
        parser.error(f"--evaluate-only: {', '.join(untrained)} not trained yet ({RESULTS} has no entry); "
                     "run without --evaluate-only first")
    if not args.report_only:
        ensure_data(held_out=False)
        ensure_data(held_out=True)
        for variant in args.variants:
            if args.evaluate_only:
                trained = finished()[variant]
                result = {**trained, **evaluate_variant(variant, trained["train_seconds"])}
            else:
                result = run_variant(variant)
            done = {**finished(), variant: result}
            RESULTS.write_text(json.dumps([done[v] for v in VARIANTS if v in done], indent=1, allow_nan=False))
            print(f"{variant}: test top-1 {100 * result['top1']:.1f}%", flush=True)
    done = finished()
    results = [{**done[v], "pairs": pair_accuracies(done[v])} for v in VARIANTS if v in done]
    write_doc(results)
    figure(results, FIGURE)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
