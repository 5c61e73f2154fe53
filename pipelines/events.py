"""The events :class:`~pipelines.service.RecognitionService` publishes: one stream for every sink
(JSON lines, the annotated video writer, the app, the cluster front end).

- :class:`PredictionEvent` (``"prediction"``): a post-processed prediction of one window.
- :class:`LabelChangeEvent` (``"label_change"``): the claimed top-1 label changed.
- :class:`StatusEvent` (``"status"``): a source's state changed.
- :class:`StatsEvent` (``"stats"``): a stream's figures, every ``pipeline.stats_interval_s``.
- :class:`ErrorEvent` (``"error"``): a window that could not become a prediction (e.g. the model
  produced non-finite scores).

Each has ``kind`` (its ``"event"`` name) and ``to_json()``: a dict that ``json.dumps(...,
allow_nan=False)`` accepts and that :data:`EVENT_SCHEMAS` ``[kind]`` (JSON Schema 2020-12)
describes. ``docs/events.schema.json`` is :func:`schema_document`; regenerate it with
``python -m pipelines.events > docs/events.schema.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import torch

from pipelines.postprocess import Prediction
from pipelines.types import SOURCE_STATES, SourceStatus, Window


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True)
class PredictionEvent:
    """A post-processed prediction of one stream's window.

    time: capture time of the window's newest frame (unix s); latency_ms: emitted - time.
    response: S-TDM response of the newest segment over the centre crop, float32 ``(S/4, S/4)``
    (None without S-TDM); window: the frames it was computed from (for overlays).
    JSON ``topk``: the entries at or above the threshold.
    """

    kind: ClassVar[str] = "prediction"
    stream: str
    time: float
    latency_ms: float
    prediction: Prediction
    response: torch.Tensor | None
    window: Window

    def to_json(self) -> dict:
        return {"event": self.kind, "stream": self.stream, "time": round(self.time, 6),
                "latency_ms": round(self.latency_ms, 3), "topk": self.prediction.claimed()}


@dataclass(frozen=True)
class LabelChangeEvent:
    """The claimed top-1 label of a stream changed (None: nothing above the threshold).

    time: capture time of the newest frame of the window whose prediction changed it (unix s);
    score: that prediction's top-1 score (of ``label``; below the threshold when ``label`` is None).
    JSON: ``previous`` and ``label`` are ``"from"`` and ``"to"``.
    """

    kind: ClassVar[str] = "label_change"
    stream: str
    time: float
    previous: str | None
    label: str | None
    score: float

    def to_json(self) -> dict:
        return {"event": self.kind, "stream": self.stream, "time": round(self.time, 6), "from": self.previous,
                "to": self.label, "score": round(self.score, 6)}


@dataclass(frozen=True)
class StatusEvent:
    """A source's state changed (``status.detail`` says why, URL credentials masked)."""

    kind: ClassVar[str] = "status"
    stream: str
    status: SourceStatus

    def to_json(self) -> dict:
        return {"event": self.kind, "stream": self.stream, "status": self.status.state, "detail": self.status.detail}


@dataclass(frozen=True)
class StatsEvent:
    """Figures for one stream at ``time`` (unix s). state/detail: its source's status; fps: capture
    rate; prediction_rate: predictions/s recently (both fall once frames or predictions stop, and
    are 0 unless ``state`` is ``live``); latency_ms_p50/p95 over the recent predictions (None before
    the first); dropped_windows: windows skipped by the scheduler (polled late) or replaced in the
    engine (inference behind), never windows that could not exist because frames stopped;
    frames_evicted: frames that left the rolling buffer; reconnects: outages recovered from;
    outages: times the stream was lost (the current one included); outage_s: seconds without frames
    in them; current_outage_s: the current outage so far (None while frames flow). Counts are since
    the stream started. JSON leaves out ``detail``.
    """

    kind: ClassVar[str] = "stats"
    stream: str
    time: float
    state: str
    detail: str
    fps: float
    prediction_rate: float
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    predictions: int
    dropped_windows: int
    frames_read: int
    frames_evicted: int
    reconnects: int
    outages: int = 0
    outage_s: float = 0.0
    current_outage_s: float | None = None

    def to_json(self) -> dict:
        return {"event": self.kind, "stream": self.stream, "time": round(self.time, 6), "state": self.state,
                "fps": round(self.fps, 3), "prediction_rate": round(self.prediction_rate, 3),
                "latency_ms_p50": _ms(self.latency_ms_p50), "latency_ms_p95": _ms(self.latency_ms_p95),
                "predictions": self.predictions, "dropped_windows": self.dropped_windows,
                "frames_read": self.frames_read, "frames_evicted": self.frames_evicted, "reconnects": self.reconnects,
                "outages": self.outages, "outage_s": round(self.outage_s, 3),
                "current_outage_s": None if self.current_outage_s is None else round(self.current_outage_s, 3)}


@dataclass(frozen=True)
class ErrorEvent:
    """A window of ``stream`` (newest frame captured at ``time``, unix s) that could not become a
    prediction; ``detail`` says why (e.g. non-finite model output)."""

    kind: ClassVar[str] = "error"
    stream: str
    time: float
    detail: str

    def to_json(self) -> dict:
        return {"event": self.kind, "stream": self.stream, "time": round(self.time, 6), "detail": self.detail}


Event = PredictionEvent | LabelChangeEvent | StatusEvent | StatsEvent | ErrorEvent
EVENT_KINDS: tuple[str, ...] = tuple(e.kind for e in (PredictionEvent, LabelChangeEvent, StatusEvent, StatsEvent,
                                                      ErrorEvent))


def _object(kind: str, description: str, **properties: dict) -> dict:
    """The schema of one event kind: an object with exactly ``event`` (= ``kind``) and ``properties``."""
    fields = {"event": {"const": kind}, "stream": {"type": "string", "description": "stream id (credentials masked)"},
              **properties}
    return {"type": "object", "description": description, "required": list(fields), "properties": fields,
            "additionalProperties": False}


_SCORE = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_CAPTURE_TIME = {"type": "number", "description": "capture time of the window's newest frame, unix s"}
_LABEL_OR_NULL = {"type": ["string", "null"], "description": "claimed label; null: nothing above the threshold"}
_LATENCY = {"type": ["number", "null"], "description": "ms, over the recent predictions; null before the first"}

EVENT_SCHEMAS: dict[str, dict] = {
    "prediction": _object(
        "prediction", "a post-processed (smoothed) prediction of one window",
        time=_CAPTURE_TIME,
        latency_ms={"type": "number", "description": "emit time - time, ms"},
        topk={"type": "array", "description": "best first; only entries at or above the threshold",
              "items": {"type": "object", "required": ["label", "score"], "additionalProperties": False,
                        "properties": {"label": {"type": "string"}, "score": _SCORE}}},
    ),
    "label_change": _object(
        "label_change", "the claimed top-1 label changed",
        time=_CAPTURE_TIME,
        **{"from": _LABEL_OR_NULL, "to": _LABEL_OR_NULL},
        score={**_SCORE, "description": "top-1 score of the prediction that changed it (below the threshold when "
                                        "'to' is null)"},
    ),
    "status": _object(
        "status", "a source's state changed",
        status={"enum": list(SOURCE_STATES)},
        detail={"type": "string", "description": "why, for people (credentials masked)"},
    ),
    "stats": _object(
        "stats", "a stream's figures, every pipeline.stats_interval_s",
        time={"type": "number", "description": "when the figures were taken, unix s"},
        state={"enum": list(SOURCE_STATES)},
        fps={"type": "number", "minimum": 0, "description": "capture rate; 0 unless state is live"},
        prediction_rate={"type": "number", "minimum": 0,
                         "description": "predictions/s recently; 0 unless state is live"},
        latency_ms_p50=_LATENCY,
        latency_ms_p95=_LATENCY,
        predictions=_COUNT,
        dropped_windows={**_COUNT, "description": "windows skipped or replaced (latest wins); windows that never "
                                                  "existed because frames stopped are not counted (see outages)"},
        frames_read=_COUNT,
        frames_evicted={**_COUNT, "description": "frames that left the rolling buffer"},
        reconnects={**_COUNT, "description": "outages recovered from"},
        outages={**_COUNT, "description": "times the stream was lost, the current outage included"},
        outage_s={"type": "number", "minimum": 0,
                  "description": "seconds without frames in the outages, from the newest frame before each loss to "
                                 "the first after it (the current one up to now)"},
        current_outage_s={"type": ["number", "null"], "minimum": 0,
                          "description": "seconds of the current outage so far; null while frames flow"},
    ),
    "error": _object(
        "error", "a window that could not become a prediction",
        time=_CAPTURE_TIME,
        detail={"type": "string", "description": "why, for people"},
    ),
}


def schema_document() -> dict:
    """The JSON Schema of one ``tdn stream --json`` line (any event kind), as in ``docs/events.schema.json``."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "tdn stream --json: one event per line",
            "oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in EVENT_KINDS],
            "$defs": EVENT_SCHEMAS}


if __name__ == "__main__":
    print(json.dumps(schema_document(), indent=2, allow_nan=False))
