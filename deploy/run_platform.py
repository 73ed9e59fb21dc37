"""``make run``: the whole platform on one machine, each service and department its own process.

Starts the embedded store unless MONGO_URI is set, applies the topology, starts intake,
dispatch, coordination, scoring, the gateway and the department programs, prints where to
look, and stays in the foreground. Ctrl-C stops everything cleanly.

``make cluster`` (``--cluster``): the same platform on a three-node RabbitMQ cluster on this
machine (deploy/rabbit_nodes.py: dcg-a/b/c on 5701-5703), with QUEUE_TYPE=quorum; every
program gets the node list and fails over when its node dies. Ctrl-C stops the platform and
leaves the nodes running (``make cluster-stop`` stops them).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STORE_PYTHON = ROOT / ".venv-store" / "bin" / "python"

SERVICES = ["intake", "dispatch", "enforcement_coordination", "scoring", "participation", "gateway"]
DEPARTMENTS = ["police", "environment", "transport", "construction"]
METRICS_BASE = int(os.environ.get("METRICS_BASE_PORT", 9100))   # intake :9101 … gateway :9106


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for(check, what: str, seconds: float = 60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise SystemExit(f"{what} did not come up in {seconds:.0f}s")


DEMO_ACCOUNTS = [   # name, role, unit / department
    ("指挥中心值班员", "operator", None), ("区领导", "leader", None), ("网格员 小李", "inspector", None),
    ("天生街道 处置员", "unit", "street.tianshengjie"), ("区公安分局 联络员", "partner", "police"),
    ("市民 App", "citizen", None),
]


def demo_accounts(config) -> Path:
    """On the first start, one account per role for trying the platform. The keys go to a
    git-ignored file (var/secrets/demo-accounts.txt); nothing secret is in the repository."""
    from services.gateway.auth import new_key
    from services.gateway.accounts import accounts_collection
    from shared.storage import mongo_client
    path = ROOT / "var" / "secrets" / "demo-accounts.txt"
    client = mongo_client(config["MONGO_URI"])
    try:
        accounts = accounts_collection(client, config)
        if path.exists() and accounts.count_documents({}) > 0:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# 演示账号 demo accounts — keys are shown only here; revoke with",
                 "#   .venv/bin/python -m services.gateway.accounts revoke <key id>"]
        for name, role, scope in [("管理员", "admin", None)] + DEMO_ACCOUNTS:
            key = new_key(accounts, name, role, unit_id=scope if role == "unit" else None,
                          department=scope if role == "partner" else None)
            lines.append(f"{role:10} {name:14} {key}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path
    finally:
        client.close()


def store_password() -> str:
    """The embedded store's password: kept in var/secrets/store.json (0600), made on first use."""
    import json
    import secrets
    from shared.config import STORE_SECRET
    path = STORE_SECRET
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))["password"]
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"user": "dcg", "password": password}, handle)
    return password


def admin_env() -> dict:
    """The broker administrator, only for the commands that create users (local: guest)."""
    return {"RABBIT_ADMIN_USER": os.environ.get("RABBIT_ADMIN_USER") or os.environ.get("RABBIT_MANAGEMENT_USER")
            or "guest",
            "RABBIT_ADMIN_PASSWORD": os.environ.get("RABBIT_ADMIN_PASSWORD")
            or os.environ.get("RABBIT_MANAGEMENT_PASSWORD") or "guest"}


def platform_broker_user(env: dict) -> str:
    """The local broker: the platform connects as its own user (shared.broker_users platform),
    not as guest. guest (or RABBIT_ADMIN_USER) only creates the users. Sets AMQP_URI and the
    management user in ``env``; returns the file that keeps the credentials."""
    from shared import broker_users
    from shared.config import load_config
    row = broker_users.apply_platform(load_config(environ=env), environ={**env, **admin_env()})
    env["AMQP_URI"] = row["amqp_uri"]
    env["RABBIT_MANAGEMENT_USER"], env["RABBIT_MANAGEMENT_PASSWORD"] = row["username"], row["password"]
    return row["secret_file"]


def start_cluster(env: dict):
    """Start (or find running) the three nodes, and point ``env`` at all of them."""
    from deploy.rabbit_nodes import Cluster
    cluster = Cluster()
    print("启动 RabbitMQ 集群 starting the three-node RabbitMQ cluster "
          f"({', '.join(n.node for n in cluster.nodes)}; about a minute the first time) …", flush=True)
    cluster.start()
    env["AMQP_URI"] = cluster.amqp_uri()          # guest: only to create the platform's own user
    env["RABBIT_MANAGEMENT_URL"] = ";".join(n.management_url for n in cluster.nodes)
    env["QUEUE_TYPE"] = "quorum"
    return cluster


def operator_key(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("operator "):
            return line.split()[-1]
    return "(see the file)"


def main():
    sys.path.insert(0, str(ROOT))
    cluster = start_cluster(os.environ) if "--cluster" in sys.argv[1:] else None
    from shared.logs import open_log_file
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    logs = ROOT / "var" / "log"
    logs.mkdir(parents=True, exist_ok=True)
    children: list[tuple[str, subprocess.Popen]] = []

    def spawn(name, argv, extra_env=None):
        log_file = open_log_file(logs / f"{name}.log")      # mode 0640 (shared/logs.py)
        proc = subprocess.Popen(argv, cwd=ROOT, env={**env, **(extra_env or {})},
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        children.append((name, proc))
        return proc

    stopping = []

    def stop_all(*_):
        if stopping:                  # Ctrl-C and a TERM together: stop once, not twice
            return
        stopping.append(True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\n正在停止 … stopping", flush=True)
        # every program first, the store last (the services still write while they stop)
        for group in ([c for c in children if c[0] != "store"], [c for c in children if c[0] == "store"]):
            for name, proc in reversed(group):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for name, proc in reversed(group):
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    print(f"进程 {name} 未在 20 秒内停止，强制结束 (killed)", flush=True)
                    proc.kill()
        print("已停止 stopped.", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    if not env.get("MONGO_URI"):
        port = int(env.get("EMBEDDED_STORE_PORT", 27017))
        password = store_password()
        if not port_open("127.0.0.1", port):
            spawn("store", [str(STORE_PYTHON), "deploy/embedded_store.py", "--port", str(port),
                            "--data", str(ROOT / "var" / "mongo")], {"EMBEDDED_STORE_PASSWORD": password})
            wait_for(lambda: port_open("127.0.0.1", port), "the embedded store")
        from shared.config import embedded_store_uri
        env["MONGO_URI"] = embedded_store_uri(password, port)
        store_note = ("embedded store (mongoeco emulator, one machine only), data in var/mongo, "
                      "127.0.0.1 only, password in var/secrets/store.json")
    else:
        store_note = "MongoDB at MONGO_URI"

    sys.path.insert(0, str(ROOT))
    if cluster is not None:
        env.update({key: os.environ[key] for key in ("AMQP_URI", "RABBIT_MANAGEMENT_URL", "QUEUE_TYPE")})
    local_broker = cluster is not None or not os.environ.get("AMQP_URI")
    broker_note = "AMQP_URI"
    if local_broker:
        broker_note = f"own user, credentials in {Path(platform_broker_user(env)).relative_to(ROOT)}"
    from shared.config import load_config
    from shared.messaging import topology
    config = load_config(environ=env)
    topology.apply(config)
    accounts_file = demo_accounts(config)
    open311_key = subprocess.run(
        [PYTHON, "-m", "services.gateway.accounts", "ensure", "--role", "citizen", "--name", "Open311 演示应用",
         "--file", "var/secrets/open311-demo.key"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()

    for number, service in enumerate(SERVICES, start=1):
        spawn(service, [PYTHON, "-m", f"services.{service}"],
              {"METRICS_PORT": str(METRICS_BASE + number)})
    if local_broker:
        # each department program connects as its own broker user (read only its inbox,
        # publish only its replies); passwords go to var/secrets/departments/ (git-ignored)
        subprocess.run([PYTHON, "-m", "shared.broker_users", "apply"], cwd=ROOT, check=True,
                       env={**env, **admin_env()},
                       stdout=subprocess.DEVNULL)
    for dept in DEPARTMENTS:
        spawn(f"dept-{dept}", [PYTHON, "-m", f"departments.{dept}"])
    if not env.get("SMS_ACCESS_KEY_SECRET"):     # no real SMS provider configured: the local stand-in
        from bridges.sms_gateway import local_secret
        env.update(local_secret())
        spawn("sms-gateway", [PYTHON, "-m", "bridges.sms_gateway"])
    spawn("sms-sender", [PYTHON, "-m", "bridges.sms_sender"])

    gateway = f"http://{config['GATEWAY_HOST']}:{config['GATEWAY_PORT']}"
    wait_for(lambda: port_open(config["GATEWAY_HOST"], int(config["GATEWAY_PORT"])), "the gateway")
    if cluster is not None:
        print(cluster_banner(cluster), flush=True)
    print(f"""
大城管联合指挥平台 已启动 — the platform is running
  指挥中心 command centre {gateway}/   inspector page: {gateway}/inspector
  登录 log in           an API key from {accounts_file.relative_to(ROOT)}
                        e.g. the operator's: {operator_key(accounts_file)}
  Open311 api_key       {open311_key}   ({gateway}/open311/v2/discovery.json)
  网关 gateway          {gateway}      (health: {gateway}/health)
  RabbitMQ 管理界面      {config['RABBIT_MANAGEMENT_URL']}   (platform broker user: {broker_note})
  存储 store            {store_note}
  短信 SMS              {config['SMS_GATEWAY_URL']} (stand-in: each SMS in var/sms/); sent: python -m bridges.sms_sender --show 20
  日志 logs             var/log/<process>.log   (JSON lines, with correlation ids)
  指标 metrics          http://127.0.0.1:{METRICS_BASE + 1}/metrics … :{METRICS_BASE + len(SERVICES)} (Prometheus)
按 Ctrl-C 停止 — press Ctrl-C to stop.
""", flush=True)
    while True:
        for name, proc in children:
            if proc.poll() is not None:
                print(f"进程 {name} 已退出 (exit {proc.returncode}); see var/log/{name}.log — restarting",
                      flush=True)
                children.remove((name, proc))
                argv = proc.args
                spawn(name, argv)
                break
        time.sleep(1)


def cluster_banner(cluster) -> str:
    nodes = "\n".join(f"    {n.node:<16} amqp 127.0.0.1:{n.port}  管理 {n.management_url}" for n in cluster.nodes)
    return f"""
RabbitMQ 集群 three-node cluster (QUEUE_TYPE=quorum: every queue replicated on three nodes)
{nodes}
  every service, relay and department program has the node list and fails over when its node
  dies; try: .venv/bin/python -m deploy.rabbit_nodes cluster status
  Ctrl-C stops the platform, not the nodes; `make cluster-stop` stops the nodes."""


if __name__ == "__main__":
    main()
