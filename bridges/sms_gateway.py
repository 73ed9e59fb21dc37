"""A local stand-in for the SMS provider (短信网关), started by ``make run``: it speaks the provider's
HTTP interface (bridges/sms_protocol.py), writes every accepted message to ``var/sms/<BizId>.json``
and produces a delivery receipt (回执) for it, which the sender pulls. Nothing leaves the machine.

    python -m bridges.sms_gateway [--port 8025] [--out var/sms]

It refuses what a real provider refuses: a request not signed with the access key (HTTP 401), a
number that is not a mobile (``isv.MOBILE_NUMBER_ILLEGAL``), an unknown signature or template.
A repeated ``OutId`` gets the first answer again (sent once). For trying failures by hand (and for
the tests), ``POST /_standin/faults`` with ``{"unavailable": 2}`` answers the next two sends with
HTTP 503, and ``{"undeliverable": ["13900000000"]}`` gives that number a FAILED receipt
(``MOBILE_NOT_ON_SERVICE``, 停机). Receipts and messages survive a restart (read back from --out).

Settings: SMS_ACCESS_KEY_ID / SMS_ACCESS_KEY_SECRET (the key it accepts; ``make run`` makes one in
var/secrets/sms-standin.json), SMS_SIGN_NAME, SMS_TEMPLATE_CODE (the signature and template it
knows), SMS_STANDIN_PORT, SMS_STANDIN_DIR.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from bridges import sms_protocol as protocol
from shared.refdata.common import MOBILE_NUMBER

log = logging.getLogger("sms-gateway")
LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent
SECRET_FILE = ROOT / "var" / "secrets" / "sms-standin.json"


def local_now() -> str:
    return datetime.now(LOCAL).isoformat(timespec="seconds")


def local_secret(path: Path = SECRET_FILE) -> dict:
    """``{SMS_ACCESS_KEY_ID, SMS_ACCESS_KEY_SECRET}`` for make run: kept in a 0600 file, made on
    first use (nothing secret is in the repository)."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {"SMS_ACCESS_KEY_ID": "dcg-local", "SMS_ACCESS_KEY_SECRET": secrets.token_urlsafe(24)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(values, handle)
    return values


class StandIn:
    """The provider's state: messages by OutId, receipts in order, injected faults."""

    def __init__(self, out: Path, keys: dict, signs: set, templates: set):
        self.out, self.keys, self.signs, self.templates = Path(out), keys, signs, templates
        self.out.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.by_out_id: dict[str, str] = {}
        self.receipts: list[dict] = []
        self.unavailable = 0
        self.undeliverable: set[str] = set()
        for file in self.out.glob("*.json"):
            record = json.loads(file.read_text(encoding="utf-8"))
            if record.get("OutId"):
                self.by_out_id[record["OutId"]] = record["BizId"]
        receipts = self.out / "receipts.jsonl"
        if receipts.is_file():
            self.receipts = [json.loads(line) for line in receipts.read_text(encoding="utf-8").splitlines()
                             if line.strip()]

    def send(self, request: dict) -> tuple[int, dict]:
        with self.lock:
            if self.unavailable > 0:
                self.unavailable -= 1
                return 503, {"Code": "isp.SYSTEM_ERROR", "Message": "系统繁忙 (service unavailable)"}
            out_id = str(request.get("OutId") or "")
            if out_id and out_id in self.by_out_id:
                return 200, self._ok(self.by_out_id[out_id])
            phone = str(request.get("PhoneNumbers") or "")
            if not MOBILE_NUMBER.match(phone):
                return 200, self._error("isv.MOBILE_NUMBER_ILLEGAL", phone)
            if request.get("SignName") not in self.signs:
                return 200, self._error("isv.SMS_SIGNATURE_ILLEGAL", request.get("SignName"))
            if request.get("TemplateCode") not in self.templates:
                return 200, self._error("isv.SMS_TEMPLATE_ILLEGAL", request.get("TemplateCode"))
            try:
                params = json.loads(request.get("TemplateParam") or "{}")
                content = str(params["content"])
            except (ValueError, KeyError, TypeError):
                return 200, self._error("isv.TEMPLATE_MISSING_PARAMETERS", "content")
            biz_id = f"{datetime.now(LOCAL):%Y%m%d}{uuid.uuid4().hex[:16]}"
            record = {"BizId": biz_id, "OutId": out_id, "PhoneNumbers": phone,
                      "SignName": request["SignName"], "TemplateCode": request["TemplateCode"],
                      "TemplateParam": params, "text": f"【{request['SignName']}】{content}",
                      "received_at": local_now()}
            self._write(self.out / f"{biz_id}.json", json.dumps(record, ensure_ascii=False, indent=1))
            if out_id:
                self.by_out_id[out_id] = biz_id
            failed = phone in self.undeliverable
            receipt = {"Seq": len(self.receipts) + 1, "BizId": biz_id, "OutId": out_id, "PhoneNumber": phone,
                       "Status": "FAILED" if failed else "DELIVERED",
                       "ErrCode": "MOBILE_NOT_ON_SERVICE" if failed else "DELIVERED", "ReportTime": local_now()}
            self.receipts.append(receipt)
            with open(self.out / "receipts.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(receipt, ensure_ascii=False) + "\n")
            log.info("短信 %s → %s: %s", biz_id, phone, record["text"])
            return 200, self._ok(biz_id)

    def receipts_after(self, after: int, limit: int) -> dict:
        with self.lock:
            chosen = [r for r in self.receipts if r["Seq"] > after][:limit]
        return {"Code": "OK", "Receipts": chosen, "Next": chosen[-1]["Seq"] if chosen else after}

    def faults(self, body: dict) -> dict:
        with self.lock:
            self.unavailable = int(body.get("unavailable", self.unavailable) or 0)
            self.undeliverable |= {str(phone) for phone in body.get("undeliverable") or []}
            return {"unavailable": self.unavailable, "undeliverable": sorted(self.undeliverable)}

    @staticmethod
    def _ok(biz_id):
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": uuid.uuid4().hex}

    @staticmethod
    def _error(code, value):
        return {"Code": code, "Message": f"{protocol.CODE_TEXT.get(code, code)}: {value!r}",
                "RequestId": uuid.uuid4().hex}

    @staticmethod
    def _write(path: Path, text: str):
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)


def handler_for(standin: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict):
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _signed(self, body: bytes) -> bool:
            problem = protocol.check_signature(self.headers, standin.keys, self.command,
                                               urlparse(self.path).path, body)
            if problem:
                self._answer(401, {"Code": problem, "Message": protocol.CODE_TEXT.get(problem, problem)})
            return problem is None

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlparse(self.path).path
            if path == "/_standin/faults":
                return self._answer(200, standin.faults(json.loads(body or b"{}")))
            if path != protocol.SEND_PATH:
                return self._answer(404, {"Code": "NotFound"})
            if not self._signed(body):
                return None
            try:
                request = json.loads(body)
            except ValueError:
                return self._answer(400, {"Code": "InvalidParameter", "Message": "body is not JSON"})
            return self._answer(*standin.send(request if isinstance(request, dict) else {}))

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/health":
                return self._answer(200, {"status": "up"})
            if url.path != protocol.RECEIPTS_PATH:
                return self._answer(404, {"Code": "NotFound"})
            if not self._signed(b""):
                return None
            query = parse_qs(url.query)
            try:
                after, limit = int(query.get("after", ["0"])[0]), int(query.get("limit", ["100"])[0])
            except ValueError:
                return self._answer(400, {"Code": "InvalidParameter", "Message": "after/limit: integers"})
            return self._answer(200, standin.receipts_after(after, max(1, min(limit, 1000))))

        def log_message(self, fmt, *args):
            log.debug("%s %s", self.address_string(), fmt % args)

    return Handler


def serve(port: int, out: Path, keys: dict, signs: set, templates: set,
          host: str = "127.0.0.1") -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), handler_for(StandIn(out, keys, signs, templates)))
    server.daemon_threads = True
    return server


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m bridges.sms_gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMS_STANDIN_PORT") or 8025))
    parser.add_argument("--out", default=os.environ.get("SMS_STANDIN_DIR") or "var/sms")
    args = parser.parse_args(argv)
    key_id, secret = os.environ.get("SMS_ACCESS_KEY_ID"), os.environ.get("SMS_ACCESS_KEY_SECRET")
    if not (key_id and secret):
        raise SystemExit("SMS_ACCESS_KEY_ID and SMS_ACCESS_KEY_SECRET are needed (make run sets them)")
    server = serve(args.port, Path(args.out), {key_id: secret},
                   {os.environ.get("SMS_SIGN_NAME") or "大城管"},
                   {os.environ.get("SMS_TEMPLATE_CODE") or "SMS_DCG_NOTICE"})
    print(f"短信网关替身 SMS gateway stand-in on http://127.0.0.1:{args.port} → {args.out}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
