"""The platform's own RabbitMQ user, and per-department users and permissions, applied through
the management API (as an administrator: RABBIT_ADMIN_USER / RABBIT_ADMIN_PASSWORD, else the
RABBIT_MANAGEMENT_* user).

    python -m shared.broker_users platform [--vhost V]  # the platform's user (make run, compose)
    python -m shared.broker_users apply [--vhost V] [--department ID …] [--prune]
    python -m shared.broker_users show  [--vhost V]
    python -m shared.broker_users check [--vhost V]     # exit 1 when the broker differs
    python -m shared.broker_users delete [--vhost V] [--department ID …]
    (the ops CLI: ``dcgctl users apply …``)

For each department in config/departments.yaml, user ``dept.<id>`` (prefix: DEPT_USER_PREFIX)
gets, in the platform's vhost (the path of AMQP_URI, or --vhost):

    configure  ^$                          declare, bind or delete nothing
    write      ^departments\\.replies$      publish only to the replies exchange
    read       ^dept\\.<id>\\.inbox$         consume only its own inbox
    topic permission on departments.replies: write ^<id>\\.[a-z]+$, read ^$
               publish only with routing keys <id>.<kind> — never as another department

RabbitMQ also refuses any publish whose ``user_id`` property differs from the connection's
user, which is how the coordinator knows who really sent a reply.

Passwords: ``DEPT_<ID>_AMQP_PASSWORD`` when set; otherwise the one already kept in
``var/secrets/departments/<id>.json`` (DEPT_SECRETS_DIR); otherwise a new random one, written
there (mode 0600, the folder is git-ignored) with the department's AMQP URL — the file the
department program reads (DEPT_CREDENTIALS_FILE). Passwords are never printed. Applying twice
changes nothing; ``--prune`` deletes department users (tag ``dcg-department``) no longer in
the configuration.

The platform's user (PLATFORM_AMQP_USER, default ``dcg.platform``) may configure, write and
read everything in the platform's vhost and nothing in any other; it may not publish on
``departments.replies`` (topic permission ``^$``), so a platform process cannot answer in a
department's name. Its tag ``management`` lets it read and purge its own vhost's queues through
the management API (health, dcgctl), not administer the broker. Password: PLATFORM_AMQP_PASSWORD,
else the one kept in var/secrets/platform-broker.json, else a new random one written there.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from .config import ROOT, load_config
from .departments import department_ids
from .management import Management, vhost_of
from .messaging.connection import map_nodes, plain_amqp

TAG = "dcg-department"
REPLIES_EXCHANGE = "departments.replies"
DEFAULT_SECRETS = ROOT / "var" / "secrets" / "departments"
PLATFORM_SECRET = ROOT / "var" / "secrets" / "platform-broker.json"
PLATFORM_TAG = "management"


def permissions_for(dept_id: str) -> dict:
    inbox = re.escape(f"dept.{dept_id}.inbox")
    return {"configure": "^$", "write": r"^departments\.replies$", "read": f"^{inbox}$"}


def topic_permissions_for(dept_id: str) -> dict:
    return {"exchange": REPLIES_EXCHANGE, "write": f"^{re.escape(dept_id)}\\.[a-z]+$", "read": "^$"}


def amqp_url(amqp_uri: str, username: str, password: str, vhost: str) -> str:
    """The department's pika URL: the platform's broker host, its own user, the vhost. On a
    cluster (AMQP_URI lists several nodes) one URL per node, joined by ';' (the program fails
    over between them)."""
    def one(node: str) -> str:
        parts = urlsplit(plain_amqp(node))
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 5672
        scheme = "amqps" if parts.scheme == "amqps" else "amqp"
        return f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(vhost, safe='')}"
    return map_nodes(amqp_uri, one)


def admin_management(config: dict, environ=None) -> Management:
    """The management API as an administrator (creating users needs one)."""
    environ = os.environ if environ is None else environ
    admin = dict(config)
    if environ.get("RABBIT_ADMIN_USER"):
        admin["RABBIT_MANAGEMENT_USER"] = environ["RABBIT_ADMIN_USER"]
        admin["RABBIT_MANAGEMENT_PASSWORD"] = environ.get("RABBIT_ADMIN_PASSWORD", "")
    return Management.from_config(admin)


def platform_permissions() -> dict:
    return {"configure": ".*", "write": ".*", "read": ".*"}


def platform_topic_permissions() -> dict:
    return {"exchange": REPLIES_EXCHANGE, "write": "^$", "read": ".*"}


def apply_platform(config: dict, *, vhost: str | None = None, user: str | None = None,
                   secret_file: Path | None = None, environ=None, management=None) -> dict:
    """Create or update the platform's own broker user, with rights on its vhost only. Returns
    {username, password, vhost, amqp_uri, secret_file} and keeps it in the secret file (0600)."""
    environ = os.environ if environ is None else environ
    mgmt = management or admin_management(config, environ)
    vhost = vhost or vhost_of(config["AMQP_URI"])
    user = user or environ.get("PLATFORM_AMQP_USER") or "dcg.platform"
    secret_file = Path(secret_file or environ.get("PLATFORM_BROKER_SECRET") or PLATFORM_SECRET)
    password = environ.get("PLATFORM_AMQP_PASSWORD")
    if not password and secret_file.is_file():
        try:
            password = json.loads(secret_file.read_text(encoding="utf-8"))["password"]
        except (ValueError, KeyError):
            password = None
    password = password or secrets.token_urlsafe(24)
    mgmt.put_vhost(vhost)
    mgmt.put_user(user, password, PLATFORM_TAG)
    mgmt.put_permissions(vhost, user, platform_permissions())
    mgmt.delete_topic_permissions(vhost, user)
    mgmt.put_topic_permissions(vhost, user, platform_topic_permissions())
    uri = map_nodes(amqp_url(config["AMQP_URI"], user, password, vhost),
                    lambda node: node.replace("amqp://", "pyamqp://", 1))
    row = {"username": user, "password": password, "vhost": vhost, "amqp_uri": uri}
    _write_secret(secret_file, row)
    return {**row, "secret_file": str(secret_file)}


def _secret_path(secrets_dir: Path, dept_id: str) -> Path:
    return secrets_dir / f"{dept_id}.json"


def _password(dept_id: str, secrets_dir: Path, environ) -> tuple[str, str]:
    """(password, where it came from)."""
    env_name = f"DEPT_{dept_id.upper()}_AMQP_PASSWORD"
    if environ.get(env_name):
        return environ[env_name], env_name
    path = _secret_path(secrets_dir, dept_id)
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))["password"], str(path)
        except (ValueError, KeyError):
            pass
    return secrets.token_urlsafe(24), "generated"


def _write_secret(path: Path, data: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
    os.replace(tmp, path)


def apply(config: dict, *, vhost: str | None = None, departments=None, prefix: str | None = None,
          secrets_dir: Path | None = None, environ=None, prune: bool = False, management=None) -> list[dict]:
    """Create or update every department's user and permissions. Returns one row per user
    (no passwords)."""
    environ = os.environ if environ is None else environ
    mgmt = management or admin_management(config, environ)
    vhost = vhost or vhost_of(config["AMQP_URI"])
    prefix = prefix if prefix is not None else str(config.get("DEPT_USER_PREFIX") or environ.get("DEPT_USER_PREFIX", "dept."))
    secrets_dir = Path(secrets_dir or environ.get("DEPT_SECRETS_DIR") or DEFAULT_SECRETS)
    wanted = list(departments or department_ids())
    rows = []
    for dept_id in wanted:
        username = f"{prefix}{dept_id}"
        password, source = _password(dept_id, secrets_dir, environ)
        mgmt.put_user(username, password, TAG)
        mgmt.put_permissions(vhost, username, permissions_for(dept_id))
        mgmt.delete_topic_permissions(vhost, username)       # exactly one topic rule, ours
        mgmt.put_topic_permissions(vhost, username, topic_permissions_for(dept_id))
        secret_file = _secret_path(secrets_dir, dept_id)
        _write_secret(secret_file, {"department": dept_id, "username": username, "password": password,
                                    "vhost": vhost, "url": amqp_url(config["AMQP_URI"], username, password, vhost)})
        rows.append({"department": dept_id, "user": username, "vhost": vhost, "password_from": source,
                     "secret_file": str(secret_file), **permissions_for(dept_id),
                     "topic_write": topic_permissions_for(dept_id)["write"]})
    if prune:
        names = {f"{prefix}{dept_id}" for dept_id in department_ids()}
        for user in mgmt.users():
            tags = user.get("tags") or []
            tags = tags if isinstance(tags, list) else [t.strip() for t in str(tags).split(",")]
            if TAG in tags and user["name"].startswith(prefix) and user["name"] not in names:
                mgmt.delete_user(user["name"])
                rows.append({"department": None, "user": user["name"], "deleted": True})
    return rows


def check(config: dict, *, vhost: str | None = None, departments=None, prefix: str | None = None,
          management=None, environ=None) -> list[str]:
    """Differences between the configuration and the broker (empty when they agree)."""
    environ = os.environ if environ is None else environ
    mgmt = management or admin_management(config, environ)
    vhost = vhost or vhost_of(config["AMQP_URI"])
    prefix = prefix if prefix is not None else str(config.get("DEPT_USER_PREFIX") or environ.get("DEPT_USER_PREFIX", "dept."))
    problems = []
    for dept_id in departments or department_ids():
        username = f"{prefix}{dept_id}"
        if mgmt.user(username) is None:
            problems.append(f"{username}: no such user")
            continue
        perms = mgmt.permissions(vhost, username) or {}
        for key, value in permissions_for(dept_id).items():
            if perms.get(key) != value:
                problems.append(f"{username}: {key} is {perms.get(key)!r}, should be {value!r}")
        topics = mgmt.topic_permissions(vhost, username)
        expected = topic_permissions_for(dept_id)
        if [{k: t.get(k) for k in expected} for t in topics] != [expected]:
            problems.append(f"{username}: topic permissions are {topics!r}, should be [{expected!r}]")
    return problems


def delete(config: dict, *, departments=None, prefix: str | None = None, management=None, environ=None):
    environ = os.environ if environ is None else environ
    mgmt = management or admin_management(config, environ)
    prefix = prefix if prefix is not None else str(config.get("DEPT_USER_PREFIX") or environ.get("DEPT_USER_PREFIX", "dept."))
    for dept_id in departments or department_ids():
        mgmt.delete_user(f"{prefix}{dept_id}")


def main(argv=None, config=None) -> int:
    parser = argparse.ArgumentParser(prog="dcgctl users", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["platform", "apply", "show", "check", "delete"])
    parser.add_argument("--vhost", help="default: the vhost of AMQP_URI")
    parser.add_argument("--department", action="append", help="only this department (repeatable)")
    parser.add_argument("--prefix", help="user name prefix (default DEPT_USER_PREFIX or dept.)")
    parser.add_argument("--secrets-dir", help="default var/secrets/departments (DEPT_SECRETS_DIR)")
    parser.add_argument("--prune", action="store_true", help="delete department users no longer configured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    config = config or load_config()
    common = {"vhost": args.vhost, "departments": args.department, "prefix": args.prefix}
    try:
        if args.action == "platform":
            row = apply_platform(config, vhost=args.vhost)
            print(f"platform user {row['username']} vhost={row['vhost']}: configure/write/read .* there only; "
                  f"credentials in {row['secret_file']}")
            return 0
        if args.action == "apply":
            rows = apply(config, secrets_dir=Path(args.secrets_dir) if args.secrets_dir else None,
                         prune=args.prune, **common)
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=2))
            else:
                for row in rows:
                    if row.get("deleted"):
                        print(f"deleted  {row['user']}")
                        continue
                    print(f"applied  {row['user']:24} vhost={row['vhost']}  read={row['read']}  "
                          f"write={row['write']}  topic-write={row['topic_write']}  configure={row['configure']}")
                    print(f"         password: {row['password_from']}; credentials for the department program: "
                          f"{row['secret_file']}")
            return 0
        if args.action in ("show", "check"):
            problems = check(config, **common)
            if args.action == "show":
                vhost = args.vhost or vhost_of(config["AMQP_URI"])
                prefix = args.prefix or config.get("DEPT_USER_PREFIX") or os.environ.get("DEPT_USER_PREFIX", "dept.")
                for dept_id in args.department or department_ids():
                    print(f"{prefix}{dept_id:20} vhost={vhost}  read={permissions_for(dept_id)['read']}  "
                          f"topic-write={topic_permissions_for(dept_id)['write']}")
            for problem in problems:
                print(f"DIFFERS: {problem}")
            if args.action == "check" and not problems:
                print("every department user and permission is as configured")
            return 1 if problems else 0
        delete(config, departments=args.department, prefix=args.prefix)
        print("deleted")
        return 0
    except (requests.RequestException, RuntimeError) as exc:
        print(f"cannot apply users through the management API: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
