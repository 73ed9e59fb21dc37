"""``make chaos``: faults during load, then a check that every report reached its correct
final state. Prints: sent, completed, lost (must be 0), applied twice (must be 0),
dead-lettered with reason.

Faults, one after another while reports keep coming:
  SIGKILL of each service in turn (restarted after a pause); a restart of the broker; the
  store's process killed and restarted; duplicated deliveries (events published again); a
  department program that disappears for a while.

The client behaves like a real channel: each report has an external_id, and a report whose
HTTP request failed (gateway down, broker restarting) is sent again until it is accepted —
the platform must turn those repeats into one report.

Runs on its own vhost, database prefix and embedded store (SQLite, so the store survives
being killed). It restarts the local RabbitMQ: do not run it beside other work on the broker.
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter

import requests

from bench.run import class_mix, random_point
from bench.stack import DEPARTMENTS, ROOT, Stack, port_open, wait_for

ONCE_PER_CASE = ("case_registered", "case_dispatched", "owner_notified")
SETTLED = ("disposed", "rejected", "cancelled")


class Load:
    """Sends reports at a steady rate from a background thread, retrying until accepted."""

    def __init__(self, stack, rate, total, seed=11):
        from shared.refdata import load_district
        self.stack, self.rate, self.total = stack, rate, total
        self.district = load_district()
        self.rng = random.Random(seed)
        self.mix = [(codes, w) for codes, w in class_mix(self.district)]
        self.accepted: dict[str, dict] = {}     # external_id → answer
        self.attempts = 0
        self.key = stack.operator_key()
        self.refused: list[str] = []
        self.last_error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def report(self):
        pool = self.rng.choices([codes for codes, _ in self.mix], weights=[w for _, w in self.mix])[0]
        return {"external_id": uuid.uuid4().hex[:20], "channel": "web", "class_code": self.rng.choice(pool),
                "location": random_point(self.district, self.rng), "description": "故障演练 chaos"}

    def send(self, report):
        while True:
            self.attempts += 1
            try:
                answer = requests.post(f"{self.stack.gateway}/api/reports", json=report, timeout=15,
                                       headers={"Authorization": f"Bearer {self.key}"})
                if answer.status_code in (201, 422):
                    self.accepted[report["external_id"]] = answer.json()
                    return
                self.last_error = f"{answer.status_code} {answer.text[:200]}"
            except requests.RequestException as exc:
                self.last_error = str(exc)[:200]
            if time.time() > getattr(self, "deadline", float("inf")):
                self.refused.append(report["external_id"])
                return
            time.sleep(0.5)

    def run(self):
        begin = time.time()
        self.deadline = begin + self.total / self.rate + 180     # give up on a report after that
        for number in range(self.total):
            delay = begin + number / self.rate - time.time()
            if delay > 0:
                time.sleep(delay)
            self.send(self.report())


def restart_broker():
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
    time.sleep(2)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
    wait_for(lambda: port_open(5672), "the broker", 60)


def duplicate_deliveries(stack, log):
    """Publish again events that were already delivered (as a broker redelivery would)."""
    from shared.messaging.publisher import ConfirmedPublisher
    events = list(stack.db("scoring")["events"].find({"type": "case_registered"}).limit(20))
    publisher = ConfirmedPublisher(stack.config["AMQP_URI"])
    try:
        for row in events:
            body = {"event_id": row["_id"], "type": row["type"], "schema_version": 1,
                    "occurred_at": str(row["occurred_at"]).replace(" ", "T"), "producer": row["producer"],
                    "correlation_id": row["correlation_id"], "payload": _jsonable(row["payload"])}
            publisher.publish("intake.events", "case_registered", body)
    finally:
        publisher.close()
    log(f"re-delivered {len(events)} case_registered events")
    return len(events)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def dead_letters(stack):
    from shared import ops
    mgmt = ops.Management.from_config(stack.config)
    found = []
    for row in ops.dead_letter_queues(stack.config, mgmt):
        if row["messages"]:
            for letter in ops.show_dead_letters(stack.config, row["name"], limit=50)["letters"]:
                found.append({"queue": row["name"], "reason": letter["reason"]})
    return found


def waiting_requests(stack):
    """Departments with no program in this stack: {department: (requests sent, messages in its inbox)}.
    Their Requests must sit in their inboxes, not vanish."""
    from shared import ops
    sent = Counter()
    for op in stack.db("coordination")["operations"].find({}, {"departments": 1}):
        for dept, state in (op.get("departments") or {}).items():
            if dept not in DEPARTMENTS:
                sent[dept] += len(state.get("request_ids") or [])
    depth = {row["name"]: row["messages"]
             for rows in ops.queues(ops.Management.from_config(stack.config)).values() for row in rows}
    return {dept: (count, depth.get(f"dept.{dept}.inbox", 0)) for dept, count in sorted(sent.items())}


def check(stack, load):
    """Every accepted report in its right final state; nothing applied twice."""
    reports = stack.db("intake")["reports"]
    dispatch_cases = stack.db("dispatch")["cases"]
    log_events = stack.db("scoring")["events"]
    completed, lost, twice = [], [], []
    for external_id in load.accepted:
        report = reports.find_one({"_id": load.accepted[external_id].get("report_id")})   # external_id is per key
        if report is None:
            lost.append(external_id)
            continue
        if report["status"] != "registered":
            completed.append(external_id)          # rejected with a reason is a final state
            continue
        case_id = report["case_id"]
        case = dispatch_cases.find_one({"_id": case_id})
        counts = Counter(row["type"] for row in log_events.find({"correlation_id": case_id})
                         if row["type"] != "owner_notified" or row["payload"].get("kind") == "dispatch")
        if case is None or any(counts[kind] == 0 for kind in ONCE_PER_CASE):
            lost.append(external_id)
            continue
        if any(counts[kind] > 1 for kind in ONCE_PER_CASE) or report["_version"] != 1 or \
                len(case.get("_applied", [])) != len(set(case.get("_applied", []))):
            twice.append(external_id)
            continue
        completed.append(external_id)
    operations = stack.db("coordination")["operations"]
    unsettled = []
    for op in operations.find({}):
        # a re-notification after a missed deadline is a new Request (its own distribution id);
        # the same Request sent twice would be a double effect
        sent = Counter(m["message"]["distribution_id"] for m in op.get("messages", []) if m["direction"] == "out"
                       and m["message"]["kind"] == "Request")
        if any(n > 1 for n in sent.values()):
            twice.append(op["_id"])
        # a joint operation is finished when every department it asked that runs a program here
        # has disposed (or refused); the others' Requests wait in their inboxes, as they should
        if any(state["state"] not in SETTLED for dept, state in op.get("departments", {}).items()
               if dept in DEPARTMENTS):
            unsettled.append(op["_id"])
    return completed, lost, twice, unsettled


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=150)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between faults")
    parser.add_argument("--skip", nargs="*", default=[], choices=["kills", "broker", "store", "duplicates", "department"],
                        help="faults to leave out")
    args = parser.parse_args(argv)
    began = time.time()

    def log(text):
        print(f"[{time.time() - began:6.1f}s] {text}", flush=True)

    # the relay's own fallback poll (30 s): saves must be published by the relay right after them
    with Stack("chaos", store="sqlite", env={"OUTBOX_POLL_SECONDS": "30"}) as stack:
        load = Load(stack, args.rate, args.reports)
        load.thread.start()
        faults = []
        for name in () if "kills" in args.skip else ("intake", "dispatch", "coordination", "scoring", "gateway"):
            time.sleep(args.pause)
            log(f"SIGKILL {name}")
            stack.kill(name, signal.SIGKILL)
            time.sleep(2)
            stack.start_service(name)
            faults.append(f"SIGKILL {name}")
        if "broker" not in args.skip:
            time.sleep(args.pause)
            log("restarting the broker")
            restart_broker()
            faults.append("broker restart")
        if "store" not in args.skip:
            time.sleep(args.pause)
            log("SIGKILL the store, then start it again")
            stack.kill("store", signal.SIGKILL)
            time.sleep(2)
            stack.start_store()
            faults.append("store killed and restarted")
        if "duplicates" not in args.skip:
            time.sleep(args.pause)
            duplicated = duplicate_deliveries(stack, log)
            faults.append(f"{duplicated} duplicated deliveries")
        gone = "department" not in args.skip
        if gone:
            time.sleep(args.pause)
            log("the police department program disappears")
            stack.kill("dept-police", signal.SIGKILL)
        load.thread.join()
        log(f"load finished: {len(load.accepted)} reports accepted after {load.attempts} attempts; "
            f"{len(load.refused)} never accepted (last error: {load.last_error})")
        if gone:
            time.sleep(5)
            log("the police department program comes back")
            stack.start_department("police")
            faults.append("a department program gone, then back")
        log("waiting for the platform to settle …")
        deadline = time.time() + 240
        while time.time() < deadline:
            completed, lost, twice, unsettled = check(stack, load)
            if not lost and not unsettled:
                break
            time.sleep(3)
        completed, lost, twice, unsettled = check(stack, load)
        operations = stack.db("coordination")["operations"].count_documents({})
        time.sleep(6)                                   # the management API's queue figures lag
        waiting = waiting_requests(stack)
        letters = dead_letters(stack)
        result = {"sent": len(load.accepted), "never_accepted": len(load.refused), "last_http_error": load.last_error,
                  "http_attempts": load.attempts, "completed": len(completed),
                  "lost": len(lost), "applied_twice": len(twice), "dead_lettered": len(letters),
                  "joint_operations": operations, "operations_unfinished": len(unsettled),
                  "requests_waiting_for_departments_without_program": {
                      dept: {"sent": sent, "in_inbox": held} for dept, (sent, held) in waiting.items()},
                  "dead_letter_reasons": Counter(l["reason"][:120] for l in letters), "faults": faults,
                  "lost_examples": lost[:5], "twice_examples": twice[:5], "unfinished_examples": unsettled[:5]}
    out = ROOT / "artifacts" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print()
    print(f"sent: {result['sent']}  completed: {result['completed']}  lost: {result['lost']}  "
          f"applied twice: {result['applied_twice']}  dead-lettered: {result['dead_lettered']}")
    print(f"joint operations: {operations}, every department finished in {operations - len(unsettled)}"
          f" (unfinished: {len(unsettled)})")
    for dept, (sent, held) in waiting.items():
        print(f"  {dept} runs no program here: {sent} Requests sent, {held} waiting in dept.{dept}.inbox")
    for reason, count in result["dead_letter_reasons"].items():
        print(f"  dead letter ×{count}: {reason}")
    print(f"faults: {', '.join(faults)}")
    return 0 if not lost and not twice and not unsettled else 1


if __name__ == "__main__":
    raise SystemExit(main())
