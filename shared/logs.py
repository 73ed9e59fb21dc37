"""Structured JSON logs, one object a line, carrying the service and correlation id."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time


_context = None


def _local():
    global _context
    if _context is None:
        from eventlet.corolocal import local   # one value per green thread (per worker)
        _context = local()
    return _context


def set_correlation_id(value):
    _local().correlation_id = value


def current_correlation_id():
    return getattr(_local(), "correlation_id", None)


# Secrets that must never reach a log line: API keys (gateway ``dcg_<id>_<secret>``, Open311
# ``dcg311_…``), bearer tokens, and any key= / password= / secret= / token= value in a URL, a form
# or JSON. Each is replaced by ``***``; the parameter's name stays, for debugging.
_SECRETS = [
    (re.compile(r"\b(?:dcg_[0-9a-f]{6,}_|dcg311_)[A-Za-z0-9_\-]{6,}"), "dcg_***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}"), r"\1 ***"),
    (re.compile(r"(?i)((?<![A-Za-z0-9_])(?:api[_-]?key|apikey|key|password|passwd|pwd|secret|token|access_token)"
                r"(?:%3D|=))[^&\s\"'#;]+"), r"\1***"),
    (re.compile(r"(?i)(\"(?:api[_-]?key|password|secret|token)\"\s*:\s*\")[^\"]*"), r"\1***"),
    (re.compile(r"(?i)(://[^:/@\s]+:)[^@/\s]+@"), r"\1***@"),          # amqp://user:password@host
]


def scrub(text: str) -> str:
    """``text`` without keys, tokens and passwords (every log line goes through this)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key in ("correlation_id", "case_id", "queue", "reason", "event_type"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if "correlation_id" not in entry:
            correlation = current_correlation_id()
            if correlation:
                entry["correlation_id"] = correlation
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", service: str = "platform"):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kombu", "amqp", "pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


LOG_FILE_MODE = 0o640        # owner writes, the operators' group reads, nobody else


def open_log_file(path):
    """A process's log file, opened for appending with mode 0640 (also when it already existed)."""
    handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_FILE_MODE), "ab")
    os.chmod(path, LOG_FILE_MODE)
    return handle
