"""An isolated copy of the whole platform for the benchmark and the fault suite.

Its own RabbitMQ vhost (created through the management API and deleted afterwards), its own
database prefix, and — unless MONGO_URI is set — its own embedded store (SQLite, as `make run`
uses, or memory). Every service and department program is a real process.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import requests

from deploy.run_platform import port_open as _port_open
from deploy.run_platform import wait_for

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STORE_PYTHON = ROOT / ".venv-store" / "bin" / "python"
SERVICES = {"intake": "intake", "dispatch": "dispatch", "coordination": "enforcement_coordination",
            "scoring": "scoring", "participation": "participation", "gateway": "gateway"}
DEPARTMENTS = ["police", "environment", "transport", "construction"]
MANAGEMENT = os.environ.get("RABBIT_MANAGEMENT_URL", "http://127.0.0.1:15672").rstrip("/")
MGMT_AUTH = (os.environ.get("RABBIT_MANAGEMENT_USER", "guest"), os.environ.get("RABBIT_MANAGEMENT_PASSWORD", "guest"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host="127.0.0.1") -> bool:
    return _port_open(host, port)


# the platform's own outbox poll and heartbeat, for stacks that measure (bench, chaos, the year's
# index start); the Stack's defaults are the test suite's fast ones (a heartbeat a second)
PLATFORM_ENV = {"OUTBOX_POLL_SECONDS": "30", "HEARTBEAT_SECONDS": "10"}


class Stack:
    def __init__(self, name="bench", store="sqlite", department_env=None, workdir=None, env=None,
                 amqp_hosts=None, management=None, db_prefix=None, start_seconds=60):
        # amqp_hosts: ["127.0.0.1:5701", …] for a cluster (every program gets the node list);
        # management: that cluster's management URL (default: the system broker's)
        self.amqp_hosts = list(amqp_hosts or ["127.0.0.1:5672"])
        self.management = (management or MANAGEMENT).rstrip("/")
        self.tag = f"{name}-{uuid.uuid4().hex[:6]}"
        self.db_prefix = db_prefix or f"{self.tag.replace('-', '_')}_"     # bench.year_load fixes it
        self.vhost = f"dcg-{self.tag}"
        self.store_mode = store
        self.workdir = Path(workdir or ROOT / "var" / name / self.tag)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.department_env = department_env or {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.store_port = None
        self.gateway_port = free_port()
        self.extra_env = dict(env or {})       # its own copy: callers may add to it
        self.start_seconds = start_seconds    # for the gateway to listen (every service: 30 s more)
        self.env = {}

    # ------------------------------------------------------------ lifecycle
    def start(self):
        quoted = quote(self.vhost, safe="")
        requests.put(f"{self.management}/api/vhosts/{quoted}", auth=MGMT_AUTH, timeout=10).raise_for_status()
        requests.put(f"{self.management}/api/permissions/{quoted}/{MGMT_AUTH[0]}", auth=MGMT_AUTH, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        mongo_uri = os.environ.get("MONGO_URI")
        if not mongo_uri:
            self.start_store()
            mongo_uri = f"mongodb://127.0.0.1:{self.store_port}/?directConnection=true"
        self.env = {
            **os.environ, "PYTHONPATH": str(ROOT),
            "AMQP_URI": self.amqp_uri("pyamqp"), "RABBIT_MANAGEMENT_URL": self.management,
            "MONGO_URI": mongo_uri, "DB_PREFIX": self.db_prefix,
            "GATEWAY_PORT": str(self.gateway_port), "LOG_LEVEL": "WARNING",
            "OUTBOX_POLL_SECONDS": "0.2", "HEARTBEAT_SECONDS": "1",
            "DEPT_TRUSTED_USERS": "guest",      # its department programs connect as guest
            **self.extra_env,
        }
        from shared.config import load_config
        from shared.messaging import topology
        self.config = load_config(environ=self.env)
        topology.apply(self.config)
        for name in SERVICES:
            self.start_service(name)
        for dept in DEPARTMENTS:
            self.start_department(dept)
        wait_for(lambda: port_open(self.gateway_port), "the gateway", self.start_seconds)
        wait_for(self.all_up, "every service", self.start_seconds + 30)
        return self

    def start_store(self):
        self.store_port = self.store_port or free_port()
        argv = [str(STORE_PYTHON), str(ROOT / "deploy" / "embedded_store.py"), "--port", str(self.store_port)]
        argv += ["--memory"] if self.store_mode == "memory" else ["--data", str(self.workdir / "mongo")]
        self.procs["store"] = self._spawn("store", argv, os.environ)
        wait_for(lambda: port_open(self.store_port), "the embedded store")

    def start_service(self, name):
        if not hasattr(self, "metrics_ports"):
            self.metrics_ports = {}
        port = self.metrics_ports.setdefault(name, free_port())     # Prometheus, read by bench
        self.procs[name] = self._spawn(name, [PYTHON, "-m", f"services.{SERVICES[name]}"],
                                       {**self.env, "METRICS_PORT": str(port)})

    def start_department(self, dept):
        env = {**self.env, "DEPT_AMQP_URL": self.amqp_uri("amqp"), "DEPT_HISTORY_DIR": str(self.workdir / "departments"),
               "DEPT_CHECKIN_SECONDS": "1", "DEPT_ACTION_SECONDS": "1", "DEPT_DISPOSE_SECONDS": "1",
               **self.department_env}
        self.procs[f"dept-{dept}"] = self._spawn(f"dept-{dept}", [PYTHON, "-m", f"departments.{dept}"], env)

    def _spawn(self, name, argv, env):
        log = open(self.workdir / f"{name}.log", "ab")
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def kill(self, name, sig=signal.SIGKILL):
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(30)

    def all_up(self) -> bool:
        try:
            return requests.get(f"{self.gateway}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    @property
    def gateway(self):
        return f"http://127.0.0.1:{self.gateway_port}"

    def db(self, service):
        from shared.storage import mongo_client
        if not hasattr(self, "_client"):
            self._client = mongo_client(self.config["MONGO_URI"])
        return self._client[f"{self.config['DB_PREFIX']}{service}"]

    def operator_key(self) -> str:
        """An operator account for the load generators (the gateway authenticates every call)."""
        from services.gateway import auth
        return auth.new_key(self.db("gateway")["accounts"], "压测值班员 bench operator", "operator")

    def stop(self):
        if hasattr(self, "_client"):      # before the store goes: closing asks it to end sessions,
            self._client.close()          # which waits out server selection (30 s) once it is gone
            del self._client
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        requests.delete(f"{self.management}/api/vhosts/{quote(self.vhost, safe='')}", auth=MGMT_AUTH, timeout=30)

    def amqp_uri(self, scheme: str) -> str:
        return ";".join(f"{scheme}://guest:guest@{host}/{quote(self.vhost, safe='')}" for host in self.amqp_hosts)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:          # a stack that did not come up leaves no process behind
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
