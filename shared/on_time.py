"""The on-time rules (按期 / 按时) of the platform — pure, one place. dispatch judges a case when it
closes, scoring counts it in the indicators; both call these functions, so a case is "on time" in
the bulletin exactly when dispatch said so.

* 按期结案 (a closed case is on time): the handling that passed verification (its feedback) came
  no later than the *original* deadline of the assignment, and the case was never extended (延期)
  nor parked (挂账). An extension or parking keeps the case alive but never makes it on time.
  Local practice varies on extensions: with ``extension_moves_deadline`` (the platform-wide
  setting ``EXTENSION_MOVES_DEADLINE`` in config/platform.yaml, default off as in the standard;
  read by :func:`extension_moves_deadline` in dispatch *and* scoring, so both judge a case alike)
  an approved extension moves the 按期 deadline to the extended one instead; parking still never
  counts as on time.
* 按时 (a verification, a stage report): done no later than its due time.

Times must be timezone-aware or naive UTC (what a store that drops tzinfo keeps).
"""
from __future__ import annotations

from datetime import datetime, timezone


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


SETTING = "EXTENSION_MOVES_DEADLINE"      # the platform config key (config/platform.yaml)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def extension_moves_deadline(config: dict | None) -> bool:
    """The platform-wide setting from a loaded platform config (``shared.config.load_config``, the
    same dict nameko hands each service): does an approved extension move the 按期 deadline?
    Absent: the standard's choice (no). A value that is not a yes/no raises ``ValueError``."""
    value = (config or {}).get(SETTING, False)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{SETTING} must be true or false, not {value!r}")


def in_time(at: datetime | None, due: datetime | None) -> bool:
    """按时: ``at`` no later than ``due`` (False when either is unknown)."""
    return at is not None and due is not None and _utc(at) <= _utc(due)


def closed_on_time(*, extended: bool, parked: bool, handled_at: datetime | None = None,
                   original_deadline: datetime | None = None, judged: bool | None = None,
                   extension_moves_deadline: bool = False,
                   extended_deadline: datetime | None = None,
                   closed_at: datetime | None = None) -> bool:
    """按期结案. ``handled_at``: the feedback that passed verification; ``original_deadline``: the
    assignment's deadline before any extension. Without those two (an event from before they were
    carried), ``judged`` — dispatch's own verdict — stands, still under the extension/parking rule.
    ``extension_moves_deadline``: an extended (not parked) case is on time when handled no later
    than ``extended_deadline`` (the deadline the approved extension set); without ``handled_at``
    the closing time ``closed_at`` (never earlier than the handling) is judged instead."""
    if parked:
        return False
    if extended:
        return extension_moves_deadline and in_time(handled_at or closed_at, extended_deadline)
    if handled_at is not None and original_deadline is not None:
        return in_time(handled_at, original_deadline)
    return bool(judged)
