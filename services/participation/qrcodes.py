"""一码智管 (Jincheng): a QR code for every component object (部件), as PNG files and a
printable A4 PDF sheet of labels. The QR encodes ``<gateway base>/inspector?component=<code>``;
the inspector page reads ``?component=`` and asks GET /api/components/<code> for the class, the
place and the owner, so scanning a label opens a report already filled in.

    python -m services.participation.qrcodes --out var/qrcodes [--base-url http://127.0.0.1:8000]
    → var/qrcodes/<object_code>.png (one per component) and var/qrcodes/components-qrcodes.pdf
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.qrcodes import component_url, object_code_from_url, qr_image  # noqa: F401

FONT_PATHS = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
              "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEFAULT_BASE = "http://127.0.0.1:8000"


def _font():
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    for path in FONT_PATHS:
        if os.path.exists(path):
            pdfmetrics.registerFont(TTFont("CJK", path, subfontIndex=0))
            return "CJK"
    raise RuntimeError("没有中文字体：请安装 fonts-wqy-zenhei (apt-get install -y fonts-wqy-zenhei)")


def generate(out_dir, base_url: str = DEFAULT_BASE, district=None) -> dict:
    """Write one PNG per component and the PDF sheet; returns {pngs, pdf, count}."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    from shared.refdata import load_district
    district = district or load_district()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    components = [district.components[code] for code in sorted(district.components)]
    pngs = []
    for component in components:
        path = out / f"{component['object_code']}.png"
        qr_image(component_url(base_url, component["object_code"])).save(path, format="PNG")
        pngs.append(path)

    font = _font()
    pdf_path = out / "components-qrcodes.pdf"
    sheet = canvas.Canvas(str(pdf_path), pagesize=A4)
    sheet.setTitle("部件二维码（一码智管）")
    width, height = A4
    cols, rows = 3, 4
    cell_w, cell_h = (width - 20 * mm) / cols, (height - 30 * mm) / rows
    for index, (component, png) in enumerate(zip(components, pngs)):
        slot = index % (cols * rows)
        if slot == 0:
            if index:
                sheet.showPage()
            sheet.setFont(font, 12)
            sheet.drawString(10 * mm, height - 14 * mm,
                             f"{getattr(district, 'name', '')} 城市部件二维码（一码智管）— 扫码上报问题")
        col, row = slot % cols, slot // cols
        x = 10 * mm + col * cell_w
        y = height - 20 * mm - (row + 1) * cell_h
        sheet.rect(x + 2, y + 2, cell_w - 4, cell_h - 4)
        size = min(cell_w, cell_h) - 26 * mm
        sheet.drawImage(ImageReader(str(png)), x + (cell_w - size) / 2, y + 18 * mm, size, size)
        owner = (district.units.get(component.get("owner")) or {}).get("name", component.get("owner", ""))
        try:
            class_name = district.minor_class(component["class_code"])["name"]
        except KeyError:
            class_name = component["class_code"]
        sheet.setFont(font, 8)
        lines = [f"部件编码 {component['object_code']}", f"{class_name} · {component.get('name', '')}"[:22],
                 f"权属单位：{owner}"[:30]]
        for n, text in enumerate(lines):
            sheet.drawCentredString(x + cell_w / 2, y + 13 * mm - n * 4 * mm, text)
    sheet.save()
    return {"pngs": [str(path) for path in pngs], "pdf": str(pdf_path), "count": len(pngs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="部件二维码（一码智管）: PNG per component + A4 PDF sheet")
    parser.add_argument("--out", default="var/qrcodes")
    parser.add_argument("--base-url", default=os.environ.get("GATEWAY_BASE_URL", DEFAULT_BASE),
                        help="the gateway address the QR codes open (default %(default)s)")
    args = parser.parse_args(argv)
    result = generate(args.out, args.base_url)
    print(f"已生成 {result['count']} 个部件二维码 → {args.out}/<部件编码>.png，打印页 {result['pdf']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
