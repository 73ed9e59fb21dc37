"""Carries out a fault schedule (bench/chaos_faults.py) on a running stack and times the recovery
from each fault.

Recovery time: from the moment the fault is injected until a probe report sent after it has
come all the way through (registered, dispatched, its owner notified) and the backlog has
drained (no message ready in the killed service's queues — in every platform queue but
scoring's after a broker or store fault: scoring catches up in the background, at a share of
the store, and how far behind it still was is recorded as ``scoring_behind``); for a department
that was gone, until its inbox has drained after it came back. For a broker node that is
killed or stopped, the probe is sent while the node is still down (the platform must fail over);
``restored_s`` is then the time the node took to come back.
"""
from __future__ import annotations

import signal
import time
from urllib.parse import quote

import requests

from bench.chaos_faults import Fault, leader_node
from bench.stack import MGMT_AUTH, port_open
from shared.messaging import topology

SERVICE_OUTAGE = 2.0       # seconds a killed service, or the store, stays dead
BROKER_OUTAGE = 2.0        # seconds between stop_app and start_app
DEPARTMENT_OUTAGE = 15.0   # seconds the department program stays away
BACKGROUND = ("scoring",)   # owners whose backlog a broker or store fault's recovery does not wait for
PROBE_TIMEOUT = 120.0      # default: a fault not recovered within 2 min counts as not recovered (and a
                           # 20-minute run has no room for more); --probe-timeout changes it


def until(check, what: str, seconds: float):
    """Poll ``check`` until it is true; RuntimeError after ``seconds`` (a failed check is a no)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not within {seconds:.0f} s")


class Injector:
    def __init__(self, stack, load, nodes, log, duplicate, probe_timeout=PROBE_TIMEOUT):
        self.stack, self.load, self.nodes, self.log = stack, load, nodes, log
        self.probe_timeout = probe_timeout
        self.duplicate = duplicate          # callable(stack, log) -> number of events sent again
        self.records: list[dict] = []
        self.consumed: set[str] = set()       # queues seen with a consumer
        self.why: str | None = None           # why the last probe did not complete
        self.behind: int | None = None        # messages still ready for scoring when it recovered

    # ------------------------------------------------------------------ run
    def run(self, faults: list[Fault], pause: float, stop_at: float = float("inf")):
        """Each fault in turn, ``pause`` seconds apart; none begun after the time ``stop_at``."""
        self.queue_rows()                     # which queues have consumers before any fault
        for number, fault in enumerate(faults, 1):
            time.sleep(pause)
            if time.time() > stop_at:
                self.log(f"time is up: {len(faults) - number + 1} faults of the schedule left out")
                break
            began, self.why, self.behind = time.time(), None, None
            self.log(f"fault {number}/{len(faults)} (round {fault.round}): {fault.name}")
            try:
                record = getattr(self, f"_{fault.kind}")(fault, began)
            except (Exception, SystemExit) as exc:     # a fault not carried out is reported, not hidden
                record = {"error": f"{type(exc).__name__}: {exc}"[:300], "recovered_s": None}
            record = {"number": number, "round": fault.round, "kind": fault.kind,
                      "target": record.pop("target", fault.target), **record, "scoring_behind": self.behind}
            if record.get("recovered_s") is None and self.why and "error" not in record:
                record["error"] = self.why
            self.records.append(record)
            recovered = record.get("recovered_s")
            extra = f", node back after {record['restored_s']:.1f} s" if record.get("restored_s") else ""
            extra += f", scoring {self.behind} behind" if self.behind else ""
            self.log(f"  recovered after {recovered:.1f} s{extra}" if recovered is not None
                     else f"  NOT recovered ({record.get('error') or 'probe did not complete'})")

    # --------------------------------------------------------------- faults
    def _service(self, fault, began):
        self.stack.kill(fault.target, signal.SIGKILL)
        time.sleep(SERVICE_OUTAGE)
        self.stack.start_service(fault.target)
        return {"recovered_s": self.probe(began, fault.target)}

    def _store(self, fault, began):
        self.stack.kill("store", signal.SIGKILL)
        time.sleep(SERVICE_OUTAGE)
        self.stack.start_store()
        return {"recovered_s": self.probe(began)}

    def _broker_restart(self, fault, began):
        node = self.nodes[0]
        node.stop_app()
        time.sleep(BROKER_OUTAGE)
        node.start_app()
        return {"target": node.name, "recovered_s": self.probe(began)}

    def _leader_node_kill(self, fault, began):
        node = self.node_of(leader_node(self.queue_rows()))
        self.log(f"  SIGKILL {node.node} (it leads most queues)")
        node.kill()
        recovered = self.probe(began)          # with the node dead: the platform fails over
        back = time.time()
        node.start(wait=180)
        self.wait_member(node)
        return {"target": node.name, "recovered_s": recovered, "restored_s": round(time.time() - back, 1)}

    def _node_stop_app(self, fault, began):
        node = self.node_of(fault.target)
        node.stop_app()
        recovered = self.probe(began)          # with the node's app stopped
        back = time.time()
        node.start_app()
        self.wait_member(node)
        return {"recovered_s": recovered, "restored_s": round(time.time() - back, 1)}

    def _duplicates(self, fault, began):
        sent = self.duplicate(self.stack, self.log)
        return {"events_sent_again": sent, "recovered_s": self.probe(began)}

    def _department(self, fault, began):
        name = f"dept-{fault.target}"
        self.stack.kill(name, signal.SIGKILL)
        time.sleep(DEPARTMENT_OUTAGE)
        self.stack.start_department(fault.target)
        inbox = f"dept.{fault.target}.inbox"
        held = self.queue_depth(inbox)
        until(lambda: self.queue_depth(inbox) == 0, f"{inbox} to drain", self.probe_timeout)
        return {"inbox_after_absence": held, "recovered_s": round(time.time() - began, 1)}

    # ---------------------------------------------------------------- probe
    def probe(self, began: float, owner: str | None = None) -> float | None:
        """Send a report and wait until it is registered, dispatched and its owner notified (a
        report the platform refuses with a reason is replaced by another), then until no message
        is ready in ``owner``'s queues (every platform queue's when None). Seconds since ``began``."""
        deadline = time.time() + self.probe_timeout
        if not self.report_through(deadline):
            return None
        names = {spec.name for spec in topology.consumer_queues()
                 if spec.owner == owner or (owner is None and spec.owner not in BACKGROUND)}
        try:
            until(lambda: self.ready(names) == 0, "the backlog to drain", max(deadline - time.time(), 1))
        except RuntimeError:
            self.why = "backlog not drained: " + ", ".join(
                f"{row['name']} {row.get('messages_ready')} ready, {row.get('consumers')} consumers"
                for row in self.queue_rows() if row["name"] in names & self.consumed and row.get("messages_ready"))
            return None
        self.behind = self.ready({spec.name for spec in topology.consumer_queues() if spec.owner in BACKGROUND})
        return round(time.time() - began, 1)

    def ready(self, names) -> int | None:
        """Messages ready in the queues ``names`` that have had a consumer at some point (a queue
        nothing in this stack consumes, the SMS stand-in's outbox, only ever fills up)."""
        rows = [row for row in self.queue_rows() if row["name"] in names and row["name"] in self.consumed]
        return sum(row.get("messages_ready") or 0 for row in rows) if rows else None

    def report_through(self, deadline) -> bool:
        answer, state = {}, "not sent"
        while time.time() < deadline:
            report = self.load.report(probe=True)
            answer = self.load.send(report, deadline)
            if answer is None:
                self.why = f"probe report never accepted (last HTTP error: {self.load.last_error})"
                return False
            while time.time() < deadline:
                state = self.load.state(answer.get("report_id"))
                if state in ("done", "twice"):       # twice is counted by the final check
                    return True
                if state == "refused":
                    break
                time.sleep(0.5)
        self.why = f"probe report {answer.get('report_id')} stayed {state!r} (not registered, dispatched and notified)"
        return False

    # ----------------------------------------------------- broker questions
    def queue_rows(self) -> list[dict]:
        """The stack's queues from the first node whose management API answers."""
        for node in self.nodes:
            try:
                answer = requests.get(f"{node.management_url}/api/queues/{quote(self.stack.vhost, safe='')}",
                                      params={"columns": "name,node,leader,messages,messages_ready,consumers"}, auth=MGMT_AUTH,
                                      timeout=10)
                if answer.status_code == 200:
                    rows = answer.json()
                    self.consumed.update(row["name"] for row in rows if row.get("consumers"))
                    return rows
            except requests.RequestException:
                continue
        return []

    def queue_depth(self, name: str) -> int | None:
        for row in self.queue_rows():
            if row["name"] == name:
                return row.get("messages", 0)
        return None

    def node_of(self, name: str | None):
        for node in self.nodes:
            if node.node == name or node.name == name:
                return node
        raise RuntimeError(f"no node of ours leads the queues (management answered: {name!r})")

    def wait_member(self, node):
        """Until the node serves AMQP again and every other running node counts it a member."""
        until(lambda: port_open(node.port), f"{node.node} to listen", 180)
        others = [n for n in self.nodes if n is not node and port_open(n.port)]
        if others:
            until(lambda: node.node in others[0].cluster_members(), f"{node.node} to rejoin", 180)
