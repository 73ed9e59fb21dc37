"""Coordination's RPC answers and the graduated-enforcement policy file, shared by the service's
entrypoint modules (service.py: joint operations; parties.py: graduated enforcement)."""
from __future__ import annotations

from functools import lru_cache

import yaml
from marshmallow import ValidationError

from shared import storage
from shared.contracts import errors
from shared.contracts.base import local_times
from shared.refdata import load_district

from . import enforcement


@lru_cache(maxsize=4)
def _policy(path: str) -> enforcement.Policy:
    with open(path, encoding="utf-8") as handle:
        return enforcement.Policy.from_mapping(yaml.safe_load(handle) or {})


def now_ms():
    """The platform clock to the millisecond — what the store keeps — so an answer built in
    memory says exactly what a later read of the stored document says."""
    now = storage.now_utc()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def ok(**body) -> dict:
    return {"ok": True, **local(body)}


def local(answer):
    """Times in an answer: local time with offset, ISO 8601 (the district's timezone)."""
    return local_times(answer, load_district().calendar.tz)


def refused(status: int, message: str, fields=None) -> dict:
    """Raised as the error kind of ``status`` (shared/contracts/errors.py): the RPC caller gets it."""
    raise errors.for_status(status)(message, fields or None)


def _invalid(exc: ValidationError) -> dict:
    return refused(400, "输入有误，请检查标出的字段 (invalid input)", exc.messages)
