"""The service's events without the service: typed events, strict JSON, the published schema, the
post-processor's reset (tests/integration/test_pipeline_events_service.py runs them for real)."""
from __future__ import annotations

import json

import numpy as np
import torch

from pipelines.events import (EVENT_KINDS, EVENT_SCHEMAS, ErrorEvent, LabelChangeEvent, PredictionEvent, StatsEvent,
                              StatusEvent, schema_document)
from pipelines.postprocess import PostProcessor, probabilities
from pipelines.sinks import event_text
from pipelines.types import Frame, SourceStatus, Window
from schema_check import assert_valid, schema_errors, strict_json
from tdn.config import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "docs" / "events.schema.json"


def sample_events() -> list:
    frame = Frame(image=np.zeros((8, 8, 3), np.uint8), t=100.04, index=1)
    window = Window(stream="cam", centres=(100.0,), frames=((frame,) * 5,), newest_t=100.04)
    post = PostProcessor(["a", "b"], smoothing=2, threshold=0.6, topk=2)
    prediction = post.update(torch.tensor([2.0, 0.0]))
    return [
        PredictionEvent(stream="cam", time=100.04, latency_ms=12.3456, prediction=prediction, response=None,
                        window=window),
        LabelChangeEvent(stream="cam", time=100.04, previous=None, label="a", score=0.880797),
        LabelChangeEvent(stream="cam", time=101.0, previous="a", label=None, score=0.5),
        StatusEvent(stream="cam", status=SourceStatus("reconnecting", "lost rtsp://***@cam/x", 99.0)),
        StatsEvent(stream="cam", time=101.5, state="live", detail="reading", fps=25.0, prediction_rate=4.0,
                   latency_ms_p50=None, latency_ms_p95=None, predictions=0, dropped_windows=0, frames_read=10,
                   frames_evicted=0, reconnects=1, outages=2, outage_s=7.25, current_outage_s=2.0004),
        ErrorEvent(stream="cam", time=102.0, detail="the model produced 2 non-finite scores (NaN or inf) of 2"),
    ]


def test_every_event_kind_serialises_to_strict_json_that_its_schema_accepts():
    records = [strict_json(e) for e in sample_events()]
    for record in records:
        assert_valid(record)
    prediction, change, to_nothing, status, stats, error = records
    assert prediction == {"event": "prediction", "stream": "cam", "time": 100.04, "latency_ms": 12.346,
                          "topk": [{"label": "a", "score": 0.880797}]}  # only entries at or above the threshold
    assert change == {"event": "label_change", "stream": "cam", "time": 100.04, "from": None, "to": "a",
                      "score": 0.880797}
    assert to_nothing["from"] == "a" and to_nothing["to"] is None
    assert status == {"event": "status", "stream": "cam", "status": "reconnecting", "detail": "lost rtsp://***@cam/x"}
    assert stats["latency_ms_p50"] is None and stats["reconnects"] == 1 and "detail" not in stats
    assert (stats["outages"], stats["outage_s"], stats["current_outage_s"]) == (2, 7.25, 2.0)
    assert event_text(stats).endswith("10 frames, 2 outages (7.2 s without frames)")
    assert "outages" not in event_text({**stats, "outages": 0, "outage_s": 0.0})
    assert error == {"event": "error", "stream": "cam", "time": 102.0,
                     "detail": "the model produced 2 non-finite scores (NaN or inf) of 2"}
    assert {e.kind for e in sample_events()} == set(EVENT_KINDS) == set(EVENT_SCHEMAS)


def test_schema_rejects_what_the_contract_does_not_allow():
    good = strict_json(sample_events()[0])
    assert schema_errors({**good, "extra": 1}, EVENT_SCHEMAS["prediction"])
    assert schema_errors({k: v for k, v in good.items() if k != "latency_ms"}, EVENT_SCHEMAS["prediction"])
    assert schema_errors({**good, "topk": [{"label": "a", "score": 1.5}]}, EVENT_SCHEMAS["prediction"])
    assert schema_errors({**good, "event": "status"}, schema_document())
    status = strict_json(sample_events()[3])
    assert schema_errors({**status, "status": "sleeping"}, EVENT_SCHEMAS["status"])


def test_published_schema_file_is_up_to_date():
    expected = json.dumps(schema_document(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text() == expected, \
        "docs/events.schema.json is stale: python -m pipelines.events > docs/events.schema.json"


def test_post_processor_reset_starts_a_fresh_average_and_keeps_the_label_chain():
    post = PostProcessor(["a", "b"], smoothing=3, threshold=0.6, topk=2)
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    first = post.update(a)
    assert (first.label, first.previous, first.changed) == ("a", None, True)
    mixed = post.update(b)  # averaged with the first: 0.5 / 0.5, below the threshold
    np.testing.assert_allclose(mixed.scores, (probabilities(a) + probabilities(b)) / 2, atol=1e-6)
    assert (mixed.label, mixed.previous, mixed.changed) == (None, "a", True)
    post.reset()  # a gap in the stream
    fresh = post.update(b)
    np.testing.assert_allclose(fresh.scores, probabilities(b), atol=1e-6)  # not averaged with a or b before
    assert (fresh.label, fresh.previous) == ("b", None)  # reported from the label claimed before the gap
    again = post.update(b)
    assert (again.label, again.changed) == ("b", False)


# -- the service ---------------------------------------------------------------------------------