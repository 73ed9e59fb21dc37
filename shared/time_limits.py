"""The time-limit rule (处置时限): one answer for class × place (its street/town type, grid …) ×
urgency, from the taxonomy's limits refined by the routing table's chosen rule. Pure.

Intake's filing notice ("处置时限 …") and dispatch's deadline both call :func:`time_limit`, so the
citizen is told the limit the unit is held to (暴露垃圾 in a town: 1 working day, not 4 hours).
"""
from __future__ import annotations

from shared import routing_table


def from_rule(minor: dict, rule, urgency: str) -> str:
    """The limit of a class (``minor`` from the taxonomy) under the chosen ``rule`` (or None)."""
    limits = dict(minor.get("deadline") or {})
    if rule is not None and rule.deadline:
        limits.update(rule.deadline)
    return limits.get(urgency) or limits.get("normal") or "1d"


def time_limit(district, case: dict, urgency: str | None = None, rules=None) -> str:
    """The 处置时限 of a registered case (intake's case fields) at its urgency or ``urgency``.
    ``rules``: the routing table's rules (default: the table in use, shared.routing_table)."""
    if rules is None:
        rules = routing_table.load_rules(district=district)
    case_facts = routing_table.facts(case, district, urgency)
    rule = routing_table.choose(rules, case_facts)
    return from_rule(district.minor_class(case["class_code"]), rule, case_facts["urgency"])
