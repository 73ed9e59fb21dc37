"""Test harness: real RabbitMQ and a real (embedded or MONGO_URI) MongoDB-wire server.

- the store: MONGO_URI if set; otherwise the embedded mongoeco server, started once per session
  in memory on a free port;
- the broker: the local RabbitMQ (AMQP_URI / management API); every test gets its own vhost,
  created through the management API and deleted afterwards, with the topology applied;
- every test gets its own database prefix.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402 - before anything opens a socket

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.config import load_config  # noqa: E402
from shared.messaging import topology  # noqa: E402
from shared.storage import mongo_client  # noqa: E402

MANAGEMENT = os.environ.get("RABBIT_MANAGEMENT_URL", "http://127.0.0.1:15672").rstrip("/")
MGMT_AUTH = (os.environ.get("RABBIT_MANAGEMENT_USER", "guest"),
             os.environ.get("RABBIT_MANAGEMENT_PASSWORD", "guest"))
AMQP_HOSTPORT = os.environ.get("TEST_AMQP_HOSTPORT", "127.0.0.1:5672")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def embedded_store(*args, env=None):
    """Start the embedded store with ``args`` (``--memory`` or ``--data DIR``); yield its URI,
    then stop it (the body of a store fixture)."""
    port = free_port()
    proc = subprocess.Popen([str(ROOT / ".venv-store" / "bin" / "python"),
                             str(ROOT / "deploy" / "embedded_store.py"), *args, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 30
    while not port_open(port):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("the embedded store did not start (make store-venv)")
        time.sleep(0.1)
    yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def store_uri():
    if os.environ.get("MONGO_URI"):
        yield os.environ["MONGO_URI"]
        return
    yield from embedded_store("--memory")


@pytest.fixture
def vhost():
    name = f"dcg-test-{uuid.uuid4().hex[:10]}"
    quoted = quote(name, safe="")
    requests.put(f"{MANAGEMENT}/api/vhosts/{quoted}", auth=MGMT_AUTH, timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/api/permissions/{quoted}/{MGMT_AUTH[0]}", auth=MGMT_AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    yield name
    requests.delete(f"{MANAGEMENT}/api/vhosts/{quoted}", auth=MGMT_AUTH, timeout=30)


@pytest.fixture
def test_env(vhost, store_uri):
    """Environment variables that point a service (in-process or a subprocess) at this test."""
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    env = {
        "AMQP_URI": f"pyamqp://guest:guest@{AMQP_HOSTPORT}/{quote(vhost, safe='')}",
        "MONGO_URI": store_uri,
        "DB_PREFIX": prefix,
        "RETRY_DELAYS_MS": "200,400",
        "OUTBOX_POLL_SECONDS": "0.2",
        "OUTBOX_LEASE_SECONDS": "2",
        "HEARTBEAT_SECONDS": "0.5",
        "RABBIT_MANAGEMENT_URL": MANAGEMENT,
        # the department programs in tests connect as guest (the broker-security tests use
        # real per-department users)
        "DEPT_TRUSTED_USERS": "guest",
    }
    yield env
    client = mongo_client(store_uri)
    try:
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)
    finally:
        client.close()


@pytest.fixture
def config(test_env):
    cfg = load_config(environ={**os.environ, **test_env})
    topology.apply(cfg)
    return cfg


@pytest.fixture
def mongo(store_uri):
    client = mongo_client(store_uri)
    yield client
    client.close()


@pytest.fixture
def db(mongo, config):
    """db("dispatch") → that service's database in this test."""
    return lambda service: mongo[f"{config['DB_PREFIX']}{service}"]
