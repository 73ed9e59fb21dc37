"""Filing in intake's store: the steps around the pure decision (filing.py) — read what the
decision needs (nearby cases, decided disputes, the stall register), hold the filing claims, and
apply the changes filing.py returns, in the order that keeps crashes harmless: the report's
case in ``report_cases`` (``_id`` = report id), then the case (with its events and the report id
in ``report_ids``), the report document last. Mixed into IntakeService (service.py).

Every search here is one equality on an indexed scalar field or on ``_id`` (the embedded store
serves nothing else from an index, docs/performance.md): the case of a report by
``report_cases``, nearby cases by ``dup_cell`` (cells.py), cases by ``_id`` one at a time."""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from datetime import timedelta

from shared import storage
from shared.contracts.events import new_id
from shared.messaging import outbox
from shared.refdata import load_district

from . import case_status, cells, filing, open311, rules, stalls
from .answers import PUBLIC
from .answers import token as _token
from .schemas import ReportSchema

log = logging.getLogger(__name__)

CLAIM_SWEEP = 100            # filings between two sweeps of the expired filing claims
_SWEEP = [0]

POLICY_OVERRIDES = {   # container config or environment → intake.yaml setting
    "INTAKE_DUPLICATE_RADIUS_M": ("duplicates", "radius_m"),
    "INTAKE_OPEN_CASE_WINDOW_DAYS": ("duplicates", "open_case_window_days"),
    "INTAKE_REOPEN_DAYS": ("duplicates", "reopen_within_days"),
}


MATCH_FIELDS = {"_id": 1, "class_code": 1, "location": 1, "state": 1, "registered_at": 1, "closed_at": 1}


class FilingStore:
    """Mixed into IntakeService: uses its ``db``, ``config`` and the dispute writes
    (dispute_handlers.py)."""

    def _policy(self, district) -> dict:
        policy = district.policy()
        for key, (section, name) in POLICY_OVERRIDES.items():
            value = self.config.get(key, os.environ.get(key))
            if value not in (None, ""):
                policy[section][name] = float(value)
        return policy

    def _file(self, report: dict, token: str | None = None, account: str | None = None) -> dict:
        """``account``: who sent it (``open311:<key id>``, ``key:<key id>``; None for the AMQP
        channels, whose channel is the sender): scopes ``external_id``, is the filer for 回访."""
        now = storage.now_utc()
        report_id = rules.report_id_for(report, new_id("rpt"), account)
        filer = {"filed_by": account or f"channel:{report['channel']}",
                 "fingerprint": rules.fingerprint(ReportSchema().dump(report)) if account else None}
        existing = self.db.reports.find_one({"_id": report_id})
        if existing is not None:                               # the channel re-sent it
            if filer["fingerprint"] and existing.get("fingerprint") not in (None, filer["fingerprint"]):
                return {"status": "conflict", "report_id": report_id,
                        "reason": f"external_id {report['external_id']} 已用于另一份内容不同的上报 "
                                  "(this external_id was sent before with a different body)"}
            return filing.answer(existing)
        case = self._case_of_report(report_id)
        if case is not None:                                   # saved the case, then stopped
            return filing.answer(self._save_report(report_id, report, case, now, token, filer))
        district = load_district()
        policy = self._policy(district)
        point = report["location"]
        overrides = self._disputes_covering(point, "decided")
        decision = filing.decide(report, district, now=now, policy=policy, overrides=overrides)
        received = filing.received_event(report_id, report, now)
        if not decision["accepted"]:
            notice = open311.service_notice({"status": "rejected", "reason": decision["reason"]}, district)
            return filing.answer(self._create_report(filing.rejection(
                report_id, report, decision["reason"], decision["reason_code"], received, now, token or _token(),
                filer, notice)))
        permit = self._permitted_stall(decision["case"], now, district)       # 四定 (stalls.py)
        if permit is not None:       # not a violation: closed (not filed) with the permit as its reason
            reason = stalls.closing_reason(permit)
            notice = open311.service_notice({"status": "rejected", "reason": reason}, district)
            return filing.answer(self._create_report(filing.rejection(
                report_id, report, reason, "permitted_stall", received, now, token or _token(), filer, notice,
                permit_id=permit["permit_id"])))
        fields = decision["case"]
        point = fields["location"]
        keys = filing.claim_keys(fields["class_code"], point["lon"], point["lat"], policy["duplicates"]["radius_m"])
        with self._claimed(keys, report_id):       # reports of one problem file one at a time
            match = self._match(fields, now, policy)
            case = None
            if match is not None:
                case = self._link(match, report_id, report, fields, received, now, policy)
            if case is None:
                case = self._register(report_id, report, decision, received, now, policy, district)
        return filing.answer(self._save_report(report_id, report, case, now, token, filer))

    def _case_of_report(self, report_id):
        """The case a report was filed to when its report document was not written (a crash
        between the two): ``report_cases`` names the case, the case's ``report_ids`` confirm it."""
        noted = self.db.report_cases.find_one({"_id": report_id})
        if noted is None:
            return None
        case = self.db.cases.find_one({"_id": noted["case_id"]})
        return case if case is not None and report_id in case.get("report_ids", []) else None

    def _note_case(self, report_id, case_id):
        """Before the case write: the report is being filed to ``case_id`` (_case_of_report)."""
        self.db.report_cases.replace_one({"_id": report_id}, {"_id": report_id, "case_id": case_id}, upsert=True)

    def _apply(self, change: filing.Change, version: int | None = None) -> bool:
        """Write a change from filing.py: create its document, or update the one read at
        ``version``; its events go to the outbox in the same write."""
        collection = self.db[change.collection]
        events = [outbox.event(*event) for event in change.events]
        if change.create is not None:
            return storage.create(collection, change.create, events, applied=change.applied)
        return storage.update(collection, change.doc_id, version, set_fields=change.set or None,
                              push=change.push or None, inc=change.inc or None, events=events,
                              applied=change.applied)

    def _create_report(self, change: filing.Change) -> dict:
        if not self._apply(change):
            return self.db.reports.find_one({"_id": change.doc_id})
        return change.create

    @contextmanager
    def _claimed(self, keys, holder, lease_seconds=10.0):
        """Hold short leases on ``keys`` (filing.claim_keys) while checking for duplicates and
        filing: a second report of the same problem waits, then finds the first one's case. A
        lease left by a killed instance runs out; past the lease the filing goes ahead anyway.

        ONE store trip when nobody else filed nearby within the lease: the claims are taken in
        one ordered update command (in sorted order, so two filings never hold parts of each
        other's set), each an upsert of its key that matches only a lease run out or this
        report's own claim (taken over just before, or left by an earlier attempt). A filing
        that ends normally does not release its claims: its report document (written right
        after) says it is done, so a later filing that meets one of its claims reads the
        holder's report and takes the claim over (``_take_over``). A filing that fails releases
        them at once. Expired claims are swept now and then (``CLAIM_SWEEP``)."""
        from pymongo import UpdateOne
        from pymongo.errors import BulkWriteError
        claims = self.db.filing_claims
        keys = sorted(keys)
        held, deadline = [], time.monotonic() + lease_seconds + 1
        try:
            attempt = 0
            while len(held) < len(keys):
                now = storage.now_utc()
                want = keys[len(held):]
                lease = {"$set": {"holder": holder, "until": now + timedelta(seconds=lease_seconds)}}
                free = {"$or": [{"until": {"$lt": now}}, {"holder": holder}]}    # run out, or ours
                try:
                    claims.bulk_write([UpdateOne({"_id": key, **free}, lease, upsert=True) for key in want],
                                      ordered=True)
                    held += want
                    break
                except BulkWriteError as exc:                  # the next key is held (or was)
                    errors = exc.details.get("writeErrors") or [{}]
                    if errors[0].get("code") != 11000:
                        raise
                    held += want[:errors[0].get("index", 0)]
                    if self._take_over(claims, keys[len(held):], holder, lease):
                        continue                               # taken over: claim the rest again
                    if time.monotonic() > deadline:
                        log.warning("filing %s went ahead without the claims %s", holder, keys[len(held):])
                        break
                    attempt += 1
                    time.sleep(min(0.2, 0.01 * attempt))        # green under eventlet
            self._sweep_claims(claims)
        except BaseException:
            if held:
                claims.delete_many({"_id": {"$in": held}, "holder": holder})
            raise
        try:
            yield
        except BaseException:
            if held:                   # released at once: the others need not wait for the lease
                claims.delete_many({"_id": {"$in": held}, "holder": holder})
            raise

    def _take_over(self, claims, keys, holder, lease) -> bool:
        """The first of ``keys`` is held by another filing: if that filing is done (its report
        exists), take over every one of ``keys`` it still holds, in one update command
        (conditionally on that holder), and say so; False: it is still filing (wait)."""
        from pymongo import UpdateOne
        claim = claims.find_one({"_id": keys[0]})
        if claim is None:
            return True                                        # released meanwhile: claim again
        previous = claim.get("holder")
        if previous is not None and self.db.reports.find_one({"_id": previous}, {"_id": 1}) is None:
            return False                                       # still filing: wait
        claims.bulk_write([UpdateOne({"_id": key, "holder": previous}, lease) for key in keys], ordered=True)
        return True

    def _sweep_claims(self, claims):
        """Delete the expired claims once every CLAIM_SWEEP filings of this process (claims are
        not deleted when a filing ends, so the collection would keep one per place ever filed)."""
        _SWEEP[0] += 1
        if _SWEEP[0] % CLAIM_SWEEP == 0:
            try:
                claims.delete_many({"until": {"$lt": storage.now_utc() - timedelta(minutes=1)}})
            except Exception as exc:  # noqa: BLE001 - housekeeping: the filing goes on
                log.warning("expired filing claims not swept: %s", exc)

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

    def _match(self, fields, now, policy):
        """Cases of the class in the cells the radius box touches (one indexed equality on
        ``dup_cell`` each, usually 1–4); the rule picks among them."""
        point = fields["location"]
        box = filing.bbox_around(point["lon"], point["lat"], policy["duplicates"]["radius_m"])
        candidates = []
        for key in cells.duplicate_cells(fields["class_code"], box):
            candidates += self.db.cases.find({"dup_cell": key}, MATCH_FIELDS)
        return filing.match_existing(candidates, fields["class_code"], point, now, policy)

    def _link(self, match, report_id, report, fields, received, now, policy):
        """Link to an open case (duplicate) or reopen a recently closed one; None when the case
        no longer qualifies (then a new case is filed)."""
        def change():
            case = self.db.cases.find_one({"_id": match["case_id"]})
            if case is None:
                return None
            if report_id in case.get("report_ids", []):
                return case
            again = filing.match_existing([case], fields["class_code"], fields["location"], now, policy)
            if again is None:
                return None
            self._note_case(report_id, case["_id"])
            self._apply(filing.link(case, again, report_id, report, fields["class_code"], received, now,
                                    case_status.reopen_fields), case["_version"])
            return self.db.cases.find_one({"_id": case["_id"]})
        return storage.retry_on_conflict(change)

    def _register(self, report_id, report, decision, received, now, policy, district):
        fields = decision["case"]
        case_id = rules.case_id_for(report_id, now, district.calendar.tz)
        place = decision.get("gap_place")
        dispute_id = None
        if place:
            covering = [d for d in self._disputes_covering(fields["location"], "open")
                        if d.get("scope", "area") == "area"]
            dispute_id = covering[0]["_id"] if covering else f"OD-{place['place_id']}"
        change = filing.registration(case_id, report_id, report, decision, received, now, dispute_id)
        doc = change.create
        self._note_case(report_id, case_id)
        if not self._apply(change):
            doc = self.db.cases.find_one({"_id": case_id})
        if place:
            self._attach_to_dispute(dispute_id, doc, place, district, policy, now, trigger="gap")
        return doc

    def _save_report(self, report_id, report, case, now, token, filer=None):
        """The report document, written last (its case and events are already saved)."""
        status, _ = filing.outcome(report_id, case)
        notice = open311.service_notice({"status": status, "case_id": case["_id"], "owner_unit": case.get("owner_unit"),
                                         "time_limit": case.get("time_limit")}, load_district())
        doc = filing.filed_report(report_id, report, case, now, token or _token(), filer, notice)
        if not storage.create(self.db.reports, doc):
            doc = self.db.reports.find_one({"_id": report_id})
        return doc

    def _views(self, docs, district) -> list:
        cases = {}
        for case_id in {doc["case_id"] for doc in docs if doc.get("case_id")}:   # by _id: no $in (a scan)
            cases[case_id] = self.db.cases.find_one({"_id": case_id}, PUBLIC)
        return [open311.service_request(doc, cases.get(doc.get("case_id")), district) for doc in docs]
