"""Authentication and roles for the gateway.

Every caller presents an API key (``Authorization: Bearer <key>`` or ``X-API-Key``). Keys are
``dcg_<key id>_<secret>``; only a SHA-256 of the secret is stored (database ``<prefix>gateway``,
collection ``accounts``), so a leaked database leaks no key. The first admin is created by a
command (``python -m services.gateway.accounts create-admin``); nothing secret is in the repo.

Roles: citizen, inspector, operator, unit, partner, leader (read-only), admin.
A ``unit`` account belongs to one unit (``unit_id``) and sees only that unit's cases; a
``partner`` account belongs to one department and sees only its joint operations.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

ROLES = ("citizen", "inspector", "operator", "unit", "partner", "leader", "admin")
READ_ALL = ("operator", "leader", "admin", "inspector")      # may read every case
ACT_ON_CASES = ("operator", "admin")                          # command-centre actions
ROLE_NAMES = {"citizen": "市民", "inspector": "信息采集员", "operator": "指挥中心值班员",
              "unit": "处置单位", "partner": "联动部门", "leader": "领导（只读）", "admin": "管理员"}


class Unauthorized(Exception):
    """No key, or a key that is not valid: 401."""


class Forbidden(Exception):
    """A valid key whose role may not do this: 403."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: str
    unit_id: str | None = None
    department: str | None = None
    scopes: tuple = field(default_factory=tuple)

    def as_dict(self):
        return {"key_id": self.key_id, "name": self.name, "role": self.role,
                "role_name": ROLE_NAMES[self.role], "unit_id": self.unit_id, "department": self.department}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(accounts, name: str, role: str, unit_id: str | None = None,
            department: str | None = None) -> str:
    """Create an account and return its key (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "unit" and not unit_id:
        raise ValueError("a unit account needs --unit")
    if role == "partner" and not department:
        raise ValueError("a partner account needs --department")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    accounts.insert_one({"_id": key_id, "name": name, "role": role, "unit_id": unit_id,
                         "department": department, "secret_sha256": _hash(secret),
                         "created_at": time.time(), "revoked": False})
    return f"dcg_{key_id}_{secret}"


def key_from_request(request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key") or None


def authenticate(accounts, key: str | None) -> Principal:
    if not key:
        raise Unauthorized("需要登录：请提供 API key (Authorization: Bearer <key>)")
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "dcg":
        raise Unauthorized("API key 格式不正确")
    account = accounts.find_one({"_id": parts[1]})
    if account is None or account.get("revoked") or not hmac.compare_digest(
            account["secret_sha256"], _hash(parts[2])):
        raise Unauthorized("API key 无效或已吊销")
    return Principal(account["_id"], account["name"], account["role"], account.get("unit_id"),
                     account.get("department"))


def require(principal: Principal, *roles: str) -> Principal:
    if principal.role not in roles:
        raise Forbidden(f"角色「{ROLE_NAMES[principal.role]}」无权执行此操作")
    return principal


def may_see_case(principal: Principal, unit_id: str | None) -> bool:
    if principal.role in READ_ALL:
        return True
    return principal.role == "unit" and unit_id is not None and unit_id == principal.unit_id


def may_see_operation(principal: Principal, departments, units=()) -> bool:
    """Command centre: every operation. A partner department: the operations it is asked to
    join. A unit: the operations it leads, blew the whistle for, or whose case it owns."""
    if principal.role in READ_ALL:
        return True
    if principal.role == "partner":
        return principal.department in set(departments or ())
    if principal.role == "unit":
        return principal.unit_id in set(units or ())
    return False


class RateLimiter:
    """A token bucket per client (per gateway instance): ``rate`` requests a second, bursts of
    ``burst``. For the public endpoints (Open311, citizen reports)."""

    def __init__(self, rate: float = 5.0, burst: int = 20):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> tuple[bool, float]:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return True, 0.0
            self._buckets[client] = (tokens, now)
            return False, (1 - tokens) / self.rate
