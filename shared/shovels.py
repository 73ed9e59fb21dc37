"""A department on its own broker, linked to the platform by two dynamic shovels — the rules
(pure: no I/O; ``shared/department_links.py`` applies them through the management API).

    requests  platform ``dept.<id>.inbox``  ──►  department broker, its inbox queue (``dcg.inbox``)
    replies   department broker, its outbox  ──►  platform exchange ``departments.replies``

Both shovels use ``ack-mode: on-confirm``: a message leaves its source queue only once the other
broker has confirmed it, so a link that goes down loses nothing; both sides simply queue.

Both platform ends connect with **the department's own platform user** (``dept.<id>``, made by
``dcgctl users apply``), never the platform's: the requests shovel may read only that inbox, and
the replies shovel may publish only on ``departments.replies`` with routing keys ``<id>.*``.

What RabbitMQ 3.10's AMQP 0-9-1 shovel does with ``user_id`` (checked on this machine): it copies
the source message's properties, ``user_id`` included, and then overwrites whatever
``dest-publish-properties`` names. A ``user_id`` written on the department's broker means nothing
to the platform (and one that differs from the shovel's platform user would make the platform
broker close the shovel's channel, again and again, on the same message). So the replies shovel
sets ``user_id`` to the department's platform user: the platform broker checks it equals the
connection's user, as it does for a department program connected directly, and the coordinator's
check (``user_id == dept.<sender>``) holds unchanged. The routing key is fixed to ``<id>.reply``
(``dest-exchange-key``): a message on the department's broker cannot choose another department's
key, and a routing key the platform's topic permission refuses would also stall the link on that
message. A reply whose body claims another department then reaches the coordinator with routing
key ``police.reply`` and user ``dept.police`` and is refused as an impersonation (dead-lettered
with the reason) while the link keeps moving.
"""
from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from .messaging.connection import node_uris, plain_amqp

REPLIES_EXCHANGE = "departments.replies"
DEFAULT_INBOX = "dcg.inbox"        # on the department's broker: Requests, Updates, Cancels, Errors
DEFAULT_OUTBOX = "dcg.outbox"      # on the department's broker: the department's replies
PREFIX = "dcg-link"
DIRECTIONS = ("requests", "replies")


def shovel_name(dept_id: str, direction: str) -> str:
    """``dcg-link.<id>.requests`` / ``dcg-link.<id>.replies``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}")
    return f"{PREFIX}.{dept_id}.{direction}"


def parse_name(name: str) -> tuple[str, str] | None:
    """(department, direction) of one of our shovels, or None for anyone else's."""
    parts = name.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or parts[2] not in DIRECTIONS:
        return None
    return parts[1], parts[2]


def inbox_queue(dept_id: str) -> str:
    return f"dept.{dept_id}.inbox"


def reply_routing_key(dept_id: str) -> str:
    return f"{dept_id}.reply"


def username_of(url: str) -> str:
    return unquote(urlsplit(url).username or "")


def redact(url: str) -> str:
    """The URL with its password hidden, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def amqp_url(url: str) -> str:
    """A shovel takes amqp:// URIs (kombu's pyamqp:// is the same wire protocol)."""
    return plain_amqp(url)


def uris(url: str) -> str | list[str]:
    """One URI, or kombu's failover form ``a;b;c`` (a cluster) as the list a shovel tries in turn."""
    parts = [amqp_url(part) for part in node_uris(url)]
    return parts[0] if len(parts) == 1 else parts


def shown(uri) -> str:
    """A shovel's URI (or list of URIs) with passwords hidden, for printing."""
    return ";".join(redact(str(one)) for one in (uri if isinstance(uri, list) else [uri]))


def definitions(dept_id: str, *, platform_url: str, department_url: str,
                inbox: str = DEFAULT_INBOX, outbox: str = DEFAULT_OUTBOX,
                reconnect_delay: int = 5) -> dict[str, dict]:
    """The two shovels' parameter values, by name.

    ``platform_url``: the department's own platform user (``var/secrets/departments/<id>.json``;
    ``a;b;c``, kombu's failover form, for a cluster: the shovel tries each in turn);
    ``department_url``: what the department gives the platform — a user on its broker that may
    write ``inbox`` and read ``outbox``."""
    platform_url, department_url = uris(platform_url), uris(department_url)
    user = username_of(platform_url[0] if isinstance(platform_url, list) else platform_url)
    if not user:
        raise ValueError("the platform URL must name the department's platform user")
    common = {"src-protocol": "amqp091", "dest-protocol": "amqp091", "ack-mode": "on-confirm",
              "reconnect-delay": reconnect_delay, "src-delete-after": "never"}
    return {
        shovel_name(dept_id, "requests"): {
            **common,
            "src-uri": platform_url, "src-queue": inbox_queue(dept_id),
            "dest-uri": department_url, "dest-queue": inbox,
            "dest-add-forward-headers": False,
        },
        shovel_name(dept_id, "replies"): {
            **common,
            "src-uri": department_url, "src-queue": outbox,
            "dest-uri": platform_url, "dest-exchange": REPLIES_EXCHANGE,
            "dest-exchange-key": reply_routing_key(dept_id),
            "dest-publish-properties": {"user_id": user, "delivery_mode": 2},
            "dest-add-forward-headers": False,
        },
    }


def link_state(states: list[str]) -> str:
    """One word for a department's link from its two shovels' states (``absent`` when missing)."""
    if not states or all(state == "absent" for state in states):
        return "unlinked"
    if all(state == "running" for state in states):
        return "up"
    return "down"


LABELS = {"up": "已连通", "down": "中断", "unlinked": "未连接"}


def status_rows(parameters: list[dict], shovels: list[dict], backlog: dict) -> list[dict]:
    """One row per linked department.

    ``parameters``: our shovel parameters on the host broker ({name, value});
    ``shovels``: /api/shovels rows ({name, state, reason?});
    ``backlog``: {(dept, direction): messages waiting at that shovel's source, or None if unknown}."""
    running = {row["name"]: row for row in shovels}
    depts: dict[str, dict] = {}
    for param in parameters:
        parsed = parse_name(param["name"])
        if parsed is None:
            continue
        dept, direction = parsed
        value = param.get("value") or {}
        live = running.get(param["name"]) or {}
        row = depts.setdefault(dept, {"department": dept, "shovels": {}})
        row["shovels"][direction] = {
            "name": param["name"], "state": live.get("state") or "absent",
            "reason": str(live.get("reason") or ""),
            "source": f"{shown(value.get('src-uri', ''))} {value.get('src-queue', '')}".strip(),
            "destination": shown(value.get("dest-uri", "")) + " "
                           + str(value.get("dest-queue") or value.get("dest-exchange") or ""),
            "backlog": backlog.get((dept, direction)),
        }
    for row in depts.values():
        for direction in DIRECTIONS:
            row["shovels"].setdefault(direction, {"name": shovel_name(row["department"], direction),
                                                  "state": "absent", "reason": "", "source": "",
                                                  "destination": "", "backlog": backlog.get((row["department"], direction))})
        row["state"] = link_state([row["shovels"][d]["state"] for d in DIRECTIONS])
        row["label"] = LABELS[row["state"]]
    return sorted(depts.values(), key=lambda r: r["department"])
