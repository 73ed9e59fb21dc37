"""The sections of the monthly 通报 that are drawn from the figures — pure: front matter, 总体情况
with 环比 and 同比, 高发问题, reports by source, 红黑榜, and the drafted 存在问题 / 下步要求 (rules over
the figures, for the office to edit). The renderers (bulletin_render.py) only lay these out.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from . import roles as role_evaluation
from .rules import _utc
from .bulletin_text import pct

# channel of a report → its source in the 通报
SOURCES = {"hotline": "12345热线", "inspector": "监督员上报", "open311": "市民App", "web": "市民App",
           "sensor": "物联感知", "road_office": "领导交办"}
SOURCE_ORDER = ("12345热线", "监督员上报", "市民App", "物联感知", "领导交办", "其他")
OVERALL_COUNTS = (("accepted_reports", "受理数"), ("registered_cases", "立案数"),
                  ("dispatched_cases", "派遣数"), ("due", "应结案数"), ("closed", "结案数"))
OVERALL_RATES = ("filing_rate", "dispatch_rate", "closure_rate", "ontime_rate", "rework_rate",
                 "satisfaction_rate")


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def front_matter(settings: dict, period, today: date) -> dict:
    b = settings["bulletin"]
    issued = b.get("issue_date") or today
    return {"issuer": b["issuer"], "doc_number": b["doc_number"].format(
                year=period.first_day.year, month=period.first_day.month),
            "main_to": "、".join(b["main_to"]), "copy_to": "、".join(b["copy_to"]),
            "signature": b["signature"], "date": chinese_date(issued)}


# ---------------------------------------------------------------------------- 总体情况
def _change_count(now: int, before: int | None) -> str:
    if before is None:
        return "—"
    if before == 0:
        return "—" if now == 0 else "新增"
    return f"{(now - before) / before * 100:+.1f}%"


def _change_rate(now, before) -> str:
    if now is None or before is None:
        return "—"
    return f"{(now - before) * 100:+.1f}个百分点"


def overall(report: dict, previous: dict | None, last_year: dict | None) -> list[list[str]]:
    """Rows: 指标, 本月, 上月, 环比, 去年同月, 同比 (counts change in %, rates in points)."""
    def count(rep, key):
        return None if rep is None else rep["district"]["counts"].get(key, 0)

    def rate(rep, code):
        return None if rep is None else rep["district"]["indicators"][code]["value"]

    rows = []
    for key, label in OVERALL_COUNTS:
        now, prev, ly = count(report, key), count(previous, key), count(last_year, key)
        rows.append([label, str(now), "—" if prev is None else str(prev), _change_count(now, prev),
                     "—" if ly is None else str(ly), _change_count(now, ly)])
    for code in OVERALL_RATES:
        now, prev, ly = rate(report, code), rate(previous, code), rate(last_year, code)
        rows.append([report["district"]["indicators"][code]["label"], pct(now), pct(prev),
                     _change_rate(now, prev), pct(ly), _change_rate(now, ly)])
    return rows


# ---------------------------------------------------------------------------- counts from facts
def problem_counts(facts: list[dict], period) -> dict:
    """Cases registered in the period by class and by street; reports received by source."""
    start, end = period.start, period.end
    inside = lambda moment: moment is not None and start <= _utc(moment) < end  # noqa: E731
    classes, streets, sources = Counter(), Counter(), Counter()
    for fact in facts:
        if fact.get("kind") == "case" and inside(fact.get("registered_at")):
            classes[fact.get("class_name") or fact.get("class_code") or "未分类"] += 1
            streets[fact.get("street_id") or "未知"] += 1
        elif fact.get("kind") == "report" and inside(fact.get("received_at")):
            sources[SOURCES.get(fact.get("channel"), "其他")] += 1
    return {"classes": dict(classes), "streets": dict(streets), "sources": dict(sources)}


def hot_problems(now: dict, before: dict, size: int, names: dict) -> dict:
    """高发问题: the top ``size`` classes and streets by cases registered, with last month's count."""
    def top(key, label=lambda k: k):
        ranked = sorted(now[key].items(), key=lambda item: (-item[1], item[0]))[:size]
        return [[label(k), str(n), str(before[key].get(k, 0)), _change_count(n, before[key].get(k, 0))]
                for k, n in ranked]
    return {"classes": top("classes"),
            "streets": top("streets", lambda k: (names.get(k) or {}).get("name", k))}


def by_source(now: dict, before: dict) -> list[list[str]]:
    total = sum(now["sources"].values())
    rows = []
    for source in SOURCE_ORDER:
        n, b = now["sources"].get(source, 0), before["sources"].get(source, 0)
        rows.append([source, str(n), pct(n / total if total else None), str(b), _change_count(n, b)])
    return rows


# ---------------------------------------------------------------------------- 红黑榜
def red_black(report: dict, size: int) -> list[dict]:
    """Per ranking group: the best ``size`` (红榜) and the worst ``size`` (黑榜) ranked units, at
    most half of the group each, so no unit is on both."""
    out = []
    for group in report["rankings"]:
        ranked = group["ranked"]
        if not ranked:
            continue
        k = min(size, max(1, len(ranked) // 2))          # a small group splits in halves
        red = ranked[:k]
        black = list(reversed(ranked[-k:])) if len(ranked) > 1 else []
        out.append({"group": group["name"], "red": red, "black": black})
    return out


# ---------------------------------------------------------------------------- 存在问题 / 下步要求
def findings(report: dict, previous: dict | None, now_counts: dict, before_counts: dict,
             settings: dict) -> dict:
    """Drafted from rules over the figures (for the office to edit):
    - a unit that falls ``fall_places`` places or more in its ranking against last month;
    - a class whose cases grow by ``growth_factor`` or more against last month;
    - a unit with cases on the exposure list."""
    b = settings["bulletin"]
    problems, requirements = [], []
    before_rank = {}
    for group in (previous or {}).get("rankings", []):
        for item in group["ranked"]:
            before_rank[(group["group"], item["unit_id"])] = item["rank"]
    for group in report["rankings"]:
        for item in group["ranked"]:
            old = before_rank.get((group["group"], item["unit_id"]))
            if old is not None and item["rank"] - old >= b["fall_places"]:
                problems.append(f"{item['name']}在{group['name']}综合排名中由上月第 {old} 位降至第 "
                                f"{item['rank']} 位，下降 {item['rank'] - old} 位。")
                requirements.append(f"{item['name']}要分析排名下降原因，针对失分指标制定整改措施，"
                                    f"下月排名明显回升。")
    for name, n in sorted(now_counts["classes"].items(), key=lambda item: (-item[1], item[0])):
        old = before_counts["classes"].get(name, 0)
        if old > 0 and n >= b["growth_factor"] * old:
            problems.append(f"{name}类问题本月立案 {n} 件，较上月 {old} 件增长 {n / old:.1f} 倍。")
            requirements.append(f"各责任单位要加强{name}类问题的巡查与源头治理，遏制增长势头。")
    exposed = Counter(item["unit_name"] for item in report["exposure"])
    for unit, n in sorted(exposed.items(), key=lambda item: (-item[1], item[0])):
        problems.append(f"{unit}有 {n} 件案件超期，列入曝光台。")
        requirements.append(f"{unit}要在 5 个工作日内完成曝光案件整改并书面报告。")
    if not problems:
        problems.append("本月各项指标平稳，未发现需要通报的突出问题。")
        requirements.append("各单位要保持工作力度，巩固现有成效。")
    return {"problems": problems, "requirements": requirements}


def sections(data: dict, today: date | None = None) -> dict:
    """Everything the renderers need beyond the month's report."""
    report, settings = data["report"], data["settings"]
    empty = {"classes": {}, "streets": {}, "sources": {}}
    now_counts, before_counts = data.get("counts") or empty, data.get("previous_counts") or empty
    units = getattr(data["district"], "units", {}) or {}
    b = settings["bulletin"]
    if today is None:
        as_of = data.get("as_of") or datetime.now(timezone.utc)
        today = _utc(as_of).astimezone(ZoneInfo(data["district"].timezone)).date()
    return {
        "front": front_matter(settings, data["period"], today),
        "overall": overall(report, data.get("previous"), data.get("last_year")),
        "hot": hot_problems(now_counts, before_counts, b["top_classes"], units),
        "sources": by_source(now_counts, before_counts),
        "red_black": red_black(report, b["red_black_size"]),
        "findings": findings(report, data.get("previous"), now_counts, before_counts, settings),
        "roles": report.get("roles") or role_evaluation.evaluate(report, data["district"], settings),
    }
