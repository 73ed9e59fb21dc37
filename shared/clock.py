"""The platform's clock. Tests (and demos) can move it forward: ``clock.advance(hours=5)`` in
process, or ``DCG_CLOCK_OFFSET_SECONDS`` for a service run as its own process."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

_offset = timedelta(seconds=float(os.environ.get("DCG_CLOCK_OFFSET_SECONDS", "0") or 0))


def now() -> datetime:
    return datetime.now(timezone.utc) + _offset


def advance(**delta) -> datetime:
    global _offset
    _offset += timedelta(**delta)
    return now()


def reset():
    global _offset
    _offset = timedelta(0)
