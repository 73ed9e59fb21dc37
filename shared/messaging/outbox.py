"""Building outbox entries: what a service saves with its aggregate, for the relay to publish."""
from __future__ import annotations

from ..contracts.events import PRODUCERS, make_event
from ..storage import outbox_entry
from .topology import SERVICE_EXCHANGES


def event(event_type: str, payload: dict, correlation_id: str, event_id: str,
          causation_id: str | None = None) -> dict:
    """A lifecycle event, validated, addressed to its producer's exchange."""
    producer = PRODUCERS[event_type]
    body = make_event(event_type, payload, producer=producer, correlation_id=correlation_id,
                      causation_id=causation_id, event_id=event_id)
    return outbox_entry(SERVICE_EXCHANGES[producer], event_type, body)
