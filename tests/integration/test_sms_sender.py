"""The SMS sender (bridges/sms_sender.py) against the local stand-in gateway (bridges/sms_gateway.py),
both real processes, over real HTTP and the real broker: each notification reaches each recipient
once, with its receipt recorded; a 5xx is retried; a refusal is dead-lettered with the reason; and
the health check stops reporting notify.sms-outbox as unconsumed."""
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from shared import health
from shared.contracts.events import make_event
from shared.management import Management
from tests.conftest import ROOT, free_port, port_open
from services.dispatch.service import DispatchService
from tests.dispatch_support import dispatch_config, register, saturday_morning  # noqa: F401  (fixture)
from tests.helpers import drain, publish, wait_until

KEY = {"SMS_ACCESS_KEY_ID": "test-key", "SMS_ACCESS_KEY_SECRET": uuid.uuid4().hex}


class Sms:
    def __init__(self, config, out: Path, url: str, mongo):
        self.config, self.out, self.url = config, out, url
        self.ledger = mongo[f"{config['DB_PREFIX']}notify"]["sms"]

    def faults(self, **faults):
        requests.post(f"{self.url}/_standin/faults", json=faults, timeout=5).raise_for_status()

    def notify(self, recipients, event_id=None, case_id="C-SMS-1", message="【大城管】天生街道：案件已派遣给贵单位。"):
        body = make_event("owner_notified", {
            "case_id": case_id, "unit_id": "street.tianshengjie", "channel": "sms-outbox", "kind": "dispatch",
            "message": message, "recipients": recipients, "notified_at": datetime.now(timezone.utc)},
            producer="dispatch", correlation_id=case_id,
            event_id=event_id or f"{case_id}.notified.{uuid.uuid4().hex[:6]}")
        publish(self.config, "dispatch.events", "owner_notified", body, message_id=body["event_id"])
        return body["event_id"]

    def messages(self) -> list[dict]:
        return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(self.out.glob("*.json"))]

    def sent_to(self, phone) -> list[dict]:
        return [message for message in self.messages() if message["PhoneNumbers"] == phone]

    def dead_letters(self):
        return drain(self.config, "notify.sms-outbox.dlq")


def _start(argv, env, name, tmp_path):
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def sms(config, test_env, mongo, tmp_path):
    port, out = free_port(), tmp_path / "sms"
    env = {**os.environ, **test_env, **KEY, "PYTHONPATH": str(ROOT), "SMS_GATEWAY_URL": f"http://127.0.0.1:{port}",
           "SMS_RECEIPT_POLL_SECONDS": "0.2", "SMS_HTTP_TIMEOUT_SECONDS": "5"}
    gateway = _start(["bridges.sms_gateway", "--port", str(port), "--out", str(out)], env, "gateway", tmp_path)
    wait_until(lambda: port_open(port), timeout=20, what="the stand-in gateway")
    sender = _start(["bridges.sms_sender"], env, "sender", tmp_path)
    yield Sms(config, out, f"http://127.0.0.1:{port}", mongo)
    for proc in (sender, gateway):
        proc.terminate()
        proc.wait(10)


def test_each_recipient_gets_the_sms_once_and_its_receipt_is_recorded(sms):
    duty, chief = "13900026800", "13810050000"
    sms.faults(undeliverable=[chief])                        # the provider reports 停机 for this one
    people = [{"name": "冯伟远", "role": "值班员", "phone": duty}, {"name": "王天怡", "role": "城管办负责人", "phone": chief}]
    first = sms.notify(people)
    sms.notify(people, event_id=first)                       # redelivered / published twice
    marker = sms.notify([{"name": "袁欣国", "role": "主任", "phone": "13810030000"}], case_id="C-SMS-2")
    wait_until(lambda: sms.sent_to("13810030000"), what="the marker SMS (after the duplicate)")

    [message] = sms.sent_to(duty)
    assert len(sms.sent_to(chief)) == 1
    assert message["SignName"] == "大城管" and message["TemplateCode"] == "SMS_DCG_NOTICE"
    assert message["TemplateParam"] == {"case_id": "C-SMS-1", "kind": "dispatch", "content": "天生街道：案件已派遣给贵单位。"}
    assert message["text"] == "【大城管】天生街道：案件已派遣给贵单位。" and message["OutId"] == f"{first}:{duty}"

    def settled():
        docs = {doc["phone"]: doc for doc in sms.ledger.find({"message_id": first})}
        return docs if {doc.get("state") for doc in docs.values()} == {"delivered", "undelivered"} else None
    docs = wait_until(settled, what="both receipts recorded")
    assert docs[duty]["state"] == "delivered" and docs[duty]["receipt"]["BizId"] == message["BizId"]
    assert docs[chief]["state"] == "undelivered" and docs[chief]["receipt"]["ErrCode"] == "MOBILE_NOT_ON_SERVICE"
    assert docs[duty]["attempts"] == 1                       # the duplicate sent nothing
    assert marker and sms.dead_letters() == []


def test_a_5xx_is_retried_and_the_sms_goes_out_once(sms):
    sms.faults(unavailable=2)                                # two 503s, then the gateway takes it
    event_id = sms.notify([{"name": "冯伟远", "role": "值班员", "phone": "13900026800"}])
    wait_until(lambda: sms.sent_to("13900026800"), what="the SMS after two 503s")
    doc = wait_until(lambda: sms.ledger.find_one({"message_id": event_id, "state": "delivered"}),
                     what="its receipt")
    assert doc["attempts"] == 3 and len(sms.messages()) == 1
    assert sms.dead_letters() == []


def test_a_refusal_is_dead_lettered_with_the_reason_and_the_others_still_get_it(sms):
    event_id = sms.notify([{"name": "冯伟远", "role": "值班员", "phone": "023-68280002"},
                           {"name": "王天怡", "role": "城管办负责人", "phone": "13810050000"}])
    [(body, headers)] = wait_until(sms.dead_letters, what="the refused notification in notify.sms-outbox.dlq")
    assert body["event_id"] == event_id
    reason = headers["x-dead-letter-reason"]
    assert "isv.MOBILE_NUMBER_ILLEGAL" in reason and "023-68280002" in reason and "冯伟远" in reason
    assert headers["x-error-type"] == "permanent" and headers["x-origin-queue"] == "notify.sms-outbox"
    assert [m["PhoneNumbers"] for m in sms.messages()] == ["13810050000"]
    assert sms.ledger.find_one({"_id": f"{event_id}:023-68280002"})["state"] == "refused"


def test_a_gateway_down_for_good_is_dead_lettered_after_the_retries(sms):
    sms.faults(unavailable=100)
    sms.notify([{"name": "冯伟远", "role": "值班员", "phone": "13900026800"}])
    [(_, headers)] = wait_until(sms.dead_letters, what="the notification in the DLQ")
    assert "HTTP 503" in headers["x-dead-letter-reason"] and "after 3 attempts" in headers["x-dead-letter-reason"]
    assert headers["x-attempt"] == 2 and sms.messages() == []


def test_an_invalid_message_is_dead_lettered_with_the_field(sms):
    body = make_event("owner_notified", {"case_id": "C1", "unit_id": "street.tianshengjie", "channel": "sms-outbox",
                                         "message": "x", "notified_at": datetime.now(timezone.utc)},
                      producer="dispatch", correlation_id="C1", event_id="bad-1")
    del body["payload"]["unit_id"]
    publish(sms.config, "dispatch.events", "owner_notified", body, message_id="bad-1")
    [(_, headers)] = wait_until(sms.dead_letters, what="the invalid message in the DLQ")
    assert headers["x-error-type"] == "validation" and "unit_id" in headers["x-dead-letter-reason"]


def test_health_stops_reporting_the_outbox_as_unconsumed(sms):
    management = Management.from_config(sms.config)

    def consumed():
        row = next((q for q in management.queues() if q["name"] == "notify.sms-outbox"), None)
        return row if row and row.get("consumers", 0) >= 1 else None
    wait_until(consumed, timeout=30, interval=0.5, what="the sender consuming notify.sms-outbox")
    for n in range(3):
        sms.notify([{"name": "冯伟远", "role": "值班员", "phone": "13900026800"}], case_id=f"C-H{n}")
    wait_until(lambda: len(sms.messages()) == 3, what="three SMS")
    assert not [p for p in health.queue_problems(sms.config) if p["queue"] == "notify.sms-outbox"]


def test_a_dispatched_case_reaches_the_duty_officers_mobile(sms, container_factory, config, saturday_morning):
    """The whole path: dispatch routes a case to 天生街道 and its duty officer (值班员, whose desk
    phone is the landline 023-68280002) gets the SMS on the duty mobile from the reference data."""
    container_factory(DispatchService, dispatch_config(config)).start()
    case_id = register(config, "E0101")
    [message] = wait_until(lambda: sms.sent_to("13900026800"), what="the dispatch SMS on the duty mobile")
    assert message["TemplateParam"]["case_id"] == case_id and message["TemplateParam"]["kind"] == "dispatch"
    assert case_id in message["text"] and "天生街道" in message["text"]
    assert not sms.sent_to("023-68280002") and sms.dead_letters() == []
