"""dcgctl — the operations CLI: ``python -m shared.cli <command>`` (or ``bin/dcgctl``).

    topology apply            declare every exchange, queue, DLQ and retry queue (idempotent)
    topology show             list the topology with owners
    dlq list                  dead-letter queues with their depth
"""
from __future__ import annotations

import argparse
import json
import sys

from .config import load_config
from .messaging import topology


def management(config):
    import requests
    session = requests.Session()
    session.auth = (config["RABBIT_MANAGEMENT_USER"], config["RABBIT_MANAGEMENT_PASSWORD"])
    return session, config["RABBIT_MANAGEMENT_URL"].rstrip("/")


def vhost_of(config) -> str:
    from kombu import Connection
    return Connection(config["AMQP_URI"]).virtual_host or "/"


def cmd_topology(args, config):
    if args.action == "apply":
        declared = topology.apply(config)
        print(f"topology applied: {len(declared)} exchanges and queues")
    else:
        for spec in topology.all_queues():
            bindings = ", ".join(f"{ex}:{key}" for ex, key in spec.bindings)
            print(f"{spec.name:40} owner={spec.owner:18} {bindings}")


def cmd_dlq(args, config):
    from urllib.parse import quote
    session, base = management(config)
    vhost = quote(vhost_of(config), safe="")
    queues = session.get(f"{base}/api/queues/{vhost}", timeout=10).json()
    rows = [q for q in queues if q["name"].endswith(".dlq")]
    if args.json:
        print(json.dumps([{"queue": q["name"], "messages": q.get("messages", 0)} for q in rows]))
        return
    for q in sorted(rows, key=lambda q: q["name"]):
        print(f"{q['name']:50} {q.get('messages', 0):>8}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dcgctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    top = sub.add_parser("topology")
    top.add_argument("action", choices=["apply", "show"])
    dlq = sub.add_parser("dlq")
    dlq.add_argument("action", choices=["list"])
    dlq.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    config = load_config()
    {"topology": cmd_topology, "dlq": cmd_dlq}[args.command](args, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
