"""Who may act on what — decided in one place, declared per endpoint. Pure: no HTTP, no RPC.

Every native endpoint declares (``@endpoint(Access(...))`` in services/gateway/http.py):

- **what it acts on** (``target``): a case, an operation, a rectification order, a permit, a shop,
  a report, the caller's own indicators …, or nothing (a list filtered for the caller, a public page);
- **which relation the caller needs** on it, per role (``by_role``): a role not listed gets 403
  whatever the object; a listed role must hold the relation on the object (``RELATIONS``);
- **whether it writes** (the read-only leader is never listed on a write);
- **which body fields name the actor** (``identity``): they are filled from the API key and
  whatever the body says there is ignored — except those the command centre may name when it
  acts for a unit or enters a call (``named_by_command``: the street that asked for a whistle,
  the unit it closes for, the inspector whose radio report it enters). The OpenAPI document
  lists them as ``x-identity`` (tests/integration/test_access_matrix.py walks it).

A read of an object the caller may not see is 404 (its existence is not shown); a write on it is
403 (nothing of it is returned). The decorator hands the handler a :class:`Caller`, the principal
bound to its endpoint's declaration: ``caller.check(obj)`` applies the relation, once, here.

=================  ========================================================================
relation           holds when
=================  ========================================================================
public             always, without a key
any                always (any authenticated role listed)
command_centre     the caller is the command centre (operator, admin): every object
reader             the caller reads everything (operator, admin, leader, inspector)
owning_unit        a unit account, and the case is assigned to its unit now
lead               a unit account leading the operation
participant        a unit that leads, asked for or owns the case of the operation; a partner
                   department invited to it
owner_or_lead      a unit owning the case, or leading the operation, the object belongs to
territory          a unit, the place lies in its own territory, and the object (if it exists
                   already) was registered by the same unit
own_department     a partner acting for its own department
own_indicators     a unit's own figures, a partner's own department's
filer              the account that filed the report
self               a citizen: only about itself
=================  ========================================================================
"""
from __future__ import annotations

from dataclasses import dataclass

from .auth import COMMAND, READ_ALL, ROLES, Forbidden, NotFound, may_see_indicators, sees_operation

READERS = READ_ALL


# ------------------------------------------------------------------ the relations
def _unit(principal) -> str | None:
    return principal.unit_id if principal.role == "unit" else None


def _owning_unit(principal, case) -> bool:
    return bool(_unit(principal)) and isinstance(case, dict) and case.get("unit_id") == principal.unit_id


def _lead(principal, operation) -> bool:
    return bool(_unit(principal)) and isinstance(operation, dict) and operation.get("lead_unit") == principal.unit_id


def _owner_or_lead(principal, obj) -> bool:
    """``obj``: {"case": dispatch's view or None, "operation": the operation or None}."""
    return _owning_unit(principal, obj.get("case")) or _lead(principal, obj.get("operation"))


def _territory(principal, obj) -> bool:
    """``obj``: {"units": the units whose territory the place touches, "exists": whether the id is
    registered already, "registered_by": the unit that registered it (None: the command centre or
    the default set)}."""
    unit = _unit(principal)
    units = set(obj.get("units") or ())
    existing = obj.get("exists", False)
    return bool(unit) and units == {unit} and (not existing or obj.get("registered_by") == unit)


def _filer(principal, report) -> bool:
    return isinstance(report, dict) and bool(report.get("account_id")) and report["account_id"] == principal.actor_id


RELATIONS = {
    "public": lambda principal, obj: True,
    "any": lambda principal, obj: True,
    "command_centre": lambda principal, obj: principal.role in COMMAND,
    "reader": lambda principal, obj: principal.role in READERS,
    "owning_unit": _owning_unit,
    "lead": _lead,
    "participant": lambda principal, obj: isinstance(obj, dict) and sees_operation(principal, obj),
    "owner_or_lead": _owner_or_lead,
    "territory": _territory,
    "own_department": lambda principal, obj: principal.role == "partner" and obj == principal.department,
    "own_indicators": lambda principal, obj: may_see_indicators(principal, *obj),
    "filer": _filer,
    "self": lambda principal, obj: principal.role == "citizen",
}
GLOBAL = ("public", "any", "command_centre", "reader", "self")   # hold on every object of the kind


def holds(relation: str, principal, obj) -> bool:
    return RELATIONS[relation](principal, obj)


def may_see_contacts(principal, case) -> bool:
    """Reporters' phones and e-mail addresses: the command centre, and the unit the case is assigned to."""
    return principal.role in COMMAND or _owning_unit(principal, case)


# ------------------------------------------------------------------ the declarations
@dataclass(frozen=True)
class Access:
    """What an endpoint acts on and the relation each role needs on it."""
    target: str | None
    by_role: dict
    write: bool = False
    identity: tuple = ()            # body fields naming the actor: filled from the key
    named_by_command: tuple = ()    # … of which the command centre may name whom it acts for (代办)
    label: str = ""                 # the object's name in messages (案件, 联合行动 …)
    public: bool = False            # no key needed (the principal is then None)

    def __post_init__(self):                       # a wrong declaration fails at import
        if set(self.by_role.values()) - set(RELATIONS):
            raise ValueError(f"unknown relations {set(self.by_role.values()) - set(RELATIONS)}")
        if set(self.by_role) - set(ROLES):
            raise ValueError(f"unknown roles {set(self.by_role) - set(ROLES)}")
        if self.write and "leader" in self.by_role:
            raise ValueError("the leader is read-only: never listed on a write")

    @property
    def roles(self) -> tuple:
        return tuple(role for role in ROLES if role in self.by_role)


def public() -> Access:
    """No key needed: /health, the OpenAPI document, the points catalogue, QR codes."""
    return Access(None, {}, public=True)


def roles_with(relation: str, roles) -> dict:
    return {role: relation for role in roles}


def command_and(**others) -> dict:
    """The command centre on every object, plus ``role=relation`` for the others."""
    return {**roles_with("command_centre", COMMAND), **others}


def readers_and(**others) -> dict:
    """The readers (command centre, leader, inspector) on every object, plus the others."""
    return {**roles_with("reader", READERS), **others}


# declared here for endpoints in modules outside this area (services/gateway/open311.py)
DECIDE = Access("dispute", command_and(), write=True, identity=("decided_by",), label="权属争议")
# 回访 (POST /open311/v2/requests/<id>/satisfaction): only the account or app that filed the
# request; intake checks the filer the gateway passes (tests/integration/test_access_matrix.py)
CALLBACK = Access("report", {"citizen": "filer"}, write=True, label="上报")
INTAKE_READ = Access(None, readers_and())          # intake's own views (contacts: the command centre's)
OPEN311_ROUTES = {("POST", "/open311/v2/requests/{request_id}/satisfaction.json"): CALLBACK}


class Caller:
    """The principal as an endpoint sees it: its attributes, and ``check`` for the endpoint's
    declared relation."""

    def __init__(self, principal, access: Access):
        self._principal, self.access = principal, access

    def __getattr__(self, name):
        return getattr(self._principal, name)

    @property
    def principal(self):
        return self._principal

    @property
    def relation(self) -> str:
        return self.access.by_role.get(self._principal.role, "")

    @property
    def sees_all(self) -> bool:
        """The caller's relation holds on every object of the kind (no need to fetch one to check)."""
        return self.relation in GLOBAL

    def allows(self, obj) -> bool:
        return bool(self.relation) and holds(self.relation, self._principal, obj)

    def check(self, obj, what: str = "", *, found: bool | None = None):
        """NotFound when there is no such object; NotFound (read) or Forbidden (write) when the
        caller does not hold the endpoint's relation on it. Returns ``obj``."""
        label = self.access.label or "对象"
        if (obj is None) if found is None else not found:
            raise NotFound(f"没有{label} {what} (not found)".replace("  ", " "))
        if not self.allows(obj):
            if self.access.write:
                raise Forbidden(f"这不是本单位/本账号可操作的{label} (not yours to act on)")
            raise NotFound(f"没有{label} {what} (not found)".replace("  ", " "))
        return obj

    def fill(self, data: dict, **values) -> dict:
        """``data`` with the declared identity fields set from the key (the body's are dropped)."""
        data = {key: value for key, value in data.items() if key not in self.access.identity}
        for name in self.access.identity:
            if name in values:
                data[name] = values[name]
        return data


# ------------------------------------------------------------------ the table in docs/api.md
RELATION_NAMES = {"command_centre": "指挥中心 command centre", "reader": "reads all", "any": "any",
                  "owning_unit": "owning unit 本单位案件", "lead": "lead 牵头单位", "participant": "participant 参与方",
                  "owner_or_lead": "case owner or lead", "territory": "own territory 辖区内",
                  "own_department": "own department", "own_indicators": "own figures", "filer": "the filer 上报人",
                  "self": "itself"}
MARK_BEGIN, MARK_END = "<!-- access table: python -m services.gateway.access -->", "<!-- end of access table -->"


def table() -> str:
    """The access table of every declared endpoint, in markdown (docs/api.md embeds it)."""
    from .openapi import native_routes, openapi_path
    from .service import GatewayService
    rows = [(method, openapi_path(url), fn.access) for method, url, fn in native_routes(GatewayService)
            if getattr(fn, "access", None) is not None]
    rows += [(method, path, declared) for (method, path), declared in OPEN311_ROUTES.items()]
    lines = [MARK_BEGIN, "", "| endpoint | acts on | who (relation needed) | from the key |", "|---|---|---|---|"]
    for method, path, declared in sorted(rows, key=lambda row: (row[1], row[0])):
        if declared.public:
            who = "public (no key)"
        else:
            groups: dict = {}
            for role in declared.roles:
                groups.setdefault(declared.by_role[role], []).append(role)
            who = "; ".join(f"{', '.join(roles)}: {RELATION_NAMES[relation]}" for relation, roles in groups.items())
        filled = ", ".join(f"`{name}`" + ("¹" if name in declared.named_by_command else "")
                           for name in declared.identity)
        target = (declared.label or declared.target) if declared.target else "—"
        write = " (write)" if declared.write else ""
        lines.append(f"| `{method} {path}` | {target}{write} | {who} | {filled} |")
    lines += ["", "¹ the command centre may name whom it acts for (the street that asked, the lead it closes for, "
              "the inspector whose radio report it enters).", "", MARK_END]
    return "\n".join(lines)


def main(argv=None) -> int:
    print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Access", "Caller", "RELATIONS", "holds", "may_see_contacts", "command_and", "readers_and",
           "roles_with", "public", "table", "Forbidden", "NotFound"]
