"""The gateway's web endpoints: grid map data, who am I, photo upload and serving, static
files without path traversal. Real gateway container, real store."""
import io

import pytest
import requests
from PIL import Image

from services.gateway import auth
from services.gateway.service import GatewayService
from tests.conftest import free_port


def picture(kind="PNG", size=(4, 3), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, kind, **save)
    return out.getvalue()


PNG = picture()


@pytest.fixture
def gateway(container_factory, config):
    port = free_port()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def keys(db):
    accounts = db("gateway").accounts
    return {"inspector": auth.new_key(accounts, "网格员小李", "inspector"),
            "leader": auth.new_key(accounts, "区领导", "leader")}


def test_grid_map_data(gateway):
    body = requests.get(f"{gateway}/api/grids", timeout=10).json()
    assert body["district"]["code"] == "500190"
    features = body["grids"]["features"]
    assert len(features) >= 30 and features[0]["geometry"]["type"] == "Polygon"


def test_me_needs_a_valid_key(gateway, keys):
    assert requests.get(f"{gateway}/api/me", timeout=10).status_code == 401
    bad = requests.get(f"{gateway}/api/me", headers={"Authorization": "Bearer dcg_x_y"}, timeout=10)
    assert bad.status_code == 401 and "无效" in bad.json()["error"]["message"]
    me = requests.get(f"{gateway}/api/me", headers={"Authorization": f"Bearer {keys['inspector']}"}, timeout=10)
    assert me.json()["role"] == "inspector" and me.json()["role_name"] == "信息采集员"


def test_photo_upload_and_serving(gateway, keys):
    headers = {"Authorization": f"Bearer {keys['inspector']}"}
    answer = requests.post(f"{gateway}/api/media", files={"photo": ("after.png", PNG, "image/png")},
                           headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    photo = requests.get(answer.json()["url"], timeout=10)
    assert photo.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(photo.content)).size == (4, 3)      # the picture, re-encoded

    not_image = requests.post(f"{gateway}/api/media", data=b"<script>alert(1)</script>", headers=headers, timeout=10)
    assert not_image.status_code == 400 and "photo" in not_image.json()["error"]["fields"]
    assert requests.post(f"{gateway}/api/media", data=PNG, timeout=10).status_code == 401
    leader = requests.post(f"{gateway}/api/media", data=PNG,
                           headers={"Authorization": f"Bearer {keys['leader']}"}, timeout=10)
    assert leader.status_code == 403


def test_static_files_cannot_escape_their_folder(gateway):
    assert requests.get(f"{gateway}/static/vendor/echarts.min.js", timeout=10).status_code == 200
    assert requests.get(f"{gateway}/static/../../auth.py", timeout=10).status_code == 404
    assert requests.get(f"{gateway}/static/%2e%2e/%2e%2e/auth.py", timeout=10).status_code == 404
