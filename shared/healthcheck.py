"""Container healthcheck: ``python -m shared.healthcheck <service>``  (exit 0 healthy, 1 not).

Healthy means: a heartbeat with state "up", written by THIS host (the container: its instance id
starts with ``<hostname>:``), at most 10 s old, for that nameko service (intake, dispatch,
coordination, scoring, gateway; the package name enforcement_coordination is accepted too).

For ``gateway`` the HTTP server must also answer ``GET /health`` on 127.0.0.1:$GATEWAY_PORT:
200 (all up) or 503 (degraded) both count, because they prove the process serves HTTP; whether
the *platform* is degraded is the gateway's answer to give, not a reason to restart the gateway.

It uses plain pymongo rather than shared.storage.mongo_client: Docker runs this every 15 s, and
importing shared.storage pulls in nameko and eventlet (slower, and a deprecation warning in every
`docker inspect`); the timeouts are also shorter, to answer inside Docker's 10 s.
"""
from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

from pymongo import MongoClient

from .config import database_name, load_config

FRESH = timedelta(seconds=10)
ALIASES = {"enforcement_coordination": "coordination", "enforcement-coordination": "coordination"}


def heartbeat_problem(config: dict, service: str, host: str) -> str | None:
    client = MongoClient(config["MONGO_URI"], serverSelectionTimeoutMS=3000,
                         connectTimeoutMS=3000, socketTimeoutMS=3000)
    try:
        since = datetime.now(timezone.utc) - FRESH
        beats = client[database_name(config, "platform")]["heartbeats"].find(
            {"service": service, "state": "up", "at": {"$gte": since}}, {"instance": 1})
        if any(str(beat.get("instance", "")).startswith(host + ":") for beat in beats):
            return None
        return f"no heartbeat from {service} on {host} in the last {FRESH.seconds} s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return f"cannot read heartbeats: {str(exc).splitlines()[0][:200]}"
    finally:
        client.close()


def http_problem(config: dict) -> str | None:
    url = f"http://127.0.0.1:{config.get('GATEWAY_PORT', 8000)}/health"
    try:
        with urllib.request.urlopen(url, timeout=8) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"{url} does not answer: {exc}"
    return None if status in (200, 503) else f"{url} answered {status}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m shared.healthcheck <service>", file=sys.stderr)
        return 2
    service = ALIASES.get(argv[0], argv[0])
    config = load_config()
    problem = heartbeat_problem(config, service, socket.gethostname())
    if problem is None and service == "gateway":
        problem = http_problem(config)
    if problem:
        print(f"unhealthy: {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
