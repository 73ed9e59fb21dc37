"""How intake's RPC answers look: without the store's bookkeeping fields, plain JSON, times in
ISO 8601 (in local time with the offset where the answer is for people), and report tokens."""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

PUBLIC = {"_outbox": 0, "_applied": 0, "_timers": 0, "_pending": 0, "_lease": 0, "_timer_lease": 0, "_timer_holder": 0,
          "_due_ms": 0, "_timer_set": 0}


def token() -> str:
    return f"tok-{secrets.token_hex(12)}"


def parse_time(value):
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# a moment as the other services' events carry it (ISO 8601 with an offset or Z)
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$")


def jsonable(value, tz=None):
    """Datetimes → ISO strings, recursively (RPC answers stay plain JSON); with ``tz``, in that
    local time with its offset — also the moments kept as text (copied from dispatch's events)."""
    if tz is not None and isinstance(value, str) and _STAMP.match(value):
        value = parse_time(value)
    if isinstance(value, dict):
        return {key: jsonable(item, tz) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item, tz) for item in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value.astimezone(tz) if tz is not None else value).isoformat()
    return value
