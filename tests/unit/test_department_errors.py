"""The dead-letter notice a department gets (shared.messaging.department_errors): a contract-valid
Error to the department that published, naming the refused message, with the reason the
departments guide quotes."""
import json
import re
from pathlib import Path

import pytest
from marshmallow import ValidationError

from shared.contracts.departments import load_department_message, load_platform_message
from shared.messaging.department_errors import error_notice, fed_by_departments

ROOT = Path(__file__).resolve().parents[2]


class Message:
    def __init__(self, body, message_id=None):
        self.body = json.dumps(body) if isinstance(body, dict) else body
        self.properties = {"message_id": message_id} if message_id else {}


def reply(**changes):
    body = {"schema_version": "1.1", "distribution_id": "police.ack.1", "sender": "police",
            "recipients": ["dcg.coordination"], "kind": "Ack", "sent_at": "2026-11-23T06:24:16Z",
            "incident_id": "OP-C20261123-1", "in_reply_to": "OP-C20261123-1.police.request.1",
            "payload": {"status": "accepted"}}
    body.update(changes)
    return body


def test_only_the_replies_queue_is_fed_by_departments():
    assert fed_by_departments("coordination.department-replies")
    assert not fed_by_departments("dispatch.case-registered") and not fed_by_departments("nope")


def test_a_wrong_major_version_gets_the_reason_the_guide_quotes():
    with pytest.raises(ValidationError) as refused:
        load_department_message(reply(schema_version="2.0"))
    reason = f"校验失败 (validation failed): {json.dumps(refused.value.messages, ensure_ascii=False)}"
    guide = (ROOT / "docs" / "integration" / "departments.md").read_text(encoding="utf-8")
    assert f"`{reason}`" in guide
    routing_key, error = error_notice(Message(reply(schema_version="2.0")), "police.ack", reason, "validation")
    load_platform_message(error)
    assert routing_key == "police.error" and error["recipients"] == ["police"]
    assert error["payload"] == {"code": "invalid", "message": reason, "refused_distribution_id": "police.ack.1"}
    assert error["in_reply_to"] == "police.ack.1" and error["references"] == ["police.ack.1"]
    assert error["incident_id"] == "OP-C20261123-1"


def test_the_notice_goes_to_the_routing_key_owner_and_survives_a_body_that_is_not_json():
    _, error = error_notice(Message(b"\xff not json", message_id="m-77"), "transport.update", "无法解码", "decode_error")
    load_platform_message(error)
    assert error["recipients"] == ["transport"] and error["incident_id"] == "unknown"
    assert error["payload"]["refused_distribution_id"] == "m-77" and error["payload"]["code"] == "invalid"
    forged = error_notice(Message(reply(sender="environment")), "police.ack", "发送方冒用", "permanent")[1]
    assert forged["recipients"] == ["police"] and forged["payload"]["code"] == "dead_lettered"
    assert error_notice(Message(reply()), "guest-stuff.ack", "x", "permanent") is None     # no such department
    assert re.fullmatch(r"dcg\.dead-letter\.[0-9a-f]{32}", error["distribution_id"])
