"""One error model (shared/contracts/errors.py): a service raises invalid / forbidden / not found /
conflict / refused; the RPC proxy raises the same class again (nameko's remote-error registry),
and the gateway answers each with its status in the one error shape
``{"error": {"status", "code", "message", "fields"?, …}}``. On the real broker and store, every
service running (tests/integration/gateway_auth_support.py)."""
from __future__ import annotations

import io

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from PIL import Image

from shared.contracts import errors
from tests.helpers import wait_until
from tests.integration.gateway_auth_support import INSIDE, TIANSHENG_PLACES, platform  # noqa: F401

NORTH_10M = {"lon": INSIDE["lon"], "lat": INSIDE["lat"] + 0.00009}


def error_of(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert error["status"] == status and error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_the_rpc_proxy_raises_the_service_s_own_error_class(platform):
    """Not a RemoteError: the kind, its message, field detail and context survive the trip."""
    case_id = platform.report(TIANSHENG_PLACES[0])
    platform.dispatched(case_id)
    version = platform.version(case_id)
    with ClusterRpcProxy(platform.config) as rpc:
        with pytest.raises(errors.Invalid) as invalid:
            rpc.participation.submit_review("rep-1", "500190001001", {"score": 101})
        assert set(invalid.value.fields) == {"unit_id", "score"}
        with pytest.raises(errors.Conflict) as stale:
            rpc.dispatch.act(case_id, "accept", {"expected_version": version + 3, "actor": "x",
                                                 "actor_unit": "street.tianshengjie"})
        assert stale.value.details["current_version"] == version
        with pytest.raises(errors.NotFound) as missing:
            rpc.dispatch.act("C20991231-NOPE", "accept", {"expected_version": 1, "actor": "x", "actor_unit": "y"})
        assert "C20991231-NOPE" in missing.value.message
        with pytest.raises(errors.NotFound):
            rpc.coordination.close_operation("OP-NOPE", {"by": {"unit_id": "street.tianshengjie"}})


def test_each_kind_from_a_service_gets_its_status_and_the_one_shape(platform):
    case_id = platform.report(TIANSHENG_PLACES[1])
    platform.dispatched(case_id)
    version = platform.version(case_id)
    operator, inspector = platform.as_("operator"), platform.as_("inspector")

    # 400 from intake (the gateway does not check a decision's body): field by field
    # (intake still answers failures as {"status": kind}: errors.raise_failure raises them)
    error = error_of(operator.post("/api/intake/disputes/D-NOPE/decision", json={"note": "?"}), 400, "invalid")
    assert "owner_unit" in error["fields"]
    # 404 from intake
    error_of(operator.post("/api/intake/disputes/D-NOPE/decision",
                           json={"owner_unit": "street.tianshengjie", "decided_by": "x"}), 404, "not_found")
    # 409 from dispatch, with the version to refresh to (a number, as the service sent it)
    stale = operator.post(f"/api/cases/{case_id}/actions/accept", json={"expected_version": version + 5})
    error = error_of(stale, 409, "conflict")
    assert error["current_version"] == version and error["expected_version"] == version + 5
    # 422 from dispatch: verifying a case nobody has handled yet
    early = inspector.post(f"/api/cases/{case_id}/actions/verify", json={"expected_version": version, "passed": True})
    error = error_of(early, 422, "refused")
    assert error["state"] == "dispatched" and error["version"] == version
    # 403 from participation: a community account bound to no community may not review
    community = platform.new_key("社区代表 无社区", "community", unit_id="500190999999")
    review = community.post("/api/community-reviews", json={"unit_id": "street.tianshengjie", "score": 90})
    error_of(review, 403, "forbidden")
    # 404 from coordination
    error_of(operator.post("/api/operations/OP-NOPE/close", json={}), 404, "not_found")


def _photo_url(platform) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    answer = platform.as_("unit").post("/api/media", files={"photo": ("after.png", buffer.getvalue(), "image/png")})
    assert answer.status_code == 201, answer.text
    return answer.json()["path"]                     # a platform photo: /media/<id>


def test_a_report_that_reopens_a_closed_case_is_a_success_201(platform, db):
    """The report is filed (it reopened the case as rework): 201, as Open311 answers the same
    outcome — not a 422 with a body outside the error shape."""
    case_id = platform.report(INSIDE)
    platform.dispatched(case_id)

    def act(role, action, **body):
        answer = platform.as_(role).post(f"/api/cases/{case_id}/actions/{action}",
                                         json={"expected_version": platform.version(case_id), **body})
        assert answer.status_code == 200, answer.text

    act("unit", "accept")
    act("unit", "feedback", after_photo=_photo_url(platform))
    act("inspector", "verify", passed=True)
    wait_until(lambda: (db("intake").cases.find_one({"_id": case_id}) or {}).get("state") == "closed",
               what="intake's copy closed")
    again = platform.as_("operator").post("/api/reports", json={
        "class_code": "E0101", "location": NORTH_10M, "description": "垃圾又堆起来了", "attributes": {"area_m2": 2}})
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "reopened" and again.json()["case_id"] == case_id


def test_a_report_not_filed_is_422_in_the_error_shape_and_kept(platform, db):
    """不予立案 (an inspector's report without a photo): refused, with the report's id — nothing lost."""
    answer = platform.as_("inspector").post("/api/reports", json={
        "class_code": "E0101", "location": TIANSHENG_PLACES[2], "description": "无照片", "attributes": {"area_m2": 2}})
    error = error_of(answer, 422, "refused")
    assert "照片" in error["message"]
    assert db("intake").reports.find_one({"_id": error["report_id"]})["status"] == "rejected"
