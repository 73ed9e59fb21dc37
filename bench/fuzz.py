"""``make fuzz``: hostile input at every AMQP input and every HTTP endpoint of a running
stack, with a report: inputs tried, crashes (must be 0), unclear errors.

AMQP: for every platform consumer queue, valid messages are mutated (fields dropped, retyped,
oversized, injected) and mixed with random JSON and bytes that are not JSON at all, then
published where that queue's producers publish. Afterwards every message must have been
applied or dead-lettered with a reason; a dead letter whose reason is a validation or decode
error naming what was wrong is clear; one that a handler raised on (it passed validation and
then broke code) is an unclear error. A crash is a service process that died or a health
check that is not 200 afterwards.

Both sides also get oversized, deeply nested and polyglot bodies (an image carrying HTML/SVG).

HTTP: hostile bodies at every endpoint (bench/fuzz_http.py: oversized, deep, polyglot, not
UTF-8, random; with an operator key, none and a bogus one), each answer judged a crash (5xx,
dropped connection), an unclear error (a 4xx outside its API's error shape) or fine; then
schemathesis over the gateway's OpenAPI document with an operator key (no 5xx).
    python -m bench.fuzz                                   # the default run: 20,000+ inputs
    python -m bench.fuzz --examples 60 --http-inputs 2000 --http-examples 0     # a quick one
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import subprocess
import sys
import time
from collections import Counter

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_http import http_hostile
from bench.stack import ROOT, Stack

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)
NASTY = ["<script>alert(1)</script>", "'; DROP TABLE cases; --", {"$ne": None}, {"$where": "1"}, "../../etc/passwd",
         "\u0000\u0001", "𠜎𠜱𠝹", 10**40, -1, 1e308, "x" * 20000, [], {}, None, True, "2026-13-45T99:99:99Z"]


def seeds():
    """A valid message for each platform input: (queue, exchange, routing key, body)."""
    from shared.contracts.events import make_event
    from tests.factories import case_registered
    registered = case_registered()
    case_id = registered["payload"]["case_id"]
    from datetime import datetime, timezone
    moment = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    dispatched = make_event("case_dispatched", {"case_id": case_id, "unit_id": "street.tianshengjie",
                                                "case_kind": "committed", "dispatched_at": moment,
                                                "deadline": moment},
                            producer="dispatch", correlation_id=case_id)
    reply = {"schema_version": "1.0", "distribution_id": "police-fuzz-1", "sender": "police",
             "recipients": ["dcg.coordination"], "kind": "Ack", "sent_at": "2026-11-23T08:00:00Z",
             "incident_id": f"OP-{case_id}", "in_reply_to": f"OP-{case_id}.police.request.1",
             "payload": {"status": "accepted"}}
    report = {"channel": "hotline", "external_id": "fuzz-1", "class_code": "E0101",
              "location": {"lon": 106.3904, "lat": 29.8338}, "description": "热线工单"}
    return [
        ("dispatch.case-registered", "intake.events", "case_registered", registered),
        ("intake.case-lifecycle", "dispatch.events", "case_dispatched", dispatched),
        ("coordination.department-replies", "departments.replies", "police.ack", reply),
        ("intake.inbound-reports", "intake.inbound", "report.hotline", report),
    ]


def mutations(body: dict, rng: random.Random, count: int) -> list:
    """Hostile variants of a valid message, and pure noise."""
    out = []
    noise = []

    @settings(max_examples=max(5, count // 4), database=None, suppress_health_check=list(HealthCheck))
    @given(JSONISH)
    def collect(value):
        noise.append(value)
    collect()
    out.extend(noise)
    out.extend([b"{not json", b"\xff\xfe\x00", b"", "纯文本".encode()])
    out.extend(hostile(body))
    paths = _paths(body)
    while len(out) < count:
        variant = copy.deepcopy(body)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            parent = variant
            for key in path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
                if not isinstance(parent, dict):
                    break
            if isinstance(parent, dict) and path[-1] in parent:
                if rng.random() < 0.3:
                    del parent[path[-1]]
                else:
                    parent[path[-1]] = rng.choice(NASTY)
        if rng.random() < 0.2:
            variant[f"extra_{rng.randint(0, 99)}"] = rng.choice(NASTY)
        out.append(variant)
    return out


def hostile(body: dict) -> list:
    """Oversized, deep and polyglot variants of a valid message (bytes are published as they are)."""
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 17
    out = []
    for key in list(body)[:4]:
        big = copy.deepcopy(body)
        big[key] = "x" * 2_000_000                              # a 2 MB field
        out.append(big)
    for levels in (40, 1000, 100_000):
        out.append(('{"a":' * levels + "1" + "}" * levels).encode())
        out.append(b"[" * levels + b"]" * levels)
        nested = json.dumps(body, ensure_ascii=False)[:-1] + ', "deep": ' + "[" * levels + "]" * levels + "}"
        out.append(nested.encode())
    out.append(png + json.dumps(body, ensure_ascii=False).encode())      # a picture that ends as JSON
    out.append(png + b"<html><script>alert(1)</script></html>")
    polyglot = copy.deepcopy(body)
    polyglot["description"] = "<svg onload=alert(1)>" + "\x89PNG"
    out.append(polyglot)
    return out


def _paths(body, prefix=()):
    paths = []
    for key, value in body.items():
        paths.append(prefix + (key,))
        if isinstance(value, dict):
            paths.extend(_paths(value, prefix + (key,)))
    return paths


def amqp_fuzz(stack, examples, rng):
    from shared.messaging.publisher import ConfirmedPublisher
    from tests.helpers import drain, queue_depth
    publisher = ConfirmedPublisher(stack.config["AMQP_URI"])
    tried = Counter()
    try:
        for queue, exchange, key, body in seeds():
            for variant in mutations(body, rng, examples):
                if isinstance(variant, bytes):
                    publisher.publish(exchange, key, variant, content_type=rng.choice(["application/json", "text/plain", ""]))
                else:
                    publisher.publish(exchange, key, json.dumps(variant, ensure_ascii=False).encode())
                tried[queue] += 1
    finally:
        publisher.close()
    queues = [q for q, *_ in seeds()]
    deadline = time.time() + 120
    while time.time() < deadline and any(queue_depth(stack.config, q) for q in queues):
        time.sleep(1)
    time.sleep(4)                          # the last retries come back and settle
    letters = {q: drain(stack.config, f"{q}.dlq") for q in queues}
    clear, unclear = Counter(), []
    for queue, rows in letters.items():
        for _, headers in rows:
            kind = headers.get("x-error-type")
            reason = headers.get("x-dead-letter-reason", "")
            if kind in ("validation", "decode_error") and reason:
                clear[queue] += 1
            elif kind == "permanent" and reason:
                clear[queue] += 1           # refused by a rule, with its reason
            else:
                unclear.append({"queue": queue, "type": kind, "reason": reason[:200]})
    return tried, clear, unclear


def http_fuzz(stack, examples):
    """schemathesis over the OpenAPI document; returns (operations, examples, 5xx failures, output)."""
    key = stack.operator_key()
    spec = f"{stack.gateway}/api/openapi.json"
    if requests.get(spec, timeout=10).status_code != 200:
        return None
    done = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", spec, "--checks", "not_a_server_error",
                           "--header", f"Authorization: Bearer {key}", "--max-examples", str(examples),
                           "--url", stack.gateway],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    return {"exit_code": done.returncode, "summary": "\n".join(done.stdout.strip().splitlines()[-12:])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=500, help="hostile messages per AMQP input")
    parser.add_argument("--http-inputs", type=int, default=18000, help="hostile HTTP requests in all")
    parser.add_argument("--http-examples", type=int, default=5,
                        help="schemathesis examples per operation (0: skip schemathesis)")
    args = parser.parse_args(argv)
    rng = random.Random(5)
    # hostile input, not volume: the per-address key-failure and Open311 buckets would otherwise
    # answer most of the run with 429
    env = {"RETRY_DELAYS_MS": "200,400", "AUTH_FAIL_BURST": "100000000", "OPEN311_BURST": "100000000",
           "OPEN311_RATE_PER_MINUTE": "100000000"}
    with Stack("fuzz", store="memory", env=env) as stack:
        started = time.time()
        tried, clear, unclear = amqp_fuzz(stack, args.examples, rng)
        hostile_http = http_hostile(stack.gateway, stack.operator_key(), args.http_inputs)
        http = http_fuzz(stack, args.http_examples) if args.http_examples else None
        seconds = round(time.time() - started)
        dead = [name for name, proc in stack.procs.items() if proc.poll() is not None]
        healthy = stack.all_up()
    result = {"amqp": {"inputs_tried": dict(tried), "total": sum(tried.values()),
                       "dead_lettered_with_clear_reason": dict(clear), "unclear_errors": len(unclear),
                       "unclear_examples": unclear[:10]},
              "http_hostile": hostile_http, "http": http,
              "inputs_tried": sum(tried.values()) + hostile_http["inputs_tried"],
              "crashes": len(dead) + (0 if healthy else 1) + hostile_http["crashes"],
              "unclear_errors": len(unclear) + hostile_http["unclear_errors"],
              "dead_processes": dead, "healthy_after": healthy, "seconds": seconds}
    out = ROOT / "artifacts" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"\ninputs tried: {result['inputs_tried']} (AMQP {result['amqp']['total']}, HTTP "
          f"{hostile_http['inputs_tried']} over {hostile_http['routes']} endpoints) in {seconds} s  "
          f"crashes: {result['crashes']}  unclear errors: {result['unclear_errors']}  schemathesis: "
          f"{'exit ' + str(http['exit_code']) if http else 'skipped'}")
    return 0 if result["crashes"] == 0 and result["unclear_errors"] == 0 and (
        not http or http["exit_code"] == 0) else 1


if __name__ == "__main__":
    raise SystemExit(main())
