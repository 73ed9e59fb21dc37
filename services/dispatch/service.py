"""dispatch service: thin nameko entrypoints over services.dispatch.rules.

- ``dispatch.case-registered``  route, start the clock, notify (case_dispatched, owner_notified);
- ``dispatch.case-reopened``    intake's case_reopened → 返工 back to the unit;
- ``dispatch.ownership``        intake's dispute events → the dispute copy (a projection) → re-dispatch;
- ``@timer_due("cases")``       预警 / 督办 / 升级 / 核查超时, on durable timers kept in each case;
- RPC ``act``                   the unit and centre actions (optimistic concurrency on ``_version``);
- RPC ``get_case``, ``list_cases``, ``timeline`` for the gateway.
"""
from __future__ import annotations

import logging
from datetime import datetime

from marshmallow import ValidationError
from nameko.extensions import DependencyProvider

from shared import projection, storage
from shared.health import Heartbeat
from shared.messaging import outbox
from shared.messaging.consumer import PermanentError, consume_reliably
from shared.messaging.relay import OutboxRelay
from shared.messaging.rpc import rpc
from shared.refdata import load_district
from shared.timers import timer_due

from . import disputes, listing, notifications, rules
from .routing import load_settings
from .schemas import ACTION_SCHEMAS, CaseQuery, action_name

log = logging.getLogger(__name__)


class Policy(DependencyProvider):
    """The district, the routing table / supervision settings and the notification adapter.
    Loaded and checked when the service starts: a bad config/routing.yaml stops it at once."""

    def setup(self):
        self.district = load_district(self.container.config.get("REFDATA_DIR") or None)
        self.settings = load_settings(self.container.config, self.district)
        self.adapter = notifications.load_adapter(self.container.config)

    def get_dependency(self, worker_ctx):
        return self

    def context(self) -> rules.Context:
        return rules.Context(storage.now_utc(), self.district, self.settings)


class CasesDatabase(storage.MongoDatabase):
    """The service database, with the indexes the case list needs."""

    def start(self):
        try:
            cases = self.database.cases
            cases.create_index([("dispatched_at", -1)])
            cases.create_index([("state", 1), ("unit_id", 1)])
            cases.create_index([("_next_due", 1)])
            cases.create_index("dispute_id")         # a decided dispute's cases (on_ownership_event)
        except Exception as exc:  # noqa: BLE001 - the store may still be starting; indexes only speed things up
            log.warning("could not create case indexes: %s", exc)
        try:
            storage.run_once(self.database, listing.DAYS, lambda: list_old_cases(self.database))
        except Exception:  # noqa: BLE001 - not marked as run: tried again at the next start
            log.exception("dispatch's case_days migration did not finish; older cases are missing from "
                          "the unfiltered case list until the next start")


def list_old_cases(database) -> int:
    """Once per store: list the cases dispatched before ``case_days`` existed (listing.py)."""
    days = listing.by_day((doc["_id"], doc["dispatched_at"])
                          for doc in database.cases.find({}, {"_id": 1, "dispatched_at": 1})
                          if doc.get("dispatched_at") is not None)
    for day, entries in days.items():
        database[listing.DAYS].update_one({"_id": day}, {"$addToSet": {"cases": {"$each": entries}}}, upsert=True)
    return sum(len(entries) for entries in days.values())


def _result(status: str, **fields) -> dict:
    """A success answer; any other status is raised as that kind of error (shared/contracts/errors.py)."""
    if status != "ok":
        from shared.contracts.errors import KINDS
        raise KINDS[status](fields.pop("reason", None), fields.pop("errors", None), **fields)
    return {"status": status, **fields}


class DispatchService:
    name = "dispatch"

    db = CasesDatabase()
    relay = OutboxRelay("cases")
    heartbeat = Heartbeat()
    policy = Policy()

    # ------------------------------------------------------------------ saving
    def _save(self, doc: dict, change: rules.Change, applied: str | None = None,
              causation: str | None = None) -> bool:
        """One atomic update: fields, history, notifications, events and timers, at doc's version."""
        case_id = doc["_id"]
        entries = [outbox.event(event_type, payload, case_id, event_id, causation_id=causation)
                   for event_type, payload, event_id in change.events]
        for note in change.notes:
            entries.extend(self.policy.adapter.outbox_entries(note))
        push = {}
        if change.history:
            push["history"] = change.history
        if change.notes:
            push["notifications"] = change.notes
        saved = storage.update(self.db.cases, case_id, doc["_version"], set_fields=change.set, push=push,
                               events=entries, applied=applied, timers=change.timers)
        if saved:
            self.policy.adapter.after_commit(change.notes)
        return saved

    # ------------------------------------------------------------------ events from intake
    @consume_reliably("dispatch.case-registered")
    def on_case_registered(self, event: dict):
        case = event["payload"]
        # No read first: a duplicate delivery is refused by the unique _id of the create below
        # (one store trip less on the way from report to owner notified).
        try:
            doc, change = rules.new_case(case, self.policy.context())
        except KeyError as exc:
            if self.db.cases.find_one({"_id": case["case_id"]}, {"_id": 1}):
                return                                  # duplicate delivery: already dispatched
            raise PermanentError(f"无法派遣：{exc} (cannot route this case)") from exc
        doc["history"] = change.history
        doc["notifications"] = change.notes
        entries = [outbox.event(event_type, payload, case["case_id"], event_id,
                                causation_id=event["event_id"])
                   for event_type, payload, event_id in change.events]
        for note in change.notes:
            entries.extend(self.policy.adapter.outbox_entries(note))
        day, listed = listing.listing(doc["_id"], doc["dispatched_at"])    # the unfiltered list's key, first
        self.db[listing.DAYS].update_one({"_id": day}, {"$addToSet": {"cases": listed}}, upsert=True)
        if storage.create(self.db.cases, doc, entries, applied=event["event_id"], timers=change.timers or []):
            self.policy.adapter.after_commit(change.notes)

    @consume_reliably("dispatch.case-reopened")
    def on_case_reopened(self, event: dict):
        case_id = event["payload"]["case_id"]

        def attempt():
            doc = self.db.cases.find_one({"_id": case_id})
            if doc is None:
                raise PermanentError(f"dispatch 没有案件 {case_id} (unknown case)")
            if storage.already_applied(doc, event["event_id"]):
                return
            change = rules.reopen(doc, event, self.policy.context())
            self._save(doc, change, applied=event["event_id"], causation=event["event_id"])
        storage.retry_on_conflict(attempt)

    @consume_reliably("dispatch.ownership")
    def on_ownership(self, event: dict):
        """intake's dispute events → the dispute copy (a projection: any order converges); once
        the copy holds a decision and knows its cases, they are re-dispatched (once each)."""
        if event["type"] not in (disputes.OPENED, disputes.DECIDED):
            return
        dispute_id = event["payload"]["dispute_id"]
        copy = self._project_dispute(dispute_id, event)
        decision = disputes.decision(dispute_id, copy)
        if decision is None:
            return                                      # opened: nothing to re-dispatch yet
        case_ids = disputes.case_ids(copy)
        case_ids += [doc["_id"] for doc in self.db.cases.find({"dispute_id": dispute_id}, {"_id": 1})
                     if doc["_id"] not in case_ids]
        if not case_ids and event["type"] == disputes.DECIDED \
                and self.db.cases.find_one({"_id": event["correlation_id"]}, {"_id": 1}):
            case_ids = [event["correlation_id"]]
        if not case_ids:
            if copy.get("opened_at"):
                return                                  # a dispute about a place, with no case here
            raise RuntimeError(f"unknown dispute {dispute_id} (its opening may still be on its way)")
        applied = copy.get("decided_event_id") or f"{dispute_id}.decided"
        missing = []
        for case_id in case_ids:
            def attempt(case_id=case_id):
                doc = self.db.cases.find_one({"_id": case_id})
                if doc is None:
                    missing.append(case_id)
                    return
                if storage.already_applied(doc, applied):
                    return
                change = rules.ownership_decided(doc, decision, copy.get("interim_owner"), self.policy.context())
                self._save(doc, change, applied=applied, causation=event["event_id"])
            storage.retry_on_conflict(attempt)
        if missing:                                     # registered but not dispatched yet: retry later
            raise RuntimeError(f"cases not dispatched yet: {', '.join(missing)}")

    def _project_dispute(self, dispute_id: str, event: dict) -> dict:
        """Apply one dispute event to dispatch's copy (optimistic, by position); the copy after."""
        def attempt():
            doc = self.db.disputes.find_one({"_id": dispute_id})
            if doc is not None and "_version" not in doc:     # a copy kept before it was versioned
                self.db.disputes.update_one({"_id": dispute_id, "_version": {"$exists": False}},
                                            {"$set": {"_version": 1}})
                raise storage.Conflict(f"{dispute_id} is now versioned")
            changes = disputes.changes(doc, event)
            if not changes:
                return doc or {}
            if doc is None:
                fresh = projection.apply_in_memory({"_id": dispute_id}, changes)
                if not storage.create(self.db.disputes, fresh):
                    raise storage.Conflict(f"{dispute_id} was created meanwhile")
            else:
                storage.update(self.db.disputes, dispute_id, doc.get("_version", 0), set_fields=changes)
            return self.db.disputes.find_one({"_id": dispute_id})
        return storage.retry_on_conflict(attempt)

    # ------------------------------------------------------------------ durable timers
    @timer_due("cases")
    def on_timer(self, case_id, timer):
        def attempt():
            doc = self.db.cases.find_one({"_id": case_id})
            if doc is None:
                return
            change = rules.fire_timer(doc, timer, self.policy.context())
            if change is not None:
                self._save(doc, change, applied=timer["id"])
        storage.retry_on_conflict(attempt)

    # ------------------------------------------------------------------ actions
    @rpc
    def act(self, case_id: str, action: str, data: dict) -> dict:
        """A unit's or the centre's action. ``data`` must carry ``expected_version``: the case version
        the operator saw. Answers ``{status: ok|invalid|not_found|conflict|refused|forbidden, …}``."""
        name = action_name(action)
        if name is None:
            return _result("not_found", reason=f"没有这个操作 {action} (unknown action); 可用: "
                                                 + ", ".join(sorted(ACTION_SCHEMAS)))
        try:
            loaded = ACTION_SCHEMAS[name]().load(data or {})
        except ValidationError as exc:
            return _result("invalid", errors=exc.messages)
        doc = self.db.cases.find_one({"_id": case_id})
        if doc is None:
            return _result("not_found", reason=f"dispatch 没有案件 {case_id} (unknown case)")
        expected = loaded.pop("expected_version")
        if doc["_version"] != expected:
            return self._conflict(doc, expected)
        try:
            change = rules.apply_action(doc, name, loaded, self.policy.context())
        except rules.Refused as exc:
            return _result("refused", reason=str(exc), state=doc["state"], version=doc["_version"])
        except rules.Forbidden as exc:
            return _result("forbidden", reason=str(exc))
        try:
            self._save(doc, change)
        except storage.Conflict:
            return self._conflict(self.db.cases.find_one({"_id": case_id}), expected)
        fresh = self.db.cases.find_one({"_id": case_id})
        return _result("ok", events=[event_type for event_type, _, _ in change.events],
                       case=rules.case_view(fresh, self.policy.district, history=False))

    def _conflict(self, doc: dict, expected: int) -> dict:
        return _result("conflict", current_version=doc["_version"], expected_version=expected,
                       state=doc["state"],
                       reason=f"案件已被他人更新（当前版本 {doc['_version']}，您提交的版本 {expected}），"
                              f"请刷新后重试 (the case changed since you read it: version "
                              f"{doc['_version']}, not {expected})")

    # ------------------------------------------------------------------ queries
    @rpc
    def get_case(self, case_id: str):
        doc = self.db.cases.find_one({"_id": case_id})
        return rules.case_view(doc, self.policy.district) if doc else None

    @rpc
    def timeline(self, case_id: str):
        """Dispatch's part of the timeline (local times) and its copy of the registration."""
        doc = self.db.cases.find_one({"_id": case_id}, {"history": 1, "case": 1, "state": 1, "_version": 1})
        if doc is None:
            return None
        case = doc["case"]
        registration = {"type": "case_registered", "label": rules.LABELS["case_registered"],
                        "at": case.get("registered_at"), "actor": case.get("channel", "intake"),
                        "reason": case.get("description", ""), "source": "dispatch",
                        "class_code": case.get("class_code"), "grid_code": case.get("grid_code"),
                        "owner_unit": case.get("owner_unit")}
        calendar = self.policy.district.calendar
        entries = [dict(entry, source="dispatch") for entry in doc.get("history") or []]
        return rules.to_local({"case_id": case_id, "state": doc["state"], "version": doc["_version"],
                               "registration": registration, "entries": entries}, calendar)

    @rpc
    def list_cases(self, filters: dict) -> dict:
        try:
            query_in = CaseQuery().load(filters or {})
        except ValidationError as exc:
            return _result("invalid", errors=exc.messages)
        district = self.policy.district
        query: dict = {}
        if "state" in query_in:
            query["state"] = query_in["state"]
        if "unit" in query_in:
            query["unit_id"] = query_in["unit"]
        if "grid" in query_in:
            query["grid_code"] = _prefix(query_in["grid"])
        if "class_code" in query_in:
            code = query_in["class_code"]
            query["class_code"] = code if len(code) == 5 else _prefix(code)
        window = {}
        if "since" in query_in:
            window["$gte"] = _aware(query_in["since"], district)
        if "until" in query_in:
            window["$lt"] = _aware(query_in["until"], district)
        if window:
            query["dispatched_at"] = window
        if "overdue" in query_in:
            now = storage.now_utc()
            if query_in["overdue"]:
                query.setdefault("state", {"$in": list(rules.OPEN_STATES)})
                query["deadline"] = {"$lt": now}
            else:
                query["$or"] = [{"state": {"$nin": list(rules.OPEN_STATES)}}, {"deadline": {"$gte": now}}]
        if "checking" in query_in:                   # an open 核实 task (report_check.py)
            query["check.answered_at"] = None if query_in["checking"] else {"$ne": None}
            if query_in["checking"]:
                query["check.sequence"] = {"$gte": 1}
        page, per_page = query_in["page"], query_in["per_page"]
        shown = {"history": 0, "notifications": 0, "_outbox": 0, "_applied": 0}
        if query:
            total = self.db.cases.count_documents(query)
            docs = list(self.db.cases.find(query, shown).sort([("dispatched_at", -1), ("_id", 1)])
                        .skip((page - 1) * per_page).limit(per_page))
        else:          # no filter: the day lists, then the page's cases by _id (listing.py)
            total, ids = listing.page(self.db[listing.DAYS].find({}), page, per_page)
            docs = [doc for doc in (self.db.cases.find_one({"_id": case_id}, shown) for case_id in ids) if doc]
        return _result("ok", total=total, page=page, per_page=per_page,
                       items=[rules.summary_view(doc, district) for doc in docs])


def _prefix(value: str) -> dict:
    return {"$gte": value, "$lt": value + "\uffff"}


def _aware(moment: datetime, district) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=district.calendar.tz)
    return moment

