"""Synthetic motion clips: 9 classes that only motion can tell apart (``tdn synth``).

Each clip shows one textured object over a textured background. The class is the object's
motion, in image coordinates as the camera captured them (left = towards x = 0, up = towards
y = 0, clockwise as seen on screen); everything else (object shape, texture, size, position,
background, lighting, sensor noise, mild camera shake) is drawn at random for every class
alike, so a single frame does not tell the class. The per-frame distribution of positions,
angles and sizes is symmetric between ``moving left``/``moving right``,
``rotating clockwise``/``counterclockwise`` and ``approaching``/``receding``: an
appearance-only model (TSN, which averages frames) cannot tell those pairs apart.

Output: ``<out>/videos/<split>/<class_index>_<n>.mp4`` (25 fps, mp4v), TDN video lists
``<out>/<split>.txt`` with rows ``videos/<split>/<file> <label>``, and ``<out>/labels.txt``.
Generation is deterministic for a given seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tdn.video import write_video

CLASSES = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "rotating clockwise",
    "rotating counterclockwise",
    "approaching",
    "receding",
    "still",
)
# Class pairs exchanged by a horizontal flip, in the ``train.flip_swap`` syntax.
FLIP_SWAP = "0:1,4:5"
# Classes that differ only by a mirror or by the direction of time: a single frame cannot tell them apart.
OPPOSITE_PAIRS = (("moving left", "moving right"), ("moving up", "moving down"),
                  ("rotating clockwise", "rotating counterclockwise"), ("approaching", "receding"))

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ClipSpec:
    """Geometry and timing of generated clips."""

    width: int = 160
    height: int = 120
    fps: int = 25
    seconds: float = 2.0
    shake_margin: int = 4  # the world is rendered this much larger on each side, then cropped

    @property
    def num_frames(self) -> int:
        return round(self.fps * self.seconds)


@dataclass(frozen=True)
class Motion:
    """Per-frame object pose: centre (world pixels), angle (degrees, clockwise on screen), size (pixels)."""

    cx: np.ndarray
    cy: np.ndarray
    angle: np.ndarray
    size: np.ndarray


def fractal_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5) -> np.ndarray:
    """Sum of upsampled random grids, halving the weight per octave; float32 (H, W) in [0, 1]."""
    field = np.zeros((height, width), np.float32)
    base = int(rng.integers(2, 5))
    for octave in range(octaves):
        cells = base * 2**octave
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        field += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) * 0.55**octave
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def _palette(rng: np.random.Generator, field: np.ndarray, colours: int = 3) -> np.ndarray:
    """Map a [0, 1] field through a random piecewise-linear colour ramp; float32 (H, W, 3) in [0, 255]."""
    stops = np.sort(rng.random(colours)).astype(np.float32)
    stops[0], stops[-1] = 0.0, 1.0
    ramp = rng.uniform(0, 255, (colours, 3)).astype(np.float32)
    return np.stack([np.interp(field, stops, ramp[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random natural-looking or patterned texture; float32 (H, W, 3) in [0, 255]."""
    kind = rng.choice(["fractal", "stripes", "checker", "gradient"], p=[0.55, 0.15, 0.1, 0.2])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "fractal":
        field = fractal_noise(rng, height, width, octaves=int(rng.integers(3, 6)))
    elif kind == "stripes":
        theta = rng.uniform(0, math.pi)
        period = rng.uniform(4, 14)
        field = 0.5 + 0.5 * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)
        field = 0.7 * field + 0.3 * fractal_noise(rng, height, width, octaves=3)
    elif kind == "checker":
        cell = rng.uniform(4, 12)
        field = ((xx // cell + yy // cell) % 2).astype(np.float32)
        field = 0.75 * field + 0.25 * fractal_noise(rng, height, width, octaves=3)
    else:
        theta = rng.uniform(0, 2 * math.pi)
        ramp = xx * math.cos(theta) + yy * math.sin(theta)
        field = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        field = 0.6 * field + 0.4 * fractal_noise(rng, height, width, octaves=4)
    return _palette(rng, field.astype(np.float32), colours=int(rng.integers(2, 5)))


def sprite(rng: np.random.Generator, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A textured object with no rotational symmetry: (rgb float32 (S, S, 3), alpha float32 (S, S))."""
    mask = np.zeros((size, size), np.uint8)
    c = size / 2
    kind = rng.choice(["polygon", "ellipse", "blob"])
    if kind == "polygon":
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.25, 0.48, n) * size
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [pts.round().astype(np.int32)], 255)
    elif kind == "ellipse":
        axes = (int(size * rng.uniform(0.3, 0.47)), int(size * rng.uniform(0.15, 0.3)))
        cv2.ellipse(mask, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    else:
        field = fractal_noise(rng, size, size, octaves=2)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        radial = np.hypot(xx - c, yy - c) / (size / 2)
        score = field - radial * 0.9
        mask = (score > np.quantile(score, 1 - rng.uniform(0.2, 0.4))).astype(np.uint8) * 255
    if mask.mean() < 0.12 * 255:  # a sliver: too little to see turning or growing
        mask[:] = 0
        cv2.ellipse(mask, (int(c), int(c)), (int(size * 0.42), int(size * 0.25)), float(rng.uniform(0, 180)),
                    0, 360, 255, -1)
    # A contrasting notch makes the orientation visible whatever the shape.
    notch_angle = rng.uniform(0, 2 * math.pi)
    notch = (int(c + 0.25 * size * math.cos(notch_angle)), int(c + 0.25 * size * math.sin(notch_angle)))
    rgb = texture(rng, size, size)
    cv2.circle(rgb, notch, max(2, size // 12), tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0)
    return rgb, alpha


def _contrast_with(rng: np.random.Generator, rgb: np.ndarray, backdrop: np.ndarray,
                   min_distance: float = 90.0) -> np.ndarray:
    """Recolour a texture around a random mean colour at least ``min_distance`` (RGB) from ``backdrop``."""
    for _ in range(50):
        colour = rng.uniform(20, 235, 3)
        if np.linalg.norm(colour - backdrop) >= min_distance:
            break
    else:  # backdrop near the middle of the cube: take the farthest corner
        colour = np.where(backdrop > 127, 20.0, 235.0)
    detail = (rgb - rgb.reshape(-1, 3).mean(axis=0)) * rng.uniform(0.4, 0.8)
    return np.clip(detail + colour, 0, 255).astype(np.float32)


def motion(rng: np.random.Generator, label: int, spec: ClipSpec) -> Motion:
    """Per-frame pose for class ``label`` (index into :data:`CLASSES`)."""
    name = CLASSES[label]
    n = spec.num_frames
    m = spec.shake_margin
    # Progress along the clip with a mild random ease in/out, 0 -> 1.
    t = np.linspace(0.0, 1.0, n)
    ease = rng.uniform(-0.15, 0.15)
    t = t + ease * np.sin(math.pi * t)
    size = float(rng.uniform(24, 48))
    sizes = np.full(n, size)
    angles = np.full(n, rng.uniform(0, 360))
    cx0 = m + rng.uniform(0.3, 0.7) * spec.width
    cy0 = m + rng.uniform(0.3, 0.7) * spec.height
    cx, cy = np.full(n, cx0), np.full(n, cy0)
    if name.startswith("moving"):
        distance = rng.uniform(35, 70)
        sign = -1.0 if name in ("moving left", "moving up") else 1.0
        travel = sign * distance * (t - 0.5)  # centred on the mid-point: positions symmetric in direction
        drift = rng.uniform(-4, 4) * (t - 0.5)
        if name in ("moving left", "moving right"):
            cx0 = m + rng.uniform(0.5 * spec.width - 25, 0.5 * spec.width + 25)
            cx, cy = cx0 + travel, cy0 + drift
        else:
            cy0 = m + rng.uniform(0.5 * spec.height - 15, 0.5 * spec.height + 15)
            cx, cy = cx0 + drift, cy0 + travel
    elif name.startswith("rotating"):
        sweep = rng.uniform(100, 260)
        sign = 1.0 if name == "rotating clockwise" else -1.0
        angles = angles + sign * sweep * (t - 0.5)
    elif name in ("approaching", "receding"):
        ratio = rng.uniform(1.7, 2.5)
        small = rng.uniform(18, 60 / ratio)
        grow = np.exp(np.log(ratio) * t)
        sizes = small * (grow if name == "approaching" else grow[::-1])
    return Motion(cx=np.asarray(cx, np.float32), cy=np.asarray(cy, np.float32),
                  angle=np.asarray(angles, np.float32), size=np.asarray(sizes, np.float32))


def _paste(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, cx: float, cy: float,
           angle: float, size: float) -> np.ndarray:
    """Alpha-blend the sprite into ``canvas`` (in place) at centre (cx, cy), rotated clockwise by
    ``angle``; returns the sprite's coverage on the canvas, float32 (H, W) in [0, 1]."""
    s = rgb.shape[0]
    # cv2 angles turn counterclockwise on screen (y points down), so negate for clockwise.
    mat = cv2.getRotationMatrix2D((s / 2, s / 2), -angle, size / s)
    mat[:, 2] += (cx - s / 2, cy - s / 2)
    h, w = canvas.shape[:2]
    warped = cv2.warpAffine(rgb, mat, (w, h), flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(alpha, mat, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    canvas *= 1.0 - a
    canvas += warped * a
    return a[..., 0]


def render_clip(rng: np.random.Generator, label: int, spec: ClipSpec = ClipSpec(), *,
                with_masks: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One clip of class ``label``: uint8 (num_frames, H, W, 3) RGB.

    With ``with_masks`` also the moving object's coverage per frame, float32 (num_frames, H, W),
    for tests that measure the motion.
    """
    m = spec.shake_margin
    world_h, world_w = spec.height + 2 * m, spec.width + 2 * m
    background = texture(rng, world_h, world_w)
    if rng.random() < 0.5:  # a static distractor, in every class alike
        d_rgb, d_alpha = sprite(rng)
        _paste(background, d_rgb, d_alpha, rng.uniform(0, world_w), rng.uniform(0, world_h),
               rng.uniform(0, 360), rng.uniform(14, 34))
    obj_rgb, obj_alpha = sprite(rng)
    obj_rgb = _contrast_with(rng, obj_rgb, background.reshape(-1, 3).mean(axis=0))
    pose = motion(rng, label, spec)

    n = spec.num_frames
    yy, xx = np.mgrid[0:spec.height, 0:spec.width].astype(np.float32)
    light_dir = rng.uniform(0, 2 * math.pi)
    light = 1.0 + rng.uniform(0, 0.35) * ((xx * math.cos(light_dir) + yy * math.sin(light_dir))
                                           / max(spec.width, spec.height) - 0.5)
    tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    gain = rng.uniform(0.6, 1.25)
    flicker_amp, flicker_freq, flicker_phase = rng.uniform(0, 0.06), rng.uniform(0.2, 1.5), rng.uniform(0, 6.3)
    noise_sigma = rng.uniform(1.0, 6.0)
    shake_step = rng.uniform(0, 0.3)  # pixels per frame, a random walk
    shake = np.cumsum(rng.normal(0, shake_step, (n, 2)), axis=0)
    shake = np.clip(shake - shake.mean(axis=0), -m, m)

    frames = np.empty((n, spec.height, spec.width, 3), np.uint8)
    masks = np.empty((n, spec.height, spec.width), np.float32)
    for i in range(n):
        world = background.copy()
        coverage = _paste(world, obj_rgb, obj_alpha, float(pose.cx[i]), float(pose.cy[i]),
                          float(pose.angle[i]), float(pose.size[i]))
        ox, oy = m + shake[i]
        shift = np.float32([[1, 0, -ox], [0, 1, -oy]])
        view = cv2.warpAffine(world, shift, (spec.width, spec.height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
        masks[i] = cv2.warpAffine(coverage, shift, (spec.width, spec.height), flags=cv2.INTER_LINEAR)
        level = gain * (1 + flicker_amp * math.sin(2 * math.pi * flicker_freq * i / spec.fps + flicker_phase))
        view = view * (light * level)[..., None] * tint
        view += rng.normal(0, noise_sigma, view.shape).astype(np.float32)
        frames[i] = np.clip(view, 0, 255).astype(np.uint8)
    return (frames, masks) if with_masks else frames


def generate(out_dir: str | Path, counts: dict[str, int], *, seed: int = 0,
             spec: ClipSpec = ClipSpec()) -> dict[str, Path]:
    """Write ``counts[split]`` clips per class for each split; returns {split: list file}.

    Every clip has its own random stream derived from (seed, split, class, n), so a split's
    clips do not change when another split's count does.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "labels.txt").write_text("".join(f"{name}\n" for name in CLASSES), encoding="utf-8")
    lists = {}
    for split, per_class in counts.items():
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        rows = []
        for n in range(per_class):
            for label in range(len(CLASSES)):
                rng = np.random.default_rng([seed, SPLITS.index(split), label, n])
                rel = Path("videos") / split / f"{label}_{n:05d}.mp4"
                write_video(out_dir / rel, render_clip(rng, label, spec), spec.fps)
                rows.append(f"{rel.as_posix()} {label}\n")
        lists[split] = out_dir / f"{split}.txt"
        lists[split].write_text("".join(rows), encoding="utf-8")
    return lists

