"""intake service: thin nameko entrypoints over services.intake.rules / sensors / open311.

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
import os
import secrets
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from shapely.geometry import mapping, shape

from shared import storage, timers
from shared.config import database_name
from shared.contracts.events import new_id
from shared.health import Heartbeat
from shared.messaging import outbox
from shared.messaging.consumer import consume_reliably
from shared.messaging.relay import OutboxRelay
from shared.messaging.rpc import rpc
from shared.refdata import load_district
from shared.refdata.intake_data import disc

from . import open311, rules, stalls
from . import sensors as sensor_rules
from .schemas import (DecisionSchema, ReportSchema, SatisfactionSchema, load_inbound_report,
                      load_sensor_reading)

log = logging.getLogger(__name__)

POLICY_OVERRIDES = {   # container config or environment → intake.yaml setting
    "INTAKE_DUPLICATE_RADIUS_M": ("duplicates", "radius_m"),
    "INTAKE_OPEN_CASE_WINDOW_DAYS": ("duplicates", "open_case_window_days"),
    "INTAKE_REOPEN_DAYS": ("duplicates", "reopen_within_days"),
}
_SENSOR_LOCKS: dict = defaultdict(threading.Lock)   # green locks under eventlet: one reading per sensor at a time
PUBLIC = {"_outbox": 0, "_applied": 0, "_timers": 0, "_pending": 0, "_lease": 0, "_timer_lease": 0}


class Indexes(DependencyProvider):
    """Creates intake's indexes at start (idempotent; a store that refuses one is only logged)."""

    connection = storage.MongoConnection()

    def setup(self):
        database = self.connection.client[database_name(self.container.config, self.container.service_name)]
        wanted = [("reports", "token"), ("reports", "case_id"), ("reports", "received_at"),
                  ("cases", "report_ids"), ("cases", "class_code"), ("disputes", "state")]
        for collection, key in wanted:
            try:
                database[collection].create_index(key)
            except Exception as exc:  # noqa: BLE001 - an index is an optimisation here
                log.warning("index %s.%s not created: %s", collection, key, exc)


class IntakeService:
    name = "intake"

    db = storage.MongoDatabase()
    relay = OutboxRelay("reports", "cases", "disputes", "sensors")
    heartbeat = Heartbeat()
    indexes = Indexes()
    config = Config()

    # ================================================================= channels
    @rpc
    def submit_report(self, data: dict) -> dict:
        """Validate and file one report (native HTTP: web, inspector, road_office …);
        returns {report_id, status, case_id?, owner_unit?, reason?, token, service_notice}."""
        try:
            report = ReportSchema().load(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        return self._file(report)

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
            fields = rules.project(case, event, unit_name, district.calendar.tz)
            entry = {"type": event["type"], "event_id": event["event_id"],
                     "at": event["payload"].get("at") or event["payload"].get("dispatched_at")
                     or event["payload"].get("closed_at"), "applied": bool(fields)}
            notices = rules.reporter_notices(case, event, unit_name, district.calendar.tz) if fields else []
            now = storage.now_utc()
            events = [outbox.event("reporter_notified", {
                **{key: notice[key] for key in ("case_id", "report_id", "reporter_id", "channel", "kind", "message")},
                "notified_at": now}, case_id, notice["id"]) for notice in notices]
            storage.update(self.db.cases, case_id, case["_version"], set_fields=fields,
                           push={"history": [entry]}, events=events, applied=event["event_id"])
        storage.retry_on_conflict(change)

    @consume_reliably("intake.ownership-disputes")
    def on_case_ownership_disputed(self, event: dict):
        """A case returned twice: open a four-level dispute for its class at its place."""
        payload = event["payload"]
        case = self.db.cases.find_one({"_id": payload["case_id"]})
        if case is None:
            log.warning("ownership dispute for a case intake does not know: %s", payload["case_id"])
            return
        district = load_district()
        policy = self._policy(district)
        location = case["location"]
        radius = policy["ownership"]["returned_case_place_radius_m"]
        nearest = district.nearest_grid(location["lon"], location["lat"])
        place = {"place_id": f"case-{case['_id']}", "kind": "returned_case",
                 "geometry": mapping(disc(location["lon"], location["lat"], radius)),
                 "nearest_community": case.get("community_name") or nearest["community_name"]}
        dispute_id = f"OD-{case['_id']}"
        now = storage.now_utc()
        self._attach_to_dispute(dispute_id, case, place, district, policy, now, trigger="returned",
                                scope="class", units=payload.get("units") or [])

        def mark():
            current = self.db.cases.find_one({"_id": case["_id"]})
            if current.get("dispute_id") == dispute_id:
                return
            storage.update(self.db.cases, case["_id"], current["_version"],
                           set_fields={"dispute_id": dispute_id}, applied=event["event_id"])
        storage.retry_on_conflict(mark)

    @timers.timer_due("disputes")
    def on_dispute_timer(self, dispute_id, timer):
        """A level's deadline passed without a decision: up one level (community → street →
        department → leadership); at the top, the dispute is marked overdue."""
        district = load_district()
        policy = self._policy(district)
        now = storage.now_utc()

        def change():
            doc = self.db.disputes.find_one({"_id": dispute_id})
            remaining = timers.without(doc, timer["id"])
            if doc["state"] != "open" or timer["data"].get("level") != doc["level"]:
                storage.update(self.db.disputes, dispute_id, doc["_version"], timers=remaining,
                               applied=timer["id"])
                return
            upper = rules.next_level(doc["level"])
            if upper is None:
                storage.update(self.db.disputes, dispute_id, doc["_version"], timers=remaining,
                               set_fields={"overdue": True}, applied=timer["id"])
                return
            deadline = rules.level_deadline(district, policy, upper, now)
            arbiter = rules.arbiter(policy, upper, doc.get("street_id"), doc.get("community"))
            event = outbox.event("ownership_dispute_escalated", {
                "dispute_id": dispute_id, "from_level": doc["level"], "to_level": upper,
                "deadline": deadline, "escalated_at": now, "case_ids": doc.get("case_ids", []),
                "arbiter": arbiter}, doc.get("case_id") or dispute_id, f"{dispute_id}.escalated.{upper}")
            storage.update(
                self.db.disputes, dispute_id, doc["_version"],
                set_fields={"level": upper, "deadline": deadline, "arbiter": arbiter},
                push={"history": [{"level": upper, "at": now, "deadline": deadline, "arbiter": arbiter}]},
                timers=remaining + [timers.timer(f"{dispute_id}.{upper}", deadline, "escalate", level=upper)],
                events=[event], applied=timer["id"])
        storage.retry_on_conflict(change)

    # ================================================================= decisions, callbacks
    @rpc
    def decide_ownership(self, dispute_id: str, data: dict) -> dict:
        """确权: record who owns the place; the next case there goes straight to that owner."""
        try:
            decision = DecisionSchema().load(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        district = load_district()
        now = storage.now_utc()

        def change():
            doc = self.db.disputes.find_one({"_id": dispute_id})
            if doc is None:
                return {"status": "not_found"}
            problem = rules.can_decide(doc, decision["owner_unit"], district.units)
            if problem:
                return {"status": problem[0], "reason": problem[1]}
            event = outbox.event("ownership_decided", {
                "dispute_id": dispute_id, "owner_unit": decision["owner_unit"], "level": doc["level"],
                "decided_by": decision["decided_by"], "decided_at": now, "case_id": doc.get("case_id"),
                "case_ids": doc.get("case_ids", []), "interim_owner": doc.get("interim_owner"),
                "place_id": doc.get("place_id"), "scope": doc.get("scope", "area"),
                "class_code": doc.get("class_code"), "note": decision["note"],
            }, doc.get("case_id") or dispute_id, f"{dispute_id}.decided")
            storage.update(self.db.disputes, dispute_id, doc["_version"], set_fields={
                "state": "decided", "owner_unit": decision["owner_unit"], "decided_by": decision["decided_by"],
                "decided_at": now, "decided_level": doc["level"], "note": decision["note"]},
                timers=[], events=[event], applied=f"{dispute_id}.decided")
            return {"status": "decided", "dispute": self._dispute_view(dispute_id)}
        return storage.retry_on_conflict(change)

    @rpc
    def record_satisfaction(self, request_id: str, data: dict) -> dict:
        """回访 after closing: responded / resolved / satisfied, once per report."""
        try:
            answer = SatisfactionSchema().load(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        now = storage.now_utc()

        def change():
            report = self.db.reports.find_one({"_id": request_id})
            if report is None:
                return {"status": "not_found"}
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
                "responded": answer["responded"], "resolved": answer["resolved"],
                "satisfied": answer["satisfied"], "recorded_at": now, "channel": answer["channel"],
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
        answer = self._file(report, token=token)
        return {"status": 201, "body": [{
            "service_request_id": answer["report_id"], "service_notice": answer.get("service_notice"),
            "account_id": report["reporter"].get("account_id") or None}], "answer": answer}

    @rpc
    def open311_requests(self, filters: dict) -> dict:
        """GET requests: ids (override the rest) or codes + date window + statuses, paged."""
        district = load_district()
        ids = [str(i) for i in filters.get("ids") or []][:200]
        if ids:
            docs = list(self.db.reports.find({"_id": {"$in": ids}}, PUBLIC))
        else:
            start = _parse_time(filters["start"])
            end = _parse_time(filters["end"])
            query = {"received_at": {"$gte": start, "$lte": end}}
            if filters.get("codes"):
                query["class_code"] = {"$in": [str(c) for c in filters["codes"]]}
            docs = list(self.db.reports.find(query, PUBLIC).sort("received_at", -1).limit(5000))
        docs.sort(key=lambda doc: doc.get("received_at") or datetime.min.replace(tzinfo=timezone.utc),
                  reverse=True)
        views = self._views(docs, district)
        statuses = filters.get("statuses") or []
        if statuses and not ids:
            views = [view for view in views if view["status"] in statuses]
        page, size = int(filters.get("page") or 1), int(filters.get("page_size") or 1000)
        return {"total": len(views), "items": views[(page - 1) * size: page * size]}

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
        return _jsonable(storage.public(self.db.reports.find_one({"_id": report_id})))

    @rpc
    def get_case(self, case_id: str):
        """The registering report of a case (as before), plus intake's case view."""
        doc = self.db.reports.find_one({"case_id": case_id, "status": "registered"}) or \
            self.db.reports.find_one({"case_id": case_id})
        if doc is None:
            return None
        answer = storage.public(doc)
        answer["intake_case"] = storage.public(self.db.cases.find_one({"_id": case_id}, PUBLIC))
        return _jsonable(answer)

    @rpc
    def case_view(self, case_id: str):
        return _jsonable(storage.public(self.db.cases.find_one({"_id": case_id}, PUBLIC)))

    @rpc
    def list_disputes(self, state: str | None = None) -> list:
        query = {"state": state} if state in ("open", "decided") else {}
        return [_jsonable(storage.public(doc)) for doc in
                self.db.disputes.find(query, PUBLIC).sort("opened_at", -1).limit(500)]

    @rpc
    def get_dispute(self, dispute_id: str):
        return self._dispute_view(dispute_id)

    # ================================================================= filing
    def _policy(self, district) -> dict:
        policy = district.policy()
        for key, (section, name) in POLICY_OVERRIDES.items():
            value = self.config.get(key, os.environ.get(key))
            if value not in (None, ""):
                policy[section][name] = float(value)
        return policy

    def _file(self, report: dict, token: str | None = None) -> dict:
        now = storage.now_utc()
        report_id = rules.report_id_for(report, new_id("rpt"))
        existing = self.db.reports.find_one({"_id": report_id})
        if existing is not None:                               # the channel re-sent it
            return self._answer(existing)
        case = self.db.cases.find_one({"report_ids": report_id})
        if case is not None:                                   # saved the case, then stopped
            return self._answer(self._save_report(report_id, report, case, now, token))
        district = load_district()
        policy = self._policy(district)
        point = report["location"]
        overrides = self._disputes_covering(point, "decided")
        decision = rules.decide(report, district, now=now, policy=policy, overrides=overrides)
        received = self._received_event(report_id, report, now)
        if not decision["accepted"]:
            doc = {"_id": report_id, "report": report, "channel": report["channel"],
                   "class_code": report["class_code"], "received_at": now, "updated_at": now,
                   "status": "rejected", "reason": decision["reason"],
                   "reason_code": decision["reason_code"], "token": token or _token(),
                   "reporter_id": rules.reporter_id(report)}
            doc["service_notice"] = open311.service_notice({"status": "rejected", "reason": decision["reason"]},
                                                           district)
            events = [received, outbox.event("report_rejected", {
                "report_id": report_id, "channel": report["channel"], "reason": decision["reason"],
                "inspector_id": report.get("inspector_id"), "reason_code": decision["reason_code"],
                "class_code": report["class_code"], "rejected_at": now,
            }, report_id, f"{report_id}.rejected")]
            if not storage.create(self.db.reports, doc, events):
                doc = self.db.reports.find_one({"_id": report_id})
            return self._answer(doc)
        permit = self._permitted_stall(decision["case"], now, district)       # 四定 (stalls.py)
        if permit is not None:
            return self._answer(self._close_permitted(report_id, report, permit, received, now, token, district))
        fields = decision["case"]
        point = fields["location"]
        keys = rules.claim_keys(fields["class_code"], point["lon"], point["lat"], policy["duplicates"]["radius_m"])
        with self._claimed(keys, report_id):       # reports of one problem file one at a time
            match = self._match(fields, now, policy)
            case = None
            if match is not None:
                case = self._link(match, report_id, report, fields, received, now, policy)
            if case is None:
                case = self._register(report_id, report, decision, received, now, policy, district)
        return self._answer(self._save_report(report_id, report, case, now, token))

    @contextmanager
    def _claimed(self, keys, holder, lease_seconds=10.0):
        """Hold short leases on ``keys`` (rules.claim_keys) while checking for duplicates and
        filing: a second report of the same problem waits, then finds the first one's case. A
        lease left by a killed instance runs out; past the lease the filing goes ahead anyway."""
        from pymongo.errors import DuplicateKeyError
        claims = self.db.filing_claims
        held, deadline = [], time.monotonic() + lease_seconds + 1
        try:
            for key in keys:                                        # sorted: no deadlock
                attempt = 0
                while True:
                    now = storage.now_utc()
                    try:
                        claims.find_one_and_update(
                            {"_id": key, "$or": [{"holder": None}, {"until": {"$lt": now}}]},
                            {"$set": {"holder": holder, "until": now + timedelta(seconds=lease_seconds)}},
                            upsert=True)
                        held.append(key)
                        break
                    except DuplicateKeyError:                       # another filing holds it
                        if time.monotonic() > deadline:
                            log.warning("filing %s went ahead without the claim %s", holder, key)
                            break
                        attempt += 1
                        time.sleep(min(0.2, 0.01 * attempt))        # green under eventlet
            yield
        finally:
            if held:
                claims.update_many({"_id": {"$in": held}, "holder": holder}, {"$set": {"holder": None, "until": None}})

    # ================================================================= 四定 stall permits
    def _stall_permits(self) -> list:
        """The register: the default set (stall_permits.yaml) overlaid by permits registered
        over the API, all in intake's own store — filing never waits on another service."""
        permits = {permit["permit_id"]: permit for permit in stalls.default_permits()}
        for doc in self.db.stall_permits.find({}, {"_id": 0}):
            permits[doc["permit_id"]] = doc
        return list(permits.values())

    def _permitted_stall(self, fields, now, district):
        if fields["class_code"] not in stalls.STREET_TRADING:
            return None
        point = fields["location"]
        return stalls.permitted_stall(self._stall_permits(), fields["class_code"], point["lon"], point["lat"],
                                      now, district.calendar.tz,
                                      stall_count=(fields.get("attributes") or {}).get("stall_count"))

    def _close_permitted(self, report_id, report, permit, received, now, token, district):
        """Not a violation: the report is closed (not filed) with the permit as its reason."""
        reason = stalls.closing_reason(permit)
        doc = {"_id": report_id, "report": report, "channel": report["channel"],
               "class_code": report["class_code"], "received_at": now, "updated_at": now,
               "status": "rejected", "reason": reason, "reason_code": "permitted_stall",
               "permit_id": permit["permit_id"], "token": token or _token(),
               "reporter_id": rules.reporter_id(report)}
        doc["service_notice"] = open311.service_notice({"status": "rejected", "reason": reason}, district)
        events = [received, outbox.event("report_rejected", {
            "report_id": report_id, "channel": report["channel"], "reason": reason,
            "inspector_id": report.get("inspector_id"), "reason_code": "permitted_stall",
            "class_code": report["class_code"], "rejected_at": now,
        }, report_id, f"{report_id}.rejected")]
        if not storage.create(self.db.reports, doc, events):
            doc = self.db.reports.find_one({"_id": report_id})
        return doc

    @rpc
    def register_stall_permit(self, data: dict) -> dict:
        """Add or replace a permit in the register (idempotent by permit_id)."""
        try:
            permit = stalls.load_permit(data)
        except ValidationError as exc:
            return {"status": "invalid", "errors": exc.messages}
        stored = stalls.dump_permit(permit)
        stored["registered_at"] = storage.now_utc()
        self.db.stall_permits.replace_one({"_id": permit["permit_id"]}, {"_id": permit["permit_id"], **stored},
                                          upsert=True)
        return {"status": "registered", "permit": _jsonable(stored)}

    @rpc
    def list_stall_permits(self) -> list:
        return [_jsonable(stalls.dump_permit(permit)) for permit in
                sorted(self._stall_permits(), key=lambda p: p["permit_id"])]

    def _received_event(self, report_id, report, now):
        return outbox.event("report_received", {
            "report_id": report_id, "channel": report["channel"], "class_code": report["class_code"],
            "location": report["location"], "description": report.get("description", ""),
            "reporter_id": rules.reporter_id(report), "inspector_id": report.get("inspector_id"),
            "received_at": now, "external_id": report.get("external_id"),
            "urgency": report.get("urgency") or "normal", "photo_refs": report.get("photo_refs") or [],
        }, report_id, f"{report_id}.received")

    def _match(self, fields, now, policy):
        point = fields["location"]
        box = rules.bbox_around(point["lon"], point["lat"], policy["duplicates"]["radius_m"])
        query = {"class_code": fields["class_code"],
                 "location.lon": {"$gte": box["min_lon"], "$lte": box["max_lon"]},
                 "location.lat": {"$gte": box["min_lat"], "$lte": box["max_lat"]}}
        candidates = list(self.db.cases.find(query, {"_id": 1, "class_code": 1, "location": 1, "state": 1,
                                                     "registered_at": 1, "closed_at": 1}).limit(200))
        return rules.match_existing(candidates, fields["class_code"], point, now, policy)

    def _link(self, match, report_id, report, fields, received, now, policy):
        """Link to an open case (duplicate) or reopen a recently closed one; None when the case
        no longer qualifies (then a new case is filed)."""
        subscriber = {"report_id": report_id, "reporter_id": rules.reporter_id(report),
                      "channel": report["channel"], "at": now}

        def change():
            case = self.db.cases.find_one({"_id": match["case_id"]})
            if case is None:
                return None
            if report_id in case.get("report_ids", []):
                return case
            again = rules.match_existing([case], fields["class_code"], fields["location"], now, policy)
            if again is None:
                return None
            link = {"report_id": report_id, "kind": again["action"], "at": now,
                    "distance_m": again["distance_m"]}
            case_id = case["_id"]
            if again["action"] == "duplicate":
                events = [received, outbox.event("report_linked_as_duplicate", {
                    "report_id": report_id, "case_id": case_id, "distance_m": again["distance_m"],
                    "linked_at": now, "channel": report["channel"], "class_code": fields["class_code"],
                    "reporter_id": subscriber["reporter_id"],
                    "duplicate_count": case.get("duplicate_count", 0) + 1,
                }, case_id, f"{report_id}.duplicate")]
                storage.update(self.db.cases, case_id, case["_version"],
                               push={"report_ids": [report_id], "subscribers": [subscriber], "links": [link]},
                               inc={"duplicate_count": 1}, events=events, applied=report_id)
            else:
                closed_at = case.get("closed_at")
                days = (now - closed_at).total_seconds() / 86400 if closed_at else 0
                reason = (f"结案后 {days:.1f} 天内同一位置（{again['distance_m']:.0f} 米内）再次上报同类问题"
                          f"（上报 {report_id}），重新打开返工")
                events = [received, outbox.event("case_reopened", {
                    "case_id": case_id, "report_id": report_id, "reason": reason, "reopened_at": now,
                    "unit_id": case.get("unit_id"), "closed_at": closed_at,
                    "reopen_count": case.get("reopen_count", 0) + 1, "class_code": fields["class_code"],
                    "distance_m": again["distance_m"],
                }, case_id, f"{report_id}.reopened")]
                storage.update(self.db.cases, case_id, case["_version"], set_fields={
                    "state": "reopened", "reopened_at": now, "updated_at": now,
                    "status_notes": f"结案后再次出现，已重新打开，返工（{reason}）"},
                    push={"report_ids": [report_id], "subscribers": [subscriber], "links": [link]},
                    inc={"reopen_count": 1}, events=events, applied=report_id)
            return self.db.cases.find_one({"_id": case_id})
        return storage.retry_on_conflict(change)

    def _register(self, report_id, report, decision, received, now, policy, district):
        fields = decision["case"]
        case_id = rules.case_id_for(report_id, now)
        place = decision.get("gap_place")
        dispute_id = None
        if place:
            covering = [d for d in self._disputes_covering(fields["location"], "open")
                        if d.get("scope", "area") == "area"]
            dispute_id = covering[0]["_id"] if covering else f"OD-{place['place_id']}"
        doc = {
            "_id": case_id, **fields, "report_id": report_id, "report_ids": [report_id],
            "channel": report["channel"], "state": "registered", "registered_at": now,
            "updated_at": now, "unit_id": fields["owner_unit"], "deadline": None,
            "status_notes": "已立案，待派遣", "dispute_id": dispute_id,
            "subscribers": [{"report_id": report_id, "reporter_id": rules.reporter_id(report),
                             "channel": report["channel"], "at": now}],
            "links": [{"report_id": report_id, "kind": "registered", "at": now}],
            "duplicate_count": 0, "reopen_count": 0, "history": [],
            "ownership_override": decision.get("override"),
        }
        events = [received, outbox.event("case_registered", {
            **fields, "case_id": case_id, "report_id": report_id, "channel": report["channel"],
            "registered_at": now, "dispute_id": dispute_id,
        }, case_id, f"{report_id}.registered")]
        if not storage.create(self.db.cases, doc, events, applied=report_id):
            doc = self.db.cases.find_one({"_id": case_id})
        if place:
            self._attach_to_dispute(dispute_id, doc, place, district, policy, now, trigger="gap")
        return doc

    def _attach_to_dispute(self, dispute_id, case, place, district, policy, now, *, trigger,
                           scope="area", units=()):
        """Open the dispute for this place (community level, with its deadline timer), or add
        the case to the one already open."""
        level = "community"
        community = place.get("nearest_community") or case.get("community_name")
        street_id = case.get("street_id")
        deadline = rules.level_deadline(district, policy, level, now)
        arbiter = rules.arbiter(policy, level, street_id, community)
        minx, miny, maxx, maxy = shape(place["geometry"]).bounds
        doc = {
            "_id": dispute_id, "state": "open", "trigger": trigger, "scope": scope,
            "class_code": case["class_code"] if scope == "class" else None,
            "place_id": place["place_id"], "place_kind": place["kind"], "geometry": place["geometry"],
            "bbox": {"min_lon": minx, "min_lat": miny, "max_lon": maxx, "max_lat": maxy},
            "location": case["location"], "interim_owner": street_id, "street_id": street_id,
            "community": community, "level": level, "arbiter": arbiter, "deadline": deadline,
            "opened_at": now, "case_id": case["_id"], "case_ids": [case["_id"]], "units": list(units),
            "history": [{"level": level, "at": now, "deadline": deadline, "arbiter": arbiter}],
            "overdue": False,
        }
        event = outbox.event("ownership_dispute_opened", {
            "dispute_id": dispute_id, "case_id": case["_id"], "location": case["location"],
            "interim_owner": street_id, "level": level, "deadline": deadline, "opened_at": now,
            "trigger": trigger, "place_id": place["place_id"], "scope": scope,
            "class_code": doc["class_code"], "units": list(units), "arbiter": arbiter,
        }, case["_id"], f"{dispute_id}.opened")
        timer = timers.timer(f"{dispute_id}.{level}", deadline, "escalate", level=level)
        if storage.create(self.db.disputes, doc, [event], applied=f"attach:{case['_id']}", timers=[timer]):
            return

        def attach():
            current = self.db.disputes.find_one({"_id": dispute_id})
            if case["_id"] in current.get("case_ids", []):
                return
            storage.update(self.db.disputes, dispute_id, current["_version"],
                           push={"case_ids": [case["_id"]]}, applied=f"attach:{case['_id']}")
        storage.retry_on_conflict(attach)

    def _disputes_covering(self, point, state):
        lon, lat = float(point["lon"]), float(point["lat"])
        query = {"state": state, "bbox.min_lon": {"$lte": lon}, "bbox.max_lon": {"$gte": lon},
                 "bbox.min_lat": {"$lte": lat}, "bbox.max_lat": {"$gte": lat}}
        found = list(self.db.disputes.find(query, PUBLIC).limit(50))
        from shared.refdata.intake_data import geometry_covers
        return [doc for doc in found if geometry_covers(doc["geometry"], lon, lat)]

    def _save_report(self, report_id, report, case, now, token):
        """The report document, written last (its case and events are already saved)."""
        kind = "registered" if case.get("report_id") == report_id else "duplicate"
        distance = None
        for link in case.get("links", []):
            if link["report_id"] == report_id:
                kind, distance = link["kind"], link.get("distance_m")
        status = {"registered": "registered", "duplicate": "duplicate", "reopen": "reopened"}[kind]
        registration = {key: case.get(key) for key in (
            "class_code", "class_name", "class_kind", "urgency", "location", "address", "grid_code",
            "community_code", "community_name", "street_id", "owner_unit", "owner_source", "gap",
            "joint_partners", "case_kind", "time_limit", "dispute_id")}
        doc = {"_id": report_id, "report": report, "channel": report["channel"],
               "class_code": report["class_code"], "received_at": now, "updated_at": now,
               "status": status, "case_id": case["_id"], "case": registration,
               "duplicate_of": case["_id"] if status != "registered" else None,
               "distance_m": distance, "token": token or _token(),
               "reporter_id": rules.reporter_id(report)}
        doc["service_notice"] = open311.service_notice(
            {"status": status, "case_id": case["_id"], "owner_unit": case.get("owner_unit"),
             "time_limit": case.get("time_limit")}, load_district())
        if not storage.create(self.db.reports, doc):
            doc = self.db.reports.find_one({"_id": report_id})
        return doc

    @staticmethod
    def _answer(doc: dict) -> dict:
        answer = {"report_id": doc["_id"], "status": doc["status"], "token": doc.get("token"),
                  "service_notice": doc.get("service_notice")}
        if doc["status"] == "rejected":
            answer.update(reason=doc.get("reason"), reason_code=doc.get("reason_code"))
        else:
            case = doc.get("case") or {}
            answer.update(case_id=doc["case_id"], owner_unit=case.get("owner_unit"),
                          grid_code=case.get("grid_code"), street_id=case.get("street_id"),
                          owner_source=case.get("owner_source"), time_limit=case.get("time_limit"),
                          dispute_id=case.get("dispute_id"))
            if doc["status"] != "registered":
                answer.update(duplicate_of=doc["case_id"], distance_m=doc.get("distance_m"))
        return answer

    def _views(self, docs, district) -> list:
        case_ids = list({doc["case_id"] for doc in docs if doc.get("case_id")})
        cases = {case["_id"]: case for case in self.db.cases.find({"_id": {"$in": case_ids}}, PUBLIC)} \
            if case_ids else {}
        return [open311.service_request(doc, cases.get(doc.get("case_id")), district) for doc in docs]

    def _dispute_view(self, dispute_id):
        return _jsonable(storage.public(self.db.disputes.find_one({"_id": dispute_id}, PUBLIC)))


def _token() -> str:
    return f"tok-{secrets.token_hex(12)}"


def _parse_time(value):
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _jsonable(value):
    """Datetimes → ISO strings, recursively (RPC answers stay plain JSON)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    return value

