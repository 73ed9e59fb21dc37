"""一码智管 (Jincheng): a QR code for every component object (部件), as PNG files and a
printable A4 PDF sheet of labels. The QR encodes ``<gateway base>/inspector?component=<code>``;
the inspector page reads ``?component=`` and asks GET /api/components/<code> for the class, the
place and the owner, so scanning a label opens a report already filled in.

    PUBLIC_BASE_URL=https://dcg.example.gov.cn python -m services.participation.qrcodes --out var/qrcodes
    → var/qrcodes/<object_code>.png (one per component) and var/qrcodes/components-qrcodes.pdf

Each label carries the full class and name, the address, the owner, the object code and the URL
(wrapped, and set smaller until all of it fits: nothing is cut). The URL is the configured public
address (PUBLIC_BASE_URL, or --base-url); an empty or loopback address (127.0.0.1) is refused.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.qrcodes import (component_url, label_base_url, label_texts, object_code_from_url,  # noqa: F401
                            qr_image, wrap)

FONT_PATHS = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
              "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FONT_SIZES = (8, 7.5, 7, 6.5, 6, 5.5, 5)      # the label text shrinks until all of it fits
LEADING = 1.25                               # line height / font size
MM = 72 / 25.4                               # points per millimetre


def _font():
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    for path in FONT_PATHS:
        if os.path.exists(path):
            pdfmetrics.registerFont(TTFont("CJK", path, subfontIndex=0))
            return "CJK"
    raise RuntimeError("没有中文字体：请安装 fonts-wqy-zenhei (apt-get install -y fonts-wqy-zenhei)")


def fit_label(texts: list[str], font: str, width: float, height: float) -> tuple[float, list[list[str]]]:
    """``(font size, lines per text)``: the largest of FONT_SIZES at which every text, wrapped to
    ``width``, fits in ``height`` (points). Nothing is cut; a label that cannot fit is an error."""
    from reportlab.pdfbase.pdfmetrics import stringWidth
    for size in FONT_SIZES:
        wrapped = [wrap(text, width, lambda t, size=size: stringWidth(t, font, size)) for text in texts]
        if sum(len(lines) for lines in wrapped) * size * LEADING <= height:
            return size, wrapped
    raise ValueError(f"标签文字放不下 (label text does not fit even at {FONT_SIZES[-1]} pt): {texts[0]}")


def label_cells(width: float, height: float, cols: int = 3, rows: int = 4):
    """The cells of an A4 sheet, top-left first: ``(x, y, w, h)`` in points."""
    cell_w, cell_h = (width - 20 * MM) / cols, (height - 30 * MM) / rows
    return [(10 * MM + col * cell_w, height - 20 * MM - (row + 1) * cell_h, cell_w, cell_h)
            for row in range(rows) for col in range(cols)]


def label_layout(cell, qr_size: float = 30 * MM):
    """Where a label's parts go in its cell: the QR box ``(x, y, size)`` and the text box
    ``(x, y_top, width, height)`` below it, 3 mm inside the cell's border."""
    x, y, w, h = cell
    pad = 3 * MM
    qr = (x + (w - qr_size) / 2, y + h - pad - qr_size, qr_size)
    text_top = qr[1] - 1 * MM
    return qr, (x + pad, text_top, w - 2 * pad, text_top - (y + pad))


def generate(out_dir, base_url: str | None = None, district=None) -> dict:
    """Write one PNG per component and the PDF sheet; returns {pngs, pdf, count, base_url}.
    ``base_url``: the public address the labels open (default PUBLIC_BASE_URL; never loopback)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    from shared.refdata import load_district
    if base_url is None:
        from shared.config import load_config
        base_url = load_config().get("PUBLIC_BASE_URL")
    base_url = label_base_url(base_url)
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
    cells = label_cells(width, height)
    for index, (component, png) in enumerate(zip(components, pngs)):
        slot = index % len(cells)
        if slot == 0:
            if index:
                sheet.showPage()
            sheet.setFont(font, 12)
            sheet.drawString(10 * MM, height - 14 * MM,
                             f"{getattr(district, 'name', '')} 城市部件二维码（一码智管）— 扫码上报问题")
        x, y, w, h = cells[slot]
        sheet.rect(x + 2, y + 2, w - 4, h - 4)
        (qx, qy, size), (tx, top, tw, th) = label_layout(cells[slot])
        sheet.drawImage(ImageReader(str(png)), qx, qy, size, size)
        font_size, wrapped = fit_label(label_texts(component, district, base_url), font, tw, th)
        sheet.setFont(font, font_size)
        line_y = top - font_size
        for lines in wrapped:
            for line in lines:
                sheet.drawString(tx, line_y, line)
                line_y -= font_size * LEADING
    sheet.save()
    return {"pngs": [str(path) for path in pngs], "pdf": str(pdf_path), "count": len(pngs), "base_url": base_url}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="部件二维码（一码智管）: PNG per component + A4 PDF sheet")
    parser.add_argument("--out", default="var/qrcodes")
    parser.add_argument("--base-url", default=None,
                        help="the public address the QR codes open (default: PUBLIC_BASE_URL)")
    args = parser.parse_args(argv)
    try:
        result = generate(args.out, args.base_url)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"已生成 {result['count']} 个部件二维码 → {args.out}/<部件编码>.png，打印页 {result['pdf']}"
          f"（扫码打开 {result['base_url']}）")
    return 0


if __name__ == "__main__":
    sys.exit(main())
