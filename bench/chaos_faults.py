"""The fault schedules of ``make chaos`` and ``make chaos-cluster``: which faults, in which order.

No I/O here: a schedule is a list of ``Fault``s, built from one cycle of faults repeated in
rounds; ``leader_node`` picks the node to kill from a management-API answer. bench/chaos_run.py
carries the faults out and times the recovery from each.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

# every service of the platform, killed in this order in each round
SERVICES = ("intake", "dispatch", "coordination", "scoring", "participation", "gateway")
DEPARTMENT = "police"          # the department program that goes away for a while

LABELS = {
    "service": "服务进程被强杀 SIGKILL of a service",
    "broker_restart": "消息中间件重启 broker restart (stop_app, start_app)",
    "leader_node_kill": "主节点被强杀后重启 SIGKILL of the node leading most queues, then its restart",
    "node_stop_app": "滚动升级 rolling upgrade: stop_app, start_app on one node",
    "store": "数据库被强杀后重启 store killed and restarted",
    "duplicates": "重复投递 duplicated deliveries",
    "department": "部门系统离线一段时间 a department program gone for a while",
}


@dataclass(frozen=True)
class Fault:
    kind: str                   # a key of LABELS
    target: str | None = None   # service, node or department; None when chosen at run time
    round: int = 1

    @property
    def name(self) -> str:
        return f"{self.kind} {self.target}" if self.target else self.kind


def single_cycle() -> list[Fault]:
    """One round on the single private node: every service, the broker, the store, duplicates,
    a department (10 faults)."""
    return [*(Fault("service", name) for name in SERVICES), Fault("broker_restart"), Fault("store"),
            Fault("duplicates"), Fault("department", DEPARTMENT)]


def cluster_cycle(nodes: list[str] | tuple[str, ...]) -> list[Fault]:
    """One round on the cluster: the leading node killed and restarted, stop_app/start_app on each
    node in turn, then the single-node faults but the broker restart (13 faults for 3 nodes)."""
    return [Fault("leader_node_kill"), *(Fault("node_stop_app", node) for node in nodes),
            *(fault for fault in single_cycle() if fault.kind != "broker_restart")]


def schedule(cycle: list[Fault], rounds: int, skip=()) -> list[Fault]:
    """``cycle`` repeated ``rounds`` times, without the kinds in ``skip``."""
    return [Fault(fault.kind, fault.target, number) for number in range(1, rounds + 1)
            for fault in cycle if fault.kind not in skip]


def leader_node(queues: list[dict]) -> str | None:
    """The node that leads most queues, from the management API's ``/api/queues`` rows: a quorum
    queue's ``leader``, a classic queue's ``node``. Ties go to the first name in order."""
    counts = Counter(row.get("leader") or row.get("node") for row in queues)
    counts.pop(None, None)
    if not counts:
        return None
    return min(counts, key=lambda node: (-counts[node], node))


def summary(records: list[dict]) -> dict:
    """Per fault kind: how many, and the recovery times (seconds) — fewest, median, most."""
    by_kind: dict[str, list[float | None]] = {}
    for record in records:
        by_kind.setdefault(record["kind"], []).append(record.get("recovered_s"))
    out = {}
    for kind, times in by_kind.items():
        known = sorted(t for t in times if t is not None)
        out[kind] = {"label": LABELS[kind], "faults": len(times), "not_recovered": len(times) - len(known),
                     "min_s": known[0] if known else None,
                     "median_s": known[len(known) // 2] if known else None,
                     "max_s": known[-1] if known else None}
    return out
