"""The routing table (条块结合、以块为主) and the supervision settings, from config/routing.yaml.

``load_settings(config)`` reads the file once per path (``ROUTING_CONFIG`` in the service config or
the environment, else config/routing.yaml), validates it against the district's reference data and
applies the ``DISPATCH_*`` overrides. Everything else here is pure: ``Settings.route(case,
district)`` decides the unit, the case kind and the time limit of a case.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import yaml

from shared.calendar import parse_duration
from shared.refdata import CASE_KINDS, URGENCIES

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = ROOT / "config" / "routing.yaml"

WHEN_KEYS = {"class", "unless_class", "major", "kind", "owner", "street", "street_type", "grid",
             "urgency"}
NOTIFY_KINDS = ("dispatch", "warning", "supervision", "escalation", "rework", "verification")


class RoutingError(ValueError):
    """config/routing.yaml is wrong; the message names every problem."""


@dataclass(frozen=True)
class Rule:
    name: str
    when: dict
    route: str
    case_kind: str | None = None
    deadline: dict | None = None

    def matches(self, facts: dict) -> bool:
        when = self.when
        if "class" in when and facts["class"] not in when["class"]:
            return False
        if "unless_class" in when and facts["class"] in when["unless_class"]:
            return False
        if "major" in when and facts["class"][:3] not in when["major"]:
            return False
        if "kind" in when and facts["kind"] != when["kind"]:
            return False
        if "owner" in when and not any(_glob(pattern, facts["owner"]) for pattern in when["owner"]):
            return False
        if "street" in when and facts["street"] not in when["street"]:
            return False
        if "street_type" in when and facts["street_type"] != when["street_type"]:
            return False
        if "grid" in when and not (facts["grid"] and any(facts["grid"].startswith(prefix)
                                                          for prefix in when["grid"])):
            return False
        if "urgency" in when and facts["urgency"] not in when["urgency"]:
            return False
        return True


def _glob(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


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
        and place by the rules; no rule → intake's owner_unit.
        """
        minor = district.minor_class(case["class_code"])
        street_id = case.get("street_id")
        street = district.units.get(street_id) if street_id else None
        owner = case["owner_unit"]
        component = district.components.get(case.get("object_code") or "")
        if component is not None and minor["kind"] == "component":
            owner = component["owner"]                  # this very object's owner (部件权属)
        facts = {
            "class": case["class_code"], "kind": minor["kind"], "owner": owner,
            "street": street_id, "street_type": street.get("type") if street else None,
            "grid": case.get("grid_code"), "urgency": case.get("urgency", "normal"),
        }
        chosen = next((rule for rule in self.rules if rule.matches(facts)), None)
        unit_id = owner
        if chosen is not None:
            if chosen.route == "street":
                unit_id = street_id or owner
            elif chosen.route != "owner":
                unit_id = chosen.route
        urgency = facts["urgency"]
        deadlines = dict(minor.get("deadline") or {})
        if chosen is not None and chosen.deadline:
            deadlines.update(chosen.deadline)
        time_limit = deadlines.get(urgency) or deadlines.get("normal") or "1d"
        case_kind = (chosen.case_kind if chosen and chosen.case_kind else None) \
            or minor.get("case_kind", "committed")
        return {"unit_id": unit_id, "rule": chosen.name if chosen else "默认：立案时确定的权属单位",
                "case_kind": case_kind, "time_limit": time_limit}

    def time_limit(self, case: dict, district, urgency: str) -> str:
        """The handling time limit of this case at another urgency (same rules, same place)."""
        return self.route(dict(case, urgency=urgency), district)["time_limit"]


# ---------------------------------------------------------------------- building and checking
def _as_list(value):
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_duration(value, where, problems):
    try:
        days, rest = parse_duration(str(value))
        if days == 0 and rest <= timedelta(0):
            raise ValueError("zero")
    except ValueError:
        problems.append(f"{where}: {value!r} is not a working-time duration like 4h, 30m or 2d")


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
    rules = []
    for index, raw in enumerate(data.get("rules") or []):
        where = f"rules[{index}]"
        if not isinstance(raw, dict) or not raw.get("name") or not raw.get("route"):
            problems.append(f"{where}: needs name, when and route")
            continue
        when = dict(raw.get("when") or {})
        unknown = set(when) - WHEN_KEYS
        if unknown:
            problems.append(f"{where} ({raw['name']}): unknown when keys {sorted(unknown)}")
        for key in ("class", "unless_class", "major", "owner", "street", "grid", "urgency"):
            if key in when:
                when[key] = [str(item) for item in _as_list(when[key])]
        route = str(raw["route"])
        if district is not None:
            for code in when.get("class", []) + when.get("unless_class", []):
                if code not in district.taxonomy:
                    problems.append(f"{where} ({raw['name']}): unknown class {code}")
            for street in when.get("street", []):
                if street not in district.units:
                    problems.append(f"{where} ({raw['name']}): unknown street {street}")
            if route not in ("street", "owner") and route not in district.units:
                problems.append(f"{where} ({raw['name']}): route {route!r} is not street, owner or a unit id")
        if when.get("kind") not in (None, "component", "event"):
            problems.append(f"{where}: kind must be component or event")
        if when.get("street_type") not in (None, "street", "town"):
            problems.append(f"{where}: street_type must be street or town")
        case_kind = raw.get("case_kind")
        if case_kind is not None and case_kind not in CASE_KINDS:
            problems.append(f"{where}: case_kind must be one of {', '.join(CASE_KINDS)}")
        deadline = raw.get("deadline")
        if deadline is not None:
            if not isinstance(deadline, dict) or set(deadline) - set(URGENCIES):
                problems.append(f"{where}: deadline must map {'/'.join(URGENCIES)} to durations")
                deadline = None
            else:
                deadline = {key: str(value) for key, value in deadline.items()}
                for key, value in deadline.items():
                    _check_duration(value, f"{where}.deadline.{key}", problems)
        rules.append(Rule(str(raw["name"]), when, route, case_kind, deadline))

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
    if problems:
        raise RoutingError("config/routing.yaml:\n  - " + "\n  - ".join(problems))
    return Settings(rules=tuple(rules), command_centre=str(data.get("command_centre", "centre.command")),
                    supervision=base, by_kind=by_kind, escalate_to=escalate_to, roles=roles,
                    extension_approvers=approvers, park_approver=park_approver,
                    urgency_changer=urgency_changer, notify_roles=notify)


@lru_cache(maxsize=8)
def _read(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def load_settings(config: dict | None = None, district=None) -> Settings:
    """The settings for a running service: the file, then ``DISPATCH_*`` overrides from the service
    config or the environment."""
    config = config or {}
    path = config.get("ROUTING_CONFIG") or os.environ.get("ROUTING_CONFIG") or DEFAULT_PATH
    overrides = {}
    for name in ("DISPATCH_WARN_SHARE", "DISPATCH_ESCALATE_AFTER", "DISPATCH_VERIFY_WITHIN"):
        value = config.get(name, os.environ.get(name))
        if value not in (None, ""):
            overrides[name] = value
    return _cached(str(path), tuple(sorted(overrides.items())), district)


@lru_cache(maxsize=8)
def _cached(path: str, overrides: tuple, district) -> Settings:
    return build_settings(_read(path), district, dict(overrides))
