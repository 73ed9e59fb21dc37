"""Photos: every upload is decoded and re-encoded with Pillow, so only pixels are kept — no
trailing bytes, no text chunks or comments (HTML/SVG polyglots), no EXIF (GPS, camera). The
original bytes are never stored or served. Pure: no I/O.

Per-account quota (``MEDIA_DAILY_COUNT`` photos and ``MEDIA_DAILY_BYTES`` bytes a day, local
date): :func:`quota_day` and :func:`over_quota` hold the rule; the gateway keeps the counters.
"""
from __future__ import annotations

import io
import re
import warnings
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image, ImageOps

LOCAL = ZoneInfo("Asia/Shanghai")
MAX_PIXELS = 40_000_000                 # 40 megapixels: more is refused (decompression bombs)
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MEDIA_ID = re.compile(r"^[0-9a-f]{32}$")
DAILY_COUNT = 200
DAILY_BYTES = 200 * 1024 * 1024


class NotAnImage(ValueError):
    """The upload is not a JPEG, PNG or WebP picture that decodes."""


def reencode(data: bytes) -> tuple[bytes, str]:
    """(clean bytes, content type) of a JPEG / PNG / WebP upload, re-encoded in its own format.
    Raises NotAnImage for anything else, a picture that does not decode, or one too large."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                if kind not in FORMATS:
                    raise NotAnImage(f"format {kind}")
                if image.width * image.height > MAX_PIXELS:
                    raise NotAnImage("too many pixels")
                image.load()
                clean = ImageOps.exif_transpose(image)        # keep the orientation, drop EXIF
                if clean is image:
                    clean = image.copy()
    except NotAnImage:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, MemoryError) as exc:
        raise NotAnImage(str(exc)[:200]) from None
    clean.info = {}                                            # comments, text chunks, XMP, ICC
    out = io.BytesIO()
    if kind == "JPEG":
        if clean.mode not in ("RGB", "L"):
            clean = clean.convert("RGB")
        clean.save(out, "JPEG", quality=88)
    elif kind == "PNG":
        if clean.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            clean = clean.convert("RGBA")
        clean.save(out, "PNG", optimize=False)
    else:
        if clean.mode not in ("RGB", "RGBA"):
            clean = clean.convert("RGBA")
        clean.save(out, "WEBP", quality=88)
    return out.getvalue(), FORMATS[kind]


def quota_day(now: datetime) -> str:
    """The local date a quota counts on (Asia/Shanghai)."""
    return now.astimezone(LOCAL).date().isoformat()


def seconds_to_next_day(now: datetime) -> int:
    local = now.astimezone(LOCAL)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - local).total_seconds()))


def over_quota(used: dict | None, size: int, max_count: int, max_bytes: int) -> str | None:
    """Why one more photo of ``size`` bytes is refused today (``used``: {count, bytes}), or None."""
    used = used or {}
    if used.get("count", 0) + 1 > max_count:
        return f"今日上传照片已达 {max_count} 张上限 (daily upload limit of {max_count} photos reached)"
    if used.get("bytes", 0) + size > max_bytes:
        return f"今日上传照片已达 {max_bytes // (1024 * 1024)} MB 上限 (daily upload limit of bytes reached)"
    return None
