"""A service run as its own process writes JSON log lines that carry the correlation id of
the case it handled, serves Prometheus metrics of what it did, and dumps its green threads'
stacks on SIGUSR2."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import free_port
from tests.factories import case_registered
from tests.helpers import publish, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_logs_follow_the_case_and_metrics_count_the_work(test_env, config, db, tmp_path):
    port = free_port()
    log_path = tmp_path / "dispatch.log"
    proc = subprocess.Popen([sys.executable, "-m", "services.dispatch"], cwd=ROOT,
                            env={**os.environ, **test_env, "PYTHONPATH": str(ROOT),
                                 "METRICS_PORT": str(port), "LOG_LEVEL": "INFO"},
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    try:
        good = case_registered()
        bad = case_registered()
        del bad["payload"]["owner_unit"]
        publish(config, "intake.events", "case_registered", good)
        publish(config, "intake.events", "case_registered", bad)
        case_id = good["payload"]["case_id"]
        wait_until(lambda: db("dispatch").cases.find_one({"_id": case_id, "_pending": False}),
                   timeout=30, what="the case to be dispatched and relayed")

        def metrics():
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                return None
            wanted = ('dcg_messages_total{outcome="ok",queue="dispatch.case-registered",service="dispatch"} 1.0',
                      'dcg_messages_total{outcome="invalid",queue="dispatch.case-registered",service="dispatch"} 1.0',
                      'dcg_dead_letters_total{error_type="validation",queue="dispatch.case-registered",service="dispatch"} 1.0')
            return text if all(line in text for line in wanted) else None
        text = wait_until(metrics, timeout=15, what="the metrics")
        assert 'dcg_outbox_published_total{service="dispatch"} 2.0' in text   # dispatched + notified
        assert "dcg_handler_seconds_count" in text and "dcg_outbox_lag_seconds_count" in text

        # SIGUSR2: every green thread's stack into the log (a stuck service shows what it waits on)
        proc.send_signal(signal.SIGUSR2)
        wait_until(lambda: "--- end of green threads" in log_path.read_text(encoding="utf-8", errors="replace"),
                   timeout=10, what="the whole green-thread dump")
        assert "queue_consumer" in log_path.read_text(encoding="utf-8", errors="replace").lower() or \
            "kombu" in log_path.read_text(encoding="utf-8", errors="replace")
        assert proc.poll() is None, "the dump must not stop the service"
    finally:
        proc.terminate()
        proc.wait(20)
    lines = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()
             if line.startswith("{")]
    about_case = [line for line in lines if line.get("correlation_id") == case_id]
    assert about_case, "a log line must carry the case's correlation id"
    assert all(line["service"] == "dispatch" and "ts" in line and "level" in line for line in about_case)
