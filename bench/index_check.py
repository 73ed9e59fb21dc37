"""Is every query the services make served by an index? (issue 19)

During ``make bench`` every process writes the shape of each store query it makes
(STORE_QUERY_LOG, shared/query_log.py). Here each shape is replayed with ``explain`` on the
store (the year-loaded one: the plan of an indexed query differs from a scan only when there
is data), and classified from the embedded store's SQLite plan:

- ``index``: the plan STARTS from an index's entries (``scalar_index_entries`` /
  ``multikey_entries``) or the documents by ``_id`` (``storage_key``; an equality on ``_id``
  takes mongoeco's storage-key fast path, which its ``explain`` does not show);
- ``scan``: the plan walks every document of the collection (``documents`` by db and
  collection only), even when it probes an index per document (mongoeco does that for
  array-valued, multikey, indexes such as intake's ``cases.report_ids``) — the query costs
  more as the data grows;
  The same when mongoeco does not translate the query to SQL at all (``pushdown.mode`` python:
  a sort on another field than an equality's, an Int64 range bound, …): it reads every
  document and filters in Python;
- ``whole``: an empty filter, a read of the whole (small) collection by design.

An empty collection's plan never starts from an index (there are no entries yet), whatever the
query: replay on a store whose collections hold documents (tests/integration/test_index_check.py
gives each empty one a probe document).

On real MongoDB the same replay reads ``queryPlanner.winningPlan`` (IXSCAN / COLLSCAN).

    python -m bench.index_check --mongo-uri mongodb://127.0.0.1:27017/ --log var/bench/.../queries
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bson import json_util


def shapes(folder: Path) -> list[dict]:
    """The distinct query shapes of every process's log (first example of each)."""
    from shared.query_log import shape
    seen, found = set(), []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            query = json_util.loads(line)
            key = json.dumps([query["db"], query["coll"], shape(query["filter"]), query["sort"]],
                             sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                found.append(query)
    return found


def _walk_plans(plan) -> list[str]:
    names = []
    if isinstance(plan, dict):
        if "stage" in plan:
            names.append(str(plan["stage"]))
        for value in plan.values():
            names += _walk_plans(value)
    elif isinstance(plan, list):
        for value in plan:
            names += _walk_plans(value)
    return names


def classify(explained: dict, query_filter: dict) -> str:
    if not query_filter:
        return "whole"
    if isinstance(query_filter.get("_id"), (str, int)) or (
            isinstance(query_filter.get("_id"), dict) and set(query_filter["_id"]) == {"$eq"}):
        return "index"       # by _id: the embedded store's storage-key fast path (explain does not show it)
    pushdown = (explained.get("details") or {}).get("pushdown") or {}
    if pushdown.get("mode") == "python":             # the embedded store filters (or sorts) in Python:
        return "scan"                                # every document of the collection is read
    details = (explained.get("details") or {}).get("engine_details")
    if details is not None:                          # the embedded store (mongoeco on SQLite)
        first = details[0] if details else ""        # what drives the plan
        if "scalar_index_entries" in first or "multikey_entries" in first or "storage_key=?" in first:
            return "index"
        return "scan"        # every document of the collection (a per-document index probe included)
    stages = _walk_plans(explained.get("queryPlanner") or explained)   # MongoDB
    if "COLLSCAN" in stages:
        return "scan"
    return "index" if any(stage in ("IXSCAN", "IDHACK", "EXPRESS_IXSCAN", "EXPRESS_CLUSTERED_IXSCAN")
                          for stage in stages) else "unknown"


def check(client, folder: Path) -> dict:
    rows = []
    for query in shapes(folder):
        command = {"find": query["coll"], "filter": query["filter"]}
        if query.get("sort"):
            command["sort"] = query["sort"]
        for attempt in range(3):      # the embedded store, busy with the running services, may refuse once
            try:
                explained = client[query["db"]].command("explain", command, verbosity="queryPlanner")
                verdict = classify(explained, query["filter"])
                plan = (explained.get("details") or {}).get("engine_details") or explained.get("queryPlanner")
                break
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                verdict, plan = "error", str(exc)[:200]
                time.sleep(0.2 * (attempt + 1))
        rows.append({"process": query["process"], "db": query["db"], "coll": query["coll"],
                     "command": query["command"], "filter": json.loads(json_util.dumps(query["filter"])),
                     "sort": query.get("sort"), "verdict": verdict, "plan": plan})
    counts = {verdict: sum(1 for row in rows if row["verdict"] == verdict)
              for verdict in ("index", "scan", "whole", "error", "unknown")}
    return {"shapes": len(rows), **counts, "unindexed": [row for row in rows if row["verdict"] in ("scan", "unknown")],
            "errors": [row for row in rows if row["verdict"] == "error"], "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo-uri", required=True)
    parser.add_argument("--log", required=True, help="the STORE_QUERY_LOG folder")
    args = parser.parse_args(argv)
    from shared.storage import mongo_client
    report = check(mongo_client(args.mongo_uri), Path(args.log))
    print(json.dumps({key: value for key, value in report.items() if key != "rows"}, ensure_ascii=False,
                     indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
