"""Every time in coordination's answers — operations, the board, violations, rectification
checks, a party's history — is local time with its offset, ISO 8601 (2026-11-23T14:23:16+08:00),
not UTC and not Python's ``2026-11-23 06:23:16+00:00``. The verbatim department messages in an
operation's log keep their wire form (the contract's UTC ``…Z``)."""
import re

from tests.integration.coordination_support import register_case, wait_operation
from tests.integration.test_coordination_enforcement import SHOP, VAN, gateway, reset_clock, violation  # noqa: F401

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
LOCAL_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+08:00$")


def times_in(value, path="") -> list[tuple[str, str]]:
    """(where, value) of every timestamp in an answer, the verbatim wire messages excepted."""
    if isinstance(value, dict):
        return [found for key, item in value.items() if key != "message"
                for found in times_in(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in times_in(item, f"{path}[{index}]")]
    return [(path, value)] if isinstance(value, str) and TIMESTAMP.match(value) else []


def all_local(answer) -> int:
    found = times_in(answer)
    wrong = [(where, value) for where, value in found if not LOCAL_ISO.match(value)]
    assert not wrong, wrong[:5]
    return len(found)


def test_enforcement_answers_give_local_iso_times(config, db, gateway):
    recorded = violation(gateway, SHOP, violation_id="t1")
    assert recorded.status_code == 201, recorded.text
    assert all_local(recorded.json()) >= 2                       # decided, the order's due time …
    order_id = recorded.json()["violation"]["order"]["order_id"]
    check = gateway.post(f"/api/enforcement/rectifications/{order_id}/check",  # the command centre checks
                         json={"corrected": False})
    assert check.status_code == 200, check.text
    assert all_local(check.json()) >= 3
    assert violation(gateway, VAN, corrected=True, violation_id="t2").status_code == 201
    history = gateway.get("/api/enforcement/parties/plate/渝A12345")
    assert history.status_code == 200 and all_local(history.json()) >= 1

    case_id = register_case(config, class_code="E0302", joint=["transport", "police"])
    op_id = f"OP-{case_id}"
    wait_operation(db, op_id, lambda d: True, "the class-rule operation")
    operation = gateway.get(f"/api/operations/{op_id}")
    assert operation.status_code == 200, operation.text
    assert all_local(operation.json()) >= 5                      # opened, sent, deadlines, log entries
    assert operation.json()["opened_at"].endswith("+08:00")
    board = gateway.get("/api/operations")
    assert board.status_code == 200 and all_local(board.json()) >= 1
    assert all_local(gateway.get(f"/api/cases/{case_id}/operations").json()) >= 1
