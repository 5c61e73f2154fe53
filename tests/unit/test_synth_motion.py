"""The synthetic clips move as their labels say: measured from the object's coverage mask and
the frames' optical flow, not read from the generator's parameters."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from tdn import synth
from tdn.labels import load_labels

SPEC = synth.ClipSpec(fps=25, webcam=False)  # 160x120, 2.5 s, written as MPEG-4 part 2 (no H.264 loss)


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


def measure(frames: np.ndarray, masks: np.ndarray, step: int = 3) -> dict[str, float]:
    """Motion of the masked object over the clip.

    dx, dy: centroid displacement first -> last frame (px; x right, y down); area_ratio: last / first
    mask area; spin: mean angular velocity of the optical flow inside the object (rad/frame, camera
    shake removed by phase correlation; positive = clockwise on screen since y points down);
    contrast: mean |object colour - colour of the ring around it| (the mask marks something visible).
    """
    yy, xx = np.mgrid[0:masks.shape[1], 0:masks.shape[2]].astype(np.float32)
    area = masks.sum(axis=(1, 2))
    cx = (masks * xx).sum(axis=(1, 2)) / area
    cy = (masks * yy).sum(axis=(1, 2)) / area
    gray = np.stack([cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (5, 5), 0) for f in frames])
    spins = []
    for i in range(0, len(frames) - step, step):
        a, b = gray[i].astype(np.float32), gray[i + step].astype(np.float32)
        (sx, sy), _ = cv2.phaseCorrelate(a, b)
        b = cv2.warpAffine(b, np.float32([[1, 0, -sx], [0, 1, -sy]]), b.shape[::-1], borderMode=cv2.BORDER_REFLECT)
        flow = cv2.calcOpticalFlowFarneback(a.astype(np.uint8), b.astype(np.uint8), None,
                                            0.5, 3, 15, 3, 5, 1.2, 0) / step
        inside = cv2.erode((masks[i] > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        dx, dy = xx[inside] - cx[i], yy[inside] - cy[i]
        u, v = flow[..., 0][inside], flow[..., 1][inside]
        spins.append(float((dx * v - dy * u).sum() / max(float((dx**2 + dy**2).sum()), 1e-6)))
    mid = len(frames) // 2
    inside = masks[mid] > 0.5
    ring = (cv2.dilate(inside.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~(
        cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    contrast = float(np.abs(frames[mid][inside].mean(axis=0) - frames[mid][ring].mean(axis=0)).sum())
    return {"dx": float(cx[-1] - cx[0]), "dy": float(cy[-1] - cy[0]), "area_ratio": float(area[-1] / area[0]),
            "spin": float(np.mean(spins)), "contrast": contrast}


def matches(name: str, m: dict[str, float]) -> bool:
    """Does the measured motion ``m`` fit class ``name``?"""
    shift = np.hypot(m["dx"], m["dy"])
    steady_size = 0.8 < m["area_ratio"] < 1.25
    # Camera shake moves the centroid a little; a turning object's centroid circles its pivot.
    still = shift < 6 and steady_size and abs(m["spin"]) < 0.005
    turning = shift < 16 and steady_size
    horizontal = abs(m["dx"]) > 20 and abs(m["dx"]) > 3 * abs(m["dy"])
    vertical = abs(m["dy"]) > 20 and abs(m["dy"]) > 3 * abs(m["dx"])
    return {
        "moving left": horizontal and m["dx"] < 0,
        "moving right": horizontal and m["dx"] > 0,
        "moving up": vertical and m["dy"] < 0,
        "moving down": vertical and m["dy"] > 0,
        "rotating clockwise": turning and m["spin"] > 0.01,
        "rotating counterclockwise": turning and m["spin"] < -0.01,
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
        frames, masks = synth.render_clip(np.random.default_rng([5, label, n]), label, with_masks=True)
        m = measure(frames, masks)
        assert m["contrast"] > 30, m  # the object is visible against its surroundings
        assert matches(synth.CLASSES[label], m), (n, {k: round(v, 4) for k, v in m.items()})
        others = [name for name in synth.CLASSES if name != synth.CLASSES[label] and matches(name, m)]
        assert not others, (n, others, m)


def test_flip_swaps_left_right_and_rotation_sense():
    """A horizontally flipped clip measures as the class that FLIP_SWAP maps it to."""
    swap = dict(tuple(map(int, pair.split(":"))) for pair in synth.FLIP_SWAP.split(","))
    swap.update({b: a for a, b in swap.items()})
    for label in range(len(synth.CLASSES)):
        frames, masks = synth.render_clip(np.random.default_rng([11, label]), label, with_masks=True)
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
