"""Open311 GeoReport v2 — pure: parsing, mapping and rendering, no I/O.

The gateway serves the HTTP side (services/gateway/open311.py) and asks intake over RPC; both
use this module.  Mapping onto the platform:

* a **service** is a minor class of the taxonomy (``service_code`` = class code, e.g. E0101);
  its definition has the class's typed attributes plus ``urgency`` (every class) and
  ``object_code`` (部件编码, components only);
* a **service request** is a report (``service_request_id`` = report id); its ``status``
  follows the case it filed or joined: ``open`` until dispatch closes the case, ``closed`` when
  closed — or at once when the report was not filed (不予立案), with the reason in
  ``status_notes``;
* ``agency_responsible`` is the unit handling the case, ``expected_datetime`` the case deadline
  (from dispatch), ``updated_datetime`` the last change of the report or its case.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from shared.contracts.base import Tolerant

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_SPAN = timedelta(days=90)
MAX_PAGE_SIZE = 1000
URGENCY_ATTRIBUTE = {
    "variable": True, "code": "urgency", "datatype": "singlevaluelist", "required": False,
    "datatype_description": "", "order": 90, "description": "紧急程度（缺省为一般）",
    "values": [{"key": "normal", "name": "一般"}, {"key": "urgent", "name": "紧急"}],
}
OBJECT_CODE_ATTRIBUTE = {
    "variable": True, "code": "object_code", "datatype": "string", "required": False,
    "datatype_description": "16 位部件编码，如 5001900101000001（井盖、路灯上的二维码）",
    "order": 91, "description": "部件编码（可选）", "values": [],
}
_ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]{1,40})\](\[\])?$")


class Open311Error(Exception):
    """An Open311 error: HTTP status and the standard error array."""

    def __init__(self, status: int, *descriptions: str):
        super().__init__(descriptions[0] if descriptions else str(status))
        self.status = status
        self.errors = [{"code": status, "description": text} for text in descriptions] or \
            [{"code": status, "description": "error"}]


def errors_from_validation(messages, prefix: str = "") -> list[str]:
    """Flatten marshmallow messages into one line per field: ``"lat: Not a valid number."``."""
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}[{key}]" if prefix else str(key)
            out.extend(errors_from_validation(value, name))
    elif isinstance(messages, list):
        for item in messages:
            if isinstance(item, (dict, list)):
                out.extend(errors_from_validation(item, prefix))
            else:
                out.append(f"{prefix}: {item}" if prefix else str(item))
    else:
        out.append(f"{prefix}: {messages}" if prefix else str(messages))
    return out


# ===================================================================== input
def form_to_dict(pairs) -> dict:
    """Open311 form fields (a list of (key, [values])) → a dict; ``attribute[code]=v`` and
    ``attribute[code][]=v`` (multivaluelist) are gathered under ``attribute``."""
    data: dict = {}
    attributes: dict = {}
    for key, values in pairs:
        if not isinstance(key, str):
            continue
        values = [v for v in values if isinstance(v, str)]
        match = _ATTRIBUTE_KEY.match(key)
        if match:
            code, multi = match.group(1), match.group(2)
            if multi or len(values) > 1:
                attributes.setdefault(code, [])
                if isinstance(attributes[code], list):
                    attributes[code].extend(values)
            elif values:
                attributes[code] = values[0]
        elif values:
            data[key] = values[0]
    if attributes:
        data["attribute"] = attributes
    return data


class _Form(Tolerant):
    """Open311 clients send empty form fields for what they leave out: treat them as absent."""

    @pre_load
    def _drop_empty(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items() if value not in ("", None)}


class Open311RequestSchema(_Form):
    """POST requests.[format] (form fields). Empty fields count as absent (spec: optional)."""

    api_key = fields.String(load_default=None, validate=validate.Length(max=200))
    jurisdiction_id = fields.String(load_default=None, validate=validate.Length(max=100))
    service_code = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_.\-]{1,32}$", error="service_code 格式不正确"))
    lat = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    long = fields.Float(load_default=None, validate=validate.Range(-180, 180))
    address_string = fields.String(load_default="", validate=validate.Length(max=300))
    address_id = fields.String(load_default="", validate=validate.Regexp(
        r"^(\d{15}|\d{16})$", error="address_id 应为 15 位网格编码或 16 位部件编码"))
    email = fields.String(load_default="", validate=validate.Regexp(
        r"^[^@\s]{1,64}@[^@\s]{1,190}$", error="email 格式不正确"))
    device_id = fields.String(load_default="", validate=validate.Length(max=128))
    account_id = fields.String(load_default="", validate=validate.Length(max=128))
    first_name = fields.String(load_default="", validate=validate.Length(max=50))
    last_name = fields.String(load_default="", validate=validate.Length(max=50))
    phone = fields.String(load_default="", validate=validate.Regexp(r"^[0-9+\-() ]{1,32}$",
                                                                    error="phone 格式不正确"))
    description = fields.String(load_default="", validate=validate.Length(max=4000))
    media_url = fields.Url(load_default="", schemes={"http", "https"}, require_tld=False,
                           validate=validate.Length(max=2000))
    attribute = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=40)),
                            values=fields.Raw(), load_default=dict,
                            validate=validate.Length(max=30))

    @validates_schema
    def _location(self, data, **kwargs):
        has_lat, has_long = data.get("lat") is not None, data.get("long") is not None
        if has_lat != has_long:
            raise ValidationError({"lat": ["lat 与 long 须同时提供 (lat and long go together)"]})
        if not (has_lat or data.get("address_string") or data.get("address_id")):
            raise ValidationError({"location": [
                "须提供 lat/long、address_string 或 address_id 之一 (a location is required)"]})


class Open311QuerySchema(_Form):
    """GET requests.[format] query parameters (+ the page/page_size extension)."""

    service_request_id = fields.String(load_default="", validate=validate.Length(max=4000))
    service_code = fields.String(load_default="", validate=validate.Length(max=1000))
    start_date = fields.AwareDateTime(load_default=None)
    end_date = fields.AwareDateTime(load_default=None)
    status = fields.String(load_default="", validate=validate.Regexp(
        r"^(open|closed)(,(open|closed))*$", error="status 只能是 open、closed（逗号分隔）"))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 100000))
    page_size = fields.Integer(load_default=MAX_PAGE_SIZE, validate=validate.Range(1, MAX_PAGE_SIZE))
    jurisdiction_id = fields.String(load_default=None, validate=validate.Length(max=100))

    @validates_schema
    def _span(self, data, **kwargs):
        start, end = data.get("start_date"), data.get("end_date")
        if start and end:
            if end < start:
                raise ValidationError({"end_date": ["end_date 早于 start_date"]})
            if end - start > MAX_SPAN:
                raise ValidationError({"end_date": ["查询区间不能超过 90 天 (may not span more than 90 days)"]})


def query_filters(query: dict, now: datetime) -> dict:
    """Normalised filters for intake: id list (overrides the rest) or code list, date window
    (90 days by default), statuses, page."""
    ids = [part.strip() for part in query.get("service_request_id", "").split(",") if part.strip()]
    codes = [part.strip() for part in query.get("service_code", "").split(",") if part.strip()]
    statuses = sorted({part for part in query.get("status", "").split(",") if part})
    start, end = query.get("start_date"), query.get("end_date")
    if start is None and end is None:
        end, start = now, now - MAX_SPAN
    elif start is None:
        start = end - MAX_SPAN
    elif end is None:
        end = start + MAX_SPAN
    return {"ids": ids[:200], "codes": codes[:100], "start": start, "end": end,
            "statuses": statuses, "page": query.get("page", 1),
            "page_size": query.get("page_size", MAX_PAGE_SIZE)}


def check_jurisdiction(jurisdiction_id, district) -> None:
    if jurisdiction_id and jurisdiction_id not in (district.code, district.name,
                                                   (district.info or {}).get("jurisdiction_id")):
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id} 不存在 (not found); "
                                f"本接口服务 {district.code} {district.name}")


# ===================================================================== services
def service_list(district) -> list[dict]:
    out = []
    for cls in district.classes():
        out.append({
            "service_code": cls["code"],
            "service_name": cls["name"],
            "description": f"立案标准：{cls['filing_standard']}",
            "metadata": True,
            "type": "realtime",
            "keywords": ", ".join([cls["kind_name"], cls["major_name"], cls["name"]]),
            "group": f"{cls['kind_name']}/{cls['major_name']}",
        })
    return out


def service_definition(district, code: str) -> dict:
    try:
        cls = district.minor_class(code)
    except KeyError:
        raise Open311Error(404, f"service_code {code} 不存在 (not found)") from None
    attributes = []
    for attribute in cls.get("attributes") or []:
        attributes.append({
            "variable": True, "code": attribute["code"], "datatype": attribute["datatype"],
            "required": bool(attribute.get("required")),
            "datatype_description": attribute.get("datatype_description") or
            (f"单位：{attribute['unit']}" if attribute.get("unit") else ""),
            "order": attribute["order"], "description": attribute["description"],
            "values": [dict(v) for v in attribute.get("values") or []],
        })
    attributes.append(dict(URGENCY_ATTRIBUTE))
    if cls["kind"] == "component":
        attributes.append(dict(OBJECT_CODE_ATTRIBUTE))
    return {"service_code": cls["code"], "attributes": attributes}


def to_report(params: dict, district) -> dict:
    """A validated Open311 POST → the platform's report (channel ``open311``).
    Raises Open311Error 404 (unknown service) or 400 (attributes, location)."""
    try:
        cls = district.minor_class(params["service_code"])
    except KeyError:
        raise Open311Error(404, f"service_code {params['service_code']} 不存在 (not found)") from None
    raw = dict(params.get("attribute") or {})
    urgency = raw.pop("urgency", None)
    object_code = raw.pop("object_code", None) or None
    problems = []
    if urgency not in (None, "", "normal", "urgent"):
        problems.append("attribute[urgency]: 只能是 normal 或 urgent")
    if object_code is not None and not (isinstance(object_code, str) and re.fullmatch(r"\d{16}", object_code)):
        problems.append("attribute[object_code]: 部件编码应为 16 位数字")
        object_code = None
    from . import rules
    clean, errors = rules.normalise_attributes(cls, raw, district.calendar.tz)
    problems += [f"attribute[{code}]: {'; '.join(msgs)}" for code, msgs in errors.items()]
    for code in rules.missing_required(cls, clean):
        problems.append(f"attribute[{code}]: 必填 (required by the service definition)")
    location, address = None, params.get("address_string") or ""
    address_id = params.get("address_id") or None
    if params.get("lat") is not None:
        location = {"lon": params["long"], "lat": params["lat"]}
    elif address_id:
        if len(address_id) == 16:
            component = district.components.get(address_id)
            if component is None:
                problems.append(f"address_id: 未登记的部件编码 {address_id}")
            else:
                location = dict(component["location"])
                address = address or component["name"]
                object_code = object_code or address_id
        else:
            try:
                point = district.grid(address_id)["geometry"].representative_point()
                location = {"lon": round(point.x, 6), "lat": round(point.y, 6)}
                address = address or district.grid(address_id)["name"]
            except KeyError:
                problems.append(f"address_id: 未知的网格编码 {address_id}")
    if location is None and not problems:
        found = district.geocode(address)
        if found is None:
            problems.append("address_string: 无法根据地址定位，请提供 lat/long "
                            "(could not locate the address; send lat and long)")
        else:
            location = {"lon": found["lon"], "lat": found["lat"]}
    if object_code and object_code in district.components and \
            district.components[object_code]["class_code"] != cls["code"]:
        problems.append(f"attribute[object_code]: 部件 {object_code} 不属于类别 {cls['code']}")
    elif object_code and object_code not in district.components:
        problems.append(f"attribute[object_code]: 未登记的部件编码 {object_code}")
    if problems:
        raise Open311Error(400, *problems)
    name = " ".join(part for part in (params.get("last_name", ""), params.get("first_name", "")) if part)
    return {
        "channel": "open311",
        "class_code": cls["code"],
        "location": location,
        "address": address,
        "address_id": address_id,
        "description": params.get("description") or "",
        "urgency": urgency or None,
        "reporter": {"name": name, "phone": params.get("phone") or "",
                     "account_id": params.get("account_id") or "", "email": params.get("email") or ""},
        "media_urls": [params["media_url"]] if params.get("media_url") else [],
        "attributes": clean,
        "object_code": object_code,
        "device_id": params.get("device_id") or None,
    }


# ===================================================================== requests
def w3(moment) -> str | None:
    """A w3 datetime with an offset, in the district's local time."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def _latest(*moments):
    values = []
    for moment in moments:
        if moment is None:
            continue
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        values.append(moment)
    return max(values) if values else None


def request_status(report: dict, case: dict | None) -> str:
    if report.get("status") == "rejected" or case is None:
        return "closed"
    return "closed" if case.get("state") == "closed" else "open"


def service_request(report: dict, case: dict | None, district) -> dict:
    """One service request as GeoReport v2 describes it."""
    body = report.get("report") or {}
    location = body.get("location") or {}
    try:
        service_name = district.minor_class(body.get("class_code"))["name"]
    except KeyError:
        service_name = body.get("class_code")
    status = request_status(report, case)
    if report.get("status") == "rejected":
        notes = f"不予立案：{report.get('reason', '')}"
        agency, expected = None, None
    else:
        case = case or {}
        notes = case.get("status_notes") or "已立案"
        prefix = f"案件 {report.get('case_id')}"
        if report.get("status") == "duplicate":
            prefix = f"重复上报，已并入{prefix}"
        elif report.get("status") == "reopened":
            prefix = f"重复出现，{prefix}已重新打开（返工）"
        notes = f"{prefix}：{notes}"
        unit = case.get("unit_id") or case.get("owner_unit")
        agency = (district.units.get(unit) or {}).get("name", unit) if unit else None
        expected = None if status == "closed" else case.get("deadline")
    media = list(body.get("media_urls") or []) + list(body.get("photo_refs") or [])
    return {
        "service_request_id": report["_id"],
        "status": status,
        "status_notes": notes,
        "service_name": service_name,
        "service_code": body.get("class_code"),
        "description": body.get("description") or "",
        "agency_responsible": agency,
        "service_notice": report.get("service_notice"),
        "requested_datetime": w3(report.get("received_at")),
        "updated_datetime": w3(_latest(report.get("received_at"), report.get("updated_at"),
                                       (case or {}).get("updated_at"), (case or {}).get("closed_at"))),
        "expected_datetime": w3(expected),
        "address": body.get("address") or "",
        "address_id": body.get("address_id") or body.get("object_code"),
        "zipcode": None,
        "lat": location.get("lat"),
        "long": location.get("lon"),
        "media_url": media[0] if media else None,
    }


def service_notice(answer: dict, district) -> str:
    """What the reporter is told at once, in plain words."""
    status = answer.get("status")
    if status == "rejected":
        return f"不予立案：{answer.get('reason', '')}"
    unit = answer.get("owner_unit")
    unit_name = (district.units.get(unit) or {}).get("name", unit) if unit else ""
    if status == "duplicate":
        return f"该问题已有案件 {answer.get('case_id')} 正在处理，您的上报已合并，后续进展会同步给您"
    if status == "reopened":
        return f"该问题在结案后再次出现，案件 {answer.get('case_id')} 已重新打开并返工"
    text = f"已立案（案件 {answer.get('case_id')}），责任单位：{unit_name}"
    if answer.get("time_limit"):
        text += f"，处置时限 {working_time_text(answer['time_limit'])}（自派遣起算）"
    return text


def working_time_text(duration: str) -> str:
    """``"1d4h"`` → ``"1个工作日4个工作小时"``."""
    units = {"d": "个工作日", "h": "个工作小时", "m": "个工作分钟"}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhm])", str(duration).lower())
    return "".join(f"{number}{units[unit]}" for number, unit in parts) or str(duration)


def discovery(base_url: str, district, changeset: str) -> dict:
    base = base_url.rstrip("/")
    return {
        "changeset": changeset,
        "contact": f"{(district.info.get('command_centre') or {}).get('name', '')} "
                   f"{(district.info.get('command_centre') or {}).get('phone', '')}".strip(),
        "key_service": "API key: 向指挥中心申请（运维：python -m services.gateway.accounts create --role citizen --name <应用名>）",
        "endpoints": [{
            "specification": SPECIFICATION,
            "url": f"{base}/open311/v2",
            "changeset": changeset,
            "type": "production",
            "formats": ["application/json", "text/xml"],
        }],
    }


# ===================================================================== rendering
_ITEM_TAGS = {"services": "service", "service_requests": "request", "errors": "error",
              "attributes": "attribute", "values": "value", "endpoints": "endpoint",
              "formats": "format"}
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _XML_INVALID.sub("\ufffd", str(value))


def _to_element(parent, tag: str, value):
    element = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, item in value.items():
            _to_element(element, key, item)
    elif isinstance(value, list):
        item_tag = _ITEM_TAGS.get(tag, "item")
        for item in value:
            _to_element(element, item_tag, item)
    else:
        element.text = _xml_text(value)
    return element


def render_xml(root_tag: str, payload) -> bytes:
    root = ET.Element(root_tag)
    if isinstance(payload, list):
        item_tag = _ITEM_TAGS.get(root_tag, "item")
        for item in payload:
            _to_element(root, item_tag, item)
    else:
        for key, item in payload.items():
            _to_element(root, key, item)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8",
                                                                     xml_declaration=False)
