"""Intake's rules about a report itself — pure: no broker, no store, no clock.

Its ids (report id from the channel's ``external_id`` per account, case number on the local
date, who to subscribe), and its class's typed attributes: normalisation (used by the schemas)
and the measurable filing standard with a reason the reporter can read.

The filing decision (file, reject, link, reopen) is filing.py; the ownership-dispute ladder is
disputes.py; the copy of a case's status fed by dispatch's events is case_status.py.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from shared.refdata.intake_data import local_time_between

# ===================================================================== ids
def report_id_for(report: dict, generated: str, account: str | None = None) -> str:
    """A channel's own ticket id (``external_id``) names one report per account: the account
    (app key) that sent it, or the channel itself for the AMQP channels (hotline, sensors)."""
    if report.get("external_id"):
        if account:
            return f"{report['channel']}-{account.split(':', 1)[-1]}-{report['external_id']}"
        return f"{report['channel']}-{report['external_id']}"
    return generated


def fingerprint(report_body: dict) -> str:
    """What a re-sent report must repeat to be the same report (the body as the schema dumps it)."""
    text = json.dumps(report_body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def may_rate(report: dict, account: str | None) -> bool:
    """回访 only from the account (or channel) that filed the request."""
    return bool(account) and report.get("filed_by") == account


def case_id_for(report_id: str, received_at: datetime, tz=None) -> str:
    """``C<local date>-<digest>``: the date is the platform's local date (``tz``), not UTC's."""
    digest = hashlib.sha1(report_id.encode()).hexdigest()[:8].upper()
    local = received_at.astimezone(tz) if tz is not None else received_at
    return f"C{local:%Y%m%d}-{digest}"


def reporter_id(report: dict) -> str | None:
    """Who to subscribe: inspector id, leader, account id or phone (in that order)."""
    if report.get("inspector_id"):
        return f"inspector:{report['inspector_id']}"
    leader = report.get("leader") or {}
    if leader.get("name"):
        return f"leader:{leader['name']}"
    reporter = report.get("reporter") or {}
    for key in ("account_id", "phone", "email"):
        if reporter.get(key):
            return f"{key}:{reporter[key]}"
    if report.get("sensor_id"):
        return f"sensor:{report['sensor_id']}"
    return None


# ===================================================================== attributes
def _number_text(value: float) -> str:
    return f"{value:g}"


def normalise_attributes(minor: dict, raw: dict, tz) -> tuple[dict, dict]:
    """Check attribute answers against the class's typed attributes.

    Returns ``(clean, errors)``: clean values by code (numbers as float, lists as lists of keys,
    datetimes as ISO strings), and field errors by code.  Unknown codes are ignored (tolerant).
    """
    clean: dict = {}
    errors: dict = {}
    defined = {attribute["code"]: attribute for attribute in minor.get("attributes") or []}
    for code, value in (raw or {}).items():
        attribute = defined.get(code)
        if attribute is None or value is None or value == "" or value == []:
            continue
        datatype = attribute["datatype"]
        keys = [v["key"] for v in attribute.get("values") or []]
        if datatype == "number":
            number = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value) if abs(value) < 1e12 else None
            elif isinstance(value, str) and len(value) <= 32:
                try:
                    number = float(value.strip())
                except ValueError:
                    number = None
            if number is None or number != number or abs(number) > 1e9:
                errors[code] = [f"{attribute['description']}应为数字 (must be a number)"]
            else:
                clean[code] = number
        elif datatype in ("string", "text"):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number_text(value)
            limit = 200 if datatype == "string" else 4000
            if not isinstance(value, str) or len(value) > limit:
                errors[code] = [f"{attribute['description']}应为不超过 {limit} 字的文字"]
            elif datatype == "string" and ("\n" in value or "\r" in value):
                errors[code] = [f"{attribute['description']}不能换行 (string: no line breaks)"]
            else:
                clean[code] = value
        elif datatype == "datetime":
            parsed = None
            if isinstance(value, str) and len(value) <= 40:
                try:
                    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                except ValueError:
                    parsed = None
            if parsed is None:
                errors[code] = [f"{attribute['description']}应为 ISO 8601 时间，如 2026-11-23T23:10:00+08:00"]
            else:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=tz)
                clean[code] = parsed.isoformat()
        elif datatype == "singlevaluelist":
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number_text(value)
            if not isinstance(value, str) or value not in keys:
                errors[code] = [f"{attribute['description']}只能是 {', '.join(keys)} 之一"]
            else:
                clean[code] = value
        elif datatype == "multivaluelist":
            values = value if isinstance(value, list) else [value]
            if len(values) > len(keys) * 2 or not all(isinstance(v, str) and v in keys for v in values):
                errors[code] = [f"{attribute['description']}的每一项只能是 {', '.join(keys)} 之一"]
            else:
                clean[code] = sorted(set(values), key=keys.index)
    return clean, errors


def missing_required(minor: dict, attributes: dict) -> list[str]:
    return [attribute["code"] for attribute in minor.get("attributes") or []
            if attribute.get("required") and attribute["code"] not in attributes]


def _condition(attribute: dict, value, tz) -> tuple[bool, str]:
    """(met, readable explanation when not met) of one attribute's files_if."""
    condition = attribute["files_if"]
    description, unit = attribute["description"], attribute.get("unit") or ""
    names = {v["key"]: v["name"] for v in attribute.get("values") or []}
    if attribute["datatype"] == "number":
        checks = {"gt": (lambda t: value > t, "未超过"), "gte": (lambda t: value >= t, "未达到"),
                  "lt": (lambda t: value < t, "不低于"), "lte": (lambda t: value <= t, "超过")}
        for key, threshold in condition.items():
            test, words = checks[key]
            if not test(threshold):
                return False, (f"{description}为 {_number_text(value)}{unit}，"
                               f"{words} {_number_text(threshold)}{unit}")
        return True, ""
    if attribute["datatype"] == "singlevaluelist":
        if value in condition["in"]:
            return True, ""
        return False, f"{description}为“{names.get(value, value)}”"
    if attribute["datatype"] == "multivaluelist":
        if set(value) & set(condition["in"]):
            return True, ""
        return False, f"{description}未包含需立案的情形"
    if attribute["datatype"] == "datetime":
        start, end = condition["local_time_between"]
        local = datetime.fromisoformat(value).astimezone(tz)
        if local_time_between(local.time(), start, end):
            return True, ""
        return False, f"{description}为当地时间 {local:%H:%M}，不在 {start}–{end} 时段"
    return True, ""


def check_filing_standard(minor: dict, attributes: dict, tz) -> str | None:
    """None when the measurable filing standard is met (or nothing measurable was given);
    otherwise the readable reason."""
    results = []
    for attribute in minor.get("attributes") or []:
        if attribute.get("files_if") and attribute["code"] in attributes:
            results.append(_condition(attribute, attributes[attribute["code"]], tz))
    if not results:
        return None
    met = [ok for ok, _ in results]
    passed = any(met) if minor.get("filing_mode", "any") == "any" else all(met)
    if passed:
        return None
    failed = "；".join(text for ok, text in results if not ok)
    return f"不符合“{minor['name']}”立案标准：{failed}。立案标准：{minor['filing_standard']}"
