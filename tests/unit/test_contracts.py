"""Contracts: validation with field-level errors, and tolerance of fields from newer producers."""
import pytest
from marshmallow import ValidationError

from shared.config import load_config
from shared.contracts.departments import load_department_message
from shared.contracts.events import load_event, make_event
from shared.messaging.consumer import decode_body
from tests.factories import case_registered


def test_an_event_from_a_newer_producer_with_extra_fields_is_accepted():
    event = case_registered()
    event["schema_version"] = 2
    event["added_in_v2"] = {"anything": True}
    event["payload"]["new_field"] = "ignored by v1 consumers"
    loaded = load_event(event)
    assert loaded["payload"]["case_id"] == event["payload"]["case_id"]
    assert "new_field" not in loaded["payload"]


def test_a_bad_payload_names_the_fields():
    event = case_registered()
    event["payload"]["location"] = {"lon": 999}
    with pytest.raises(ValidationError) as info:
        load_event(event)
    assert set(info.value.messages["payload"]["location"]) == {"lon", "lat"}


def test_unknown_event_type_is_refused():
    event = case_registered()
    event["type"] = "case_teleported"
    with pytest.raises(ValidationError) as info:
        load_event(event)
    assert "type" in info.value.messages


def test_make_event_refuses_an_invalid_payload():
    with pytest.raises(ValidationError):
        make_event("case_dispatched", {"case_id": "C1"}, producer="dispatch", correlation_id="C1")


def _reply(**overrides):
    message = {"schema_version": "1.0", "distribution_id": "police-1", "sender": "police",
               "recipients": ["dcg.coordination"], "kind": "Ack", "sent_at": "2026-11-23T08:00:00Z",
               "incident_id": "OP-C1", "in_reply_to": "OP-C1.police.request.1",
               "payload": {"status": "accepted"}}
    message.update(overrides)
    return message


def test_department_reject_needs_a_reason_and_replies_reference_the_original():
    assert load_department_message(_reply())["payload"]["status"] == "accepted"
    with pytest.raises(ValidationError) as info:
        load_department_message(_reply(payload={"status": "rejected", "reason": " "}))
    assert "reason" in info.value.messages["payload"]
    with pytest.raises(ValidationError) as info:
        load_department_message(_reply(in_reply_to=None))
    assert "in_reply_to" in info.value.messages


def test_department_message_with_future_minor_version_and_extra_fields_is_accepted():
    loaded = load_department_message(_reply(schema_version="1.3", priority="high"))
    assert loaded["kind"] == "Ack"
    with pytest.raises(ValidationError):
        load_department_message(_reply(schema_version="2.0"))


@pytest.mark.parametrize("raw", [b"[1, 2]", "\"text\"", b"{oops", b"\xff\xfe"])
def test_decode_body_refuses_anything_but_a_json_object(raw):
    with pytest.raises((ValidationError, UnicodeDecodeError)):
        decode_body(raw)


def test_config_takes_environment_overrides_with_yaml_types():
    config = load_config(environ={"GATEWAY_PORT": "9100", "AMQP_URI": "pyamqp://x@y/"})
    assert config["GATEWAY_PORT"] == 9100
    assert config["AMQP_URI"] == "pyamqp://x@y/"
    assert config["DB_PREFIX"] == "dcg_"
