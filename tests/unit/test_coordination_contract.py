"""The department contract's documents agree with the code: the JSON Schemas and the AsyncAPI
document are generated from the marshmallow schemas and up to date, every example is accepted
by both the platform's loaders and the JSON Schemas, and the topology matches the document."""
import json
from pathlib import Path

import pytest
import yaml

from shared.contracts import departments as contract
from shared.contracts import export
from shared.messaging import topology

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "integration"
jsonschema = pytest.importorskip("jsonschema")


def schema(stem):
    return json.loads((DOCS / "schemas" / f"{stem}.schema.json").read_text(encoding="utf-8"))


def test_generated_documents_are_up_to_date():
    from services.enforcement_coordination import examples
    assert not examples.stale(), "run: python -m services.enforcement_coordination.examples"
    assert export.stale() == [], "run: python -m shared.contracts.export"


@pytest.mark.parametrize("stem,direction,kind", [(m[0], m[1], m[2]) for m in contract.MESSAGES])
def test_every_example_is_valid_for_the_code_and_for_its_json_schema(stem, direction, kind):
    example = json.loads((DOCS / "schemas" / "examples.json").read_text(encoding="utf-8"))[stem]
    loader = contract.load_platform_message if direction.startswith("platform") else contract.load_department_message
    assert loader(example)["kind"] == kind
    jsonschema.Draft202012Validator(schema(stem), format_checker=jsonschema.FormatChecker()).validate(example)
    jsonschema.Draft202012Validator(schema("envelope")).validate(example)


def test_json_schemas_refuse_what_the_code_refuses():
    examples = json.loads((DOCS / "schemas" / "examples.json").read_text(encoding="utf-8"))
    ack = schema("ack")
    bad = [
        {**examples["ack"], "payload": {"status": "rejected", "reason": " "}},     # a rejection needs a reason
        {**examples["ack"], "in_reply_to": None},                                   # replies reference the original
        {**examples["ack"], "schema_version": "2.0"},                               # another major version
        {**examples["ack"], "kind": "Request"},
    ]
    for message in bad:
        assert list(jsonschema.Draft202012Validator(ack).iter_errors(message)), message
        with pytest.raises(Exception):
            contract.load_department_message(message)
    extra = {**examples["ack"], "priority": "high", "payload": {**examples["ack"]["payload"], "x": 1}}
    jsonschema.Draft202012Validator(ack).validate(extra)                           # unknown fields tolerated
    assert contract.load_department_message(extra)["kind"] == "Ack"


def test_the_asyncapi_document_matches_the_topology_and_the_schemas():
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("2.") and doc["info"]["version"] == contract.CONTRACT_VERSION
    inbox = topology.department_inbox("{department}")
    assert inbox.name in doc["channels"] and topology.DEPT_REPLIES in doc["channels"]
    assert inbox.bindings == ((topology.DEPT_REQUESTS, "{department}.#"),)
    for message in doc["components"]["messages"].values():
        ref = message["payload"]["$ref"]
        assert (DOCS / ref).is_file(), ref
    refs = {ref["$ref"].rsplit("/", 1)[1] for channel in doc["channels"].values()
            for op in ("publish", "subscribe") if op in channel for ref in channel[op]["message"]["oneOf"]}
    assert refs == set(doc["components"]["messages"])


def test_the_human_contract_names_every_kind_stage_and_error_code():
    text = (DOCS / "departments.md").read_text(encoding="utf-8")
    for word in contract.KINDS + contract.UPDATE_STAGES + contract.ERROR_CODES + ["user_id", "references",
                                                                                    "in_reply_to", "asyncapi.yaml"]:
        assert f"`{word}`" in text or word in text, word
