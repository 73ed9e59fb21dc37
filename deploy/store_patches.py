"""Seven targeted fixes to the embedded store (mongoeco 4.11, pinned in requirements-store.txt),
applied by deploy/embedded_store.py before it serves. Production runs MongoDB, which needs
none of them. Checked by tests/integration/test_store_patches.py.

1. An insert of one document with a non-numeric ``_id`` does not read the whole collection.
   mongoeco's single-document insert asks its unique check to compare the new ``_id`` with
   EVERY stored one by logical BSON equality (``scan_payload_id``), decoding every document in
   Python — 19 % of the store's time under the chaos load, growing with each collection. That
   comparison matters only for numeric ids (1 == 1.0 == Int64(1)); for any other ``_id`` the
   storage-key lookup the check makes first is complete. So it is skipped unless the ``_id``
   holds a number.

2. A first-document search by a string ``_id`` (alone or with other conditions) reads the one
   document by its storage key, and never walks the collection.

Why: every ``shared.storage.update`` is optimistic — ``{"_id": id, "_version": v}`` — and so are
leases and guarded writes. mongoeco takes its storage-key fast path only for a filter that is
exactly ``{"_id": id}``; with a second condition it compiles a SQL search that walks every
document of the collection (measured: 4.6 ms by ``_id`` alone against 17 ms with ``_version``
at 5,000 documents, growing with the collection — a year of a district holds 50,000 cases).
And when no document has that ``_id`` — every upsert of a new document (scoring's facts, a
lease's first take), every ``find_one`` by ``_id`` that misses (a consumer's "have I seen this
case?") — mongoeco's fast path answers "none" and then runs the walk all the same.

What: ``SQLiteEngine._select_first_document_for_plan`` (the first-document search of find_one,
update_one, replace_one, find_one_and_update …) given an equality on ``_id`` with a STRING value
(no numeric logical equality to consider), alone or among the clauses of an ``$and``, fetches
that one document by its storage key and keeps it only if mongoeco's own matcher
(``QueryEngine.match_plan``) accepts the whole filter. A string ``_id`` is stored under exactly
one storage key, so the answer is the one the walk would give. Anything else goes to mongoeco
unchanged.

3. Forgetting a collection's cached facts no longer iterates a dict other threads write.
   ``_invalidate_collection_features_cache`` (run after every write) walked the engine-wide
   cache while the store's worker threads added entries to it; under concurrent requests a
   command failed with "dictionary changed size during iteration" (seen in make chaos-cluster).
   The patched one takes a snapshot of the keys first.

4. A find runs the plan its ``explain`` shows: an equality (or range) on a field with an index
   reads that index. mongoeco plans a find twice over: ``explain`` (and the planner API) asks
   ``_plan_find_semantics_sync``, which reads ``scalar_index_entries`` for an equality or a range
   on an indexed top-level field; the find itself (``_open_scan_documents_sync``) and the count
   compile with ``_compile_read_execution_plan`` only, which walks EVERY document of the
   collection with ``json_extract`` plus a per-document probe of the index — after asking, for
   each filter field, three more walks whether any document holds a decimal (forgotten after
   every write). Measured on 15,000 scoring log entries: 87 ms for a find of one case's 10
   entries, 331 ms after a write; the SQL of the index plan answers in 0.07 ms. So the
   scoring consumer fell behind as its log grew (issue 17). The patched compile gives a find or
   a count without a hint mongoeco's own planner's plan; that planner falls back to the
   unpatched compile for every shape it has no index plan for. A find by a string ``_id`` alone
   reads its one document by storage key (as patch 2 does for a first-document search).

5. Committed changes are handed to an unwatched change-stream hub at most once a second.
   After EVERY write mongoeco delivers the write's change from its SQLite change outbox to the
   collection's change-stream hub: it takes a lease (a SQLite commit), starts a heartbeat
   thread, reads the outbox, checkpoints each change (a commit per change), compacts the outbox
   and releases the lease (another commit) — on the store's event loop. Profiled on a quiet
   store under a stream of updates by ``_id``: 28 % of the store's time, against 10 % for the
   updates themselves. The platform opens no change stream. While a hub has no watcher and no
   journal (mongoeco's own ``should_publish_events()`` is false) the delivery runs at most once
   a second per collection; the changes of the skipped writes stay in the outbox (capped by
   mongoeco at 10,000) and go with the next delivery, in order. A hub with a watcher gets
   every write's delivery as before. Only the SQLite engine's (the memory engine, the test
   suite's store, delivers as mongoeco does).

6. Opening a store file no longer rebuilds every index's entries. At every start mongoeco deletes
   and rebuilds the scalar index entries of every indexed collection, decoding every stored
   document in Python before the store listens: on the bench's year (700,000 documents) the
   store had not opened its port after 3.5 minutes, and every restart of a district's store
   would pay it. The entries are written in the same SQLite transaction as their document, so
   a store file written by this mongoeco already holds them; the rebuild is needed only for an
   index made before mongoeco kept scalar entries (a single-field index without a
   ``scalar_physical_name``), and then runs as before.

7. "Does any document hold an array at this field?" is answered from the field's index, not by a
   walk. Before it plans a find, mongoeco asks that question of each filter field with a SQL
   search for ``json_type(…) = 'array'`` over the whole collection, and forgets the answer
   after every write to the collection. When no document holds one (the usual case) the
   search reads every document: on the bench's year (600,000 logged events) it was 91 % of the
   store's time and the year-loaded capacity fell to 0.74 cases/s. mongoeco keeps a
   ``multikey_entries`` row for every element of an array held at an indexed field, in the
   document's own transaction, and removes them when the value stops being an array; so for a
   field with a plain single-field index (ascending or descending, not partial, with its
   multikey entries table) the answer is whether that index has any multikey entry — one read
   of an indexed table. Other fields are asked as before. One difference: an EMPTY array has
   no element and so no entry; it is then taken as no array, which changes no answer of an
   equality or range on a scalar (an empty array matches neither).
"""
from __future__ import annotations

import threading
import time

PATCHED = "_dcg_by_id_first"


def _id_clause(plan):
    """The ``_id`` equality (string value) of a plan that is one, or of an ``$and`` plan; or None."""
    from mongoeco.core.query_plan import AndCondition, EqualsCondition

    def by_string_id(clause):
        return isinstance(clause, EqualsCondition) and clause.field == "_id" and isinstance(clause.value, str)
    if by_string_id(plan):
        return plan
    if not isinstance(plan, AndCondition):
        return None
    return next((clause for clause in plan.clauses if by_string_id(clause)), None)


def apply() -> bool:
    """Patch the engine once; True if all are patched (False: this mongoeco lacks a method)."""
    return (_replace("_validate_document_against_unique_indexes", _insert_id_scan)
            & _replace("_select_first_document_for_plan", _first_by_id)
            & _replace("_invalidate_collection_features_cache", _cache_invalidation)
            & _replace("_compile_read_execution_plan", _planned_read)
            & _replace("dispatch_committed_changes", _quiet_dispatch, owner=_adapter())
            & _replace("_backfill_scalar_indexes_sync", _backfill_when_needed)
            & _replace("_field_is_top_level_array_in_collection", _arrays_from_index))


def _replace(name: str, make, owner=None) -> bool:
    """Put ``make(original)`` in place of ``<owner>.<name>`` (``SQLiteEngine`` unless given), once."""
    if owner is None:
        from mongoeco.engines.sqlite import SQLiteEngine as owner
    original = getattr(owner, name, None)
    if original is None:
        return False
    if not getattr(original, PATCHED, False):
        replacement = make(original)
        setattr(replacement, PATCHED, True)
        setattr(owner, name, replacement)
    return True


def _adapter():
    from mongoeco.engines.adapter import EngineSpiAdapter
    return EngineSpiAdapter


def _insert_id_scan(original):
    from mongoeco.core.identity import id_contains_numeric_value

    def validate(self, db_name, coll_name, document, *, exclude_storage_key=None, skip_id_check=False,
                 scan_payload_id=False):
        if scan_payload_id and not id_contains_numeric_value(document.get("_id")):
            scan_payload_id = False              # the storage-key lookup is the whole answer
        return original(self, db_name, coll_name, document, exclude_storage_key=exclude_storage_key,
                        skip_id_check=skip_id_check, scan_payload_id=scan_payload_id)
    return validate


def _first_by_id(original):
    from mongoeco.core.filtering import QueryEngine
    from mongoeco.engines._sqlite_connection import sqlite_read_scope

    def select_first(self, db_name, coll_name, plan, *, hint=None, context=None):
        by_id = _id_clause(plan) if hint is None else None
        if by_id is None:
            return original(self, db_name, coll_name, plan, hint=hint, context=context)
        conn = self._require_connection(context)
        with self._bind_connection(conn), sqlite_read_scope(conn):
            row = conn.execute("SELECT storage_key, document FROM documents "
                               "WHERE db_name = ? AND coll_name = ? AND storage_key = ?",
                               (db_name, coll_name, self._storage_key(by_id.value))).fetchone()
        if row is None:
            return None
        document = self._deserialize_document(row[1])
        if not QueryEngine.match_plan(document, plan):
            return None
        return row[0], document
    return select_first


def _cache_invalidation(original):
    def invalidate(self, db_name=None, coll_name=None):
        cache = self._collection_features_cache
        if db_name is None or coll_name is None:
            cache.clear()
            return
        for key in list(cache):                  # a snapshot: other threads may add meanwhile
            if key[:2] == (db_name, coll_name):
                cache.pop(key, None)
    return invalidate


_PLANNING = threading.local()      # set while mongoeco's planner runs: its fallback is the original


def _planned_read(original):
    def compile_plan(self, db_name, coll_name, semantics, *, select_clause="document", hint=None):
        if (select_clause != "document" or hint is not None or semantics.hint is not None
                or getattr(_PLANNING, "on", False)):
            return original(self, db_name, coll_name, semantics, select_clause=select_clause, hint=hint)
        by_id = _id_clause(semantics.query_plan)
        if by_id is semantics.query_plan and semantics.sort is None and not semantics.skip \
                and semantics.collation is None and semantics.text_query is None:
            return _by_storage_key_plan(self, db_name, coll_name, semantics, by_id.value)
        _PLANNING.on = True
        try:
            return self._plan_find_semantics_sync(db_name, coll_name, semantics)
        finally:
            _PLANNING.on = False
    return compile_plan


def _by_storage_key_plan(engine, db_name, coll_name, semantics, document_id):
    """The read of the one document a string ``_id`` names, by its storage key (a find that
    misses ran mongoeco's walk for arrays at ``_id`` first)."""
    from mongoeco.engines.sqlite_planner import SQLiteReadExecutionPlan
    sql = "SELECT document FROM documents WHERE db_name = ? AND coll_name = ? AND storage_key = ?"
    if semantics.limit is not None:
        sql += f" LIMIT {int(semantics.limit)}"
    return SQLiteReadExecutionPlan(semantics=semantics, strategy="sql", execution_lineage=(), physical_plan=(),
                                   use_sql=True, sql=sql,
                                   params=(db_name, coll_name, engine._storage_key(document_id)))


QUIET_DISPATCH_SECONDS = 1.0       # an unwatched hub gets its changes at most this often (patch 5)


def _quiet_dispatch(original):
    from mongoeco.engines.sqlite import SQLiteEngine

    def dispatch(self, sink):
        watched = getattr(sink, "should_publish_events", None)
        if isinstance(self.engine, SQLiteEngine) and sink is not None and callable(watched) and not watched():
            now = time.monotonic()
            if now - self.__dict__.get("_dcg_dispatched_at", float("-inf")) < QUIET_DISPATCH_SECONDS:
                return None
            self._dcg_dispatched_at = now
        return original(self, sink)
    return dispatch


def _backfill_when_needed(original):
    def backfill(self, conn):
        older = conn.execute("SELECT 1 FROM indexes WHERE scalar_physical_name IS NULL "
                             "AND json_array_length(fields) = 1 LIMIT 1").fetchone()
        if older is None:
            return None
        return original(self, conn)
    return backfill


def _arrays_from_index(original):
    import json

    def is_array_field(self, db_name, coll_name, field):
        key = (db_name, coll_name, f"top_level_array:{field}")
        cache = self._collection_features_cache
        if key in cache:
            return cache[key]
        conn = self._require_connection()
        index = next((name for name, keys in conn.execute(
            "SELECT name, keys FROM indexes WHERE db_name = ? AND coll_name = ? AND partial_filter_json IS NULL "
            "AND multikey_physical_name IS NOT NULL", (db_name, coll_name)).fetchall()
            if json.loads(keys) in ([[field, 1]], [[field, -1]])), None)
        collection_id = self._lookup_collection_id(conn, db_name, coll_name) if index else None
        if collection_id is None:
            return original(self, db_name, coll_name, field)
        found = conn.execute("SELECT 1 FROM multikey_entries WHERE collection_id = ? AND index_name = ? LIMIT 1",
                             (collection_id, index)).fetchone() is not None
        cache[key] = found
        return found
    return is_array_field
