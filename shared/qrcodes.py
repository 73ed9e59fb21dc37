"""一码智管: what a component's QR code says, and the code as an image — pure (no I/O). The QR
encodes ``<gateway base>/inspector?component=<object code>``; the gateway serves it
(GET /api/components/<code>/qrcode.png) and participation prints the label sheets
(services/participation/qrcodes.py), both with these."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def component_url(base_url: str, object_code: str) -> str:
    return f"{base_url.rstrip('/')}/inspector?{urlencode({'component': object_code})}"


def object_code_from_url(url: str) -> str | None:
    values = parse_qs(urlparse(url).query).get("component")
    return values[0] if values else None


def qr_image(data: str):
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image()
