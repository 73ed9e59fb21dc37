"""The evaluation periods (考核周期), after the Linping practice — pure. Daily checks are the day
period (``2026-11-23``), the ranking is monthly, and the quarterly and yearly evaluation is built
from the months: a unit's score for a quarter or a year is the weighted mean of its monthly
composite scores, ``Σ w_m · score_m / Σ w_m`` over the months that have a score (a month with no
case of the unit, or not begun yet, is left out rather than counted as zero). The weight of each
month comes from ``periods.month_weights`` of config/scoring.yaml (1 unless set).
"""
from __future__ import annotations


def compose(monthly: list[tuple[int, str, dict]], weights: dict, units: dict | None = None) -> dict:
    """``monthly``: (month number 1–12, label, that month's report) in order. Returns, per unit,
    the composed score and every month's score and weight; units of the reference data with no
    score in any month are listed with ``value`` None and ``status`` 无案件."""
    out: dict[str, dict] = {}
    for number, label, report in monthly:
        weight = float(weights.get(number, 1))
        for unit_id, row in report["units"].items():
            entry = out.setdefault(unit_id, {"unit_id": unit_id, "name": row["name"], "type": row["type"],
                                             "months": {}})
            entry["months"][label] = {"score": row["composite"]["value"], "weight": weight}
    for unit_id, unit in (units or {}).items():
        out.setdefault(unit_id, {"unit_id": unit_id, "name": unit.get("name", unit_id),
                                 "type": unit.get("type"), "months": {}})
    for entry in out.values():
        scored = [m for m in entry["months"].values() if m["score"] is not None and m["weight"] > 0]
        total = sum(m["weight"] for m in scored)
        entry["value"] = round(sum(m["weight"] * m["score"] for m in scored) / total, 2) if total else None
        entry["status"] = None if entry["value"] is not None else "无案件"
    return dict(sorted(out.items()))
