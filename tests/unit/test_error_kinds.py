"""The error model's pieces without a broker: a raised kind survives nameko's (de)serialisation
as the same class with its numbers intact; the gateway's one table gives each kind its status;
the schemas a service validates with are the contract's, not copies."""
import json

import pytest
from nameko.exceptions import RemoteError, deserialize, serialize

import services.dispatch.rules as dispatch_rules
import services.dispatch.schemas as dispatch_schemas
import services.enforcement_coordination.schemas as coordination_schemas
import services.participation.schemas as participation_schemas
import services.scoring.schemas as scoring_schemas
from services.gateway import http
from shared.contracts import errors, remote  # noqa: F401  (registers the kinds)
from shared.contracts.api import coordination, dispatch, participation, scoring


def over_the_wire(exc):
    return deserialize(json.loads(json.dumps(serialize(exc))))


@pytest.mark.parametrize("kind", list(errors.KINDS.values()))
def test_every_kind_comes_back_as_itself_with_its_detail(kind):
    back = over_the_wire(kind("出错了 (failed)", {"field": ["坏了"]}, current_version=7, state="accepted"))
    assert type(back) is kind and not isinstance(back, RemoteError)
    assert back.message == "出错了 (failed)" and back.fields == {"field": ["坏了"]}
    assert back.details == {"current_version": 7, "state": "accepted"}      # 7, not "7"


def test_an_unregistered_exception_is_still_a_remote_error():
    assert isinstance(over_the_wire(KeyError("x")), RemoteError)


def test_the_gateway_table_gives_each_kind_its_status_and_code():
    for kind, status in {errors.Invalid: 400, errors.Forbidden: 403, errors.NotFound: 404,
                         errors.Conflict: 409, errors.Refused: 422}.items():
        answer = http.error_answer(kind(None, None, current_version=3))
        body = json.loads(answer.get_data(as_text=True))["error"]
        assert answer.status_code == status == body["status"] and body["code"] == kind.code
        assert body["current_version"] == 3 and body["message"] == kind.default_message
    assert http.status_of(http.BadRequest("bad JSON")) == 400


def test_services_validate_with_the_contract_s_own_schemas():
    assert dispatch_schemas.ACTION_SCHEMAS is dispatch.ACTION_SCHEMAS
    assert coordination_schemas.RecordViolation is coordination.RecordViolation
    assert participation_schemas.ShopSchema is participation.ShopSchema
    assert scoring_schemas.IndicatorsQuery is scoring.IndicatorsQuery
    assert dispatch.STATES == dispatch_rules.STATES           # the case states the query accepts
