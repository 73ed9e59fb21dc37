"""Dispatch rules — pure (no I/O). Routing, deadlines on the business calendar, the case lifecycle
after registration, and supervision timers.

Every function takes the case document as read from the store and returns a :class:`Change`: the
fields to set, the history entries, the events, the notifications and the new list of durable
timers. The service saves a Change in ONE atomic update (shared.storage.update) against the version
it read, so a state change, its events, its notifications and its timers are never apart.

States: ``dispatched`` (派遣, waiting for the unit) → ``accepted`` (签收, 处置中) → ``feedback_given``
(已反馈, 待核查) → ``closed`` (结案). ``parked`` (挂账) stops the clock. A return (回退) re-dispatches
at once; a failed verification or a reopening (返工) puts the case back to ``accepted``.

Intermediate stages (阶段时限, e.g. 违法建设: 责令停工 within 4 working hours, 拆除 within 20 days)
come from the class in the taxonomy and start with each assignment. The unit reports each stage
(``report_stage``); a stage due before the case deadline that is not reported in time gets its
own 督办 (``stage_overdue``); a stage due with the deadline is supervised by the deadline itself.

The rules live in one module per concern; this module keeps their public names importable:

* ``model``       states, labels, errors, Context, Change;
* ``assignment``  routing a new case and (re-)assigning it (派遣);
* ``supervision`` 预警 / 督办 / 升级 / 核查超时 / 阶段督办 timers;
* ``actions``     the unit's and the centre's actions (签收 … 核查, 返工);
* ``from_intake`` reopening and ownership decisions (确权) from intake;
* ``views``       the API's views, in local time.
"""
from __future__ import annotations

from .actions import ACTIONS, apply_action  # noqa: F401
from .assignment import new_case, plan_dispatch, stage_plan  # noqa: F401
from .from_intake import ownership_decided, reopen  # noqa: F401
from .model import (LABELS, OPEN_STATES, STATE_LABELS, STATES, TIMER_KINDS, Change, Context,  # noqa: F401
                    Forbidden, Refused, ms, working_seconds)
from .supervision import fire_timer, supervision_timers  # noqa: F401
from .views import case_view, summary_view, to_local  # noqa: F401
