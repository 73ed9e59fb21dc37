"""The timer loop's round selection (shared.timer_entries.due_documents), pure."""
from datetime import datetime, timedelta, timezone

from shared.timer_entries import due_documents

NOW = datetime(2026, 11, 30, 8, 30, tzinfo=timezone.utc)


def row(doc_id, minutes, lease_minutes=None):
    return {"_id": doc_id, "_next_due": NOW + timedelta(minutes=minutes),
            "_timer_lease": None if lease_minutes is None else NOW + timedelta(minutes=lease_minutes)}


def test_the_due_documents_nobody_holds_earliest_first_and_the_next_one_to_come():
    rows = [row("later", 10), row("due-2", -1), row("due-1", -5), row("now", 0), row("soon", 3)]
    free, due_count, later = due_documents(rows, NOW, 100)
    assert free == ["due-1", "due-2", "now"]
    assert due_count == 3 and later == NOW + timedelta(minutes=3)


def test_a_document_held_by_another_instance_is_left_but_counted_an_expired_lease_is_free():
    rows = [row("held", -5, lease_minutes=1), row("expired", -4, lease_minutes=-1), row("free", -3)]
    free, due_count, later = due_documents(rows, NOW, 100)
    assert free == ["expired", "free"] and due_count == 3 and later is None


def test_at_most_a_batch_the_earliest_and_no_timer_is_nothing_due():
    rows = [row(f"d{n}", -n) for n in range(1, 6)] + [{"_id": "stale", "_next_due": None}]
    free, due_count, later = due_documents(rows, NOW, 2)
    assert free == ["d5", "d4"] and due_count == 5 and later is None
    assert due_documents([], NOW, 2) == ([], 0, None)
