"""Ownership disputes (争议确权) in intake's store: a case returned twice opens one for its class
at its place, a gap opens one for the place; each level's deadline is a durable timer that moves
the dispute up (community → street → department → leadership); the decision (确权) is the
responsibility-map override for the place. The ladder's rules are disputes.py (pure); these are
the entrypoints and writes, mixed into IntakeService (service.py)."""
from __future__ import annotations

import logging

from marshmallow import ValidationError
from shapely.geometry import mapping, shape

from shared import storage, timers
from shared.contracts import errors
from shared.messaging import outbox
from shared.messaging.consumer import consume_reliably
from shared.messaging.rpc import rpc
from shared.refdata import load_district
from shared.refdata.intake_data import disc

from . import cells, disputes, migrations
from .answers import PUBLIC
from .answers import jsonable as _jsonable
from .schemas import DecisionSchema

log = logging.getLogger(__name__)


class DisputeHandlers:
    """Mixed into IntakeService: uses its ``db`` and ``_policy``."""

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
            upper = disputes.next_level(doc["level"])
            if upper is None:
                storage.update(self.db.disputes, dispute_id, doc["_version"], timers=remaining,
                               set_fields={"overdue": True}, applied=timer["id"])
                return
            deadline = disputes.level_deadline(district, policy, upper, now)
            arbiter = disputes.arbiter(policy, upper, doc.get("street_id"), doc.get("community"))
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

    @errors.raise_failures            # a failure reaches the caller as its kind (shared/contracts/errors.py)
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
            problem = disputes.can_decide(doc, decision["owner_unit"], district.units)
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
    def list_disputes(self, state: str | None = None) -> list:
        states = [state] if state in disputes.STATES else list(disputes.STATES)
        tz = load_district().calendar.tz
        # one indexed equality per state, sorted here (the embedded store scans for a sort on
        # another field than the equality's, or for an empty filter)
        found = sorted((doc for name in states for doc in self.db.disputes.find({"state": name}, PUBLIC)),
                       key=lambda doc: doc["opened_at"], reverse=True)
        return [_jsonable(storage.public(doc), tz) for doc in found[:500]]

    @rpc
    def get_dispute(self, dispute_id: str):
        return self._dispute_view(dispute_id)

    def _attach_to_dispute(self, dispute_id, case, place, district, policy, now, *, trigger,
                           scope="area", units=()):
        """Open the dispute for this place (community level, with its deadline timer), or add
        the case to the one already open."""
        level = "community"
        community = place.get("nearest_community") or case.get("community_name")
        street_id = case.get("street_id")
        deadline = disputes.level_deadline(district, policy, level, now)
        arbiter = disputes.arbiter(policy, level, street_id, community)
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
        if self.db.disputes.find_one({"_id": dispute_id}, {"_id": 1}) is None:
            migrations.list_in_cells(self.db, dispute_id, doc["bbox"])       # first: a listed id not saved yet is skipped
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
        """The disputes in ``state`` whose place covers the point: the point's cell lists the
        disputes near it (one read by ``_id``), each read by ``_id`` and checked here."""
        lon, lat = float(point["lon"]), float(point["lat"])
        listed = self.db.dispute_cells.find_one({"_id": cells.cell(lon, lat)}) or {}
        from shared.refdata.intake_data import geometry_covers
        found = []
        for dispute_id in listed.get("dispute_ids", []):
            doc = self.db.disputes.find_one({"_id": dispute_id}, PUBLIC)
            if doc is not None and doc["state"] == state and geometry_covers(doc["geometry"], lon, lat):
                found.append(doc)
        return found

    def _dispute_view(self, dispute_id):
        """A dispute for the API: its times in local time with the offset."""
        return _jsonable(storage.public(self.db.disputes.find_one({"_id": dispute_id}, PUBLIC)),
                         load_district().calendar.tz)
