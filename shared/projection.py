"""Copies of another service's state that converge in any order (pure: no I/O).

Every event a service saves with its aggregate is stamped by ``shared.storage`` with the
aggregate's id and *position*: ``aggregate_version`` (the aggregate's ``_version`` after the
change that produced it) and ``aggregate_seq`` (its index among the events of that change).
The owner's positions are totally ordered, so a copy kept elsewhere can apply events by them
instead of by arrival ("last event wins" is what left copies stuck on "verified" when
``case_closed`` overtook ``case_verified``).

A projection is a set of fields. Each field remembers the position of the event that last set
it (in ``doc[BOOK]``, keyed by field). An event sets a field only when its position is later than
the field's: the value of every field is then the value from the *latest* event that sets it,
whatever the order, duplication or redelivery of the events — the same as in-order delivery.

Fields that the copy's own service writes (intake marking its case "reopened", say) are written
with ``local`` and take the position just after the latest event seen so far: only a newer event
of the owner overrides them, a delayed older one does not.

Usage, inside the update that applies an event::

    set_fields = projection.merge(doc, fields, event)       # {} when the event changes nothing
    storage.update(..., set_fields=set_fields, applied=event["event_id"])
"""
from __future__ import annotations

BOOK = "_positions"          # {field: [version, seq]} per projected field
LATEST = "_latest_position"  # the latest position seen from the owner
LOCAL_SEQ = 10 ** 9          # a local write sorts after every event of the same version
UNSTAMPED = (-1, -1)         # an event from before positions existed: only fills empty fields


def position(event: dict) -> tuple[int, int]:
    """The owner's position of an event envelope (``UNSTAMPED`` for an unstamped one)."""
    version = event.get("aggregate_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return UNSTAMPED
    seq = event.get("aggregate_seq")
    return (version, seq if isinstance(seq, int) and not isinstance(seq, bool) else 0)


def field_position(doc: dict | None, name: str) -> tuple[int, int] | None:
    entry = ((doc or {}).get(BOOK) or {}).get(name)
    return tuple(entry) if entry else None


def latest(doc: dict | None) -> tuple[int, int]:
    entry = (doc or {}).get(LATEST)
    return tuple(entry) if entry else UNSTAMPED


def is_newer(doc: dict | None, name: str, at: tuple[int, int]) -> bool:
    """Would an event at position ``at`` set field ``name`` of ``doc``?"""
    current = field_position(doc, name)
    return current is None or at > current


def _book(fields: dict, at: tuple[int, int], doc: dict | None) -> dict:
    out = {}
    for name, value in fields.items():
        if "." in name or name.startswith("$"):
            raise ValueError(f"a projected field is a top-level name: {name!r}")
        if is_newer(doc, name, at):
            out[name] = value
            out[f"{BOOK}.{name}"] = list(at)
    if at > latest(doc):
        out[LATEST] = list(at)
    return out


def merge(doc: dict | None, fields: dict, event: dict) -> dict:
    """The ``$set`` that applies ``fields`` (what ``event`` says) to the copy ``doc``: only the
    fields this event is the latest word on, with their new positions. Pure."""
    return _book(fields, position(event), doc)


def local(doc: dict | None, fields: dict) -> dict:
    """The ``$set`` for a write of the copy's own service: it holds until the owner says more."""
    version, _ = latest(doc)
    return _book(fields, (version, LOCAL_SEQ), doc)


def view(doc: dict | None) -> dict:
    """The projected fields without the bookkeeping (for answers and comparisons)."""
    return {key: value for key, value in (doc or {}).items() if key not in (BOOK, LATEST)}


def apply_in_memory(doc: dict, changes: dict) -> dict:
    """Apply a ``$set`` made by ``merge``/``local`` to a dict, as the store would (for tests and
    for rules that fold several events before one write)."""
    out = {key: (dict(value) if key == BOOK else value) for key, value in doc.items()}
    for key, value in changes.items():
        if key.startswith(f"{BOOK}."):
            out.setdefault(BOOK, {})[key[len(BOOK) + 1:]] = value
        else:
            out[key] = value
    return out
