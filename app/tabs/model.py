"""Model panel: the summary line and the controls that replace the shared model for every user."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from app.inputs import LABELS_DIR, WEIGHTS_DIR, label_choices, resolve_in_weights, weights_choices
from app.sessions import ModelHost
from tdn.config import Config
from tdn.registry import DEVICES, PRECISION_CHOICES

KEEP_CHOICE = "keep current"
DEMO_CHOICE = "bundled demo model"
LABELS_FROM_WEIGHTS = "from the weights file"


def summary(host: ModelHost) -> str:
    service = host.service
    cfg, meta = service.model.cfg, service.model.meta
    source = Path(meta.source).name if meta.source else "random initialisation"
    classes = f"{cfg.num_classes} classes" + ("" if meta.labels else " (no label names: showing indices)")
    pipeline = host.config.pipeline
    return (f"**Model:** TDN-{cfg.arch} `{cfg.variant}`, T={cfg.num_segments}, {classes}, input {meta.input_size} px; "
            f"weights `{source}`; precision `{service.model.precision}`; window {pipeline.window_seconds:g} s, "
            f"smoothing {pipeline.smoothing}")


def build(host: ModelHost, config: Config, info: gr.Markdown) -> None:
    """The panel's controls; loading a model rewrites ``info`` (the summary shown at the top)."""

    def on_load(weights: str, labels: str, segments: float, precision: str, device: str, smoothing: float):
        model = {"num_segments": int(segments), "precision": precision, "device": device}
        try:
            if weights != KEEP_CHOICE:
                model["weights"] = None if weights == DEMO_CHOICE else str(resolve_in_weights(weights))
            if labels != KEEP_CHOICE:
                model["labels"] = None if labels == LABELS_FROM_WEIGHTS else str(resolve_in_weights(labels, LABELS_DIR))
            host.reload(model, {"smoothing": int(smoothing)})
        except (ValueError, FileNotFoundError) as exc:
            raise gr.Error(f"model not changed: {exc}") from exc
        return summary(host)

    with gr.Accordion("Model", open=False, elem_id="model-panel"):
        gr.Markdown(f"Weights come from `{WEIGHTS_DIR.name}/` only; label files from `{WEIGHTS_DIR.name}/"
                    f"{LABELS_DIR.name}/`. Loading replaces the model for every user; open streams re-attach.")
        with gr.Row():
            weights_in = gr.Dropdown([KEEP_CHOICE, DEMO_CHOICE, *weights_choices()], value=KEEP_CHOICE,
                                     label="Weights")
            labels_in = gr.Dropdown([KEEP_CHOICE, LABELS_FROM_WEIGHTS, *label_choices()], value=KEEP_CHOICE,
                                    label="Label file")
            segments_in = gr.Number(value=host.service.model.cfg.num_segments, precision=0, minimum=1, maximum=64,
                                    label="Segments T (official checkpoints; ours store T)")
        with gr.Row():
            precision_in = gr.Dropdown(list(PRECISION_CHOICES), value=config.model.precision, label="Precision")
            device_in = gr.Dropdown(list(DEVICES), value=config.model.device, label="Device")
            smoothing_in = gr.Slider(1, 16, value=config.pipeline.smoothing, step=1,
                                     label="Smoothing (windows averaged)")
        load = gr.Button("Load model", variant="primary", elem_id="load-model")

    load.click(on_load, [weights_in, labels_in, segments_in, precision_in, device_in, smoothing_in], info,
               concurrency_limit=1)
