"""Browser scenarios, run as a plain process (Playwright's sync API cannot run inside the
eventlet-patched test process). ``python tests/browser/scenarios.py <name> <base url> <keys json>``
prints a JSON result on its last line; any failed check exits non-zero with the reason."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.browser import workbench  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
STREET_POINT = {"lon": 106.3904, "lat": 29.8338}          # 天生街道, 天生路社区第1网格
MAP_IDS = """() => { const chart = echarts.getInstanceByDom(document.querySelector('#map'));
  return chart ? (chart.getOption().series[0].data || []).map(d => d.case_id) : null; }"""


def log_in(browser, base, key):
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page.goto(base + "/")
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    return page


def report(base, key, class_code="E0101"):
    answer = requests.post(f"{base}/api/reports", headers={"Authorization": f"Bearer {key}"}, timeout=15,
                           json={"class_code": class_code, "location": STREET_POINT, "address": "天生路18号",
                                 "description": "浏览器测试上报"})
    if answer.status_code != 201:
        raise AssertionError(f"report refused: {answer.status_code} {answer.text}")
    return answer.json()["case_id"]


def login_refused(browser, base, keys):
    page = browser.new_page(locale="zh-CN")
    page.goto(base + "/")
    visible = page.is_visible("#login-form")
    page.fill("#api-key", "dcg_nobody_wrong")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('登录失败')")
    page.screenshot(path=str(SHOTS / "01-login-refused.png"))
    return {"form_visible": visible, "app_hidden": page.is_hidden("#app"),
            "error": page.inner_text("#login-error")}


def report_on_map(browser, base, keys):
    page = log_in(browser, base, keys["operator"])
    page.wait_for_function(f"() => ({MAP_IDS})() !== null")
    before = page.evaluate(MAP_IDS)
    case_id = report(base, keys["operator"])
    page.wait_for_function(f"() => (({MAP_IDS})() || []).includes('{case_id}')", timeout=20000)
    page.click("nav button[data-tab=cases]")              # the operator starts on the work queues
    page.wait_for_selector(f"#case-table tr[data-case='{case_id}']")
    page.screenshot(path=str(SHOTS / "02-new-report-on-map.png"))
    page.click(f"#case-table tr[data-case='{case_id}']")
    page.wait_for_selector("#timeline li")
    page.screenshot(path=str(SHOTS / "03-case-timeline.png"))
    return {"case_id": case_id, "on_map_before": case_id in before, "me": page.inner_text("#me"),
            "timeline": page.inner_text("#timeline")}


def whistle(browser, base, keys):
    case_id = report(base, keys["operator"])
    deadline = time.time() + 20
    while requests.get(f"{base}/api/cases/{case_id}/timeline", timeout=10,
                       headers={"Authorization": f"Bearer {keys['operator']}"}).status_code != 200:
        if time.time() > deadline:
            raise AssertionError("the case was never dispatched")
        time.sleep(0.3)
    page = log_in(browser, base, keys["street"])
    page.click("nav button[data-tab=operations]")
    page.fill("#whistle-case", case_id)
    page.check("#whistle-departments input[value=police]")
    page.check("#whistle-departments input[value=environment]")
    page.fill("#whistle-note", "夜间偷倒建筑垃圾，请公安、环保到场")
    page.click("#whistle-form button[type=submit]")
    page.wait_for_selector("#whistle-result:has-text('联合行动')", timeout=15000)
    result = page.inner_text("#whistle-result")
    if "失败" in result:
        raise AssertionError(result)
    operation = result.split()[-1]
    police = f".op[data-operation='{operation}'] .dept[data-department=police]"
    page.wait_for_selector(police, timeout=20000)
    states = [page.get_attribute(police, "data-state")]
    page.screenshot(path=str(SHOTS / "04-whistle-opened.png"))
    page.wait_for_function(f"""() => {{ const chip = document.querySelector("{police}");
        return chip && chip.dataset.state !== '{states[0]}'; }}""", timeout=30000)
    states.append(page.get_attribute(police, "data-state"))
    page.screenshot(path=str(SHOTS / "05-department-state-changed.png"))
    return {"case_id": case_id, "operation": operation, "result": result, "police_states": states}


def community_review(browser, base, keys):
    page = log_in(browser, base, keys["community"])
    page.click("nav button[data-tab=reviews]")
    page.select_option("#review-unit", "dept.environment")
    page.fill("#review-score", "88")
    page.fill("#review-comment", "扬尘投诉处理及时")
    page.click("#review-form button[type=submit]")
    page.wait_for_selector("#review-result:has-text('已提交')")
    first = page.inner_text("#review-result")
    page.click("#review-form button[type=submit]")                 # the same vote again
    page.wait_for_selector("#review-result:has-text('提交失败')")
    page.screenshot(path=str(SHOTS / "06-community-review.png"))
    return {"first": first, "second": page.inner_text("#review-result")}


SCENARIOS = {"login_refused": login_refused, "report_on_map": report_on_map, "whistle": whistle,
             "community_review": community_review}
SCENARIOS.update(workbench.SCENARIOS)       # issue 16: the workbench pages (tests/browser/workbench.py)


def main():
    name, base, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            print(json.dumps(SCENARIOS[name](browser, base, keys), ensure_ascii=False))
        finally:
            browser.close()


if __name__ == "__main__":
    main()
