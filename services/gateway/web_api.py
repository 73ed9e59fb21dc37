"""The command-centre page, the inspector page, their static files, the grid map, photos."""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from bson import Binary
from nameko.web.handlers import http
from pymongo import ReturnDocument
from werkzeug.wrappers import Response

from shared import storage
from shared.refdata import load_district

from . import media
from .access import Access, public, roles_with
from .auth import ROLES, WRITERS, Unauthorized, authenticate, key_from_request
from .doors import public_base_url, setting
from .http import (BadRequest, RateLimited, count_key_failure, endpoint, error_response,
                   json_response, key_failures_exhausted)

WEB = Path(__file__).resolve().parent / "web"
STATIC = WEB / "static"
MAX_PHOTO = 5 * 1024 * 1024
PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png", b"RIFF": "image/webp"}

# what each endpoint acts on, and who may call it (services/gateway/access.py)
GRIDS = public()                                   # the map; staff names only with a valid key
ME = Access(None, roles_with("any", ROLES))
MEDIA = Access(None, roles_with("any", WRITERS), write=True, label="照片")


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
        """The caller, from their API key (raises Unauthorized). Failed keys are counted per client
        address: once its bucket is empty (AUTH_FAIL_*), every key from there is refused with 429
        before it is even looked at."""
        key = key_from_request(request)
        address = request.remote_addr or "unknown"
        if key:
            wait = key_failures_exhausted(self.config, address, self.db.rate_limits)
            if wait is not None:
                raise RateLimited(wait)
        try:
            return authenticate(self.db.accounts, key)
        except Unauthorized:
            if key:
                count_key_failure(self.config, address, self.db.rate_limits)
            raise

    @http("GET", "/")
    def page_command_centre(self, request):
        return _file(WEB / "index.html", "text/html")

    @http("GET", "/inspector")
    def page_inspector(self, request):
        return _file(WEB / "inspector.html", "text/html")

    @http("GET", "/unit")
    def page_unit(self, request):
        return _file(WEB / "unit.html", "text/html")

    @http("GET", "/partner")
    def page_partner(self, request):
        return _file(WEB / "partner.html", "text/html")

    @http("GET", "/leader")
    def page_leader(self, request):
        return _file(WEB / "leader.html", "text/html")

    @http("GET", "/static/<path:path>")
    def static_file(self, request, path):
        target = (STATIC / path).resolve()
        if STATIC.resolve() not in target.parents:
            return error_response(404, "没有这个文件")
        return _file(target)

    @http("GET", "/api/grids")
    @endpoint(GRIDS)
    def get_grids(self, request, principal):
        """Public: the grid map. The people responsible for each grid (names of inspectors,
        liaisons, 双街长) only with a valid key."""
        district = load_district()
        grids = district.geojson()
        if key_from_request(request):
            self.principal(request)                   # a key that is not valid: 401
        else:
            for feature in grids.get("features", []):
                responsible = feature.get("properties", {}).get("responsible")
                if isinstance(responsible, dict):
                    feature["properties"]["responsible"] = {
                        key: value for key, value in responsible.items() if key in PUBLIC_RESPONSIBLE}
        return json_response({"district": {"code": district.code, "name": district.name,
                                           "center": district.center},
                              "grids": grids})

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
        """Units for pickers: id, name, type (street, town, park, department, operator, leadership),
        service level (区级 district, 镇街级 town); ``?view=tree``: the three levels with the
        communities (社区级), no people."""
        district = load_district()
        if request.args.get("view") == "tree":
            return json_response(district.unit_tree(people=False))
        wanted = request.args.get("type")
        units = [{"id": u["id"], "name": u["name"], "type": u["type"], "level": district.level_of(u["id"])}
                 for u in district.units.values() if not wanted or u["type"] == wanted]
        return json_response({"items": units, "total": len(units)})

    @http("GET", "/api/me")
    @endpoint(ME)
    def get_me(self, request, principal):
        return json_response(principal.as_dict())

    @http("POST", "/api/media")
    @endpoint(MEDIA)
    def post_media(self, request, principal):
        """A photo (problem or "after"): raw body or multipart field ``photo``. It is re-encoded
        (media.py), counted against the account's daily quota, and served from /media/<id>."""
        upload = request.files.get("photo")
        data = upload.read(MAX_PHOTO + 1) if upload else request.get_data()[:MAX_PHOTO + 1]
        if not data:
            raise BadRequest("没有收到照片", {"photo": ["必填 (required)"]})
        if len(data) > MAX_PHOTO:
            raise BadRequest("照片太大", {"photo": ["不能超过 5 MB"]})
        if photo_type(data) is None:
            raise BadRequest("不是支持的图片格式", {"photo": ["只接受 JPEG、PNG、WebP"]})
        try:
            clean, kind = media.reencode(data)
        except media.NotAnImage:
            raise BadRequest("图片无法解码 (the picture does not decode)",
                             {"photo": ["只接受完整的 JPEG、PNG、WebP 图片"]}) from None
        self._count_upload(principal, len(clean))
        photo_id = hashlib.sha256(clean).hexdigest()[:32]
        self.db.media.update_one({"_id": photo_id}, {"$setOnInsert": {
            "data": Binary(clean), "content_type": kind, "size": len(clean), "by": principal.key_id,
            "clean": True, "at": storage.now_utc()}}, upsert=True)
        path = f"/media/{photo_id}"
        return json_response({"id": photo_id, "path": path, "url": public_base_url(self.config) + path,
                              "content_type": kind}, 201)

    def _count_upload(self, principal, size: int):
        """The account's daily quota (MEDIA_DAILY_COUNT photos, MEDIA_DAILY_BYTES bytes): 429 when
        used up, with Retry-After until local midnight."""
        now = storage.now_utc()
        max_count = setting(self.config, "MEDIA_DAILY_COUNT", media.DAILY_COUNT)
        max_bytes = setting(self.config, "MEDIA_DAILY_BYTES", media.DAILY_BYTES)
        key = f"{principal.key_id}:{media.quota_day(now)}"
        used = self.db.media_quota.find_one_and_update(
            {"_id": key}, {"$inc": {"count": 1, "bytes": size}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        before = {"count": used.get("count", 1) - 1, "bytes": used.get("bytes", size) - size}
        reason = media.over_quota(before, size, max_count, max_bytes)
        if reason:
            self.db.media_quota.update_one({"_id": key}, {"$inc": {"count": -1, "bytes": -size}})
            raise QuotaUsed(reason, media.seconds_to_next_day(now))

    @http("GET", "/media/<string:photo_id>")
    def get_media(self, request, photo_id):
        """Public (an unguessable id, as a link shared with the reporter): the re-encoded photo."""
        doc = self.db.media.find_one({"_id": photo_id}) if media.MEDIA_ID.match(photo_id) else None
        if doc is None:
            return error_response(404, "没有这张照片")
        data, kind = bytes(doc["data"]), doc["content_type"]
        if not doc.get("clean"):                  # stored before re-encoding: never the original bytes
            try:
                data, kind = media.reencode(data)
            except media.NotAnImage:
                return error_response(404, "没有这张照片")
        return Response(data, status=200, content_type=kind,
                        headers={"Cache-Control": "max-age=86400", "Content-Disposition": "inline"})


PUBLIC_RESPONSIBLE = ("street",)                  # unit ids, not people's names


class QuotaUsed(RateLimited):
    def __init__(self, message: str, retry_after: float):
        super().__init__(retry_after)
        self.args = (message,)
