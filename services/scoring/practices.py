"""The practices' indicators — pure (no I/O): 721 工作法 (Meishan) and the 双街长/双路长's own
indicators (Beibei). Registered in the report by services/scoring/store.py (``report["practices"]``);
the events they read come from services/scoring/practices_data.py.

**721**: every disposal is classed as 服务 service, 管理 management or 执法 enforcement.

* A disposal is a closed case (``case_closed``, credited to the unit that handled it) or an
  enforcement decision on no case closed in the period (``enforcement_decided``, credited to the
  lead unit, 城管).
* A closed case with enforcement decisions is classed by the highest step of the ladder it
  reached (说服/教育/引导 → 服务, 警告 → 管理, 处罚 → 执法); one without by its class: the event
  majors in ``practices.mode_721.management_event_majors`` (宣传广告, 施工管理, 街面秩序) → 管理,
  everything else (repairs, cleaning, every 部件) → 服务.
* Each unit's mix is reported against the target (70/20/10 by default), with the gap in
  percentage points; a unit within ``tolerance_points`` on every mode meets the target.

**双街长/双路长**: each chief's indicators are those of the cases in their stretch (the street's
grids, or the road's), summed from the report's grid counts; a chief with no case: 无案件.
"""
from __future__ import annotations

from shared.refdata import LEAD_UNIT

from .indicators import INDICATORS, indicator_block
from .practices_settings import MODES

MODE_NAMES = {"service": "服务", "management": "管理", "enforcement": "执法"}
STEP_MODES = {"persuade": "service", "educate": "service", "guide": "service",
              "warn": "management", "penalise": "enforcement"}
LADDER = ("persuade", "educate", "guide", "warn", "penalise")
CHIEF_INDICATORS = {code: INDICATORS[code] for code in
                    ("filing_rate", "dispatch_rate", "closure_rate", "ontime_rate", "rework_rate",
                     "extension_rate")}
CHIEF_COUNTS = ("accepted_reports", "filed_reports", "registered_cases", "dispatched_cases", "due",
                "closed", "closed_on_time", "reworked", "extended")
NO_CASES = "无案件"


# ------------------------------------------------------------------ 721
def step_mode(step: str | None) -> str | None:
    return STEP_MODES.get(step or "")


def class_mode(class_code: str | None, settings: dict) -> str:
    majors = settings["practices"]["mode_721"]["management_event_majors"]
    code = class_code or ""
    return "management" if code.startswith("E") and code[1:3] in majors else "service"


def disposals(closures: list[dict], classes: dict, decisions: list[dict], settings: dict) -> list[dict]:
    """``closures``: case_closed payloads of the period; ``classes``: case_id → class_code;
    ``decisions``: enforcement_decided payloads (of the period, and of the closed cases).
    Returns ``[{unit_id, case_id, mode, basis}]``, one per disposal."""
    by_case: dict[str, list[dict]] = {}
    for decision in decisions:
        if decision.get("case_id"):
            by_case.setdefault(decision["case_id"], []).append(decision)
    out, closed = [], set()
    for closure in closures:
        case_id = closure["case_id"]
        if case_id in closed:
            continue                                   # a case closed twice (rework) is one disposal
        closed.add(case_id)
        steps = [d["step"] for d in by_case.get(case_id, []) if d.get("step") in STEP_MODES]
        if steps:
            top = max(steps, key=LADDER.index)
            out.append({"unit_id": closure["unit_id"], "case_id": case_id, "mode": step_mode(top),
                        "basis": f"ladder:{top}"})
        else:
            out.append({"unit_id": closure["unit_id"], "case_id": case_id,
                        "mode": class_mode(classes.get(case_id), settings),
                        "basis": f"class:{classes.get(case_id)}"})
    for decision in decisions:
        if decision.get("in_period") and decision.get("case_id") not in closed and step_mode(decision.get("step")):
            out.append({"unit_id": LEAD_UNIT, "case_id": decision.get("case_id"),
                        "mode": step_mode(decision["step"]), "basis": f"ladder:{decision['step']}"})
    return out


def _mix(items: list[dict], target: dict, tolerance: float) -> dict:
    counts = {mode: sum(1 for item in items if item["mode"] == mode) for mode in MODES}
    total = sum(counts.values())
    rows = {}
    for mode in MODES:
        share = round(100 * counts[mode] / total, 1) if total else None
        rows[mode] = {"label": MODE_NAMES[mode], "count": counts[mode], "share": share,
                      "target": target[mode],
                      "gap_points": None if share is None else round(share - target[mode], 1)}
    meets = None if not total else all(abs(row["gap_points"]) <= tolerance for row in rows.values())
    return {"total": total, "modes": rows, "meets_target": meets,
            "status": NO_CASES if not total else ("达标" if meets else "偏离"),
            "mix_text": "—" if not total else "/".join(f"{rows[m]['share']:g}" for m in MODES)}


def mode_721(items: list[dict], district, settings: dict) -> dict:
    """The district's and each unit's 721 mix against the target."""
    conf = settings["practices"]["mode_721"]
    target, tolerance = dict(conf["target"]), conf["tolerance_points"]
    units = {}
    for unit_id in sorted({item["unit_id"] for item in items}):
        unit = district.units.get(unit_id, {})
        units[unit_id] = dict(_mix([i for i in items if i["unit_id"] == unit_id], target, tolerance),
                              unit_id=unit_id, name=unit.get("name", unit_id), type=unit.get("type"))
    return {"label": "721 工作法（服务/管理/执法）", "target": target, "tolerance_points": tolerance,
            "district": _mix(items, target, tolerance), "units": units}


# ------------------------------------------------------------------ 双街长/双路长
def chief_indicators(grid_rows: dict, district) -> list[dict]:
    """Every chief's indicators over their stretch (``grid_rows``: the report's ``grids``)."""
    out = []
    for chief in district.chief_stretches():
        counts = {name: 0 for name in CHIEF_COUNTS}
        for code in chief["grids"]:
            for name in CHIEF_COUNTS:
                counts[name] += (grid_rows.get(code) or {}).get("counts", {}).get(name, 0)
        has_cases = any(counts.values())
        out.append({"key": chief["key"], "name": chief["name"], "role": chief["role"],
                    "side": chief["side"], "kind": chief["kind"],
                    "kind_name": "双街长" if chief["kind"] == "street" else "双路长",
                    "stretch": chief["stretch"], "stretch_name": chief["stretch_name"],
                    "grids": chief["grids"], "counts": counts,
                    "indicators": indicator_block(counts, CHIEF_INDICATORS),
                    "status": "" if has_cases else NO_CASES})
    return out


def section(report: dict, data: dict, district, settings: dict) -> dict:
    """``report["practices"]``: the 721 mix and the chiefs' indicators. ``data`` is what
    practices_data.events_721 read: ``{closures, classes, decisions}``."""
    items = disposals(data["closures"], data["classes"], data["decisions"], settings)
    return {"mode_721": mode_721(items, district, settings),
            "chiefs": chief_indicators(report.get("grids") or {}, district)}


def bulletin_lines(section: dict) -> list[str]:
    """The practices' lines of the monthly bulletin's data (for the 通报 text)."""
    mix = section["mode_721"]
    target = "/".join(f"{mix['target'][m]:g}" for m in MODES)
    district = mix["district"]
    lines = [f"721 工作法：全区处置 {district['total']} 件，服务/管理/执法 {district['mix_text']}"
             f"（目标 {target}，{district['status']}）。"]
    off = [row for row in mix["units"].values() if row["meets_target"] is False]
    if off:
        lines.append("721 偏离目标的单位：" + "；".join(f"{row['name']} {row['mix_text']}" for row in off) + "。")
    chiefs = section["chiefs"]
    with_cases = [c for c in chiefs if not c["status"]]
    lines.append(f"双街长/双路长：{len(chiefs)} 人，{len(with_cases)} 人责任段内有案件。")
    return lines
