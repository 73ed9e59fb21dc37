"""The two shovels that link a department's own broker (shared/shovels.py): what they may do on
the platform is decided here, so it is pinned here; the integration test runs them for real."""
import pytest

from shared import shovels

PLATFORM = "pyamqp://dept.police:s3cret@10.0.0.1:5672/dcg"
DEPARTMENT = "amqp://platform:p%40ss@police.example:5711/%2F"


def test_both_shovels_confirm_before_they_ack_and_use_the_departments_platform_user():
    defs = shovels.definitions("police", platform_url=PLATFORM, department_url=DEPARTMENT)
    requests_, replies = defs["dcg-link.police.requests"], defs["dcg-link.police.replies"]
    assert requests_["ack-mode"] == replies["ack-mode"] == "on-confirm"
    # Requests: the department's own platform inbox → its broker's inbox
    assert requests_["src-uri"] == "amqp://dept.police:s3cret@10.0.0.1:5672/dcg"
    assert requests_["src-queue"] == "dept.police.inbox"
    assert (requests_["dest-uri"], requests_["dest-queue"]) == (DEPARTMENT, "dcg.inbox")
    # replies: its broker's outbox → departments.replies, as dept.police, with police's key only
    assert (replies["src-uri"], replies["src-queue"]) == (DEPARTMENT, "dcg.outbox")
    assert replies["dest-uri"] == "amqp://dept.police:s3cret@10.0.0.1:5672/dcg"
    assert replies["dest-exchange"] == "departments.replies"
    assert replies["dest-exchange-key"] == "police.reply"
    assert replies["dest-publish-properties"]["user_id"] == "dept.police"


def test_queue_names_on_the_departments_broker_can_be_chosen():
    defs = shovels.definitions("environment", platform_url=PLATFORM.replace("police", "environment"),
                               department_url=DEPARTMENT, inbox="in.q", outbox="out.q")
    assert defs["dcg-link.environment.requests"]["dest-queue"] == "in.q"
    assert defs["dcg-link.environment.replies"]["src-queue"] == "out.q"
    assert defs["dcg-link.environment.replies"]["dest-publish-properties"]["user_id"] == "dept.environment"


def test_a_platform_url_without_a_user_is_refused():
    with pytest.raises(ValueError):
        shovels.definitions("police", platform_url="amqp://10.0.0.1/dcg", department_url=DEPARTMENT)


def test_names_parse_back_and_others_shovels_are_ignored():
    assert shovels.parse_name(shovels.shovel_name("police", "replies")) == ("police", "replies")
    assert shovels.parse_name("someone-elses-shovel") is None
    assert shovels.parse_name("dcg-link.police.sideways") is None


def test_passwords_are_hidden_when_shown():
    assert shovels.redact(DEPARTMENT) == "amqp://platform:***@police.example:5711/%2F"
    assert shovels.redact("amqp://host/%2F") == "amqp://host/%2F"


def test_status_rows_say_up_down_or_unlinked_with_each_sides_backlog():
    params = [{"name": name, "value": value} for name, value in
              shovels.definitions("police", platform_url=PLATFORM, department_url=DEPARTMENT).items()]
    params.append({"name": "not-ours", "value": {}})
    live = [{"name": "dcg-link.police.requests", "state": "running"},
            {"name": "dcg-link.police.replies", "state": "terminated", "reason": "connection refused"}]
    rows = shovels.status_rows(params, live, {("police", "requests"): 3, ("police", "replies"): 7})
    assert [row["department"] for row in rows] == ["police"]
    row = rows[0]
    assert (row["state"], row["label"]) == ("down", "中断")
    assert row["shovels"]["requests"]["backlog"] == 3 and row["shovels"]["replies"]["backlog"] == 7
    assert row["shovels"]["replies"]["reason"] == "connection refused"
    assert "s3cret" not in str(rows) and "p%40ss" not in str(rows)
    live[1]["state"] = "running"
    assert shovels.status_rows(params, live, {})[0]["state"] == "up"
    assert shovels.link_state(["absent", "absent"]) == "unlinked"


def test_a_cluster_in_kombus_failover_form_becomes_the_shovels_list_of_uris():
    cluster = "pyamqp://dept.police:pw@n1:5701/dcg;pyamqp://dept.police:pw@n2:5702/dcg"
    defs = shovels.definitions("police", platform_url=cluster, department_url=DEPARTMENT)
    assert defs["dcg-link.police.replies"]["dest-uri"] == ["amqp://dept.police:pw@n1:5701/dcg",
                                                            "amqp://dept.police:pw@n2:5702/dcg"]
    assert defs["dcg-link.police.requests"]["src-uri"] == defs["dcg-link.police.replies"]["dest-uri"]
    assert defs["dcg-link.police.replies"]["dest-publish-properties"]["user_id"] == "dept.police"
    rows = shovels.status_rows([{"name": n, "value": v} for n, v in defs.items()], [], {})
    assert "pw@" not in str(rows)
    assert shovels.shown(defs["dcg-link.police.replies"]["dest-uri"]) == \
        "amqp://dept.police:***@n1:5701/dcg;amqp://dept.police:***@n2:5702/dcg"
