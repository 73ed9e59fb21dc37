"""Generate the department contract's machine-readable documents from the marshmallow schemas.

    python -m shared.contracts.export            # writes docs/integration/schemas/*.json and
                                                 #        docs/integration/asyncapi.yaml
    python -m shared.contracts.export --check    # exit 1 when the files are out of date

The JSON Schemas (draft 2020-12) are derived field by field from
shared/contracts/departments.py, so the documents cannot drift from what the platform
validates. The examples are real messages built by the coordination rules at a fixed time
(services/enforcement_coordination/examples.py writes docs/integration/schemas/examples.json).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from marshmallow import fields, validate

from ..config import ROOT
from ..departments import department_ids
from . import departments as contract

OUT = ROOT / "docs" / "integration"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://dcg.example/contracts/departments/"


# ------------------------------------------------------------------ marshmallow → JSON Schema
def _nested_schema(field):
    nested = field.schema if hasattr(field, "schema") else field.nested
    return nested if not isinstance(nested, type) else nested()


def field_schema(field) -> dict:
    if isinstance(field, fields.Nested):
        out = object_schema(_nested_schema(field))
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": field_schema(field.inner)}
    elif isinstance(field, fields.Dict):
        out = {"type": "object"}
    elif isinstance(field, (fields.AwareDateTime, fields.DateTime)):
        out = {"type": "string", "format": "date-time"}
    elif isinstance(field, fields.Boolean):
        out = {"type": "boolean"}
    elif isinstance(field, fields.Integer):
        out = {"type": "integer"}
    elif isinstance(field, (fields.Float, fields.Number)):
        out = {"type": "number"}
    else:
        out = {"type": "string"}
    for validator in getattr(field, "validators", []) or []:
        if isinstance(validator, validate.OneOf):
            out["enum"] = list(validator.choices)
        elif isinstance(validator, validate.Regexp):
            out["pattern"] = validator.regex.pattern
        elif isinstance(validator, validate.Length):
            lo, hi = ("minItems", "maxItems") if out.get("type") == "array" else ("minLength", "maxLength")
            if validator.equal is not None:
                out[lo] = out[hi] = validator.equal
            if validator.min is not None:
                out[lo] = validator.min
            if validator.max is not None:
                out[hi] = validator.max
        elif isinstance(validator, validate.Range):
            if validator.min is not None:
                out["minimum"] = validator.min
            if validator.max is not None:
                out["maximum"] = validator.max
    description = (field.metadata or {}).get("description")
    if description:
        out["description"] = description
    default = field.load_default
    if default is not None and not callable(default) and repr(default) != "<marshmallow.missing>":
        out["default"] = default
    if field.allow_none:
        out = {"anyOf": [out, {"type": "null"}]} if "type" not in out or "enum" in out else \
            {**out, "type": [out["type"], "null"]}
    return out


def object_schema(schema) -> dict:
    properties, required = {}, []
    for name, field in schema.fields.items():
        key = field.data_key or name
        properties[key] = field_schema(field)
        if field.required:
            required.append(key)
    out = {"type": "object", "properties": properties, "additionalProperties": True}
    if required:
        out["required"] = required
    return out


# Cross-field rules of the marshmallow schemas (validates_schema), in JSON Schema terms.
CROSS_FIELD = {
    contract.AckPayload: {"if": {"properties": {"status": {"const": "rejected"}}, "required": ["status"]},
                          "then": {"required": ["reason"], "properties": {"reason": {"pattern": "\\S"}}}},
}


def message_schema(stem, direction, kind, envelope_cls, payload_cls, summary) -> dict:
    body = object_schema(envelope_cls())
    body["properties"]["kind"] = {"const": kind, "description": f"{kind} ({direction})"}
    body["properties"]["payload"] = {**object_schema(payload_cls()), **CROSS_FIELD.get(payload_cls, {})}
    if envelope_cls is contract.PlatformEnvelope:
        body["properties"]["sender"] = {"const": contract.PLATFORM_SENDER}
    if envelope_cls is contract.ReplyEnvelope:
        body["properties"]["in_reply_to"] = {"type": "string", "pattern": body["properties"]["distribution_id"]["pattern"],
                                             "description": "the distribution_id this message answers"}
        body["required"] = sorted(set(body["required"]) | {"in_reply_to"}, key=list(body["properties"]).index)
    return {"$schema": SCHEMA_DIALECT, "$id": f"{BASE_ID}{stem}.schema.json",
            "title": f"{kind} — {direction}", "description": summary, **body}


def envelope_schema() -> dict:
    return {"$schema": SCHEMA_DIALECT, "$id": f"{BASE_ID}envelope.schema.json",
            "title": "Envelope (EDXL-DE / CAP style), every message in either direction",
            **object_schema(contract.DepartmentEnvelope())}


def schemas() -> dict[str, dict]:
    out = {"envelope": envelope_schema()}
    for stem, direction, kind, envelope_cls, payload_cls, summary in contract.MESSAGES:
        out[stem] = message_schema(stem, direction, kind, envelope_cls, payload_cls, summary)
    return out


# ------------------------------------------------------------------ examples (real messages)
EXAMPLES = OUT / "schemas" / "examples.json"


def examples() -> dict[str, dict]:
    """Real messages, built by coordination's rules at a fixed time and kept in
    docs/integration/schemas/examples.json (``python -m services.enforcement_coordination.examples``
    writes them; a unit test holds them equal to what the rules build). Read here, not built:
    shared imports no service."""
    return json.loads(EXAMPLES.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ AsyncAPI
def asyncapi() -> dict:
    samples = examples()
    names = {"request": "Request", "platform-update": "PlatformUpdate", "cancel": "Cancel",
             "platform-error": "PlatformError", "ack": "Ack", "update": "Update", "error": "Error"}
    messages = {}
    for stem, direction, kind, _envelope, _payload, summary in contract.MESSAGES:
        messages[names[stem]] = {
            "name": names[stem], "title": f"{kind} ({direction})", "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"./schemas/{stem}.schema.json"},
            "correlationId": {"description": "the joint operation", "location": "$message.payload#/incident_id"},
            "bindings": {"amqp": {"messageType": kind, "bindingVersion": "0.2.0"}},
            "examples": [{"name": f"{stem}-example", "payload": samples[stem]}],
        }
    departments = department_ids()
    return {
        "asyncapi": "2.6.0",
        "id": "urn:dcg:departments",
        "info": {
            "title": "大城管联合指挥平台 — department interface (城管+N)",
            "version": contract.CONTRACT_VERSION,
            "description": ("How a partner department's system joins joint operations over AMQP 0-9-1 with "
                            "nothing but a client (e.g. pika), its credentials and docs/integration/departments.md. "
                            "The platform sends Request / Update / Cancel / Error to the department's inbox; the "
                            "department answers Ack / Update / Error on the replies exchange. Generated by "
                            "`python -m shared.contracts.export` from shared/contracts/departments.py."),
        },
        "servers": {
            "platform": {
                "url": "{host}:{port}", "protocol": "amqp", "protocolVersion": "0-9-1",
                "description": "the platform's RabbitMQ (vhost given with your credentials)",
                "variables": {"host": {"default": "127.0.0.1"}, "port": {"default": "5672"}},
                "security": [{"departmentUser": []}],
            },
        },
        "defaultContentType": "application/json",
        "channels": {
            "dept.{department}.inbox": {
                "description": ("Your inbox: a durable queue the platform declares and binds to the topic exchange "
                                "`departments.requests` with `{department}.#`. Consume it (basic.consume, manual "
                                "ack); you may not declare, bind or delete anything. Ack a message after you have "
                                "recorded what you will do with it; nack(requeue=False) an unreadable one (it goes "
                                "to `dept.{department}.inbox.dlq`)."),
                "parameters": {"department": {"description": "your department id",
                                              "schema": {"type": "string", "enum": departments}}},
                "bindings": {"amqp": {"is": "queue", "bindingVersion": "0.2.0",
                                      "queue": {"name": "dept.{department}.inbox", "durable": True, "exclusive": False,
                                                "autoDelete": False}}},
                "subscribe": {
                    "operationId": "receivePlatformMessages",
                    "summary": "Request, Update, Cancel and Error from the platform (routing key {department}.<kind>)",
                    "bindings": {"amqp": {"ack": True, "bindingVersion": "0.2.0"}},
                    "message": {"oneOf": [{"$ref": f"#/components/messages/{n}"}
                                          for n in ("Request", "PlatformUpdate", "Cancel", "PlatformError")]},
                },
            },
            "departments.replies": {
                "description": ("The replies exchange (topic, durable). Publish with routing key "
                                "`{department}.<kind lowercase>` (e.g. `police.ack`) — the only routing keys your "
                                "user may use — with content_type application/json, delivery_mode 2, mandatory, "
                                "publisher confirms, and the AMQP `user_id` property set to your user name."),
                "bindings": {"amqp": {"is": "routingKey", "bindingVersion": "0.2.0",
                                      "exchange": {"name": "departments.replies", "type": "topic", "durable": True,
                                                   "autoDelete": False}}},
                "publish": {
                    "operationId": "sendReplies",
                    "summary": "Ack (accept / reject), Update (checkin, action, disposition), Error",
                    "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "userId": "dept.{department}",
                                          "cc": ["{department}.ack", "{department}.update", "{department}.error"],
                                          "bindingVersion": "0.2.0"}},
                    "message": {"oneOf": [{"$ref": f"#/components/messages/{n}"} for n in ("Ack", "Update", "Error")]},
                },
            },
        },
        "components": {
            "messages": messages,
            "securitySchemes": {
                "departmentUser": {
                    "type": "userPassword",
                    "description": ("One RabbitMQ user per department (`dept.<id>`), created by `dcgctl users apply`: "
                                    "configure ^$, write ^departments\\.replies$, read ^dept\\.<id>\\.inbox$, and a "
                                    "topic permission on departments.replies allowing only routing keys <id>.<kind>."),
                },
            },
        },
    }


# ------------------------------------------------------------------ files
def rendered() -> dict[Path, str]:
    files = {OUT / "schemas" / f"{stem}.schema.json": json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
             for stem, schema in schemas().items()}
    header = ("# GENERATED by `python -m shared.contracts.export` from shared/contracts/departments.py — do not edit.\n"
              "# AsyncAPI 2.6.0 description of the department interface; message payloads are the JSON Schemas in\n"
              "# ./schemas/. Human-readable contract: ./departments.md\n")
    files[OUT / "asyncapi.yaml"] = header + yaml.safe_dump(asyncapi(), allow_unicode=True, sort_keys=False, width=110)
    return files


def write() -> list[Path]:
    written = []
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale() -> list[Path]:
    return [path for path, text in rendered().items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.contracts.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the generated files are out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if out_of_date else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
