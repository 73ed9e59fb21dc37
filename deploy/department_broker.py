"""The police's own broker, linked to the platform by shovel — a local stand-in for a department
that joins from its own RabbitMQ (docs/integration/departments.md, "Joining from your own broker").

    python -m deploy.department_broker start   # make police-broker: node police-broker on :5711,
                                               # the police's platform user, the two shovels,
                                               # then the police program on its own broker
    python -m deploy.department_broker stop    # make police-broker-stop: unlink, stop the node

The node runs outside any cluster (deploy/rabbit_nodes.py; management on :15711). The shovels run
on the platform's broker when it has the shovel plugin, otherwise on the police's node (the
system broker here has none); either way they reach the platform as the police's own platform
user. Run ``make run`` with ``DEPT_OWN_BROKER=police`` so that it does not also start the police
program against the platform's broker.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import requests

from deploy.rabbit_nodes import ROOT, Node
from shared import broker_users, department_links
from shared.config import load_config


def shovel_host_for(config: dict, node: Node) -> str | None:
    """None (the platform's broker) when it runs the shovel plugin, else the department's node."""
    mgmt = broker_users.admin_management(config)
    try:
        if mgmt.has_shovel_plugin():
            return None
    except requests.RequestException:
        pass
    return f"http://guest:guest@127.0.0.1:{node.management_port}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.department_broker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--department", default="police")
    parser.add_argument("--name", default="police-broker")
    parser.add_argument("--port", type=int, default=5711)
    parser.add_argument("--no-program", action="store_true", help="start: do not run the department program")
    args = parser.parse_args(argv)
    node = Node(args.name, args.port)
    config = load_config()
    host = shovel_host_for(config, node) if args.action == "start" or node.running() else None
    where = ["--shovel-host", host] if host else []
    if args.action == "stop":
        if node.running():
            department_links.main(["unlink", args.department, *where], config=config)
        node.stop()
        print(f"{node.node} stopped; Requests for {args.department} now wait in dept.{args.department}.inbox")
        return 0
    node.start()
    uri = node.uri()
    print(f"{node.node}: amqp :{node.port}, management {node.management_url}")
    if broker_users.main(["apply", "--department", args.department], config=config) != 0:
        return 2
    code = department_links.main(["link", args.department, "--uri", uri, *where], config=config)
    if code != 0:
        return code
    print(f"status: bin/dcgctl departments status {' '.join(where)}")
    if args.no_program:
        return 0
    print(f"running the {args.department} program on its own broker (Ctrl-C stops it; the node keeps running)")
    env = {**os.environ, "DEPT_LINK": "shovel", "DEPT_AMQP_URL": uri, "PYTHONPATH": str(ROOT)}
    try:
        return subprocess.call([sys.executable, "-m", f"departments.{args.department}"], cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
