"""``make chaos``: faults during a steady load, then a check that every report reached its correct
final state. Prints ``sent N, completed N, lost 0, applied twice 0, faults F``, the time to
recover after each fault and a summary per fault kind; the JSON report goes to artifacts/chaos/.

The faults (bench/chaos_faults.py), in rounds (5 by default, 10 faults each) while reports keep
coming (1,000 at least): SIGKILL of each service in turn (restarted after a pause); a restart of
the broker (stop_app, start_app); the store's process killed and restarted; duplicated deliveries
(events published again); a department program that disappears for a while.

The client behaves like a real channel: each report has an external_id, and a report whose
HTTP request failed (gateway down, broker restarting) is sent again until it is accepted —
the platform must turn those repeats into one report.

Runs on a private RabbitMQ node of its own (``chaos-one`` on :5731, started and stopped here by
deploy/rabbit_nodes.py, so the broker restart hits nobody else), its own vhost, database prefix
and embedded store (SQLite, so the store survives being killed). ``make chaos-cluster``
(bench/chaos_cluster.py) runs the same on a three-node cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter

import requests

from bench.run import class_mix, random_point
from bench.chaos_faults import schedule, single_cycle, summary
from bench.chaos_run import Injector
from bench.stack import DEPARTMENTS, MGMT_AUTH, ROOT, Stack
from deploy.rabbit_nodes import Node

SINGLE_NODE = ("chaos-one", 5731)      # the private broker of `make chaos`
ROUNDS, RATE = 5, 1.4                  # default: 5 rounds of 10 faults, reports at 1.4/s (≥ 1,000)
ONCE_PER_CASE = ("case_registered", "case_dispatched", "owner_notified")
SETTLED = ("disposed", "rejected", "cancelled")


class Load:
    """Sends reports at a steady rate from a background thread, each retried until accepted, until
    ``total`` are sent and ``stop`` is set (the load lasts as long as the faults do)."""

    def __init__(self, stack, rate, total, seed=11):
        from shared.refdata import load_district
        self.stack, self.rate, self.total = stack, rate, total
        self.district = load_district()
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.mix = [(codes, w) for codes, w in class_mix(self.district)]
        self.plain = self.mix[0][0]            # street-order events, not joint: what a probe sends
        self.accepted: dict[str, dict] = {}     # external_id → answer
        self.final: dict[str, str] = {}         # external_id → "done" / "refused", once seen
        self.attempts = 0
        self.key = stack.operator_key()
        self.refused: list[str] = []
        self.last_error = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def report(self, probe=False):
        with self.lock:
            pool = self.plain if probe else \
                self.rng.choices([codes for codes, _ in self.mix], weights=[w for _, w in self.mix])[0]
            return {"external_id": uuid.uuid4().hex[:20], "channel": "web", "class_code": self.rng.choice(pool),
                    "location": random_point(self.district, self.rng),
                    "description": "故障演练探测 chaos probe" if probe else "故障演练 chaos"}

    def send(self, report, deadline):
        """POST until accepted (201, or 422: refused with a reason); the answer, or None at ``deadline``."""
        while True:
            self.attempts += 1
            try:
                answer = requests.post(f"{self.stack.gateway}/api/reports", json=report, timeout=15,
                                       headers={"Authorization": f"Bearer {self.key}"})
                if answer.status_code in (201, 422):
                    self.accepted[report["external_id"]] = answer.json()
                    return answer.json()
                self.last_error = f"{answer.status_code} {answer.text[:200]}"
            except requests.RequestException as exc:
                self.last_error = str(exc)[:200]
            if time.time() > deadline:
                self.refused.append(report["external_id"])
                return None
            time.sleep(0.5)

    def run(self):
        begin = time.time()
        number = 0
        while number < self.total or not self.stop.is_set():
            delay = begin + number / self.rate - time.time()
            if delay > 0:
                time.sleep(delay)
            self.send(self.report(), time.time() + 300)     # give up on a report after that
            number += 1

    def state(self, report_id) -> str:
        try:
            return outcome(self.stack, report_id)
        except Exception:                       # the store away: not known yet
            return "pending"


def outcome(stack, report_id) -> str:
    """Where one accepted report stands: "done" (registered, dispatched, its owner notified, each
    once), "refused" (rejected with a reason: a final state), "pending", "missing" or "twice"."""
    report = stack.db("intake")["reports"].find_one({"_id": report_id})
    if report is None:
        return "missing"
    if report["status"] != "registered":
        return "refused"
    case_id = report["case_id"]
    case = stack.db("dispatch")["cases"].find_one({"_id": case_id})
    counts = Counter(row["type"] for row in stack.db("scoring")["events"].find({"correlation_id": case_id})
                     if row["type"] != "owner_notified" or row["payload"].get("kind") == "dispatch")
    if case is None or any(counts[kind] == 0 for kind in ONCE_PER_CASE):
        return "pending"
    if any(counts[kind] > 1 for kind in ONCE_PER_CASE) or report["_version"] != 1 or \
            len(case.get("_applied", [])) != len(set(case.get("_applied", []))):
        return "twice"
    return "done"


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


def management(stack):
    """The stack's vhost on its broker's management API (AMQP_URI may be a list of nodes)."""
    from shared.management import Management
    return Management(stack.env["RABBIT_MANAGEMENT_URL"], *MGMT_AUTH, vhost=stack.vhost)


def dead_letters(stack):
    from shared import ops
    mgmt = management(stack)
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
             for rows in ops.queues(management(stack)).values() for row in rows}
    return {dept: (count, depth.get(f"dept.{dept}.inbox", 0)) for dept, count in sorted(sent.items())}


def check(stack, load):
    """Every accepted report in its right final state; nothing applied twice."""
    completed, lost, twice = [], [], []
    for external_id, answer in list(load.accepted.items()):    # external_id is per key: go by report id
        state = load.final.get(external_id) or outcome(stack, answer.get("report_id"))
        if state in ("done", "refused"):
            load.final[external_id] = state        # final: not asked again while settling
        if state in ("done", "refused"):
            completed.append(external_id)
        elif state == "twice":
            twice.append(external_id)
        else:
            lost.append(external_id)
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


def run(stack, nodes, faults, args, log, title) -> int:
    """Steady load on ``stack`` while ``faults`` are carried out one after another; then the
    check, the printout and the JSON report (artifacts/chaos/<title>.json)."""
    began = time.time()
    load = Load(stack, args.rate, args.reports)
    load.thread.start()
    injector = Injector(stack, load, nodes, log, duplicate_deliveries)
    injector.run(faults, args.pause, began + args.max_minutes * 60 if args.max_minutes else float("inf"))
    load.stop.set()
    load.thread.join()
    log(f"load finished: {len(load.accepted)} reports accepted after {load.attempts} attempts; "
        f"{len(load.refused)} never accepted (last error: {load.last_error})")
    log("waiting for the platform to settle …")
    deadline = time.time() + 300
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
    kinds = summary(injector.records)
    result = {"title": title, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "duration_s": round(time.time() - began, 1), "load_average": os.getloadavg(),
              "arguments": vars(args), "sent": len(load.accepted), "never_accepted": len(load.refused),
              "last_http_error": load.last_error, "http_attempts": load.attempts, "completed": len(completed),
              "lost": len(lost), "applied_twice": len(twice), "dead_lettered": len(letters),
              "faults": len(injector.records), "joint_operations": operations,
              "operations_unfinished": len(unsettled),
              "requests_waiting_for_departments_without_program": {
                  dept: {"sent": sent, "in_inbox": held} for dept, (sent, held) in waiting.items()},
              "dead_letter_reasons": Counter(letter["reason"][:120] for letter in letters),
              "per_kind": kinds, "fault_log": injector.records,
              "lost_examples": lost[:5], "twice_examples": twice[:5], "unfinished_examples": unsettled[:5]}
    out = ROOT / "artifacts" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{title}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print()
    print(f"sent {result['sent']}, completed {result['completed']}, lost {result['lost']}, "
          f"applied twice {result['applied_twice']}, faults {result['faults']}")
    print(f"dead-lettered {result['dead_lettered']}; joint operations {operations}, every department finished in "
          f"{operations - len(unsettled)} (unfinished: {len(unsettled)}); "
          f"{result['duration_s'] / 60:.1f} min, load average {result['load_average'][1]:.1f}")
    for dept, (sent, held) in waiting.items():
        print(f"  {dept} runs no program here: {sent} Requests sent, {held} waiting in dept.{dept}.inbox")
    for reason, count in result["dead_letter_reasons"].items():
        print(f"  dead letter ×{count}: {reason}")
    print("recovery per fault kind (seconds: fewest / median / most):")
    for kind, row in kinds.items():
        times = " / ".join("-" if row[key] is None else f"{row[key]:.1f}" for key in ("min_s", "median_s", "max_s"))
        print(f"  {row['label']}: {row['faults']} faults, {times}"
              + (f", {row['not_recovered']} NOT recovered" if row["not_recovered"] else ""))
    print(f"report: {out / f'{title}.json'}")
    ok = not lost and not twice and not unsettled and not load.refused and \
        all(row["not_recovered"] == 0 for row in kinds.values())
    return 0 if ok else 1


def arguments(argv, rounds, rate):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1000, help="at least this many reports (more if the faults last longer)")
    parser.add_argument("--rate", type=float, default=rate, help="reports per second")
    parser.add_argument("--rounds", type=int, default=rounds, help="times the cycle of faults is repeated")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between faults")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="begin no fault after this many minutes of load (then check and report)")
    parser.add_argument("--skip", nargs="*", default=[], help="fault kinds to leave out (bench/chaos_faults.py LABELS)")
    return parser.parse_args(argv)


def logger():
    """A log with seconds since the start; SIGTERM and SIGINT end the run through its cleanup (the
    stack's processes and the RabbitMQ nodes it started are stopped)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    began = time.time()

    def log(text):
        print(f"[{time.time() - began:6.1f}s] {text}", flush=True)
    return log


def main(argv=None):
    args = arguments(argv, ROUNDS, RATE)
    log = logger()
    node = Node(*SINGLE_NODE)
    log(f"starting the private broker {node.node} on :{node.port}")
    node.start(wait=180)
    try:
        # the relay's own fallback poll (30 s): saves must be published by the relay right after them
        with Stack("chaos", store="sqlite", env={"OUTBOX_POLL_SECONDS": "30"},
                   amqp_hosts=[f"127.0.0.1:{node.port}"], management=node.management_url) as stack:
            log(f"stack up on {node.node}; {args.reports} reports at {args.rate}/s, {args.rounds} rounds of faults")
            return run(stack, [node], schedule(single_cycle(), args.rounds, args.skip), args, log, "chaos")
    finally:
        log(f"stopping {node.node}")
        node.stop()


if __name__ == "__main__":
    raise SystemExit(main())
