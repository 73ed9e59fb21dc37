"""IoT readings → reports — pure.

A rule (intake.yaml ``sensor_rules``) says: a metric above ``threshold`` for at least
``sustained_minutes`` is a problem (e.g. construction-site PM10 over 150 µg/m³ for 30 minutes →
施工扬尘 E0301).  The sensor's state keeps its readings of the last 24 hours; after each reading
the rule looks at them in time order, so readings that arrive late or out of order (several
workers, retries, a redelivery) give the same result:

* an **episode** is a run of consecutive readings above the threshold (and inside
  ``active_hours`` when the rule has them), with no gap longer than ``max_gap_minutes`` —
  a longer silence ends it: we cannot claim the value stayed high while we were not told;
* an episode that has lasted ``sustained_minutes`` triggers **one** report, identified by the
  sensor and the episode's start (so a redelivered trigger files the same report once);
* a filed episode keeps its extent: late readings that would cut it in pieces (a low reading
  held up in a retry) or move its start do not file its pieces again.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.refdata.intake_data import local_time_between

WINDOW = timedelta(hours=24)
EMPTY_STATE = {"readings": [], "triggered": []}


def _at(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def episodes(readings: list, rule: dict, tz) -> list[dict]:
    """The runs of above-threshold readings (time-ordered ``[(at, value), …]``)."""
    runs, current, previous = [], None, None
    gap = timedelta(minutes=rule["max_gap_minutes"])
    for at, value in readings:
        active = True
        if rule.get("active_hours"):
            active = local_time_between(at.astimezone(tz).time(), *rule["active_hours"])
        above = active and value > rule["threshold"]
        if not above or (current is not None and at - previous > gap):
            if current is not None:
                runs.append(current)
            current = None
        if above:
            if current is None:
                current = {"start": at, "end": at, "peak": value}
            current["end"] = at
            current["peak"] = max(current["peak"], value)
        previous = at
    if current is not None:
        runs.append(current)
    return runs


def observe(state: dict | None, reading: dict, rule: dict, tz) -> tuple[dict, list[dict]]:
    """Apply one reading. Returns ``(new_state, triggers)``: one
    ``{"episode_start", "at", "peak", "minutes"}`` per episode that has now reached the duration
    (usually none, at most one unless a late reading completed an older episode).

    A filed episode keeps its extent (``triggered``: ``[start, end]``, widened as its run grows).
    A run that overlaps a filed extent is that episode, not a new one: readings that arrive late
    (a low one inside it, a high one just before its start) do not file it again."""
    state = {"readings": [(_at(a), float(v)) for a, v in (state or {}).get("readings", [])],
             "triggered": [_extent(entry) for entry in (state or {}).get("triggered", [])]}
    at = _at(reading["measured_at"])
    readings = {a: v for a, v in state["readings"]}
    readings[at] = float(reading["value"])
    newest = max(readings)
    ordered = sorted((a, v) for a, v in readings.items() if newest - a <= WINDOW)
    filed = [extent for extent in state["triggered"] if newest - extent[1] <= WINDOW * 2]
    triggers = []
    sustained = timedelta(minutes=rule["sustained_minutes"])
    for run in episodes(ordered, rule, tz):
        overlapping = [extent for extent in filed if extent[0] <= run["end"] and run["start"] <= extent[1]]
        for extent in overlapping:                  # the same episode: widen what it covers
            extent[0], extent[1] = min(extent[0], run["start"]), max(extent[1], run["end"])
        if not overlapping and run["end"] - run["start"] >= sustained:
            filed.append([run["start"], run["end"]])
            triggers.append({"episode_start": run["start"], "at": run["start"] + sustained,
                             "peak": run["peak"], "minutes": int(sustained.total_seconds() // 60)})
    new_state = {"readings": [[a.isoformat(), v] for a, v in ordered],
                 "triggered": [[a.isoformat(), b.isoformat()] for a, b in sorted(filed)]}
    return new_state, triggers


def _extent(entry) -> list:
    """A filed episode's ``[start, end]`` (a bare start from before extents were kept: ``[t, t]``)."""
    if isinstance(entry, (list, tuple)):
        return [_at(entry[0]), _at(entry[1])]
    return [_at(entry), _at(entry)]


def report_for(sensor: dict, rule: dict, trigger: dict, minor: dict, tz) -> dict:
    """The report a triggered episode files (channel ``sensor``; one per sensor and episode)."""
    start_local = trigger["episode_start"].astimezone(tz)
    unit = rule["unit"]
    description = (f"{rule.get('description') or '在线监测超标'}：{sensor['name']}（{sensor.get('site', '')}），"
                   f"自 {start_local:%Y-%m-%d %H:%M} 起连续 {trigger['minutes']} 分钟超过 "
                   f"{rule['threshold']:g}{unit}，峰值 {trigger['peak']:g}{unit}")
    attributes = {}
    for attribute in minor.get("attributes") or []:
        if attribute["code"] == rule["metric"] and attribute["datatype"] == "number":
            attributes[attribute["code"]] = float(trigger["peak"])
        elif attribute["datatype"] == "datetime" and attribute.get("files_if"):
            attributes[attribute["code"]] = trigger["episode_start"].astimezone(tz).isoformat()
    episode = trigger["episode_start"].astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return {
        "channel": "sensor",
        "external_id": f"{sensor['id']}-{episode}",
        "class_code": rule["class_code"],
        "location": dict(sensor["location"]),
        "address": sensor.get("address") or sensor.get("site") or sensor["name"],
        "description": description[:4000],
        "urgency": rule.get("urgency", "normal"),
        "reporter": {"name": sensor["name"], "phone": "", "account_id": ""},
        "media_urls": [],
        "photo_refs": [],
        "attributes": attributes,
        "sensor_id": sensor["id"],
        "reported_at": trigger["at"],
    }
