"""``make chaos-cluster``: faults during a steady load, on a three-node RabbitMQ cluster.

The cluster chaos-a, chaos-b, chaos-c (AMQP 5721-5723, management 15721-15723; started, joined and
stopped here by deploy/rabbit_nodes.py) carries the platform with ``QUEUE_TYPE=quorum``; services
get the three nodes as kombu's failover list. The faults, in rounds (4 by default, 13 faults each)
while reports keep coming (1,000 at least, on 16 sender threads; the same time box as ``make
chaos``: no fault begun after 14 minutes of load):

  SIGKILL of the node that leads most queues (management API: each queue's ``leader``), then its
  restart; ``rabbitmqctl stop_app`` and ``start_app`` on each node in turn (a rolling upgrade);
  SIGKILL of every service in turn; the store killed and restarted; duplicated deliveries; a
  department program gone for a while.

A broker node's recovery time is measured while it is still down: a probe report must come all
the way through on the other two nodes. Prints and saves what ``make chaos`` does
(artifacts/chaos/chaos-cluster.json).
"""
from __future__ import annotations

import shutil

from bench.chaos import arguments, logger, run
from bench.chaos_faults import cluster_cycle, schedule
from bench.stack import PLATFORM_ENV, Stack
from deploy.rabbit_nodes import Cluster

NODES = ("chaos-a", "chaos-b", "chaos-c")
FIRST_PORT = 5721
ROUNDS, RATE = 4, 1.3                  # default: 4 rounds of 13 faults, reports at 1.3/s (≥ 1,000 in 13 min)


def main(argv=None):
    args = arguments(argv, ROUNDS, RATE)
    log = logger()
    cluster = Cluster(NODES, FIRST_PORT)
    log(f"starting the cluster {', '.join(n.node for n in cluster.nodes)} on :{FIRST_PORT}-{FIRST_PORT + 2}")
    for node in cluster.nodes:      # a fresh cluster each run: a node left half-stopped by an earlier
        if not node.running():     # run failed to boot (incompatible_feature_flags) on 3.10.8
            shutil.rmtree(node.home, ignore_errors=True)
    try:
        cluster.start()
        for row in cluster.status():
            log(f"  {row['node']} :{row['port']} members {', '.join(row['members'])}")
        # every program gets the node list; the management client too (it moves to a node that answers)
        env = {**PLATFORM_ENV, "QUEUE_TYPE": "quorum",
               "RABBIT_MANAGEMENT_URL": ";".join(n.management_url for n in cluster.nodes)}
        with Stack("chaos-cluster", store="sqlite", env=env, amqp_hosts=[f"127.0.0.1:{n.port}" for n in cluster.nodes],
                   management=cluster.nodes[0].management_url) as stack:
            log(f"stack up on the cluster; {args.reports} reports at {args.rate}/s, {args.rounds} rounds of faults")
            faults = schedule(cluster_cycle([n.name for n in cluster.nodes]), args.rounds, args.skip)
            return run(stack, cluster.nodes, faults, args, log, "chaos-cluster")
    finally:
        log("stopping the cluster")
        cluster.stop()


if __name__ == "__main__":
    raise SystemExit(main())
