"""Per-department RabbitMQ users on the real broker, in this test's vhost: applied by the
command (shared.broker_users), each user reads only its own inbox, publishes only its own
replies, declares and binds nothing, cannot set another user's user_id — and the coordinator
refuses a reply whose sender is not the user that published it."""
import json
import os
import stat
import uuid

import pika
import pytest

from shared import broker_users
from tests.helpers import drain, publish, wait_until
from tests.integration.coordination_support import (dept_states, open_joint, register_case, reply, start_coordination,
                                                    start_program, stop_programs, wait_operation)


@pytest.fixture
def dept_users(config, vhost, tmp_path):
    """police and environment users (a unique prefix: users are global to the broker)."""
    prefix = f"t{uuid.uuid4().hex[:8]}.dept."
    rows = broker_users.apply(config, vhost=vhost, departments=["police", "environment"], prefix=prefix,
                              secrets_dir=tmp_path, environ={})
    creds = {row["department"]: json.loads((tmp_path / f"{row['department']}.json").read_text()) for row in rows}
    yield {"prefix": prefix, "creds": creds, "rows": rows, "dir": tmp_path}
    broker_users.delete(config, departments=["police", "environment"], prefix=prefix, environ={})


def connect(creds):
    return pika.BlockingConnection(pika.URLParameters(creds["url"]))


def refused(action):
    """Run an AMQP action that the broker must refuse; returns the reply code."""
    with pytest.raises((pika.exceptions.ChannelClosedByBroker, pika.exceptions.ConnectionClosedByBroker)) as info:
        action()
    return info.value.reply_code


def publish_reply(channel, routing_key, body, user_id):
    channel.basic_publish("departments.replies", routing_key, json.dumps(body),
                          pika.BasicProperties(content_type="application/json", delivery_mode=2, user_id=user_id),
                          mandatory=True)


def test_users_are_applied_by_the_command_with_secrets_outside_the_repo(config, vhost, dept_users, capsys):
    police = dept_users["creds"]["police"]
    assert police["username"] == f"{dept_users['prefix']}police" and police["vhost"] == vhost
    assert stat.S_IMODE(os.stat(dept_users["dir"] / "police.json").st_mode) == 0o600
    assert broker_users.check(config, vhost=vhost, departments=["police", "environment"],
                              prefix=dept_users["prefix"], environ={}) == []
    # applying again keeps the same password (read back from the secret file) and changes nothing
    code = broker_users.main(["apply", "--vhost", vhost, "--department", "police", "--prefix", dept_users["prefix"],
                              "--secrets-dir", str(dept_users["dir"])], config=config)
    assert code == 0
    printed = capsys.readouterr().out
    assert "applied" in printed and police["password"] not in printed
    assert json.loads((dept_users["dir"] / "police.json").read_text())["password"] == police["password"]
    connect(police).close()                               # the password still works


def test_police_reads_only_its_own_inbox_and_publishes_only_as_police(config, vhost, dept_users):
    creds = dept_users["creds"]
    police_user = creds["police"]["username"]
    publish(config, "departments.requests", "police.request", {"hello": "police"})
    publish(config, "departments.requests", "environment.request", {"hello": "environment"})

    connection = connect(creds["police"])
    channel = connection.channel()
    method, _, body = channel.basic_get("dept.police.inbox", auto_ack=True)     # its own inbox: yes
    assert json.loads(body) == {"hello": "police"}
    channel.confirm_delivery()
    publish_reply(channel, "police.ack", {"ok": True}, police_user)              # its own replies: yes
    connection.close()

    def read_environment_inbox():
        with connect(creds["police"]) as conn:
            conn.channel().basic_get("dept.environment.inbox", auto_ack=True)
    assert refused(read_environment_inbox) == 403

    def publish_as_environment_by_routing_key():
        with connect(creds["police"]) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            publish_reply(ch, "environment.ack", {"sender": "environment"}, police_user)
    assert refused(publish_as_environment_by_routing_key) == 403

    def publish_as_environment_by_user_id():
        with connect(creds["police"]) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            publish_reply(ch, "police.ack", {"sender": "environment"}, creds["environment"]["username"])
    assert refused(publish_as_environment_by_user_id) == 406        # PRECONDITION_FAILED: user_id ≠ user

    def publish_into_the_requests_exchange():
        with connect(creds["police"]) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish("departments.requests", "environment.request", b"{}")
    assert refused(publish_into_the_requests_exchange) == 403

    def declare_a_queue():
        with connect(creds["police"]) as conn:
            conn.channel().queue_declare("police.sniffer", durable=True)
    assert refused(declare_a_queue) == 403

    def bind_the_inbox_to_more():
        with connect(creds["police"]) as conn:
            conn.channel().queue_bind("dept.police.inbox", "departments.requests", routing_key="#")
    assert refused(bind_the_inbox_to_more) == 403

    # the environment inbox still holds its message; the replies queue got only police's reply
    assert [body for body, _ in drain(config, "dept.environment.inbox")] == [{"hello": "environment"}]
    replies = drain(config, "coordination.department-replies")
    assert [body for body, _ in replies] == [{"ok": True}]


def test_the_coordinator_refuses_a_reply_from_an_impersonator(config, vhost, db, container_factory, dept_users,
                                                              tmp_path):
    prefix = dept_users["prefix"]
    start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    op_id, requests_by_dept = open_joint(config, db)
    environment_request = requests_by_dept["environment"]
    police_creds = dept_users["creds"]["police"]

    # police, with its own user, claims to be environment (the routing key it may use is police.*)
    forged = reply(environment_request, "Ack", {"status": "rejected", "reason": "伪造"}, sender="environment")
    with connect(police_creds) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        publish_reply(ch, "police.ack", forged, police_creds["username"])
    # a trusted-looking publisher without per-department credentials is refused too
    unsigned = reply(environment_request, "Ack", {"status": "accepted"}, sender="environment")
    publish(config, "departments.replies", "environment.ack", unsigned)        # guest, no user_id

    dead = []
    while len(dead) < 2:
        dead += wait_until(lambda: drain(config, "coordination.department-replies.dlq") or None, what="dead letters")
    reasons = {body["distribution_id"]: headers["x-dead-letter-reason"] for body, headers in dead}
    assert "冒用" in reasons[forged["distribution_id"]]
    assert "user_id" in reasons[unsigned["distribution_id"]]

    # the real environment program, with its own user, is accepted
    program = start_program("environment", dept_users["creds"]["environment"]["url"], tmp_path)
    try:
        doc = wait_operation(db, op_id, lambda d: d["departments"]["environment"]["state"] == "disposed",
                             "environment's genuine replies")
    finally:
        stop_programs([program])
    assert dept_states(doc)["police"] == "requested"
    assert all(m["message"]["sender"] == "environment" for m in doc["messages"]
               if m["direction"] == "in" and m["department"] == "environment")


def test_forged_origin_headers_do_not_make_a_reply_genuine(config, vhost, db, container_factory, dept_users):
    """Anyone who can publish to the replies queue through the default exchange (here with the
    platform's own credentials, but without the platform's user_id) may write x-origin-* headers
    claiming a department's routing key and user. They are believed only on a copy the platform
    itself republished (user_id = the platform's user); this one is refused as an impersonation."""
    prefix = dept_users["prefix"]
    start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    op_id, requests_by_dept = open_joint(config, db)
    environment_request = requests_by_dept["environment"]
    forged = reply(environment_request, "Ack", {"status": "rejected", "reason": "伪造的拒绝"}, sender="environment")
    publish(config, "", "coordination.department-replies", forged, message_id=forged["distribution_id"],
            headers={"x-origin-queue": "coordination.department-replies",
                     "x-origin-exchange": "departments.replies",
                     "x-origin-routing-key": "environment.ack",
                     "x-origin-user-id": f"{prefix}environment"})
    dead = wait_until(lambda: drain(config, "coordination.department-replies.dlq") or None, what="the dead letter")
    assert [body["distribution_id"] for body, _ in dead] == [forged["distribution_id"]]
    assert "冒用" in dead[0][1]["x-dead-letter-reason"]
    doc = db("coordination").operations.find_one({"_id": op_id})
    assert doc["departments"]["environment"]["state"] == "requested"


def test_a_reply_the_platform_replays_keeps_its_vouched_origin(config, vhost, db, container_factory, dept_users,
                                                               capsys):
    """The platform's own copy (dead-lettered while coordination was away, then replayed with
    dcgctl) still counts as the department's: its x-origin-* headers are trusted because the
    platform published it under its own user_id."""
    from shared import ops
    prefix = dept_users["prefix"]
    container = start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    op_id, requests_by_dept = open_joint(config, db)
    request = requests_by_dept["environment"]
    container.stop()
    genuine = reply(request, "Ack", {"status": "accepted"}, sender="environment")
    creds = dept_users["creds"]["environment"]
    with connect(creds) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        publish_reply(ch, "environment.ack", genuine, creds["username"])
    # park it as the platform does (the consumer's FailureRouter), then replay it
    from shared.messaging.consumer import FailureRouter
    from kombu import Connection
    router = FailureRouter.__new__(FailureRouter)
    router.publisher = ops.ConfirmedPublisher(config["AMQP_URI"])
    router.platform_user = "guest"
    router.container = type("C", (), {"service_name": "coordination"})()
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        raw = wait_until(lambda: channel.basic_get("coordination.department-replies"), what="the reply")
        message = channel.message_to_python(raw)
        router.dead_letter(message, "coordination.department-replies", "coordination was down", "handler_error")
        message.ack()
    router.publisher.close()
    assert ops.replay(config, "coordination.department-replies.dlq") == 1
    start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    doc = wait_operation(db, op_id, lambda d: d["departments"]["environment"]["state"] != "requested",
                         "the replayed reply applied")
    assert doc["departments"]["environment"]["state"] == "accepted"


def test_the_platform_runs_as_its_own_user_with_rights_on_its_vhost_only(config, vhost, tmp_path):
    """`make run` creates the platform's broker user (shared.broker_users platform): everything in
    its vhost, nothing elsewhere, never a department's reply; its password kept in a 0600 file."""
    from shared.management import Management
    user = f"t{uuid.uuid4().hex[:8]}.platform"
    secret = tmp_path / "platform-broker.json"
    row = broker_users.apply_platform(config, vhost=vhost, user=user, secret_file=secret, environ={})
    try:
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
        again = broker_users.apply_platform(config, vhost=vhost, user=user, secret_file=secret, environ={})
        assert again["password"] == row["password"]                       # kept, not rotated by accident
        url = row["amqp_uri"].replace("pyamqp://", "amqp://", 1)
        with pika.BlockingConnection(pika.URLParameters(url)) as conn:     # its own vhost: everything
            ch = conn.channel()
            ch.queue_declare("platform.selftest", auto_delete=True)
            ch.basic_publish("", "platform.selftest", b"{}")
        own = Management(config["RABBIT_MANAGEMENT_URL"], user, row["password"], vhost)
        assert "dispatch.case-registered" in [q["name"] for q in own.queues()]     # health can read them

        def other_vhost():
            pika.BlockingConnection(pika.URLParameters(url.rsplit("/", 1)[0] + "/%2F")).close()
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
            other_vhost()

        def answer_as_a_department():
            with pika.BlockingConnection(pika.URLParameters(url)) as conn:
                ch = conn.channel()
                ch.confirm_delivery()
                ch.basic_publish("departments.replies", "police.ack", b"{}",
                                 pika.BasicProperties(user_id=user), mandatory=True)
        assert refused(answer_as_a_department) == 403
    finally:
        Management.from_config(config).delete_user(user)


def test_a_department_hears_when_its_reply_is_dead_lettered(config, vhost, db, container_factory, dept_users):
    """An invalid reply and an impersonation are parked in the DLQ; the department that published
    each (the one the broker vouched for by routing key) gets an Error in its inbox naming the
    refused message and the reason. The impersonated department hears nothing."""
    from shared.contracts.departments import load_platform_message
    prefix = dept_users["prefix"]
    start_coordination(container_factory, config, DEPT_USER_PREFIX=prefix, DEPT_TRUSTED_USERS="")
    case_id = register_case(config, class_code="E0302", joint=["police", "environment"])
    op = wait_operation(db, f"OP-{case_id}", lambda d: True, "the operation")
    requests_by_dept = {m["department"]: m["message"] for m in op["messages"] if m["kind"] == "Request"}
    drain(config, "dept.police.inbox")
    drain(config, "dept.environment.inbox")
    creds = dept_users["creds"]["police"]
    invalid = reply(requests_by_dept["police"], "Ack", {"reason": "没有 status"}, sender="police")
    forged = reply(requests_by_dept["environment"], "Ack", {"status": "accepted"}, sender="environment")
    with connect(creds) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        publish_reply(ch, "police.ack", invalid, creds["username"])
        publish_reply(ch, "police.ack", forged, creds["username"])
    errors = []
    while len(errors) < 2:
        errors += wait_until(lambda: inbox_errors(config, "police") or None, what="police's Errors")
    by_ref = {error["payload"]["refused_distribution_id"]: error for error in errors}
    assert set(by_ref) == {invalid["distribution_id"], forged["distribution_id"]}
    for error in errors:
        load_platform_message(error)                         # keeps the contract
        assert error["recipients"] == ["police"] and error["sender"] == "dcg.coordination"
        assert error["in_reply_to"] == error["payload"]["refused_distribution_id"]
        assert error["incident_id"] == f"OP-{case_id}"
    assert by_ref[invalid["distribution_id"]]["payload"]["code"] == "invalid"
    assert "status" in by_ref[invalid["distribution_id"]]["payload"]["message"]
    assert by_ref[forged["distribution_id"]]["payload"]["code"] == "dead_lettered"
    assert "冒用" in by_ref[forged["distribution_id"]]["payload"]["message"]
    assert len(drain(config, "coordination.department-replies.dlq")) == 2     # nothing lost
    assert inbox_errors(config, "environment") == []


def inbox_errors(config, dept):
    return [body for body, _ in drain(config, f"dept.{dept}.inbox") if body.get("kind") == "Error"]
