"""The app's page, one module per area: :mod:`~app.tabs.webcam`, :mod:`~app.tabs.cameras`,
:mod:`~app.tabs.clip` and the :mod:`~app.tabs.model` panel. Each ``build(...)`` makes its
components inside the open ``gr.Blocks`` and wires their events; :mod:`app.ui` composes them.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

VIEW_HEIGHT = 360


@dataclass(frozen=True)
class PageControls:
    """Components every area reads: the tab's :class:`~app.sessions.BrowserSession` and the overlay settings."""
    session: gr.State
    threshold: gr.Slider
    heatmap: gr.Radio
    opacity: gr.Slider  # the heat map's strongest blend
