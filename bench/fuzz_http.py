"""The HTTP half of ``make fuzz``: hostile bodies at every HTTP endpoint of a running gateway.

Every route of the OpenAPI document, Open311's, the photo upload and the pages get bodies that
are oversized (declared and real, with and without a length), deeply nested, with huge strings,
not UTF-8, image polyglots carrying HTML/SVG, random JSON and wrong content types — with an
operator key, without a key, and with a bogus one. Each answer is judged:

- **crash**: a 5xx, a dropped connection, or no answer;
- **unclear error**: a 4xx that is not in the error shape of its API (native
  ``{"error": {"message": …}}``; Open311 ``[{"code", "description"}]`` or ``<errors>``) or has
  no message;
- anything else (2xx, or a clear 4xx) is fine.
"""
from __future__ import annotations

import http.client
import io
import json
import random
import re
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

DEEP_LEVELS = (33, 1000, 100_000)


def _picture(kind: str) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (6, 6), (10, 200, 90)).save(out, kind)
    return out.getvalue()


def routes(gateway: str) -> list[tuple[str, str]]:
    """(method, concrete path) of every HTTP endpoint."""
    document = requests.get(f"{gateway}/api/openapi.json", timeout=10).json()
    found = []
    for path, operations in document.get("paths", {}).items():
        for method in operations:
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "fuzz-1", path)))
    for fmt in ("json", "xml"):
        found += [("POST", f"/open311/v2/requests.{fmt}"), ("GET", f"/open311/v2/requests.{fmt}"),
                  ("POST", f"/open311/v2/requests/fuzz-1/satisfaction.{fmt}"),
                  ("GET", f"/open311/v2/services.{fmt}"), ("GET", f"/open311/v2/discovery.{fmt}")]
    found += [("POST", "/api/media"), ("GET", "/"), ("GET", "/inspector"), ("GET", "/static/app.js"),
              ("GET", "/media/0123456789abcdef0123456789abcdef")]
    return sorted(set(found))


def bodies(rng: random.Random) -> list[tuple[str, dict, bytes | None]]:
    """(label, extra headers, body) — one of each kind; ``None`` body = declared size only."""
    png, jpeg = _picture("PNG"), _picture("JPEG")
    html = b"<html><script>alert(document.cookie)</script></html>"
    svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"
    json_type = {"Content-Type": "application/json"}
    out = [
        ("declared 50 MB", {**json_type, "Content-Length": str(50 * 1024 * 1024)}, None),
        ("real 1.2 MB", json_type, b'{"description": "' + b"x" * 1_200_000 + b'"}'),
        ("chunked 2 MB", {**json_type, "Transfer-Encoding": "chunked"}, b"[" * 2_000_000),
        ("long string", json_type, json.dumps({"description": "长" * 30000, "class_code": "E0101"}).encode()),
        ("not utf-8", json_type, b'{"description": "\xff\xfe\xfa"}'),
        ("png+html", {"Content-Type": "image/png"}, png + html),
        ("jpeg+svg", {"Content-Type": "image/jpeg"}, jpeg + svg),
        ("gif polyglot", {"Content-Type": "image/gif"}, b"GIF89a/*" + html + b"*/=1;"),
        ("png as json", json_type, png),
        ("form+html", {"Content-Type": "application/x-www-form-urlencoded"},
         b"service_code=E0101&description=" + html + b"&lat=29.8&long=106.3"),
        ("xml bomb", {"Content-Type": "application/xml"},
         b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><r>&b;</r>'),
        ("empty", json_type, b""),
        ("multipart broken", {"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz\r\nbroken"),
    ]
    for levels in DEEP_LEVELS:
        out.append((f"deep {levels}", json_type, ('{"a":' * levels + "1" + "}" * levels).encode()))
        out.append((f"deep list {levels}", json_type, b"[" * levels + b"]" * levels))
    for _ in range(6):
        out.append(("random json", json_type, json.dumps(_random_json(rng, 4)).encode()))
    return out


def _random_json(rng: random.Random, depth: int):
    pick = rng.random()
    if depth <= 0 or pick < 0.3:
        return rng.choice([None, True, -1, 10**30, 1e308, "", "<script>", {"$ne": None}, "𠜎" * 50, "x" * 300])
    if pick < 0.65:
        return {rng.choice(["a", "class_code", "location", "$where", "expected_version", "api_key", ""]):
                _random_json(rng, depth - 1) for _ in range(rng.randint(0, 4))}
    return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 4))]


def send(host: str, port: int, method: str, path: str, headers: dict, body: bytes | None):
    """One request; returns (status, content type, body) or raises OSError/HTTPException."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        chunked = headers.get("Transfer-Encoding") == "chunked"
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None and not chunked and "Content-Length" not in headers:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            if chunked:
                for start in range(0, len(body), 65536):
                    piece = body[start:start + 65536]
                    conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                conn.send(b"0\r\n\r\n")
            elif body:
                conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass                       # refused before it was all sent: the answer is still there
        answer = conn.getresponse()
        return answer.status, answer.getheader("Content-Type") or "", answer.read(200_000)
    finally:
        conn.close()


def judge(path: str, status: int, content_type: str, body: bytes) -> str:
    """'ok', 'crash' or 'unclear' for one answer."""
    if status >= 500:
        return "crash"
    if status < 400:
        return "ok"
    if path.startswith("/open311/"):
        if path.endswith(".xml"):
            return "ok" if b"<errors>" in body and b"<description>" in body else "unclear"
        try:
            errors = json.loads(body)
            return "ok" if errors and all(e.get("code") and e.get("description") for e in errors) else "unclear"
        except (ValueError, AttributeError, TypeError):
            return "unclear"
    try:
        error = json.loads(body)["error"]
        return "ok" if error.get("message") and error.get("status") == status else "unclear"
    except (ValueError, KeyError, TypeError):
        return "unclear"


def http_hostile(gateway: str, key: str, inputs: int, seed: int = 15, workers: int = 8) -> dict:
    """About ``inputs`` hostile requests spread over every route, body kind and key."""
    rng = random.Random(seed)
    host, port = gateway.split("//", 1)[1].split(":")
    port = int(port)
    every_route = routes(gateway)
    kinds = bodies(rng)
    keys = [("operator", {"Authorization": f"Bearer {key}"}), ("none", {}),
            ("bogus", {"Authorization": "Bearer dcg_fuzz_notakey", "X-Api-Key": "dcg311_fuzz"})]
    plan = []
    while len(plan) < inputs:
        for method, path in every_route:
            for label, headers, body in kinds:
                who, auth = rng.choice(keys) if rng.random() < 0.3 else keys[0]
                plan.append((method, path, label, {**headers, **auth}, body))
    rng.shuffle(plan)
    plan = plan[:inputs]
    tried, outcome, examples = Counter(), Counter(), []
    lock = threading.Lock()

    def one(item):
        method, path, label, headers, body = item
        if method == "GET" and body is not None and "Content-Length" not in headers:
            body = body[:1000]                    # a GET's body is not read; keep the run short
        try:
            status, content_type, answer = send(host, port, method, path, headers, body)
            verdict = judge(path, status, content_type, answer)
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            status, verdict, answer = None, "crash", repr(exc).encode()
        with lock:
            tried[label] += 1
            outcome[verdict] += 1
            if verdict != "ok" and len(examples) < 20:
                examples.append({"verdict": verdict, "method": method, "path": path, "body": label,
                                 "status": status, "answer": answer[:200].decode("utf-8", "replace")})

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, plan))
    return {"routes": len(every_route), "inputs_tried": sum(tried.values()), "by_body": dict(tried),
            "crashes": outcome["crash"], "unclear_errors": outcome["unclear"], "ok": outcome["ok"],
            "examples": examples}
