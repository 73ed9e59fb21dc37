"""Access decided in one place (services/gateway/access.py) and identity only from the key.

- every native endpoint declares what it acts on and the relation each role needs;
- the relations, on own and foreign objects;
- the OpenAPI document is walked: every request-body field that names an actor is one the
  gateway fills from the key (``x-identity``), never one it trusts from the body.
"""
import pytest

from services.gateway import access, auth, openapi
from services.gateway.service import GatewayService

T, B = "street.tianshengjie", "street.beiquan"
UNIT = auth.Principal("k1", "天生街道 处置员", "unit", unit_id=T)
POLICE = auth.Principal("k2", "公安", "partner", department="police")
OPERATOR = auth.Principal("k3", "值班员", "operator")
LEADER = auth.Principal("k4", "区领导", "leader")
CITIZEN = auth.Principal("k5", "市民", "citizen")
INSPECTOR = auth.Principal("k6", "网格员", "inspector", person_id="insp-017")

# request-body field names that say who did something
ACTOR_NAMES = {"actor", "actor_unit", "actor_id", "role", "by", "requested_by", "decided_by", "inspector",
               "inspector_id", "inspector_name", "checked_by", "officer", "person", "account_id", "registered_by", "approver",
               "sensor_id", "device_id", "filed_by", "created_by", "user", "user_id"}


def test_every_native_endpoint_declares_what_it_acts_on():
    undeclared = [(method, url) for method, url, fn in openapi.native_routes(GatewayService)
                  if getattr(fn, "roles", None) is not None and getattr(fn, "access", None) is None]
    assert undeclared == []


def test_relations_on_own_and_foreign_objects():
    own_case, other_case = {"unit_id": T}, {"unit_id": B}
    assert access.holds("owning_unit", UNIT, own_case) and not access.holds("owning_unit", UNIT, other_case)
    assert not access.holds("owning_unit", OPERATOR, own_case)
    led = {"lead_unit": T, "departments": {"police": {}}}
    other = {"lead_unit": B, "requested_by": B, "departments": {"environment": {}}}
    assert access.holds("lead", UNIT, led) and not access.holds("lead", UNIT, other)
    assert access.holds("participant", POLICE, led) and not access.holds("participant", POLICE, other)
    assert access.holds("owner_or_lead", UNIT, {"case": other_case, "operation": led})
    assert access.holds("owner_or_lead", UNIT, {"case": own_case, "operation": None})
    assert not access.holds("owner_or_lead", UNIT, {"case": None, "operation": None})
    assert not access.holds("owner_or_lead", UNIT, {"case": other_case, "operation": other})
    # territory: inside its own only, never replacing another unit's registration
    assert access.holds("territory", UNIT, {"units": [T], "exists": False})
    assert access.holds("territory", UNIT, {"units": [T], "exists": True, "registered_by": T})
    assert not access.holds("territory", UNIT, {"units": [B], "exists": False})
    assert not access.holds("territory", UNIT, {"units": [T, B], "exists": False})
    assert not access.holds("territory", UNIT, {"units": [T], "exists": True, "registered_by": B})
    assert not access.holds("territory", UNIT, {"units": [T], "exists": True, "registered_by": None})
    assert access.holds("filer", CITIZEN, {"account_id": "k5"}) and not access.holds("filer", CITIZEN,
                                                                                       {"account_id": "k9"})
    # contacts: the command centre and the owning unit only
    assert access.may_see_contacts(OPERATOR, other_case) and access.may_see_contacts(UNIT, own_case)
    for who in (LEADER, INSPECTOR, POLICE, CITIZEN):
        assert not access.may_see_contacts(who, own_case)
    assert not access.may_see_contacts(UNIT, other_case)


def test_a_caller_reads_foreign_objects_as_404_and_writes_as_403():
    read = access.Caller(UNIT, access.Access("case", {"unit": "owning_unit"}, label="案件"))
    write = access.Caller(UNIT, access.Access("case", {"unit": "owning_unit"}, write=True, label="案件"))
    assert read.check({"unit_id": T}) == {"unit_id": T}
    for caller, error in ((read, auth.NotFound), (write, auth.Forbidden)):
        with pytest.raises(error):
            caller.check({"unit_id": B})
        with pytest.raises(auth.NotFound):
            caller.check(None)
    filled = access.Caller(UNIT, access.Access(None, {"unit": "any"}, write=True, identity=("officer",)))
    assert filled.fill({"officer": "冒名：区长本人", "note": "x"}, officer=UNIT.name) == {
        "note": "x", "officer": "天生街道 处置员"}


def test_citizens_cannot_set_urgency_or_sensor_fields():
    body = {"urgency": "urgent", "sensor_id": "S-1", "device_id": "D-1", "class_code": "E0101"}
    citizen = auth.report_as(CITIZEN, body)
    assert "urgency" not in citizen and "sensor_id" not in citizen and "device_id" not in citizen
    assert auth.report_as(INSPECTOR, body)["urgency"] == "urgent"            # staff may
    assert "sensor_id" not in auth.report_as(OPERATOR, body)                 # sensors report over AMQP


def _fields(document, schema, prefix=""):
    """Every (dotted path, property schema) of a request-body schema, through $refs."""
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for name, prop in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        yield path, prop
        inner = prop.get("items", prop)
        if "$ref" in inner or inner.get("properties"):
            yield from _fields(document, inner, path + ".")
        for option in prop.get("allOf", []) + prop.get("anyOf", []):
            yield from _fields(document, option, path + ".")


def test_the_openapi_document_trusts_no_actor_named_in_a_request_body():
    document = openapi.build(GatewayService)
    trusted, checked = [], 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
            if not body:
                continue
            filled = set(operation.get("x-identity") or ())
            for field_path, _ in _fields(document, body["schema"]):
                checked += 1
                name = field_path.rsplit(".", 1)[-1]
                covered = field_path in filled or any(field_path.startswith(f + ".") or f.startswith(
                    field_path + ".") for f in filled)          # the field, its object, or its parts
                if name in ACTOR_NAMES and not covered:
                    trusted.append(f"{method.upper()} {path}: {field_path}")
    assert checked > 50
    assert trusted == [], "actor fields taken from the body:\n" + "\n".join(trusted)


def test_the_walk_finds_an_actor_field_the_server_would_trust():
    """The check above is not vacuous: an endpoint whose body names the officer without the
    declaration is caught."""
    document = openapi.build(GatewayService)
    operation = document["paths"]["/api/enforcement/violations"]["post"]
    operation.pop("x-identity")
    schema = document["components"]["schemas"][operation["requestBody"]["content"]["application/json"][
        "schema"]["$ref"].rsplit("/", 1)[1]]
    schema["properties"]["officer"] = {"type": "string"}
    names = {path for path, _ in _fields(document, operation["requestBody"]["content"]["application/json"][
        "schema"])}
    assert "officer" in names and "officer" in ACTOR_NAMES


def test_the_access_table_in_docs_api_md_is_the_declared_one():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    begin, end = text.index(access.MARK_BEGIN), text.index(access.MARK_END) + len(access.MARK_END)
    assert text[begin:end] == access.table(), "regenerate it: python -m services.gateway.access"
