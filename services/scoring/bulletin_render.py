"""Drawing the bulletin — charts (matplotlib), the self-contained HTML and the PDF (reportlab,
CJK font embedded) from the data gathered by services.scoring.bulletin."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from urllib.parse import unquote, urlparse

from shared.config import ROOT

from . import indicators as ind
from .bulletin_sections import sections
from .bulletin_text import (CENTRE_HEADERS, DEFINITIONS, EXPOSURE_HEADERS, INSPECTOR_HEADERS, MAIN_RATES,
                            NAN, PARTNER_HEADERS, RANK_HEADERS, _html_table, centre_row, exposure_row,
                            group_rows, inspector_row, local, no_case_row, overview_text, partner_row,
                            rank_row)

OVERALL_HEADERS = ["指标", "本月", "上月", "环比", "去年同月", "同比"]
HOT_HEADERS = ["名称", "本月立案", "上月立案", "环比"]
SOURCE_HEADERS = ["来源", "本月上报", "占比", "上月上报", "环比"]
RED_BLACK_HEADERS = ["榜别", "名次", "单位", "综合指标值"]
DRAFT_NOTE = "（以下内容由规则根据本月数据草拟，请办公室审核修改后印发）"


def render_charts(data: dict, out_dir: Path, font_path: str) -> dict[str, Path]:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import font_manager
    import matplotlib.pyplot as plt

    font_manager.fontManager.addfont(font_path)
    family = font_manager.FontProperties(fname=font_path).get_name()
    plt.rcParams.update({"font.family": "sans-serif", "font.sans-serif": [family, "DejaVu Sans"],
                         "axes.unicode_minus": False, "figure.dpi": 110})
    out_dir.mkdir(parents=True, exist_ok=True)
    report, months = data["report"], data["months"]
    charts: dict[str, Path] = {}

    def save(fig, name):
        path = out_dir / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=130)
        plt.close(fig)
        charts[name] = path

    # district trend: 结案率 / 按期结案率 / 满意率 per month
    positions = list(range(len(months)))

    def month_axis(ax):
        ax.set_xticks(positions, months)
        ax.set_xlim(-0.4, len(months) - 0.6)
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)

    fig, ax = plt.subplots(figsize=(8, 3.4))
    for code, values in data["district_trend"].items():
        ax.plot(positions, [NAN if v is None else v * 100 for v in values], marker="o",
                label=ind.INDICATORS[code][0])
    month_axis(ax)
    ax.set_ylabel("%")
    ax.set_title(f"全区主要指标趋势（近 {len(months)} 个月）")
    ax.legend(loc="lower left", fontsize=8)
    save(fig, "district-trend")

    limit = data["settings"]["bulletin"]["trend_units"]
    for group in report["rankings"]:
        rows = group_rows(report, group)
        if not any(row["composite"]["value"] is not None for _, row in rows):
            continue                            # nothing to draw for this group this month
        names = [row["name"] for _, row in rows]
        # indicator bars: 综合指标值 and the main rates per unit
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.45 * len(rows) + 1.6),
                                          gridspec_kw={"width_ratios": [1, 1.4]})
        values = [row["composite"]["value"] for _, row in rows]
        colours = ["#2b6cb0" if rank != "—" else "#a0aec0" for rank, _ in rows]
        left.barh(names, [value or 0 for value in values], color=colours)
        left.set_xlim(0, 118)
        left.invert_yaxis()
        left.set_title("综合指标值（灰色：未参与排名）", fontsize=10)
        for y, value in enumerate(values):
            left.text((value or 0) + 1, y, "—" if value is None else f"{value:.2f}", va="center", fontsize=8)
        height = 0.8 / len(MAIN_RATES)
        for k, code in enumerate(MAIN_RATES):
            rates = [(row["indicators"][code]["value"] or 0) * 100 for _, row in rows]
            right.barh([y + k * height for y in range(len(rows))], rates, height=height,
                       label=ind.INDICATORS[code][0])
        right.set_yticks([y + height for y in range(len(rows))], names)
        right.set_xlim(0, 100)
        right.invert_yaxis()
        right.set_title("主要指标（%）", fontsize=10)
        right.legend(fontsize=8, loc="lower right")
        save(fig, f"bars-{group['group']}")
        # trend per unit: composite over the trend months
        by_volume = sorted(rows, key=lambda item: -item[1]["counts"]["due"])[:limit]
        fig, ax = plt.subplots(figsize=(8, 3.6))
        for _, row in by_volume:
            series = data["trend"].get(row["unit_id"], [None] * len(months))
            ax.plot(positions, [NAN if v is None else v for v in series], marker="o", label=row["name"])
        month_axis(ax)
        ax.set_title(f"{group['name']}综合指标值趋势（近 {len(months)} 个月）")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        save(fig, f"trend-{group['group']}")
    return charts


# ---------------------------------------------------------------------------- HTML
def _img_src(url: str | None) -> str | None:
    """A photo for the HTML: local files are embedded, URLs are linked as they are."""
    path = _local_path(url)
    if path is not None:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return url


def _local_path(url: str | None) -> Path | None:
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "":
        path = Path(url) if Path(url).is_absolute() else ROOT / url
    else:
        return None
    return path if path.is_file() else None


def render_html(data: dict, charts: dict[str, Path]) -> str:
    report, period, tz = data["report"], data["period"], data["district"].timezone
    settings = data["settings"]
    sec = sections(data)
    front = sec["front"]
    e = html.escape
    title = f"{data['district'].name}{settings['bulletin']['title']}"
    chart = lambda name: (f'<img class="chart" alt="{e(name)}" src="data:image/png;base64,'  # noqa: E731
                          f'{base64.b64encode(charts[name].read_bytes()).decode("ascii")}">'
                          if name in charts else "")
    out = [f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(title)}（{e(period.title)}）</title>
<style>
body {{ font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
       max-width: 1100px; margin: 2em auto; color: #1a202c; line-height: 1.6; }}
.red-head {{ text-align: center; color: #c53030; font-size: 30px; letter-spacing: 4px; margin: 0; }}
.doc-number {{ text-align: center; border-bottom: 3px solid #c53030; padding-bottom: 0.4em; }}
h1 {{ text-align: center; }} .sub {{ text-align: center; color: #4a5568; }}
table {{ border-collapse: collapse; width: 100%; margin: 0.8em 0; font-size: 14px; }}
th, td {{ border: 1px solid #cbd5e0; padding: 4px 6px; text-align: center; }}
th {{ background: #edf2f7; }} tr.unranked td {{ color: #718096; }}
img.chart {{ max-width: 100%; display: block; margin: 0.5em auto; }}
.photos {{ display: flex; gap: 1em; }} .photos figure {{ flex: 1; margin: 0; text-align: center; }}
.photos img {{ max-width: 100%; max-height: 240px; border: 1px solid #cbd5e0; }}
.note {{ color: #718096; font-size: 13px; }} .draft {{ border: 1px dashed #a0aec0; padding: 0.5em; }}
.signature {{ text-align: right; margin-top: 2em; }} .copy-to {{ border-top: 1px solid #1a202c; margin-top: 2em; }}
</style></head><body>
<p class="red-head">{e(front['issuer'])}</p>
<p class="doc-number">{e(front['doc_number'])}</p>
<h1>{e(title)}（{e(period.title)}）</h1>
<p class="sub">统计截至 {e(local(data['as_of'], tz, '%Y-%m-%d %H:%M'))}</p>
<p>{e(front['main_to'])}：</p>
<h2>一、总体情况</h2><p>{e(overview_text(report))}</p>"""]
    out.append(_html_table(OVERALL_HEADERS, sec["overall"]))
    out.append(chart("district-trend"))
    out.append("<h2>二、高发问题</h2><h3>问题类别（前 {0} 位）</h3>".format(settings["bulletin"]["top_classes"]))
    out.append(_html_table(["问题类别"] + HOT_HEADERS[1:], sec["hot"]["classes"]) if sec["hot"]["classes"]
               else "<p>本月无立案。</p>")
    out.append("<h3>街镇（前 {0} 位）</h3>".format(settings["bulletin"]["top_classes"]))
    out.append(_html_table(["街镇"] + HOT_HEADERS[1:], sec["hot"]["streets"]) if sec["hot"]["streets"]
               else "<p>本月无立案。</p>")
    out.append("<h2>三、问题来源</h2>")
    out.append(_html_table(SOURCE_HEADERS, sec["sources"]))
    out.append("<h2>四、综合排名</h2>")
    for group in report["rankings"]:
        rows = group_rows(report, group)
        idle = group.get("no_cases", [])
        if not rows and not idle:
            continue
        out.append(f"<h3>{e(group['name'])}（应结案数不少于 {group['minimum_cases']} 件参与排名）</h3>")
        out.append(_html_table(RANK_HEADERS, [rank_row(rank, row) for rank, row in rows]
                               + [no_case_row(item) for item in idle],
                               [rank == "—" for rank, _ in rows] + [True] * len(idle)))
        for item in group["unranked"]:
            out.append(f'<p class="note">{e(item["name"])}：{e(item["reason"])}</p>')
        out.append(chart(f"bars-{group['group']}"))
        out.append(chart(f"trend-{group['group']}"))
    out.append("<h2>五、红黑榜</h2>")
    out.append(_html_table(RED_BLACK_HEADERS, _red_black_rows(sec["red_black"])) if sec["red_black"]
               else "<p>本月无参与排名的单位。</p>")
    out.append("<h2>六、曝光台（两图一表）</h2>")
    if report["exposure"]:
        out.append(_html_table(EXPOSURE_HEADERS, [exposure_row(n, item, tz)
                                                  for n, item in enumerate(report["exposure"], 1)]))
        for n, item in enumerate(report["exposure"], 1):
            problem = (item["problem_photos"] or [None])[0]
            figures = []
            for label, url in (("问题照片（整改前）", problem), ("处置后照片（整改后）", item["after_photo"])):
                src = _img_src(url)
                body = f'<img alt="{e(label)}" src="{e(src)}">' if src else '<p class="note">（无照片）</p>'
                figures.append(f"<figure>{body}<figcaption>{e(label)}</figcaption></figure>")
            out.append(f"<h4>{n}. {e(item['case_id'])} {e(item['class_name'] or '')} — "
                       f"{e(item['unit_name'])}，超期 {item['overdue_hours']} 工时</h4>"
                       f'<div class="photos">{"".join(figures)}</div>')
    else:
        out.append("<p>本期无超期案件。</p>")
    out.append("<h2>七、监督指挥中心与监督员</h2>")
    out.append(_html_table(CENTRE_HEADERS, [centre_row(sec["roles"]["centre"])]))
    out.append(_html_table(INSPECTOR_HEADERS, [inspector_row(row) for row in sec["roles"]["inspectors"]])
               if sec["roles"]["inspectors"] else "<p>本期无监督员上报。</p>")
    out.append("<h2>八、联合执法部门（城管+N）</h2>")
    out.append(_html_table(PARTNER_HEADERS, [partner_row(row) for row in report["partners"].values()])
               if report["partners"] else "<p>本期无联合执法请求。</p>")
    out.extend(f"<p>{e(line)}</p>" for line in data.get("practice_lines") or [])   # 721, 双长 (practices.py)
    for heading, key in (("九、存在问题", "problems"), ("十、下步要求", "requirements")):
        items = "".join(f"<li>{e(text)}</li>" for text in sec["findings"][key])
        out.append(f'<h2>{heading}</h2><p class="note">{e(DRAFT_NOTE)}</p>'
                   f'<ol class="draft" contenteditable="true">{items}</ol>')
    out.append(f'<p class="signature">{e(front["signature"])}<br>{e(front["date"])}</p>')
    out.append(f'<p class="copy-to">抄送：{e(front["copy_to"])}</p>')
    out.append("<h2>附：指标说明</h2><ul>")
    out.extend(f"<li><b>{e(name)}</b>：{e(text)}</li>" for name, text in DEFINITIONS)
    out.append("</ul></body></html>")
    return "\n".join(out)


def _red_black_rows(entries: list[dict]) -> list[list]:
    rows = []
    for entry in entries:
        rows += [[f"{entry['group']}红榜", item["rank"], item["name"], f"{item['composite']:.2f}"]
                 for item in entry["red"]]
        rows += [[f"{entry['group']}黑榜", item["rank"], item["name"], f"{item['composite']:.2f}"]
                 for item in entry["black"]]
    return rows


# ---------------------------------------------------------------------------- PDF
def render_pdf(data: dict, charts: dict[str, Path], font_path: str) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import (Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table,
                                    TableStyle)

    if "CJK" not in pdfmetrics.getRegisteredFontNames():
        options = {"subfontIndex": 0} if font_path.endswith(".ttc") else {}
        pdfmetrics.registerFont(TTFont("CJK", font_path, **options))
    report, period, tz, settings = data["report"], data["period"], data["district"].timezone, data["settings"]
    base = dict(fontName="CJK", wordWrap="CJK", leading=15, fontSize=10)
    styles = {
        "title": ParagraphStyle("title", **{**base, "fontSize": 18, "leading": 24}, alignment=TA_CENTER,
                                textColor=colors.HexColor("#9b2c2c")),
        "sub": ParagraphStyle("sub", **base, alignment=TA_CENTER, textColor=colors.HexColor("#4a5568")),
        "h2": ParagraphStyle("h2", **{**base, "fontSize": 13, "leading": 20}, spaceBefore=8, spaceAfter=4),
        "h3": ParagraphStyle("h3", **{**base, "fontSize": 11, "leading": 17}, spaceBefore=6, spaceAfter=2),
        "body": ParagraphStyle("body", **base),
        "note": ParagraphStyle("note", **{**base, "fontSize": 8.5, "leading": 12},
                               textColor=colors.HexColor("#718096")),
        "cell": ParagraphStyle("cell", **{**base, "fontSize": 8, "leading": 10}, alignment=TA_CENTER),
    }
    width = A4[0] - 30 * mm
    P = lambda text, style="body": Paragraph(html.escape(str(text)), styles[style])  # noqa: E731

    def table(headers, rows, col_widths=None, muted=None):
        cells = [[P(h, "cell") for h in headers]] + [[P(c, "cell") for c in row] for row in rows]
        t = Table(cells, colWidths=col_widths, repeatRows=1)
        style = [("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#cbd5e0")),
                 ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#edf2f7")),
                 ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]
        for index, flag in enumerate(muted or []):
            if flag:
                style.append(("BACKGROUND", (0, index + 1), (-1, index + 1), colors.HexColor("#f7fafc")))
        t.setStyle(TableStyle(style))
        return t

    def chart(name, height_ratio=None):
        if name not in charts:
            return Spacer(1, 1)
        from reportlab.lib.utils import ImageReader
        w, h = ImageReader(str(charts[name])).getSize()
        return Image(str(charts[name]), width=width, height=width * h / w)

    def photo(url, label):
        path = _local_path(url)
        if path is not None:
            from reportlab.lib.utils import ImageReader
            w, h = ImageReader(str(path)).getSize()
            box = 70 * mm
            scale = min(box / w, 55 * mm / h)
            return [Image(str(path), width=w * scale, height=h * scale), P(label, "cell")]
        text = f"{label}：{url}" if url else f"{label}：（无照片）"
        return [P(text, "note")]

    title = f"{data['district'].name}{settings['bulletin']['title']}"
    sec = sections(data)
    front = sec["front"]
    styles["red"] = ParagraphStyle("red", **{**base, "fontSize": 22, "leading": 30}, alignment=TA_CENTER,
                                   textColor=colors.HexColor("#c53030"))
    styles["right"] = ParagraphStyle("right", **base, alignment=2)
    from reportlab.platypus.flowables import HRFlowable
    story = [P(front["issuer"], "red"), Spacer(1, 4), P(front["doc_number"], "sub"),
             HRFlowable(width="100%", thickness=2, color=colors.HexColor("#c53030")), Spacer(1, 8),
             P(f"{title}（{period.title}）", "title"), Spacer(1, 4),
             P(f"统计截至 {local(data['as_of'], tz, '%Y-%m-%d %H:%M')}", "sub"), Spacer(1, 6),
             P(f"{front['main_to']}："),
             P("一、总体情况", "h2"), P(overview_text(report)), Spacer(1, 4),
             table(OVERALL_HEADERS, sec["overall"], [width * f for f in (0.22, 0.13, 0.13, 0.2, 0.12, 0.2)]),
             chart("district-trend"),
             P("二、高发问题", "h2"), P(f"问题类别（前 {settings['bulletin']['top_classes']} 位）", "h3"),
             table(["问题类别"] + HOT_HEADERS[1:], sec["hot"]["classes"]) if sec["hot"]["classes"] else P("本月无立案。"),
             P(f"街镇（前 {settings['bulletin']['top_classes']} 位）", "h3"),
             table(["街镇"] + HOT_HEADERS[1:], sec["hot"]["streets"]) if sec["hot"]["streets"] else P("本月无立案。"),
             P("三、问题来源", "h2"), table(SOURCE_HEADERS, sec["sources"]),
             P("四、综合排名", "h2")]
    for group in report["rankings"]:
        rows = group_rows(report, group)
        idle = group.get("no_cases", [])
        if not rows and not idle:
            continue
        story.append(P(f"{group['name']}（应结案数不少于 {group['minimum_cases']} 件参与排名）", "h3"))
        fractions = [0.04, 0.13, 0.06] + [0.085] * 7 + [0.06, 0.08]
        story.append(table(RANK_HEADERS, [rank_row(rank, row) for rank, row in rows]
                           + [no_case_row(item) for item in idle],
                           [width * f for f in fractions], [rank == "—" for rank, _ in rows] + [True] * len(idle)))
        for item in group["unranked"]:
            story.append(P(f"{item['name']}：{item['reason']}", "note"))
        story.append(chart(f"bars-{group['group']}"))
        story.append(chart(f"trend-{group['group']}"))
    story.append(P("五、红黑榜", "h2"))
    story.append(table(RED_BLACK_HEADERS, _red_black_rows(sec["red_black"]),
                       [width * f for f in (0.25, 0.15, 0.4, 0.2)])
                 if sec["red_black"] else P("本月无参与排名的单位。"))
    story += [PageBreak(), P("六、曝光台（两图一表）", "h2")]
    if report["exposure"]:
        fractions = [0.06, 0.14, 0.12, 0.18, 0.16, 0.12, 0.1, 0.12]
        story.append(table(EXPOSURE_HEADERS, [exposure_row(n, item, tz)
                                              for n, item in enumerate(report["exposure"], 1)],
                           [width * f for f in fractions]))
        for n, item in enumerate(report["exposure"], 1):
            story.append(P(f"{n}. {item['case_id']} {item['class_name'] or ''} — {item['unit_name']}，"
                           f"超期 {item['overdue_hours']} 工时", "h3"))
            problem = (item["problem_photos"] or [None])[0]
            pair = Table([[photo(problem, "问题照片（整改前）"), photo(item["after_photo"], "处置后照片（整改后）")]],
                         colWidths=[width / 2, width / 2])
            pair.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                      ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
            story.append(pair)
    else:
        story.append(P("本期无超期案件。"))
    story.append(P("七、监督指挥中心与监督员", "h2"))
    story.append(table(CENTRE_HEADERS, [centre_row(sec["roles"]["centre"])]))
    story.append(Spacer(1, 4))
    story.append(table(INSPECTOR_HEADERS, [inspector_row(row) for row in sec["roles"]["inspectors"]])
                 if sec["roles"]["inspectors"] else P("本期无监督员上报。"))
    story.append(P("八、联合执法部门（城管+N）", "h2"))
    story.append(table(PARTNER_HEADERS, [partner_row(row) for row in report["partners"].values()])
                 if report["partners"] else P("本期无联合执法请求。"))
    story.extend(P(line) for line in data.get("practice_lines") or [])            # 721, 双长 (practices.py)
    for heading, key in (("九、存在问题", "problems"), ("十、下步要求", "requirements")):
        story += [P(heading, "h2"), P(DRAFT_NOTE, "note")]
        story.extend(P(f"{n}. {text}") for n, text in enumerate(sec["findings"][key], 1))
    story += [Spacer(1, 16), P(front["signature"], "right"), P(front["date"], "right"), Spacer(1, 10),
              HRFlowable(width="100%", thickness=0.6, color=colors.black), P(f"抄送：{front['copy_to']}"),
              HRFlowable(width="100%", thickness=0.6, color=colors.black),
              P("附：指标说明", "h2")]
    story.extend(P(f"{name}：{text}", "note") for name, text in DEFINITIONS)

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont("CJK", 8)
        canvas.drawCentredString(A4[0] / 2, 10 * mm, f"{title}（{period.title}） 第 {doc.page} 页")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=18 * mm, title=f"{title}（{period.title}）",
                            author=settings["bulletin"]["issuer"])
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
