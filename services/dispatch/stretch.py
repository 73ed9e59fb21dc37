"""双街长/双路长 and 社区城管联络员 hear of the cases on their stretch — pure (no I/O).

When a case is first dispatched, two notifications join the owner's in the same saved change
(services/dispatch/notifications.py sends them like any other): one to the street's 双街长 and the
双路长 of every road through the case's grid (kind ``double_chief``), one to the community's
liaison officers (kind ``liaison``). The people come from the reference data
(``district.stretch_people``, shared/refdata/practices.py); a grid without them gets neither.
"""
from __future__ import annotations

from .notices import unit_name


def chief_people(people: dict) -> list[dict]:
    """The street's and the roads' chiefs, each person once (a person may chief a street and a road)."""
    seen, out = set(), []
    groups = [people.get("street_chiefs") or []] + [r["chiefs"] for r in people.get("road_chiefs") or []]
    for group in groups:
        for person in group:
            if person["phone"] not in seen:
                seen.add(person["phone"])
                out.append({"name": person["name"], "role": person["role"], "phone": person["phone"]})
    return out


def text(kind: str, district, doc: dict, roads: list[str]) -> str:
    case = doc["case"]
    what = f"案件 {doc['_id']}（{case.get('class_name', case.get('class_code'))}，{case.get('address') or '见地图'}）"
    owner = unit_name(district, doc["unit_id"])
    if kind == "double_chief":
        where = "、".join(roads) if roads else unit_name(district, doc.get("street_id") or "")
        return f"【大城管·双长制】{where}街长/路长：{what}在您的责任段，已派遣{owner}处置，请督促。"
    return f"【大城管·社区联络员】{what}在您的社区，已派遣{owner}处置，请关注并参与评议。"


def notify_stretch(doc: dict, change, ctx) -> None:
    """Queue the chiefs' and the liaisons' notifications of a newly dispatched case."""
    people = ctx.district.stretch_people(doc.get("grid_code"))
    roads = [r["road"] for r in people["road_chiefs"]]
    for kind, recipients in (("double_chief", chief_people(people)),
                             ("liaison", [{k: p[k] for k in ("name", "role", "phone")} for p in people["liaisons"]])):
        if not recipients:
            continue
        change.notes.append({"id": f"{doc['_id']}.notified.{kind}", "kind": kind, "case_id": doc["_id"],
                             "unit_id": doc["unit_id"], "recipients": recipients,
                             "message": text(kind, ctx.district, doc, roads), "at": ctx.now})
