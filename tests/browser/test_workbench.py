"""The workbench (issue 16) in a real browser against the real platform: every role's page by
clicks alone, the operator seeing each step arrive without reloading, the command centre's
decisions from its queues, the leader's pages without a write control, axe-core on every page.
Screenshots go to artifacts/browser/."""
from tests.browser.test_command_centre import keys, platform, pytestmark, run  # noqa: F401


def test_the_whole_loop_by_clicks_across_three_roles_with_the_operator_watching_live(platform, keys):  # noqa: F811
    result = run("whole_loop", platform, keys)
    assert result["not_reloaded"]                        # the operator's page saw every step by push
    assert "已清理完毕" in result["unit_note_on_card"]     # the inspector's card shows the unit's note
    assert result["phone_width"] <= 390                   # the unit's page fits a phone, no sideways scroll
    assert result["keyboard_focus_in_dialog"] == "note"   # the accept was done by keyboard alone


def test_extension_parking_dispute_and_whistle_decided_from_the_page(platform, keys):  # noqa: F811
    result = run("decisions", platform, keys)
    assert result["extension"] is True
    assert result["park"] == "parked"
    assert "未执行" in result["stale"] and "请刷新" in result["stale"]   # a stale decision: refused, and why
    assert result["dispute"] == "decided"
    assert "已吹哨" in result["whistle"]
    assert result["partner_state"] == "accepted"           # the liaison's page answered through the reply path


def test_the_leader_sees_every_page_and_finds_no_write_control(platform, keys):  # noqa: F811
    found = run("leader_read_only", platform, keys)
    assert found == {path: [] for path in found}


def test_every_page_has_no_serious_or_critical_accessibility_violation(platform, keys):  # noqa: F811
    found = run("accessibility", platform, keys)
    violations = {path: items for path, items in found.items() if not path.endswith("keyboard") and items}
    assert violations == {}
    assert all(found[path] not in (None, "BODY") for path in found if path.endswith("keyboard"))
