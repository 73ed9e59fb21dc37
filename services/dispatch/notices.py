"""The notification texts and recipients (pure; Chinese, for the people who read them). How a
saved notification reaches people is services/dispatch/notifications.py (the adapters)."""
from __future__ import annotations

from shared.refdata import sms_number


def recipients(district, unit_id: str, keywords: list[str]) -> list[dict]:
    """The unit's contacts SMS reaches whose role contains one of the keywords (all of them when
    none does); ``phone`` is the number the SMS goes to: the contact's mobile, never a landline."""
    unit = district.units.get(unit_id) or {}
    contacts = [dict(contact, phone=sms_number(contact)) for contact in unit.get("contacts") or []]
    contacts = [contact for contact in contacts if contact["phone"]]
    chosen = [contact for contact in contacts if any(word in contact.get("role", "") for word in keywords)]
    return [{"name": c["name"], "role": c["role"], "phone": c["phone"]} for c in (chosen or contacts)]


def unit_name(district, unit_id: str) -> str:
    return (district.units.get(unit_id) or {}).get("name", unit_id)


def local_text(district, moment) -> str:
    """A moment as the people reading a notice see it: local date and time to the minute."""
    return f"{district.calendar.to_local(moment):%Y-%m-%d %H:%M}"


def text(kind: str, district, case: dict, doc: dict, **extra) -> str:
    """The message for one notification kind (``case`` is the registration, ``doc`` the case)."""
    name = unit_name(district, doc["unit_id"])
    what = f"案件 {doc['_id']}（{case.get('class_name', case.get('class_code'))}，{case.get('address') or '见地图'}）"
    deadline = local_text(district, doc["deadline"]) if doc.get("deadline") else ""
    if kind == "dispatch":
        return f"【大城管】{name}：{what}已派遣给贵单位，请于 {deadline} 前处置。"
    if kind == "warning":
        return (f"【大城管·预警】{name}：{what}处置时限已用 {extra.get('share', 0):.0%}，"
                f"请于 {deadline} 前处置完毕。")
    if kind == "supervision":
        return f"【大城管·督办】{name}：{what}已超过处置时限 {deadline}，请立即处置并反馈。"
    if kind == "escalation":
        return (f"【大城管·升级】{unit_name(district, extra['to'])}：{what}由{name}处置，"
                f"超过时限 {deadline} 仍未办结，已督办未果，请领导小组协调。")
    if kind == "rework":
        return f"【大城管·返工】{name}：{what}{extra.get('reason', '')}，请返工并于 {deadline} 前反馈。"
    if kind == "verification":
        inspector = extra.get("inspector") or "网格员"
        return (f"【大城管·核查】{inspector}：{what}已由{name}反馈处置结果，"
                f"请于 {local_text(district, extra['due'])} 前到现场核查。")
    if kind == "stage_overdue":
        return (f"【大城管·阶段督办】{name}：{what}「{extra['stage']}」应于 {local_text(district, extra['due'])} "
                f"前完成，尚未报告，请立即处置并报告进展。")
    if kind == "verification_overdue":
        inspector = extra.get("inspector") or "网格员"
        return f"【大城管·核查超时】{inspector}：{what}核查时限 {local_text(district, extra['due'])} 已过，请尽快核查。"
    raise ValueError(f"unknown notification kind {kind!r}")
