"""The registry of partner departments and the coordination timing (config/departments.yaml, or
the file named by DEPARTMENTS_FILE)."""
from __future__ import annotations

import os
from functools import lru_cache

import yaml

from .config import ROOT

DEFAULTS = {
    "ack_minutes": {"normal": 5, "urgent": 3},
    "checkin_minutes": {"normal": 30, "urgent": 15},
    "renotify_minutes": {"normal": 5, "urgent": 3},
    "max_renotifications": 1,
}
COORDINATION = {
    "lead_unit": "dept.chengguan",
    "command_centre": "center.command",
    "command_centre_name": "区数字化城市管理监督指挥中心",
    "request_ttl_hours": 24,
}


def _path() -> str:
    return os.environ.get("DEPARTMENTS_FILE") or str(ROOT / "config" / "departments.yaml")


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return data


def departments() -> list[dict]:
    return [dict(item) for item in _load(_path()).get("departments", [])]


def department_ids() -> list[str]:
    return [item["id"] for item in departments()]


def department(dept_id: str) -> dict | None:
    """A department's entry with the defaults filled in (None when unknown)."""
    entry = next((item for item in departments() if item["id"] == dept_id), None)
    if entry is None:
        return None
    merged = {**DEFAULTS, **(_load(_path()).get("defaults") or {})}
    merged.update(entry)
    return merged


def coordination_settings() -> dict:
    return {**COORDINATION, **(_load(_path()).get("coordination") or {})}


def minutes(dept: dict | None, key: str, urgency: str = "normal") -> int:
    """``ack_minutes`` / ``checkin_minutes`` / ``renotify_minutes`` of a department for an
    urgency, falling back to the file's defaults, then to the built-in ones."""
    value = (dept or {}).get(key)
    if value is None:
        value = ({**DEFAULTS, **(_load(_path()).get("defaults") or {})}).get(key)
    if isinstance(value, dict):
        value = value.get(urgency, value.get("normal"))
    if value is None:
        value = DEFAULTS[key]["normal"] if isinstance(DEFAULTS.get(key), dict) else 30
    return int(value)


def broker_username(dept_id: str, prefix: str = "dept.") -> str:
    """The RabbitMQ user of a department: ``dept.<id>`` (the prefix is configurable for tests)."""
    return f"{prefix}{dept_id}"
