"""The monthly bulletin (月度通报): HTML and PDF in Chinese, with charts, from one command.

    python -m services.scoring.bulletin --month 2026-11 [--out DIR] [--no-store]

It reads the platform's store (shared.config.load_config(): MONGO_URI, DB_PREFIX), computes the
month and the trend months, draws the charts (matplotlib), writes
``<out>/<month>/bulletin-<month>.html`` (self-contained) and ``.pdf`` (reportlab, CJK font
embedded) plus ``charts/*.png``, and saves both documents in the scoring database so the gateway
can serve them (GET /api/scoring/bulletins/<month>.pdf).

Chinese glyphs need a CJK font: Debian ``fonts-wqy-zenhei`` (TrueType outlines, usable by both
matplotlib and reportlab). ``BULLETIN_FONT=/path/font.ttc`` chooses another TrueType font.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.config import ROOT

from . import practices, store
from .bulletin_render import render_charts, render_html, render_pdf
from .bulletin_sections import problem_counts
from .bulletin_text import (BulletinError, find_font, local, num, overview_text,  # noqa: F401 (re-exported)
                            pct)
from .periods import month_of, parse_period, previous_months


# ---------------------------------------------------------------------------- data
def gather(db, month: str, settings: dict, district, as_of) -> dict:
    """The month's report and the composite trend of every unit over the trend months."""
    period = parse_period(month, district.timezone)
    if period.kind != "month":
        raise BulletinError(f"通报按月生成，{month!r} 不是月份 (a bulletin needs a month, e.g. 2026-11)")
    report = store.compute_report(db, period, settings, district, as_of)
    months = previous_months(period, settings["periods"]["trend_months"])
    trend_reports = [report if p.label == period.label else
                     store.compute_report(db, p, settings, district, as_of) for p in months]
    trend = {}
    for index, past in enumerate(trend_reports):
        for unit_id, row in past["units"].items():
            trend.setdefault(unit_id, [None] * len(months))[index] = row["composite"]["value"]
    district_trend = {code: [past["district"]["indicators"][code]["value"] for past in trend_reports]
                      for code in ("closure_rate", "ontime_rate", "satisfaction_rate")}
    # 环比 / 同比: the previous month and the same month last year; counts by class, street, source
    before = previous_months(period, 2)[0]
    last_year = parse_period(f"{period.first_day.year - 1}-{period.first_day.month:02d}", district.timezone)
    previous = (trend_reports[-2] if len(trend_reports) >= 2 else
                store.compute_report(db, before, settings, district, as_of))
    return {"period": period, "report": report, "months": [p.label for p in months],
            "trend": trend, "district_trend": district_trend, "settings": settings,
            "district": district, "as_of": as_of, "previous": previous,
            "last_year": store.compute_report(db, last_year, settings, district, as_of),
            "counts": problem_counts(store.facts_for_period(db, period), period),
            "previous_counts": problem_counts(store.facts_for_period(db, before), before),
            "practice_lines": practices.bulletin_lines(report["practices"])}   # 721, 双长 (practices.py)


# ---------------------------------------------------------------------------- the command
def generate(db, month: str, settings: dict, district, out_root: Path, as_of, save: bool = True) -> dict:
    """Render the month's bulletin into ``out_root/<month>/`` (and the store). Returns the paths
    and the report it was made from."""
    font = find_font()
    data = gather(db, month, settings, district, as_of)
    folder = out_root / data["period"].label
    charts = render_charts(data, folder / "charts", font)
    html_text = render_html(data, charts)
    pdf = render_pdf(data, charts, font)
    html_path = folder / f"bulletin-{data['period'].label}.html"
    pdf_path = folder / f"bulletin-{data['period'].label}.pdf"
    html_path.write_text(html_text, encoding="utf-8")
    pdf_path.write_bytes(pdf)
    if save:
        store.save_bulletin(db, data["period"].label, html_text, pdf, as_of)
    return {"month": data["period"].label, "html": html_path, "pdf": pdf_path,
            "charts": sorted(charts.values()), "report": data["report"]}


def _database(config: dict):
    from shared.config import database_name
    from shared.storage import mongo_client
    client = mongo_client(config["MONGO_URI"])
    return client, client[database_name(config, "scoring")]


def main(argv=None, config: dict | None = None) -> int:
    from shared import storage
    from shared.config import load_config
    from shared.refdata import load_district

    from .settings import load_settings

    config = config or load_config()
    district = load_district(config.get("REFDATA_DIR") or None)
    parser = argparse.ArgumentParser(prog="python -m services.scoring.bulletin",
                                     description="生成月度通报 (HTML + PDF) — render the monthly bulletin")
    parser.add_argument("--month", default=None, help="YYYY-MM (default: this month)")
    parser.add_argument("--out", default=None, help="output folder (default: bulletin.output_dir "
                                                    "of config/scoring.yaml, var/bulletins)")
    parser.add_argument("--no-store", action="store_true", help="do not save it for the gateway")
    args = parser.parse_args(argv)
    settings = load_settings(config)
    now = storage.now_utc()
    month = args.month or month_of(now, district.timezone).label
    out_root = Path(args.out or settings["bulletin"]["output_dir"])
    if not out_root.is_absolute():
        out_root = ROOT / out_root
    client, db = _database(config)
    try:
        store.ensure_indexes(db)
        result = generate(db, month, settings, district, out_root, now, save=not args.no_store)
    except BulletinError as exc:
        print(f"错误 (error): {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    report = result["report"]
    print(f"{district.name} {parse_period(month).title} 月度通报 — bulletin for {result['month']}")
    print(f"  HTML  {result['html']}")
    print(f"  PDF   {result['pdf']}")
    for group in report["rankings"]:
        if group["ranked"] or group["unranked"]:
            ranked = "，".join(f"{item['rank']}. {item['name']} {item['composite']:.2f}"
                              for item in group["ranked"]) or "无"
            print(f"  {group['name']}排名: {ranked}" + (f"（另有 {len(group['unranked'])} 个单位未排名）"
                                                      if group["unranked"] else ""))
    print(f"  曝光台: {len(report['exposure'])} 件")
    return 0


if __name__ == "__main__":
    sys.exit(main())
