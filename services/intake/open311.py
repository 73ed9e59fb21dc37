"""Open311 GeoReport v2 — pure: parsing, mapping and rendering, no I/O.

The gateway serves the HTTP side (services/gateway/open311.py) and asks intake over RPC; both
use this module.  Mapping onto the platform:

The protocol itself (errors, form parsing, schemas, w3 times, discovery, XML) is
shared/contracts/open311.py, re-exported here.

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

from shared.contracts.open311 import (  # noqa: F401  (the protocol, re-exported)
    _ATTRIBUTE_KEY, FORMATS, MAX_PAGE_SIZE, MAX_SPAN, OBJECT_CODE_ATTRIBUTE, SPECIFICATION,
    URGENCY_ATTRIBUTE, Open311Error, Open311QuerySchema, Open311RequestSchema, _latest, check_jurisdiction,
    discovery, errors_from_validation, form_to_dict, query_filters, render_xml, w3)


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


def request_status(report: dict, case: dict | None) -> str:
    if report.get("status") == "rejected" or case is None:
        return "closed"
    return "closed" if case.get("state") in ("closed", "cancelled") else "open"


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
