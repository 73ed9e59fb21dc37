"""intake service: thin nameko entrypoints over the pure modules — filing.py (the filing
decision and what it writes), case_status.py (the copy of a case's status fed by dispatch),
disputes.py (the ownership ladder), sensors.py, open311.py — with the store's side of filing in
filing_store.py and of disputes in dispute_handlers.py (mixed in).

Aggregates (each change + its events in one document, see shared/storage.py):

* ``reports``  — every report from every channel, with its outcome (registered, rejected,
  duplicate, reopened), its Open311 token and the citizen's satisfaction answer;
* ``cases``    — intake's side of a case: registration, linked reports and subscribers, and a
  projection of its status from dispatch's events (for duplicates, reopening and Open311);
* ``disputes`` — ownership disputes (争议确权) with their level timers; a decided dispute is
  the responsibility-map override for its place;
* ``sensors``  — the state of each IoT sensor's rule (current episode);

Write order keeps crashes harmless: the case (with its events) is saved before the report; a
redelivered report finds its case by ``report_ids`` and only writes the missing report document.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import datetime, timezone

from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from shared import storage
from shared.config import database_name
from shared.health import Heartbeat
from shared.contracts import errors
from shared.messaging import outbox
from shared.messaging.consumer import consume_reliably
from shared.messaging.relay import OutboxRelay
from shared.messaging.rpc import rpc
from shared.refdata import load_district

from . import case_status, filing, migrations, open311, rules, stalls
from . import sensors as sensor_rules
from .answers import PUBLIC
from .answers import jsonable as _jsonable
from .answers import parse_time as _parse_time
from .dispute_handlers import DisputeHandlers
from .filing_store import FilingStore
from .schemas import ReportSchema, SatisfactionSchema, load_inbound_report, load_sensor_reading

log = logging.getLogger(__name__)


def filer(app) -> str | None:
    """The account behind a verified key the gateway passed (``{"key_id", …}``), as intake records
    who filed a request: ``key:<key id>``, the same whether it came over Open311 or the native API."""
    if isinstance(app, dict) and isinstance(app.get("key_id"), str) and 0 < len(app["key_id"]) <= 100:
        return f"key:{app['key_id']}"
    return None

_SENSOR_LOCKS: dict = defaultdict(threading.Lock)   # green locks under eventlet: one reading per sensor at a time


class Indexes(DependencyProvider):
    """Creates intake's indexes at start (idempotent; a store that refuses one is only logged)."""

    connection = storage.MongoConnection()

    def setup(self):
        database = self.connection.client[database_name(self.container.config, self.container.service_name)]
        wanted = [("reports", "token"), ("reports", "case_id"), ("reports", "received_day"),
                  ("cases", "dup_cell"), ("cases", "class_code"), ("disputes", "state"),
                  ("filing_claims", "until")]   # the sweep of run-out claims (filing_store): MongoDB
                                                # serves its range by it; the embedded store plans no
                                                # range on a date by an index and reads the (small) set
        for collection, key in wanted:
            try:
                database[collection].create_index(key)
            except Exception as exc:  # noqa: BLE001 - an index is an optimisation here
                log.warning("index %s.%s not created: %s", collection, key, exc)
        try:
            migrations.run(database)      # once per store: fields the searches need (migrations.py)
        except Exception:  # noqa: BLE001 - not marked as run: tried again at the next start
            log.exception("intake's start-up migrations did not finish; old documents may be missed "
                          "by the duplicate and dispute searches until the next start")


class IntakeService(FilingStore, DisputeHandlers):
    name = "intake"

    db = storage.MongoDatabase()
    relay = OutboxRelay("reports", "cases", "disputes", "sensors")
    heartbeat = Heartbeat()
    indexes = Indexes()
    config = Config()

    # ================================================================= channels
    @errors.raise_failures            # a failure reaches the caller as its kind (shared/contracts/errors.py)
    @rpc
    def submit_report(self, data: dict, caller: str | None = None) -> dict:
        """Validate and file one report (native HTTP: web, inspector, road_office …);
        returns {report_id, status, case_id?, owner_unit?, reason?, token, service_notice}.
        ``caller``: the authenticated account (``key:<key id>``, from the gateway): it scopes
        ``external_id`` and is the request's filer."""
        try:
            report = ReportSchema().load(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        account = caller if isinstance(caller, str) and 0 < len(caller) <= 100 else None
        return self._file(report, account=account)

    @consume_reliably("intake.inbound-reports", loader=load_inbound_report)
    def on_inbound_report(self, report: dict):
        """The 12345 hotline bridge, inspectors' devices, sensor platforms, road-office notes."""
        self._file(report)

    @consume_reliably("intake.sensor-readings", loader=load_sensor_reading)
    def on_sensor_reading(self, reading: dict):
        district = load_district()
        sensor = district.sensor(reading["sensor_id"])
        rule = district.sensor_rule(sensor["metric"])
        if self.db.sensors.find_one({"_id": sensor["id"]}, {"_id": 1}) is None:
            storage.create(self.db.sensors, {"_id": sensor["id"], "state": dict(sensor_rules.EMPTY_STATE),
                                             "reports": [], "readings": 0})

        def change():
            doc = self.db.sensors.find_one({"_id": sensor["id"]})
            if storage.already_applied(doc, reading["reading_id"]):
                return
            state, triggers = sensor_rules.observe(doc.get("state"), reading, rule, district.calendar.tz)
            filed = []
            for trigger in triggers:
                raw = sensor_rules.report_for(sensor, rule, trigger, district.minor_class(rule["class_code"]),
                                              district.calendar.tz)
                report = ReportSchema().load(ReportSchema().dump(raw))
                answer = self._file(report)       # idempotent: one report id per sensor episode
                filed.append({"report_id": answer["report_id"], "status": answer["status"],
                              "case_id": answer.get("case_id"), "episode_start": trigger["episode_start"]})
            storage.update(self.db.sensors, sensor["id"], doc["_version"],
                           set_fields={"state": state, "last_reading": reading},
                           push={"reports": filed}, inc={"readings": 1}, applied=reading["reading_id"])
        with _SENSOR_LOCKS[sensor["id"]]:           # other instances: optimistic concurrency
            storage.retry_on_conflict(change, attempts=20)

    # ================================================================= dispatch's lifecycle
    @consume_reliably("intake.case-lifecycle")
    def on_case_lifecycle(self, event: dict):
        """Keep intake's view of each case's status (open/closed, unit, deadline, notes), and tell
        the subscribed reporters when their case is dispatched and when it is closed (in the same
        update: a ``reporter_notified`` event per reporter → ``notify.reporter-outbox``)."""
        district = load_district()
        case_id = event["payload"]["case_id"]

        def unit_name(unit_id):
            return (district.units.get(unit_id) or {}).get("name", unit_id or "")

        def change():
            case = self.db.cases.find_one({"_id": case_id})
            if case is None:
                log.warning("lifecycle event %s for a case intake does not know: %s",
                            event["type"], case_id, extra={"case_id": case_id})
                return
            if storage.already_applied(case, event["event_id"]):
                return
            fields = case_status.project(case, event, unit_name, district.calendar.tz)
            entry = {"type": event["type"], "event_id": event["event_id"],
                     "at": event["payload"].get("at") or event["payload"].get("dispatched_at")
                     or event["payload"].get("closed_at"), "applied": any(not key.startswith("_") for key in fields)}
            # dispatched: always news to the reporter; closed: only if the case did not move on since
            telling = event["type"] == "case_dispatched" or case_status.sets_state(fields)
            notices = case_status.reporter_notices(case, event, unit_name, district.calendar.tz) if telling else []
            now = storage.now_utc()
            events = [outbox.event("reporter_notified", {
                **{key: notice[key] for key in ("case_id", "report_id", "reporter_id", "channel", "kind", "message")},
                "notified_at": now}, case_id, notice["id"]) for notice in notices]
            storage.update(self.db.cases, case_id, case["_version"], set_fields=fields,
                           push={"history": [entry]}, events=events, applied=event["event_id"])
        storage.retry_on_conflict(change)

    # ================================================================= decisions, callbacks
    @rpc
    def record_satisfaction(self, request_id: str, data: dict, app=None) -> dict:
        """回访 after closing: responded / resolved / satisfied, once per report, only from the
        account that filed the request (``app``: the caller's verified key, passed by the gateway)."""
        account = filer(app)
        try:
            answer = SatisfactionSchema().load(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        now = storage.now_utc()

        def change():
            report = self.db.reports.find_one({"_id": request_id})
            if report is None:
                return {"status": "not_found"}
            if not rules.may_rate(report, account):
                return {"status": "forbidden",
                        "reason": "只有提交该诉求的账号才能回访 (only the account that filed the request may record its callback)"}
            if report.get("status") == "rejected":
                return {"status": "conflict", "reason": "该上报未立案，无需回访 (not filed: nothing to rate)"}
            if report.get("satisfaction"):
                return {"status": "conflict", "reason": "已经回访过 (already recorded)",
                        "satisfaction": _jsonable(report["satisfaction"])}
            case = self.db.cases.find_one({"_id": report["case_id"]}) or {}
            if case.get("state") != "closed":
                return {"status": "conflict", "reason": "案件尚未结案，结案后才能回访 (the case is not closed yet)"}
            record = dict(answer, recorded_at=now)
            event = outbox.event("satisfaction_recorded", {
                "case_id": case["_id"], "report_id": request_id, "unit_id": case.get("unit_id"),
                "responded": answer["responded"], "resolved": bool(answer["resolved"]),
                "satisfied": bool(answer["satisfied"]), "recorded_at": now, "channel": answer["channel"],
                "comment": answer["comment"]}, case["_id"], f"{request_id}.satisfaction")
            storage.update(self.db.reports, request_id, report["_version"],
                           set_fields={"satisfaction": record, "updated_at": now}, events=[event],
                           applied=f"{request_id}.satisfaction")
            return {"status": "recorded", "case_id": case["_id"], "satisfaction": _jsonable(record)}
        return storage.retry_on_conflict(change)

    # ================================================================= Open311 (via the gateway)
    @rpc
    def open311_services(self) -> list:
        return open311.service_list(load_district())

    @rpc
    def open311_service_definition(self, code: str) -> dict:
        try:
            return {"status": 200, "body": open311.service_definition(load_district(), code)}
        except open311.Open311Error as exc:
            return {"status": exc.status, "errors": exc.errors}

    @rpc
    def open311_submit(self, app, params: dict, token: str | None = None) -> dict:
        """POST requests: the app (its api_key verified by the gateway, which keeps every key:
        ``{"key_id", "name", "role"}``; 403 without one), form (400), jurisdiction/service (404),
        then file."""
        try:
            if not (isinstance(app, dict) and isinstance(app.get("key_id"), str) and app["key_id"]):
                raise open311.Open311Error(403, "api_key 无效或缺失 (invalid or missing api_key)")
            try:
                loaded = open311.Open311RequestSchema().load(params if isinstance(params, dict) else {})
            except ValidationError as exc:
                raise open311.Open311Error(400, *open311.errors_from_validation(exc.messages)) from None
            district = load_district()
            open311.check_jurisdiction(loaded.get("jurisdiction_id"), district)
            raw = open311.to_report(loaded, district)
            try:
                report = ReportSchema().load(raw)
            except ValidationError as exc:
                raise open311.Open311Error(400, *open311.errors_from_validation(exc.messages)) from None
        except open311.Open311Error as exc:
            return {"status": exc.status, "errors": exc.errors}
        if not (isinstance(token, str) and token.startswith("tok-") and len(token) <= 64):
            token = None
        answer = self._file(report, token=token, account=filer(app))
        if answer["status"] == "conflict":
            return {"status": 409, "errors": [{"code": 409, "description": answer["reason"]}]}
        return {"status": 201, "body": [{
            "service_request_id": answer["report_id"], "service_notice": answer.get("service_notice"),
            "account_id": report["reporter"].get("account_id") or None}], "answer": answer}

    @rpc
    def open311_requests(self, filters: dict) -> dict:
        """GET requests: ids (override the rest) or codes + date window + statuses, paged."""
        district = load_district()
        ids = [str(i) for i in filters.get("ids") or []][:200]
        if ids:
            docs = [doc for doc in (self.db.reports.find_one({"_id": report_id}, PUBLIC)    # by _id: no $in
                                    for report_id in dict.fromkeys(ids)) if doc is not None]
        else:
            docs = self._received_between(_parse_time(filters["start"]), _parse_time(filters["end"]),
                                          {str(c) for c in filters.get("codes") or []})
        docs.sort(key=lambda doc: doc.get("received_at") or datetime.min.replace(tzinfo=timezone.utc),
                  reverse=True)
        views = self._views(docs, district)
        statuses = filters.get("statuses") or []
        if statuses and not ids:
            views = [view for view in views if view["status"] in statuses]
        page, size = int(filters.get("page") or 1), int(filters.get("page_size") or 1000)
        return {"total": len(views), "items": views[(page - 1) * size: page * size]}

    def _received_between(self, start, end, codes, limit=5000) -> list:
        """Reports received in the window (of these classes), newest first, at most ``limit``:
        one indexed equality per day (``received_day``; the window is at most 90 days), the
        rest filtered here."""
        start, end = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc) for moment in (start, end))
        docs = []
        for day in filing.days_back(start, end):
            docs += [doc for doc in self.db.reports.find({"received_day": day}, PUBLIC)
                     if start <= doc["received_at"] <= end and (not codes or doc.get("class_code") in codes)]
            if len(docs) >= limit:
                break
        docs.sort(key=lambda doc: doc["received_at"], reverse=True)
        return docs[:limit]

    @rpc
    def open311_request(self, request_id: str) -> dict | None:
        doc = self.db.reports.find_one({"_id": request_id}, PUBLIC)
        if doc is None:
            return None
        return self._views([doc], load_district())[0]

    @rpc
    def open311_token(self, token: str) -> dict | None:
        doc = self.db.reports.find_one({"token": token}, {"_id": 1, "token": 1})
        if doc is None:
            return None
        return {"service_request_id": doc["_id"], "token": doc["token"]}

    # ================================================================= queries
    @rpc
    def get_report(self, report_id: str):
        return _jsonable(storage.public(self.db.reports.find_one({"_id": report_id})), load_district().calendar.tz)

    @rpc
    def get_case(self, case_id: str):
        """The registering report of a case (as before), plus intake's case view."""
        case = self.db.cases.find_one({"_id": case_id}, PUBLIC)      # by _id: the report by the case's ids
        doc = None
        for report_id in ([case.get("report_id")] + case.get("report_ids", [])) if case else []:
            doc = self.db.reports.find_one({"_id": report_id}) if report_id else None
            if doc is not None:
                break
        if doc is None:
            return None
        answer = storage.public(doc)
        answer["intake_case"] = storage.public(case)
        return _jsonable(answer, load_district().calendar.tz)

    @rpc
    def case_view(self, case_id: str):
        return _jsonable(storage.public(self.db.cases.find_one({"_id": case_id}, PUBLIC)), load_district().calendar.tz)

    # ================================================================= 四定 stall permits
    @errors.raise_failures            # a failure reaches the caller as its kind (shared/contracts/errors.py)
    @rpc
    def register_stall_permit(self, data: dict, registered_by: str | None = None) -> dict:
        """Add or replace a permit in the register (idempotent by permit_id). ``registered_by``:
        the unit registering it (None: the command centre); a unit never replaces another's."""
        try:
            permit = stalls.load_permit(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        stored = dict(stalls.dump_permit(permit), registered_by=registered_by)
        stored["registered_at"] = storage.now_utc()
        if not stalls.may_replace(self.db.stall_permits.find_one({"_id": permit["permit_id"]}), registered_by):
            return {"status": "forbidden", "errors": {"permit_id": [stalls.NOT_YOURS]}}
        self.db.stall_permits.replace_one({"_id": permit["permit_id"]}, {"_id": permit["permit_id"], **stored},
                                          upsert=True)
        return {"status": "registered", "permit": _jsonable(stored)}

    @rpc
    def list_stall_permits(self) -> list:
        return [_jsonable(stalls.dump_permit(permit)) for permit in
                sorted(self._stall_permits(), key=lambda p: p["permit_id"])]
