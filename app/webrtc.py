"""The browser webcam over WebRTC: the page sends its camera as a video track, this module receives
it with aiortc and hands every decoded frame, stamped with its capture time, to a callback (the
Webcam tab pushes it into the tab's push stream). Frames arrive at the camera's rate, not at a
polling interval.

Signalling is one offer/answer exchange (the page gathers its ICE candidates first, so no trickle).
ICE uses the host's own addresses only: no STUN, and no TURN unless ``app.turn_url`` names one
(:func:`ice_servers`), so by default nothing leaves the machines of the browser and the server.

One asyncio loop thread (started on first use, then kept for the life of the process) runs every
peer connection of the app; a peer that fails, closes or stops its track is closed and its
``on_end`` callback runs once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
import time
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from tdn.config import AppConfig, ConfigError

log = logging.getLogger(__name__)

TURN_SCHEMES = ("turn", "turns")
SIGNALLING_TIMEOUT_S = 10.0  # an offer not answered within this (ICE gathering on a busy host) is refused


@dataclasses.dataclass(frozen=True)
class IceServer:
    """A TURN server both ends may relay through (the browser's ``RTCIceServer`` dictionary)."""
    url: str
    username: str
    credential: str

    def to_browser(self) -> dict:
        return {"urls": [self.url], "username": self.username, "credential": self.credential}


def ice_servers(app: AppConfig) -> list[IceServer]:
    """The ICE servers the settings ask for: none by default (host candidates only), or the TURN
    server ``app.turn_url`` (``turn:host[:port][?transport=udp|tcp]`` or ``turns:...``) with
    ``app.turn_username`` and ``app.turn_credential``. Raises :class:`ConfigError` naming the key."""
    if app.turn_url is None:
        for key in ("turn_username", "turn_credential"):
            if getattr(app, key) is not None:
                raise ConfigError(f"config key 'app.{key}' is set but 'app.turn_url' is not; set both or neither")
        return []
    url = app.turn_url.strip()
    scheme, _, rest = url.partition(":")
    if scheme not in TURN_SCHEMES or not rest or rest.startswith("/"):
        raise ConfigError(f"config key 'app.turn_url' must look like turn:host:3478 or turns:host:5349, got {url!r}")
    parts = urlsplit(f"//{rest}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    transport = parts.query.removeprefix("transport=") if parts.query else "udp"
    if not parts.hostname or port == -1 or transport not in ("udp", "tcp") or parts.username is not None:
        raise ConfigError(f"config key 'app.turn_url' must be turn:host[:port][?transport=udp|tcp] "
                          f"(credentials go in app.turn_username / app.turn_credential), got {url!r}")
    if not app.turn_username or not app.turn_credential:
        raise ConfigError("config keys 'app.turn_username' and 'app.turn_credential' are needed with 'app.turn_url'")
    return [IceServer(url, app.turn_username, app.turn_credential)]


class CaptureClock:
    """Capture times (unix s) of a track's frames from their media times (RTP timestamps in s,
    arbitrary origin, the sender's clock). The offset is the smallest ``arrival - media time``
    seen so far: the frame that travelled fastest defines it, so a stamp is the capture time plus
    the smallest transport delay (milliseconds on a LAN), never later than the frame's arrival.

    E.g. frames with media times 5.00, 5.04 arriving at 100.30, 100.36 are stamped 100.30, 100.34.
    """

    def __init__(self):
        self._offset = math.inf

    def stamp(self, media_t: float, *, arrival: float) -> float:
        self._offset = min(self._offset, arrival - media_t)
        return media_t + self._offset


FrameCallback = Callable[[np.ndarray, float], None]  # (RGB uint8 (H, W, 3) frame, capture time unix s)


class _Peer:
    """One browser's connection: its track's frames go to ``on_frame``; ``on_end`` runs once at the end."""

    def __init__(self, pc: RTCPeerConnection, on_frame: FrameCallback, on_end: Callable[[str], None],
                 max_lag_s: float):
        self.pc = pc
        self.on_frame = on_frame
        self.on_end = on_end
        self.max_lag_s = max_lag_s
        self.frames = self.late_frames = 0
        self.receiving: asyncio.Task | None = None  # held here: the loop keeps only weak references to tasks
        self._ended = False

    async def receive(self, track) -> None:
        """Read frames until the track ends; frames already ``max_lag_s`` old when read are
        skipped (counted), so a slow consumer never builds a backlog."""
        clock = CaptureClock()
        try:
            while True:
                frame = await track.recv()
                now = time.time()
                t = clock.stamp(float(frame.time), arrival=now)
                if now - t > self.max_lag_s:
                    self.late_frames += 1
                    continue
                self.frames += 1
                self.on_frame(frame.to_ndarray(format="rgb24"), t)
        except MediaStreamError:
            await self.close("the browser stopped sending video")
        except Exception as exc:  # a callback bug: end this peer, keep the loop serving others
            log.exception("webcam peer failed")
            await self.close(f"{type(exc).__name__}: {exc}")

    async def close(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        await self.pc.close()
        log.info("webcam peer closed (%s) after %d frames, %d skipped as late", reason, self.frames, self.late_frames)
        self.on_end(reason)


class WebcamPeers:
    """The app's WebRTC peers, one per key (a browser tab), all on one asyncio loop thread."""

    def __init__(self, servers: list[IceServer], *, max_lag_s: float = 0.5):
        self.servers = servers
        self.max_lag_s = max_lag_s
        self._peers: dict[str, _Peer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="webrtc peers", daemon=True)
                self._thread.start()
            return self._loop

    def answer(self, key: str, offer: dict, *, on_frame: FrameCallback, on_end: Callable[[str], None]) -> dict:
        """Accept the browser's ``offer`` (``{"sdp", "type": "offer"}``) for ``key``, replacing its
        previous peer; returns the answer with every local candidate in it. Raises ``ValueError``
        for an offer that is not one."""
        if not isinstance(offer, dict) or offer.get("type") != "offer" or not isinstance(offer.get("sdp"), str):
            raise ValueError("the browser sent no WebRTC offer")
        self.close(key)
        answering = asyncio.run_coroutine_threadsafe(self._answer(key, offer, on_frame, on_end), self._running_loop())
        return answering.result(SIGNALLING_TIMEOUT_S)

    async def _answer(self, key: str, offer: dict, on_frame: FrameCallback, on_end: Callable[[str], None]) -> dict:
        config = RTCConfiguration(iceServers=[RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
                                              for s in self.servers])  # [] : no STUN (aiortc's default is Google's)
        pc = RTCPeerConnection(config)

        def ended(reason: str) -> None:
            if self._peers.get(key) is peer:
                del self._peers[key]
            on_end(reason)

        peer = _Peer(pc, on_frame, ended, self.max_lag_s)
        self._peers[key] = peer

        @pc.on("track")
        def on_track(track):
            if track.kind == "video":
                peer.receiving = asyncio.ensure_future(peer.receive(track))

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed"):
                await peer.close(f"connection {pc.connectionState}")

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())  # gathers the candidates
        except Exception as exc:
            await peer.close(f"bad offer: {exc}")
            raise ValueError(f"the browser's WebRTC offer was refused: {exc}") from exc
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    def close(self, key: str, reason: str = "stopped") -> None:
        """Close ``key``'s peer, if any (its ``on_end`` runs): at once from other threads, soon on
        the loop thread itself (an ``on_end`` callback that closes peers)."""
        peer = self._peers.get(key)
        if peer is None:
            return
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            loop.create_task(peer.close(reason))
        else:
            asyncio.run_coroutine_threadsafe(peer.close(reason), loop).result(SIGNALLING_TIMEOUT_S)

