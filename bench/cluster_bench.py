"""``make bench BENCH_ARGS=--cluster``: the platform on the three-node cluster beside the single
node, in the same run, with the same load, as a ratio.

Two isolated stacks, one after the other, each with its own vhost, store and processes:

- ``single``: the system broker (127.0.0.1:5672), classic queues, as ``make run``;
- ``cluster``: dcg-a/b/c on 5701-5703 (deploy/rabbit_nodes.py; started if they are not
  running, and left running), QUEUE_TYPE=quorum, every program given the node list.

On each: raw confirmed publishes per second (persistent, one confirm per publish, as the
platform publishes), capacity under a saturating load, and latency report → owner notified at
a realistic load (a quarter of that capacity). ``ratio`` is cluster ÷ single for each figure.
Saved into latest.json under ``cluster`` by bench/run.py; alone:

    python -m bench.cluster_bench --reports 60 --rate 8     # also merges into latest.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

from bench.stack import ROOT, Stack


def one_stack(label: str, store: str, reports: int, rate: float, hotline_share: float,
              realistic_reports: int, **stack_args) -> dict:
    from bench.run import percentile, raw_broker, run_load
    started = time.time()
    with Stack(f"bench-{label}", store=store, env=stack_args.pop("env", {}), **stack_args) as stack:
        print(f"[{label}] stack up in {time.time() - started:.0f} s (vhost {stack.vhost}); "
              f"saturating load: {reports} reports at {rate}/s …", flush=True)
        saturating = run_load(stack, reports, rate, hotline_share)
        capacity = saturating["throughput"]
        realistic_rate = round(max(0.2, capacity / 4), 2)
        print(f"[{label}] capacity {capacity:.2f} cases/s; realistic load {realistic_reports} reports "
              f"at {realistic_rate}/s …", flush=True)
        realistic = run_load(stack, realistic_reports, realistic_rate, hotline_share, seed=8)
        latencies = [lat for lat, _ in realistic["note_pairs"]]
        publish_rate, _ = raw_broker(stack.config["AMQP_URI"], count=1500)
        queue_types = sorted({q.get("type") for q in _queues(stack)})
    return {"amqp_nodes": len(stack.amqp_hosts), "queue_types": queue_types,
            "capacity_cases_per_s": round(capacity, 2),
            "saturating": {"sent": len(saturating["sent"]), "owner_notified": len(saturating["note_pairs"])},
            "realistic_rate": realistic_rate, "realistic_sent": len(realistic["sent"]),
            "latency_ms": {q: percentile(latencies, v) for q, v in (("p50", .5), ("p95", .95), ("p99", .99))},
            "broker_publish_confirmed_per_s": publish_rate}


def _queues(stack) -> list[dict]:
    import requests
    from urllib.parse import quote

    from bench.stack import MGMT_AUTH
    return requests.get(f"{stack.management}/api/queues/{quote(stack.vhost, safe='')}", auth=MGMT_AUTH,
                        timeout=15).json()


def compare(store: str = "memory", reports: int = 60, rate: float = 8.0, hotline_share: float = 0.3,
            realistic_reports: int = 24) -> dict:
    """Both stacks with the same load; returns {single, cluster, ratio, load_average}."""
    from deploy.rabbit_nodes import Cluster
    cluster = Cluster()
    print("bench --cluster: starting (or finding) dcg-a/b/c …", flush=True)
    cluster.start()
    common = dict(store=store, reports=reports, rate=rate, hotline_share=hotline_share,
                  realistic_reports=realistic_reports)
    single = one_stack("single", **common)
    on_cluster = one_stack("cluster", **common, env={"QUEUE_TYPE": "quorum"},
                           amqp_hosts=[f"127.0.0.1:{n.port}" for n in cluster.nodes],
                           management=cluster.nodes[0].management_url)

    def ratio(a, b):
        return round(b / a, 3) if a and b else None
    result = {
        "single": single, "cluster": on_cluster,
        "ratio": {"capacity": ratio(single["capacity_cases_per_s"], on_cluster["capacity_cases_per_s"]),
                  "broker_publish_confirmed": ratio(single["broker_publish_confirmed_per_s"],
                                                    on_cluster["broker_publish_confirmed_per_s"]),
                  **{f"latency_{q}": ratio(single["latency_ms"][q], on_cluster["latency_ms"][q])
                     for q in ("p50", "p95", "p99")}},
        "store": store, "load_average": list(os.getloadavg()),
        "note": "ratio = cluster ÷ single; both stacks on this one machine (three nodes share its cores)",
    }
    print(summary(result), flush=True)
    return result


def summary(result: dict) -> str:
    s, c, r = result["single"], result["cluster"], result["ratio"]
    return (f"single node:  {s['capacity_cases_per_s']} cases/s, p50/p95 {s['latency_ms']['p50']}/"
            f"{s['latency_ms']['p95']} ms, {s['broker_publish_confirmed_per_s']} confirmed publishes/s\n"
            f"3-node cluster (quorum): {c['capacity_cases_per_s']} cases/s, p50/p95 {c['latency_ms']['p50']}/"
            f"{c['latency_ms']['p95']} ms, {c['broker_publish_confirmed_per_s']} confirmed publishes/s\n"
            f"cluster ÷ single: capacity ×{r['capacity']}, latency p50 ×{r['latency_p50']}, "
            f"confirmed publishes ×{r['broker_publish_confirmed']} (load average {result['load_average'][0]:.1f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="memory")
    parser.add_argument("--reports", type=int, default=60)
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--realistic-reports", type=int, default=24)
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench"))
    args = parser.parse_args(argv)
    result = compare(args.store, args.reports, args.rate, realistic_reports=args.realistic_reports)
    latest = os.path.join(args.out, "latest.json")
    os.makedirs(args.out, exist_ok=True)
    merged = {}
    if os.path.exists(latest):
        with open(latest, encoding="utf-8") as handle:
            merged = json.load(handle)
    merged["cluster"] = result
    with open(latest, "w", encoding="utf-8") as handle:
        json.dump(merged, handle, ensure_ascii=False, indent=2)
    print(f"saved under 'cluster' in {latest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
