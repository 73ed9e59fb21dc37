"""What listens where: the metrics endpoint answers on 127.0.0.1 and not on the machine's other
addresses unless METRICS_HOST says so; the broker config ensure_broker writes binds management
(and AMQP) to 127.0.0.1."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def outside_address():
    """This machine's address on its network (not loopback), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))          # TEST-NET: nothing is sent
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def answers(host, port):
    try:
        return requests.get(f"http://{host}:{port}/metrics", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def serve_metrics(port, *host):
    code = ("import time; from shared import metrics; "
            f"metrics.serve({port}{', ' + repr(host[0]) if host else ''}); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    deadline = time.time() + 15
    while not answers("127.0.0.1", port) and time.time() < deadline:
        time.sleep(0.1)
    return proc


def test_metrics_listen_on_loopback_only_by_default():
    outside = outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address to try")
    port = free_port()
    proc = serve_metrics(port)
    try:
        assert answers("127.0.0.1", port)
        assert not answers(outside, port), f"metrics answered on {outside}"
    finally:
        proc.terminate()
        proc.wait(10)
    port = free_port()
    proc = serve_metrics(port, "0.0.0.0")                 # configured otherwise: METRICS_HOST
    try:
        assert answers(outside, port)
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_broker_config_ensure_broker_writes_binds_to_loopback(tmp_path):
    target = tmp_path / "rabbitmq.conf"
    result = subprocess.run(["bash", str(ROOT / "deploy" / "ensure_broker.sh")], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "BROKER_CONFIG_ONLY": "1", "BROKER_CONFIG": str(target)},
                            timeout=30)
    assert result.returncode == 0, result.stderr
    lines = {line.split("=")[0].strip(): line.split("=", 1)[1].strip()
             for line in target.read_text().splitlines() if "=" in line and not line.startswith("#")}
    assert lines["management.tcp.ip"] == "127.0.0.1"
    assert lines["listeners.tcp.1"] == "127.0.0.1:5672"
