"""Link a department's own broker to the platform with two dynamic shovels (the rules, names and
shovel definitions are in ``shared/shovels.py``; this module applies them and reads them back).

    dcgctl departments link ID --uri amqp://USER:PASS@HOST:PORT/VHOST [--inbox Q] [--outbox Q]
    dcgctl departments unlink ID
    dcgctl departments status [--json]

The shovels are runtime parameters of the broker that runs them (the *shovel host*, which needs
the ``rabbitmq_shovel`` and ``rabbitmq_shovel_management`` plugins): by default the platform's
own broker and vhost (the management API as administrator: RABBIT_ADMIN_USER /
RABBIT_ADMIN_PASSWORD, else RABBIT_MANAGEMENT_*); or any broker given with
``--shovel-host http://USER:PASS@HOST:PORT`` (DEPT_SHOVEL_HOST) and ``--shovel-vhost``
(DEPT_SHOVEL_VHOST, default ``/``). Where the shovels run does not change what they may do on
the platform: they connect there with the department's own platform user, whose credentials
``dcgctl users apply`` keeps in ``var/secrets/departments/<id>.json`` (DEPT_SECRETS_DIR).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pika
import requests

from . import shovels
from .broker_users import DEFAULT_SECRETS, admin_management
from .config import load_config
from .departments import department_ids
from .management import Management

COMPONENT = "shovel"


def shovel_host(config: dict, url: str | None = None, vhost: str | None = None, environ=None) -> Management:
    """The management API of the broker that runs the shovels."""
    environ = os.environ if environ is None else environ
    url = url or environ.get("DEPT_SHOVEL_HOST")
    if not url:
        return admin_management(config, environ)
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return Management(base, unquote(parts.username or "guest"), unquote(parts.password or "guest"),
                      vhost or environ.get("DEPT_SHOVEL_VHOST") or "/")


def platform_url(dept_id: str, secrets_dir: Path | None = None, environ=None) -> str:
    """The department's own platform user, as ``dcgctl users apply`` wrote it."""
    environ = os.environ if environ is None else environ
    folder = Path(secrets_dir or environ.get("DEPT_SECRETS_DIR") or DEFAULT_SECRETS)
    path = folder / f"{dept_id}.json"
    if not path.is_file():
        raise RuntimeError(f"no platform credentials for {dept_id} in {path}: run `dcgctl users apply "
                           f"--department {dept_id}` first")
    return json.loads(path.read_text(encoding="utf-8"))["url"]


def link(config: dict, dept_id: str, department_url: str, *, host: Management, inbox: str = shovels.DEFAULT_INBOX,
         outbox: str = shovels.DEFAULT_OUTBOX, secrets_dir: Path | None = None, known=None,
         platform: str | None = None) -> dict:
    """Declare (or replace) both shovels. Returns their definitions with passwords hidden.
    ``platform``: the department's platform URL(s) instead of its credentials file's (``a;b;c``
    for every node of a cluster)."""
    if dept_id not in (known if known is not None else department_ids()):
        raise RuntimeError(f"unknown department {dept_id} (config/departments.yaml)")
    values = shovels.definitions(dept_id, platform_url=platform or platform_url(dept_id, secrets_dir),
                                 department_url=department_url, inbox=inbox, outbox=outbox)
    for name, value in values.items():
        host.put_parameter(COMPONENT, name, value)
    return {name: {key: shovels.shown(val) if key.endswith("-uri") else val for key, val in value.items()}
            for name, value in values.items()}


def unlink(dept_id: str, *, host: Management) -> list[str]:
    """Delete both shovels (deleting one that is not there is fine). Messages stay queued: those
    not yet moved wait in the platform inbox and in the department's outbox."""
    names = [shovels.shovel_name(dept_id, direction) for direction in shovels.DIRECTIONS]
    for name in names:
        host.delete_parameter(COMPONENT, name)
    return names


def _depth_over_amqp(url: str, queue: str) -> int | None:
    """Messages ready in a queue, by a passive declare with the link's own credentials."""
    try:
        params = pika.URLParameters(shovels.amqp_url(url))
        params.socket_timeout = params.blocked_connection_timeout = 5
        params.connection_attempts = 1
        connection = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError:
        return None
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.AMQPError:
        return None
    finally:
        if connection.is_open:
            connection.close()


def status(config: dict, *, host: Management, departments=None) -> list[dict]:
    """Each linked department's link state and backlog (messages waiting at each shovel's source:
    Requests in the platform inbox, replies in the department's outbox)."""
    params = [p for p in host.parameters(COMPONENT) if shovels.parse_name(p["name"])]
    if departments:
        params = [p for p in params if shovels.parse_name(p["name"])[0] in departments]
    if not params:
        return []                  # (a broker without the shovel plugin has no /api/shovels)
    live = host.shovels()
    platform = Management.from_config(config)
    backlog = {}
    for param in params:
        dept, direction = shovels.parse_name(param["name"])
        value = param.get("value") or {}
        if direction == "requests":
            queue = platform.queue(value.get("src-queue") or shovels.inbox_queue(dept))
            backlog[(dept, direction)] = None if queue is None else int(queue.get("messages") or 0)
        else:
            source = value.get("src-uri", "")
            for url in source if isinstance(source, list) else [source]:
                backlog[(dept, direction)] = _depth_over_amqp(str(url), str(value.get("src-queue", "")))
                if backlog[(dept, direction)] is not None:
                    break
    return shovels.status_rows(params, live, backlog)


def print_status(rows: list[dict]):
    if not rows:
        print("no department is linked by shovel (dcgctl departments link ID --uri …)")
        return
    for row in rows:
        print(f"{row['department']:14} {row['label']} ({row['state']})")
        for direction in shovels.DIRECTIONS:
            item = row["shovels"][direction]
            backlog = "?" if item["backlog"] is None else item["backlog"]
            reason = f"  {item['reason']}" if item["reason"] else ""
            print(f"  {direction:9} {item['state']:10} 积压 backlog {backlog:>6}  "
                  f"{item['source']} → {item['destination']}{reason}")


def main(argv=None, config=None) -> int:
    parser = argparse.ArgumentParser(prog="dcgctl departments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["link", "unlink", "status"])
    parser.add_argument("department", nargs="?")
    parser.add_argument("--uri", help="the department's broker: amqp://USER:PASS@HOST:PORT/VHOST")
    parser.add_argument("--inbox", default=shovels.DEFAULT_INBOX, help="inbox queue on the department's broker")
    parser.add_argument("--outbox", default=shovels.DEFAULT_OUTBOX, help="outbox queue on the department's broker")
    parser.add_argument("--shovel-host", help="management API of the broker that runs the shovels "
                                              "(default: the platform's; DEPT_SHOVEL_HOST)")
    parser.add_argument("--shovel-vhost", help="vhost of the shovels on --shovel-host (default /)")
    parser.add_argument("--secrets-dir", help="the department users' credentials (DEPT_SECRETS_DIR)")
    parser.add_argument("--platform-url", help="the department's platform user's URL(s), e.g. every cluster node "
                                               "as amqp://dept.police:…@a:5701/v;amqp://…@b:5702/v "
                                               "(default: its credentials file)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    config = config or load_config()
    host = shovel_host(config, args.shovel_host, args.shovel_vhost)   # default: the platform's vhost
    try:
        if args.action == "link":
            if not args.department or not args.uri:
                parser.error("link needs a DEPARTMENT and --uri amqp://…")
            shown = link(config, args.department, args.uri, host=host, inbox=args.inbox, outbox=args.outbox,
                         secrets_dir=Path(args.secrets_dir) if args.secrets_dir else None,
                         platform=args.platform_url)
            if args.json:
                print(json.dumps(shown, ensure_ascii=False, indent=2))
                return 0
            for name, value in shown.items():
                source = value.get("src-queue")
                target = value.get("dest-queue") or f"{value.get('dest-exchange')} ({value.get('dest-exchange-key')})"
                print(f"linked  {name}: {value['src-uri']} {source} → {value['dest-uri']} {target}  "
                      f"ack-mode={value['ack-mode']}")
            return 0
        if args.action == "unlink":
            if not args.department:
                parser.error("unlink needs a DEPARTMENT")
            for name in unlink(args.department, host=host):
                print(f"removed {name}")
            print("messages not yet moved stay queued on both sides; `link` again to resume")
            return 0
        rows = status(config, host=host, departments=[args.department] if args.department else None)
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        else:
            print_status(rows)
        return 0 if all(row["state"] == "up" for row in rows) else 1
    except (requests.RequestException, RuntimeError, ValueError) as exc:
        hint = ""
        if "shovel" in str(exc) and ("not found" in str(exc) or "404" in str(exc)):
            hint = ("\nthe shovel host has no rabbitmq_shovel plugin: `rabbitmq-plugins enable rabbitmq_shovel "
                    "rabbitmq_shovel_management` there, or give --shovel-host")
        print(f"departments {args.action}: {exc}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
