"""The monthly bulletin (通报), rendered by its command against the store a running scoring service
filled from the broker: HTML and PDF in Chinese with charts and the exposure list's two photos
per case; the test opens the PDF and reads its text back, and downloads it over HTTP."""
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from PIL import Image, ImageDraw
from pypdf import PdfReader

from services.gateway.auth import new_key
from services.gateway.service import GatewayService
from services.scoring.service import ScoringService
from shared import clock
from tests import scoring_scenario as S
from tests.conftest import free_port
from tests.scoring_support import clock_offset_seconds, publish_all, set_clock, wait_for_facts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def after_november():
    set_clock()
    yield
    clock.reset()


def make_photos(folder: Path, events) -> None:
    """A small PNG for every photo the scenario refers to (problem and after photos)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = set()
    for event in events:
        payload = event["payload"]
        names.update(Path(url).name for url in payload.get("media_urls") or [])
        if payload.get("after_photo"):
            names.add(Path(payload["after_photo"]).name)
    for name in names:
        colour = (200, 80, 60) if "problem" in name else (60, 160, 90)
        image = Image.new("RGB", (160, 120), colour)
        ImageDraw.Draw(image).text((10, 50), name, fill=(255, 255, 255))
        image.save(folder / name)


def test_the_bulletin_command_renders_html_and_pdf_in_chinese(container_factory, config, test_env,
                                                             db, tmp_path):
    port = free_port()
    container_factory(ScoringService, config).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    photos = tmp_path / "photos"
    events = S.build(photo_base=f"file://{photos}/")
    make_photos(photos, events)
    publish_all(config, events)
    wait_for_facts(db("scoring"), events)

    out = tmp_path / "bulletins"
    env = {**os.environ, **test_env, "PYTHONPATH": str(ROOT),
           "DCG_CLOCK_OFFSET_SECONDS": str(clock_offset_seconds()), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run([sys.executable, "-m", "services.scoring.bulletin", "--month", S.MONTH,
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "街镇排名: 1. 北泉街道 85.00，2. 天生街道 48.83" in done.stdout

    folder = out / S.MONTH
    pdf_path, html_path = folder / "bulletin-2026-11.pdf", folder / "bulletin-2026-11.html"
    charts = sorted(p.name for p in (folder / "charts").glob("*.png"))
    # the district trend, then indicator bars and a trend per unit for each group with a score
    # (区级部门 has only 区水务集团 with nothing due: no chart)
    assert charts == ["bars-street.png", "district-trend.png", "trend-street.png"]

    reader = PdfReader(pdf_path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = text.replace("\n", "").replace(" ", "")
    for expected in ("区大城管工作领导小组办公室", "嘉城管考〔2026〕11号", "各街道办事处、镇人民政府、区级各相关部门：",
                     "嘉陵区城市综合管理考核月度通报", "2026年11月", "一、总体情况", "二、高发问题",
                     "三、问题来源", "四、综合排名", "五、红黑榜", "六、曝光台（两图一表）",
                     "七、监督指挥中心与监督员", "八、联合执法部门", "九、存在问题", "十、下步要求",
                     "抄送：区委办公室、区政府办公室", "附：指标说明",
                     "北泉街道", "天生街道", "童家溪镇", "85.00", "48.83", "不参与排名", "无案件",
                     "按期结案率", "综合指标值", "区生态环境局", "工号insp.li", "问题照片", "处置后照片",
                     "暴露垃圾类问题本月立案15件，较上月1件增长15.0倍。"):
        assert expected.replace(" ", "") in flat, expected
    # the overview sentence carries the district's hand-computed numbers
    assert "应结案13件，结案11件，结案率84.6%；按期结案8件，按期结案率61.5%" in flat
    # the exposure list: the three overdue cases, worst first, with both photos embedded
    assert flat.index("A6") < flat.index("A2") and "21.5" in flat and "超期未结" in flat
    images = sum(len(page.images) for page in reader.pages)
    assert images == 3 + 5          # 3 charts + problem/after photos (A6 has no after photo)
    assert reader.metadata.title == "嘉陵区城市综合管理考核月度通报（2026年11月）"

    # the tables, read with poppler's layout mode (columns kept apart by spaces)
    layout = subprocess.run(["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True,
                            text=True, check=True).stdout
    rows = [" ".join(line.split()) for line in layout.splitlines()]
    # 总体情况: 受理 17 in November, 1 (O1) in October, nothing in November 2025
    assert "受理数 17 1 +1600.0% 0 新增" in rows
    assert "立案率 88.2% 100.0% -11.8个百分点 — —" in rows
    # 问题来源: 12345 11 of 18, inspectors 6, the app 1
    assert "12345热线 11 61.1% 1 +1000.0%" in rows and "监督员上报 6 33.3% 0 新增" in rows
    # 综合排名 with 立案率 and 派遣率: 北泉街道 6/7, 6/6; 天生街道 7/8, 6/7
    assert "1 北泉街道 5 85.7% 100.0% 80.0% 80.0% 0.0% 20.0% 100.0% 1.00 85.00" in rows
    assert "2 天生街道 6 87.5% 85.7% 83.3% 33.3% 16.7% 16.7% 33.3% 9.50 48.83" in rows
    # 红黑榜 and the signature block (date: the clock's day, local)
    assert "街镇红榜 1 北泉街道 85.00" in rows and "街镇黑榜 2 天生街道 48.83" in rows
    signed = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert f"{signed.year}年{signed.month}月{signed.day}日" in rows
    # every page rendered to a picture (pdftoppm), none of them blank
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf_path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(reader.pages) >= 2
    for picture in pages:
        with Image.open(picture) as image:
            assert image.convert("L").getextrema()[0] < 128, picture.name     # ink on the page

    html_text = html_path.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html_text and "data:image/png;base64," in html_text
    assert "北泉街道" in html_text and "85.00" in html_text
    # the practices' lines (721 against its target, the chiefs) are printed in both
    assert "721 工作法：全区处置" in html_text and "双街长/双路长：" in html_text
    assert any(row.startswith("721 工作法：全区处置") for row in rows)

    base = f"http://127.0.0.1:{port}"
    login = {"Authorization": f"Bearer {new_key(db('gateway').accounts, '区领导', 'leader')}"}
    download = requests.get(f"{base}/api/scoring/bulletins/2026-11.pdf", timeout=20, headers=login)
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/pdf"
    assert download.content == pdf_path.read_bytes()
    page = requests.get(f"{base}/api/scoring/bulletins/2026-11.html", timeout=20, headers=login)
    assert page.status_code == 200 and "北泉街道" in page.text
    listed = requests.get(f"{base}/api/scoring/bulletins", timeout=20, headers=login).json()["bulletins"]
    assert [item["month"] for item in listed] == ["2026-11"]
