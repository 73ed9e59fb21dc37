"""The routing table (条块结合、以块为主) of config/routing.yaml: its rules, the facts of a case they
are matched against, and which rule decides. Pure except :func:`load_rules` (reads the file once).

One owner for "who handles this case, under which rule": dispatch routes with it
(services.dispatch.routing), and the time-limit rule (shared.time_limits) reads the same chosen
rule, so intake's filing notice and dispatch's deadline agree.

After 确权 (an ownership decision, ``owner_source == "ownership_decided"`` on the case) the
responsibility map is the single answer to "who owns this point": the decided owner is the case's
owner for every class and every rule — a rule routing to the street (属地) routes to the decided
owner, and so does a rule naming a fixed unit or ``owner``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import yaml

from shared.calendar import parse_duration
from shared.refdata import CASE_KINDS, URGENCIES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "config" / "routing.yaml"
WHEN_KEYS = {"class", "unless_class", "major", "kind", "owner", "street", "street_type", "grid",
             "urgency"}
DECIDED = "ownership_decided"          # intake's owner_source when a 确权 decision applied
DECIDED_RULE = "权属裁定（确权）：责任单位以裁定为准"


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


def decided_owner(case: dict) -> str | None:
    """The owner fixed by an ownership decision (确权) for this case, else None."""
    if case.get("owner_source") == DECIDED and case.get("owner_unit"):
        return case["owner_unit"]
    return None


def facts(case: dict, district, urgency: str | None = None) -> dict:
    """What the rules look at: class, kind, owner, street (属地) and its type, grid, urgency.
    ``case`` is a registered case (intake's case_registered payload)."""
    minor = district.minor_class(case["class_code"])
    street_id = case.get("street_id")
    owner = case["owner_unit"]
    decided = decided_owner(case)
    component = district.components.get(case.get("object_code") or "")
    if decided is None and component is not None and minor["kind"] == "component":
        owner = component["owner"]                      # this very object's owner (部件权属)
    street = district.units.get(street_id) if street_id else None
    if decided is not None and (district.units.get(decided) or {}).get("type") in ("street", "town"):
        street_id, street = decided, district.units[decided]   # the decided 属地 of the point
    return {"class": case["class_code"], "kind": minor["kind"], "owner": owner,
            "street": street_id, "street_type": street.get("type") if street else None,
            "grid": case.get("grid_code"), "urgency": urgency or case.get("urgency") or "normal"}


def choose(rules, case_facts: dict) -> Rule | None:
    """The first rule whose ``when`` matches (None: intake's owner, the taxonomy's limits)."""
    return next((rule for rule in rules if rule.matches(case_facts)), None)


def unit_for(rule: Rule | None, case: dict, case_facts: dict) -> str:
    """The unit a case goes to under ``rule``; a decided owner (确权) beats every rule."""
    decided = decided_owner(case)
    if decided is not None:
        return decided
    owner = case_facts["owner"]
    if rule is None or rule.route == "owner":
        return owner
    if rule.route == "street":
        return case_facts["street"] or owner
    return rule.route


# ---------------------------------------------------------------------- reading and checking
def _as_list(value):
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_duration(value, where, problems):
    try:
        days, rest = parse_duration(str(value))
        if days == 0 and rest <= timedelta(0):
            raise ValueError("zero")
    except ValueError:
        problems.append(f"{where}: {value!r} is not a working-time duration like 4h, 30m or 2d")


def parse_rules(items, district=None, problems: list | None = None) -> tuple:
    """The rules of a parsed routing.yaml (``data["rules"]``); every problem is appended to
    ``problems``. ``district`` (when given) checks ids and codes."""
    problems = problems if problems is not None else []
    rules = []
    for index, raw in enumerate(items or []):
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
                    check_duration(value, f"{where}.deadline.{key}", problems)
        rules.append(Rule(str(raw["name"]), when, route, case_kind, deadline))
    return tuple(rules)


def table_path(config: dict | None = None) -> str:
    """config/routing.yaml, or ``ROUTING_CONFIG`` from the service config or the environment."""
    return str((config or {}).get("ROUTING_CONFIG") or os.environ.get("ROUTING_CONFIG") or DEFAULT_PATH)


@lru_cache(maxsize=8)
def read(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def load_rules(config: dict | None = None, district=None) -> tuple:
    """The rules of the routing table in use (read once per path). A bad table raises ValueError."""
    problems: list[str] = []
    rules = parse_rules(read(table_path(config)).get("rules"), district, problems)
    if problems:
        raise ValueError("config/routing.yaml:\n  - " + "\n  - ".join(problems))
    return rules
