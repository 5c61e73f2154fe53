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
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tdn.video import write_h264, write_video

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
# The slowest zoom: 1.9x growth at full pace is 1.47x at 0.6 (a 20 px object's edge moves ~5 px in 2.5 s).
ZOOM_MIN_PACE = 0.6
# ``ClipSpec.pace_range`` for clips that set their speed by their length (tests, examples, benchmarks).
FULL_PACE = (1.0, 1.0)


@dataclass(frozen=True)
class ClipSpec:
    """Geometry and timing of generated clips.

    ``fps`` None: each clip draws its capture rate from ``fps_range`` (whole frames per second);
    frame times jitter around ``k / fps`` by up to ``max_jitter`` of a frame period (std), as
    webcams deliver them; the file stores the nominal rate. Each clip also draws its pace from
    ``pace_range``, so speed is not tied to the clip's length.
    """

    width: int = 160
    height: int = 120
    fps: int | None = None
    fps_range: tuple[int, int] = (8, 30)
    seconds: float = 2.5  # longer than the 2 s live window, so a time-grid window fits at 8 fps
    max_jitter: float = 0.2
    # Fraction of a class's full motion (travel, sweep, zoom) made over the clip, drawn per clip: at
    # 0.3 an object crosses the same ground ~3x slower, as a slow hand or a far object does.
    pace_range: tuple[float, float] = (0.3, 1.0)
    shake_margin: int = 4  # the world is rendered this much larger on each side, then cropped
    webcam: bool = True  # motion blur, exposure/white-balance drift, clutter, occlusion, a slow second object


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
    rgb = texture(rng, size, size)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0)
    return rgb, alpha


def mark_orientation(rng: np.random.Generator, rgb: np.ndarray) -> None:
    """Paint a disc in the colour opposite to the sprite's mean off its centre (in place), so that
    turning is visible whatever the shape or texture (an ellipse or a smooth blob turns unseen)."""
    size = rgb.shape[0]
    angle = rng.uniform(0, 2 * math.pi)
    centre = (int(size / 2 + 0.26 * size * math.cos(angle)), int(size / 2 + 0.26 * size * math.sin(angle)))
    colour = 255.0 - rgb.reshape(-1, 3).mean(axis=0)
    cv2.circle(rgb, centre, size // 9, tuple(float(v) for v in colour), -1)


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


def motion(rng: np.random.Generator, label: int, times: np.ndarray, spec: ClipSpec) -> Motion:
    """Pose at capture ``times`` (seconds, 0 .. ``spec.seconds``) for class ``label`` (index into :data:`CLASSES`).

    The motion is a smooth function of time, so frames at any rate, jittered or blurred, sample
    the same trajectory. Rotating objects are large and sweep far (a small slowly turning object
    shows almost no change between neighbouring frames); ``still`` objects tremble by a fraction
    of a pixel and a degree, as a hand-held or resting object on a webcam does.
    """
    name = CLASSES[label]
    m = spec.shake_margin
    # Progress along the clip with a mild random ease in/out, 0 -> 1 ...
    t = np.clip(np.asarray(times, np.float64) / spec.seconds, 0.0, 1.0)
    t = t + rng.uniform(-0.15, 0.15) * np.sin(math.pi * t)
    # ... of which a slower clip makes only the middle part: same path, same mid-point, less of it.
    t = 0.5 + (t - 0.5) * _pace(rng, name, spec)
    n = len(t)
    size = float(rng.uniform(28, 50))
    sizes = np.full(n, size)
    angles = np.full(n, rng.uniform(0, 360))
    cx0 = m + rng.uniform(0.3, 0.7) * spec.width
    cy0 = m + rng.uniform(0.3, 0.7) * spec.height
    cx, cy = np.full(n, cx0), np.full(n, cy0)
    if name.startswith("moving"):
        distance = rng.uniform(40, 75)
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
        sizes = np.full(n, rng.uniform(40, 60))
        sweep = rng.uniform(180, 360)
        sign = 1.0 if name == "rotating clockwise" else -1.0
        angles = angles + sign * sweep * (t - 0.5)
    elif name in ("approaching", "receding"):
        ratio = rng.uniform(1.9, 2.8)
        small = rng.uniform(20, 66 / ratio)
        grow = np.exp(np.log(ratio) * t)
        sizes = small * (grow if name == "approaching" else ratio / grow)
    else:  # still: a tremor well below any class's motion
        cx = cx + rng.normal(0, rng.uniform(0, 0.3), n)
        cy = cy + rng.normal(0, rng.uniform(0, 0.3), n)
        angles = angles + rng.normal(0, rng.uniform(0, 0.5), n)
    return Motion(cx=np.asarray(cx, np.float32), cy=np.asarray(cy, np.float32),
                  angle=np.asarray(angles, np.float32), size=np.asarray(sizes, np.float32))


def _pace(rng: np.random.Generator, name: str, spec: ClipSpec) -> float:
    """The clip's pace, drawn from ``spec.pace_range`` (no draw when the range is one value, so fixed-pace
    clips are the clips of the generator before paces). Zooms start at ZOOM_MIN_PACE: slower, a
    small object's edge would move less than a ``still`` object trembles."""
    low, high = spec.pace_range
    if name in ("approaching", "receding"):
        low = min(max(low, ZOOM_MIN_PACE), high)
    return low if low == high else float(rng.uniform(low, high))


def _paste(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, cx: float, cy: float,
           angle: float, size: float) -> np.ndarray:
    """Alpha-blend the sprite into ``canvas`` (in place) at centre (cx, cy), rotated clockwise by
    ``angle``; returns the sprite's coverage on the canvas, float32 (H, W) in [0, 1]."""
    s = rgb.shape[0]
    h, w = canvas.shape[:2]
    coverage = np.zeros((h, w), np.float32)
    reach = 0.71 * size + 2  # half the sprite's diagonal: only this box around the centre changes
    x0, y0 = max(0, math.floor(cx - reach)), max(0, math.floor(cy - reach))
    x1, y1 = min(w, math.ceil(cx + reach)), min(h, math.ceil(cy + reach))
    if x1 <= x0 or y1 <= y0:
        return coverage
    # cv2 angles turn counterclockwise on screen (y points down), so negate for clockwise.
    mat = cv2.getRotationMatrix2D((s / 2, s / 2), -angle, size / s)
    mat[:, 2] += (cx - s / 2 - x0, cy - s / 2 - y0)
    box = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(rgb, mat, box, flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(alpha, mat, box, flags=cv2.INTER_LINEAR)[..., None]
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - a
    region += warped * a
    coverage[y0:y1, x0:x1] = a[..., 0]
    return coverage


def capture_times(rng: np.random.Generator, fps: int, spec: ClipSpec) -> np.ndarray:
    """Frame times (seconds, ascending) of a camera at ``fps`` whose frames come irregularly: each
    is off its slot ``k / fps`` by a Gaussian of up to ``spec.max_jitter`` frame periods (std)."""
    n = round(fps * spec.seconds)
    jitter = rng.uniform(0, spec.max_jitter) / fps
    times = np.arange(n) / fps + np.clip(rng.normal(0, jitter, n), -0.45 / fps, 0.45 / fps)
    return np.sort(np.clip(times, 0.0, spec.seconds))


@dataclass(frozen=True)
class Clip:
    """A rendered clip: uint8 frames (N, H, W, 3) RGB, their capture times (s), the nominal rate, and
    the moving object's coverage per frame (float32 (N, H, W); for tests that measure the motion)."""

    frames: np.ndarray
    times: np.ndarray
    fps: int
    masks: np.ndarray


def _drift(rng: np.random.Generator, u: np.ndarray, amount: float) -> np.ndarray:
    """A smooth random drift over progress ``u`` in [0, 1] (an exposure or white-balance correction
    settling): 1 at the start, ``exp(+-amount)`` by the end, eased."""
    return np.exp(rng.uniform(-amount, amount) * (3 * u**2 - 2 * u**3))


def render(rng: np.random.Generator, label: int, spec: ClipSpec = ClipSpec(), *, fps: int | None = None,
           exposure_fraction: float | None = None) -> Clip:
    """One clip of class ``label`` at ``fps`` (default ``spec.fps``, else drawn from ``spec.fps_range``).
    ``exposure_fraction`` (of a frame period) overrides the drawn exposure, for tests.

    Every frame is the scene at its capture time; with ``spec.webcam``, also averaged over an
    exposure (motion blur, up to most of a frame period), with brightness and colour balance
    drifting, 0-3 static distractors, sometimes a static occluder in front and a slow small
    second object. Camera shake is a random walk in time; the sensor noise is per frame.
    """
    fps = fps or spec.fps or int(rng.integers(spec.fps_range[0], spec.fps_range[1] + 1))
    times = capture_times(rng, fps, spec)
    m = spec.shake_margin
    world_h, world_w = spec.height + 2 * m, spec.width + 2 * m
    background = texture(rng, world_h, world_w)
    distractors = int(rng.choice([0, 1, 2, 3], p=[0.3, 0.35, 0.2, 0.15])) if spec.webcam else int(rng.random() < 0.5)
    for _ in range(distractors):  # static clutter, in every class alike
        d_rgb, d_alpha = sprite(rng)
        _paste(background, d_rgb, d_alpha, rng.uniform(0, world_w), rng.uniform(0, world_h),
               rng.uniform(0, 360), rng.uniform(14, 34))
    obj_rgb, obj_alpha = sprite(rng)
    obj_rgb = _contrast_with(rng, obj_rgb, background.reshape(-1, 3).mean(axis=0))
    mark_orientation(rng, obj_rgb)
    pose = motion(rng, label, times, spec)

    webcam = spec.webcam
    exposure = rng.uniform(0, 0.9) / fps if webcam and rng.random() < 0.7 else 0.0  # seconds the shutter is open
    if exposure_fraction is not None:
        exposure = exposure_fraction / fps
    blur_steps = 3 if exposure * fps > 0.15 else 1
    second = None  # a small object drifting slowly (at most 8 px over the clip) behind the main one
    if webcam and rng.random() < 0.35:
        s_rgb, s_alpha = sprite(rng)
        heading = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(1, 8) / spec.seconds  # px per second
        second = (s_rgb, s_alpha, rng.uniform(0, world_w), rng.uniform(0, world_h), heading, speed,
                  rng.uniform(0, 360), rng.uniform(12, 22))
    occluder = None  # a static bar in front of everything, hiding part of the scene
    if webcam and rng.random() < 0.3:
        occluder = np.zeros((world_h, world_w), np.float32)
        width = int(rng.integers(6, 14))
        if rng.random() < 0.5:
            x = int(rng.uniform(0.25, 0.75) * world_w)
            occluder[:, x:x + width] = 1.0
        else:
            y = int(rng.uniform(0.25, 0.75) * world_h)
            occluder[y:y + width] = 1.0
        occluder_rgb = texture(rng, world_h, world_w)

    yy, xx = np.mgrid[0:spec.height, 0:spec.width].astype(np.float32)
    light_dir = rng.uniform(0, 2 * math.pi)
    light = 1.0 + rng.uniform(0, 0.35) * ((xx * math.cos(light_dir) + yy * math.sin(light_dir))
                                           / max(spec.width, spec.height) - 0.5)
    u = times / spec.seconds
    gain = rng.uniform(0.6, 1.25) * (_drift(rng, u, 0.35) if webcam else np.ones_like(u))
    tint = rng.uniform(0.85, 1.15, 3) * (np.stack([_drift(rng, u, 0.08) for _ in range(3)], axis=1)
                                         if webcam else np.ones((len(u), 3)))
    flicker_amp, flicker_freq, flicker_phase = rng.uniform(0, 0.06), rng.uniform(0.2, 1.5), rng.uniform(0, 6.3)
    noise_sigma = rng.uniform(1.0, 6.0)
    shake_step = rng.uniform(0, 1.5)  # px per sqrt(second), a random walk in time
    steps = rng.normal(0, 1, (len(times), 2)) * shake_step * np.sqrt(np.diff(times, prepend=0.0))[:, None]
    shake = np.cumsum(steps, axis=0)
    shake = np.clip(shake - shake.mean(axis=0), -m, m)

    frames = np.empty((len(times), spec.height, spec.width, 3), np.uint8)
    masks = np.empty((len(times), spec.height, spec.width), np.float32)
    for i, t in enumerate(times):
        world = np.zeros_like(background)
        coverage = np.zeros(background.shape[:2], np.float32)
        for sub in np.linspace(t - exposure, t, blur_steps):  # the shutter integrates the scene
            scene = background.copy()
            if second is not None:
                s_rgb, s_alpha, sx, sy, heading, speed, s_angle, s_size = second
                _paste(scene, s_rgb, s_alpha, sx + speed * sub * math.cos(heading),
                       sy + speed * sub * math.sin(heading), s_angle, s_size)
            coverage += _paste(scene, obj_rgb, obj_alpha, *motion_at(pose, times, sub))
            world += scene
        world *= 1 / blur_steps
        coverage *= 1 / blur_steps
        if occluder is not None:  # static and in front: the same on every sub-frame
            world = world * (1 - occluder[..., None]) + occluder_rgb * occluder[..., None]
            coverage *= 1 - occluder
        ox, oy = m + shake[i]
        shift = np.float32([[1, 0, -ox], [0, 1, -oy]])
        view = cv2.warpAffine(world, shift, (spec.width, spec.height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
        masks[i] = cv2.warpAffine(coverage, shift, (spec.width, spec.height), flags=cv2.INTER_LINEAR)
        level = gain[i] * (1 + flicker_amp * math.sin(2 * math.pi * flicker_freq * t + flicker_phase))
        view = view * (light * level)[..., None] * tint[i].astype(np.float32)
        view += rng.standard_normal(view.shape, dtype=np.float32) * noise_sigma
        frames[i] = np.clip(view, 0, 255).astype(np.uint8)
    return Clip(frames=frames, times=times, fps=fps, masks=masks)


def motion_at(pose: Motion, times: np.ndarray, t: float) -> tuple[float, float, float, float]:
    """(cx, cy, angle, size) at time ``t``, interpolated between the poses at ``times``."""
    return tuple(float(np.interp(t, times, values)) for values in (pose.cx, pose.cy, pose.angle, pose.size))


def render_clip(rng: np.random.Generator, label: int, spec: ClipSpec = ClipSpec(), *,
                with_masks: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """:func:`render` at ``spec.fps`` (25 when unset): uint8 (N, H, W, 3) frames, and the object's coverage
    float32 (N, H, W) with ``with_masks``."""
    clip = render(rng, label, spec, fps=spec.fps or 25)
    return (clip.frames, clip.masks) if with_masks else clip.frames


def write_clip(out_dir: Path, rel: Path, seed: int, split: str, label: int, n: int, spec: ClipSpec) -> None:
    """Render and write clip ``n`` of class ``label`` of ``split`` from its own random stream."""
    rng = np.random.default_rng([seed, SPLITS.index(split), label, n])
    clip = render(rng, label, spec)
    if spec.webcam:
        write_h264(out_dir / rel, clip.frames, clip.fps, crf=int(rng.integers(20, 37)))
    else:
        write_video(out_dir / rel, clip.frames, clip.fps)


def generate(out_dir: str | Path, counts: dict[str, int], *, seed: int = 0,
             spec: ClipSpec = ClipSpec(), workers: int = 1) -> dict[str, Path]:
    """Write ``counts[split]`` clips per class for each split, in ``workers`` processes; returns
    {split: list file}.

    Every clip has its own random stream derived from (seed, split, class, n), so a split's
    clips do not change when another split's count does (nor with ``workers``). With
    ``spec.webcam`` the files are H.264 at a random quality (CRF 20-36, webcam-like to heavily
    compressed), else MPEG-4 part 2.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "labels.txt").write_text("".join(f"{name}\n" for name in CLASSES), encoding="utf-8")
    for split in counts:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    jobs = [(split, label, n, Path("videos") / split / f"{label}_{n:05d}.mp4")
            for split, per_class in counts.items() for n in range(per_class) for label in range(len(CLASSES))]
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in [pool.submit(write_clip, out_dir, rel, seed, split, label, n, spec)
                         for split, label, n, rel in jobs]:
                done.result()
    else:
        for split, label, n, rel in jobs:
            write_clip(out_dir, rel, seed, split, label, n, spec)
    lists = {}
    for split in counts:
        lists[split] = out_dir / f"{split}.txt"
        lists[split].write_text("".join(f"{rel.as_posix()} {label}\n" for s, label, _, rel in jobs if s == split),
                                encoding="utf-8")
    return lists
