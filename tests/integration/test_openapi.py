"""The OpenAPI document of the native API: complete, derived from the code, served publicly, and
fuzzed with schemathesis against the running platform (real broker and store) — no 5xx.

The fuzzing is bounded: at most 20 examples per operation, the examples, coverage and fuzzing
phases, a fixed seed; it runs as its own process (``st run``) with a valid operator key, with one
worker: on Python 3.11 two generating threads can trip CPython's AST recursion counter (a
``SystemError: AST constructor recursion depth mismatch`` inside hypothesis, seen here once).
``FUZZ_EXAMPLES=200 FUZZ_SEED=<n>`` digs deeper by hand."""
import os
import subprocess
import sys
from pathlib import Path

import schemathesis

from services.gateway import auth, openapi
from services.gateway.service import GatewayService
from tests.integration.gateway_auth_support import platform  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")


def test_every_native_route_is_in_the_document_with_the_roles_it_enforces():
    document = openapi.build(GatewayService)
    paths = document["paths"]
    docs = openapi.all_docs(GatewayService)
    undocumented = [(method, url) for method, url, _ in openapi.native_routes(GatewayService)
                    if (method, url) not in docs and (method, url) != openapi.ACTIONS_ROUTE]
    assert undocumented == [], ("describe these routes: OPENAPI_DOCS in their API module "
                                "(or DOCS in services/gateway/openapi.py)")
    for method, url, fn in openapi.native_routes(GatewayService):
        if (method, url) == openapi.ACTIONS_ROUTE:
            for name, roles in auth.CASE_ACTION_ROLES.items():
                operation = paths[f"/api/cases/{{case_id}}/actions/{name.replace('_', '-')}"]["post"]
                assert operation["x-roles"] == list(roles)
            continue
        for verb in method.split(","):
            operation = paths[openapi.openapi_path(url)][verb.lower()]
            if hasattr(fn, "roles"):                          # guarded by @endpoint: the same tuple
                assert operation["x-roles"] == list(fn.roles), url
            assert {"401", "403"} & set(operation["responses"]) or operation.get("security") == [], url
            assert "default" in operation["responses"]
    # the bodies are the services' marshmallow schemas, without the identity the key supplies
    accept = document["components"]["schemas"]["AcceptBody"]
    assert set(accept["properties"]) == {"expected_version", "note"} and accept["required"] == ["expected_version"]
    report = document["components"]["schemas"]["ReportBody"]          # sensor fields: never from a person
    assert report["properties"]["class_code"]["pattern"] == r"^[CE]\d{4}$" and "sensor_id" not in report["properties"]
    cases = {p["name"] for p in paths["/api/cases"]["get"]["parameters"]}
    assert {"state", "unit", "grid", "class", "since", "until", "overdue", "checking", "page", "per_page"} == cases
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert paths["/health"]["get"]["security"] == [] and paths["/api/openapi.json"]["get"]["security"] == []
    assert "leader" not in paths["/api/reports"]["post"]["x-roles"]
    schemathesis.openapi.from_dict(document)                  # a valid OpenAPI 3 document


def test_the_document_is_served_without_a_key(platform):  # noqa: F811
    answer = platform.anonymous.get("/api/openapi.json")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["openapi"].startswith("3.") and answer.json() == openapi.document()


def test_fuzzing_every_operation_finds_no_server_error(platform, tmp_path):  # noqa: F811
    key = platform.keys["operator"]
    command = [str(ST), "run", f"{platform.base}/api/openapi.json",
               "--header", f"Authorization: Bearer {key}",
               "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
               "--phases", "examples,coverage,fuzzing", "--max-examples", os.environ.get("FUZZ_EXAMPLES", "20"),
               "--seed", os.environ.get("FUZZ_SEED", "20261123"),
               "--workers", "1", "--request-timeout", "20", "--no-shrink",
               "--suppress-health-check", "all", "--warnings", "off",
               "--report", "junit", "--report-dir", str(tmp_path),
               # a live stream does not end by design (tests/integration/test_live_stream.py covers it)
               "--exclude-path", "/api/stream"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                          timeout=int(os.environ.get("FUZZ_TIMEOUT", "170")),
                          env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""})
    summary = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, summary
    assert "No issues found" in done.stdout or "passed" in done.stdout.lower(), summary
