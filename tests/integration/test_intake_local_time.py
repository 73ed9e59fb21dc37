"""Intake speaks the platform's local time (Asia/Shanghai, +08:00): a case filed at 03:45 on
2 December local time (19:45 UTC on 1 December) is numbered C20261202-…, and the dispute API gives
its times in local time with the offset."""
from datetime import datetime, timezone

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from shared import clock
from tests.integration.intake_support import GAP, INSIDE, start

LOCAL_0345 = datetime(2026, 12, 1, 19, 45, tzinfo=timezone.utc)        # 2026-12-02 03:45 +08:00


@pytest.fixture(autouse=True)
def at_0345_local():
    clock.reset()
    clock.advance(seconds=(LOCAL_0345 - datetime.now(timezone.utc)).total_seconds())
    yield
    clock.reset()


def test_case_numbers_use_the_local_date_and_dispute_times_are_local(container_factory, config, db):
    running = start(container_factory, config)
    with ClusterRpcProxy(running.config) as rpc:
        filed = rpc.intake.submit_report({"channel": "web", "class_code": "E0101", "location": INSIDE,
                                          "description": "凌晨的垃圾"})
        assert filed["status"] == "registered" and filed["case_id"].startswith("C20261202-")
        gap = rpc.intake.submit_report({"channel": "web", "class_code": "E0101", "location": GAP,
                                        "description": "盲区"})
        dispute = rpc.intake.get_dispute(gap["dispute_id"])
        listed = rpc.intake.list_disputes("open")
    assert dispute["opened_at"].startswith("2026-12-02T03:4") and dispute["opened_at"].endswith("+08:00")
    assert dispute["deadline"].endswith("+08:00") and dispute["history"][0]["at"].endswith("+08:00")
    assert listed[0]["opened_at"] == dispute["opened_at"]
