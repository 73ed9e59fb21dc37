"""dcgctl — the platform's operations CLI (``bin/dcgctl`` or ``python -m shared.cli``).

  queues [--json]                       depth, consumers and rates, grouped by owning service;
                                        ⚠ marks a queue that needs an operator (as /health does)
  dlq list                              dead-letter queues with their depth
  dlq show QUEUE [--limit N]            dead letters with id, reason and origin (they stay queued)
  dlq replay QUEUE [--id MESSAGE_ID]    send one (or all) back to the queue they came from
  dlq purge QUEUE --id MESSAGE_ID       delete that one dead letter (exit 1 if it is not there)
  dlq purge QUEUE --all                 delete every dead letter in QUEUE (nothing else does)
  timeline CASE_ID                      a case's every event, across services, in order
  topology apply | show | diff          declare / list / compare with the broker
  users apply | check | platform        per-department RabbitMQ users and permissions; the
                                        platform's own user (needs the broker administrator:
                                        RABBIT_ADMIN_USER / RABBIT_ADMIN_PASSWORD)
  departments link ID --uri amqp://…    a department on its own broker: two shovels (Requests
                                        there, replies here, ack-mode on-confirm)
  departments unlink ID | status        remove them; each link's state and backlog
  health                                broker, store, every service and the queues; exit 1
                                        and the reasons when the platform is degraded
  store backup DIR | store restore DIR [--drop]   every platform database to/from JSON lines

Configuration comes from config/platform.yaml and the environment (AMQP_URI, MONGO_URI,
RABBIT_MANAGEMENT_URL …), as for the services. Times are local (Asia/Shanghai, +08:00).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")   # noise for an operator

from . import health, ops  # noqa: E402
from .config import load_config, local_store_uri  # noqa: E402
from .messaging import topology  # noqa: E402


def _print(data, as_json):
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return True
    return False


def cmd_queues(args, config):
    grouped = ops.queues(ops.Management.from_config(config), health.backlog_limit(config))
    flagged = [row for rows in grouped.values() for row in rows if row["problem"]]
    if _print(grouped, args.json):
        return 1 if flagged else 0
    print(f"{'queue':48} {'ready':>7} {'unacked':>7} {'consumers':>9} {'in/s':>7} {'out/s':>7}")
    for owner, rows in grouped.items():
        print(f"[{owner}]")
        for row in rows:
            mark = f"  ⚠ {row['problem']}" if row["problem"] else ""
            print(f"  {row['name']:46} {row['ready']:>7} {row['unacked']:>7} {row['consumers']:>9}"
                  f" {row['publish_rate']:>7} {row['deliver_rate']:>7}{mark}")
    if flagged:
        print(f"⚠ {len(flagged)} 个队列需要处理 ({len(flagged)} queue(s) need an operator)")
    return 1 if flagged else 0


def cmd_dlq(args, config):
    mgmt = ops.Management.from_config(config)
    if args.action == "list":
        rows = ops.dead_letter_queues(config, mgmt)
        if not _print(rows, args.json):
            for row in rows:
                print(f"{row['name']:52} {row['messages']:>8}  owner={row['owner']}")
        return 0
    if not args.queue:
        sys.exit("dlq show|replay|purge needs a QUEUE (e.g. dispatch.case-registered.dlq)")
    queue = args.queue if args.queue.endswith(".dlq") else f"{args.queue}.dlq"
    if args.action == "show":
        shown = ops.show_dead_letters(config, queue, args.limit)
        if not _print(shown, args.json):
            print(f"{queue}: {shown['total']} dead letter(s), showing {len(shown['letters'])}")
            for row in shown["letters"]:
                print(f"- {row['message_id']}  from {row['origin_queue']} "
                      f"({row['origin_exchange']} / {row['origin_routing_key']})  at {row['failed_at']}")
                print(f"  reason: {row['reason']}")
                print(f"  body:   {json.dumps(row['body'], ensure_ascii=False)[:300]}")
        return 0
    if args.action == "replay":
        count = ops.replay(config, queue, args.id)
        print(f"replayed {count} message(s) from {queue}")
        return 0 if count or not args.id else 1
    if args.action == "purge":
        if args.id and args.all:
            sys.exit("dlq purge: give --id MESSAGE_ID or --all, not both")
        if args.all:
            ops.purge_all(mgmt, queue)
            print(f"purged every dead letter in {queue}")
            return 0
        if not args.id:
            sys.exit("dlq purge needs --id MESSAGE_ID (one letter, ids from `dlq show`) "
                     "or --all (every letter in the queue); nothing was deleted")
        count = ops.purge(config, queue, args.id)
        print(f"purged {count} message(s) with id {args.id} from {queue}")
        return 0 if count else 1
    return 2


def cmd_timeline(args, config):
    rows = ops.timeline(config, args.case_id)
    if not _print(rows, args.json):
        if not rows:
            print(f"no events for {args.case_id}")
            return 1
        for row in rows:
            extra = " ".join(f"{k}={v}" for k, v in (("actor", row["actor"]), ("unit", row["unit"]),
                                                       ("reason", row["reason"])) if v)
            print(f"{row['at']:34} {row['producer']:13} {row['type']:28} {extra}")
    return 0


def cmd_topology(args, config):
    if args.action == "apply":
        declared = topology.apply(config)
        print(f"topology applied: {len(declared)} exchanges and queues")
    elif args.action == "show":
        for spec in topology.all_queues():
            bindings = ", ".join(f"{ex}:{key}" for ex, key in spec.bindings)
            print(f"{spec.name:40} owner={spec.owner:18} {bindings}")
    else:
        diff = ops.topology_diff(config, ops.Management.from_config(config))
        if not _print(diff, args.json):
            for key, names in diff.items():
                print(f"{key}: {', '.join(names) if names else '-'}")
        return 1 if diff["missing_exchanges"] or diff["missing_queues"] or diff["different_arguments"] else 0
    return 0


def cmd_users(args, config):
    try:
        from . import broker_users
    except ImportError:
        sys.exit("per-department users are not available in this version")
    return broker_users.main([args.action, *args.rest])


def cmd_departments(args, config):
    from . import department_links
    return department_links.main([args.action, *args.rest], config=config)


def cmd_health(args, config):
    state = ops.platform_health(config)
    if not _print(state, args.json):
        print(f"platform: {state['status']}   broker: {state['broker']}   store: {state['store']}")
        for name, entry in state["services"].items():
            print(f"  {name:14} {entry['state']:5} instances={entry['instances']} "
                  f"last_seen={entry['last_seen']}")
        for reason in state["reasons"]:
            print(f"  ⚠ {reason}")
    return 0 if state["status"] == "up" else 1


def cmd_store(args, config):
    if args.action == "backup":
        counts = ops.backup(config, args.directory)
    else:
        counts = ops.restore(config, args.directory, drop=args.drop)
    if not _print(counts, args.json):
        for name, rows in counts.items():
            print(f"{name:60} {rows:>8}")
        print(f"{args.action}: {len(counts)} collections, {sum(counts.values())} documents")
    return 0


def parser():
    top = argparse.ArgumentParser(prog="dcgctl", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    queues = sub.add_parser("queues", help="queue depth, consumers and rates by owner")
    queues.add_argument("--json", action="store_true")
    dlq = sub.add_parser("dlq", help="dead letters")
    dlq.add_argument("action", choices=["list", "show", "replay", "purge"])
    dlq.add_argument("queue", nargs="?")
    dlq.add_argument("--id", help="replay or purge only the message with this id (from dlq show)")
    dlq.add_argument("--all", action="store_true", help="purge: every dead letter in the queue")
    dlq.add_argument("--limit", type=int, default=20)
    dlq.add_argument("--json", action="store_true")
    timeline = sub.add_parser("timeline", help="a case's events across services")
    timeline.add_argument("case_id")
    timeline.add_argument("--json", action="store_true")
    topo = sub.add_parser("topology", help="apply, show or diff the topology")
    topo.add_argument("action", choices=["apply", "show", "diff"])
    topo.add_argument("--json", action="store_true")
    users = sub.add_parser("users", help="per-department RabbitMQ users")
    users.add_argument("action", choices=["apply", "platform", "check"])
    users.add_argument("rest", nargs=argparse.REMAINDER)
    departments = sub.add_parser("departments", help="link a department's own broker by shovel; unlink; status")
    departments.add_argument("action", choices=["link", "unlink", "status"])
    departments.add_argument("rest", nargs=argparse.REMAINDER)
    store = sub.add_parser("store", help="back up or restore every platform database")
    store.add_argument("action", choices=["backup", "restore"])
    store.add_argument("directory")
    store.add_argument("--drop", action="store_true", help="restore: drop each collection first")
    store.add_argument("--json", action="store_true")
    health = sub.add_parser("health", help="broker, store and services")
    health.add_argument("--json", action="store_true")
    return top


COMMANDS = {"queues": cmd_queues, "dlq": cmd_dlq, "timeline": cmd_timeline, "topology": cmd_topology,
            "users": cmd_users, "departments": cmd_departments, "health": cmd_health, "store": cmd_store}


def main(argv=None, config=None):
    args = parser().parse_args(argv)
    if config is None:
        config = load_config()
        config["MONGO_URI"] = local_store_uri() or config["MONGO_URI"]   # beside make run: its store
    return COMMANDS[args.command](args, config)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)    # `dcgctl queues | head` ends quietly
    sys.exit(main())
