"""scoring service: an idempotent event log, facts folded from it, indicators on demand.

Thin entrypoints: the rules are in rules.py (fold) and indicators.py (rates, composite,
ranking, exposure); the store in store.py. See docs/scoring.md.
"""
from __future__ import annotations

import base64
import logging

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from shared import storage
from shared.contracts.base import local_times
from shared.health import Heartbeat
from shared.messaging.batch import consume_batches
from shared.messaging.rpc import rpc
from shared.refdata import load_district

from . import indicators, rules, store
from .periods import local_iso, parse_period
from .schemas import load_query
from .settings import load_settings

log = logging.getLogger(__name__)


class ScoringStore(DependencyProvider):
    """The scoring database, with its indexes made at start (so that a store loaded afterwards,
    like the benchmark's year, fills them as its documents go in); if the store is still away
    at start, by the first worker."""

    connection = storage.MongoConnection()

    def setup(self):
        from shared.config import database_name
        self.database = self.connection.client[database_name(self.container.config, "scoring")]
        self.ready = False

    def start(self):
        try:
            store.ensure_indexes(self.database)
            self.ready = True
        except Exception as exc:  # noqa: BLE001 - the store may still be starting: the first worker tries again
            log.warning("scoring's indexes not made at start (%s); the first worker makes them", exc)

    def get_dependency(self, worker_ctx):
        if not self.ready:
            store.ensure_indexes(self.database)
            self.ready = True
        return self.database


class ScoringService:
    name = "scoring"

    db = ScoringStore()
    heartbeat = Heartbeat()
    config = Config()

    @consume_batches("scoring.lifecycle-events", max_batch=store.MAX_BATCH, linger_seconds=1.0,
                     linger_config="SCORING_BATCH_SECONDS", backlog_share=store.BACKLOG_SHARE,
                     share_config="SCORING_BACKLOG_SHARE")
    def on_lifecycle_events(self, events: list[dict]):
        """The events that arrived within a second (shared/messaging/batch.py): one log insert,
        one read and one facts write per batch, acked after the writes. Nothing a page shows
        waits for it (the case timeline is intake's and dispatch's); the indicators are a
        second later. Behind a backlog the batches grow to MAX_BATCH, and a case's events in
        one batch cost one read and one fact write together; and scoring takes only
        BACKLOG_SHARE of the time, leaving the store to the case path."""
        store.record_batch(self.db, events, self._district())

    def _district(self):
        return load_district(self.config.get("REFDATA_DIR") or None)

    # -- queries (the gateway's scoring API)
    def _period(self, text):
        return parse_period(text, self._district().timezone)

    def _report(self, period):
        return store.compute_report(self.db, period, load_settings(self.config), self._district(),
                                    storage.now_utc())

    @rpc
    def indicators(self, period: str, level: str | None = None, key: str | None = None) -> dict:
        """The whole report of a period, or one entity's part (level: unit|grid|inspector|partner)."""
        query = load_query("indicators", {"period": period, "level": level, "key": key})
        report = self._report(self._period(query["period"]))
        if not query.get("level"):
            return report
        section = {"unit": "units", "grid": "grids", "inspector": "inspectors",
                   "partner": "partners"}[query["level"]]
        entry = report[section].get(query["key"])
        return {"period": report["period"], "as_of": report["as_of"], "level": query["level"],
                "key": query["key"], "found": entry is not None, "entry": entry}

    @rpc
    def ranking(self, month: str, unit_type: str | None = None) -> dict:
        query = load_query("ranking", {"month": month, "unit_type": unit_type})
        report = self._report(self._period(query["month"]))
        tables = report["rankings"]
        if query.get("unit_type"):
            group = indicators.group_for(query["unit_type"], load_settings(self.config))
            tables = [table for table in tables if group and table["group"] == group["key"]]
        return {"period": report["period"], "as_of": report["as_of"], "rankings": tables,
                "units": {row["unit_id"]: {"composite": row["composite"], "indicators": row["indicators"],
                                           "counts": row["counts"]}
                          for table in tables for row in
                          (report["units"][item["unit_id"]] for item in table["ranked"] + table["unranked"])}}

    @rpc
    def exposure(self, period: str) -> dict:
        query = load_query("exposure", {"period": period})
        report = self._report(self._period(query["period"]))
        return {"period": report["period"], "as_of": report["as_of"], "cases": report["exposure"]}

    @rpc
    def bulletin(self, month: str, fmt: str = "pdf") -> dict | None:
        query = load_query("bulletin", {"month": month, "fmt": fmt})
        doc = store.load_bulletin(self.db, query["month"])
        if doc is None:
            return None
        content = doc["pdf"] if query["fmt"] == "pdf" else doc["html"].encode("utf-8")
        return {"month": query["month"], "fmt": query["fmt"],
                "generated_at": local_iso(doc["generated_at"], self._district().timezone),
                "data_b64": base64.b64encode(content).decode("ascii")}

    @rpc
    def bulletins(self) -> list:
        tz = self._district().timezone
        return [{"month": item["month"], "generated_at": local_iso(item["generated_at"], tz)}
                for item in store.list_bulletins(self.db)]

    @rpc
    def summary(self, correlation_id: str | None = None) -> dict:
        match = {"correlation_id": correlation_id} if correlation_id else {}
        counts = {row["_id"]: row["n"] for row in self.db.events.aggregate([
            {"$match": match}, {"$group": {"_id": "$type", "n": {"$sum": 1}}}])}
        received, registered = counts.get("report_received", 0), counts.get("case_registered", 0)
        dispatched = counts.get("case_dispatched", 0)
        return {"counts": counts,
                "立案率": indicators.rate(registered, received),
                "派遣率": indicators.rate(dispatched, registered)}

    @rpc
    def events_for(self, correlation_id: str) -> list:
        tz = self._district().timezone
        found = self.db.events.find({"correlation_id": correlation_id})     # sorted here: a sort by
        return [_public_event(doc, tz) for doc in                            # another field than the
                sorted(found, key=lambda doc: (doc["occurred_at"], doc["_id"]))]   # equality's walks the log


def _public_event(doc: dict, tz: str) -> dict:
    """A logged event for the case page, its times in local time with offset."""
    out = storage.public(doc)
    out.pop("subjects", None)
    for field in rules.SUBJECT_FIELDS:
        out.pop(field, None)
    return local_times(out, tz)
