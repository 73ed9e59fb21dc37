"""Authentication, roles and object-level rules of the gateway — pure: no HTTP, no RPC.

Every caller presents an API key (``Authorization: Bearer <key>`` or ``X-API-Key``). Keys are
``dcg_<key id>_<secret>``; only a SHA-256 of the secret is stored (database ``<prefix>gateway``,
collection ``accounts``), so a leaked database leaks no key. The first admin is created by a
command (``python -m services.gateway.accounts create-admin``); nothing secret is in the repo.

Roles (docs/api.md has the full table):

=========  ==============  ====================================================================
role       中文             may
=========  ==============  ====================================================================
citizen    市民             report (rate-limited); read the public scores (rankings, 曝光台, 通报)
inspector  信息采集员       report as itself, verify (核查), read every case and operation
operator   指挥中心值班员   everything on cases and operations; approves as 指挥中心 (``centre``)
unit       处置单位         its own cases only (read, accept, return, extend, park, feedback);
                            blow the whistle (吹哨) on them; the operations it leads, whistled or
                            owns; violations and 整改 checks on its cases and the operations it
                            leads; permits and shops inside its own territory
partner    联动部门         the joint operations it is asked to join (read; ask to leave)
leader     领导（只读）     read everything; every write is 403
admin      管理员           everything; approves as 区领导 (``leader``)
community  社区代表         社区评议: rates the units serving its community (docs/participation.md)
=========  ==============  ====================================================================

Who the caller *is* always comes from the key, never from the request body: a unit acts as its
unit, an inspector reports and verifies under its own id, an approval carries the rank of the
account. Reads of an object the caller may not see are 404 (its existence is not shown); writes
on such an object are 403 (no content is returned). Which relation each endpoint needs on which
object is declared per endpoint in services/gateway/access.py, which decides.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

ROLES = ("citizen", "inspector", "operator", "unit", "partner", "leader", "admin", "community")
READ_ALL = ("operator", "leader", "admin", "inspector")      # may read every case and operation
ACT_ON_CASES = ("operator", "admin")                          # command-centre actions
COMMAND = ACT_ON_CASES
WRITERS = tuple(role for role in ROLES if role != "leader")   # the leader is read-only
ROLE_NAMES = {"citizen": "市民", "inspector": "信息采集员", "operator": "指挥中心值班员",
              "unit": "处置单位", "partner": "联动部门", "leader": "领导（只读）", "admin": "管理员",
              "community": "社区代表"}
ROLE_NAMES_EN = {"citizen": "citizen", "inspector": "grid inspector", "operator": "command-centre operator",
                 "unit": "handling unit", "partner": "partner department", "leader": "leader (read-only)",
                 "admin": "administrator", "community": "community representative"}

# dispatch's approver ranks (config/routing.yaml ``roles``): operator < centre < leader
APPROVER_RANKS = ("operator", "centre", "leader")
DEFAULT_APPROVER = {"operator": "centre", "admin": "leader"}

# case actions (services/dispatch/schemas.py ACTION_SCHEMAS) by who may do them
UNIT_ACTIONS = ("accept", "return", "request_extension", "request_park", "report_stage", "feedback")
APPROVALS = ("decide_extension", "decide_park", "unpark", "set_urgency")
VERIFICATIONS = ("verify", "check_report")                    # 核查; 核实 of a public report
CENTRE_ACTIONS = ("request_check", "cancel")                  # 发起核实; 不立案 after a 不属实 核实
CASE_ACTION_ROLES = {**{name: ("unit",) + COMMAND for name in UNIT_ACTIONS},
                     **{name: COMMAND for name in APPROVALS + CENTRE_ACTIONS},
                     **{name: ("inspector", "admin") for name in VERIFICATIONS}}
IDENTITY_FIELDS = ("actor", "actor_unit", "role", "actor_name")   # filled from the key, body ignored

# POST /api/reports: the channels a person may report on over HTTP
STAFF_CHANNELS = ("web", "hotline", "inspector", "road_office")  # operator / admin enter any of these
PERSON_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
SENSOR_FIELDS = ("sensor_id", "device_id")


class Unauthorized(Exception):
    """No key, or a key that is not valid: 401."""


class Forbidden(Exception):
    """A valid key whose role may not do this, or an object it may not act on: 403."""


class NotFound(Exception):
    """No such object — or one the caller may not see: 404 (existence is not shown)."""


class Invalid(Exception):
    """Input refused for a reason of this caller's role, field by field: 400."""

    def __init__(self, message, fields=None):
        super().__init__(message)
        self.message, self.fields = message, fields or {}


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: str
    unit_id: str | None = None
    department: str | None = None
    scopes: tuple = field(default_factory=tuple)
    person_id: str | None = None        # staff number (工号); scoring counts inspectors by it
    approver: str | None = None         # dispatch approver rank, if not the role's default

    @property
    def actor_id(self) -> str:
        """The stable id of the person behind the key (their staff number, else the key id)."""
        return self.person_id or self.key_id

    @property
    def approval_role(self) -> str | None:
        """The rank this account approves with in dispatch (operator → centre, admin → leader)."""
        if self.role not in COMMAND:
            return None
        return self.approver or DEFAULT_APPROVER[self.role]

    @property
    def read_only(self) -> bool:
        return self.role == "leader"

    def as_dict(self):
        return {"key_id": self.key_id, "name": self.name, "role": self.role,
                "role_name": ROLE_NAMES[self.role], "role_name_en": ROLE_NAMES_EN[self.role],
                "unit_id": self.unit_id, "department": self.department, "person_id": self.actor_id,
                "approval_role": self.approval_role, "read_only": self.read_only}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(accounts, name: str, role: str, unit_id: str | None = None,
            department: str | None = None, person_id: str | None = None,
            approver: str | None = None) -> str:
    """Create an account and return its key (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "unit" and not unit_id:
        raise ValueError("a unit account needs --unit")
    if role == "partner" and not department:
        raise ValueError("a partner account needs --department")
    if person_id is not None and not PERSON_ID.match(person_id):
        raise ValueError("--person-id: letters, digits and _ . : - only (e.g. insp-017)")
    if approver is not None:
        if role not in COMMAND:
            raise ValueError("--approver is for operator and admin accounts")
        if approver not in APPROVER_RANKS:
            raise ValueError(f"--approver must be one of {', '.join(APPROVER_RANKS)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    accounts.insert_one({"_id": key_id, "name": name, "role": role, "unit_id": unit_id,
                         "department": department, "person_id": person_id, "approver": approver,
                         "secret_sha256": _hash(secret), "created_at": time.time(), "revoked": False})
    return f"dcg_{key_id}_{secret}"


def key_from_request(request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key") or None


def authenticate(accounts, key: str | None) -> Principal:
    if not key:
        raise Unauthorized("需要登录：请提供 API key (login required: Authorization: Bearer <key>)")
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "dcg" or not parts[1] or len(key) > 200:
        raise Unauthorized("API key 格式不正确 (malformed API key)")
    account = accounts.find_one({"_id": parts[1]})
    if account is None or account.get("revoked") or not hmac.compare_digest(
            account["secret_sha256"], _hash(parts[2])):
        raise Unauthorized("API key 无效或已吊销 (invalid or revoked API key)")
    return Principal(account["_id"], account["name"], account["role"], account.get("unit_id"),
                     account.get("department"), person_id=account.get("person_id"),
                     approver=account.get("approver"))


def forbidden_role(principal: Principal) -> Forbidden:
    if principal.read_only:
        return Forbidden("领导账号为只读，不能修改数据 (leader accounts are read-only)")
    return Forbidden(f"角色「{ROLE_NAMES[principal.role]}」无权执行此操作 "
                     f"(the {principal.role} role may not do this)")


def require(principal: Principal, *roles: str) -> Principal:
    if principal.role not in roles:
        raise forbidden_role(principal)
    return principal


# ------------------------------------------------------------------ cases
def _unit_of(case) -> str | None:
    return case.get("unit_id") if isinstance(case, dict) else case


def may_see_case(principal: Principal, case) -> bool:
    """``case``: dispatch's view of the case (or just its current unit id). The command centre,
    the leader and inspectors see every case; a unit only the cases assigned to it now."""
    if principal.role in READ_ALL:
        return True
    unit_id = _unit_of(case)
    return principal.role == "unit" and unit_id is not None and unit_id == principal.unit_id


def case_action_identity(principal: Principal, action: str, case: dict) -> dict:
    """Who does ``action`` on ``case`` (dispatch's view), as the fields dispatch expects:
    ``actor`` (a person), ``actor_unit`` (unit actions), ``role`` (approvals). Raises Forbidden.

    - unit actions: a unit account acts for its own unit, and only on a case assigned to it;
      the command centre acts for the unit the case is assigned to (代办);
    - approvals: the account's approver rank (operator → centre, admin → leader);
    - verification: the inspector, under its person id (what scoring counts)."""
    roles = CASE_ACTION_ROLES.get(action, ())
    if principal.role not in roles:
        raise forbidden_role(principal)
    if action in UNIT_ACTIONS:
        if principal.role == "unit":
            if case.get("unit_id") != principal.unit_id:
                raise Forbidden("此案件不由本单位处置，不能操作 (this case is not assigned to your unit)")
            return {"actor": principal.name, "actor_unit": principal.unit_id}
        return {"actor": principal.name, "actor_unit": case.get("unit_id")}
    if action in APPROVALS:
        return {"actor": principal.name, "role": principal.approval_role}
    if action == "check_report":                  # 核实: counted by 工号, shown by the account's name
        return {"actor": principal.actor_id, "actor_name": principal.name}
    return {"actor": principal.actor_id}


CONTACT_KEYS = ("phone", "email")
_CONTACT_REF = re.compile(r"^(phone|email):.+")


def redact_contacts(value, principal: Principal, shown: bool | None = None):
    """Reporters' phone numbers and e-mail addresses are for the command centre and the unit the
    case is assigned to (``shown``: services/gateway/access.py ``may_see_contacts`` decided it;
    by default the command centre only): the ``phone`` / ``email`` fields are dropped, and a
    reporter reference ``phone:<number>`` (intake's subscriber ids) becomes ``phone:***``."""
    if shown or (shown is None and principal.role in COMMAND):
        return value
    if isinstance(value, dict):
        return {key: redact_contacts(item, principal, False) for key, item in value.items()
                if key not in CONTACT_KEYS}
    if isinstance(value, list):
        return [redact_contacts(item, principal, False) for item in value]
    if isinstance(value, str) and _CONTACT_REF.match(value):
        return value.split(":", 1)[0] + ":***"
    return value


# ------------------------------------------------------------------ reports
def report_as(principal: Principal, data: dict) -> dict:
    """The report body with the reporter's identity taken from the key (POST /api/reports).

    - inspector: channel ``inspector``, ``inspector_id`` = its person id;
    - citizen, unit, partner: channel ``web``, ``reporter.account_id`` = its person id; no
      inspector or leader identity;
    - operator, admin (command-centre staff entering a report taken by phone, radio or a leader's
      road-office note): channel ``web`` | ``hotline`` | ``inspector`` | ``road_office`` with the
      identity in the body;
    - nobody sets sensor fields over HTTP (``sensor_id``, ``device_id``), and a
      citizen does not set ``urgency`` (ignored);
    - leader: read-only (Forbidden)."""
    if principal.read_only or principal.role not in ROLES:
        raise forbidden_role(principal)
    data = dict(data)
    for name in SENSOR_FIELDS:                    # sensor reports come over AMQP, never a person's key
        data.pop(name, None)
    if principal.role in COMMAND:
        channel = data.get("channel") or "web"
        if channel not in STAFF_CHANNELS:
            raise Invalid("输入有误，请检查标出的字段 (invalid input)", {"channel": [
                f"此接口只接受 {' | '.join(STAFF_CHANNELS)} (sensor and Open311 reports have their own channels)"]})
        data["channel"] = channel
        return data
    if principal.role in ("citizen", "community"):
        data.pop("urgency", None)                 # urgency is the staff's call (it halves the time limit)
    if principal.role == "inspector":
        data["channel"] = "inspector"
        data["inspector_id"] = principal.actor_id
        data["inspector_name"] = principal.name
    else:
        data["channel"] = "web"
        data["inspector_id"] = data["inspector_name"] = None
        reporter = data.get("reporter") if isinstance(data.get("reporter"), dict) else {}
        data["reporter"] = {**reporter, "account_id": principal.actor_id}
    data["leader"] = None
    return data


# ------------------------------------------------------------------ joint operations
def operation_units(operation: dict) -> list:
    """The units involved in an operation (summary or whole document): lead, requester, owner."""
    owner = operation.get("owner_unit") or (operation.get("case") or {}).get("owner_unit")
    return [unit for unit in (operation.get("lead_unit"), operation.get("requested_by"), owner)
            if isinstance(unit, str)]


def may_see_operation(principal: Principal, departments, units=()) -> bool:
    """Command centre, leader, inspectors: every operation. A partner department: the operations
    it is asked to join. A unit: the operations it leads, blew the whistle for, or whose case it owns."""
    if principal.role in READ_ALL:
        return True
    if principal.role == "partner":
        return principal.department in set(departments or ())
    if principal.role == "unit":
        return principal.unit_id in {unit for unit in units or () if isinstance(unit, str)}
    return False


def sees_operation(principal: Principal, operation: dict) -> bool:
    return may_see_operation(principal, (operation.get("departments") or {}).keys(), operation_units(operation))


# ------------------------------------------------------------------ scoring
def may_see_indicators(principal: Principal, level: str | None, key: str | None) -> bool:
    """Indicators: the command centre, leader and inspectors see all; a unit its own unit's
    figures; a partner its own department's. Rankings, the exposure list and bulletins are public."""
    if principal.role in READ_ALL:
        return True
    if principal.role == "unit":
        return level == "unit" and key == principal.unit_id
    if principal.role == "partner":
        return level == "partner" and key == principal.department
    return False


# ------------------------------------------------------------------ rate limits
def take_token(tokens: float, last: float, now: float, rate: float, burst: float) -> tuple[bool, float, float]:
    """The token bucket's arithmetic: refill since ``last`` at ``rate``/s up to ``burst``, then take
    one if there is one. Returns (allowed, tokens left, seconds until the next token)."""
    tokens = min(burst, tokens + max(0.0, now - last) * rate)
    if tokens >= 1:
        return True, tokens - 1, 0.0
    return False, tokens, (1 - tokens) / rate


class RateLimiter:
    """A token bucket per client, in this process: ``rate`` requests a second, bursts of
    ``burst``. The gateway uses :class:`SharedRateLimiter`, which every instance shares."""

    def __init__(self, rate: float = 5.0, burst: int = 20):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> tuple[bool, float]:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            allowed, tokens, retry_after = take_token(tokens, last, now, self.rate, self.burst)
            self._buckets[client] = (tokens, now)
            return allowed, retry_after


class SharedRateLimiter:
    """The same bucket kept in the store (one document per client), so that several gateway
    instances behind a load balancer draw from one bucket instead of each granting the burst.
    Each take is a compare-and-set on the document: two instances never spend the same token."""

    ATTEMPTS = 50
    _indexed: set = set()

    def __init__(self, collection, rate: float, burst: int):
        self.collection, self.rate, self.burst = collection, rate, burst
        if collection.full_name not in self._indexed:
            try:      # forgotten buckets expire (a full bucket needs no document)
                collection.create_index("expires", expireAfterSeconds=0)
                self._indexed.add(collection.full_name)
            except Exception:  # noqa: BLE001 - the store may be away; buckets still work
                pass

    def allow(self, client: str, now: float | None = None) -> tuple[bool, float]:
        from pymongo.errors import DuplicateKeyError
        for _ in range(self.ATTEMPTS):
            moment = time.time() if now is None else now
            doc = self.collection.find_one({"_id": client})
            tokens, last = (doc["tokens"], doc["at"]) if doc else (float(self.burst), moment)
            allowed, left, retry_after = take_token(tokens, last, moment, self.rate, self.burst)
            # an idle bucket is full again after burst / rate seconds: the store may forget it then
            fields = {"tokens": left, "at": moment,
                      "expires": datetime.now(timezone.utc) + timedelta(seconds=self.burst / self.rate + 60)}
            if doc is None:
                try:
                    self.collection.insert_one({"_id": client, **fields})
                except DuplicateKeyError:
                    continue                              # another instance made it first
            elif self.collection.update_one({"_id": client, "at": doc["at"], "tokens": doc["tokens"]},
                                            {"$set": fields}).matched_count == 0:
                continue                                  # another instance took a token meanwhile
            return allowed, retry_after
        return False, 1.0 / self.rate                     # hopelessly contended: refuse, never over-grant
