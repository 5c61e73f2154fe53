"""What the UI accepts from a browser, checked before anything reaches the server's pipeline.

The app may be reached by people who should not be able to read the server's files, so
everything a user types or picks is narrowed here:

- camera sources: a device index or a stream URL (``rtsp://``, ``http(s)://``, ...), never a
  file path (the pipeline itself would open files; :func:`parse_camera_source` refuses them);
  camera names: short printable text (:func:`parse_camera_name`), by default the source's host
  and path (:func:`default_camera_name`);
- weights and label files: only files inside ``weights/`` (:func:`resolve_in_weights`);
- uploads: only files Gradio stored in its upload folder, of a video type, under the size limit
  (:func:`check_upload`);
- authentication: ``user:password`` from the config or ``$TDN_APP_AUTH`` (:func:`resolve_auth`).
"""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

from pipelines.masking import mask_credentials
from pipelines.sources import STREAM_SCHEMES, camera_index, check_stream_url, describe_source
from tdn.config import REPO_ROOT
from tdn.video import ClipError, check_clip_file

WEIGHTS_DIR = REPO_ROOT / "weights"
LABELS_DIR = WEIGHTS_DIR / "labels"
WEIGHT_SUFFIXES = (".pt", ".pth", ".pth.tar", ".tar")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ogv", ".y4m")
AUTH_ENV = "TDN_APP_AUTH"
MAX_SOURCE_CHARS = 2048  # longest camera source accepted
MAX_NAME_CHARS = 60  # longest camera name accepted


def parse_camera_source(text: str) -> int | str:
    """A device index (``"0"`` -> 0) or a stream URL; anything else is a ValueError.

    >>> parse_camera_source(" 1 ")
    1
    >>> parse_camera_source("rtsp://user:pw@10.0.0.2/live")
    'rtsp://user:pw@10.0.0.2/live'
    """
    text = (text or "").strip()
    if not text:
        raise ValueError("enter a camera: a device index such as 0, or a stream URL such as rtsp://host:554/path")
    if len(text) > MAX_SOURCE_CHARS:
        raise ValueError(f"the camera source is {len(text)} characters long; at most {MAX_SOURCE_CHARS} are accepted")
    if _has_control_characters(text):
        raise ValueError("the camera source contains control characters; type a device index or a stream URL")
    index = camera_index(text)
    if index is not None:
        return index
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in STREAM_SCHEMES:
        raise ValueError(f"not a camera source: {mask_credentials(text)!r}; expected a device index or a URL "
                         f"starting with {', '.join(s + '://' for s in STREAM_SCHEMES)} (files cannot be opened here; "
                         "use the Clip tab to upload a video)")
    return check_stream_url(text)


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf") and not c.isspace() for c in text)


def parse_camera_name(text: str | None) -> str | None:
    """A name a person gave a camera (trimmed, credentials masked), None when left empty.

    >>> parse_camera_name("  hall door ") , parse_camera_name("")
    ('hall door', None)
    """
    text = " ".join((text or "").split())
    if not text:
        return None
    if len(text) > MAX_NAME_CHARS:
        raise ValueError(f"the camera name is {len(text)} characters long; at most {MAX_NAME_CHARS} are accepted")
    if _has_control_characters(text):
        raise ValueError("the camera name contains control characters")
    return mask_credentials(text)


def default_camera_name(spec: int | str) -> str:
    """How a camera is named unless a person names it: ``camera N`` for a device, else the URL's
    host, port and path; never its user name, password, query or fragment.

    >>> default_camera_name("rtsp://admin:pw@10.0.0.2:554/stream1?token=x")
    '10.0.0.2:554/stream1'
    """
    if camera_index(spec) is not None:
        return describe_source(spec)
    parts = urlsplit(mask_credentials(str(spec)))  # masked first: it finds userinfo however it is written
    return f"{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}"


def resolve_auth(configured: str | None, environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """``(user, password)`` from ``$TDN_APP_AUTH`` (which wins) or the config, or None for no login."""
    environ = os.environ if environ is None else environ
    text = environ.get(AUTH_ENV) or configured
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        source = f"${AUTH_ENV}" if environ.get(AUTH_ENV) else "app.auth"
        raise ValueError(f"{source} must be 'user:password' with both parts non-empty")
    return user, password


def _is_weights_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(WEIGHT_SUFFIXES)


def weights_choices(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """Weight files under ``weights_dir``, as paths relative to it, sorted."""
    if not weights_dir.is_dir():
        return []
    return sorted(p.relative_to(weights_dir).as_posix() for p in weights_dir.rglob("*") if _is_weights_file(p))


def label_choices(labels_dir: Path = LABELS_DIR) -> list[str]:
    """Label files (``*.txt``) in ``labels_dir``, by file name."""
    return sorted(p.name for p in labels_dir.glob("*.txt")) if labels_dir.is_dir() else []


def resolve_in_weights(name: str, directory: Path = WEIGHTS_DIR) -> Path:
    """``directory / name`` if it is an existing file inside ``directory`` (no ``..``, no symlink out)."""
    root = directory.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{name!r} is outside {directory.name}/: only files in {directory} can be chosen")
    if not path.is_file():
        raise FileNotFoundError(f"no file {name!r} in {directory}")
    return path


def check_upload(path: str | Path, *, upload_dir: str | Path, max_mb: float) -> Path:
    """An uploaded video: inside Gradio's ``upload_dir``, a video suffix, a non-empty readable regular
    file (:func:`tdn.video.check_clip_file`), at most ``max_mb``."""
    path = Path(path).resolve()
    if not path.is_relative_to(Path(upload_dir).resolve()):
        raise ValueError("only uploaded files can be used; upload the clip again")
    if not path.name.lower().endswith(VIDEO_SUFFIXES):
        raise ValueError(f"unsupported file type {path.suffix or '(none)'!r}: expected a video "
                         f"({', '.join(VIDEO_SUFFIXES)})")
    try:
        check_clip_file(path)  # os.stat first: a directory, FIFO or device is refused without opening it
    except FileNotFoundError:
        raise FileNotFoundError("the uploaded file is gone; upload it again") from None
    except ClipError as exc:
        raise ValueError(str(exc).replace(str(path), path.name)) from None
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise ValueError(f"{path.name} is {size / 2**20:.0f} MB; the limit is {max_mb:g} MB (app.max_upload_mb)")
    return path
