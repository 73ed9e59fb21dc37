"""Store trips, counted by the processes themselves (``dcg_store_commands_total``, pymongo
command monitoring in shared.storage) and read from each service's /metrics:

- store writes and reads per case, per service, for street-owned cases and for cases that open
  a joint operation (each kind sent alone, the stack left to settle, counters compared);
- store operations per second while idle;
- confirmed publishes per case (``dcg_outbox_published_total``);
- a py-spy flame graph of the busiest process.
"""
from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

import requests

WRITES = ("insert", "update", "findAndModify", "delete")
READS = ("find", "aggregate")


def scrape(stack) -> dict:
    """{service: {"kinds": {kind: n}, "published": n}} from every service's /metrics."""
    result = {}
    for name, port in getattr(stack, "metrics_ports", {}).items():
        kinds, published = {}, 0.0
        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except requests.RequestException:
            continue
        for line in text.splitlines():
            if line.startswith("dcg_store_commands_total{"):
                labels, value = line.rsplit(" ", 1)
                kind = labels.split('kind="', 1)[1].split('"', 1)[0]
                kinds[kind] = kinds.get(kind, 0) + float(value)
            elif line.startswith("dcg_outbox_published_total{"):
                published += float(line.rsplit(" ", 1)[1])
        result[name] = {"kinds": kinds, "published": published}
    return result


def difference(after: dict, before: dict) -> dict:
    out = {}
    for name, entry in after.items():
        old = before.get(name, {"kinds": {}, "published": 0})
        kinds = {k: v - old["kinds"].get(k, 0) for k, v in entry["kinds"].items()}
        out[name] = {"kinds": {k: v for k, v in kinds.items() if v},
                     "published": entry["published"] - old["published"]}
    return out


def totals(diff: dict) -> dict:
    writes = sum(v for e in diff.values() for k, v in e["kinds"].items() if k in WRITES)
    reads = sum(v for e in diff.values() for k, v in e["kinds"].items() if k in READS)
    other = sum(v for e in diff.values() for k, v in e["kinds"].items() if k not in WRITES + READS)
    return {"writes": writes, "reads": reads, "other": other,
            "published": sum(e["published"] for e in diff.values())}


def per_case(diff: dict, cases: int) -> dict:
    """Writes, reads and confirmed publishes per case: the whole pipeline and per service."""
    whole = totals(diff)
    return {"cases": cases,
            "writes": round(whole["writes"] / cases, 1), "reads": round(whole["reads"] / cases, 1),
            "other": round(whole["other"] / cases, 1),
            "confirmed_publishes": round(whole["published"] / cases, 1),
            "per_service": {name: {"writes": round(sum(v for k, v in e["kinds"].items() if k in WRITES) / cases, 1),
                                   "reads": round(sum(v for k, v in e["kinds"].items() if k in READS) / cases, 1),
                                   "by_kind": {k: round(v / cases, 1) for k, v in sorted(e["kinds"].items())},
                                   "confirmed_publishes": round(e["published"] / cases, 1)}
                            for name, e in sorted(diff.items())}}


IDLE_WRITES = [1.0]      # writes per second the idle platform makes (heartbeats), set by idle()


def settle(stack, quiet_seconds=3.0, limit=90.0):
    """Wait until the services write no more than while idle for ``quiet_seconds``."""
    deadline = time.time() + limit
    last = totals(scrape(stack))["writes"]
    quiet_since = time.time()
    while time.time() < deadline:
        time.sleep(1.0)
        now = totals(scrape(stack))["writes"]
        if now - last > max(1.0, 1.5 * IDLE_WRITES[0]):     # more than idling writes
            quiet_since = time.time()
        last = now
        if time.time() - quiet_since >= quiet_seconds:
            return True
    return False


def idle(stack, seconds=30.0) -> dict:
    """Store operations per second of the whole platform while nothing happens."""
    settle(stack)
    before = scrape(stack)
    time.sleep(seconds)
    diff = difference(scrape(stack), before)
    per_service = {name: round(sum(e["kinds"].values()) / seconds, 2) for name, e in diff.items()}
    IDLE_WRITES[0] = totals(diff)["writes"] / seconds
    rates = {name: {k: v / seconds for k, v in e["kinds"].items()} for name, e in diff.items()}
    return {"seconds": seconds, "ops_per_s": round(sum(per_service.values()), 2), "per_service": per_service,
            "rates": rates}


def without_idle(diff: dict, idle_rates: dict, seconds: float) -> dict:
    """A window's counts minus what the idle platform would have done in the same time (its
    heartbeats and polls), so that a case's count is the case's alone."""
    out = {}
    for name, entry in diff.items():
        rates = idle_rates.get(name, {})
        out[name] = {"kinds": {k: max(0.0, v - rates.get(k, 0.0) * seconds) for k, v in entry["kinds"].items()},
                     "published": entry["published"]}
    return out


def trips_per_case(stack, district, joint: bool, count: int, rate=2.0, seed=11, idle_rates=None) -> dict:
    """Send ``count`` reports of one kind (joint classes, or street-order event classes) through
    the gateway and count every store trip until the stack is quiet again."""
    from bench.run import random_point
    rng = random.Random(seed)
    codes = [c["code"] for c in district.classes() if c.get("joint")] if joint else \
        [c["code"] for c in district.classes("event") if not c.get("joint")]
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + stack.operator_key()
    settle(stack)
    before = scrape(stack)
    began = time.time()
    accepted = 0
    for number in range(count):
        report = {"class_code": rng.choice(codes), "location": random_point(district, rng),
                  "description": "压测计数 store-trip count", "channel": "web"}
        answer = session.post(f"{stack.gateway}/api/reports", json=report, timeout=30)
        accepted += answer.status_code == 201
        time.sleep(1.0 / rate)
    settle(stack, quiet_seconds=4.0)
    diff = without_idle(difference(scrape(stack), before), idle_rates or {}, time.time() - began)
    return per_case(diff, max(1, accepted))


def busiest(stack) -> tuple[str, int] | None:
    """The process that used most CPU so far: (name, pid)."""
    best = None
    for name, proc in stack.procs.items():
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
        if best is None or ticks > best[0]:
            best = (ticks, name, proc.pid)
    return (best[1], best[2]) if best else None


def profile(pid: int, seconds: int, path: Path):
    """Start py-spy on ``pid`` for ``seconds``; returns the process (or None without py-spy)."""
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy")
    if not Path(spy).exists():
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "50",
                             "--nonblocking", "--format", "flamegraph", "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
