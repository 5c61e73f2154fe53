"""Model panel, at the top of the page: what the model recognises (its classes and card), and the
controls that replace the shared model for every user. Errors show under the controls that caused them."""
from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from app.inputs import LABELS_DIR, WEIGHTS_DIR, label_choices, resolve_in_weights, weights_choices
from app.sessions import ModelHost
from tdn.api import DEMO_WEIGHTS
from tdn.checkpoint import stored_segments
from tdn.config import Config
from tdn.labels import label_name
from tdn.registry import DEVICES, ENGINE_CHOICES, PRECISION_CHOICES

KEEP_CHOICE = "keep current"
LABELS_FROM_WEIGHTS = "from the weights file"
INTRO_CLASSES = 12  # classes named in the intro line; all of them are in the card panel
CARD_NAME = "CARD.md"  # a model card beside a weights file


def summary(host: ModelHost) -> str:
    service = host.service
    cfg, meta = service.model.cfg, service.model.meta
    source = Path(meta.source).name if meta.source else "random initialisation"
    classes = f"{cfg.num_classes} classes" + ("" if meta.labels else " (no label names: showing indices)")
    pipeline = host.config.pipeline
    return (f"**Model:** TDN-{cfg.arch} `{cfg.variant}`, T={cfg.num_segments}, {classes}, input {meta.input_size} px; "
            f"weights `{source}`; engine `{service.model.engine}`, precision `{service.model.precision}` "
            f"({service.model.engine_choice}); window {pipeline.window_seconds:g} s, "
            f"smoothing {pipeline.smoothing}")


def class_names(host: ModelHost) -> list[str]:
    """The loaded model's class names, from its labels (indices where it has none)."""
    model = host.service.model
    return [label_name(model.meta.labels, i) for i in range(model.cfg.num_classes)]


def model_card(host: ModelHost) -> str | None:
    """The text of ``CARD.md`` beside the loaded weights file, if there is one."""
    source = host.service.model.meta.source
    card = Path(source).with_name(CARD_NAME) if source else None
    return card.read_text(encoding="utf-8") if card is not None and card.is_file() else None


def card_sentence(card: str | None) -> str | None:
    """The card's sentence that says what the model recognises (``It recognises ...``), if it has one."""
    match = re.search(r"[^.\n]*\brecognises\b[^.:\n]*", card or "")
    return match[0].strip() if match else None


def intro(host: ModelHost) -> str:
    """One line for the top of the page: what the loaded model recognises, from its labels and card."""
    names = class_names(host)
    shown = ", ".join(f"*{name}*" for name in names[:INTRO_CLASSES])
    more = f" and {len(names) - INTRO_CLASSES} more" if len(names) > INTRO_CLASSES else ""
    said = card_sentence(model_card(host))
    return (f"**The loaded model recognises {len(names)} classes:** {shown}{more}.  \n"
            + (f"{said}. " if said else "") + "Its card and every class: *About this model*, below.")


def about(host: ModelHost) -> str:
    """The *About this model* panel: every class, then the model card (or a line saying there is none)."""
    names = class_names(host)
    card = model_card(host)
    listing = "**Classes** (from the weights' labels): " + ", ".join(f"`{n}`" for n in names)
    return listing + "\n\n---\n\n" + (card or "*No model card (`CARD.md`) beside this weights file.*")


def weights_entries(host: ModelHost) -> tuple[list[tuple[str, str]], str]:
    """One dropdown entry per weights file in ``weights/`` (the bundled demo marked as such), and
    the entry of the loaded file (a *keep current* entry when it lies outside ``weights/``)."""
    demo = DEMO_WEIGHTS.relative_to(WEIGHTS_DIR).as_posix() if DEMO_WEIGHTS.is_relative_to(WEIGHTS_DIR) else None
    entries = [(f"{name} (bundled demo)" if name == demo else name, name) for name in weights_choices()]
    source = host.service.model.meta.source
    loaded = Path(source).resolve() if source else None
    if loaded is not None and loaded.is_relative_to(WEIGHTS_DIR.resolve()):
        return entries, loaded.relative_to(WEIGHTS_DIR.resolve()).as_posix()
    current = f"{loaded.name} (loaded at start)" if loaded is not None else "random initialisation (loaded at start)"
    return [(current, KEEP_CHOICE), *entries], KEEP_CHOICE


def problem(exc: Exception) -> str:
    """An error's message with files under ``weights/`` named from there, not from the server's folders."""
    return str(exc).replace(str(WEIGHTS_DIR), WEIGHTS_DIR.name)


def segments_state(weights: str, host: ModelHost) -> tuple[int, bool, str, str]:
    """The T box for a weights entry: ``(value, changeable, label, message)``. Fixed to the stored
    T for this project's files, changeable for official checkpoints (they do not store it); the
    message says why a file cannot be read (empty when it can)."""
    current = host.service.model.cfg.num_segments
    try:
        if weights == KEEP_CHOICE:
            source = host.service.model.meta.source
            if not source:
                return current, False, "Segments T (random model)", ""
            weights_path = Path(source)
        else:
            weights_path = resolve_in_weights(weights)
        stored = stored_segments(weights_path)
    except (ValueError, FileNotFoundError) as exc:
        return current, False, "Segments T", f"⚠️ {problem(exc)}"
    if stored is None:
        return current, True, "Segments T (official checkpoint: choose)", ""
    return stored, False, "Segments T (stored in this file)", ""


def build(host: ModelHost, config: Config, outputs: list[gr.Markdown]) -> None:
    """The panel's controls; loading a model rewrites ``outputs`` (summary, intro, about panel)."""
    entries, current = weights_entries(host)
    t_value, t_changeable, t_label, _ = segments_state(current, host)

    def on_weights(weights: str):
        value, changeable, label, problem = segments_state(weights, host)
        return gr.update(value=value, interactive=changeable, label=label), problem

    def on_load(weights: str, labels: str, segments: float, precision: str, device: str, engine: str,
                smoothing: float):
        model = {"num_segments": int(segments), "precision": precision, "device": device, "engine": engine}
        try:
            if weights != KEEP_CHOICE:
                model["weights"] = str(resolve_in_weights(weights))
            if labels != KEEP_CHOICE:
                model["labels"] = None if labels == LABELS_FROM_WEIGHTS else str(resolve_in_weights(labels, LABELS_DIR))
            host.reload(model, {"smoothing": int(smoothing)})
        except (ValueError, FileNotFoundError) as exc:
            return [gr.skip()] * len(outputs) + [f"⚠️ model not changed: {problem(exc)}"]
        return [summary(host), intro(host), about(host), f"✅ loaded `{Path(host.service.model.meta.source).name}`"]

    with gr.Accordion("Model", open=True, elem_id="model-panel"):
        with gr.Row(equal_height=True):
            weights_in = gr.Dropdown(entries, value=current, label="Weights (files in weights/)", scale=3,
                                     min_width=240, elem_id="model-weights")
            segments_in = gr.Number(value=t_value, precision=0, minimum=1, maximum=64, label=t_label,
                                    interactive=t_changeable, scale=1, min_width=140, elem_id="model-segments")
            load = gr.Button("Load model", variant="primary", scale=1, min_width=140, elem_id="load-model")
        message = gr.Markdown(elem_id="model-message")
        with gr.Accordion("More model settings", open=False):
            gr.Markdown(f"Label files come from `{WEIGHTS_DIR.name}/{LABELS_DIR.name}/`. Loading replaces the "
                        "model for every user; open streams re-attach.")
            with gr.Row():
                labels_in = gr.Dropdown([KEEP_CHOICE, LABELS_FROM_WEIGHTS, *label_choices()], value=KEEP_CHOICE,
                                        label="Label file", min_width=200, elem_id="model-labels")
                precision_in = gr.Dropdown(list(PRECISION_CHOICES), value=config.model.precision, label="Precision",
                                           min_width=120)
                device_in = gr.Dropdown(list(DEVICES), value=config.model.device, label="Device", min_width=120)
                engine_in = gr.Dropdown(list(ENGINE_CHOICES), value=config.model.engine, label="Engine", min_width=120)
                smoothing_in = gr.Slider(1, 16, value=config.pipeline.smoothing, step=1,
                                         label="Smoothing (windows averaged)", min_width=200)

    weights_in.change(on_weights, weights_in, [segments_in, message])
    load.click(on_load, [weights_in, labels_in, segments_in, precision_in, device_in, engine_in, smoothing_in],
               [*outputs, message], concurrency_limit=1)
