"""Who leads a joint operation (牵头单位) — pure. The lead is the one unit that closes it
("事不完，人不走") and to whom silent departments are escalated.
"""
from __future__ import annotations


def choose_lead(trigger: str, requested_by: str, named: str | None, default: str) -> str:
    """The lead unit of a new operation:

    - the unit the command names (``lead_unit``: the command centre may name one);
    - else a whistle (吹哨) is led by the street or town that blew it (街乡吹哨、部门报到);
    - else (a class rule, a dispatcher's escalation) by the district's enforcement bureau,
      ``default`` (config/departments.yaml ``coordination.lead_unit``)."""
    if named:
        return named
    if trigger == "whistle" and requested_by:
        return requested_by
    return default


def lead_info(unit: dict | None, unit_id: str) -> dict:
    """Lead unit name and on-duty contact (值班员 first) from a units.yaml entry."""
    unit = unit or {}
    contacts = unit.get("contacts") or []
    duty = next((c for c in contacts if "值班" in (c.get("role") or "")), contacts[0] if contacts else None)
    contact = f"{duty.get('name', '')} {duty.get('phone', '')}".strip() if duty else ""
    return {"unit_id": unit_id, "name": unit.get("name", unit_id), "contact": contact}
