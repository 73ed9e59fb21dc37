"""Photos (issue 15): uploads are re-encoded (no polyglot payload, no metadata), the daily quota
rule, and photo fields that accept only the platform's own photos."""
import io
from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError
from PIL import Image

from services.dispatch.schemas import ACTION_SCHEMAS
from services.gateway import media

PHOTO = "/media/0123456789abcdef0123456789abcdef"


def picture(kind, **save):
    out = io.BytesIO()
    Image.new("RGB", (7, 5), (1, 2, 3)).save(out, kind, **save)
    return out.getvalue()


def test_re_encoding_drops_trailing_html_comments_and_exif():
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker<script>"                          # Make
    exif[0x8825] = {2: (29.0, 50.0, 1.0)}                          # GPS
    for kind, data in [("PNG", picture("PNG") + b"<html><script>alert(1)</script>"),
                       ("JPEG", picture("JPEG", comment=b"<svg onload=alert(1)>", exif=exif.tobytes())),
                       ("WEBP", picture("WEBP", exif=exif.tobytes()) + b"<html>")]:
        clean, content_type = media.reencode(data)
        assert content_type == f"image/{kind.lower()}"
        assert b"<script" not in clean and b"<svg" not in clean and b"<html" not in clean
        assert b"CameraMaker" not in clean and not Image.open(io.BytesIO(clean)).getexif()
        assert Image.open(io.BytesIO(clean)).size == (7, 5)


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, picture("GIF"), b"<svg/>",
                                  picture("BMP")])
def test_anything_but_a_whole_jpeg_png_or_webp_is_refused(data):
    with pytest.raises(media.NotAnImage):
        media.reencode(data)


def test_daily_quota_rule_counts_photos_and_bytes_on_the_local_date():
    assert media.over_quota(None, 10, 2, 100) is None
    assert media.over_quota({"count": 2, "bytes": 0}, 10, 2, 100)          # the third photo
    assert media.over_quota({"count": 0, "bytes": 95}, 10, 2, 100)         # the bytes
    late = datetime(2026, 12, 1, 16, 30, tzinfo=timezone.utc)              # 00:30 on 2 Dec in Shanghai
    assert media.quota_day(late) == "2026-12-02"
    assert media.seconds_to_next_day(datetime(2026, 12, 1, 15, 59, tzinfo=timezone.utc)) == 60


@pytest.mark.parametrize("action,field", [("feedback", "after_photo"), ("report_stage", "photo")])
def test_photo_fields_take_platform_photos_only(action, field):
    base = {"expected_version": 1, "actor": "a", "actor_unit": "street.tianshengjie", "stage": "责令停工"}
    schema = ACTION_SCHEMAS[action]()
    assert schema.load({**base, field: PHOTO})[field] == PHOTO
    for outside in ("https://tracker.example.com/pixel.png", "https://media.example/after.jpg",
                    f"https://tracker.example.com{PHOTO}", f"http://127.0.0.1:8000{PHOTO}",
                    f"javascript:alert(1)//{PHOTO}", f"//evil.example{PHOTO}", f"{PHOTO}?x=1", "not a url"):
        with pytest.raises(ValidationError) as refused:
            schema.load({**base, field: outside})
        assert field in refused.value.messages and "/api/media" in str(refused.value.messages[field])
