"""The registry of partner departments (config/departments.yaml, or DEPARTMENTS_FILE)."""
from __future__ import annotations

import os
from functools import lru_cache

import yaml

from .config import ROOT


@lru_cache(maxsize=4)
def _load(path: str) -> tuple:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return tuple(data.get("departments", []))


def departments() -> list[dict]:
    path = os.environ.get("DEPARTMENTS_FILE") or str(ROOT / "config" / "departments.yaml")
    return [dict(item) for item in _load(path)]


def department_ids() -> list[str]:
    return [item["id"] for item in departments()]


def department(dept_id: str) -> dict | None:
    return next((item for item in departments() if item["id"] == dept_id), None)
