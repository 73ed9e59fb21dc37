"""The embedded store of `make run` (mongoeco) on the real wire protocol: it listens on
127.0.0.1 only, and with EMBEDDED_STORE_PASSWORD a client without the password can neither
read nor write (before, anyone reaching the port could read `accounts` and mint a key)."""
import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from tests.conftest import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store():
    port, password = free_port(), "s3cret-for-this-test"
    proc = subprocess.Popen([str(ROOT / ".venv-store" / "bin" / "python"), str(ROOT / "deploy" / "embedded_store.py"),
                             "--memory", "--port", str(port)],
                            env={**os.environ, "EMBEDDED_STORE_PASSWORD": password},
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while not port_open(port):
        assert proc.poll() is None and time.time() < deadline, "the embedded store did not start"
        time.sleep(0.1)
    yield port, password
    proc.terminate()
    proc.wait(10)


def client(uri):
    return MongoClient(uri, serverSelectionTimeoutMS=3000)


def test_the_embedded_store_requires_the_password(store):
    port, password = store
    good = client(f"mongodb://dcg:{quote(password)}@127.0.0.1:{port}/?directConnection=true&authSource=admin&authMechanism=SCRAM-SHA-256")
    good["dcg_gateway"]["accounts"].insert_one({"_id": "k1", "role": "operator"})
    assert good["dcg_gateway"]["accounts"].find_one({"_id": "k1"})["role"] == "operator"
    good.close()
    anonymous = client(f"mongodb://127.0.0.1:{port}/?directConnection=true")
    with pytest.raises(OperationFailure):
        anonymous["dcg_gateway"]["accounts"].find_one({})
    with pytest.raises(OperationFailure):
        anonymous["dcg_gateway"]["accounts"].insert_one({"_id": "minted", "role": "admin"})
    anonymous.close()
    wrong = client(f"mongodb://dcg:wrong@127.0.0.1:{port}/?directConnection=true&authSource=admin&authMechanism=SCRAM-SHA-256")
    with pytest.raises(PyMongoError):
        wrong["dcg_gateway"]["accounts"].find_one({})
    wrong.close()


def test_the_embedded_store_listens_on_loopback_only(store):
    port, _ = store
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            outside = probe.getsockname()[0]
        except OSError:
            pytest.skip("no non-loopback address")
    if outside.startswith("127."):
        pytest.skip("no non-loopback address")
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex((outside, port)) != 0
