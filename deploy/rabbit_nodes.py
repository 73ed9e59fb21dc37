"""Extra RabbitMQ nodes on this machine, beside the system broker: a cluster, or a department's
own broker.

The system broker's ``rabbitmq.conf`` pins its listener to 5672 and its node name to
``rabbit@localhost``, so each extra node gets its own config file (listener, management port),
node name, distribution port and data/log folders under ``var/rabbit/<name>/``, owned by the
``rabbitmq`` user (RabbitMQ refuses to start otherwise). Nodes are started with Debian's
``rabbitmq-server`` and driven with ``rabbitmqctl -n <name>@localhost``.

    python -m deploy.rabbit_nodes cluster start      # three nodes joined: dcg-a, dcg-b, dcg-c
    python -m deploy.rabbit_nodes cluster status
    python -m deploy.rabbit_nodes cluster stop
    python -m deploy.rabbit_nodes node start police-broker --port 5711
    python -m deploy.rabbit_nodes node stop police-broker

Ports: AMQP ``port``, management ``port + 10000``, Erlang distribution ``port + 20000``.
"""
from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = Path(os.environ.get("DCG_RABBIT_NODES_DIR", ROOT / "var" / "rabbit"))
CLUSTER = ("dcg-a", "dcg-b", "dcg-c")
CLUSTER_FIRST_PORT = 5701
PLUGINS = ("rabbitmq_management", "rabbitmq_shovel", "rabbitmq_shovel_management")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Node:
    """One RabbitMQ node of the project's, on its own ports and folders."""
    name: str
    port: int
    base: Path = field(default=BASE)

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    @property
    def management_port(self) -> int:
        return self.port + 10000

    @property
    def dist_port(self) -> int:
        return self.port + 20000

    @property
    def home(self) -> Path:
        return self.base / self.name

    @property
    def pid_file(self) -> Path:
        return self.home / "mnesia" / f"{self.node}.pid"

    def uri(self, user="guest", password="guest", vhost="%2F", scheme="amqp") -> str:
        return f"{scheme}://{user}:{password}@127.0.0.1:{self.port}/{vhost}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    # ------------------------------------------------------------------ files
    def write_files(self):
        self.home.mkdir(parents=True, exist_ok=True)
        for sub in ("mnesia", "log"):
            (self.home / sub).mkdir(exist_ok=True)
        (self.home / "rabbitmq.conf").write_text(
            f"# written by deploy/rabbit_nodes.py for {self.node}\n"
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            f"management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.management_port}\n"
            "loopback_users.guest = true\n"
            # a quorum queue's members need a majority; keep the default disk and memory limits
        )
        (self.home / "enabled_plugins").write_text("[" + ",".join(PLUGINS) + "].\n")
        try:
            user = pwd.getpwnam("rabbitmq")
        except KeyError:
            return
        if os.geteuid() == 0:
            for path in [self.base, *self.home.rglob("*"), self.home]:
                os.chown(path, user.pw_uid, user.pw_gid)

    def env(self) -> dict:
        return {**os.environ,
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq"),
                "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.home / "log"),
                "RABBITMQ_PID_FILE": str(self.pid_file),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins")}

    # ------------------------------------------------------------- lifecycle
    def ctl(self, *args: str, check=True, timeout=120) -> subprocess.CompletedProcess:
        result = subprocess.run(["rabbitmqctl", "-q", "-n", self.node, *args], env=self.env(),
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {self.node} {' '.join(args)}: "
                               f"{(result.stderr or result.stdout).strip()[:500]}")
        return result

    def running(self) -> bool:
        return port_open(self.port) and self.ctl("ping", check=False, timeout=30).returncode == 0

    def launch(self):
        """Start the node in the background without waiting (no-op when it already runs)."""
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("RabbitMQ is not installed (apt-get install -y rabbitmq-server)")
        if port_open(self.port):
            return
        self.write_files()
        log = open(self.home / "log" / "console.log", "ab")
        subprocess.Popen(["rabbitmq-server"], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.home)

    def start(self, wait: float = 120.0) -> "Node":
        """Start the node in the background (no-op when it already runs) and wait until it serves."""
        self.launch()
        self.wait_up(wait)
        return self

    def wait_up(self, wait: float = 120.0):
        deadline = time.time() + wait
        while time.time() < deadline:
            if port_open(self.port) and port_open(self.management_port):
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.node} did not come up on :{self.port} (log: {self.home / 'log'})")

    def stop(self):
        """Stop the node cleanly (rabbitmqctl stop); SIGKILL if that fails."""
        if not port_open(self.port) and not self.pid():
            return
        if self.ctl("stop", check=False).returncode != 0:
            self.kill()
        deadline = time.time() + 60
        while port_open(self.port) and time.time() < deadline:
            time.sleep(0.5)

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def kill(self):
        """SIGKILL the node's Erlang VM, as a crash would."""
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 30
        while port_open(self.port) and time.time() < deadline:
            time.sleep(0.2)

    def stop_app(self):
        self.ctl("stop_app")

    def start_app(self):
        self.ctl("start_app")
        self.ctl("await_startup", check=False)

    def join(self, other: "Node"):
        """Make this (fresh or reset) node a member of ``other``'s cluster."""
        self.ctl("stop_app")
        self.ctl("reset")
        self.ctl("join_cluster", other.node)
        self.ctl("start_app")

    def cluster_members(self) -> list[str]:
        """Running members as this node sees them."""
        result = self.ctl("eval", "rabbit_nodes:all_running().", check=False, timeout=30)
        text = result.stdout.strip().strip("[]")
        return sorted(part.strip().strip("'") for part in text.split(",") if part.strip())


class Cluster:
    """Three (or more) nodes joined into one cluster, on consecutive ports."""

    def __init__(self, names=CLUSTER, first_port=CLUSTER_FIRST_PORT, base: Path = BASE):
        self.nodes = [Node(name, first_port + i, base) for i, name in enumerate(names)]

    def start(self) -> "Cluster":
        first, *rest = self.nodes
        for node in self.nodes:          # boot in parallel: each takes 20-40 s on 2 cores
            node.launch()
        for node in self.nodes:
            node.wait_up(180)
        members = first.cluster_members()
        for node in rest:
            if node.node not in members:
                node.join(first)
        return self

    def stop(self):
        """Stop every node, all at once (``rabbitmqctl stop`` in parallel; SIGKILL what stays)."""
        running = [node for node in self.nodes if port_open(node.port) or node.pid()]
        stops = [(node, subprocess.Popen(["rabbitmqctl", "-q", "-n", node.node, "stop"], env=node.env(),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                 for node in running]
        for node, proc in stops:
            try:
                if proc.wait(timeout=120) != 0:
                    node.kill()
            except subprocess.TimeoutExpired:
                proc.kill()
                node.kill()
        for node in running:
            deadline = time.time() + 60
            while port_open(node.port) and time.time() < deadline:
                time.sleep(0.5)

    def status(self) -> list[dict]:
        return [{"node": n.node, "port": n.port, "management": n.management_url,
                 "running": port_open(n.port),
                 "members": n.cluster_members() if port_open(n.port) else []} for n in self.nodes]

    def uris(self, user="guest", password="guest", vhost="%2F", scheme="pyamqp") -> list[str]:
        return [n.uri(user, password, vhost, scheme) for n in self.nodes]

    def amqp_uri(self, user="guest", password="guest", vhost="%2F", scheme="pyamqp") -> str:
        """kombu's failover form: the nodes' URLs joined by ';'."""
        return ";".join(self.uris(user, password, vhost, scheme))

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name or n.node == name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.rabbit_nodes", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cluster = sub.add_parser("cluster", help="the three-node cluster dcg-a/b/c on 5701-5703")
    cluster.add_argument("action", choices=["start", "stop", "status"])
    one = sub.add_parser("node", help="one standalone node (e.g. a department's own broker)")
    one.add_argument("action", choices=["start", "stop", "status"])
    one.add_argument("name")
    one.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.what == "cluster":
        group = Cluster()
        if args.action == "start":
            group.start()
            print("cluster: " + ", ".join(f"{n.node} amqp :{n.port} management {n.management_url}"
                                          for n in group.nodes))
            print("AMQP_URI=" + group.amqp_uri())
        elif args.action == "stop":
            group.stop()
            print("cluster stopped")
        else:
            for row in group.status():
                print(f"{row['node']:<16} :{row['port']} {'running' if row['running'] else 'down':<8} "
                      f"members {', '.join(row['members']) or '-'}")
        return 0
    node = Node(args.name, args.port)
    if args.action == "start":
        node.start()
        print(f"{node.node}: amqp :{node.port}, management {node.management_url}")
    elif args.action == "stop":
        node.stop()
        print(f"{node.node} stopped")
    else:
        print(f"{node.node}: {'running' if node.running() else 'down'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
