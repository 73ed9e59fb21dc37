"""A department on its own broker, linked to the platform by two dynamic shovels (issue 17).

The department's broker is a real extra RabbitMQ node, ``shv-dept`` on :5741 (started here, by
deploy/rabbit_nodes.py, and stopped after this module); it also runs the shovels, since the
system broker has no shovel plugin (``dcgctl departments link --shovel-host``). The police
program runs against that broker only (DEPT_LINK=shovel); the real coordination service runs on
the platform (this test's vhost on :5672) and checks every reply's sender with the department's
own platform user, as for a directly connected department.
"""
import json
import uuid
from urllib.parse import quote

import pytest
import requests

from deploy.rabbit_nodes import Node
from shared import broker_users, department_links
from tests.helpers import drain, observer, wait_until
from tests.integration.coordination_support import (dept_states, open_joint, register_case, reply, start_coordination,
                                                    start_program, stop_programs, wait_operation)

NODE = Node("shv-dept", 5741)
GUEST = ("guest", "guest")


@pytest.fixture(scope="module")
def dept_node():
    """The department's own broker, outside any cluster; stopped after the module."""
    was_running = NODE.running()
    NODE.start()
    yield NODE
    if not was_running:
        NODE.stop()


@pytest.fixture
def dept_vhost(dept_node):
    """A fresh vhost on the department's broker (deleting it removes its shovels too)."""
    name = f"shv-{uuid.uuid4().hex[:8]}"
    base = dept_node.management_url
    requests.put(f"{base}/api/vhosts/{name}", auth=GUEST, timeout=10).raise_for_status()
    requests.put(f"{base}/api/permissions/{name}/guest", auth=GUEST, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    yield {"name": name, "url": dept_node.uri(vhost=quote(name, safe="")),
           "host": f"http://guest:guest@127.0.0.1:{dept_node.management_port}", "management": base}
    requests.delete(f"{base}/api/vhosts/{name}", auth=GUEST, timeout=30)


@pytest.fixture
def platform_users(config, vhost, tmp_path):
    """police and environment platform users, unique per test (users are broker-wide)."""
    prefix = f"s{uuid.uuid4().hex[:8]}.dept."
    secrets = tmp_path / "secrets"
    broker_users.apply(config, vhost=vhost, departments=["police", "environment"], prefix=prefix,
                       secrets_dir=secrets, environ={})
    yield {"prefix": prefix, "dir": secrets}
    broker_users.delete(config, departments=["police", "environment"], prefix=prefix, environ={})


def dcgctl(config, dept_vhost, platform_users, *args):
    return department_links.main([*args, "--shovel-host", dept_vhost["host"], "--shovel-vhost", dept_vhost["name"],
                                  "--secrets-dir", str(platform_users["dir"])], config=config)


def link_status(config, dept_vhost):
    host = department_links.shovel_host(config, dept_vhost["host"], dept_vhost["name"])
    return {row["department"]: row for row in department_links.status(config, host=host)}


def cut_platform_side(config, dept_vhost, vhost, username):
    """The link goes down: the department's platform user loses its rights and its connections
    (the shovels') are closed, until neither shovel runs (the management API lists a new
    connection only after a few seconds, so closing is repeated until the link shows down)."""
    base = config["RABBIT_MANAGEMENT_URL"]
    requests.delete(f"{base}/api/permissions/{quote(vhost, safe='')}/{quote(username, safe='')}",
                    auth=GUEST, timeout=10).raise_for_status()

    def down():
        for conn in requests.get(f"{base}/api/connections", auth=GUEST, timeout=10).json():
            if conn.get("user") == username:
                requests.delete(f"{base}/api/connections/{quote(conn['name'], safe='')}", auth=GUEST, timeout=10)
        shovels = link_status(config, dept_vhost)["police"]["shovels"].values()
        return all(shovel["state"] != "running" for shovel in shovels)
    wait_until(down, timeout=40, interval=1, what="both shovels down")


def police_log(doc):
    return [m for m in doc["messages"] if m["direction"] == "in" and m["department"] == "police"]


def test_the_link_goes_down_both_sides_queue_and_everything_arrives_once_in_order(
        config, vhost, db, container_factory, dept_vhost, platform_users, tmp_path, capsys):
    prefix = platform_users["prefix"]
    seen = observer(config, "departments.replies", "police.#", name="test.police-replies-as-shovelled")
    start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    history = tmp_path / "history"
    program = start_program("police", dept_vhost["url"], history, DEPT_LINK="shovel", DEPT_ACK_SECONDS="0",
                            DEPT_CHECKIN_SECONDS="3", DEPT_ACTION_SECONDS="1.5", DEPT_DISPOSE_SECONDS="1.5")
    try:
        assert dcgctl(config, dept_vhost, platform_users, "link", "police", "--uri", dept_vhost["url"]) == 0
        assert "ack-mode=on-confirm" in capsys.readouterr().out
        wait_until(lambda: link_status(config, dept_vhost).get("police", {}).get("state") == "up",
                   timeout=30, what="the link up")

        # operations opened while the link is up: the police accept them (the Ack crosses) …
        before = [f"OP-{register_case(config, class_code='E0302', joint=['police'])}" for _ in range(3)]
        for op_id in before:
            wait_operation(db, op_id, lambda d: d["departments"]["police"]["state"] != "requested",
                           "the police's acceptance over the link", timeout=30)
        # … then the link goes down, with their Updates still to come
        cut_platform_side(config, dept_vhost, vhost, f"{prefix}police")
        during = [f"OP-{register_case(config, class_code='E0302', joint=['police'])}" for _ in range(3)]

        def both_sides_queue():
            row = link_status(config, dept_vhost).get("police") or {}
            shovels = row.get("shovels") or {}
            waiting = {d: (shovels.get(d) or {}).get("backlog") or 0 for d in ("requests", "replies")}
            return row if row.get("state") == "down" and waiting["requests"] >= 3 and waiting["replies"] >= 3 else None
        down = wait_until(both_sides_queue, timeout=40, what="Requests queued at the platform and replies "
                                                           "queued at the police while the link is down")
        assert down["label"] == "中断"
        assert dcgctl(config, dept_vhost, platform_users, "status") == 1           # not every link is up
        assert "积压" in capsys.readouterr().out
        states = {op_id: db("coordination").operations.find_one({"_id": op_id})["departments"]["police"]["state"]
                  for op_id in before + during}                               # nothing crossed meanwhile
        assert [states[op_id] for op_id in during] == ["requested"] * 3
        assert all(states[op_id] != "disposed" for op_id in before)

        # the link comes back (the user's rights restored): everything arrives, once, in order
        broker_users.apply(config, vhost=vhost, departments=["police"], prefix=prefix,
                           secrets_dir=platform_users["dir"], environ={})
        docs = [wait_operation(db, op_id, lambda d: d["departments"]["police"]["state"] == "disposed"
                               and len(police_log(d)) >= 4, "the police's replies after the link came back",
                               timeout=60)
                for op_id in before + during]
        wait_until(lambda: link_status(config, dept_vhost)["police"]["state"] == "up", timeout=30,
                   what="the link up again")
    finally:
        stop_programs([program])

    # the link kept each department's order: replies reached the platform as the police sent
    # them (a copy re-sent after the outage, unconfirmed before it, may follow; it is applied once)
    shovelled: dict[str, list] = {}
    for body, _ in drain(config, seen):
        stages = shovelled.setdefault(body["incident_id"], [])
        stage = body["payload"].get("stage") or body["kind"]
        if stage not in stages:
            stages.append(stage)
    assert shovelled == {op_id: ["Ack", "checkin", "action", "disposition"] for op_id in before + during}
    for doc in docs:
        log = police_log(doc)
        ids = [m["distribution_id"] for m in log]
        assert len(ids) == len(set(ids)) == 4, ids                              # each reply applied once
        assert sorted(m["message"]["payload"].get("stage") or m["kind"] for m in log) == \
            ["Ack", "action", "checkin", "disposition"]
        police = doc["departments"]["police"]                                  # a usable chronology
        assert police["checkin_at"] <= police["action_at"] <= police["disposition_at"]
        assert not any(m.get("refused") for m in doc["messages"])
    journal = [json.loads(line) for line in (history / "police.jsonl").read_text().splitlines()]
    received = [e["message"]["incident_id"] for e in journal if e.get("type") == "received"]
    assert sorted(received) == sorted(before + during)                         # each Request once
    assert drain(config, "coordination.department-replies.dlq") == []
    assert link_status(config, dept_vhost)["police"]["shovels"]["replies"]["backlog"] == 0


def test_a_forged_reply_on_the_departments_broker_is_refused_and_the_link_keeps_moving(
        config, vhost, db, container_factory, dept_vhost, platform_users, tmp_path, capsys):
    """Someone on the police's broker writes, into its outbox, a reply in environment's name (with
    environment's routing key and a user_id of its choosing). The shovel publishes it as the
    police's platform user with the police's routing key, so the coordinator refuses it as an
    impersonation; the police's own replies behind it still arrive."""
    import pika
    prefix = platform_users["prefix"]
    start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    assert dcgctl(config, dept_vhost, platform_users, "link", "police", "--uri", dept_vhost["url"]) == 0
    op_id, requests_by_dept = open_joint(config, db)
    forged = reply(requests_by_dept["environment"], "Ack", {"status": "rejected", "reason": "伪造"}, sender="environment")

    connection = pika.BlockingConnection(pika.URLParameters(dept_vhost["url"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("dcg.outbox", durable=True)
        channel.exchange_declare("forger", "topic")
        channel.queue_bind("dcg.outbox", "forger", "#")
        channel.basic_publish("forger", "environment.ack", json.dumps(forged, ensure_ascii=False),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                                   user_id="guest", message_id=forged["distribution_id"]))
    finally:
        connection.close()

    dead = wait_until(lambda: drain(config, "coordination.department-replies.dlq") or None, timeout=30,
                      what="the forged reply dead-lettered")
    assert [body["distribution_id"] for body, _ in dead] == [forged["distribution_id"]]
    headers = dead[0][1]
    assert "冒用" in headers["x-dead-letter-reason"]
    # what the platform saw: the police's key and user, whatever the forger wrote on its broker
    assert (headers["x-origin-routing-key"], headers["x-origin-user-id"]) == ("police.reply", f"{prefix}police")

    # the police program, on its own broker, answers its own Request through the same link
    program = start_program("police", dept_vhost["url"], tmp_path / "history", DEPT_LINK="shovel")
    try:
        doc = wait_operation(db, op_id, lambda d: d["departments"]["police"]["state"] == "disposed",
                             "the police's genuine replies behind the forged one", timeout=30)
    finally:
        stop_programs([program])
    assert dept_states(doc)["environment"] == "requested"
    assert all(m["message"]["sender"] == "police" for m in police_log(doc))

    # unlink removes both shovels; status then lists no link
    assert dcgctl(config, dept_vhost, platform_users, "unlink", "police") == 0
    assert "police" not in link_status(config, dept_vhost)
    capsys.readouterr()


def test_the_departments_broker_stops_and_comes_back_and_the_link_resumes(
        config, vhost, db, container_factory, dept_vhost, platform_users, tmp_path):
    """The police's broker itself goes away (``rabbitmqctl stop_app``; here it also runs the
    shovels): Requests queue on the platform, the program keeps its replies in its journal; when
    the broker is back, the shovels (runtime parameters, kept by the broker) resume by themselves."""
    from shared.management import Management
    prefix = platform_users["prefix"]
    start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    program = start_program("police", dept_vhost["url"], tmp_path / "history", DEPT_LINK="shovel",
                            DEPT_ACK_SECONDS="0", DEPT_CHECKIN_SECONDS="3")
    platform = Management.from_config(config)
    try:
        assert dcgctl(config, dept_vhost, platform_users, "link", "police", "--uri", dept_vhost["url"]) == 0
        first = f"OP-{register_case(config, class_code='E0302', joint=['police'])}"
        wait_operation(db, first, lambda d: d["departments"]["police"]["state"] != "requested",
                       "the police's acceptance over the link", timeout=30)
        NODE.stop_app()
        try:
            later = f"OP-{register_case(config, class_code='E0302', joint=['police'])}"
            wait_until(lambda: (platform.queue("dept.police.inbox") or {}).get("messages", 0) >= 1, timeout=30,
                       what="the Request waiting in the platform inbox while the police's broker is down")
        finally:
            NODE.start_app()
        for op_id in (first, later):
            doc = wait_operation(db, op_id, lambda d: d["departments"]["police"]["state"] == "disposed"
                                 and len(police_log(d)) >= 4, "the police's replies once its broker is back",
                                 timeout=60)
            ids = [m["distribution_id"] for m in police_log(doc)]
            assert len(ids) == len(set(ids)) == 4
        assert link_status(config, dept_vhost)["police"]["state"] == "up"
    finally:
        stop_programs([program])
