"""The synthetic clips move as their labels say: measured from the frames and the object's coverage
masks, not read from the generator's parameters."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from tdn import synth
from tdn.labels import load_labels

# 160x120, 2.5 s, written as MPEG-4 part 2 (no H.264 loss), each class at its full pace (slower paces:
# test_pace_scales_the_motion_about_its_midpoint).
SPEC = synth.ClipSpec(fps=25, webcam=False, pace_range=synth.FULL_PACE)
WEBCAM_FULL_PACE = synth.ClipSpec(pace_range=synth.FULL_PACE)  # webcam conditions, rendered at 25 fps


def read_video(path) -> tuple[np.ndarray, float]:
    """Decoded RGB frames (N, H, W, 3) and the container's frame rate."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames), fps


def mask_turn(masks: np.ndarray, step: int = 3) -> float:
    """Median turn of the object per frame (degrees, clockwise on screen positive): for each mask,
    the rotation about its centroid that best overlays it on the mask ``step`` frames later."""
    yy, xx = np.mgrid[0:masks.shape[1], 0:masks.shape[2]].astype(np.float32)
    candidates = np.linspace(-24, 24, 97)  # degrees per step, 0.5 apart
    turns = []
    for i in range(0, len(masks) - step, step):
        a, b = masks[i], masks[i + step]
        ca = ((a * xx).sum() / a.sum(), (a * yy).sum() / a.sum())
        cb = ((b * xx).sum() / b.sum(), (b * yy).sum() / b.sum())
        overlap = []
        for angle in candidates:
            mat = cv2.getRotationMatrix2D(ca, -angle, 1.0)  # cv2's positive angle turns counterclockwise
            mat[:, 2] += (cb[0] - ca[0], cb[1] - ca[1])
            turned = cv2.warpAffine(a, mat, a.shape[::-1])
            overlap.append(np.minimum(turned, b).sum() / np.maximum(turned, b).sum())
        turns.append(candidates[int(np.argmax(overlap))] / step)
    return float(np.median(turns))


def measure(frames: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Motion of the masked object over the clip.

    dx, dy: centroid displacement first -> last frame (px; x right, y down); area_ratio: last / first
    mask area; turn: :func:`mask_turn` (degrees per frame, clockwise positive); contrast: mean
    |object colour - colour of the ring around it| (the mask marks something visible).
    """
    yy, xx = np.mgrid[0:masks.shape[1], 0:masks.shape[2]].astype(np.float32)
    area = masks.sum(axis=(1, 2))
    cx = (masks * xx).sum(axis=(1, 2)) / area
    cy = (masks * yy).sum(axis=(1, 2)) / area
    mid = len(frames) // 2
    inside = masks[mid] > 0.5
    ring = (cv2.dilate(inside.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~(
        cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    contrast = float(np.abs(frames[mid][inside].mean(axis=0) - frames[mid][ring].mean(axis=0)).sum())
    return {"dx": float(cx[-1] - cx[0]), "dy": float(cy[-1] - cy[0]), "area_ratio": float(area[-1] / area[0]),
            "turn": mask_turn(masks), "contrast": contrast}


def matches(name: str, m: dict[str, float]) -> bool:
    """Does the measured motion ``m`` fit class ``name``?"""
    shift = np.hypot(m["dx"], m["dy"])
    steady_size = 0.8 < m["area_ratio"] < 1.25
    # Camera shake moves the centroid a little; a turning object's centroid circles its pivot.
    still = shift < 6 and steady_size and abs(m["turn"]) < 0.5
    turning = shift < 16 and steady_size
    horizontal = abs(m["dx"]) > 20 and abs(m["dx"]) > 3 * abs(m["dy"])
    vertical = abs(m["dy"]) > 20 and abs(m["dy"]) > 3 * abs(m["dx"])
    return {
        "moving left": horizontal and m["dx"] < 0,
        "moving right": horizontal and m["dx"] > 0,
        "moving up": vertical and m["dy"] < 0,
        "moving down": vertical and m["dy"] > 0,
        "rotating clockwise": turning and m["turn"] > 1.0,
        "rotating counterclockwise": turning and m["turn"] < -1.0,
        "approaching": shift < 6 and m["area_ratio"] > 2.0,
        "receding": shift < 6 and m["area_ratio"] < 0.5,
        "still": still,
    }[name]


def test_class_names_and_order():
    assert synth.CLASSES == ("moving left", "moving right", "moving up", "moving down", "rotating clockwise",
                             "rotating counterclockwise", "approaching", "receding", "still")


@pytest.mark.parametrize("label", range(len(synth.CLASSES)), ids=synth.CLASSES)
def test_clips_move_as_labelled(label):
    for n in range(4):
        frames, masks = synth.render_clip(np.random.default_rng([5, label, n]), label, WEBCAM_FULL_PACE,
                                          with_masks=True)
        m = measure(frames, masks)
        assert m["contrast"] > 30, m  # the object is visible against its surroundings
        assert matches(synth.CLASSES[label], m), (n, {k: round(v, 4) for k, v in m.items()})
        others = [name for name in synth.CLASSES if name != synth.CLASSES[label] and matches(name, m)]
        assert not others, (n, others, m)


@pytest.mark.parametrize("label", range(len(synth.CLASSES) - 1), ids=synth.CLASSES[:-1])
def test_pace_scales_the_motion_about_its_midpoint(label):
    """A clip at pace p follows the full-pace path around the same mid-point, p times as far:
    travel, turn and log-size change all scale by p (same random stream, so the same object)."""
    times = np.linspace(0, SPEC.seconds, 63)
    full = synth.motion(np.random.default_rng([6, label]), label, times, SPEC)
    slow = synth.motion(np.random.default_rng([6, label]), label, times,
                        synth.ClipSpec(fps=25, webcam=False, pace_range=(0.3, 0.3)))
    for f, s in ((full.cx, slow.cx), (full.cy, slow.cy), (full.angle, slow.angle),
                 (np.log(full.size), np.log(slow.size))):
        # slow = centre + 0.3 * (full - centre) with one centre for the whole clip (its mid-point)
        centre = (s.astype(np.float64) - 0.3 * f) / 0.7
        assert np.ptp(centre) < 1e-3, centre
    span = {"moving": np.ptp(full.cx) + np.ptp(full.cy), "rotating": np.ptp(full.angle),
            "approaching": np.ptp(np.log(full.size)), "receding": np.ptp(np.log(full.size))}
    assert span[synth.CLASSES[label].split()[0]] > 0.5  # the full pace does move, so the check above bites


def test_paces_are_drawn_per_clip_and_zooms_keep_a_visible_minimum():
    times = np.linspace(0, SPEC.seconds, 63)
    spec = synth.ClipSpec(fps=25, webcam=False)  # the default pace range, 0.3-1.0
    full = synth.motion(np.random.default_rng([7, 0]), 0, times, SPEC)
    travel = [np.ptp(synth.motion(np.random.default_rng([7, n]), 0, times, spec).cx) for n in range(40)]
    # the same object at full pace travels ~40-75 px; the drawn paces spread over the whole range
    assert min(travel) < 0.45 * 40 and max(travel) > 0.8 * 40 and np.ptp(full.cx) >= 40 - 8
    growth = [np.ptp(np.log(synth.motion(np.random.default_rng([7, n]), 6, times, spec).size)) for n in range(40)]
    assert min(growth) >= synth.ZOOM_MIN_PACE * np.log(1.9) - 1e-6, min(growth)


def test_flip_swaps_left_right_and_rotation_sense():
    """A horizontally flipped clip measures as the class that FLIP_SWAP maps it to."""
    swap = dict(tuple(map(int, pair.split(":"))) for pair in synth.FLIP_SWAP.split(","))
    swap.update({b: a for a, b in swap.items()})
    for label in range(len(synth.CLASSES)):
        frames, masks = synth.render_clip(np.random.default_rng([11, label]), label, WEBCAM_FULL_PACE, with_masks=True)
        m = measure(np.ascontiguousarray(frames[:, :, ::-1]), np.ascontiguousarray(masks[:, :, ::-1]))
        assert matches(synth.CLASSES[swap.get(label, label)], m), (synth.CLASSES[label], m)


def test_generate_writes_lists_labels_and_playable_videos(tmp_path):
    lists = synth.generate(tmp_path, {"train": 2, "val": 1}, seed=3, spec=SPEC)
    assert load_labels(tmp_path / "labels.txt") == list(synth.CLASSES)
    rows = [line.rsplit(maxsplit=1) for line in lists["train"].read_text().splitlines()]
    assert len(rows) == 2 * len(synth.CLASSES)
    assert sorted(int(label) for _, label in rows) == sorted(list(range(len(synth.CLASSES))) * 2)
    assert len(lists["val"].read_text().splitlines()) == len(synth.CLASSES)
    path, label = rows[-1]
    decoded, fps = read_video(tmp_path / path)
    assert fps == pytest.approx(SPEC.fps)
    assert decoded.shape == (round(SPEC.fps * SPEC.seconds), SPEC.height, SPEC.width, 3)
    # The file holds the rendered clip (lossy codec): same random stream as generate() uses.
    # Compared blurred: the codec drops most of the sensor noise.
    smooth = lambda clip: np.stack([cv2.GaussianBlur(f, (5, 5), 0) for f in clip]).astype(np.float32)  # noqa: E731
    rendered = synth.render_clip(np.random.default_rng([3, synth.SPLITS.index("train"), int(label), 1]), int(label),
                                 SPEC)
    other = synth.render_clip(np.random.default_rng([3, synth.SPLITS.index("train"), int(label), 0]), int(label), SPEC)
    error = np.abs(smooth(decoded) - smooth(rendered)).mean()
    assert error < 6
    assert error < np.abs(smooth(decoded) - smooth(other)).mean() / 4


def test_generation_is_deterministic():
    a = synth.render_clip(np.random.default_rng([3, 1]), 4)
    b = synth.render_clip(np.random.default_rng([3, 1]), 4)
    assert np.array_equal(a, b)
