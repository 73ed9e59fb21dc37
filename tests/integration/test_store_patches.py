"""deploy/store_patches.py on the embedded store itself (the store's own Python, .venv-store):
an insert of one document with a string ``_id`` decodes no stored document and still refuses a
duplicate; an update by ``_id`` and a version — every optimistic save of shared.storage — finds
its document by storage key, compiles no SQL search over the collection, and still refuses a
stale version."""
from tests.store_support import TRACE_SQL, store_python

SCRIPT = r'''
import os, sys, tempfile
sys.path.insert(0, sys.argv[1])
from deploy import store_patches
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine

patched = store_patches.apply() if sys.argv[2] == "patched" else False
client = MongoClient(SQLiteEngine(os.path.join(tempfile.mkdtemp(), "store.sqlite3")))
cases = client.db.cases
cases.insert_many([{"_id": f"c{i}", "_version": 1, "state": "new"} for i in range(200)])
from pymongo.errors import DuplicateKeyError
loads = []
load_documents = SQLiteEngine._load_documents
SQLiteEngine._load_documents = lambda self, *a, **k: loads.append(1) or load_documents(self, *a, **k)
for i in range(200, 220):
    cases.insert_one({"_id": f"c{i}", "_version": 1, "state": "new"})
try:
    cases.insert_one({"_id": "c5", "_version": 1})
    duplicate = "accepted"
except DuplicateKeyError:
    duplicate = "refused"
cases.insert_one({"_id": 7, "_version": 1})
try:
    cases.insert_one({"_id": 7.0, "_version": 1})          # 7 == 7.0: the logical check still runs
    numeric = "accepted"
except DuplicateKeyError:
    numeric = "refused"
inserts_decoding = len(loads)
searches = []
compile_plan = SQLiteEngine._compile_read_execution_plan
SQLiteEngine._compile_read_execution_plan = lambda self, *a, **k: searches.append(1) or compile_plan(self, *a, **k)
saved = sum(cases.update_one({"_id": f"c{i}", "_version": 1},
                             {"$set": {"_version": 2, "state": "dispatched"}}).matched_count for i in range(50))
stale = cases.update_one({"_id": "c1", "_version": 1}, {"$set": {"state": "lost"}}).matched_count
absent = cases.update_one({"_id": "none", "_version": 1}, {"$set": {"state": "lost"}}).matched_count
other = cases.update_one({"state": "new", "_version": 1}, {"$set": {"state": "seen"}}).matched_count
print(patched, saved, stale, absent, other, cases.find_one({"_id": "c1"})["state"], len(searches),
      duplicate, numeric, inserts_decoding)
'''


def store_words(script, *args):
    """What ``script`` printed on the store's own Python, word by word."""
    return store_python(script, *args, timeout=120).split()


def run(mode):
    return store_words(SCRIPT, mode)


def test_an_insert_by_a_string_id_decodes_nothing_and_a_duplicate_is_still_refused():
    *_, duplicate, numeric, inserts_decoding = run("patched")
    assert (duplicate, numeric) == ("refused", "refused")
    assert inserts_decoding == "2"      # only the two numeric ids compared with every stored one


def test_an_update_by_id_and_version_reads_one_document_and_still_refuses_a_stale_version():
    patched, saved, stale, absent, other, state, searches, *_ = run("patched")
    assert patched == "True"
    assert (saved, stale, absent, other, state) == ("50", "0", "0", "1", "dispatched")
    assert int(searches) <= 2       # the update without _id (and at most the final read): not 50


def test_without_the_patch_every_such_update_searches_the_collection():
    """What the patches are for: mongoeco 4.11 compiles a search over the collection for each
    such update, and decodes every stored document for each single insert."""
    patched, saved, stale, absent, other, state, searches, duplicate, numeric, decoding = run("plain")
    assert (patched, saved, stale, absent, state) == ("False", "50", "0", "0", "dispatched")
    assert int(searches) >= 52 and int(decoding) >= 22 and (duplicate, numeric) == ("refused", "refused")


CACHE_SCRIPT = r'''
import sys, threading
sys.path.insert(0, sys.argv[1])
from deploy import store_patches
from mongoeco.engines.sqlite import SQLiteEngine
store_patches.apply()
engine = SQLiteEngine(":memory:")
cache = engine._collection_features_cache
for n in range(200):
    cache[("db", "cases", f"feature{n}")] = False
    cache[("db", "events", f"feature{n}")] = True
stop, errors = threading.Event(), []
def writer():                       # another worker thread adding facts meanwhile
    n = 0
    while not stop.is_set():
        key = ("db", "other", f"f{n % 1000}")
        if cache.pop(key, None) is None:
            cache[key] = False
        n += 1
thread = threading.Thread(target=writer)
thread.start()
try:
    for _ in range(300):
        engine._invalidate_collection_features_cache("db", "cases")
except RuntimeError as exc:
    errors.append(str(exc))
stop.set()
thread.join()
print(len(errors), sum(1 for key in cache if key[1] == "cases"), sum(1 for key in cache if key[1] == "events"))
'''


def test_forgetting_a_collections_cached_facts_is_safe_while_other_threads_add_some():
    assert store_words(CACHE_SCRIPT) == ["0", "0", "200"]      # no error; that collection's gone, the other's kept


FIND_SCRIPT = r'''
import os, sys, tempfile
sys.path.insert(0, sys.argv[1])
''' + TRACE_SQL + r'''from deploy import store_patches
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine

patched = store_patches.apply() if sys.argv[2] == "patched" else False
engine = SQLiteEngine(os.path.join(tempfile.mkdtemp(), "store.sqlite3"))
events = MongoClient(engine).db.events
events.create_index("subject_case")
events.insert_many([{"_id": f"e{i}", "subject_case": f"C{i % 30}", "n": i} for i in range(300)])
def reads(query, **options):
    statements.clear()
    found = sorted(doc["n"] for doc in events.find(query, **options))
    walks = sum(1 for sql in statements if "FROM documents WHERE" in " ".join(sql.split()) and "LIMIT 1" not in sql)
    indexed = sum(1 for sql in statements if "FROM scalar_index_entries" in sql)
    return found, walks, indexed
one = reads({"subject_case": "C7"})
counted = events.count_documents({"subject_case": "C7"})
sorted_read = reads({"subject_case": "C7"}, sort=[("n", -1)])
events.insert_one({"_id": "array", "subject_case": ["C7", "C8"], "n": 1000})   # an array: no scalar plan
with_array = reads({"subject_case": "C7"})
def walks(step):            # statements that read documents other than by one storage key
    statements.clear()
    result = step()
    return result, sum(1 for sql in statements if "FROM documents" in sql and "storage_key = " not in sql)
missed = walks(lambda: events.find_one({"_id": "none"}))
fresh = walks(lambda: events.replace_one({"_id": "fresh", "n": {"$lt": 1}}, {"_id": "fresh", "n": 1}, upsert=True).upserted_id)
guarded = walks(lambda: events.update_one({"_id": "e3", "n": {"$lt": 0}}, {"$set": {"n": -1}}).matched_count)
by_id = walks(lambda: [doc["n"] for doc in events.find({"_id": "e4"}, {"n": 1})])
print(patched, one[0] == list(range(7, 300, 30)), one[1], one[1 + 1], counted,
      sorted_read[0] == one[0], with_array[0] == one[0] + [1000],
      missed == (None, 0), fresh == ("fresh", 0), guarded == (0, 0), by_id == ([4], 0))
'''


def run_find(mode):
    return store_words(FIND_SCRIPT, mode)


def test_a_find_by_an_indexed_field_reads_the_index_and_finds_the_same_documents():
    patched, same, walks, indexed, counted, sorted_same, with_array, *_ = run_find("patched")
    assert patched == "True"
    assert (same, walks, indexed) == ("True", "0", "1")     # the ten documents, by the index, no walk
    assert counted == "10" and sorted_same == "True"
    assert with_array == "True"      # a document holding an array there: mongoeco's own walk, still right


def test_a_string_id_that_is_not_there_is_answered_by_its_storage_key_without_a_walk():
    """A find_one that misses, an upsert of a new document behind a guard, a guarded update that
    does not match, a find by _id: the right answer, and no statement reads the collection."""
    *_, missed, fresh, guarded, by_id = run_find("patched")
    assert (missed, fresh, guarded, by_id) == ("True", "True", "True", "True")
    *_, missed, fresh, guarded, by_id = run_find("plain")
    assert (missed, fresh, guarded, by_id) == ("False", "False", "False", "False")   # mongoeco alone walks


def test_without_the_patch_a_find_by_an_indexed_field_walks_the_collection():
    patched, same, walks, indexed, *_ = run_find("plain")
    assert (patched, same, walks, indexed) == ("False", "True", "1", "0")


WATCH_SCRIPT = r'''
import os, sys, tempfile
sys.path.insert(0, sys.argv[1])
from deploy import store_patches
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine

patched = store_patches.apply() if sys.argv[2] == "patched" else False
deliveries = []
deliver = SQLiteEngine.dispatch_committed_changes
SQLiteEngine.dispatch_committed_changes = lambda self, *a, **k: deliveries.append(1) or deliver(self, *a, **k)
cases = MongoClient(SQLiteEngine(os.path.join(tempfile.mkdtemp(), "store.sqlite3"))).db.cases
cases.insert_one({"_id": "a", "v": -1})
deliveries.clear()
for i in range(50):
    cases.update_one({"_id": "a"}, {"$set": {"v": i}})
unwatched = len(deliveries)
stream = cases.watch()
for i in range(5):
    cases.insert_one({"_id": f"w{i}"})
seen = [stream.next()["documentKey"]["_id"] for _ in range(5)]
stream.close()
print(patched, unwatched, ",".join(seen), cases.find_one({"_id": "a"})["v"])
'''


def run_watch(mode):
    return store_words(WATCH_SCRIPT, mode)


def test_an_unwatched_collection_skips_the_change_delivery_and_a_watched_one_sees_every_write():
    patched, unwatched, seen, value = run_watch("patched")
    assert patched == "True" and value == "49"
    assert int(unwatched) <= 1                       # not one delivery per write: at most one a second
    assert seen == "w0,w1,w2,w3,w4"                  # a change stream still gets every write, in order
    patched, unwatched, seen, value = run_watch("plain")
    assert (patched, unwatched, seen, value) == ("False", "50", "w0,w1,w2,w3,w4", "49")


REOPEN_SCRIPT = r'''
import os, sys, tempfile
sys.path.insert(0, sys.argv[1])
from deploy import store_patches
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine

path = os.path.join(tempfile.mkdtemp(), "store.sqlite3")
client = MongoClient(SQLiteEngine(path))
client.db.events.create_index("subject_case")
client.db.events.insert_many([{"_id": f"e{i}", "subject_case": f"C{i % 30}"} for i in range(300)])
client.close()
patched = store_patches.apply() if sys.argv[2] == "patched" else False
walks = []
load_documents = SQLiteEngine._load_documents
SQLiteEngine._load_documents = lambda self, *a, **k: walks.append(1) or load_documents(self, *a, **k)
events = MongoClient(SQLiteEngine(path)).db.events          # the store opened again
before = len(list(events.find({"subject_case": "C7"})))
events.insert_one({"_id": "new", "subject_case": "C7"})
print(patched, len(walks), before, len(list(events.find({"subject_case": "C7"}))))
'''


def test_opening_a_store_file_again_reads_no_document_and_its_indexes_still_answer():
    assert store_words(REOPEN_SCRIPT, "patched") == ["True", "0", "10", "11"]   # no rebuild; the index finds all
    assert store_words(REOPEN_SCRIPT, "plain")[:2] == ["False", "2"]           # mongoeco alone walks the collection


ARRAY_SCRIPT = r'''
import os, sys, tempfile
sys.path.insert(0, sys.argv[1])
''' + TRACE_SQL + r'''from deploy import store_patches
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine

asked = SQLiteEngine._field_is_top_level_array_in_collection
patched = store_patches.apply()
if sys.argv[2] == "without":                 # every other patch, this one taken out
    SQLiteEngine._field_is_top_level_array_in_collection, patched = asked, False
events = MongoClient(SQLiteEngine(os.path.join(tempfile.mkdtemp(), "store.sqlite3"))).db.events
events.create_index("subject_case")
events.insert_many([{"_id": f"e{i}", "subject_case": f"C{i % 30}", "n": i} for i in range(300)])
def reads():
    events.update_one({"_id": "e0"}, {"$inc": {"writes": 1}})       # a write: mongoeco forgets what it knew
    statements.clear()
    found = sorted(doc["n"] for doc in events.find({"subject_case": "C7"}))
    return found, sum(1 for sql in statements if "= 'array'" in sql and "FROM documents" in sql)
scalars = reads()
events.update_one({"_id": "e1"}, {"$set": {"subject_case": ["C7", "C8"]}})      # now an array there
array = reads()
events.update_one({"_id": "e1"}, {"$set": {"subject_case": "C1"}})              # and a scalar again
back = reads()
expected = list(range(7, 300, 30))
print(patched, scalars[0] == expected, scalars[1], array[0] == sorted(expected + [1]), back[0] == expected, back[1])
'''


def test_whether_a_field_holds_arrays_is_read_from_its_index_and_follows_the_writes():
    """After every write mongoeco asked, before a find by an indexed field, whether any document
    holds an array there, with a walk of the collection (91 % of the store's time on the year).
    Patched, the find walks for it no more, and its answers follow a value that becomes an array
    and a scalar again."""
    patched, same, walks, with_array, back, walks_after = store_words(ARRAY_SCRIPT, "patched")
    assert (patched, same, walks, with_array, back, walks_after) == ("True", "True", "0", "True", "True", "0")
    patched, same, walks, with_array, back, walks_after = store_words(ARRAY_SCRIPT, "without")
    assert (patched, same, with_array, back) == ("False", "True", "True", "True") and int(walks) == 1
