"""``tdn cluster``: cluster mode on Ray (docs/cluster.md).

- ``tdn cluster up``: start a local Ray (or join ``--address``), start the controller and its camera
  cells, serve the HTTP front end on ``cluster.host:cluster.port``. With a local Ray it runs until
  Ctrl-C and then stops everything; on an existing cluster it deploys (detached) and returns.
- ``tdn cluster down``: remove the front end and the controller (``--address``).
- ``tdn cluster add URL [--name NAME]``, ``tdn cluster remove ID``, ``tdn cluster status [--json]``,
  ``tdn cluster events [--json] [--stats] [--duration S]``: clients of the front end's HTTP API
  (``--url``, default ``http://cluster.host:cluster.port``); they never import Ray.

Errors (the front end unreachable, a refused URL, an unknown camera) end as ``tdn cluster: error: ...``.
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request

from cli.options import add_setting_flags, bounded, config_from_args
from cli.predict import MODEL_SETTINGS
from tdn.config import Range

HTTP_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start or join Ray and deploy the cells, controller and front end")
    add_setting_flags(up, "cluster.address", "cluster.host", "cluster.port", "cluster.cells", *MODEL_SETTINGS)
    down = sub.add_parser("down", help="remove the front end, the controller and its cells")
    add_setting_flags(down, "cluster.address")
    add = sub.add_parser("add", help="add a camera (rtsp/http URL)")
    add.add_argument("camera_url", metavar="URL")
    add.add_argument("--name", default=None, help="camera id (default: cam-N)")
    remove = sub.add_parser("remove", help="remove a camera by id")
    remove.add_argument("camera_id", metavar="ID")
    status = sub.add_parser("status", help="cameras and cells")
    status.add_argument("--json", action="store_true", help="print the front end's JSON")
    events = sub.add_parser("events", help="the events of every camera, as tdn stream prints them")
    events.add_argument("--json", action="store_true", help="JSON lines (docs/events.schema.json)")
    events.add_argument("--stats", action="store_true", help="also the stats events")
    events.add_argument("--duration", type=bounded(float, Range(0, 1e9, lo_open=True)), default=None,
                        help="stop after this many seconds")
    for client in (add, remove, status, events):
        client.add_argument("--url", default=None, help="front end URL (default: http://cluster.host:cluster.port)")


def _front_end(args, config) -> str:
    return (args.url or f"http://{config.cluster.host}:{config.cluster.port}").rstrip("/")


def _request(method: str, url: str, body: dict | None = None, timeout: float | None = HTTP_TIMEOUT_S):
    """An HTTP response from the front end; its error message (or why it cannot be reached) as a ValueError."""
    data = None if body is None else json.dumps(body, allow_nan=False).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise ValueError(f"{method} {url}: {exc.code} {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(f"cannot reach the cluster front end at {url}: {reason} (is `tdn cluster up` running?)") \
            from None


def _status_table(state: dict) -> str:
    rows = [f"{'camera':<16} {'cell':<8} {'status':<12} {'fps':>6} {'pred/s':>7} {'p95 ms':>8} {'dropped':>8}  "
            "top-1 / detail"]
    for cam in state["cameras"]:
        top = f"{cam['topk'][0]['label']} {cam['topk'][0]['score']:.2f}" if cam.get("topk") else cam.get("detail", "")
        p95 = cam.get("latency_ms_p95")
        rows.append(f"{cam['id']:<16} {cam['cell'] or '-':<8} {cam['status']:<12} {cam.get('fps', 0):>6.1f} "
                    f"{cam.get('prediction_rate', 0):>7.2f} {'-' if p95 is None else f'{p95:.0f}':>8} "
                    f"{cam.get('dropped_windows', 0):>8}  {top}  ({cam['url']})")
    rows.append("")
    for cell in state["cells"]:
        rows.append(f"{cell['name']}: {cell['state']}, {cell['cameras']} cameras, capacity {cell['capacity']:.1f} "
                    f"windows/s, demand {cell['demand']:.1f} ({cell['node'] or 'no node yet'})")
    return "\n".join(rows)


def _event_text(event: dict) -> str:
    kind, stream = event["event"], event["stream"]
    if kind == "prediction":
        return f"{stream}: " + ", ".join(f"{e['label']} {e['score']:.3f}" for e in event["topk"]) + \
            f" ({event['latency_ms']:.0f} ms)"
    if kind == "label_change":
        return f"{stream}: {event['from']} -> {event['to']} ({event['score']:.3f})"
    if kind == "status":
        return f"{stream}: {event['status']}: {event['detail']}"
    rest = {k: v for k, v in event.items() if k not in ("event", "stream")}
    return f"{stream}: {kind}: " + json.dumps(rest, allow_nan=False)


def _up(config) -> int:
    from pipelines.cluster import deploy

    deploy.connect(config)
    try:
        url = deploy.deploy(config)
        print(f"tdn cluster: front end at {url}", flush=True)
        if config.cluster.address is not None:
            return 0  # the controller and the front end live on in the cluster
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        if config.cluster.address is None:
            import ray

            deploy.undeploy(config)
            ray.shutdown()


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.action == "up":
        return _up(config)
    if args.action == "down":
        from pipelines.cluster import deploy

        if config.cluster.address is None:
            raise ValueError("tdn cluster down needs --address (a local cluster stops with its tdn cluster up)")
        deploy.connect(config)
        deploy.undeploy(config)
        return 0
    base = _front_end(args, config)
    if args.action == "add":
        body = {"url": args.camera_url, **({"name": args.name} if args.name else {})}
        print(json.dumps(json.loads(_request("POST", f"{base}/cameras", body).read()), allow_nan=False))
        return 0
    if args.action == "remove":
        _request("DELETE", f"{base}/cameras/{urllib.request.quote(args.camera_id, safe='')}")
        return 0
    if args.action == "status":
        state = json.loads(_request("GET", f"{base}/cameras").read())
        print(json.dumps(state, allow_nan=False) if args.json else _status_table(state))
        return 0
    deadline = None if args.duration is None else time.monotonic() + args.duration
    query = "?stats=true" if args.stats else ""
    with _request("GET", f"{base}/events{query}", timeout=None if deadline is None else args.duration) as response:
        try:
            for line in response:
                if deadline is not None and time.monotonic() > deadline:
                    break
                event = json.loads(line)
                print(json.dumps(event, allow_nan=False) if args.json else _event_text(event), flush=True)
        except (TimeoutError, OSError):  # --duration ran out while waiting for the next event
            pass
    return 0
