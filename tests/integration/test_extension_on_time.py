"""One 按期 answer for one case, under each setting of the platform-wide EXTENSION_MOVES_DEADLINE
(config/platform.yaml; the rule is shared/on_time.py): a case handled after its original deadline
but within an approved extension is 按期 in dispatch's case view exactly when scoring counts it
按期 (按期结案 of the unit, in the indicators and in the evaluation by role) — on the real broker
and store, through the gateway."""
from datetime import datetime

import pytest
import requests

from services.dispatch.service import DispatchService
from services.gateway.service import GatewayService
from services.scoring.service import ScoringService
from tests.conftest import free_port
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    CST, UNIT, dispatch_config, local, log_in, ok, operator_headers, register, relayed, saturday_morning, set_clock,
)
from tests.helpers import wait_until

STREET = UNIT["actor_unit"]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.usefixtures("saturday_morning")
@pytest.mark.parametrize("moves", [False, True], ids=["standard", "extension-moves-deadline"])
def test_dispatch_and_scoring_give_the_same_on_time_answer(container_factory, config, db, moves):
    config = dict(config, EXTENSION_MOVES_DEADLINE=moves)
    port = free_port()
    container_factory(DispatchService, dispatch_config(config)).start()
    container_factory(ScoringService, config).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    base = f"http://127.0.0.1:{port}"
    log_in(base, db)

    set_clock(local(2026, 11, 16, 9, 0))      # a Monday: deadline, extension and closing in one month
    case_id = register(config)
    relayed(db, case_id)
    case = ok(base, case_id, "accept", expected_version=1, **UNIT)
    case = ok(base, case_id, "request-extension", expected_version=case["version"], reason="需调运大型机械",
              extra="1d", **UNIT)
    case = ok(base, case_id, "decide-extension", expected_version=case["version"], actor="李主任",
              role="centre", approved=True)
    original, extended = _moment(case["original_deadline"]), _moment(case["deadline"])
    assert original < extended

    # handled after the original deadline, within the extended one
    set_clock(original + (extended - original) / 2)
    case = ok(base, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/d204b51ff8be722056d816a56a992eba", note="已清运", **UNIT)
    case = ok(base, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True)
    assert case["state"] == "closed"
    assert case["on_time"] is moves                                   # dispatch's case view

    month = f"{original.astimezone(CST):%Y-%m}"       # the month it fell due (应结案) and was closed
    assert f"{_moment(case['closed_at']).astimezone(CST):%Y-%m}" == month
    headers = operator_headers(base)

    def scored():
        answer = requests.get(f"{base}/api/scoring/indicators", params={"period": month},
                              headers=headers, timeout=20)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        row = report["units"].get(STREET)
        return report if row and row["counts"]["closed"] == 1 else None
    report = wait_until(scored, timeout=30, what="scoring to count the closed case")
    counts = report["units"][STREET]["counts"]
    assert (counts["due"], counts["closed"], counts["closed_on_time"], counts["extended"]) == (1, 1, int(moves), 1)
    handler = next(row for row in report["roles"]["handlers"] if row["unit_id"] == STREET)
    assert handler["counts"]["closed_on_time"] == int(moves)          # the evaluation by role
    assert handler["counts"]["overdue_closed"] == int(not moves)
