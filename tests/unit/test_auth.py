"""Roles, keys and object-level rules of the gateway, without HTTP."""
import pytest

from services.gateway import auth


class FakeRequest:
    def __init__(self, headers):
        self.headers = headers


@pytest.fixture
def accounts(mongo, config):
    return mongo[f"{config['DB_PREFIX']}gateway"]["accounts"]


def test_a_key_authenticates_its_account_and_only_a_hash_is_stored(accounts):
    key = auth.new_key(accounts, "天生街道值班", "unit", unit_id="street.tianshengjie")
    principal = auth.authenticate(accounts, key)
    assert principal.role == "unit" and principal.unit_id == "street.tianshengjie"
    stored = accounts.find_one({"_id": principal.key_id})
    assert key.split("_", 2)[2] not in str(stored)


@pytest.mark.parametrize("bad", [None, "", "nonsense", "dcg_abc_def", "dcg__"])
def test_missing_or_wrong_keys_are_refused(accounts, bad):
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(accounts, bad)


def test_a_revoked_or_tampered_key_is_refused(accounts):
    key = auth.new_key(accounts, "admin", "admin")
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(accounts, key[:-1] + ("A" if key[-1] != "A" else "B"))
    accounts.update_many({}, {"$set": {"revoked": True}})
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(accounts, key)


def test_key_is_read_from_bearer_or_x_api_key():
    assert auth.key_from_request(FakeRequest({"Authorization": "Bearer dcg_a_b"})) == "dcg_a_b"
    assert auth.key_from_request(FakeRequest({"X-API-Key": "dcg_c_d"})) == "dcg_c_d"
    assert auth.key_from_request(FakeRequest({})) is None


def test_roles_and_object_level_rules():
    unit = auth.Principal("k1", "天生街道", "unit", unit_id="street.tianshengjie")
    police = auth.Principal("k2", "公安", "partner", department="police")
    leader = auth.Principal("k3", "领导", "leader")
    assert auth.may_see_case(unit, "street.tianshengjie")
    assert not auth.may_see_case(unit, "street.beiquan")
    assert not auth.may_see_case(police, "street.tianshengjie")
    assert auth.may_see_case(leader, "street.beiquan")
    assert auth.may_see_operation(police, ["police", "environment"])
    assert not auth.may_see_operation(police, ["environment"])
    assert auth.may_see_operation(unit, ["police"], units=["street.tianshengjie"])
    assert not auth.may_see_operation(unit, ["police"], units=["street.beiquan"])
    with pytest.raises(auth.Forbidden):
        auth.require(leader, *auth.ACT_ON_CASES)


def test_accounts_need_their_unit_or_department(accounts):
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "unit")
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "partner")
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "superuser")


def test_rate_limiter_allows_bursts_then_refills():
    limiter = auth.RateLimiter(rate=2, burst=3)
    assert [limiter.allow("1.2.3.4", now=0)[0] for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("5.6.7.8", now=0)[0]                    # per client
    allowed, retry_after = limiter.allow("1.2.3.4", now=0.1)
    assert not allowed and retry_after == pytest.approx(0.4, abs=0.01)   # 0.2 tokens; 0.8 more at 2/s
    assert limiter.allow("1.2.3.4", now=0.6)[0]                  # refilled at 2/s


# ------------------------------------------------------------------ who acts, from the key
UNIT = auth.Principal("k1", "天生街道 处置员", "unit", unit_id="street.tianshengjie")
OPERATOR = auth.Principal("k2", "值班员 王", "operator")
ADMIN = auth.Principal("k3", "管理员", "admin")
INSPECTOR = auth.Principal("k4", "网格员 小李", "inspector", person_id="insp-017")
LEADER = auth.Principal("k5", "区领导", "leader")
POLICE = auth.Principal("k6", "公安", "partner", department="police")
CITIZEN = auth.Principal("k7", "市民", "citizen")
CASE = {"case_id": "C1", "unit_id": "street.tianshengjie"}


def test_a_unit_acts_for_itself_and_only_on_its_own_case():
    assert auth.case_action_identity(UNIT, "accept", CASE) == {"actor": "天生街道 处置员",
                                                               "actor_unit": "street.tianshengjie"}
    with pytest.raises(auth.Forbidden, match="not assigned to your unit"):
        auth.case_action_identity(UNIT, "accept", {"unit_id": "street.beiquan"})
    with pytest.raises(auth.Forbidden):
        auth.case_action_identity(UNIT, "decide_extension", CASE)          # no approvals
    with pytest.raises(auth.Forbidden):
        auth.case_action_identity(UNIT, "verify", CASE)


def test_the_command_centre_acts_for_the_assigned_unit_and_approves_with_its_rank():
    assert auth.case_action_identity(OPERATOR, "feedback", {"unit_id": "dept.water"}) == {
        "actor": "值班员 王", "actor_unit": "dept.water"}                     # 代办
    assert auth.case_action_identity(OPERATOR, "decide_park", CASE) == {"actor": "值班员 王", "role": "centre"}
    assert auth.case_action_identity(ADMIN, "decide_extension", CASE)["role"] == "leader"
    duty = auth.Principal("k8", "值班员 赵", "operator", approver="operator")
    assert auth.case_action_identity(duty, "decide_extension", CASE)["role"] == "operator"
    with pytest.raises(auth.Forbidden):
        auth.case_action_identity(OPERATOR, "verify", CASE)                  # the inspector verifies


def test_the_inspector_verifies_under_its_person_id_and_the_leader_writes_nothing():
    assert auth.case_action_identity(INSPECTOR, "verify", CASE) == {"actor": "insp-017"}
    no_person = auth.Principal("k9", "网格员", "inspector")
    assert auth.case_action_identity(no_person, "verify", CASE) == {"actor": "k9"}
    for action in auth.CASE_ACTION_ROLES:
        with pytest.raises(auth.Forbidden, match="read-only"):
            auth.case_action_identity(LEADER, action, CASE)
    assert set(auth.CASE_ACTION_ROLES) == set(__import__("services.dispatch.schemas", fromlist=["x"]).ACTION_SCHEMAS)


def test_reports_take_the_reporter_from_the_key():
    body = {"channel": "hotline", "inspector_id": "someone", "reporter": {"name": "张三", "account_id": "x"},
            "leader": {"name": "周区长", "title": "副区长"}}
    inspector = auth.report_as(INSPECTOR, body)
    assert inspector["channel"] == "inspector" and inspector["inspector_id"] == "insp-017"
    assert inspector["leader"] is None
    citizen = auth.report_as(CITIZEN, body)
    assert citizen["channel"] == "web" and citizen["inspector_id"] is None and citizen["leader"] is None
    assert citizen["reporter"] == {"name": "张三", "account_id": "k7"}
    assert auth.report_as(UNIT, {})["reporter"] == {"account_id": "k1"}
    staff = auth.report_as(OPERATOR, body)                                   # entered on someone's behalf
    assert staff["channel"] == "hotline" and staff["leader"]["name"] == "周区长"
    assert auth.report_as(OPERATOR, {})["channel"] == "web"
    with pytest.raises(auth.Invalid) as refused:
        auth.report_as(ADMIN, {"channel": "sensor"})
    assert "channel" in refused.value.fields
    with pytest.raises(auth.Forbidden):
        auth.report_as(LEADER, {})


def test_contacts_are_hidden_from_everyone_but_the_command_centre():
    record = {"report": {"reporter": {"name": "张三", "phone": "13800000000", "email": "a@b.cn"}},
              "subscribers": ["phone:13800000000", "account_id:k7"], "reporter_id": "email:a@b.cn"}
    assert auth.redact_contacts(record, OPERATOR) == record
    hidden = auth.redact_contacts(record, UNIT)
    assert hidden == {"report": {"reporter": {"name": "张三"}}, "subscribers": ["phone:***", "account_id:k7"],
                      "reporter_id": "email:***"}


def test_operation_visibility_from_a_summary_or_the_whole_document():
    summary = {"departments": {"environment": {}}, "lead_unit": "street.tianshengjie",
               "requested_by": "street.tianshengjie", "owner_unit": "dept.water"}
    whole = {"departments": {"police": {}}, "lead_unit": "dept.chengguan", "requested_by": None,
             "case": {"owner_unit": "street.tianshengjie"}}
    assert auth.sees_operation(UNIT, summary) and auth.sees_operation(UNIT, whole)    # leads / owns the case
    assert not auth.sees_operation(POLICE, summary) and auth.sees_operation(POLICE, whole)
    assert auth.sees_operation(LEADER, summary) and not auth.sees_operation(CITIZEN, summary)
    assert auth.operation_units(whole) == ["dept.chengguan", "street.tianshengjie"]


def test_indicators_a_unit_and_a_partner_see_only_their_own():
    assert auth.may_see_indicators(UNIT, "unit", "street.tianshengjie")
    assert not auth.may_see_indicators(UNIT, "unit", "street.beiquan")
    assert not auth.may_see_indicators(UNIT, None, None)
    assert auth.may_see_indicators(POLICE, "partner", "police")
    assert not auth.may_see_indicators(POLICE, "partner", "environment")
    assert auth.may_see_indicators(INSPECTOR, None, None) and not auth.may_see_indicators(CITIZEN, None, None)


def test_person_ids_and_approver_ranks_are_checked_when_the_account_is_made(accounts):
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "inspector", person_id="网格员 一")
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "unit", unit_id="street.tianshengjie", approver="centre")
    with pytest.raises(ValueError):
        auth.new_key(accounts, "x", "operator", approver="mayor")
    key = auth.new_key(accounts, "值班员", "operator", approver="operator")
    principal = auth.authenticate(accounts, key)
    assert principal.approval_role == "operator" and principal.actor_id == principal.key_id
    inspector = auth.authenticate(accounts, auth.new_key(accounts, "小李", "inspector", person_id="insp-017"))
    assert inspector.actor_id == "insp-017" and inspector.as_dict()["person_id"] == "insp-017"


# ------------------------------------------------------------------ http helpers and the document
def test_pages_ids_and_the_citizen_rate_limit():
    from services.gateway import http
    page = http.page_of(list(range(45)), 3, 20, legacy_key="operations")
    assert page == {"items": list(range(40, 45)), "total": 45, "page": 3, "per_page": 20, "pages": 3,
                    "operations": list(range(40, 45))}
    assert http.page_of([], 1, 20)["pages"] == 0
    with pytest.raises(http.BadRequest) as bad:
        http.load(http.PageQuery(), {"page": "0", "per_page": "101"})
    assert set(bad.value.fields) == {"page", "per_page"}
    assert http.path_id("C20261123-1A2B", "案件") == "C20261123-1A2B"
    for bad_id in ("", "a b", "x" * 129, "渝A"):
        with pytest.raises(auth.NotFound):
            http.path_id(bad_id, "案件")
    config = {"CITIZEN_RATE_PER_MINUTE": 0.01, "CITIZEN_BURST": 2}
    http.rate_limit(config, "unit-test-client")
    http.rate_limit(config, "unit-test-client")
    with pytest.raises(http.RateLimited) as limited:
        http.rate_limit(config, "unit-test-client")
    assert limited.value.retry_after > 60
    http.rate_limit(config, "another-client")                                # per client


def test_error_responses_have_one_shape():
    import json

    from services.gateway import http
    answer = http.error_response(409, "冲突 (conflict)", {"outstanding": ["police"]}, current_version=3)
    assert answer.status_code == 409
    assert json.loads(answer.get_data()) == {"error": {"status": 409, "code": "conflict", "message": "冲突 (conflict)",
                                                       "fields": {"outstanding": ["police"]}, "current_version": 3}}


def test_openapi_paths_from_werkzeug_rules():
    from services.gateway import openapi
    rule = "/api/cases/<string:case_id>/actions/<action>"
    assert openapi.openapi_path(rule) == "/api/cases/{case_id}/actions/{action}"
