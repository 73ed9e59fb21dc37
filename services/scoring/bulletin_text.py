"""The bulletin's words and tables — pure: percentages, local times, the overview paragraph, the
indicator definitions, the table rows, and the CJK font the renderers need."""
from __future__ import annotations

import html
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
NAN = float("nan")
MAIN_RATES = ("closure_rate", "ontime_rate", "satisfaction_rate")
TABLE_RATES = ("filing_rate", "dispatch_rate", "closure_rate", "ontime_rate", "rework_rate",
               "extension_rate", "satisfaction_rate")


class BulletinError(RuntimeError):
    pass


def find_font() -> str:
    chosen = os.environ.get("BULLETIN_FONT")
    for path in ([chosen] if chosen else []) + list(FONT_CANDIDATES):
        if path and Path(path).is_file():
            return path
    raise BulletinError("没有找到中文字体 (no CJK font): apt-get install -y fonts-wqy-zenhei, "
                        "或设置 BULLETIN_FONT=/path/to/font.ttc")


# ---------------------------------------------------------------------------- formatting
def pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def num(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def local(moment, tz: str, fmt: str = "%m-%d %H:%M") -> str:
    if not moment:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo(tz)).strftime(fmt)


def group_rows(report: dict, group: dict) -> list[tuple[str, dict]]:
    """(rank text, unit row) for a ranking group: ranked first, then the unranked."""
    rows = [(str(item["rank"]), report["units"][item["unit_id"]]) for item in group["ranked"]]
    rows += [("—", report["units"][item["unit_id"]]) for item in group["unranked"]]
    return rows


def overview_text(report: dict) -> str:
    c, i = report["district"]["counts"], report["district"]["indicators"]
    return (f"本期共受理问题 {c['accepted_reports']} 件，立案 {c['registered_cases']} 件，立案率 "
            f"{pct(i['filing_rate']['value'])}；派遣 {c['dispatched_cases']} 件，派遣率 "
            f"{pct(i['dispatch_rate']['value'])}。应结案 {c['due']} 件，结案 {c['closed']} 件，结案率 "
            f"{pct(i['closure_rate']['value'])}；按期结案 {c['closed_on_time']} 件，按期结案率 "
            f"{pct(i['ontime_rate']['value'])}；返工 {c['reworked']} 件，延期 {c['extended']} 件，"
            f"挂账 {c['parked']} 件，回退 {c['returns_caused']} 次，督办 {c['supervised']} 件。"
            f"回访群众 {c['callbacks']} 人次，响应率 {pct(i['response_rate']['value'])}，解决率 "
            f"{pct(i['resolution_rate']['value'])}，满意率 {pct(i['satisfaction_rate']['value'])}。"
            f"超期案件 {len(report['exposure'])} 件列入曝光台。")


DEFINITIONS = [
    ("立案率", "立案数 / 受理数：本期收到且未被并案的上报中已立案的比例（街镇按辖区统计）"),
    ("派遣率", "派遣数 / 立案数：本期立案的案件中已派遣的比例（街镇按辖区统计）"),
    ("应结案数", "处置时限（最后一次派遣的时限）或首次结案时间（取早者）落在本期内的案件"),
    ("结案率", "结案数 / 应结案数：期末前已结案且未被重新打开"),
    ("按期结案率", "按期结案数 / 应结案数：按期结案，且从未延期、从未挂账（延期、挂账不抬高按期率）"),
    ("返工率", "返工数 / 应结案数（应处置数；可配置为 / 结案数）：期末前发生过返工的应结案案件"),
    ("按期处置率 / 超期处置数", "处置单位：按期结案数 / 应处置数；应处置但未按期结案的案件数，及期末仍未结且已过时限的案件数"),
    ("延期率", "延期数 / 应结案数：期末前获批延期的应结案案件"),
    ("回退率", "回退数 / 收到派遣数：回退计入造成回退的单位（caused_by）"),
    ("响应率 / 解决率 / 满意率", "响应数 / 回访数；解决数 / 响应数；满意数 / 响应数"),
    ("按时受理率 / 按时报到率 / 处置率", "城管+N 部门：按时受理、按时报到、已处置的请求 / 本期发出的请求"),
    ("有效上报率 / 按期核查率", "监督员：立案或并案的上报 / 上报数；按期核查 / 核查数"),
    ("准确派遣率", "监督指挥中心：(派遣数 - 回退数) / 派遣数"),
    ("按期核实率", "监督指挥中心：在时限内对上报作出立案、不立案或并案决定的上报 / 已决定的上报"),
    ("综合指标值", "100 × Σ(权重 × 得分) / Σ 权重（返工率、延期率按 1-比率计分；无数据的指标不计），"
                  "再减去扣分（曝光案件、造成回退、督办），取值 0 至 100；应结案数不足最低案件量的单位不参与排名"),
]


RANK_HEADERS = ["名次", "单位", "应结案数", "立案率", "派遣率", "结案率", "按期结案率", "返工率", "延期率",
                "满意率", "扣分", "综合指标值"]
EXPOSURE_HEADERS = ["序号", "案件编号", "问题类别", "地址", "责任单位", "处置时限", "超期(工时)", "状态"]
PARTNER_HEADERS = ["部门", "请求数", "按时受理率", "按时报到率", "处置率", "拒绝数"]
INSPECTOR_HEADERS = ["监督员", "上报数", "有效上报率", "核查数", "按期核查率"]
CENTRE_HEADERS = ["受理数", "立案数", "派遣数", "回退数", "准确派遣率", "按期核实率", "按期核查率"]


def rank_row(rank: str, row: dict) -> list:
    i = row["indicators"]
    return [rank, row["name"], row["counts"]["due"]] + [pct(i[code]["value"]) for code in TABLE_RATES] + [
        num(row["composite"]["deducted"]), num(row["composite"]["value"])]


def no_case_row(item: dict) -> list:
    """A unit of the group with nothing in the period: listed, never dropped."""
    return ["—", item["name"], 0] + ["无案件"] + ["—"] * (len(TABLE_RATES) - 1) + ["—", "—"]


def exposure_row(n: int, item: dict, tz: str) -> list:
    return [n, item["case_id"], item["class_name"] or item["class_code"] or "", item["address"],
            item["unit_name"], local(item["deadline"], tz), f"{item['overdue_hours']:.1f}", item["status"]]


def partner_row(row: dict) -> list:
    i = row["indicators"]
    return [row["name"], row["counts"]["requests"], pct(i["accept_ontime_rate"]["value"]),
            pct(i["checkin_ontime_rate"]["value"]), pct(i["disposition_rate"]["value"]),
            row["counts"]["rejected"]]


def inspector_row(row: dict) -> list:
    """A row of the evaluation by role's inspectors (services/scoring/roles.py), by name."""
    i, c = row["indicators"], row["counts"]
    return [row["name"], c.get("reports", 0), pct(i["valid_report_rate"]["value"]),
            c.get("verifications", 0), pct(i["check_ontime_rate"]["value"])]


def centre_row(centre: dict) -> list:
    i, c = centre["indicators"], centre["counts"]
    return [c["accepted_reports"], c["registered_cases"], c["dispatches_received"], c["returns_caused"],
            pct(i["accurate_dispatch_rate"]["value"]), pct(i["verify_ontime_rate"]["value"]),
            pct(i["check_ontime_rate"]["value"])]


def _html_table(headers, rows, muted=None) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = ' class="unranked"' if muted and muted[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{e(str(cell))}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
