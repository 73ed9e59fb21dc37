"""The routing table (条块结合、以块为主) and the supervision settings, from config/routing.yaml.

``load_settings(config)`` reads the file once per path (``ROUTING_CONFIG`` in the service config or
the environment, else config/routing.yaml), validates it against the district's reference data and
applies the ``DISPATCH_*`` overrides. Everything else here is pure: ``Settings.route(case,
district)`` decides the unit, the case kind and the time limit of a case.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

from shared import on_time, routing_table, time_limits
from shared.refdata import CASE_KINDS
from shared.routing_table import DEFAULT_PATH, WHEN_KEYS, Rule  # noqa: F401  (importable from here)

NOTIFY_KINDS = ("dispatch", "warning", "supervision", "escalation", "rework", "verification")


class RoutingError(ValueError):
    """config/routing.yaml is wrong; the message names every problem."""


@dataclass(frozen=True)
class Supervision:
    warn_share: float = 0.8
    escalate_after: str = "4h"
    verify_within: str = "2h"


@dataclass(frozen=True)
class Settings:
    """Everything configurable about dispatch (see config/routing.yaml)."""
    rules: tuple = ()
    command_centre: str = "centre.command"
    supervision: Supervision = Supervision()
    by_kind: dict = field(default_factory=dict)          # case kind → Supervision
    escalate_to: str = "lead.group"
    roles: dict = field(default_factory=lambda: {"operator": 1, "centre": 2, "leader": 3})
    extension_approvers: tuple = ("centre", "leader")
    park_approver: str = "centre"
    urgency_changer: str = "operator"
    notify_roles: dict = field(default_factory=dict)
    first_contact: dict = field(default_factory=dict)    # 首问负责: services/dispatch/first_contact.py
    report_check: dict = field(default_factory=dict)     # 核实 of public reports: services/dispatch/report_check.py
    # the platform-wide EXTENSION_MOVES_DEADLINE (config/platform.yaml, shared/on_time.py)
    extension_moves_deadline: bool = False

    # ------------------------------------------------------------------ supervision
    def supervision_for(self, case_kind: str) -> Supervision:
        return self.by_kind.get(case_kind, self.supervision)

    def rank(self, role: str | None) -> int:
        return self.roles.get(role or "", 0)

    # ------------------------------------------------------------------ routing
    def route(self, case: dict, district) -> dict:
        """Where a registered case goes: ``{unit_id, rule, case_kind, time_limit}``.

        ``case`` is the case_registered payload. Components go to the department that owns them,
        street-order events to the street, outsourced work to the operator, refined per class
        and place by the rules; no rule → intake's owner_unit. After 确权 the decided owner
        (intake's owner_source ``ownership_decided``) is the unit under every rule
        (shared.routing_table); the time limit is shared.time_limits' (the one intake tells).
        """
        minor = district.minor_class(case["class_code"])
        facts = routing_table.facts(case, district)
        chosen = routing_table.choose(self.rules, facts)
        unit_id = routing_table.unit_for(chosen, case, facts)
        time_limit = time_limits.from_rule(minor, chosen, facts["urgency"])
        case_kind = (chosen.case_kind if chosen and chosen.case_kind else None) \
            or minor.get("case_kind", "committed")
        rule = chosen.name if chosen else "默认：立案时确定的权属单位"
        if routing_table.decided_owner(case) is not None:
            rule = routing_table.DECIDED_RULE
        return {"unit_id": unit_id, "rule": rule, "case_kind": case_kind, "time_limit": time_limit}

    def time_limit(self, case: dict, district, urgency: str) -> str:
        """The handling time limit of this case at another urgency (same rules, same place)."""
        return time_limits.time_limit(district, case, urgency, self.rules)


# ---------------------------------------------------------------------- building and checking
_as_list = routing_table._as_list


_check_duration = routing_table.check_duration


def _supervision(data: dict, base: Supervision, where: str, problems: list) -> Supervision:
    data = data or {}
    share = data.get("warn_share", base.warn_share)
    try:
        share = float(share)
        if not 0 < share < 1:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"{where}.warn_share: {share!r} must be a number between 0 and 1")
        share = base.warn_share
    escalate = str(data.get("escalate_after", base.escalate_after))
    verify = str(data.get("verify_within", base.verify_within))
    _check_duration(escalate, f"{where}.escalate_after", problems)
    _check_duration(verify, f"{where}.verify_within", problems)
    return Supervision(share, escalate, verify)


def build_settings(data: dict, district=None, overrides: dict | None = None) -> Settings:
    """Settings from a parsed routing.yaml; ``district`` (when given) checks ids and codes."""
    problems: list[str] = []
    data = data or {}
    overrides = {key: value for key, value in (overrides or {}).items() if value not in (None, "")}
    rules = routing_table.parse_rules(data.get("rules"), district, problems)

    sup = dict(data.get("supervision") or {})
    for key, name in (("warn_share", "DISPATCH_WARN_SHARE"), ("escalate_after", "DISPATCH_ESCALATE_AFTER"),
                      ("verify_within", "DISPATCH_VERIFY_WITHIN")):
        if name in overrides:
            sup[key] = overrides[name]
    base = _supervision(sup, Supervision(), "supervision", problems)
    by_kind = {}
    for kind, values in (sup.get("by_kind") or {}).items():
        if kind not in CASE_KINDS:
            problems.append(f"supervision.by_kind: unknown case kind {kind!r}")
            continue
        merged = dict(values or {})
        if "DISPATCH_WARN_SHARE" in overrides:       # an explicit override beats the per-kind file value
            merged["warn_share"] = overrides["DISPATCH_WARN_SHARE"]
        if "DISPATCH_ESCALATE_AFTER" in overrides:
            merged["escalate_after"] = overrides["DISPATCH_ESCALATE_AFTER"]
        if "DISPATCH_VERIFY_WITHIN" in overrides:
            merged["verify_within"] = overrides["DISPATCH_VERIFY_WITHIN"]
        by_kind[kind] = _supervision(merged, base, f"supervision.by_kind.{kind}", problems)

    roles = {str(key): int(value) for key, value in (data.get("roles") or
                                                      {"operator": 1, "centre": 2, "leader": 3}).items()}
    approvers = tuple(str(role) for role in ((data.get("extension") or {}).get("approvers")
                                             or ("centre", "leader")))
    park_approver = str((data.get("park") or {}).get("approver", "centre"))
    urgency_changer = str((data.get("urgency") or {}).get("changer", "operator"))
    for role in approvers + (park_approver, urgency_changer):
        if role not in roles:
            problems.append(f"role {role!r} is used but not listed under roles")
    escalate_to = str(sup.get("escalate_to", "lead.group"))
    if district is not None and escalate_to not in district.units:
        problems.append(f"supervision.escalate_to: {escalate_to!r} is not a unit id")
    notify = {kind: [str(word) for word in _as_list(words) or []]
              for kind, words in (data.get("notifications") or {}).items()}
    first_contact = dict(data.get("first_contact") or {})              # 首问负责 (first_contact.py)
    if "reply_within" in first_contact:
        _check_duration(str(first_contact["reply_within"]), "first_contact.reply_within", problems)
    report_check = dict(data.get("report_check") or {})                # 核实 (report_check.py)
    if "within" in report_check:
        _check_duration(str(report_check["within"]), "report_check.within", problems)
    if problems:
        raise RoutingError("config/routing.yaml:\n  - " + "\n  - ".join(problems))
    return Settings(rules=tuple(rules), command_centre=str(data.get("command_centre", "centre.command")),
                    supervision=base, by_kind=by_kind, escalate_to=escalate_to, roles=roles,
                    extension_approvers=approvers, park_approver=park_approver,
                    urgency_changer=urgency_changer, notify_roles=notify,
                    first_contact=first_contact, report_check=report_check,
                    extension_moves_deadline=on_time.extension_moves_deadline(overrides))


_read = routing_table.read


def load_settings(config: dict | None = None, district=None) -> Settings:
    """The settings for a running service: the file, then ``DISPATCH_*`` overrides from the service
    config or the environment."""
    config = config or {}
    path = routing_table.table_path(config)
    overrides = {}
    for name in ("DISPATCH_WARN_SHARE", "DISPATCH_ESCALATE_AFTER", "DISPATCH_VERIFY_WITHIN",
                 on_time.SETTING):
        value = config.get(name, os.environ.get(name))
        if value not in (None, ""):
            overrides[name] = value
    return _cached(str(path), tuple(sorted(overrides.items())), district)


@lru_cache(maxsize=8)
def _cached(path: str, overrides: tuple, district) -> Settings:
    return build_settings(_read(path), district, dict(overrides))
