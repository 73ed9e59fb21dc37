"""Recompute every indicator from the event history.

    python -m services.scoring.recompute                      refold every fact from the event
                                                              log (repairs the live facts)
    python -m services.scoring.recompute --check              rebuild into facts_replay and
                                                              compare with the live facts and
                                                              indicators; exit 1 on a difference
    python -m services.scoring.recompute --period 2026-11 --period 2026-W48 --json

Runs against the platform's store (shared.config.load_config(): MONGO_URI, DB_PREFIX), while
the platform runs: the live path and the repair use the same guarded write, so nothing that
arrives meanwhile is lost. See docs/scoring.md ("Replay").
"""
from __future__ import annotations

import argparse
import json
import sys

from shared import storage
from shared.config import database_name, load_config
from shared.refdata import load_district
from shared.storage import mongo_client

from . import store
from .periods import PeriodError, month_of, parse_period
from .settings import load_settings


def _strip(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "as_of"}


def run(db, district, settings, periods, check: bool) -> dict:
    as_of = storage.now_utc()
    store.ensure_indexes(db)
    if check:
        stats = store.rebuild(db, district, target=store.REPLAY)
        different_facts = store.compare_facts(db, store.FACTS, store.REPLAY)
        results = []
        for period in periods:
            live = store.compute_report(db, period, settings, district, as_of, store.FACTS)
            replay = store.compute_report(db, period, settings, district, as_of, store.REPLAY)
            sections = sorted(key for key in live if _strip(live).get(key) != _strip(replay).get(key))
            results.append({"period": period.label, "equal": not sections, "different_sections": sections,
                            "district": {code: item["value"] for code, item in
                                         replay["district"]["indicators"].items()}})
        equal = not different_facts and all(item["equal"] for item in results)
        outcome = {"mode": "check", "equal": equal, "different_facts": different_facts[:50],
                   "different_fact_count": len(different_facts), "periods": results, **stats}
    else:
        stats = store.rebuild(db, district, target=store.FACTS)
        results = []
        for period in periods:
            report = store.compute_report(db, period, settings, district, as_of)
            results.append({"period": period.label, "district": {
                code: item["value"] for code, item in report["district"]["indicators"].items()}})
        outcome = {"mode": "repair", "periods": results, **stats}
    db[store.RUNS].insert_one({"at": as_of, **{k: v for k, v in outcome.items() if k != "periods"},
                               "periods": [item["period"] for item in results]})
    return outcome


def recompute(config: dict | None = None, periods: list[str] | None = None, check: bool = False) -> dict:
    """Recompute from the event log of the store in ``config`` (the benchmark calls this)."""
    config = config or load_config()
    district = load_district(config.get("REFDATA_DIR") or None)
    chosen = [parse_period(text, district.timezone) for text in periods or []] or [
        month_of(storage.now_utc(), district.timezone)]
    client = mongo_client(config["MONGO_URI"])
    try:
        return run(client[database_name(config, "scoring")], district, load_settings(config), chosen, check)
    finally:
        client.close()


def main(argv=None, config: dict | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.scoring.recompute",
                                     description="从事件历史重算全部指标 — recompute every indicator "
                                                 "from the event history")
    parser.add_argument("--check", action="store_true",
                        help="rebuild into facts_replay and compare with live (exit 1 if different)")
    parser.add_argument("--period", action="append", default=[],
                        help="periods to compute and compare (default: this month); repeatable")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        outcome = recompute(config, args.period, args.check)
    except PeriodError as exc:
        print(f"错误 (error): {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome, ensure_ascii=False, default=str))
    else:
        rate = outcome["events"] / outcome["seconds"] if outcome["seconds"] else 0
        print(f"重算完成 recompute ({outcome['mode']}): {outcome['events']} 个事件 → "
              f"{outcome['subjects']} 个对象, {outcome['seconds']} s ({rate:.0f} events/s)")
        if outcome["mode"] == "check":
            print("  回放与实时一致 replay equals live" if outcome["equal"] else
                  f"  不一致 DIFFERENT: {outcome['different_fact_count']} facts, "
                  f"{[p for p in outcome['periods'] if not p['equal']]}")
        else:
            print(f"  修正 {outcome['changed']} 个对象 (facts that differed from the live path)")
        for item in outcome["periods"]:
            rates = ", ".join(f"{code}={value}" for code, value in item["district"].items())
            print(f"  {item['period']}: {rates}")
    return 0 if outcome.get("equal", True) else 1


if __name__ == "__main__":
    sys.exit(main())
