"""Open311 GeoReport v2 — the protocol, pure: the error arrays, form parsing, the request and
query schemas, w3 datetimes, discovery and the XML rendering. The gateway serves the HTTP side
(services/gateway/open311.py) with these; intake maps services and requests onto the platform
(services/intake/open311.py, which re-exports this module's names).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from .base import Tolerant

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
