"""Live updates by Server-Sent Events (rules: services/gateway/live.py).

- the ``gateway.live-events`` consumer keeps each lifecycle event as a numbered record in the
  gateway's store (``live_events``, services/gateway/live_records.py: numbered in order without
  gaps, one insert per batch of events that arrive together), so every gateway instance
  streams the same records and a page catches up across a gateway restart;
- ``GET /api/stream`` streams the records the caller may see as ``text/event-stream``, each with
  its number as ``id``; ``Last-Event-ID`` (header, or ``?last_event_id=`` for the first connect)
  starts after that record; without it the stream starts now (a ``hello`` event gives the
  position). A stream ends after ``LIVE_STREAM_SECONDS`` (default 300) with a ``retry`` hint and
  the page reconnects with its last id: nothing is missed, and no connection lives forever.
"""
from __future__ import annotations

import time

import eventlet
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from shared.messaging.batch import consume_batches
from shared.refdata import load_district

from . import live_records
from .access import Access, roles_with
from .auth import READ_ALL
from .http import BadRequest, endpoint
from .live import sse, visible

STREAM = Access(None, roles_with("any", READ_ALL + ("unit", "partner")))
POLL_SECONDS, KEEPALIVE_SECONDS = 0.5, 15


def _docs() -> dict:
    from .openapi import Doc
    return {("GET", "/api/stream"): Doc(
        "实时更新 Live updates (Server-Sent Events) of the cases and operations the caller may see", "cases",
        "text/event-stream；每条带 id，断线后以 Last-Event-ID 续传（网关重启后亦可）。")}


def _last_id(request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("输入有误，请检查标出的字段 (invalid input)",
                         {"Last-Event-ID": ["应为上次收到的事件编号 (a number)"]}) from None
    if value < 0:
        raise BadRequest("输入有误，请检查标出的字段 (invalid input)", {"Last-Event-ID": ["不能为负数"]})
    return value


class LiveApi:
    """The live-events consumer and the stream, mixed into GatewayService."""

    OPENAPI_DOCS = _docs()

    @consume_batches("gateway.live-events", max_batch=50, linger_seconds=0.2, linger_config="LIVE_BATCH_SECONDS")
    def on_live_events(self, events: list[dict]):
        """The events that arrived together (within 0.2 s) become records in ONE insert."""
        items = live_records.items_for(self.db.live_events, events, load_district().calendar.to_local)
        live_records.keep(self.db.live_events, items)

    @http("GET", "/api/stream")
    @endpoint(STREAM)
    def get_stream(self, request, principal):
        after = _last_id(request)
        request.environ["eventlet.minimum_write_chunk_size"] = 0      # each event at once, not per 4 KB
        events, who = self.db.live_events, principal.principal
        if after is None:
            after = live_records.newest(events)
            hello = f"id: {after}\nevent: hello\ndata: {{}}\n\n"
        else:
            after = live_records.resume_from(events, after)
            hello = ": catching up\n\n"
        seconds = float((self.config or {}).get("LIVE_STREAM_SECONDS") or 300)

        def stream():
            last, until, quiet_since = after, time.monotonic() + seconds, time.monotonic()
            yield "retry: 1000\n" + hello
            while time.monotonic() < until:
                try:
                    items = live_records.after(events, last)
                except Exception:  # noqa: BLE001 - the gateway is stopping (store closed): the page reconnects
                    return
                for item in items:
                    last = item["n"]
                    if visible(who, item):
                        quiet_since = time.monotonic()
                        yield sse(item)
                if not items:
                    if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                        quiet_since = time.monotonic()
                        yield ": keepalive\n\n"
                    eventlet.sleep(POLL_SECONDS)
            yield f"id: {last}\nevent: bye\ndata: {{}}\n\n"

        return Response(stream(), status=200, content_type="text/event-stream; charset=utf-8",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
