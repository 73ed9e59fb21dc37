"""Scoring over HTTP: indicators, monthly rankings, the exposure list, bulletin downloads.

    GET /api/scoring/indicators?period=2026-11                      everything for a period
    GET /api/scoring/indicators/<level>/<key>?period=2026-11        one unit|grid|inspector|partner
    GET /api/scoring/rankings?month=2026-11[&unit_type=street]      the monthly ranking(s)
    GET /api/scoring/exposure?period=2026-11                        the exposure list (曝光台)
    GET /api/scoring/bulletins                                      the bulletins rendered so far
    GET /api/scoring/bulletins/<month>.pdf | .html                  download one

``period`` is a day (2026-11-23), an ISO week (2026-W48), a month (2026-11) or a custom range
(2026-11-01..2026-11-15); it defaults to the current month. See docs/scoring.md.
"""
from __future__ import annotations

import base64

from nameko.web.handlers import http
from werkzeug.wrappers import Response

from services.scoring.periods import month_of
from services.scoring.schemas import (BulletinQuery, ExposureQuery, IndicatorsQuery, LEVELS,
                                      RankingQuery)
from shared import storage
from shared.refdata import load_district

from .http import BadRequest, call, error_response, json_response, load

CONTENT_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


def _this_month() -> str:
    return month_of(storage.now_utc(), load_district().timezone).label


def _args(request, defaults: dict) -> dict:
    data = {key: value for key, value in request.args.items()}
    for key, value in defaults.items():
        data.setdefault(key, value)
    return data


class ScoringApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    @http("GET", "/api/scoring/indicators")
    def get_indicators(self, request):
        try:
            query = load(IndicatorsQuery(), _args(request, {"period": _this_month()}))
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        return json_response(call(self.scoring, "indicators", query["period"]))

    @http("GET", "/api/scoring/indicators/<string:level>/<string:key>")
    def get_entity_indicators(self, request, level, key):
        try:
            query = load(IndicatorsQuery(), _args(request, {"period": _this_month(), "level": level,
                                                             "key": key}))
        except BadRequest as exc:
            if "level" in (exc.fields or {}):
                exc.fields["level"] = [f"只能是 {' | '.join(LEVELS)} (level must be one of them)"]
            return error_response(400, exc.message, exc.fields)
        answer = call(self.scoring, "indicators", query["period"], query["level"], query["key"])
        if not answer["found"]:
            return error_response(404, f"{answer['period']['label']} 没有 {key} 的考核数据 "
                                       f"(no scoring data for {key} in this period)")
        return json_response(answer)

    @http("GET", "/api/scoring/rankings")
    def get_rankings(self, request):
        try:
            query = load(RankingQuery(), _args(request, {"month": _this_month()}))
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        return json_response(call(self.scoring, "ranking", query["month"], query.get("unit_type")))

    @http("GET", "/api/scoring/exposure")
    def get_exposure(self, request):
        data = _args(request, {})
        data.setdefault("period", data.pop("month", None) or _this_month())
        try:
            query = load(ExposureQuery(), data)
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        return json_response(call(self.scoring, "exposure", query["period"]))

    @http("GET", "/api/scoring/bulletins")
    def list_bulletins(self, request):
        return json_response({"bulletins": call(self.scoring, "bulletins")})

    @http("GET", "/api/scoring/bulletins/<string:name>")
    def get_bulletin(self, request, name):
        month, _, fmt = name.rpartition(".")
        try:
            query = load(BulletinQuery(), {"month": month or name, "fmt": fmt if month else "pdf"})
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        answer = call(self.scoring, "bulletin", query["month"], query["fmt"])
        if answer is None:
            return error_response(404, f"{query['month']} 的通报尚未生成，请先运行 "
                                       f"python -m services.scoring.bulletin --month {query['month']} "
                                       f"(bulletin not rendered yet)")
        filename = f"bulletin-{query['month']}.{query['fmt']}"
        return Response(base64.b64decode(answer["data_b64"]), status=200,
                        content_type=CONTENT_TYPES[query["fmt"]],
                        headers={"Content-Disposition": f'inline; filename="{filename}"',
                                 "X-Generated-At": answer["generated_at"]})
