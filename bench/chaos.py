"""``make chaos``: faults during a steady load, then a check that every report reached its correct
final state. Prints ``sent N, completed N, lost 0, applied twice 0, faults F``, the time to
recover after each fault and a summary per fault kind; the JSON report goes to artifacts/chaos/.

The faults (bench/chaos_faults.py), in rounds (5 by default, 10 faults each) while reports keep
coming (1,000 at least, at 1.3/s): SIGKILL of each service in turn (restarted after a pause); a
restart of the broker (stop_app, start_app); the store's process killed and restarted; duplicated
deliveries (events published again); a department program that disappears for a while. The
default is sized for issue 17's bar (BAR: ≥ 1,000 reports, ≥ 50 faults, ≤ 20 minutes with the stack's
start): no fault begins after 14 minutes of load (``--max-minutes``), a fault not recovered in
120 s counts as not recovered (``--probe-timeout``); the last lines say whether the bar was met.

The load (bench/chaos_load.py) is many channels at once: each report goes out at its scheduled
time on a pool of 16 threads, whatever the earlier ones are waiting for, and is sent again until
it is accepted (gateway down, broker restarting) — the platform must turn those repeats into one
report. The load lasts until both its reports and the faults are done.

Runs on a private RabbitMQ node of its own (``chaos-one`` on :5731, started and stopped here by
deploy/rabbit_nodes.py, so the broker restart hits nobody else), its own vhost, database prefix
and embedded store (SQLite, so the store survives being killed). ``make chaos-cluster``
(bench/chaos_cluster.py) runs the same on a three-node cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections import Counter

from bench.chaos_faults import schedule, single_cycle, summary
from bench.chaos_load import Load
from bench.chaos_run import PROBE_TIMEOUT, Injector
from bench.stack import DEPARTMENTS, MGMT_AUTH, PLATFORM_ENV, ROOT, Stack
from deploy.rabbit_nodes import Node

SINGLE_NODE = ("chaos-one", 5731)      # the private broker of `make chaos`
ROUNDS, RATE = 5, 1.3                  # default: 5 rounds of 10 faults, reports at 1.3/s (≥ 1,000 in 13 min)
BAR = {"reports": 1000, "faults": 50, "minutes": 20}   # issue 17: one default run, stack start included
FAULT_MINUTES = 14                     # default --max-minutes: with the stack's start (18 s; cluster 56 s), the
                                       # last fault (≤ 2 min) and the check, a run ends within BAR's 20
ONCE_PER_CASE = ("case_registered", "case_dispatched", "owner_notified")
SETTLED = ("disposed", "rejected", "cancelled")


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


def through(stack, report_id) -> str:
    """Where a probe report stands on the case path, as its reporter and its owner see it: "done"
    once intake has registered it and dispatch has saved its case with the owner's dispatch
    notification and published them (outbox empty); "refused"; else "pending". The final check
    (``outcome``) reads scoring's log, which may lag while scoring catches up (it takes only a
    share of the store while behind: services/scoring/store.BACKLOG_SHARE)."""
    report = stack.db("intake")["reports"].find_one({"_id": report_id})
    if report is None:
        return "pending"
    if report["status"] != "registered":
        return "refused"
    case = stack.db("dispatch")["cases"].find_one({"_id": report["case_id"]}, {"notifications": 1, "_outbox": 1})
    notified = case and any(note.get("kind") == "dispatch" for note in case.get("notifications") or [])
    return "done" if notified and not case.get("_outbox") else "pending"


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
    for external_id, answer in load.answers():    # external_id is per key: go by report id
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
    load = Load(stack, args.rate, args.reports, through)
    load.thread.start()
    injector = Injector(stack, load, nodes, log, duplicate_deliveries, args.probe_timeout)
    try:
        injector.run(faults, args.pause, began + args.max_minutes * 60 if args.max_minutes else float("inf"))
    except BaseException:                 # SIGTERM, SIGINT: the stack is being stopped
        load.abandon()
        raise
    load.stop.set()
    if load.schedule.issued < args.reports:
        log(f"faults done after {time.time() - began:.0f} s; the load goes on to its {args.reports} reports "
            f"({load.schedule.issued} so far)")
    load.thread.join()
    late = load.lateness()
    log(f"load finished after {time.time() - began:.0f} s: {len(load.accepted)} reports accepted after "
        f"{load.attempts} attempts; {len(load.refused)} never accepted (last error: {load.last_error}); "
        f"accepted after their scheduled time: median {late['median_s']} s, 95% {late['p95_s']} s, "
        f"most {late['max_s']} s; at most {late['most_in_flight']} in flight on {late['workers']} workers")
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
    minutes = round((time.time() - getattr(log, "began", began)) / 60, 1)
    result = {"title": title, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "duration_s": round(time.time() - began, 1), "load_average": os.getloadavg(),
              "minutes_in_all": minutes,
              "arguments": vars(args), "sent": len(load.accepted), "never_accepted": len(load.refused),
              "last_http_error": load.last_error, "http_attempts": load.attempts,
              "accepted_after_scheduled_time": late, "completed": len(completed),
              "lost": len(lost), "applied_twice": len(twice), "dead_lettered": len(letters),
              "faults": len(injector.records), "joint_operations": operations,
              "operations_unfinished": len(unsettled),
              "requests_waiting_for_departments_without_program": {
                  dept: {"sent": sent, "in_inbox": held} for dept, (sent, held) in waiting.items()},
              "dead_letter_reasons": Counter(letter["reason"][:120] for letter in letters),
              "bar_missed": bar_missed(len(load.accepted), len(injector.records), minutes),
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
    misses = result["bar_missed"]
    print(f"issue 17's bar (≥ {BAR['reports']:,} reports, ≥ {BAR['faults']} faults, ≤ {BAR['minutes']} min with the "
          f"stack's start): " + ("met" if not misses else "NOT met: " + "; ".join(misses)))
    print(f"report: {out / f'{title}.json'}")
    ok = not lost and not twice and not unsettled and not load.refused and \
        all(row["not_recovered"] == 0 for row in kinds.values())
    return 0 if ok else 1


def bar_missed(sent: int, faults: int, minutes: float) -> list[str]:
    """What a run missed of issue 17's bar (BAR): nothing when it met it."""
    return [text for short, text in (
        (sent < BAR["reports"], f"{sent} reports sent"), (faults < BAR["faults"], f"{faults} faults"),
        (minutes > BAR["minutes"], f"{minutes:.1f} min")) if short]


def arguments(argv, rounds, rate):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1000, help="at least this many reports (more if the faults last longer)")
    parser.add_argument("--rate", type=float, default=rate, help="reports per second")
    parser.add_argument("--rounds", type=int, default=rounds, help="times the cycle of faults is repeated")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between faults")
    parser.add_argument("--max-minutes", type=float, default=FAULT_MINUTES,
                        help="begin no fault after this many minutes of load (then check and report); 0: no limit")
    parser.add_argument("--probe-timeout", type=float, default=PROBE_TIMEOUT,
                        help="seconds a fault may take to recover before it counts as not recovered")
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
    log.began = began                   # the run's start: the stack's start counts in its minutes
    return log


def main(argv=None):
    args = arguments(argv, ROUNDS, RATE)
    log = logger()
    node = Node(*SINGLE_NODE)
    log(f"starting the private broker {node.node} on :{node.port}")
    node.start(wait=180)
    try:
        # the relay's own fallback poll (30 s): saves must be published by the relay right after them
        with Stack("chaos", store="sqlite", env=PLATFORM_ENV,
                   amqp_hosts=[f"127.0.0.1:{node.port}"], management=node.management_url) as stack:
            log(f"stack up on {node.node}; {args.reports} reports at {args.rate}/s, {args.rounds} rounds of faults")
            return run(stack, [node], schedule(single_cycle(), args.rounds, args.skip), args, log, "chaos")
    finally:
        log(f"stopping {node.node}")
        node.stop()


if __name__ == "__main__":
    raise SystemExit(main())
