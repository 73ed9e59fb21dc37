"""The 12345 hotline bridge: takes tickets (工单) from the 12345 citizen hotline system and
publishes each as a report to intake — a plain pika program, no platform code at run time except
the reference data (to map a hotline category to a class code and an address to a point).

    python -m bridges.hotline --demo 3                 # publish three sample tickets
    python -m bridges.hotline --file tickets.jsonl     # one ticket (JSON object) per line
    cat tickets.jsonl | python -m bridges.hotline --file -

A 12345 ticket, as the hotline system exports it:

    {"ticket_no": "12345-20261123-0001", "received_at": "2026-11-23T09:12:00+08:00",
     "caller": {"name": "王女士", "phone": "13900000000"},
     "category": "市容环境/暴露垃圾",            # or "class_code": "E0101" when the operator coded it
     "content": "天生路18号门口垃圾堆积三天无人清运", "address": "天生路18号",
     "lon": 106.3904, "lat": 29.8338,           # optional: else the address is looked up
     "urgent": false}

It becomes an intake report on exchange ``intake.inbound``, routing key ``report.hotline``:
channel ``hotline``, ``external_id`` = the ticket number (so a ticket sent twice is one
report), persistent, mandatory, confirmed. A ticket that cannot be mapped (no class, no place)
is still published as it is: intake refuses it into ``intake.inbound-reports.dlq`` with the
reason, where an operator sees it — nothing is dropped on the way. Every ticket sent is
journalled in ``<HOTLINE_HISTORY_DIR>/hotline.jsonl`` (default var/bridges).

Settings: HOTLINE_AMQP_URL (else BRIDGE_AMQP_URL, else guest on localhost — development only),
HOTLINE_HISTORY_DIR.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from bridges.publisher import Publisher, amqp_url

ROUTING_KEY = "report.hotline"
log = logging.getLogger("hotline-bridge")

DEMO_TICKETS = [
    {"ticket_no": "12345-DEMO-0001", "caller": {"name": "王女士", "phone": "13900000001"},
     "category": "市容环境/暴露垃圾", "content": "天生路18号门口垃圾堆积三天无人清运，约五六袋",
     "address": "天生路18号", "lon": 106.3904, "lat": 29.8338},
    {"ticket_no": "12345-DEMO-0002", "caller": {"name": "李先生", "phone": "13900000002"},
     "category": "公用设施/上水井盖", "content": "碚峡路人行道上井盖缺失，很危险",
     "address": "碚峡路108号对面", "urgent": True},
    {"ticket_no": "12345-DEMO-0003", "caller": {"name": "赵女士", "phone": "13900000003"},
     "class_code": "E0306", "content": "工地半夜还在打桩，吵得睡不着",
     "address": "东阳路15号工地", "lon": 106.3940, "lat": 29.8265},
]


def _district():
    from shared.refdata import load_district     # pure: YAML + shapely, no broker, no eventlet
    return load_district()


def class_for(ticket: dict, district) -> str | None:
    if isinstance(ticket.get("class_code"), str) and ticket["class_code"]:
        return ticket["class_code"]
    category = str(ticket.get("category") or "")
    leaf = category.split("/")[-1].strip()
    best = None
    for cls in district.classes():
        if cls["name"] == leaf:
            return cls["code"]
        if cls["name"] in category and (best is None or len(cls["name"]) > len(best[1])):
            best = (cls["code"], cls["name"])
    return best[0] if best else None


def to_report(ticket: dict, district) -> dict:
    """A 12345 ticket → intake's report (channel hotline). Missing parts stay missing."""
    report = {
        "channel": "hotline",
        "external_id": ticket.get("ticket_no"),
        "description": str(ticket.get("content") or "")[:4000],
        "address": str(ticket.get("address") or "")[:300],
        "urgency": "urgent" if ticket.get("urgent") else "normal",
        "reporter": {"name": str((ticket.get("caller") or {}).get("name") or "")[:100],
                     "phone": str((ticket.get("caller") or {}).get("phone") or "")[:32]},
    }
    code = class_for(ticket, district)
    if code:
        report["class_code"] = code
    if ticket.get("lon") is not None and ticket.get("lat") is not None:
        report["location"] = {"lon": ticket["lon"], "lat": ticket["lat"]}
    else:
        found = district.geocode(report["address"] or report["description"])
        if found:
            report["location"] = {"lon": found["lon"], "lat": found["lat"]}
    if ticket.get("received_at"):
        report["reported_at"] = ticket["received_at"]
    return report


def journal(directory: Path, entry: dict):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "hotline.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def tickets_from(args) -> list:
    if args.demo:
        return [dict(t) for t in DEMO_TICKETS[:args.demo]]
    source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
    tickets = []
    with source:
        for number, line in enumerate(source, 1):
            line = line.strip()
            if not line:
                continue
            try:
                tickets.append(json.loads(line))
            except json.JSONDecodeError:
                tickets.append({"_raw": line, "_line": number})   # still forwarded (→ DLQ with reason)
    return tickets


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m bridges.hotline", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--demo", type=int, metavar="N", help="publish N sample tickets (1-3)")
    group.add_argument("--file", help="JSON-lines file of tickets, or - for stdin")
    args = parser.parse_args(argv)
    history = Path(os.environ.get("HOTLINE_HISTORY_DIR") or "var/bridges")
    district = _district()
    publisher = Publisher(amqp_url("HOTLINE_AMQP_URL"))
    sent = 0
    try:
        for ticket in tickets_from(args):
            report = to_report(ticket, district) if "_raw" not in ticket else {"channel": "hotline",
                                                                              "raw": ticket["_raw"]}
            publisher.publish(ROUTING_KEY, report, message_id=str(ticket.get("ticket_no") or ""))
            journal(history, {"sent_at": datetime.now(timezone.utc).isoformat(), "ticket": ticket,
                              "report": report})
            sent += 1
            log.info("ticket %s → intake (%s)", ticket.get("ticket_no"), report.get("class_code"))
    finally:
        publisher.close()
    print(f"已转发 {sent} 张 12345 工单 (published {sent} tickets to intake.inbound/{ROUTING_KEY})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
