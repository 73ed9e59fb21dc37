"""Hostile input at every HTTP door (issue 15): body limits, bounded JSON, rate limits that cannot
be farmed, no keys in URLs, security headers, re-encoded uploads with a quota, a configured public
base URL, and what is public. Real gateway (and intake), real broker and store."""
import io
import json
import socket

import pytest
import requests
from PIL import Image

from services.gateway import auth
from tests.integration.intake_support import INSIDE, api_key, start

BIG = 2 * 1024 * 1024


@pytest.fixture
def site(container_factory, config, db):
    running = start(container_factory, config, gateway=True,
                    extra={"AUTH_FAIL_BURST": 5, "AUTH_FAIL_RATE_PER_MINUTE": 1,
                           "MEDIA_DAILY_COUNT": 3, "PUBLIC_BASE_URL": "https://dcg.example.gov.cn"})
    accounts = db("gateway").accounts
    running.keys = {role: auth.new_key(accounts, f"测试{role}", role) for role in ("operator", "inspector")}
    running.key = api_key(db)
    return running


def bearer(site, role="operator"):
    return {"Authorization": f"Bearer {site.keys[role]}"}


def picture(kind="PNG", size=(8, 6), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, kind, **save)
    return out.getvalue()


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def chunked_post(url_host, port, path, total, headers=""):
    """A POST with Transfer-Encoding: chunked and no Content-Length; returns (status, body)."""
    sock = socket.create_connection((url_host, port), timeout=20)
    try:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
        chunk = b"[" * 65536
        sent = 0
        try:
            while sent < total:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass                               # the server answered and closed: fine
        data = b""
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# ------------------------------------------------------------------ limits at the door
def test_oversized_bodies_are_refused_before_they_are_read(site):
    body = b'{"description": "' + b"x" * BIG + b'"}'
    native = requests.post(f"{site.url}/api/reports", data=body, headers=bearer(site), timeout=20)
    assert native.status_code == 413
    assert native.json()["error"]["code"] == "too_large" and "上限" in native.json()["error"]["message"]
    media = requests.post(f"{site.url}/api/media", data=b"\x89PNG\r\n\x1a\n" + b"0" * (7 * 1024 * 1024),
                          headers=bearer(site, "inspector"), timeout=30)
    assert media.status_code == 413 and media.json()["error"]["status"] == 413
    o311 = requests.post(f"{site.url}/open311/v2/requests.json", data={"api_key": site.key, "description": "x" * 70000},
                         timeout=20)
    assert o311.status_code == 413 and o311.json()[0]["code"] == 413
    xml = requests.post(f"{site.url}/open311/v2/requests.xml", data={"description": "x" * 70000}, timeout=20)
    assert xml.status_code == 413 and b"<errors>" in xml.content

    host, port = site.url.rsplit("/", 1)[1].split(":")
    status, answer = chunked_post(host, int(port), "/api/reports", 3 * 1024 * 1024,
                                  f"Authorization: Bearer {site.keys['operator']}\r\n")
    assert status == 413 and json.loads(answer)["error"]["code"] == "too_large"


def test_deep_and_long_json_is_a_400_in_the_shape_of_its_api(site):
    for levels in (40, 5000):
        native = requests.post(f"{site.url}/api/reports", data=deep(levels), headers=bearer(site), timeout=20)
        assert native.status_code == 400, native.text
        assert "嵌套" in native.json()["error"]["message"] and "_body" in native.json()["error"]["fields"]
        o311 = requests.post(f"{site.url}/open311/v2/requests.json", data=deep(levels),
                             headers={"Content-Type": "application/json"}, timeout=20)
        assert o311.status_code == 400 and o311.headers["Content-Type"].startswith("application/json")
        assert o311.json()[0]["code"] == 400 and "RecursionError" not in o311.text
    long = requests.post(f"{site.url}/api/reports", json={"description": "长" * 30000},
                         headers=bearer(site), timeout=20)
    assert long.status_code == 400 and "太长" in long.json()["error"]["message"]
    not_utf8 = requests.post(f"{site.url}/api/reports", data=b'{"a": "\xff\xfe"}', headers=bearer(site), timeout=20)
    assert not_utf8.status_code == 400 and not_utf8.json()["error"]["code"] == "invalid"


# ------------------------------------------------------------------ rate limits and keys
def test_bogus_open311_keys_are_throttled_per_address_and_farm_no_buckets(site, db):
    form = {"service_code": "E0101", "lat": INSIDE["lat"], "long": INSIDE["lon"],
            "attribute[area_m2]": "2", "description": "伪造的 key"}
    codes = [requests.post(f"{site.url}/open311/v2/requests.json", data=dict(form, api_key=f"dcg311_bogus{i}"),
                           timeout=15) for i in range(8)]
    assert [c.status_code for c in codes[:5]] == [403] * 5
    refused = codes[-1]
    assert refused.status_code == 429 and refused.json()[0]["code"] == 429
    assert int(refused.headers["Retry-After"]) >= 1
    # the right key from a throttled address is not even looked at
    assert requests.post(f"{site.url}/open311/v2/requests.json", data=dict(form, api_key=site.key),
                         timeout=15).status_code == 429
    buckets = [doc["_id"] for doc in db("gateway").rate_limits.find()]
    assert not [b for b in buckets if "bogus" in b or b.startswith("open311:")], buckets


def test_open311_bucket_is_the_verified_key_with_retry_after(container_factory, config, db):
    running = start(container_factory, config, gateway=True,
                    extra={"OPEN311_RATE_PER_MINUTE": 1, "OPEN311_BURST": 1})
    key = api_key(db)
    form = {"api_key": key, "service_code": "E0101", "lat": INSIDE["lat"], "long": INSIDE["lon"],
            "attribute[area_m2]": "2", "description": "限流"}
    first = requests.post(f"{running.url}/open311/v2/requests.json", data=form, timeout=15)
    assert first.status_code == 201, first.text
    second = requests.post(f"{running.url}/open311/v2/requests.xml", data=form, timeout=15)
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1 and b"<errors>" in second.content


def test_failed_native_keys_are_throttled_per_address(site):
    for i in range(5):
        answer = requests.get(f"{site.url}/api/me", headers={"Authorization": f"Bearer dcg_bad{i}_guess"}, timeout=10)
        assert answer.status_code == 401
    throttled = requests.get(f"{site.url}/api/me", headers={"Authorization": "Bearer dcg_bad9_guess"}, timeout=10)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["error"]["code"] == "rate_limited"
    # a request without a key is not a failed attempt, and public reads still answer
    assert requests.get(f"{site.url}/api/classes", timeout=10).status_code == 200


def test_api_key_in_the_query_string_is_refused_on_post(site):
    answer = requests.post(f"{site.url}/open311/v2/requests.json?api_key={site.key}",
                           data={"service_code": "E0101", "lat": INSIDE["lat"], "long": INSIDE["lon"]}, timeout=15)
    assert answer.status_code == 400 and "X-Api-Key" in answer.json()[0]["description"]


# ------------------------------------------------------------------ headers and content
def test_every_answer_carries_the_security_headers(site):
    png = requests.post(f"{site.url}/api/media", data=picture(), headers=bearer(site, "inspector"), timeout=15)
    assert png.status_code == 201, png.text
    for path in ("/", "/inspector", "/static/app.js", "/api/grids", "/api/openapi.json", "/api/nothing",
                 "/open311/v2/discovery.json", "/open311/v2/nothing.json", png.json()["path"], "/nowhere"):
        answer = requests.get(f"{site.url}{path}", timeout=15)
        csp = answer.headers.get("Content-Security-Policy", "")
        assert "img-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", path
        assert answer.headers.get("X-Frame-Options") == "DENY", path
        assert answer.headers.get("Referrer-Policy") == "no-referrer", path


@pytest.mark.parametrize("kind,polyglot", [
    ("PNG", lambda: picture("PNG") + b"<html><script>alert(1)</script></html>"),
    ("PNG", lambda: _png_with_text(b"<svg onload=alert(1)>")),
    ("JPEG", lambda: picture("JPEG", comment=b"<html><script>alert(1)</script>")),
    ("WEBP", lambda: picture("WEBP") + b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
])
def test_uploads_are_re_encoded_and_polyglots_lose_their_payload(site, kind, polyglot):
    data = polyglot()
    answer = requests.post(f"{site.url}/api/media", files={"photo": ("p", data, "image/png")},
                           headers=bearer(site, "inspector"), timeout=15)
    assert answer.status_code == 201, answer.text
    assert answer.json()["url"] == f"https://dcg.example.gov.cn{answer.json()['path']}"
    served = requests.get(f"{site.url}{answer.json()['path']}", timeout=15)
    assert served.status_code == 200 and served.content != data
    assert b"<html" not in served.content and b"<svg" not in served.content
    assert Image.open(io.BytesIO(served.content)).format == kind


def _png_with_text(text: bytes) -> bytes:
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text.decode())
    out = io.BytesIO()
    Image.new("RGB", (5, 5)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_truncated_picture_and_daily_quota(site):
    headers = bearer(site, "inspector")
    broken = requests.post(f"{site.url}/api/media", data=picture()[:40], headers=headers, timeout=15)
    assert broken.status_code == 400 and "photo" in broken.json()["error"]["fields"]
    for i in range(3):
        ok = requests.post(f"{site.url}/api/media", data=picture(size=(4 + i, 4)), headers=headers, timeout=15)
        assert ok.status_code == 201, ok.text
    over = requests.post(f"{site.url}/api/media", data=picture(size=(20, 4)), headers=headers, timeout=15)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1 and "上限" in over.json()["error"]["message"]
    other = requests.post(f"{site.url}/api/media", data=picture(), headers=bearer(site, "operator"), timeout=15)
    assert other.status_code == 201                       # the quota is per account


def test_links_use_the_public_base_url_not_the_host_header(site):
    evil = {"Host": "evil.example.com"}
    discovery = requests.get(f"{site.url}/open311/v2/discovery.json", headers=evil, timeout=15).json()
    urls = [endpoint["url"] for endpoint in discovery["endpoints"]]
    assert urls and all(url.startswith("https://dcg.example.gov.cn/") for url in urls), urls
    upload = requests.post(f"{site.url}/api/media", data=picture(), headers={**bearer(site, "inspector"), **evil},
                           timeout=15)
    assert "evil" not in upload.json()["url"] and upload.json()["url"].startswith("https://dcg.example.gov.cn/media/")
    zxingcpp = pytest.importorskip("zxingcpp")
    png = requests.get(f"{site.url}/api/components/5001900101000001/qrcode.png", headers=evil, timeout=15)
    texts = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))]
    assert texts == ["https://dcg.example.gov.cn/inspector?component=5001900101000001"]


# ------------------------------------------------------------------ what is public
def test_public_grid_map_has_no_staff_names(site):
    anonymous = requests.get(f"{site.url}/api/grids", timeout=15).json()["grids"]["features"]
    assert all(set(f["properties"]["responsible"]) <= {"street"} for f in anonymous)
    assert "严勇" not in json.dumps(anonymous, ensure_ascii=False)
    staff = requests.get(f"{site.url}/api/grids", headers=bearer(site), timeout=15).json()["grids"]["features"]
    assert staff[0]["properties"]["responsible"]["grid_inspector"]


# ------------------------------------------------------------------ nothing secret in logs
def test_the_gateway_process_logs_no_key(test_env, config, db, tmp_path):
    """Run as `make run` runs it (its own process, JSON logs): the access lines of a POST with a
    key in the query string, a bearer key and an X-Api-Key show `***`, never the key."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import free_port
    from tests.helpers import wait_until
    root = Path(__file__).resolve().parents[2]
    port = free_port()
    log_path = tmp_path / "gateway.log"
    operator = auth.new_key(db("gateway").accounts, "值班员", "operator")
    app_key = api_key(db)
    proc = subprocess.Popen([sys.executable, "-m", "services.gateway"], cwd=root,
                            env={**os.environ, **test_env, "PYTHONPATH": str(root), "GATEWAY_PORT": str(port),
                                 "GATEWAY_HOST": "127.0.0.1", "LOG_LEVEL": "INFO"},
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return requests.get(f"{base}/api/classes", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False
        wait_until(up, timeout=30, what="the gateway")
        refused = requests.post(f"{base}/open311/v2/requests.json?api_key={app_key}&service_code=E0101",
                                data={"lat": INSIDE["lat"]}, timeout=10)
        assert refused.status_code == 400
        requests.get(f"{base}/api/me?token={operator}", headers={"Authorization": f"Bearer {operator}"}, timeout=10)
        requests.get(f"{base}/api/me", headers={"X-API-Key": operator}, timeout=10)
        wait_until(lambda: "service_code=E0101" in log_path.read_text(encoding="utf-8", errors="replace"),
                   timeout=10, what="the access line")
    finally:
        proc.terminate()
        proc.wait(20)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    assert "api_key=***" in text and "token=***" in text
    for secret in (app_key, operator, operator.split("_", 2)[2]):
        assert secret not in text


def test_exactly_the_documented_paths_are_public(site):
    """docs/api.md §8: these answer without a key; the OpenAPI document marks the same ones public."""
    upload = requests.post(f"{site.url}/api/media", data=picture(), headers=bearer(site, "inspector"), timeout=15)
    public = ["/health", "/api/openapi.json", "/", "/inspector", "/static/app.js", "/api/grids", "/api/classes",
              "/api/units", "/api/components/5001900101000001", "/api/components/5001900101000001/qrcode.png",
              upload.json()["path"], "/open311/v2/services.json", "/open311/v2/discovery.json"]
    for path in public:
        assert requests.get(f"{site.url}{path}", timeout=15).status_code in (200, 503), path  # 503: a service away
    document = requests.get(f"{site.url}/api/openapi.json", timeout=15).json()
    marked = sorted(path for path, operations in document["paths"].items()
                    if operations.get("get", {}).get("security") == [])
    documented = ["/api/classes", "/api/components/{object_code}", "/api/components/{object_code}/qrcode.png",
                  "/api/grids", "/api/openapi.json", "/api/points/catalogue", "/api/units", "/health"]
    assert [path for path in marked if path not in ("/", "/inspector")] == documented, marked
    for path in ("/api/me", "/api/cases", "/api/scoring/rankings", "/api/operations"):
        assert requests.get(f"{site.url}{path}", timeout=15).status_code == 401, path
