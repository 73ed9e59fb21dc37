"""The command-centre page, the inspector page, their static files, the grid map, photos."""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from bson import Binary
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from shared import storage
from shared.refdata import load_district

from .auth import Forbidden, Unauthorized, authenticate, key_from_request
from .http import error_response, json_response

WEB = Path(__file__).resolve().parent / "web"
STATIC = WEB / "static"
MAX_PHOTO = 5 * 1024 * 1024
PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png", b"RIFF": "image/webp"}


def _file(path: Path, content_type: str | None = None):
    if not path.is_file():
        return error_response(404, "没有这个页面")
    kind = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript",):
        kind += "; charset=utf-8"
    return Response(path.read_bytes(), status=200, content_type=kind,
                    headers={"Cache-Control": "no-cache"})


def photo_type(data: bytes) -> str | None:
    for magic, kind in PHOTO_TYPES.items():
        if data.startswith(magic) and (kind != "image/webp" or data[8:12] == b"WEBP"):
            return kind
    return None


class WebApi:
    def principal(self, request):
        """The caller, from their API key (raises Unauthorized)."""
        return authenticate(self.db.accounts, key_from_request(request))

    @http("GET", "/")
    def page_command_centre(self, request):
        return _file(WEB / "index.html", "text/html")

    @http("GET", "/inspector")
    def page_inspector(self, request):
        return _file(WEB / "inspector.html", "text/html")

    @http("GET", "/static/<path:path>")
    def static_file(self, request, path):
        target = (STATIC / path).resolve()
        if STATIC.resolve() not in target.parents:
            return error_response(404, "没有这个文件")
        return _file(target)

    @http("GET", "/api/grids")
    def get_grids(self, request):
        district = load_district()
        return json_response({"district": {"code": district.code, "name": district.name,
                                           "center": district.center},
                              "grids": district.geojson()})

    @http("GET", "/api/classes")
    def get_classes(self, request):
        """The 部件/事件 taxonomy for pickers: code, name, kind, major class, filing standard."""
        district = load_district()
        return json_response({"items": [
            {"code": c["code"], "name": c["name"], "kind": c["kind"], "kind_name": c.get("kind_name"),
             "major_name": c.get("major_name"), "filing_standard": c.get("filing_standard"),
             "joint": c.get("joint") or []} for c in district.classes()]})

    @http("GET", "/api/components/<string:object_code>")
    def get_component(self, request, object_code):
        """One component object (部件) by its object code: what a QR code on it opens."""
        district = load_district()
        component = district.components.get(object_code)
        if component is None:
            return error_response(404, f"没有部件 {object_code}")
        owner = district.units.get(component.get("owner"), {})
        minor = district.taxonomy.get(component["class_code"], {})
        return json_response({**{k: v for k, v in component.items() if k != "geometry"},
                              "owner_name": owner.get("name"), "class_name": minor.get("name")})

    @http("GET", "/api/units")
    def get_units(self, request):
        """Units for pickers: id, name, type (street, town, park, department, operator, leadership)."""
        wanted = request.args.get("type")
        units = [{"id": u["id"], "name": u["name"], "type": u["type"]} for u in load_district().units.values()
                 if not wanted or u["type"] == wanted]
        return json_response({"items": units, "total": len(units)})

    @http("GET", "/api/me")
    def get_me(self, request):
        try:
            return json_response(self.principal(request).as_dict())
        except Unauthorized as exc:
            return error_response(401, str(exc))

    @http("POST", "/api/media")
    def post_media(self, request):
        """A photo (problem or "after"): raw body or multipart field ``photo``. Returns its URL."""
        try:
            principal = self.principal(request)
        except Unauthorized as exc:
            return error_response(401, str(exc))
        if principal.role == "leader":
            return error_response(403, str(Forbidden("领导账号为只读")))
        upload = request.files.get("photo")
        data = upload.read(MAX_PHOTO + 1) if upload else request.get_data()[:MAX_PHOTO + 1]
        if not data:
            return error_response(400, "没有收到照片", {"photo": ["必填 (required)"]})
        if len(data) > MAX_PHOTO:
            return error_response(400, "照片太大", {"photo": ["不能超过 5 MB"]})
        kind = photo_type(data)
        if kind is None:
            return error_response(400, "不是支持的图片格式", {"photo": ["只接受 JPEG、PNG、WebP"]})
        photo_id = hashlib.sha256(data).hexdigest()[:32]
        self.db.media.update_one({"_id": photo_id}, {"$setOnInsert": {
            "data": Binary(data), "content_type": kind, "size": len(data), "by": principal.key_id,
            "at": storage.now_utc()}}, upsert=True)
        url = f"{request.host_url.rstrip('/')}/media/{photo_id}"
        return json_response({"id": photo_id, "url": url, "content_type": kind}, 201)

    @http("GET", "/media/<string:photo_id>")
    def get_media(self, request, photo_id):
        doc = self.db.media.find_one({"_id": photo_id})
        if doc is None:
            return error_response(404, "没有这张照片")
        return Response(bytes(doc["data"]), status=200, content_type=doc["content_type"],
                        headers={"Cache-Control": "max-age=86400"})
