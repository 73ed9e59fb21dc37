"""Stop a consumer service in the middle of a stream of events — SIGKILL (a crash) or SIGTERM
(a rolling upgrade) — and start it again: every case is in its right state, none lost, none
applied twice. Real broker, real store, real process."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.scoring.service import ScoringService
from tests.factories import case_registered
from tests.helpers import drain, observer, publish, wait_until

ROOT = Path(__file__).resolve().parents[2]
N = 80


def start_dispatch(test_env, log_path):
    return subprocess.Popen([sys.executable, "-m", "services.dispatch"], cwd=ROOT,
                            env={**os.environ, **test_env, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"},
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)


@pytest.fixture
def dispatch_process(test_env, config, tmp_path):
    procs = []

    def start():
        proc = start_dispatch(test_env, tmp_path / "dispatch.log")
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_restart_mid_stream_loses_nothing_and_applies_nothing_twice(
        stop_signal, dispatch_process, container_factory, config, db):
    container_factory(ScoringService, config).start()
    wire = observer(config, "dispatch.events", "case_dispatched")
    events = [case_registered(owner="street.tianshengjie") for _ in range(N)]
    cases = db("dispatch").cases

    proc = dispatch_process()
    sender = threading.Thread(target=lambda: [
        (publish(config, "intake.events", "case_registered", event), time.sleep(0.02)) for event in events])
    sender.start()
    wait_until(lambda: cases.count_documents({}) >= 15, timeout=60, what="dispatch to get going")
    proc.send_signal(stop_signal)
    proc.wait(30)
    done_at_kill = cases.count_documents({})
    assert done_at_kill < N, "the kill must land in the middle of the stream"

    dispatch_process()                                  # restart
    sender.join(60)
    wait_until(lambda: cases.count_documents({}) == N and cases.count_documents({"_pending": True}) == 0,
               timeout=90, what="every case dispatched and relayed")

    case_ids = {event["payload"]["case_id"] for event in events}
    docs = list(cases.find({}))
    assert {doc["_id"] for doc in docs} == case_ids                         # none lost
    assert all(doc["_version"] == 1 and [n["kind"] for n in doc["notifications"]].count("dispatch") == 1
               and len({n["id"] for n in doc["notifications"]}) == len(doc["notifications"])
               for doc in docs)                                                   # none twice

    scored = db("scoring").events
    wait_until(lambda: scored.count_documents({"type": "case_dispatched"}) == N, timeout=30,
               what="scoring to see every dispatch")
    per_case = list(scored.aggregate([{"$match": {"type": "case_dispatched"}},
                                      {"$group": {"_id": "$correlation_id", "n": {"$sum": 1}}}]))
    assert {row["_id"] for row in per_case} == case_ids and all(row["n"] == 1 for row in per_case)

    # On the wire a redelivered event carries the same id, so consumers drop the copy.
    seen = [body["event_id"] for body, _ in drain(config, wire)]
    assert set(seen) == {f"{case_id}.dispatched.1" for case_id in case_ids}
    assert drain(config, "dispatch.case-registered.dlq") == []


def test_a_second_stop_signal_does_not_hang_the_service(dispatch_process, db):
    """make run's Ctrl-C and a TERM together reached each service twice; nameko's stop is not
    re-entrant and the second one left the service hanging for ever. It stops once, promptly."""
    proc = dispatch_process()
    wait_until(lambda: db("platform").heartbeats.count_documents({"service": "dispatch", "pid": proc.pid}) >= 1,
               timeout=60, what="dispatch to start")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
