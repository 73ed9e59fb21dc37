"""The department programs (plain pika processes, departments/program.py) against the real
coordination service: a fan-out every department answers, a department that rejects, and a
program killed with SIGKILL mid-operation and restarted — nothing lost, nothing applied twice."""
import json
import signal
from collections import Counter

import pytest

from tests.helpers import queue_depth, wait_until

from tests.integration.coordination_support import (Events, dept_states, operation, register_case, rpc,
                                                    start_coordination, start_program, stop_programs, vhost_url,
                                                    wait_operation, watch_events)

LEAD = "dept.chengguan"
MUCK_TRUCK = "E0302"          # 渣土车抛洒滴漏 → 城管 + transport + police + environment
DEPTS = ["transport", "police", "environment"]


@pytest.fixture
def programs(vhost, tmp_path):
    started = []

    def start(dept, **env):
        proc = start_program(dept, vhost_url(vhost), tmp_path, **env)
        started.append(proc)
        return proc
    start.history = tmp_path
    yield start
    stop_programs(started)


@pytest.fixture
def events(config):
    return Events(config, watch_events(config))


def journal(history_dir, dept):
    path = history_dir / f"{dept}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def replies_in(doc, dept):
    """(kind, stage) of every reply the platform applied from a department."""
    return [(m["kind"], (m["message"]["payload"] or {}).get("stage")) for m in doc["messages"]
            if m["direction"] == "in" and m["department"] == dept and not m.get("refused")]


def test_fan_out_every_department_program_answers(config, db, container_factory, programs, events):
    coordination = start_coordination(container_factory, config)
    for dept in DEPTS:
        programs(dept)
    case_id = register_case(config, class_code=MUCK_TRUCK, joint=DEPTS)
    op_id = f"OP-{case_id}"
    # replies may be handled out of order (a retried check-in after the disposition): wait for both
    doc = wait_operation(db, op_id, lambda d: set(dept_states(d).values()) == {"disposed"} and all(
                             d["departments"][dept].get("checkin_received_at") for dept in DEPTS),
                         "every department to check in, act and dispose", timeout=30)
    for dept in DEPTS:
        state = doc["departments"][dept]
        assert state["acceptance_on_time"] is True and state["checkin_on_time"] is True
        assert state["answer_received_at"] <= state["checkin_received_at"] <= state["disposition_received_at"]
        # each reply applied once; the order they were applied in may differ under load (above),
        # the stage times just asserted are the department's order
        assert sorted(replies_in(doc, dept), key=str) == sorted([("Ack", None), ("Update", "checkin"),
                                                                 ("Update", "action"), ("Update", "disposition")],
                                                                key=str)
    out = [m for m in doc["messages"] if m["direction"] == "out"]
    assert sorted(m["department"] for m in out) == sorted(DEPTS) and {m["kind"] for m in out} == {"Request"}
    assert doc["_timers"] == []                   # every deadline met: nothing left to chase

    replied = wait_until(lambda: len(events.of("department_replied")) >= 12 and events.of("department_replied"),
                         what="12 department_replied events")
    measured = Counter((e["payload"]["department"], e["payload"]["measure"], e["payload"]["on_time"])
                       for e in replied if e["payload"].get("measure"))
    assert measured == Counter({(d, m, True): 1 for d in DEPTS for m in ("acceptance", "checkin")})

    closed = rpc(coordination, "close_operation", op_id, {"by": {"unit_id": LEAD}, "note": "路面已恢复"})
    assert closed["ok"], closed
    doc = wait_operation(db, op_id, lambda d: all(st.get("acknowledged") for st in d["departments"].values()),
                         "each program to acknowledge the close")
    assert doc["state"] == "closed"
    for dept in DEPTS:                           # each department kept its own history
        kinds = [(e.get("type"), (e.get("message") or {}).get("kind")) for e in journal(programs.history, dept)]
        assert kinds.count(("received", "Request")) == 1 and kinds.count(("received", "Update")) == 1
        assert kinds.count(("sent", "Update")) == 3 and kinds.count(("sent", "Ack")) == 2


def test_one_department_rejects_with_a_reason(config, db, container_factory, programs, events):
    coordination = start_coordination(container_factory, config)
    programs("transport")
    programs("police")
    programs("environment", DEPT_REJECT_RATE=1, DEPT_REJECT_REASON="区生态环境局：执法人员均在中央环保督察现场，无法派员")
    case_id = register_case(config, class_code=MUCK_TRUCK, joint=DEPTS)
    op_id = f"OP-{case_id}"
    doc = wait_operation(db, op_id, lambda d: dept_states(d) == {"transport": "disposed", "police": "disposed",
                                                                "environment": "rejected"},
                         "two dispositions and one rejection", timeout=30)
    environment = doc["departments"]["environment"]
    assert environment["reason"].startswith("区生态环境局：执法人员均在") and environment["acceptance_on_time"] is True
    assert all(t["data"]["department"] != "environment" for t in doc["_timers"])      # nothing to chase
    assert replies_in(doc, "environment") == [("Ack", None)]
    rejected = wait_until(lambda: events.of("department_replied", department="environment"), what="event")[0]
    assert rejected["payload"]["status"] == "rejected" and "中央环保督察" in rejected["payload"]["reason"]
    # a rejecting department is not outstanding: the lead can close
    assert rpc(coordination, "close_operation", op_id, {"by": {"unit_id": LEAD}})["ok"]


def test_a_program_killed_mid_operation_and_restarted_loses_nothing(config, db, container_factory, programs):
    coordination = start_coordination(container_factory, config)
    timing = {"DEPT_CHECKIN_SECONDS": 0.2, "DEPT_ACTION_SECONDS": 4, "DEPT_DISPOSE_SECONDS": 0.3}
    police = programs("police", **timing)
    case_id = register_case(config, class_code="E0406", joint=["police"])          # 暴力抗法 → police
    op_id = f"OP-{case_id}"
    wait_operation(db, op_id, lambda d: d["departments"]["police"]["state"] == "on_site", "police on site")

    police.send_signal(signal.SIGKILL)                                              # mid-operation
    police.wait(10)
    entries = journal(programs.history, "police")
    planned = {e["item"]["id"] for e in entries if e.get("type") == "planned"}
    sent = {e["message"]["distribution_id"] for e in entries if e.get("type") == "sent"}
    assert len(planned - sent) == 2, "the action and the disposition were still to come when it died"

    # while it is down, the lead sends an Update: it waits in the inbox
    assert rpc(coordination, "update_operation", op_id, {"by": {"unit_id": LEAD}, "note": "当事人已被控制"})["ok"]
    wait_until(lambda: queue_depth(config, "dept.police.inbox") == 1, what="the Update waiting in the inbox")

    programs("police", **timing)                                                    # restart: same journal
    doc = wait_operation(db, op_id, lambda d: d["departments"]["police"]["state"] == "disposed"
                         and d["departments"]["police"].get("acknowledged"), "the rest of the work", timeout=30)
    # applied once each: the Ack, the check-in, the Update's Ack, the action, the disposition
    assert Counter(replies_in(doc, "police")) == Counter([("Ack", None), ("Update", "checkin"), ("Ack", None),
                                                          ("Update", "action"), ("Update", "disposition")])
    entries = journal(programs.history, "police")
    sent_ids = [e["message"]["distribution_id"] for e in entries if e.get("type") == "sent"]
    assert len(sent_ids) == len(set(sent_ids)) == 5                                 # each reply sent once
    assert queue_depth(config, "coordination.department-replies.dlq") == 0
    assert queue_depth(config, "dept.police.inbox.dlq") == 0
    assert operation(db, op_id)["departments"]["police"]["renotified"] == {"acceptance": 0, "checkin": 0}
