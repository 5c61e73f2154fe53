"""The webcam conditions of the synthetic clips are really there (measured on the frames), and
time-grid sampling picks the frames the live scheduler would."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.scheduler import WindowScheduler
from tdn import synth
from tdn.sampling import SEGMENT_LENGTH, first_centre, grid_window_indices, last_centre
from tdn.video import read_frames

SPEC = synth.ClipSpec()


def sharpness(frames: np.ndarray) -> float:
    """Mean variance of the Laplacian of the grey frames (lower = blurrier)."""
    return float(np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in frames]))


def moving_edges(clip: synth.Clip) -> float:
    """Sharpness inside the moving object only (its coverage mask, eroded off the edge of the clip)."""
    inside = [cv2.dilate((m > 0.05).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for m in clip.masks]
    grey = [cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F) for f in clip.frames]
    return float(np.mean([g[m].var() for g, m in zip(grey, inside)]))


@pytest.mark.parametrize("fps", [8, 10, 15, 25, 30])
def test_capture_times_follow_the_rate_with_jitter(fps):
    times = synth.capture_times(np.random.default_rng([1, fps]), fps, SPEC)
    slots = np.arange(len(times)) / fps
    assert len(times) == round(fps * SPEC.seconds)
    assert np.all(np.diff(times) >= 0)
    assert np.abs(times - slots).max() <= 0.45 / fps + 1e-9  # each frame stays near its slot
    gaps = np.diff(times)
    assert np.median(gaps) == pytest.approx(1 / fps, rel=0.2)
    assert gaps.std() > 0  # irregular, as webcams deliver frames


def test_clip_rate_is_drawn_from_the_range_unless_fixed():
    rates = {synth.render(np.random.default_rng([2, n]), 8, synth.ClipSpec(webcam=False)).fps for n in range(12)}
    assert rates <= set(range(8, 31)) and len(rates) > 3
    assert synth.render(np.random.default_rng(0), 8, synth.ClipSpec(fps=15)).frames.shape[0] == round(15 * 2.5)


def test_motion_blur_lowers_the_sharpness_of_the_moving_object():
    rng = lambda: np.random.default_rng([4, 0])  # noqa: E731 - the same clip twice
    sharp = synth.render(rng(), 0, SPEC, fps=10, exposure_fraction=0.0)
    blurred = synth.render(rng(), 0, SPEC, fps=10, exposure_fraction=0.9)
    assert np.array_equal(sharp.times, blurred.times)
    assert moving_edges(blurred) < 0.8 * moving_edges(sharp)


def test_still_objects_tremble_far_less_than_anything_moves():
    yy, xx = np.mgrid[0:SPEC.height, 0:SPEC.width]
    for n in range(3):
        clip = synth.render(np.random.default_rng([6, n]), synth.CLASSES.index("still"), SPEC, fps=25)
        area = clip.masks.sum(axis=(1, 2))
        cx = (clip.masks * xx).sum(axis=(1, 2)) / area
        steps = np.abs(np.diff(cx))
        assert steps.max() < 2.5  # a moving clip travels >= 40 px in 2.5 s: 0.6 px per frame at 25 fps on average
        assert np.ptp(area) / area.mean() < 0.1


def test_exposure_drift_is_smooth_and_bounded():
    u = np.linspace(0, 1, 50)
    drifts = [synth._drift(np.random.default_rng(n), u, 0.35) for n in range(20)]
    for d in drifts:
        assert d[0] == pytest.approx(1.0)
        assert np.exp(-0.35) - 1e-9 <= d.min() and d.max() <= np.exp(0.35) + 1e-9
        assert np.all(np.diff(d) >= 0) or np.all(np.diff(d) <= 0)  # a monotone settle, no flicker
    assert max(abs(np.log(d[-1])) for d in drifts) > 0.1  # and some clips really drift


def test_h264_compression_changes_pixels_more_at_higher_crf(tmp_path):
    clip = synth.render(np.random.default_rng(7), 2, SPEC, fps=15)
    errors = {}
    for crf in (20, 36):
        path = tmp_path / f"crf{crf}.mp4"
        synth.write_h264(path, clip.frames, clip.fps, crf=crf)
        decoded, count = read_frames(path, set(range(len(clip.frames))))
        assert count == len(clip.frames)
        errors[crf] = np.mean([np.abs(decoded[i].astype(np.float32) - clip.frames[i]).mean() for i in decoded])
    assert errors[20] > 0.5  # lossy even at good quality
    assert errors[36] > 1.2 * errors[20]


def test_generated_split_is_h264_at_drawn_rates(tmp_path):
    lists = synth.generate(tmp_path, {"val": 1}, seed=3)
    rows = [line.rsplit(maxsplit=1) for line in lists["val"].read_text().splitlines()]
    rates = set()
    for rel, label in rows:
        cap = cv2.VideoCapture(str(tmp_path / rel))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
        rates.add(round(cap.get(cv2.CAP_PROP_FPS)))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        assert fourcc in ("avc1", "h264"), fourcc
        want = synth.render(np.random.default_rng([3, synth.SPLITS.index("val"), int(label), 0]), int(label))
        assert count == len(want.frames) and rates >= {want.fps}
    assert len(rates) > 1


@pytest.mark.parametrize("step", [0.0, 0.1])
@pytest.mark.parametrize("fps", [8, 10, 15, 25, 30])
def test_time_grid_windows_are_the_schedulers_windows(fps, step):
    """Every window the live scheduler emits over a clip's frame times (irregular, as captured) is a
    grid_window_indices window: training samples as the scheduler does, with and without a segment step."""
    times = list(synth.capture_times(np.random.default_rng([9, fps]), fps, SPEC))
    t, seconds = 8, 2.0
    scheduler = WindowScheduler(num_segments=t, window_seconds=seconds, segment_step_s=step)
    windows = []
    for n in range(1, len(times) + 1):
        plan = scheduler.plan(times[:n])
        if plan is not None:
            windows.append(plan)
    assert windows, "the clip is long enough for at least one live window"
    spacing = seconds / t
    earliest = times[first_centre(times, 0, 2, step)]
    latest = times[last_centre(times, 2, step)] - spacing * (t - 1)
    for plan in windows:
        position = (plan.centres[0] - earliest) / (latest - earliest)
        indices = grid_window_indices(times, t, seconds, position, step)
        assert indices == [i for segment in plan.indices for i in segment]
    # and each segment is L distinct captures in order, no duplicated frames at any rate: adjacent
    # ones with no step; with a step, each neighbour the capture nearest to its target time
    # (centre +- k * step), or the next capture beyond the previous neighbour when the rate is
    # below 1 / step
    indices = grid_window_indices(times, t, seconds, 0.5, step)
    for s in range(t):
        segment = indices[s * SEGMENT_LENGTH:(s + 1) * SEGMENT_LENGTH]
        assert np.all(np.diff(segment) >= 1), segment
        if step == 0:
            assert np.all(np.diff(segment) == 1), segment
        centre = times[segment[2]]
        for k, i in zip((-2, -1, 1, 2), segment[:2] + segment[3:]):
            target = centre + k * step
            nearest = min(range(len(times)), key=lambda j: abs(times[j] - target))
            beyond = segment[2 + k - (1 if k > 0 else -1)] + (1 if k > 0 else -1)
            assert i == nearest or i == beyond, (k, segment)
    if step and fps >= 15:  # the segment spans about 4 steps whatever the rate
        span = times[segment[-1]] - times[segment[0]]
        assert abs(span - 4 * step) <= 1.5 / fps, span
