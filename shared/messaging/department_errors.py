"""Telling a department that the platform parked its reply in a dead-letter queue.

When the consumer of a queue fed by ``departments.replies`` dead-letters a message (not JSON,
fails the contract, impersonates another department, or its handler kept failing), the
department that published it gets an ``Error`` in its inbox (routing key ``<dept>.error``):

- ``code``: ``invalid`` when the message itself is wrong (undecodable, fails validation), else
  ``dead_lettered`` (refused as an impersonation, or could not be processed);
- ``message``: the dead-letter reason, as the operator sees it in ``dcgctl dlq show``;
- ``refused_distribution_id``, ``in_reply_to`` and ``references``: the refused message's
  ``distribution_id`` (or its AMQP ``message_id`` when the body has none);
- ``incident_id``: the refused message's, or ``unknown`` when it named none.

The department is the one the broker vouched for: the first segment of the routing key it
published with (topic permissions let a department user publish only ``<its id>.*``), never
the ``sender`` the body claims, so an impersonator hears about it and the impersonated does not.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

from marshmallow import ValidationError

from ..contracts.departments import CONTRACT_VERSION, PLATFORM_SENDER, load_platform_message
from ..departments import department_ids
from . import topology

log = logging.getLogger(__name__)
INVALID_TYPES = ("validation", "decode_error")


def fed_by_departments(queue_name: str) -> bool:
    try:
        spec = topology.queue_spec(queue_name)
    except KeyError:
        return False
    return any(exchange == topology.DEPT_REPLIES for exchange, _ in spec.bindings)


def _identifier(value) -> str | None:
    from ..contracts.base import Identifier
    try:
        Identifier(value)
        return value
    except (ValidationError, TypeError):
        return None


def error_notice(message, routing_key: str | None, reason: str, error_type: str):
    """(routing key, Error body) for the department that published ``message``, or None when
    the queue's sender is no configured department."""
    department = (routing_key or "").split(".", 1)[0]
    if department not in department_ids():
        return None
    try:
        body = json.loads(message.body if isinstance(message.body, (str, bytes)) else "{}")
    except (ValueError, UnicodeDecodeError):
        body = {}
    body = body if isinstance(body, dict) else {}
    refused = _identifier(body.get("distribution_id")) or _identifier((message.properties or {}).get("message_id"))
    now = datetime.now(timezone.utc)
    error = {
        "schema_version": CONTRACT_VERSION,
        "distribution_id": f"dcg.dead-letter.{uuid.uuid4().hex}",
        "sender": PLATFORM_SENDER,
        "recipients": [department],
        "kind": "Error",
        "sent_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "incident_id": _identifier(body.get("incident_id")) or "unknown",
        "in_reply_to": refused,
        "references": [refused] if refused else [],
        "payload": {"code": "invalid" if error_type in INVALID_TYPES else "dead_lettered",
                    "message": str(reason)[:4000] or "dead-lettered",
                    "refused_distribution_id": refused},
    }
    load_platform_message(error)          # what we send keeps the contract
    return f"{department}.error", error
