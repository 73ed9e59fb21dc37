"""The SMS gateway's HTTP interface, in the shape Chinese SMS providers use (阿里云短信 SendSms /
腾讯云 SendSms): one module for both ends, the sender (bridges/sms_sender.py) and the local
stand-in (bridges/sms_gateway.py).

Send — ``POST <SMS_GATEWAY_URL>/sms/send``, JSON::

    {"PhoneNumbers": "13900016800", "SignName": "大城管", "TemplateCode": "SMS_DCG_NOTICE",
     "TemplateParam": "{\"case_id\": \"C1\", \"kind\": \"dispatch\", \"content\": \"…\"}",
     "OutId": "<message id>:<phone>"}

answered (HTTP 200) ``{"Code": "OK", "Message": "OK", "BizId": "…", "RequestId": "…"}``, or a
provider error code (``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.SMS_TEMPLATE_ILLEGAL``,
``isv.BUSINESS_LIMIT_CONTROL`` …). ``OutId`` is the caller's own id: the provider echoes it in the
receipts, and the stand-in answers a repeated ``OutId`` with the first ``BizId`` (sent once).

Delivery receipts (回执) — pulled: ``GET <SMS_GATEWAY_URL>/sms/receipts?after=<cursor>&limit=100``
answers ``{"Code": "OK", "Receipts": [{"Seq", "BizId", "OutId", "PhoneNumber", "Status":
"DELIVERED"|"FAILED", "ErrCode", "ReportTime"}], "Next": <cursor>}``.

Every request is signed with the access key: headers ``X-Sms-AccessKeyId``, ``X-Sms-Timestamp``
(Unix seconds) and ``X-Sms-Signature`` = hex HMAC-SHA256(secret, method + "\\n" + path + "\\n" +
timestamp + "\\n" + body). A wrong key or signature is HTTP 401 (permanent: fix the config).
"""
from __future__ import annotations

import hashlib
import hmac
import time

SEND_PATH = "/sms/send"
RECEIPTS_PATH = "/sms/receipts"
MAX_SKEW_SECONDS = 300

#: provider codes that may succeed later (流控, 系统繁忙): retried with backoff
TRANSIENT_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isp.SYSTEM_BUSY", "Throttling"}

#: what a provider code means, for operators reading the dead-letter reason
CODE_TEXT = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号 (not a mobile number)",
    "isv.SMS_TEMPLATE_ILLEGAL": "短信模板不存在或未审核 (unknown template)",
    "isv.SMS_SIGNATURE_ILLEGAL": "短信签名不存在或未审核 (unknown signature)",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板缺少变量 (template parameters missing)",
    "isv.BUSINESS_LIMIT_CONTROL": "业务限流 (rate limited)",
    "InvalidAccessKeyId.NotFound": "AccessKeyId 不存在 (unknown access key)",
    "SignatureDoesNotMatch": "签名不匹配 (signature does not match)",
}


def signature(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n".encode("utf-8") + (body or b"")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes) -> dict:
    timestamp = str(int(time.time()))
    return {"X-Sms-AccessKeyId": key_id, "X-Sms-Timestamp": timestamp,
            "X-Sms-Signature": signature(secret, method, path, timestamp, body)}


def check_signature(headers, secrets: dict, method: str, path: str, body: bytes) -> str | None:
    """``None`` when the request is signed by a known key; else the provider's error code."""
    key_id = headers.get("X-Sms-AccessKeyId") or ""
    if key_id not in secrets:
        return "InvalidAccessKeyId.NotFound"
    timestamp = headers.get("X-Sms-Timestamp") or ""
    try:
        skewed = abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS
    except ValueError:
        skewed = True
    expected = signature(secrets[key_id], method, path, timestamp, body)
    if skewed or not hmac.compare_digest(expected, headers.get("X-Sms-Signature") or ""):
        return "SignatureDoesNotMatch"
    return None
