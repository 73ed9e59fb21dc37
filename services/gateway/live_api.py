"""Live updates by Server-Sent Events (rules: services/gateway/live.py).

- the ``gateway.live-events`` consumer keeps each lifecycle event as a numbered record in the
  gateway's store (``live_events``; the newest ``KEEP`` are kept), so every gateway instance
  streams the same records and a page catches up across a gateway restart. One insert per
  event: the number is the newest + 1, unique as the _id (``append``), and the event id is
  unique too, so a redelivery adds nothing;
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
from pymongo.errors import DuplicateKeyError
from werkzeug.wrappers import Response

from shared.messaging.consumer import consume_reliably
from shared.refdata import load_district

from .access import Access, roles_with
from .auth import READ_ALL
from .http import BadRequest, endpoint
from .live import record, sse, visible

STREAM = Access(None, roles_with("any", READ_ALL + ("unit", "partner")))
KEEP = 50000
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


_NEXT: dict[str, int] = {}          # per collection: the number this process will try next
_INDEXED: set[str] = set()


def ensure_indexes(events) -> None:
    """A delivered-twice event hits the unique event_id; an operation's opening is found by id."""
    key = events.full_name
    if key in _INDEXED:
        return
    try:
        events.create_index("event_id", unique=True, name="event_id_unique")
    except DuplicateKeyError:                  # records kept before the index: keep the first
        seen = set()
        for doc in events.find({}, {"event_id": 1}).sort("_id", 1):
            if doc.get("event_id") in seen:
                events.delete_one({"_id": doc["_id"]})
            seen.add(doc.get("event_id"))
        events.create_index("event_id", unique=True, name="event_id_unique")
    events.create_index([("operation_id", 1), ("type", 1)])
    _INDEXED.add(key)


def append(events, item: dict) -> int | None:
    """Keep ``item`` as the record after the newest: ONE insert, numbered newest + 1.

    The number is taken only after the previous one is in the store (this process wrote it, or
    read it as the newest), so numbers appear in order and without gaps, and a stream reading
    "after N" misses nothing. Another worker or gateway that took the number first makes the
    insert fail on _id: read the newest and try the next. The same event delivered twice fails
    on event_id: nothing to do. Returns the number, or None for a duplicate."""
    ensure_indexes(events)
    key = events.full_name
    while True:
        if key not in _NEXT:
            newest = events.find_one({}, {"_id": 1}, sort=[("_id", -1)])
            _NEXT[key] = (newest["_id"] if newest else 0) + 1
        number = _NEXT[key]
        try:
            events.insert_one(dict(item, _id=number))
        except DuplicateKeyError as exc:
            if "event_id" in ((exc.details or {}).get("keyPattern") or {}) or "event_id" in str(exc):
                return None                                 # delivered twice
            _NEXT.pop(key, None)                            # the number was taken: read again
            continue
        _NEXT[key] = number + 1
        if number % 1000 == 0:
            events.delete_many({"_id": {"$lte": number - KEEP}})
        return number


class LiveApi:
    """The live-events consumer and the stream, mixed into GatewayService."""

    OPENAPI_DOCS = _docs()

    @consume_reliably("gateway.live-events")
    def on_live_event(self, event: dict):
        payload = event.get("payload") or {}
        operation = None
        if payload.get("operation_id") and event.get("type") != "joint_operation_opened":
            operation = self.db.live_events.find_one(
                {"operation_id": payload["operation_id"], "type": "joint_operation_opened"})
        item = record(event, operation, load_district().calendar.to_local)
        if item is not None:
            append(self.db.live_events, item)

    @http("GET", "/api/stream")
    @endpoint(STREAM)
    def get_stream(self, request, principal):
        after = _last_id(request)
        request.environ["eventlet.minimum_write_chunk_size"] = 0      # each event at once, not per 4 KB
        events, who = self.db.live_events, principal.principal
        if after is None:
            newest = events.find_one({}, {"_id": 1}, sort=[("_id", -1)])
            after = newest["_id"] if newest else 0
            hello = f"id: {after}\nevent: hello\ndata: {{}}\n\n"
        else:
            hello = ": catching up\n\n"
        seconds = float((self.config or {}).get("LIVE_STREAM_SECONDS") or 300)

        def stream():
            last, until, quiet_since = after, time.monotonic() + seconds, time.monotonic()
            yield "retry: 1000\n" + hello
            while time.monotonic() < until:
                try:
                    items = list(events.find({"_id": {"$gt": last}}).sort("_id", 1).limit(200))
                except Exception:  # noqa: BLE001 - the gateway is stopping (store closed): the page reconnects
                    return
                for item in items:
                    last = item["_id"]
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
