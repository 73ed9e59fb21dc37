"""The operations CLI against the real broker and store: dead letters are shown with their
reason and origin, replayed to where they came from, purged one by one (or all, when asked by
name); topology diff finds drift."""
import json

import pytest

import requests
from nameko.rpc import rpc

from shared import ops, storage
from shared.cli import main
from shared.messaging.consumer import consume_reliably
from tests.conftest import MANAGEMENT, MGMT_AUTH
from tests.factories import case_registered
from tests.helpers import publish, queue_depth, wait_until

QUEUE = "dispatch.case-registered"
DLQ = f"{QUEUE}.dlq"


class Switchable:
    """Fails while the switch in the store says 'broken' (an outage); works afterwards."""
    name = "dispatch"
    db = storage.MongoDatabase()

    @consume_reliably(QUEUE)
    def handle(self, event):
        if self.db.switch.find_one({"_id": "broken"}):
            raise RuntimeError("下游系统故障 downstream outage")
        storage.create(self.db.done, {"_id": event["payload"]["case_id"]}, applied=event["event_id"])

    @rpc
    def noop(self):
        return None


def run(capsys, config, *argv):
    code = main(list(argv), config=config)
    return code, capsys.readouterr().out


def test_dead_letters_shown_replayed_and_purged(container_factory, config, db, capsys):
    db("dispatch").switch.insert_one({"_id": "broken"})
    container_factory(Switchable, config).start()
    first, second = case_registered(), case_registered()
    for event in (first, second):
        publish(config, "intake.events", "case_registered", event, message_id=event["event_id"])
    wait_until(lambda: queue_depth(config, DLQ) == 2, what="two dead letters")

    code, out = run(capsys, config, "dlq", "show", QUEUE, "--json")
    shown = json.loads(out)["letters"]
    assert code == 0 and len(shown) == 2
    assert {row["message_id"] for row in shown} == {first["event_id"], second["event_id"]}
    assert all("下游系统故障" in row["reason"] and row["origin_queue"] == QUEUE for row in shown)
    assert queue_depth(config, DLQ) == 2                      # show does not consume

    db("dispatch").switch.delete_many({})                     # the outage is over
    code, out = run(capsys, config, "dlq", "replay", DLQ, "--id", first["event_id"])
    assert code == 0 and "replayed 1" in out
    wait_until(lambda: db("dispatch").done.find_one({"_id": first["payload"]["case_id"]}), what="replayed one")
    assert queue_depth(config, DLQ) == 1
    assert db("dispatch").done.find_one({"_id": second["payload"]["case_id"]}) is None

    code, out = run(capsys, config, "dlq", "purge", DLQ, "--all")
    assert code == 0 and queue_depth(config, DLQ) == 0

    def listed():
        code, out = run(capsys, config, "dlq", "list", "--json")
        rows = {row["name"]: row for row in json.loads(out)}
        return rows if DLQ in rows and rows[DLQ]["messages"] == 0 else None
    rows = wait_until(listed, timeout=15, what="the management API to catch up")
    assert rows[DLQ]["owner"] == "dispatch"


def test_replay_all_sends_every_dead_letter_back(container_factory, config, db, capsys):
    db("dispatch").switch.insert_one({"_id": "broken"})
    container_factory(Switchable, config).start()
    events = [case_registered() for _ in range(3)]
    for event in events:
        publish(config, "intake.events", "case_registered", event)
    wait_until(lambda: queue_depth(config, DLQ) == 3, what="three dead letters")
    db("dispatch").switch.delete_many({})
    code, out = run(capsys, config, "dlq", "replay", QUEUE)
    assert "replayed 3" in out
    wait_until(lambda: db("dispatch").done.count_documents({}) == 3, what="all three handled")


def test_topology_diff_finds_a_missing_queue_and_apply_repairs_it(config, vhost, capsys):
    mgmt = ops.Management.from_config(config)
    assert ops.topology_diff(config, mgmt)["missing_queues"] == []
    requests.delete(f"{MANAGEMENT}/api/queues/{vhost}/scoring.lifecycle-events", auth=MGMT_AUTH,
                    timeout=10).raise_for_status()
    code, out = run(capsys, config, "topology", "diff", "--json")
    assert code == 1 and json.loads(out)["missing_queues"] == ["scoring.lifecycle-events"]
    run(capsys, config, "topology", "apply")
    code, out = run(capsys, config, "topology", "diff", "--json")
    assert code == 0 and json.loads(out)["missing_queues"] == []


def test_queues_are_grouped_by_owner(config, capsys):
    code, out = run(capsys, config, "queues", "--json")
    grouped = json.loads(out)
    assert QUEUE in [row["name"] for row in grouped["dispatch"]]
    assert "dept.police.inbox" in [row["name"] for row in grouped["dept.police"]]
    assert all(row["name"].startswith("platform.retry.") for row in grouped["platform"])


def test_timeline_lists_a_case_across_services_in_order(config, db, capsys):
    registered = case_registered()
    case_id = registered["payload"]["case_id"]
    events = db("scoring").events
    events.insert_one({"_id": "e2", "type": "case_dispatched", "producer": "dispatch",
                       "occurred_at": "2026-11-23T08:00:02Z", "correlation_id": case_id,
                       "payload": {"case_id": case_id, "unit_id": "street.tianshengjie"}})
    events.insert_one({"_id": "e1", "type": "case_registered", "producer": "intake",
                       "occurred_at": "2026-11-23T08:00:01Z", "correlation_id": case_id,
                       "payload": registered["payload"]})
    code, out = run(capsys, config, "timeline", case_id)
    lines = out.strip().splitlines()
    assert code == 0 and "case_registered" in lines[0] and "case_dispatched" in lines[1]
    assert run(capsys, config, "timeline", "C-none")[0] == 1


def test_store_backup_and_restore_round_trip(config, db, capsys, tmp_path):
    from datetime import datetime, timezone
    cases = db("dispatch").cases
    moment = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
    storage.create(cases, {"_id": "C-backup", "deadline": moment, "history": [{"at": moment, "n": 1}]})
    code, out = run(capsys, config, "store", "backup", str(tmp_path / "bk"))
    assert code == 0 and "backup:" in out
    cases.drop()
    assert cases.find_one({"_id": "C-backup"}) is None
    code, out = run(capsys, config, "store", "restore", str(tmp_path / "bk"))
    restored = cases.find_one({"_id": "C-backup"})
    assert restored["deadline"] == moment and restored["history"] == [{"at": moment, "n": 1}]
    assert restored["_version"] == 1


def park(container_factory, config, db, events, **publish_kwargs):
    """Dead-letter these case_registered events through a failing consumer (a real one)."""
    db("dispatch").switch.insert_one({"_id": "broken"})
    container_factory(Switchable, config).start()
    for event in events:
        publish(config, "intake.events", "case_registered", event,
                **({"message_id": event["event_id"]} if publish_kwargs.get("with_ids", True) else {}))
    wait_until(lambda: queue_depth(config, DLQ) == len(events), what=f"{len(events)} dead letters")


def test_purge_with_an_id_removes_only_that_letter(container_factory, config, db, capsys):
    events = [case_registered() for _ in range(3)]
    park(container_factory, config, db, events)
    code, out = run(capsys, config, "dlq", "purge", DLQ, "--id", events[1]["event_id"])
    assert code == 0 and "purged 1" in out
    assert queue_depth(config, DLQ) == 2
    left = json.loads(run(capsys, config, "dlq", "show", DLQ, "--json")[1])["letters"]
    assert {row["message_id"] for row in left} == {events[0]["event_id"], events[2]["event_id"]}
    # an id that is not there deletes nothing and says so
    code, out = run(capsys, config, "dlq", "purge", DLQ, "--id", "no-such-id")
    assert code == 1 and queue_depth(config, DLQ) == 2


def test_purge_without_an_id_refuses_and_keeps_every_letter(container_factory, config, db, capsys):
    park(container_factory, config, db, [case_registered(), case_registered()])
    with pytest.raises(SystemExit) as refused:
        run(capsys, config, "dlq", "purge", DLQ)
    assert "--id" in str(refused.value) and "nothing was deleted" in str(refused.value)
    assert queue_depth(config, DLQ) == 2


def test_a_letter_without_message_id_gets_one_and_is_replayed_on_its_own(container_factory, config, db, capsys):
    first, second = case_registered(), case_registered()
    park(container_factory, config, db, [first, second], with_ids=False)
    shown = json.loads(run(capsys, config, "dlq", "show", DLQ, "--json")[1])["letters"]
    ids = {row["body"]["event_id"]: row["message_id"] for row in shown}
    assert all(row["failed_at"].endswith("+08:00") for row in shown)          # local time for the operator
    assert all(ids.values()) and len(set(ids.values())) == 2
    assert json.loads(run(capsys, config, "dlq", "show", DLQ, "--json")[1])["letters"] == shown   # stable
    db("dispatch").switch.delete_many({})
    code, out = run(capsys, config, "dlq", "replay", DLQ, "--id", ids[first["event_id"]])
    assert code == 0 and "replayed 1" in out
    wait_until(lambda: db("dispatch").done.find_one({"_id": first["payload"]["case_id"]}), what="the one replayed")
    assert queue_depth(config, DLQ) == 1
    assert db("dispatch").done.find_one({"_id": second["payload"]["case_id"]}) is None


def test_dlq_list_and_show_agree(container_factory, config, db, capsys):
    events = [case_registered() for _ in range(25)]
    park(container_factory, config, db, events)
    listed = {row["name"]: row["messages"] for row in json.loads(run(capsys, config, "dlq", "list", "--json")[1])}
    shown = json.loads(run(capsys, config, "dlq", "show", DLQ, "--json")[1])
    assert listed[DLQ] == shown["total"] == 25 and len(shown["letters"]) == 20      # --limit 20
    code, out = run(capsys, config, "dlq", "show", DLQ)
    assert "25 dead letter(s), showing 20" in out
    assert queue_depth(config, DLQ) == 25


def test_times_are_local_with_offset(config, db, capsys):
    events = db("scoring").events
    events.insert_one({"_id": "e1", "type": "case_registered", "producer": "intake",
                       "occurred_at": "2026-11-23T20:00:01Z", "correlation_id": "C-local", "payload": {}})
    code, out = run(capsys, config, "timeline", "C-local")
    assert out.startswith("2026-11-24T04:00:01+08:00")


def test_health_shows_local_times(config, db, capsys):
    from datetime import datetime, timezone
    db("platform").heartbeats.insert_one({"_id": "dispatch@h:1:a", "service": "dispatch", "instance": "h:1:a",
                                          "state": "up", "at": datetime(2026, 11, 23, 20, 0, 1, tzinfo=timezone.utc)})
    state = json.loads(run(capsys, config, "health", "--json")[1])
    assert state["services"]["dispatch"]["last_seen"] == "2026-11-24T04:00:01+08:00"


def test_replay_all_visits_each_letter_once_even_when_it_fails_again_at_once(container_factory, config, capsys):
    """A letter that is still invalid comes straight back to the DLQ; replaying "all" sends each
    letter that was there once, instead of chasing it round."""
    container_factory(Switchable, config).start()
    bad = case_registered()
    del bad["payload"]["case_id"]
    publish(config, "intake.events", "case_registered", bad, message_id=bad["event_id"])
    wait_until(lambda: queue_depth(config, DLQ) == 1, what="the invalid event parked")
    code, out = run(capsys, config, "dlq", "replay", DLQ)
    assert code == 0 and "replayed 1 " in out
    wait_until(lambda: queue_depth(config, DLQ) == 1, what="it parked again")
    letters = json.loads(run(capsys, config, "dlq", "show", DLQ, "--json")[1])["letters"]
    assert [row["message_id"] for row in letters] == [bad["event_id"]]
