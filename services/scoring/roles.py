"""Evaluation by role (评价对象), after CJ/T 292 and GB/T 30428.4 — pure: from a computed report
(services/scoring/indicators.py) to the standard's four objects. docs/scoring.md §标准对照 has each
indicator's standard definition beside the platform's.

- regions (区域评价): streets, towns and parks — 受理/立案/派遣 of their territory, 结案, 按期结案;
- handling units (处置单位评价): 应处置数, 按期处置数, 按期处置率, 返工率, 超期处置数, 超期未处置数;
- the supervision and command centre (监督指挥中心评价): 受理数, 立案数, 派遣数, 准确派遣率
  (派遣数 − 回退数) / 派遣数, 按期核实率, 按期核查率;
- inspectors (监督员评价): 有效上报率, 按期核实率, 按期核查率 — by name.

Every unit of the reference data appears, with "无案件" when nothing of it fell in the period.
"""
from __future__ import annotations

from .indicators import TERRITORIAL_TYPES, indicator_block

NO_CASES = "无案件"

REGION_INDICATORS = {
    "filing_rate": ("立案率", "filed_reports", "accepted_reports"),
    "dispatch_rate": ("派遣率", "dispatched_cases", "registered_cases"),
    "closure_rate": ("结案率", "closed", "due"),
    "ontime_rate": ("按期结案率", "closed_on_time", "due"),
}
CENTRE_INDICATORS = {
    "filing_rate": ("立案率", "filed_reports", "accepted_reports"),
    "dispatch_rate": ("派遣率", "dispatched_cases", "registered_cases"),
    "accurate_dispatch_rate": ("准确派遣率", "accurate_dispatches", "dispatches_received"),
    "verify_ontime_rate": ("按期核实率", "decided_on_time", "decided"),
    "check_ontime_rate": ("按期核查率", "verified_on_time", "verifications"),
}
INSPECTOR_ROLE_INDICATORS = {
    "valid_report_rate": ("有效上报率", "valid_reports", "reports"),
    # 核实 tasks of public reports (services/dispatch/report_check.py; counted in checks.py)
    "verify_ontime_rate": ("按期核实率", "verify_tasks_on_time", "verify_tasks"),
    "check_ontime_rate": ("按期核查率", "verified_on_time", "verifications"),
}


def handler_indicators(settings: dict) -> dict:
    denominator = settings.get("standard", {}).get("rework_denominator", "due")
    return {
        "handle_ontime_rate": ("按期处置率", "closed_on_time", "due"),
        "closure_rate": ("结案率", "closed", "due"),
        "rework_rate": ("返工率", "reworked", denominator),
    }


def _row(unit_id: str, unit: dict, counts: dict | None, table: dict, names: tuple) -> dict:
    counts = {name: (counts or {}).get(name, 0) for name in names}
    empty = not any(counts.values())
    return {"unit_id": unit_id, "name": unit.get("name", unit_id), "type": unit.get("type"),
            "status": NO_CASES if empty else None, "counts": counts,
            "indicators": indicator_block(counts, table)}


def evaluate(report: dict, district, settings: dict) -> dict:
    units = getattr(district, "units", {}) or {}
    rows = report["units"]
    region_names = ("accepted_reports", "filed_reports", "registered_cases", "dispatched_cases",
                    "due", "closed", "closed_on_time")
    regions = [_row(uid, unit, (rows.get(uid) or {}).get("counts"), REGION_INDICATORS, region_names)
               for uid, unit in sorted(units.items()) if unit.get("type") in TERRITORIAL_TYPES]
    handled_types = {t for group in settings["ranking"]["groups"] for t in group["types"]}
    handler_names = ("due", "closed", "closed_on_time", "reworked", "overdue_closed", "overdue_open")
    table = handler_indicators(settings)
    handlers = [_row(uid, unit, (rows.get(uid) or {}).get("counts"), table, handler_names)
                for uid, unit in sorted(units.items()) if unit.get("type") in handled_types]
    district_counts = dict(report["district"]["counts"])
    district_counts.update(report["district"].get("centre") or {})
    district_counts["accurate_dispatches"] = max(
        0, district_counts.get("dispatches_received", 0) - district_counts.get("returns_caused", 0))
    centre = {"name": _centre_name(), "counts": {name: district_counts.get(name, 0) for name in (
        "accepted_reports", "filed_reports", "registered_cases", "dispatched_cases",
        "dispatches_received", "returns_caused", "accurate_dispatches", "decided", "decided_on_time",
        "verifications", "verified_on_time")},
        "indicators": indicator_block(district_counts, CENTRE_INDICATORS)}
    roster = settings.get("standard", {}).get("inspector_names") or {}
    inspectors = [{"inspector_id": key, "name": inspector_name(key, roster, row.get("name")),
                   "counts": {name: row["counts"].get(name, 0) for name in
                              ("reports", "valid_reports", "verify_tasks", "verify_tasks_on_time",
                               "verifications", "verified_on_time")},
                   "indicators": indicator_block(row["counts"], INSPECTOR_ROLE_INDICATORS)}
                  for key, row in sorted(report["inspectors"].items())]
    return {"regions": regions, "handlers": handlers, "centre": centre, "inspectors": inspectors}


def inspector_name(inspector_id: str, roster: dict, reported: str | None = None) -> str:
    """姓名 from the roster (standard.inspector_names: 工号 → 姓名), else the name their reports
    carried (the reporting account's), else the 工号 marked as such."""
    return roster.get(inspector_id) or reported or f"工号 {inspector_id}（未登记姓名）"


def _centre_name() -> str:
    try:
        from shared.departments import coordination_settings
        return coordination_settings().get("command_centre_name") or "监督指挥中心"
    except (ImportError, AttributeError):
        return "监督指挥中心"
