"""Workbench scenarios (issue 16), run by scenarios.py in its own process: every role's page by
clicks alone, the operator watching each step arrive without reloading, decisions from the
command centre's queues, the leader's read-only pages, and axe-core on every page."""
from __future__ import annotations

import base64
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "browser"
AXE = ROOT / "services" / "gateway" / "web" / "static" / "vendor" / "axe.min.js"
PLACE = {"lon": "106.3904", "lat": "29.8338"}                    # 天生街道, 天生路社区第1网格
# a small real PNG (the gateway re-encodes every photo)
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAALUlEQVR4nGOU67FhoCVgoqnpoxaMWjBqwagFoxaMWjBqwagFoxaMWjBqARUBAHOqASZmMBNOAAAAAElFTkSuQmCC")
PHONE = {"width": 390, "height": 844}


def signed_in(browser, base, path, key, viewport=None, **context):
    ctx = browser.new_context(viewport=viewport or {"width": 1400, "height": 900}, locale="zh-CN", **context)
    page = ctx.new_page()
    page.goto(base + path)
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    return page


def api(base, key, method, path, **body):
    answer = requests.request(method, base + path, headers={"Authorization": f"Bearer {key}"}, json=body or None,
                              timeout=20)
    if answer.status_code >= 400:
        raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text}")
    return answer.json()


def wait_for(what, check, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"never happened: {what}")


# places in 天生街道 more than 50 m apart (closer reports of one class are duplicates of one case)
PLACES = [{"lon": 106.3904, "lat": 29.8338}, {"lon": 106.394165, "lat": 29.833618}, {"lon": 106.3902, "lat": 29.830084},
          {"lon": 106.394165, "lat": 29.8326}]


def new_case(base, key, place):
    case_id = api(base, key, "POST", "/api/reports", class_code="E0101", address="天生路18号",
                  location=place, description="浏览器测试上报", attributes={"area_m2": 2})["case_id"]
    wait_for(f"dispatch of {case_id}", lambda: requests.get(
        f"{base}/api/cases/{case_id}/timeline", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 200)
    return case_id


def act_in_dialog(page, card, action, fill=None):
    page.click(f"{card} button[data-action={action}]")
    dialog = f"dialog[data-action={action}]"
    page.wait_for_selector(dialog)
    for selector, value in (fill or {}).items():
        if selector.startswith("select"):
            page.select_option(f"{dialog} {selector}", value)
        elif selector.startswith("file"):
            page.set_input_files(f"{dialog} input[type=file]", files=[value])
        else:
            page.fill(f"{dialog} {selector}", value)
    page.click(f"{dialog} button[type=submit]")
    page.wait_for_selector(dialog, state="detached")


def row_state(page, case_id, label):
    page.wait_for_selector(f"#case-table tr[data-case='{case_id}'] td:has-text('{label}')", timeout=30000)


def whole_loop(browser, base, keys):
    """inspector reports → unit accepts → feedback with a photo → inspector verifies → closed, by
    clicks; the operator's page (never reloaded) shows each step as it happens."""
    operator = signed_in(browser, base, "/", keys["operator"])
    operator.click("nav button[data-tab=cases]")
    operator.evaluate("window.__not_reloaded = true")
    inspector = signed_in(browser, base, "/inspector", keys["inspector"], viewport=PHONE)
    inspector.select_option("#class-code", "E0101")
    inspector.fill("#lon", PLACE["lon"])
    inspector.fill("#lat", PLACE["lat"])
    inspector.fill("#address", "天生路18号")
    inspector.fill("#description", "路口暴露垃圾约2平方米")
    inspector.set_input_files("#photo", files=[{"name": "before.png", "mimeType": "image/png", "buffer": PNG}])
    inspector.click("#report-form button[type=submit]")
    inspector.wait_for_function("() => { const t = document.querySelector('#report-result').textContent;"
                                " return t && t !== '提交中…'; }", timeout=20000)
    if "已立案" not in inspector.inner_text("#report-result"):
        raise AssertionError("the inspector's report: " + inspector.inner_text("#report-result"))
    case_id = inspector.inner_text("#report-result").split("：")[1].split("（")[0]
    row_state(operator, case_id, "已派遣")
    operator.screenshot(path=str(SHOTS / "10-loop-operator-sees-dispatch.png"))

    unit = signed_in(browser, base, "/unit", keys["street"], viewport=PHONE)
    card = f"#my-cases [data-case='{case_id}']"
    unit.wait_for_selector(card)
    unit.screenshot(path=str(SHOTS / "11-unit-my-cases-phone.png"), full_page=True)
    # by keyboard alone: focus the button, Enter opens the dialog with the focus in its field, Enter sends
    unit.focus(f"{card} button[data-action=accept]")
    unit.keyboard.press("Enter")
    unit.wait_for_selector("dialog[data-action=accept]")
    focused = unit.evaluate("document.activeElement.name")
    unit.keyboard.type("收到，马上处理")
    unit.keyboard.press("Enter")
    unit.wait_for_selector("dialog[data-action=accept]", state="detached")
    row_state(operator, case_id, "处置中")
    unit.wait_for_selector(f"{card} button[data-action=feedback]")
    photo = {"name": "after.png", "mimeType": "image/png", "buffer": PNG}
    act_in_dialog(unit, card, "feedback", {"file": photo, "input[name=note]": "已清理完毕"})
    row_state(operator, case_id, "已反馈")

    inspector.reload()
    verify_card = f"#to-verify [data-case='{case_id}']"
    inspector.wait_for_selector(f"{verify_card} img.after-photo", timeout=20000)
    note = inspector.inner_text(f"{verify_card} .unit-note")
    inspector.screenshot(path=str(SHOTS / "12-inspector-verification-card.png"), full_page=True)
    inspector.click(f"{verify_card} button.pass")
    row_state(operator, case_id, "已结案")
    operator.screenshot(path=str(SHOTS / "13-loop-operator-sees-close.png"))
    return {"case_id": case_id, "not_reloaded": operator.evaluate("window.__not_reloaded === true"),
            "keyboard_focus_in_dialog": focused,
            "unit_note_on_card": note, "phone_width": unit.evaluate("document.documentElement.scrollWidth")}


def decisions(browser, base, keys):
    """An extension approval, a parking approval, a dispute decision and a whistle, from the page."""
    street, operator_key = keys["street"], keys["operator"]
    a, b, c, d = (new_case(base, operator_key, place) for place in PLACES)
    assert len({a, b, c, d}) == 4, "four places, four cases"

    def version(case_id):
        return api(base, operator_key, "GET", f"/api/cases/{case_id}")["dispatch"]["version"]
    api(base, street, "POST", f"/api/cases/{a}/actions/request-extension", expected_version=version(a),
        reason="需调运机械", extra="1d")
    api(base, street, "POST", f"/api/cases/{b}/actions/request-park", expected_version=version(b), reason="需财政立项")
    api(base, operator_key, "POST", f"/api/cases/{c}/actions/return", expected_version=version(c),
        reason="属环卫作业范围", to_unit="dept.sanitation")
    api(base, operator_key, "POST", f"/api/cases/{c}/actions/return", expected_version=version(c), reason="仍有争议")
    page = signed_in(browser, base, "/", operator_key)
    results = {}
    page.click("#queue-counts button[data-queue=extensions]")
    act_in_dialog(page, f"#queue-items [data-case='{a}']", "decide_extension",
                  {"select[name=approved]": "true", "input[name=reason]": "同意延期一天"})
    page.wait_for_selector("#queue-notice:has-text('审批延期')")
    results["extension"] = api(base, operator_key, "GET", f"/api/cases/{a}")["dispatch"]["extended"]
    page.click("#queue-counts button[data-queue=parks]")
    # the case changes while the dialog is open: the decision is refused (409), the page says why and reloads
    page.click(f"#queue-items [data-case='{b}'] button[data-action=decide_park]")
    page.wait_for_selector("dialog[data-action=decide_park]")
    api(base, street, "POST", f"/api/cases/{b}/actions/request-extension", expected_version=version(b),
        reason="另需延期", extra="4h")
    page.click("dialog[data-action=decide_park] button[type=submit]")
    page.wait_for_selector("#queue-notice:has-text('未执行')")
    results["stale"] = page.inner_text("#queue-notice")
    fresh = f"#queue-items [data-case='{b}'][data-version='{version(b)}']"        # the reloaded item
    page.wait_for_selector(f"{fresh} button[data-action=decide_park]")
    act_in_dialog(page, fresh, "decide_park", {"select[name=approved]": "true"})
    page.wait_for_selector("#queue-notice:has-text('审批挂账')")
    results["park"] = api(base, operator_key, "GET", f"/api/cases/{b}")["dispatch"]["state"]
    page.click("#queue-counts button[data-queue=disputes]")
    dispute = wait_for("the dispute in its queue", lambda: (page.click("#queue-counts button[data-queue=disputes]")
                                                            or page.query_selector("#queue-items [data-dispute]")))
    dispute_id = dispute.get_attribute("data-dispute")          # read at once: live updates redraw the list
    page.screenshot(path=str(SHOTS / "14-queues-dispute.png"))
    page.click(f"#queue-items [data-dispute='{dispute_id}'] button[data-action=decide_dispute]")
    page.select_option("dialog select[name=owner_unit]", "street.tianshengjie")
    page.fill("dialog input[name=note]", "属天生街道辖区")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("#queue-notice:has-text('权属已裁定')")
    results["dispute"] = api(base, operator_key, "GET", f"/api/intake/disputes/{dispute_id}")["state"]
    page.click("nav button[data-tab=operations]")
    page.fill("#whistle-case", d)
    page.select_option("#whistle-street", "street.tianshengjie")
    page.check("#whistle-departments input[value=police]")
    page.click("#whistle-form button[type=submit]")
    page.wait_for_selector("#whistle-result:has-text('联合行动')", timeout=15000)
    results["whistle"] = page.inner_text("#whistle-result")
    page.screenshot(path=str(SHOTS / "15-command-centre-whistle.png"))
    # the police liaison sees the operation and accepts it through the HTTP reply path
    operation = results["whistle"].split()[-1]
    partner = signed_in(browser, base, "/partner", keys["partner"], viewport=PHONE)
    card = f"#operations [data-operation='{operation}']"
    partner.wait_for_selector(card, timeout=20000)
    partner.click(f"{card} button:has-text('接受')")
    partner.wait_for_selector(f"{card} [data-state=accepted]", timeout=20000)
    partner.screenshot(path=str(SHOTS / "17-partner-accepted.png"), full_page=True)
    results["partner_state"] = partner.get_attribute(f"{card} [data-state]", "data-state")
    return results


PAGES = {"/": "operator", "/unit": "street", "/partner": "partner", "/leader": "leader", "/inspector": "inspector"}
WRITE_CONTROLS = """() => [...document.querySelectorAll('button, input, select, textarea')]
  .filter(node => node.offsetParent !== null && !node.closest('#login') && !node.closest('nav')
          && !node.closest('.filters')
          && !['logout'].includes(node.id) && !node.classList.contains('download') && !node.closest('#queue-counts')
          && !(node.id === 'unit-type'))
  .map(node => node.outerHTML.slice(0, 120))"""


def leader_read_only(browser, base, keys):
    """The leader opens every page; none shows a control that writes."""
    found = {}
    for path in PAGES:
        page = signed_in(browser, base, path, keys["leader"])
        page.wait_for_selector("#live[data-up=true]", state="attached")   # loaded, and listening live
        found[path] = page.evaluate(WRITE_CONTROLS)
        if path == "/leader":
            page.screenshot(path=str(SHOTS / "16-leader-cockpit.png"), full_page=True)
        page.context.close()
    return found


def accessibility(browser, base, keys):
    """axe-core on every page, signed in as the role it is for: serious and critical violations."""
    found = {}
    for path, who in PAGES.items():
        page = signed_in(browser, base, path, keys[who], bypass_csp=True)      # to inject axe only
        page.wait_for_selector("#live[data-up=true]", state="attached")   # loaded, and listening live
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("""async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']}))
            .violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => `${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)""")
        found[path] = result
        page.screenshot(path=str(SHOTS / f"20-page-{who}.png"))
        page.keyboard.press("Tab")
        found[path + " keyboard"] = page.evaluate("document.activeElement && document.activeElement.tagName")
        page.context.close()
    return found


SCENARIOS = {"whole_loop": whole_loop, "decisions": decisions, "leader_read_only": leader_read_only,
             "accessibility": accessibility}
