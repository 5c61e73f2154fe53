"""Real test videos, made on the spot (never downloaded): synthetic frames and writers for
OpenCV containers (mp4v), ffmpeg-encoded files (H.264, VP9, ...) and raw ``.y4m``.

Import from a test as ``from media import moving_square_frames, write_video`` (pytest puts
``tests/`` on ``sys.path``).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


def moving_square_frames(n: int, *, width: int = 64, height: int = 48, square: int = 12) -> list[np.ndarray]:
    """``n`` uint8 ``(height, width, 3)`` RGB frames: a grey background whose level rises with the
    frame number (frame order survives lossy coding) and a red square moving right one
    ``square``/4 step per frame (motion for the temporal modules)."""
    frames = []
    step = max(1, square // 4)
    for i in range(n):
        frame = np.full((height, width, 3), 40 + (i * 7) % 160, np.uint8)
        x = (i * step) % max(1, width - square)
        y = (height - square) // 2
        frame[y:y + square, x:x + square] = (230, 30, 30)
        frames.append(frame)
    return frames


def write_video(path: str | Path, frames: Sequence[np.ndarray], *, fps: float = 25.0, fourcc: str = "mp4v") -> Path:
    """Write RGB ``frames`` with OpenCV's bundled FFmpeg (``mp4v`` in .mp4/.avi, ``MJPG`` in .avi)."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} to {path}")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_video_ffmpeg(path: str | Path, frames: Sequence[np.ndarray], *, fps: float = 25.0,
                       codec: str = "libx264", extra_args: Sequence[str] = ()) -> Path:
    """Encode RGB ``frames`` with the system ``ffmpeg`` (e.g. ``libx264`` .mp4, ``libvpx-vp9`` .webm)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (make system-deps)")
    path = Path(path)
    height, width = frames[0].shape[:2]
    cmd = [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
           "-r", f"{fps:g}", "-i", "-", "-c:v", codec, "-pix_fmt", "yuv420p", *extra_args, str(path)]
    subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames), check=True,
                   capture_output=True, timeout=120)
    return path


def write_y4m(path: str | Path, frames: Sequence[np.ndarray], *, fps: int = 25) -> Path:
    """Write RGB ``frames`` (even width and height) as an uncompressed YUV4MPEG2 4:2:0 file."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"y4m 4:2:0 needs even width and height, got {width}x{height}")
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())  # Y plane, then U, then V
    return path


def write_not_a_video(path: str | Path) -> Path:
    """A file with a video name whose bytes are not a video."""
    path = Path(path)
    path.write_bytes(b"this is not a video file\n" * 64)
    return path
