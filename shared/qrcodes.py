"""一码智管: what a component's QR code says, and the code as an image — pure (no I/O). The QR
encodes ``<gateway base>/inspector?component=<object code>``; the gateway serves it
(GET /api/components/<code>/qrcode.png) and participation prints the label sheets
(services/participation/qrcodes.py), both with these."""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, urlencode, urlparse

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def component_url(base_url: str, object_code: str) -> str:
    return f"{base_url.rstrip('/')}/inspector?{urlencode({'component': object_code})}"


def label_base_url(base_url: str | None) -> str:
    """The address printed labels point at: the configured public address (PUBLIC_BASE_URL). A label
    on a street is scanned by a citizen's phone, so an empty, loopback or unspecified address is
    refused with what to set."""
    base = str(base_url or "").strip().rstrip("/")
    url = urlparse(base)
    host = (url.hostname or "").lower()
    try:
        local = ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    if url.scheme not in ("http", "https") or not host or local:
        raise ValueError(f"二维码标签需要平台的公网地址，请设置 PUBLIC_BASE_URL（如 https://dcg.example.gov.cn）"
                         f" (labels need the public address: set PUBLIC_BASE_URL; got {base or 'nothing'!r})")
    return base


def label_texts(component: dict, district, base_url: str) -> list[str]:
    """What a component's label says, in full (nothing shortened; the sheet wraps or shrinks it):
    class, name, address, owner, object code and the address the QR opens."""
    try:
        class_name = district.minor_class(component["class_code"])["name"]
    except KeyError:
        class_name = component["class_code"]
    owner = (district.units.get(component.get("owner")) or {}).get("name", component.get("owner", ""))
    grid = next((g for g in district.grids if g["code"] == component.get("grid_code")), None)
    name = component.get("name") or class_name
    place = component.get("address") or _parenthesised(name)
    where = f"{grid['street_name']}{grid['community_name']}" if grid else ""
    return [name if name.startswith(class_name) else f"{class_name}：{name}",
            f"地址：{where}{place}" if (where or place) else "地址：见地图",
            f"权属单位：{owner}",
            f"部件编码：{component['object_code']}",
            component_url(base_url, component["object_code"])]


def _parenthesised(name: str) -> str:
    found = re.findall(r"（([^（）]*)）", name or "")
    return found[-1] if found else ""


def wrap(text: str, width: float, measure) -> list[str]:
    """``text`` in lines no wider than ``width`` (``measure(text)`` gives a width): broken between
    characters, as Chinese text is; nothing is dropped (the pieces join back to the text)."""
    lines, line = [], ""
    for char in text:
        if line and measure(line + char) > width:
            lines.append(line)
            line = ""
        line += char
    return lines + [line] if line or not lines else lines


def object_code_from_url(url: str) -> str | None:
    values = parse_qs(urlparse(url).query).get("component")
    return values[0] if values else None


def qr_image(data: str):
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image()
