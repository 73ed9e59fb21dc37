"""The SMS sender (短信发送): consumes ``notify.sms-outbox`` (dispatch's ``owner_notified``
events) and sends each recipient the text through the provider's HTTP gateway
(bridges/sms_protocol.py; ``make run`` starts a local stand-in). A plain pika process.

    python -m bridges.sms_sender            # runs until stopped
    python -m bridges.sms_sender --show 20  # the last 20 SMS with their state and receipt

Per message, one SMS per recipient, recorded in ``<DB_PREFIX>notify.sms`` under
``<event id>:<phone>`` (also the provider's ``OutId``): a redelivered message sends nobody twice.
States: sending → sent → delivered | undelivered (the receipt), or refused.

- a provider answer that may succeed later (HTTP 5xx or 429, timeouts, 流控) → the message goes to
  ``platform.retry.<ms>ms`` (RETRY_DELAYS_MS, backoff) and comes back; recipients already sent are
  skipped; after the last delay → ``notify.sms-outbox.dlq`` with the reason;
- a refusal (not a mobile number, unknown template or signature, a bad access key) or an invalid
  message → ``notify.sms-outbox.dlq`` at once, with the reason (the provider's code and text).
  Replaying it from the DLQ (``dcgctl dlq replay``) sends only to whom it did not reach.

Receipts (回执) are pulled from the gateway every SMS_RECEIPT_POLL_SECONDS and recorded on the
SMS; the cursor is kept in the store, so none is missed across restarts.

Settings (config/platform.yaml or environment): AMQP_URI, MONGO_URI, DB_PREFIX, RETRY_DELAYS_MS,
SMS_GATEWAY_URL, SMS_ACCESS_KEY_ID, SMS_ACCESS_KEY_SECRET, SMS_SIGN_NAME, SMS_TEMPLATE_CODE,
SMS_RECEIPT_POLL_SECONDS, SMS_HTTP_TIMEOUT_SECONDS.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from datetime import datetime, timezone

import pika
import requests
from marshmallow import ValidationError
from pymongo import MongoClient

from bridges import sms_protocol as protocol
from shared.config import database_name, load_config, retry_delays
from shared.contracts.events import load_event
from shared.messaging import failures, topology
from shared.messaging.connection import pika_parameters

QUEUE = "notify.sms-outbox"
DONE = ("sent", "delivered", "undelivered")
log = logging.getLogger("sms-sender")


class Transient(Exception):
    """The gateway may take it later: retry with backoff."""


class Refused(Exception):
    """The gateway will never take it: dead-letter with this reason."""


class Gateway:
    """The provider's HTTP interface, signed with the access key."""

    def __init__(self, config: dict):
        self.url = str(config["SMS_GATEWAY_URL"]).rstrip("/")
        self.key_id, self.secret = str(config.get("SMS_ACCESS_KEY_ID") or ""), str(config.get("SMS_ACCESS_KEY_SECRET") or "")
        if not (self.key_id and self.secret):
            raise SystemExit("短信网关未配置 (SMS_ACCESS_KEY_ID and SMS_ACCESS_KEY_SECRET are needed)")
        self.sign, self.template = str(config["SMS_SIGN_NAME"]), str(config["SMS_TEMPLATE_CODE"])
        self.timeout = float(config.get("SMS_HTTP_TIMEOUT_SECONDS") or 10)
        self.session = requests.Session()

    def _call(self, method: str, path: str, body: bytes = b"", query: str = "") -> dict:
        headers = protocol.signed_headers(self.key_id, self.secret, method, path, body)
        headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            answer = self.session.request(method, f"{self.url}{path}{query}", data=body or None,
                                          headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Transient(f"短信网关不可达 (gateway unreachable): {exc}") from exc
        try:
            reply = answer.json()
        except ValueError:
            reply = {"Code": f"HTTP {answer.status_code}", "Message": answer.text[:200]}
        code = reply.get("Code") or f"HTTP {answer.status_code}"
        text = f"HTTP {answer.status_code} {code}: {reply.get('Message') or protocol.CODE_TEXT.get(code, '')}"
        if answer.status_code >= 500 or answer.status_code == 429 or code in protocol.TRANSIENT_CODES:
            raise Transient(text)
        if answer.status_code >= 400 or code != "OK":
            raise Refused(text)
        return reply

    def send(self, phone: str, params: dict, out_id: str) -> str:
        body = json.dumps({"PhoneNumbers": phone, "SignName": self.sign, "TemplateCode": self.template,
                           "TemplateParam": json.dumps(params, ensure_ascii=False), "OutId": out_id},
                          ensure_ascii=False).encode("utf-8")
        return self._call("POST", protocol.SEND_PATH, body)["BizId"]

    def receipts(self, after: int) -> tuple[list, int]:
        reply = self._call("GET", protocol.RECEIPTS_PATH, query=f"?after={after}&limit=100")
        return reply.get("Receipts") or [], int(reply.get("Next", after))


class Ledger:
    """What was sent to whom, and the receipts (``<DB_PREFIX>notify``)."""

    def __init__(self, config: dict, client: MongoClient):
        database = client[database_name(config, "notify")]
        self.sms, self.cursors = database["sms"], database["cursors"]

    def done(self, out_id: str) -> bool:
        found = self.sms.find_one({"_id": out_id}, {"state": 1})
        return bool(found and found.get("state") in DONE)

    def claim(self, out_id: str, fields: dict):
        now = datetime.now(timezone.utc)
        self.sms.update_one({"_id": out_id}, {"$set": dict(fields, updated_at=now),
                                              "$setOnInsert": {"state": "sending", "created_at": now},
                                              "$inc": {"attempts": 1}}, upsert=True)

    def sent(self, out_id: str, biz_id: str):
        self.sms.update_one({"_id": out_id, "state": {"$nin": list(DONE)}},
                            {"$set": {"state": "sent", "biz_id": biz_id, "sent_at": datetime.now(timezone.utc),
                                      "error": None}})

    def failed(self, out_id: str, state: str, reason: str):
        self.sms.update_one({"_id": out_id, "state": {"$nin": list(DONE)}},
                            {"$set": {"state": state, "error": reason, "updated_at": datetime.now(timezone.utc)}})

    def receipt(self, receipt: dict):
        """A receipt settles the state whatever came first (it may overtake ``sent``)."""
        state = "delivered" if receipt.get("Status") == "DELIVERED" else "undelivered"
        self.sms.update_one({"_id": receipt.get("OutId")},
                            {"$set": {"state": state, "receipt": receipt, "biz_id": receipt.get("BizId")}},
                            upsert=False)

    def cursor(self) -> int:
        found = self.cursors.find_one({"_id": "receipts"})
        return int(found["after"]) if found else 0

    def save_cursor(self, after: int):
        self.cursors.update_one({"_id": "receipts"}, {"$set": {"after": after}}, upsert=True)


def content(message: str, sign: str) -> str:
    """The text without a leading 【signature】 (the provider adds the signature itself)."""
    prefix = f"【{sign}】"
    return message[len(prefix):] if message.startswith(prefix) else message


def deliver(body: bytes, gateway: Gateway, ledger: Ledger) -> int:
    """Send one notification to each recipient not yet reached; returns how many were sent now.
    Raises ValidationError (bad message), Transient (retry) or Refused (dead-letter)."""
    try:
        event = load_event(json.loads(body))
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError({"_body": [f"消息体不是合法 JSON (body is not JSON): {exc}"]}) from exc
    if event["type"] != "owner_notified":
        raise ValidationError({"type": [f"不是通知事件 (not owner_notified): {event['type']!r}"]})
    note = event["payload"]
    people = [person for person in note["recipients"] if isinstance(person, dict)]
    if not people:
        raise Refused(f"通知没有收件人 (no recipients) for {note['unit_id']}")
    params = {"case_id": note["case_id"], "kind": note["kind"], "content": content(note["message"], gateway.sign)}
    sent, refused = 0, []
    for person in people:
        phone = str(person.get("phone") or "")
        out_id = f"{event['event_id']}:{phone}"
        if ledger.done(out_id):
            continue
        ledger.claim(out_id, {"message_id": event["event_id"], "case_id": note["case_id"], "kind": note["kind"],
                              "unit_id": note["unit_id"], "phone": phone, "name": person.get("name"),
                              "text": f"【{gateway.sign}】{params['content']}"})
        try:
            biz_id = gateway.send(phone, params, out_id)
        except Refused as exc:
            ledger.failed(out_id, "refused", str(exc))
            refused.append(f"{person.get('name', '')} {phone}: {exc}")
            continue
        except Transient as exc:
            ledger.failed(out_id, "sending", str(exc))
            raise
        ledger.sent(out_id, biz_id)
        sent += 1
        log.info("短信已发送 %s → %s %s (BizId %s)", note["case_id"], person.get("name"), phone, biz_id)
    if refused:
        raise Refused("短信网关拒收 (refused by the SMS gateway): " + "; ".join(refused))
    return sent


class Sender:
    """The consumer loop: deliver, then ack; or retry / dead-letter (confirmed) and then ack."""

    def __init__(self, config: dict, gateway: Gateway, ledger: Ledger):
        self.config, self.gateway, self.ledger = config, gateway, ledger
        self.user = pika_parameters(str(config["AMQP_URI"]))[0].credentials.username
        self.delays = retry_delays(config)
        self.stopping = threading.Event()

    def on_message(self, channel, method, properties, body):
        headers = failures.origin_headers(properties.headers, QUEUE, method.exchange, method.routing_key,
                                          properties.user_id)
        try:
            deliver(body, self.gateway, self.ledger)
        except ValidationError as exc:
            self._park(channel, properties, body, headers, "校验失败 (validation failed): "
                       + json.dumps(exc.messages, ensure_ascii=False), "validation")
        except Refused as exc:
            self._park(channel, properties, body, headers, str(exc), "permanent")
        except Exception as exc:  # noqa: BLE001 - Transient, or the store or anything else failing
            error = str(exc) if isinstance(exc, Transient) else f"{type(exc).__name__}: {exc}"
            delay, headers = failures.next_retry(headers, self.delays, error)
            if delay is None:
                self._park(channel, properties, body, headers,
                           f"{error} (after {failures.attempts(headers) + 1} attempts)", "handler_error")
            else:
                log.warning("短信未发出 (%s); retry %d in %d ms", error, failures.attempts(headers), delay)
                self._publish(channel, topology.retry_queue_name(delay), properties, body, headers)
        channel.basic_ack(method.delivery_tag)

    def _park(self, channel, properties, body, headers, reason, error_type):
        log.error("dead-lettered a message from %s: %s", QUEUE, reason)
        self._publish(channel, topology.DEAD_LETTER_EXCHANGE, properties, body,
                      failures.dead_letter_headers(headers, reason, error_type))

    def _publish(self, channel, exchange, properties, body, headers):
        """Confirmed and mandatory: the original is acked only after the copy is safe."""
        channel.basic_publish(exchange, QUEUE, body, pika.BasicProperties(
            content_type=properties.content_type or "application/json",
            content_encoding=properties.content_encoding, delivery_mode=2, headers=headers,
            message_id=properties.message_id, correlation_id=properties.correlation_id,
            user_id=self.user), mandatory=True)

    def poll_receipts(self):
        """Receipts into the ledger, in the gateway's order, until stopped."""
        every = float(self.config.get("SMS_RECEIPT_POLL_SECONDS") or 10)
        gateway = Gateway(self.config)          # its own HTTP session: this runs in another thread
        while not self.stopping.is_set():
            try:
                after = self.ledger.cursor()
                while True:
                    receipts, after_next = gateway.receipts(after)
                    for receipt in receipts:
                        self.ledger.receipt(receipt)
                    self.ledger.save_cursor(after_next)
                    if not receipts:
                        break
                    after = after_next
            except Exception as exc:  # noqa: BLE001 - next poll tries again
                log.warning("回执拉取失败 (receipts not fetched): %s", exc)
            self.stopping.wait(every)

    def run(self):
        threading.Thread(target=self.poll_receipts, name="receipts", daemon=True).start()
        backoff = 1
        failed = 0                  # on a cluster: after a loss, begin with the next node
        while not self.stopping.is_set():
            try:
                connection = pika.BlockingConnection(pika_parameters(str(self.config["AMQP_URI"]), failed))
                channel = connection.channel()
                channel.confirm_delivery()
                channel.basic_qos(prefetch_count=int(self.config.get("SMS_PREFETCH") or 10))
                channel.basic_consume(QUEUE, self.on_message)
                log.info("consuming %s → %s", QUEUE, self.gateway.url)
                backoff = 1
                try:
                    channel.start_consuming()
                finally:
                    if connection.is_open:
                        connection.close()
            except pika.exceptions.AMQPError as exc:
                if self.stopping.is_set():
                    break
                failed += 1
                log.warning("broker connection lost (%s); reconnecting in %d s", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30)


def show(ledger: Ledger, count: int):
    for doc in ledger.sms.find().sort("created_at", -1).limit(count):
        receipt = doc.get("receipt") or {}
        print(f"{doc['_id']:60} {doc.get('state', ''):11} {doc.get('name') or '':6} "
              f"{receipt.get('ReportTime', '')} {doc.get('error') or ''}")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m bridges.sms_sender", description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, metavar="N", help="print the last N SMS and exit")
    args = parser.parse_args(argv)
    config = load_config()
    client = MongoClient(config["MONGO_URI"], tz_aware=True, serverSelectionTimeoutMS=5000)
    ledger = Ledger(config, client)
    if args.show:
        show(ledger, args.show)
        return 0
    sender = Sender(config, Gateway(config), ledger)

    def stop(*_):
        sender.stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        sender.run()
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
