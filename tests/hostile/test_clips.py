"""Hostile clips and uploads: each gets a clear error naming the file and what is wrong, or a correct
result with the right warning; the process lives on, memory stays bounded, no partial result passes
for a complete one."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from app.inputs import check_upload
from app.jobs import Busy, JobGate
from media import moving_square_frames, write_not_a_video, write_video, write_video_ffmpeg, write_y4m
from pipelines.clip import predict_clip
from pipelines.engine import InferenceEngine
from pipelines.preprocess import CpuPreprocessor
from tdn.checkpoint import save_model
from tdn.meta import ModelMeta
from cli.main import main as tdn_main
from tdn.model import create_model
from tdn.transforms import PreprocessSpec
from tdn.video import ClipError, check_clip_file, probe_clip, read_clip_frames

SPEC = PreprocessSpec(resize_short=72, input_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
T = 4
LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("resnet18", num_segments=T, num_classes=len(LABELS)).eval()


@pytest.fixture(scope="module")
def engine(model):
    return InferenceEngine(model, CpuPreprocessor(SPEC), max_batch=4)


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    return str(save_model(tmp_path_factory.mktemp("weights") / "tiny.pt", model,
                          ModelMeta(labels=LABELS, input_size=SPEC.input_size, resize_short=SPEC.resize_short)))


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def truncated_mp4(path: Path) -> Path:
    """An H.264 mp4 (index first) of 100 frames cut after 4000 bytes (about a quarter decodes)."""
    write_video_ffmpeg(path, moving_square_frames(100, width=96, height=72), extra_args=["-movflags", "+faststart"])
    return put(path, path.read_bytes()[:4000])


def zero_fps_y4m(path: Path) -> Path:
    """A y4m whose header says 0 frames per second."""
    write_y4m(path, moving_square_frames(10, width=32, height=24))
    return put(path, path.read_bytes().replace(b" F25:1 ", b" F0:1 ", 1))


def truncated_avi(path: Path, frames: int = 100) -> Path:
    """An MJPG AVI whose header declares ``frames`` frames, cut after 30% of its bytes."""
    write_video(path, moving_square_frames(frames, width=96, height=72), fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 3 // 10])
    return path


def audio_only(path: Path) -> Path:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1",
                    "-c:a", "aac", str(path)], check=True, capture_output=True, timeout=60)
    return path


def png_as_mp4(path: Path) -> Path:
    import cv2
    cv2.imwrite(str(path.with_suffix(".png")), moving_square_frames(1, width=96, height=72)[0])
    return path.with_suffix(".png").rename(path)


# -- refused with a clear error naming the file -------------------------------------------------
@pytest.mark.parametrize("make, error, words", [
    (lambda p: put(p / "empty.mp4", b""), ClipError, ["empty.mp4", "empty (0 bytes)"]),
    (lambda p: put(p / "random.mp4", np.random.default_rng(0).bytes(4096)), ClipError,
     ["random.mp4", "not a video"]),
    (lambda p: write_not_a_video(p / "notes.mp4"), ClipError, ["notes.mp4", "not a video"]),
    (lambda p: folder(p / "folder.mp4"), ClipError, ["folder.mp4", "is a directory"]),
    (lambda p: Path("/dev/zero"), ClipError, ["/dev/zero", "is a character device"]),
    (lambda p: p / "missing.mp4", FileNotFoundError, ["missing.mp4", "not found"]),
    (lambda p: audio_only(p / "audio.mp4"), ClipError, ["audio.mp4", "not a video"]),
    (lambda p: write_video_ffmpeg(p / "tall.mp4", moving_square_frames(3, width=16, height=4000)), ClipError,
     ["tall.mp4", "16x4000", "aspect ratio of 250.0:1", "at most 4:1"]),
    (lambda p: write_y4m(p / "tiny.y4m", moving_square_frames(3, width=2, height=2, square=1)), ClipError,
     ["tiny.y4m", "2x2", "enlarged 36.0x", "at most 4x"]),
])
def test_unusable_clips_are_refused_naming_the_file(make, error, words, engine, tmp_path):
    path = make(tmp_path)
    with pytest.raises(error) as caught:
        predict_clip(engine, path, per_window=True, limit_mb=1024)
    assert all(w in str(caught.value) for w in words), str(caught.value)


def test_a_fifo_is_refused_without_opening_it(engine, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(pytest.raises(ClipError, predict_clip, engine, fifo)),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)  # opening a FIFO with no writer would block for ever
    assert not worker.is_alive(), "predict_clip blocked on a FIFO"
    assert "pipe.mp4 is a FIFO (named pipe), not a video file" in str(outcome[0].value)


def test_an_unreadable_file_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    clip = write_video(tmp_path / "locked.mp4", moving_square_frames(10))
    clip.chmod(0)
    with pytest.raises(ClipError, match="locked.mp4 cannot be read: Permission denied"):
        check_clip_file(clip)


def test_uploads_that_are_not_regular_files_are_refused_by_name(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    os.mkfifo(uploads / "pipe.mp4")
    (uploads / "dir.mp4").mkdir()
    with pytest.raises(ValueError, match=r"^pipe.mp4 is a FIFO \(named pipe\), not a video file$"):
        check_upload(uploads / "pipe.mp4", upload_dir=uploads, max_mb=10)
    with pytest.raises(ValueError, match=r"^dir.mp4 is a directory, not a video file$"):
        check_upload(uploads / "dir.mp4", upload_dir=uploads, max_mb=10)


# -- memory bounded by design ------------------------------------------------------------------
def test_a_4k_clip_is_decoded_at_the_model_size(engine, tmp_path):
    clip = write_video(tmp_path / "uhd.mp4", moving_square_frames(12, width=3840, height=2160, square=400))
    info = probe_clip(clip, SPEC.resize_short)
    assert info.size == (2160, 3840)
    frames, count = read_clip_frames(clip, info, T, 10, SPEC.resize_short)
    assert count == 12
    assert {f.shape for f in frames.values()} == {(72, 128, 3)}  # short side 72 as decoded, not 2160
    assert sum(f.nbytes for f in frames.values()) <= 12 * 72 * 128 * 3  # 0.3 MB, not 12 x 24.9 MB
    result = predict_clip(engine, clip, views="10x3", limit_mb=1024)
    assert result.frames == 12 and result.warning is None and result.scores.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_job_over_the_memory_limit_is_refused_with_the_figures(engine, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(12, width=96, height=72))
    with pytest.raises(ClipError, match=r"clip.mp4: 10x3 views x 4 segments of 96x72 frames per window would need "
                                        r"about \d+ MB of decoded frames and model input; the limit is 1 MB "
                                        r"\(pipeline.clip_memory_mb\)"):
        predict_clip(engine, clip, views="10x3", per_window=True, limit_mb=1)


def test_huge_num_segments_is_refused_before_decoding(tmp_path):
    huge = create_model("resnet18", num_segments=10000, num_classes=3).eval()
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(20, width=96, height=72))
    with pytest.raises(ClipError, match=r"clip.mp4: 1x1 views x 10000 segments of 96x72 frames would need about "
                                        r"3,333 MB .* the limit is 1024 MB"):
        predict_clip(InferenceEngine(huge, CpuPreprocessor(SPEC)), clip, limit_mb=1024)


def test_a_very_long_tiny_clip_keeps_only_the_frames_the_views_need(engine, tmp_path):
    clip = write_y4m(tmp_path / "long.y4m", moving_square_frames(3000, width=32, height=24, square=8))  # 2 min
    info = probe_clip(clip, SPEC.resize_short)
    frames, count = read_clip_frames(clip, info, T, 1, SPEC.resize_short)
    assert count == 3000 and len(frames) == T * 5  # 20 frames kept of 3000
    assert predict_clip(engine, clip, limit_mb=1024).frames == 3000


# -- odd but usable: a correct result, with a warning where frames are missing ---------------------
@pytest.mark.parametrize("make", [truncated_avi, truncated_mp4])
def test_a_truncated_clip_is_predicted_with_a_warning(make, engine, tmp_path):
    clip = make(tmp_path / ("cut.avi" if make is truncated_avi else "cut.mp4"))
    result = predict_clip(engine, clip, per_window=True, window_seconds=0.4, limit_mb=1024)
    assert 0 < result.frames < 100
    assert result.warning == (f"only {result.frames} of 100 frames could be decoded (the file is truncated or "
                              f"damaged); the prediction uses those {result.frames}")
    assert result.scores.sum() == pytest.approx(1.0, abs=1e-5) and result.windows


def test_tdn_predict_prints_the_truncation_warning(capsys, weights, tmp_path):
    good = write_video(tmp_path / "good.mp4", moving_square_frames(30, width=96, height=72))
    cut = truncated_avi(tmp_path / "cut.avi")
    code = tdn_main(["predict", str(good), str(cut), "--json", "--weights", weights, "--precision", "fp32"])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 0
    whole = {"source", "summary", "segments", "topk"}
    assert set(lines[0]) == whole  # a whole clip: no warning field
    assert set(lines[1]) == whole | {"warning"} and "of 100 frames could be decoded" in lines[1]["warning"]
    assert f"tdn predict: warning: {cut}: only " in captured.err


@pytest.mark.parametrize("make, frames", [
    (lambda p: write_video(p / "one.mp4", moving_square_frames(1, width=96, height=72)), 1),
    (lambda p: png_as_mp4(p / "image.mp4"), 1),  # FFmpeg reads a PNG as a one-frame video: a still clip
    (lambda p: zero_fps_y4m(p / "fps0.y4m"), 10),
])
def test_odd_but_decodable_clips_give_a_whole_prediction(make, frames, engine, tmp_path):
    result = predict_clip(engine, make(tmp_path), per_window=True, window_seconds=0.4, limit_mb=1024)
    assert result.frames == frames and result.warning is None
    assert result.fps == 25.0  # 0 fps metadata: FFmpeg's and our fallback
    assert result.scores.shape == (3,) and result.scores.sum() == pytest.approx(1.0, abs=1e-5)
    assert isinstance(result.windows, list)


# -- tdn eval over a list with bad clips --------------------------------------------------------
def test_tdn_eval_skips_bad_clips_by_name_and_counts_only_good_ones(capsys, weights, tmp_path):
    write_video(tmp_path / "good.mp4", moving_square_frames(30, width=96, height=72))
    write_not_a_video(tmp_path / "notes.mp4")
    (tmp_path / "folder.mp4").mkdir()
    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "list.txt").write_text("good.mp4 0\nnotes.mp4 1\nfolder.mp4 2\npipe.mp4 0\nmissing.mp4 1\n")
    code = tdn_main(["eval", "--weights", weights, "--list", str(tmp_path / "list.txt"), "--json",
                     "--batch-size", "2", "--set", "train.workers=0"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    assert result["count"] == 1
    skipped = {Path(s["clip"]).name: s["error"] for s in result["skipped"]}
    assert skipped == {"notes.mp4": "is not a video OpenCV/FFmpeg can open",
                       "folder.mp4": "is a directory, not a video file",
                       "pipe.mp4": "is a FIFO (named pipe), not a video file",
                       "missing.mp4": f"video file not found: {tmp_path / 'missing.mp4'}"}
    assert "skipped 4 unreadable clip(s)" in captured.err


def test_tdn_eval_predictions_keep_every_clip_in_list_order(capsys, weights, tmp_path):
    for name in ("good.mp4", "good2.mp4"):
        write_video(tmp_path / name, moving_square_frames(30, width=96, height=72))
    write_not_a_video(tmp_path / "notes.mp4")
    (tmp_path / "list.txt").write_text("good.mp4 0\nnotes.mp4 1\ngood2.mp4 2\nmissing.mp4 1\n")
    code = tdn_main(["eval", "--weights", weights, "--list", str(tmp_path / "list.txt"), "--json", "--batch-size", "2",
                     "--set", "train.workers=0", "--predictions", str(tmp_path / "predictions.csv")])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    assert [(Path(r["clip"]).name, r["label"]) for r in rows] == [
        ("good.mp4", "0"), ("notes.mp4", "1"), ("good2.mp4", "2"), ("missing.mp4", "1")]
    good, notes, good2, missing = rows
    assert notes["error"] == "is not a video OpenCV/FFmpeg can open" and notes["predicted"] == notes["score"] == ""
    assert missing["error"].startswith("video file not found") and missing["correct"] == ""
    for row in (good, good2):
        assert row["error"] == "" and 0 < float(row["score"]) <= 1
        assert row["correct"] == str(row["predicted"] == row["label"])
    confusion = [[0] * 3 for _ in range(3)]
    for row in (good, good2):
        confusion[int(row["label"])][int(row["predicted"])] += 1
    assert confusion == result["confusion"]


def test_tdn_eval_refuses_a_directory_for_predictions_before_evaluating(capsys, weights, tmp_path):
    (tmp_path / "list.txt").write_text("missing.mp4 0\n")
    code = tdn_main(["eval", "--weights", weights, "--list", str(tmp_path / "list.txt"),
                     "--predictions", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(f"tdn eval: error: --predictions {tmp_path} is a directory; give a file name")


def test_tdn_eval_with_no_readable_clip_fails_naming_them(capsys, weights, tmp_path):
    write_not_a_video(tmp_path / "notes.mp4")
    (tmp_path / "list.txt").write_text("notes.mp4 1\nmissing.mp4 0\n")
    code = tdn_main(["eval", "--weights", weights, "--list", str(tmp_path / "list.txt"), "--json",
                     "--set", "train.workers=1"])  # a worker process: its errors must not become a traceback
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    engine, error = captured.err.split("\n", 1)  # first what runs the model, then the error
    assert engine.startswith("tdn eval: engine ")
    assert error.startswith(f"tdn eval: error: no clip of {tmp_path / 'list.txt'} could be read (2 tried): ")
    assert "notes.mp4: is not a video" in captured.err and "missing.mp4: video file not found" in captured.err
    assert "Traceback" not in captured.err


# -- the app's bound on clip jobs -----------------------------------------------------------------
def test_clip_jobs_run_a_bounded_number_at_once_and_turn_the_rest_away():
    gate = JobGate(running=1, waiting=1)
    started, waiting, release = threading.Event(), threading.Event(), threading.Event()
    order = []

    def job(name, on_wait=None):
        with gate.turn(on_wait=on_wait):
            order.append(name)
            started.set()
            release.wait()

    first = threading.Thread(target=job, args=("first",))
    first.start()
    started.wait()
    second = threading.Thread(target=job, args=("second", waiting.set))
    second.start()
    waiting.wait()  # queued behind the first
    with pytest.raises(Busy, match="busy: 1 clip job"):
        with gate.turn():
            pass
    release.set()
    first.join()
    second.join()
    assert order == ["first", "second"]
    with gate.turn():  # every place is free again
        pass
