"""The store queries a process makes, one line per distinct shape (STORE_QUERY_LOG, set by
``make bench``): the database, collection, command, filter and sort of every find, count,
aggregate ($match), update, delete and findAndModify. bench/index_check.py replays each shape
with ``explain`` on the year-loaded store to show which ones are not served by an index."""
from __future__ import annotations

import os
import threading

from bson import json_util

_seen: set = set()
_lock = threading.Lock()


def shape(value):
    """The filter's shape: field names and operators, values replaced by their type name."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


def queries(event) -> list[dict]:
    """(filter, sort) of one command, per statement."""
    command, name = event.command, event.command_name
    if name in ("find", "count"):
        return [{"filter": command.get("filter") or command.get("query") or {}, "sort": command.get("sort")}]
    if name == "aggregate":
        stages = command.get("pipeline") or []
        match = stages[0].get("$match") if stages and "$match" in stages[0] else {}
        sort = next((stage["$sort"] for stage in stages if "$sort" in stage), None)
        return [{"filter": match or {}, "sort": sort}]
    if name in ("findAndModify", "findandmodify"):
        return [{"filter": command.get("query") or {}, "sort": command.get("sort")}]
    if name == "update":
        return [{"filter": statement.get("q") or {}, "sort": None} for statement in command.get("updates", [])]
    if name == "delete":
        return [{"filter": statement.get("q") or {}, "sort": None} for statement in command.get("deletes", [])]
    return []


def record(folder: str, process: str, event) -> None:
    try:
        collection = event.command.get(event.command_name)
        if not isinstance(collection, str):
            return
        for query in queries(event):
            key = json_util.dumps([event.database_name, collection, event.command_name,
                                   shape(query["filter"]), query["sort"]], sort_keys=True)
            with _lock:
                if key in _seen:
                    continue
                _seen.add(key)
                # canonical: an Int64 stays an Int64 when the check replays it (relaxed JSON makes
                # it an int, and the embedded store plans the two differently)
                line = json_util.dumps({"process": process, "db": event.database_name, "coll": collection,
                                        "command": event.command_name, "filter": query["filter"],
                                        "sort": query["sort"]}, json_options=json_util.CANONICAL_JSON_OPTIONS)
                with open(os.path.join(folder, f"{process}-{os.getpid()}.jsonl"), "a", encoding="utf-8") as sink:
                    sink.write(line + "\n")
    except Exception:  # noqa: BLE001 - a bench aid never breaks a store call
        return
