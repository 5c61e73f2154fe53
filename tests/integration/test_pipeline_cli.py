"""``tdn predict`` and ``tdn stream`` end to end: real video files, a real loopback RTSP
server, JSON lines as DESIGN.md's contract writes them, bad inputs."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import cv2
import pytest
import torch

from app.examples import DEMO_STREAM
from media import moving_square_frames, write_not_a_video, write_video, write_video_ffmpeg
from pipelines.events import EVENT_SCHEMAS
from schema_check import schema_errors
from tdn.checkpoint import save_model
from tdn.engines import engine_installed
from tdn.meta import ModelMeta
from cli.main import main as tdn_main
from tdn.model import create_model

LABELS = ["left", "right", "still"]
FAST = ["--set", "pipeline.window_seconds=1.0", "--set", "pipeline.max_wait_ms=0", "--precision", "fp32"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny random TDN-R18, T=4, 64 px, saved in this project's format (stands in for the demo model)."""
    torch.manual_seed(0)
    model = create_model("resnet18", num_segments=4, num_classes=len(LABELS)).eval()
    with torch.no_grad():
        model.fc.weight.normal_(0, 0.5)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_model(path, model, ModelMeta(labels=LABELS, input_size=64, resize_short=72))
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    frames = moving_square_frames(50, width=96, height=72, square=16)
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "mp4": str(write_video(d / "a.mp4", frames)),
        "webm": str(write_video_ffmpeg(d / "b.webm", frames, codec="libvpx-vp9")),
        "text": str(write_not_a_video(d / "notes.mp4")),
        "empty": str(empty),
        "missing": str(d / "missing.mp4"),
    }


def run_tdn(capsys, *argv) -> tuple[int, list[dict]]:
    code = tdn_main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def test_predict_prints_one_line_per_clip_and_errors_for_bad_ones(capsys, weights, clips):
    order = ["mp4", "text", "webm", "empty", "missing"]
    code, lines = run_tdn(capsys, "predict", *[clips[k] for k in order], "--json", "--weights", weights, *FAST)
    assert code == 1  # some clips failed
    assert [line["source"] for line in lines] == [clips[k] for k in order]
    good = [lines[0], lines[2]]
    for line in good:
        assert set(line) == {"source", "summary", "segments", "topk"}
        check_segments(line, duration_s=2.0)
        assert sorted(e["label"] for e in line["topk"]) == sorted(LABELS)  # top-5 of 3 classes: all, once each
        scores = [e["score"] for e in line["topk"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-4)
    assert good[0]["topk"][0]["label"] == good[1]["topk"][0]["label"]  # same frames, two containers
    for line, word in [(lines[1], "notes.mp4"), (lines[3], "empty"), (lines[4], "not found")]:
        assert set(line) == {"source", "error"} and word in line["error"]


def check_segments(line: dict, duration_s: float) -> None:
    """Segments tile the clip from 0 to its end, each a known label (or null: uncertain) with a score,
    and the summary names them in order."""
    segments = line["segments"]
    assert segments and segments[0]["start_s"] == 0.0 and segments[-1]["end_s"] == pytest.approx(duration_s)
    for a, b in zip(segments, segments[1:]):
        assert a["end_s"] == b["start_s"] and a["label"] != b["label"]
    for s in segments:
        assert set(s) == {"label", "start_s", "end_s", "score"} and s["start_s"] < s["end_s"]
        assert (s["label"] is None or s["label"] in LABELS) and 0.0 <= s["score"] <= 1.0
    parts = line["summary"].split(", then ")
    assert len(parts) == len(segments)
    assert all(text.startswith((s["label"] or "uncertain") + " ") for s, text in zip(segments, parts))


def test_predict_segments_follow_the_threshold(capsys, weights, clips):
    """At threshold 1 no window is claimed: one uncertain segment over the whole clip."""
    code, lines = run_tdn(capsys, "predict", clips["mp4"], "--json", "--weights", weights, "--threshold", "1.0",
                          *FAST)
    assert code == 0
    (line,) = lines
    assert line["segments"] == [{"label": None, "start_s": 0.0, "end_s": 2.0, "score": line["segments"][0]["score"]}]
    assert line["summary"] == "uncertain 0-2 s"


def test_predict_dense_views_and_windows(capsys, weights, clips):
    code, lines = run_tdn(capsys, "predict", clips["mp4"], "--json", "--weights", weights, "--views", "10x3",
                          "--windows", "--topk", "2", *FAST)
    assert code == 0
    (line,) = lines
    assert len(line["topk"]) == 2
    times = [w["time"] for w in line["windows"]]
    assert len(times) >= 3 and times == sorted(times)  # 2 s of video, 1 s windows, a new one every 0.25 s
    assert all(len(w["topk"]) == 2 for w in line["windows"])


def test_stream_file_sources_print_the_json_contract_and_write_video(capsys, weights, clips, tmp_path):
    video = tmp_path / "annotated.mp4"
    started = time.time()
    code, lines = run_tdn(capsys, "stream", "--source", clips["mp4"], "--source", clips["webm"], "--json",
                          "--weights", weights, "--write-video", str(video), "--heatmap", "rgb", "--stats",
                          "--set", "pipeline.stats_interval_s=0.5", *FAST)
    assert code == 0
    assert {e["event"] for e in lines} == {"prediction", "label_change", "status", "stats"}
    for line in lines:
        assert not schema_errors(line, EVENT_SCHEMAS[line["event"]]), line
    predictions = [e for e in lines if e["event"] == "prediction"]
    statuses = [e for e in lines if e["event"] == "status"]
    assert {p["stream"] for p in predictions} == {clips["mp4"], clips["webm"]}
    for p in predictions:
        assert set(p) == {"event", "stream", "time", "latency_ms", "topk"}
        assert started - 1 <= p["time"] <= time.time()  # capture time of the newest frame, unix s
        assert p["latency_ms"] >= 0
        assert sorted(e["label"] for e in p["topk"]) == sorted(LABELS)  # threshold 0: every class is claimed
        assert [e["score"] for e in p["topk"]] == sorted((e["score"] for e in p["topk"]), reverse=True)
    for s in statuses:
        assert set(s) == {"event", "stream", "status", "detail"}
    assert {(s["stream"], s["status"]) for s in statuses} >= {(clips["mp4"], "ended"), (clips["webm"], "ended")}
    for path in (tmp_path / "annotated_1.mp4", tmp_path / "annotated_2.mp4"):
        capture = cv2.VideoCapture(str(path))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 50  # every captured frame, annotated
        capture.release()


@pytest.mark.skipif(not engine_installed("openvino"), reason="needs the openvino extra")
def test_stream_compiles_an_onnx_engine_before_a_file_starts_to_play(capsys):
    """Compiled first, a file paced in real time loses no window to the compilation: the bundled demo
    model on the app's 6 s demo stream (compiled on the first windows instead, 12 of its windows were
    dropped and 2 scored, measured)."""
    code = tdn_main(["stream", "--source", str(DEMO_STREAM), "--json", "--engine", "openvino", "--stats",
                     "--set", "pipeline.stats_interval_s=0.2", "--set", "pipeline.max_wait_ms=0"])
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert code == 0
    assert "engine openvino" in err and "compiling the openvino graphs" in err
    assert any(e["event"] == "prediction" for e in lines)
    final = [e for e in lines if e["event"] == "stats"][-1]
    assert final["dropped_windows"] == 0, final


def test_stream_reports_bad_sources_and_keeps_the_good_one(capsys, weights, clips):
    code, lines = run_tdn(capsys, "stream", "--source", clips["missing"], "--source", "ftp://host/x",
                          "--source", clips["text"], "--source", clips["mp4"], "--json", "--weights", weights, *FAST)
    assert code == 1
    failed = {e["stream"]: e["detail"] for e in lines if e["event"] == "status" and e["status"] == "failed"}
    assert len(failed) == 3
    assert any("not found" in d for d in failed.values()) and any("ftp://" in d for d in failed.values())
    assert any(e["event"] == "prediction" and e["stream"] == clips["mp4"] for e in lines)
    assert not any(e["event"] == "stats" for e in lines)  # only with --stats


def test_stream_from_rtsp_server_with_masked_credentials(weights, rtsp_server):
    """A real loopback RTSP camera: live status, then predictions, via the installed console script."""
    url = rtsp_server.url_with("user", "secret")
    cmd = [sys.executable, "-m", "cli", "stream", "--source", url, "--json", "--weights", weights,
           "--duration", "8", *FAST]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert any(e["event"] == "status" and e["status"] == "live" for e in events), done.stderr[-2000:]
    predictions = [e for e in events if e["event"] == "prediction"]
    assert predictions, done.stderr[-2000:]
    assert "secret" not in done.stdout and "secret" not in done.stderr
    assert all(p["latency_ms"] >= 0 for p in predictions)
