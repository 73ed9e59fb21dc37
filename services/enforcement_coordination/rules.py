"""Joint-operation rules (城管+N) — pure: no I/O, no clock, no broker. One module per concern,
re-exported here (``rules.open_operation`` … keep working):

- operation.py  — states, :class:`Effects`, :class:`Refused`, ids, the message envelope;
- lead.py       — who leads an operation (``choose_lead``), the lead's contact;
- fanout.py     — one Request per department (``open_operation``, ``build_request``);
- deadlines.py  — acceptance and check-in deadlines, their timers;
- reminders.py  — a missed deadline: re-notify, then escalate (``on_timer``);
- replies.py    — department replies (``receive_reply``), who really sent one (``sender_problem``);
- commands.py   — the coordinator's Update, Cancel, close, and leave requests;
- board.py      — the board's summary and the case timeline's entries.

Every function takes the operation document as it is stored and returns what must change:
an :class:`Effects` with the fields to set, the messages to log, the department messages to
send, the lifecycle events to publish and the operation's new list of durable timers. The
service (service.py) saves all of it in ONE atomic update (state + outbox + timers + applied id).

Department states, in order (a state never goes back):
``requested`` → ``accepted`` → ``on_site`` (报到) → ``acting`` → ``disposed``;
or ``rejected`` (with a reason), or ``cancelled`` (released by the lead).

Deadlines per department and urgency (config/departments.yaml): the Accept/Reject is due
``ack_minutes`` after the request, the check-in ``checkin_minutes`` after it. A missed deadline
re-notifies the department (a Request again, or a check-in reminder Update) every
``renotify_minutes``, ``max_renotifications`` times, then escalates to the lead unit and the
command centre. ``on_time`` is judged on the platform's receive time against the original
deadline (a re-notification does not move it).

Only the lead unit closes an operation, and only when every participating department has
reported its disposition, unless the lead forces it with a note ("事不完，人不走"). A department
cannot leave an open operation: an Ack that withdraws an acceptance or an Update ``leave`` is
refused with an Error that says why; so is anything a department sends after the close.
"""
from __future__ import annotations

from .board import AWAITING_LABELS, STAGE_LABELS, TRIGGER_NAMES, summary, timeline  # noqa: F401
from .commands import (_authorise, _require_open, _targets, cancel, close, coordinator_update,  # noqa: F401
                       leave_request, outstanding)
from .deadlines import (_minutes, _timer, _timers_without, ack_deadline, checkin_deadline,  # noqa: F401
                        renotify_interval)
from .fanout import build_request, open_operation  # noqa: F401
from .lead import choose_lead, lead_info  # noqa: F401
from .operation import (LEAD_UNIT, PARTICIPATING, REQUEST_TTL, SENDER, STAGE_STATE, STATE_NAMES,  # noqa: F401
                        STATE_ORDER, TIMER_KINDS, TRIGGERS, Effects, Refused, _envelope, _iso, _log, _place,
                        _urgency, distribution_id, ms_iso, operation_id_for, short_hash)
from .reminders import on_timer  # noqa: F401
from .replies import (_error_message, _on_time, _refuse, _sent_ids, apply_reply, receive_reply,  # noqa: F401
                      sender_problem)
