"""Scoring over HTTP: indicators, monthly rankings, the exposure list, bulletin downloads.

    GET /api/scoring/indicators?period=2026-11                      everything for a period
    GET /api/scoring/indicators/<level>/<key>?period=2026-11        one unit|grid|inspector|partner
    GET /api/scoring/rankings?month=2026-11[&unit_type=street]      the monthly ranking(s)
    GET /api/scoring/exposure?period=2026-11                        the exposure list (曝光台)
    GET /api/scoring/bulletins                                      the bulletins rendered so far
    GET /api/scoring/bulletins/<month>.pdf | .html                  download one

``period`` is a day (2026-11-23), an ISO week (2026-W48), a month (2026-11) or a custom range
(2026-11-01..2026-11-15); it defaults to the current month. See docs/scoring.md.

Who (services/gateway/auth.py): rankings, the exposure list and the bulletins are public
(月排名、月曝光、每月通报) — every authenticated role; indicators: the command centre, leader and
inspectors all of them, a unit its own (``unit/<its id>``), a partner its own
(``partner/<its department>``). Lists (exposure, bulletins) are paginated (``page``, ``per_page``).
"""
from __future__ import annotations

import base64

from nameko.web.handlers import http
from werkzeug.wrappers import Response

from shared.contracts.api.scoring import (BulletinQuery, ExposureQuery, IndicatorsQuery, LEVELS,
                                          RankingQuery)
from shared.contracts.periods import PeriodError, month_of, parse_period
from shared import storage
from shared.refdata import load_district

from .access import Access, readers_and
from .auth import ROLES, NotFound
from .http import BadRequest, call, endpoint, json_response, load, page_args, page_of

# what each endpoint acts on, and the relation each role needs (services/gateway/access.py)
ALL_INDICATORS = Access(None, readers_and())
INDICATORS = Access("indicators", readers_and(unit="own_indicators", partner="own_indicators"), label="考核指标")
PUBLISHED = Access(None, {role: "any" for role in ROLES})            # rankings, 曝光台, 通报: public

CONTENT_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


def _this_month() -> str:
    return month_of(storage.now_utc(), load_district().timezone).label


def _checked(data: dict, *names) -> dict:
    """Periods and months that scoring's parser cannot take (e.g. year 0 or 10000) are a 400 here,
    not an error in scoring."""
    errors = {}
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            try:
                parse_period(value)
            except PeriodError:
                pass                                   # the schema says what is wrong with it
            except (ValueError, OverflowError):
                errors[name] = [f"超出可用范围 (out of range): {value[:40]}"]
    if errors:
        raise BadRequest("输入有误，请检查标出的字段 (invalid input)", errors)
    return data


def _args(request, defaults: dict) -> dict:
    data = {key: value for key, value in request.args.items() if key not in ("page", "per_page")}
    for key, value in defaults.items():
        data.setdefault(key, value)
    return data


class ScoringApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    @http("GET", "/api/scoring/indicators")
    @endpoint(ALL_INDICATORS)
    def get_indicators(self, request, principal):
        query = load(IndicatorsQuery(), _checked(_args(request, {"period": _this_month()}), "period"))
        return json_response(call(self.scoring, "indicators", query["period"]))

    @http("GET", "/api/scoring/indicators/<string:level>/<string:key>")
    @endpoint(INDICATORS)
    def get_entity_indicators(self, request, principal, level, key):
        try:
            query = load(IndicatorsQuery(), _checked(_args(request, {"period": _this_month(), "level": level,
                                                                      "key": key}), "period"))
        except BadRequest as exc:
            if "level" in (exc.fields or {}):
                exc.fields["level"] = [f"只能是 {' | '.join(LEVELS)} (level must be one of them)"]
            raise
        if not principal.sees_all:       # another unit's or department's: as if there were none (404)
            principal.check((query["level"], query["key"]), f"{query['level']}/{query['key']}")
        answer = call(self.scoring, "indicators", query["period"], query["level"], query["key"])
        if not answer["found"]:
            raise NotFound(f"{answer['period']['label']} 没有 {key} 的考核数据 "
                           f"(no scoring data for {key} in this period)")
        return json_response(answer)

    @http("GET", "/api/scoring/rankings")
    @endpoint(PUBLISHED)
    def get_rankings(self, request, principal):
        query = load(RankingQuery(), _checked(_args(request, {"month": _this_month()}), "month"))
        return json_response(call(self.scoring, "ranking", query["month"], query.get("unit_type")))

    @http("GET", "/api/scoring/exposure")
    @endpoint(PUBLISHED)
    def get_exposure(self, request, principal):
        data = _args(request, {})
        data.setdefault("period", data.pop("month", None) or _this_month())
        query = load(ExposureQuery(), _checked(data, "period"))
        paging = page_args(request)
        answer = call(self.scoring, "exposure", query["period"])
        page = page_of(answer.pop("cases"), paging["page"], paging["per_page"], legacy_key="cases")
        return json_response({**answer, **page})

    @http("GET", "/api/scoring/bulletins")
    @endpoint(PUBLISHED)
    def list_bulletins(self, request, principal):
        paging = page_args(request)
        return json_response(page_of(call(self.scoring, "bulletins"), paging["page"], paging["per_page"],
                                     legacy_key="bulletins"))

    @http("GET", "/api/scoring/bulletins/<string:name>")
    @endpoint(PUBLISHED)
    def get_bulletin(self, request, principal, name):
        month, _, fmt = name.rpartition(".")
        query = load(BulletinQuery(), _checked({"month": month or name, "fmt": fmt if month else "pdf"}, "month"))
        answer = call(self.scoring, "bulletin", query["month"], query["fmt"])
        if answer is None:
            raise NotFound(f"{query['month']} 的通报尚未生成，请先运行 "
                           f"python -m services.scoring.bulletin --month {query['month']} "
                           f"(bulletin not rendered yet)")
        filename = f"bulletin-{query['month']}.{query['fmt']}"
        return Response(base64.b64decode(answer["data_b64"]), status=200,
                        content_type=CONTENT_TYPES[query["fmt"]],
                        headers={"Content-Disposition": f'inline; filename="{filename}"',
                                 "X-Generated-At": answer["generated_at"]})
