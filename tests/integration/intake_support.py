"""Helpers for intake's integration tests: start intake (+ gateway, + dispatch), make an Open311
key, publish dispatch's lifecycle events through the real contracts, read intake's store."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

from services.dispatch.service import DispatchService
from services.gateway.auth import new_key
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from shared import storage
from shared.contracts.events import make_event
from shared.refdata import load_district
from tests.conftest import free_port
from tests.helpers import publish, wait_until

INSIDE = {"lon": 106.3904, "lat": 29.8338}        # 天生路社区第1网格, 天生街道
GAP = {"lon": 106.3960, "lat": 29.8302}           # the 盲区 (enclosed gap), nearest street 东阳街道
# A vertex shared by two grids of two streets: 500190001001002 (天生街道) and 500190002001001 (北泉街道)
BORDER = {"lon": 106.395943, "lat": 29.832929}


def start(container_factory, config, *, gateway=False, dispatch=False, extra=None):
    """Start intake (and optionally the gateway and dispatch) in this test's vhost/store."""
    cfg = dict(config, TIMER_POLL_SECONDS=0.1, **(extra or {}))
    container_factory(IntakeService, cfg).start()
    if dispatch:
        container_factory(DispatchService, cfg).start()
    url = None
    if gateway:
        port = free_port()
        container_factory(GatewayService, dict(cfg, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
        url = f"http://127.0.0.1:{port}"
    return SimpleNamespace(url=url, config=cfg)


def api_key(db) -> str:
    """An Open311 app's key: a gateway account of role citizen (the one key store)."""
    return new_key(db("gateway").accounts, "测试应用", "citizen")


_NEXT_VERSION = itertools.count(1000)


def dispatch_event(config, event_type: str, payload: dict, event_id: str, version: int | None = None,
                   seq: int = 0):
    """Publish one of dispatch's events (validated by its contract) on dispatch.events, stamped
    with its position in the case as shared.storage stamps it: ``version`` (default: a new change
    after every earlier one of this test run) and ``seq`` (its index in that change)."""
    case_id = payload["case_id"]
    event = make_event(event_type, payload, producer="dispatch", correlation_id=case_id,
                       event_id=event_id)
    event.update(aggregate_id=case_id, aggregate_version=next(_NEXT_VERSION) if version is None else version,
                 aggregate_seq=seq)
    publish(config, "dispatch.events", event_type, event)
    return event


def close_case(config, case_id: str, unit_id: str = "street.tianshengjie", on_time: bool = True):
    now = storage.now_utc()
    return dispatch_event(config, "case_closed", {
        "case_id": case_id, "unit_id": unit_id, "deadline": now, "on_time": on_time, "closed_at": now,
    }, f"{case_id}.closed.test.{now.timestamp()}")


def wait_case(db, case_id, check=lambda case: True, what="the case", timeout=20):
    return wait_until(lambda: (lambda c: c if c and check(c) else None)(
        db("intake").cases.find_one({"_id": case_id})), timeout=timeout, what=what)


def point_in_grid(index=0):
    grid = load_district().grids[index]
    point = grid["geometry"].representative_point()
    return {"lon": point.x, "lat": point.y}, grid
