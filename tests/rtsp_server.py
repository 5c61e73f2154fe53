#!/usr/bin/python3
"""A real RTSP server on 127.0.0.1 for the tests: GStreamer's gst-rtsp-server serving a live
H.264 test pattern (``videotestsrc is-live=true ! x264enc tune=zerolatency ! rtph264pay``).

Runs under the SYSTEM Python (Debian's ``python3-gi`` + ``gir1.2-gst-rtsp-server-1.0``), not the
project's venv, so the tests start it as a subprocess (see the ``rtsp_server`` fixture in
``tests/loopback.py``). Prints one line ``READY <url>`` on stdout once the port is bound, then
serves until killed. Usage::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 [--path /cam] [--user u --password p]
"""
from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/test", help="mount point (default: %(default)s)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--height", type=int, default=48)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--pattern", default="ball", help="videotestsrc pattern (default: %(default)s)")
    p.add_argument("--user", help="require RTSP basic authentication with this user ...")
    p.add_argument("--password", help="... and this password")
    return p.parse_args(argv)


def launch_description(args: argparse.Namespace) -> str:
    # key-int-max = fps: a client that connects (or reconnects) gets a key frame within 1 s
    return (
        f"( videotestsrc is-live=true pattern={args.pattern} "
        f"! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
        f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def require_basic_auth(server: GstRtspServer.RTSPServer, factory: GstRtspServer.RTSPMediaFactory,
                       user: str, password: str) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role_from_structure(Gst.Structure.new_from_string(
        "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"))
    factory.set_permissions(permissions)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.user is None) != (args.password is None):
        print("--user and --password go together", file=sys.stderr)
        return 2
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_description(args))
    factory.set_shared(True)  # one encoder for all clients
    if args.user is not None:
        require_basic_auth(server, factory, args.user, args.password)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
