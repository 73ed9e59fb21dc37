"""bench/year_load.py's load: the year goes into a store whose indexes the services made while it
was empty, and the indexes hold the year (a find by an indexed field answers from them); the
year's migration markers replace the ones the empty start wrote."""
import json
import subprocess

from bench import year_load
from shared import storage
from tests.conftest import ROOT
from tests.store_support import TRACE_SQL, store_python

PREFIX = "yt_"

EMPTY_START = r'''
import sys
sys.path.insert(0, sys.argv[1])
from deploy import store_patches
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine
store_patches.apply()
client = MongoClient(SQLiteEngine(sys.argv[2]))
client["yt_dispatch"].cases.create_index("unit_id")          # as a service's start makes it
client["yt_dispatch"].migrations.insert_one({"_id": "case_days", "documents": -1})
client.close()
'''

READ_BACK = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
''' + TRACE_SQL + r'''from deploy import store_patches
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine
store_patches.apply()
db = MongoClient(SQLiteEngine(sys.argv[2]))["yt_dispatch"]
cases = list(db.cases.find({}, {"unit_id": 1}))
unit = cases[0]["unit_id"]
statements.clear()
by_unit = len(list(db.cases.find({"unit_id": unit})))
print(json.dumps({"cases": len(cases), "by_unit": by_unit,
                  "expected": sum(1 for case in cases if case["unit_id"] == unit),
                  "indexed": any("scalar_index_entries" in sql for sql in statements),
                  "marker": db.migrations.find_one({"_id": "case_days"})}, default=str))
'''


def test_the_year_loads_into_the_indexes_the_empty_start_made(tmp_path):
    built = year_load.build(40, tmp_path / "year.bson", PREFIX, templates=10)
    store = tmp_path / "store.sqlite3"
    store_python(EMPTY_START, store)
    done = subprocess.run([str(year_load.STORE_PYTHON), "-m", "bench.year_load", "--load", str(tmp_path / "year.bson"),
                           "--sqlite", str(store), "--overwrite", storage.MIGRATIONS], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["documents"] == sum(built["documents"].values())
    found = json.loads(store_python(READ_BACK, store))
    assert found["cases"] == built["documents"]["dispatch.cases"]
    assert found["by_unit"] == found["expected"] > 0 and found["indexed"]     # served by the index
    assert found["marker"]["documents"] != -1        # the year's marker replaced the empty start's
